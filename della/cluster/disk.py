"""Disk a run leaves under runs/: its final model (fp32 weights, della/models/vae.py `save`) and, unless
`training.keep_checkpoints` is false, its two optimiser checkpoints (last.pt and prev.pt, each
the weights and AdamW's two moments: della/run/train.py). docs/cluster.md's "Disk" table and the
total a dry run prints come from here. Samples, metrics and logs are megabytes; the datasets'
raw and processed files are in docs/data.md."""

from __future__ import annotations

from della.cluster.gpu_memory import run_parameters

ELEMENT_BYTES = 4  # fp32 weights and moments
CHECKPOINTS_KEPT = 2  # last.pt and prev.pt (della/io.py, keep_previous)
TENSORS_PER_CHECKPOINT = 3  # weights, AdamW's exp_avg and exp_avg_sq


def run_disk_bytes(config: dict, dataset: str, model: str) -> dict[str, int] | None:
    """{"model": bytes, "checkpoints": bytes} of one seed of a (dataset, model) run; None when
    a backbone is not a published architecture (the sample scale)."""
    from della.pipeline.targets import trains

    params = run_parameters(config, dataset, model)
    if params is None:
        return None
    if not trains(config, model):  # decodes another model's weights
        return {"model": 0, "checkpoints": 0}
    training = {**config["training"], **config["models"][model].get("train", {})}
    kept = training.get("keep_checkpoints", True)
    return {
        "model": ELEMENT_BYTES * params,
        "checkpoints": CHECKPOINTS_KEPT * TENSORS_PER_CHECKPOINT * ELEMENT_BYTES * params if kept else 0,
    }


def total_disk_bytes(config: dict, runs: list[tuple[str, str]]) -> dict[str, int] | None:
    """The sum over `runs` (dataset, model) and the config's seeds; None if no run is estimable."""
    sizes = [size for size in (run_disk_bytes(config, d, m) for d, m in runs) if size is not None]
    if not sizes:
        return None
    seeds = len(config["seeds"])
    return {key: seeds * sum(size[key] for size in sizes) for key in ("model", "checkpoints")}
