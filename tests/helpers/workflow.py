"""Running the workflow in tests: tiny configs, the snakemake command line, dry runs and job statistics."""

from __future__ import annotations

import csv
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from della.pipeline import overlays
from della.pipeline.targets import snakemake_command as workflow_command

from helpers import ROOT

TINY_TABLES = ("table1", "table9")


def tiny_config() -> dict:
    config = overlays.load("config/config.yaml")
    config["experiments"] = {name: config["experiments"][name] for name in TINY_TABLES}
    for dataset in config["datasets"].values():
        dataset["preprocess"]["max_examples"] = {"train": 48, "valid": 16, "test": 16}
        dataset["max_target_tokens"] = min(dataset["max_target_tokens"], 24)
        dataset["max_source_tokens"] = min(dataset["max_source_tokens"], 24)
    for backbone in config["backbones"].values():
        backbone["create"].update(layers=2, hidden=32, heads=2, max_positions=64)
    config["tokenizer"]["vocab_size"] = 400
    config["training"].update(batch_size=8, max_steps=4, warmup_steps=1, log_every=2, checkpoint_every=2)
    config["generation"].update(num_unconditional=16, max_conditional=16, batch_size=16)
    config["generation"]["decoding"]["max_new_tokens"] = 12
    config["evaluation"].update(batch_size=8, max_test_examples=16)
    config["evaluation"]["representation"].update(iw_samples=4, iw_chunk=4)
    return config


def one_run_config() -> dict:
    """The tiny config with one dataset (Yelp) and one run: `fig3`, DELLA on Yelp, and every stage
    from download to a figure."""
    config = tiny_config()
    config["datasets"] = {"yelp": config["datasets"]["yelp"]}
    config["experiments"] = {"fig3": {"datasets": ["yelp"], "models": ["della"]}}
    config["data_tables"] = []  # Table 7 lists all seven datasets
    return config


def snakemake_command(
    workdir: Path, config_file: Path | list[Path], *extra: str, targets=(), python: Path = Path(sys.executable)
) -> tuple[list[str], dict]:
    """The command line and environment of a Snakemake run in `workdir` by `python` (its bin/
    first on PATH, as after `. .venv/bin/activate`); several config files overlay in order."""
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}
    command = workflow_command(workdir, config_file, "--cores", "2", *extra, targets=targets, python=python)
    return command, env


def snakemake(workdir: Path, config_file: Path | list[Path], *extra: str, targets=()) -> subprocess.CompletedProcess:
    """Run from the repository root, as a user would type it there (so `--profile slurm` resolves)."""
    command, env = snakemake_command(workdir, config_file, *extra, targets=targets)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=1500)


def job_stats(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs ({} when nothing is to be done)."""
    if "Job stats:" not in output:
        return {}
    block = output.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", block, re.M)}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


GPU_RULES = ("train", "generate", "evaluate")


def run(workdir: Path, config_file: Path, *args: str, targets=()) -> subprocess.CompletedProcess:
    result = snakemake(workdir, config_file, *args, targets=targets)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def sweep_names(config: dict) -> dict[str, list[str]]:
    return {
        sweep: [f"{sweep}_from{s}" for s in spec["starts"]] + [f"{sweep}_to{e}" for e in spec["ends"]]
        for sweep, spec in config.get("latent_layer_sweeps", {}).items()
    }


def expected_runs(config: dict, experiment: str) -> set[tuple[str, str, int]]:
    spec = config["experiments"][experiment]
    sweeps = sweep_names(config)
    models = [m for name in spec["models"] for m in sweeps.get(name, [name])]
    return {(d, m, s) for d in spec["datasets"] for m in models for s in config["seeds"]}


def target_dry_run(workdir: Path, config: dict, config_file: Path, target: str) -> tuple[set, dict[str, int]]:
    """The runs `experiments.<target>` lists and the job counts of the target's dry run, checked to
    generate and evaluate each run once and to train each run but a decoding entry's (`decodes:`)."""
    runs = expected_runs(config, target)
    stats = job_stats(run(workdir, config_file, "-n", "--quiet", "rules", targets=[target]).stdout)
    trained = {r for r in runs if "decodes" not in config["models"].get(r[1], {})}
    for rule in GPU_RULES:
        assert stats.get(rule) == len(trained if rule == "train" else runs), (target, rule, stats)
    return runs, stats


def expected_walltime_and_memory(
    config: dict, stage: str, dataset: str, model: str, time_factor: int = 1, memory_factor: int = 1
) -> tuple[int, int]:
    """(minutes, MB) of a train/generate/evaluate job as docs/cluster.md states the rule, computed
    here from the config and the paper's Table 6, not by the workflow's code; a retry asks for
    `time_factor` walltimes and `memory_factor` times the memory (up to max_mem_mb)."""
    with open(ROOT / config["paper_tables"], newline="", encoding="utf-8") as handle:
        table6 = {row["dataset"]: float(row["value"]) for row in csv.DictReader(handle) if row["table"] == "table6"}
    limits = config["resources"]
    entry = {
        "gpu_hours": limits.get("gpu_hours", {}).get(dataset, table6.get(dataset)),
        "runtime_factor": limits["runtime_factor"],
        "mem_mb": limits["mem_mb"],
    }
    for override in limits.get("runs", []):
        if dataset in override.get("datasets", [dataset]) and model in override.get("models", [model]):
            entry.update({k: v for k, v in override.items() if k in entry})
    hours = entry["gpu_hours"] * entry["runtime_factor"] * limits["stage_share"][stage]
    minutes = min(
        max(math.ceil(hours * 60 * time_factor), limits["min_runtime_minutes"]), limits["max_runtime_minutes"]
    )
    return minutes, min(entry["mem_mb"] * memory_factor, max(entry["mem_mb"], limits["max_mem_mb"]))
