"""Disk per run (della/cluster/disk.py, docs/cluster.md): the formula against the files a real training
run writes, and the paper config's totals."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from della.cluster.disk import CHECKPOINTS_KEPT, ELEMENT_BYTES, TENSORS_PER_CHECKPOINT, run_disk_bytes, total_disk_bytes
from della.cluster.gpu_memory import run_parameters, table_runs
from della.models.vae import TransformerVAE, VAEConfig
from della.pipeline import overlays
from della.run.train import TrainSettings, train

from conftest import tiny_corpus

PAPER = overlays.load("config/paper.yaml")
SETTINGS = TrainSettings(
    batch_size=8, learning_rate=3e-3, max_steps=4, warmup_steps=1, log_every=2, checkpoint_every=2, beta_cycles=1
)


def test_the_files_a_run_writes_are_what_the_formula_counts(tiny_backbones, tmp_path):
    """model/weights.pt holds 4 bytes per parameter; each of last.pt and prev.pt the weights and
    AdamW's two moments (plus the random states and a few scalars: kilobytes)."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(32)))
    config = VAEConfig(
        path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=8
    )
    final = train(config, SETTINGS, data, tmp_path / "run", seed=0)
    params = sum(p.numel() for p in TransformerVAE.load(final).parameters())

    def holds(path: Path, tensors: int) -> bool:  # the tensors, and pickled names, steps and random states
        return tensors * ELEMENT_BYTES * params <= path.stat().st_size <= tensors * ELEMENT_BYTES * params + 2**18

    assert holds(final / "weights.pt", 1)
    checkpoints = sorted((tmp_path / "run" / "checkpoints").glob("*.pt"))
    assert len(checkpoints) == CHECKPOINTS_KEPT
    for checkpoint in checkpoints:
        assert holds(checkpoint, TENSORS_PER_CHECKPOINT), (checkpoint, checkpoint.stat().st_size, params)
    # keep_checkpoints: false deletes them once the run is finished
    train(config, replace(SETTINGS, keep_checkpoints=False), data, tmp_path / "lean", seed=0)
    assert (tmp_path / "lean" / "model").is_dir() and not (tmp_path / "lean" / "checkpoints").exists()


def test_the_paper_configs_disk():
    yelp = run_disk_bytes(PAPER, "yelp", "della")
    assert yelp == {"model": ELEMENT_BYTES * run_parameters(PAPER, "yelp", "della"), "checkpoints": 0}  # not kept
    kept = {**PAPER, "training": {**PAPER["training"], "keep_checkpoints": True}}
    assert (
        run_disk_bytes(kept, "yelp", "della")["checkpoints"]
        == CHECKPOINTS_KEPT * TENSORS_PER_CHECKPOINT * yelp["model"]
    )
    runs = table_runs(kept)
    total = total_disk_bytes(kept, runs)
    assert total["checkpoints"] == len(kept["seeds"]) * sum(run_disk_bytes(kept, *run)["checkpoints"] for run in runs)
    assert run_disk_bytes(PAPER, "yelp", "della_medium")["model"] > 2.5 * yelp["model"]
