"""What a train / generate / evaluate job asks the cluster for: GPUs, host memory, walltime, the
card, the account and partition (docs/cluster.md). The arithmetic lives here, tested without
Snakemake (tests/test_resources.py); workflow/rules/common.smk only hands the numbers to the rules.

Per (dataset, model): the `resources` section, the dataset's training GPU-hours (its
`resources.gpu_hours` entry, else the paper's Table 6), then each matching `resources.runs` entry
in order. Walltime = GPU-hours x runtime_factor x the stage's share, within the min/max minutes; a
retry after a time limit asks for `time_factor` of it and after a kill or host out-of-memory for
`memory_factor` of the memory, up to max_mem_mb (della/cluster/attempts.py's `retry_for`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from della.cluster.gpu_memory import larger_card

# the Table 6 column the paper prints for DELLA's training time (results/paper_tables.csv)
PAPER_TIMES_TABLE = "table6"
# the per-run keys a `resources.runs` entry may override
RUN_KEYS = ("gpus", "mem_mb", "gpu_hours", "runtime_factor")
# Snakemake resource -> `cluster` key, for CPU rules and for GPU rules
CPU_CLUSTER_KEYS = {"slurm_account": "account", "slurm_partition": "partition"}
GPU_CLUSTER_KEYS = {"slurm_account": "account", "slurm_partition": "gpu_partition", "constraint": "constraint"}


def paper_gpu_hours(paper_tables: Path) -> dict[str, float]:
    """dataset -> training GPU-hours printed in the paper's Table 6 (DELLA, RTX 3090), read by the
    tables' own reader of paper_tables.csv (which names a malformed line)."""
    from della.report.tables import read_paper

    return {dataset: value for (dataset, _, _), value in read_paper(paper_tables, PAPER_TIMES_TABLE).items()}


@dataclass(frozen=True)
class RunResources:
    """The resources of one (dataset, model), before any retry."""

    gpus: int
    mem_mb: int
    gpu_hours: float
    runtime_factor: float


def run_resources(
    section: dict,
    paper_hours: dict[str, float],
    dataset: str,
    model: str,
    model_names: Callable[[list[str], str], list[str]] = lambda names, where: names,
    known_datasets: Collection[str] | None = None,
    where_paper: str = "results/paper_tables.csv",
) -> RunResources:
    """The `resources` section for one (dataset, model); `model_names` expands an entry's model
    names (a Fig. 2 sweep's name stands for its models) and names one that is in no config; an
    entry's dataset not among `known_datasets` (the config's) is an error naming the entry."""
    gpu_hours = section.get("gpu_hours", {}).get(dataset, paper_hours.get(dataset))
    if gpu_hours is None:
        raise ValueError(f"resources.gpu_hours: no entry for dataset {dataset!r} and none in Table 6 of {where_paper}")
    values = {key: section[key] for key in RUN_KEYS if key != "gpu_hours"} | {"gpu_hours": gpu_hours}
    for i, entry in enumerate(section.get("runs", [])):
        models = model_names(entry.get("models", [model]), f"resources.runs[{i}].models")
        unknown = [name for name in entry.get("datasets", []) if name not in (known_datasets or entry["datasets"])]
        if unknown:
            raise ValueError(f"resources.runs[{i}].datasets: {unknown[0]!r} is not in `datasets`")
        if dataset in entry.get("datasets", [dataset]) and model in models:
            values.update({key: value for key, value in entry.items() if key in RUN_KEYS})
    return RunResources(**values)


def runtime_minutes(section: dict, run: RunResources, stage: str, time_factor: int = 1) -> int:
    """Walltime of a job of `stage`: a retry after a time limit resumes from its checkpoint, and
    more time still lets a job whose estimate was too short finish (della/cluster/attempts.py)."""
    hours = run.gpu_hours * run.runtime_factor * section["stage_share"][stage]
    minutes = math.ceil(hours * 60 * time_factor)
    return min(max(minutes, section["min_runtime_minutes"]), section["max_runtime_minutes"])


def host_memory_mb(section: dict, run: RunResources, memory_factor: int = 1) -> int:
    """Host memory of a job: `memory_factor` times the run's, up to max_mem_mb (never below the
    run's own: an override may ask for more than the cap)."""
    cap = max(run.mem_mb, section["max_mem_mb"])
    return min(run.mem_mb * memory_factor, cap)


def gpu_model(cluster: dict, run: RunResources, estimated_card: str | None, ran_out_on_gb: float | None) -> str | None:
    """The card of a run's GPU jobs: the one its estimate fits (`estimated_card`, from
    cluster.gpu_models), else cluster.gpu_model; after GPU out-of-memory on a card of
    `ran_out_on_gb`, the next larger card of cluster.gpu_models. None for a CPU job."""
    if run.gpus == 0:
        return None  # --gpus only for jobs with GPUs (None drops the resource)
    card = estimated_card or cluster.get("gpu_model")
    if ran_out_on_gb is not None and cluster.get("gpu_models"):
        # none larger: the job stops at start (della/cluster/attempts.py, RepeatedOutOfMemory)
        card = larger_card(cluster["gpu_models"], ran_out_on_gb) or card
    return card


def cluster_resources(cluster: dict, keys: dict[str, str]) -> dict[str, str]:
    """The account, partition (and for GPU jobs the constraint) the config sets; unset ones are
    left to the cluster's defaults."""
    return {resource: cluster[key] for resource, key in keys.items() if cluster.get(key)}


def time_limit_signal(cluster: dict, stage: str) -> dict[str, str]:
    """SLURM warns training before its time limit (`--signal=USR1@s`); it checkpoints and exits,
    and its retry resumes (della/run/train.py; a job step's Snakemake ignores it, della/pipeline/jobenv.py)."""
    warning = cluster.get("time_limit_warning_s")
    return {"slurm_extra": f"'--signal=USR1@{warning}'"} if stage == "train" and warning else {}
