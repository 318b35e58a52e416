"""docs/cluster.md's per-run table for a config: each run's estimated peak GPU memory per stage
(della/cluster/gpu_memory.py), the smallest card it fits, and the disk it leaves (della/cluster/disk.py).

    della-bench gpu-memory --configfile config/paper.yaml
"""

from __future__ import annotations

from della.cluster.disk import run_disk_bytes
from della.cluster.gpu_memory import MATERIALISED, STAGES, needed_gib, run_need, run_peaks, smallest_card, table_runs


def markdown_table(config: dict) -> str:
    """docs/cluster.md's table: each run's estimated peak per stage (GiB, fp32, fused attention),
    training's with materialised attention, the floor the token budgets allow, the smallest
    card the run's jobs fit with the CUDA context and fragmentation added, and the disk one seed
    of the run leaves (della/cluster/disk.py)."""
    lines = [
        "| dataset | model | train | train (materialised) | generate | evaluate | floor | smallest card (GB) "
        "| disk per seed (GB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for dataset, model in table_runs(config):
        peaks = run_peaks(config, dataset, model)
        if peaks is None:
            continue
        eager = run_peaks(config, dataset, model, MATERIALISED)["train"]
        _, floor = run_need(config, dataset, model)
        card = smallest_card(needed_gib(floor))
        cells = [f"{peaks[s].gib():.1f}" for s in STAGES]
        disk = run_disk_bytes(config, dataset, model)
        lines.append(
            f"| {dataset} | {model} | {cells[0]} | {eager.gib():.1f} | {cells[1]} | {cells[2]} | "
            f"{floor.gib():.1f} | {card or 'none'} | {sum(disk.values()) / 1e9:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from snakemake.utils import validate

    from della.pipeline import overlays

    parser = argparse.ArgumentParser(description="Estimated peak GPU memory of every run of a config (Markdown).")
    parser.add_argument(
        "--configfile",
        nargs="+",
        required=True,
        help="the workflow's config files, later ones overriding (as snakemake --configfile)",
    )
    parser.add_argument("--schema", default="config/schema.yaml")
    args = parser.parse_args(argv)
    config: dict = {}
    for path in args.configfile:  # merged as Snakemake merges them, then composed as the workflow does
        config = overlays.merge(config, overlays.read_yaml(path))
    config = overlays.compose(config)
    validate(config, args.schema, set_default=True)
    sys.stdout.write(markdown_table(config))
    return 0
