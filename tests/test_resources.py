"""The cluster resources of a job (della/cluster/resources.py), computed by hand from the rule
docs/cluster.md states, without Snakemake: the workflow's dry runs (tests/test_cluster.py) check
that the rules ask for these numbers."""

import pytest

from della.cluster.resources import (
    CPU_CLUSTER_KEYS,
    GPU_CLUSTER_KEYS,
    RunResources,
    cluster_resources,
    gpu_model,
    host_memory_mb,
    paper_gpu_hours,
    run_resources,
    runtime_minutes,
    time_limit_signal,
)
from della.report.table_spec import TableError

from helpers import ROOT

SECTION = {
    "gpus": 1,
    "mem_mb": 32000,
    "max_mem_mb": 128000,
    "runtime_factor": 1.5,
    "min_runtime_minutes": 30,
    "max_runtime_minutes": 2880,
    "stage_share": {"train": 1.0, "generate": 0.25, "evaluate": 0.1},
    "gpu_hours": {"ptb": 2.0},
    "runs": [
        {"models": ["della_medium"], "runtime_factor": 3.0, "mem_mb": 48000},
        {"datasets": ["cnn_dailymail"], "mem_mb": 64000},
        {"datasets": ["cnn_dailymail"], "models": ["della_cpu"], "gpus": 0},
    ],
}
PAPER_HOURS = {"yelp": 20.0, "ptb": 6.0, "cnn_dailymail": 30.0}
DATASETS = ("yelp", "ptb", "cnn_dailymail")


def resources(dataset: str, model: str) -> RunResources:
    return run_resources(SECTION, PAPER_HOURS, dataset, model, known_datasets=DATASETS)


def test_a_run_takes_the_section_then_its_gpu_hours_then_each_matching_entry_in_order():
    assert resources("yelp", "della") == RunResources(gpus=1, mem_mb=32000, gpu_hours=20.0, runtime_factor=1.5)
    # the config's GPU-hours win over the paper's Table 6
    assert resources("ptb", "della").gpu_hours == 2.0
    assert resources("yelp", "della_medium") == RunResources(1, 48000, 20.0, 3.0)
    # both entries match: the later one's memory wins, the earlier one's factor stays
    assert resources("cnn_dailymail", "della_medium") == RunResources(1, 64000, 30.0, 3.0)
    assert resources("cnn_dailymail", "della_cpu").gpus == 0


def test_walltime_is_gpu_hours_times_factor_times_share_within_the_limits():
    yelp = resources("yelp", "della")
    assert runtime_minutes(SECTION, yelp, "train") == 20 * 1.5 * 60  # 1,800
    assert runtime_minutes(SECTION, yelp, "generate") == 450  # 20 x 1.5 x 0.25 h
    assert runtime_minutes(SECTION, yelp, "train", time_factor=2) == 2880  # 3,600, capped
    assert runtime_minutes(SECTION, resources("ptb", "della"), "evaluate") == 30  # 18, raised to the minimum
    odd = RunResources(gpus=1, mem_mb=1, gpu_hours=1 / 3, runtime_factor=1.0)
    assert runtime_minutes({**SECTION, "min_runtime_minutes": 1}, odd, "evaluate") == 2  # 2.0000001 rounds up


def test_a_retry_asks_for_more_memory_up_to_the_cap_never_below_the_run_own():
    yelp = resources("yelp", "della")
    assert [host_memory_mb(SECTION, yelp, factor) for factor in (1, 2, 4, 5)] == [32000, 64000, 128000, 128000]
    big = RunResources(gpus=1, mem_mb=200000, gpu_hours=1.0, runtime_factor=1.0)
    assert host_memory_mb(SECTION, big, 3) == 200000  # an override above max_mem_mb stands


def test_unknown_names_and_missing_gpu_hours_are_errors_naming_the_key():
    with pytest.raises(ValueError, match=r"resources.gpu_hours: no entry for dataset 'quora'"):
        run_resources(SECTION, PAPER_HOURS, "quora", "della")
    bad = {**SECTION, "runs": [{"datasets": ["yelpp"], "mem_mb": 1}]}
    with pytest.raises(ValueError, match=r"resources.runs\[0\].datasets: 'yelpp' is not in `datasets`"):
        run_resources(bad, PAPER_HOURS, "yelp", "della", known_datasets=DATASETS)

    def model_names(names, where):
        raise ValueError(f"{where}: {names[0]!r} is neither in `models` nor in `latent_layer_sweeps`")

    with pytest.raises(ValueError, match=r"resources.runs\[0\].models: 'della_medium'"):
        run_resources(SECTION, PAPER_HOURS, "yelp", "della", model_names=model_names)


def test_the_card_is_the_estimate_then_the_default_then_larger_after_running_out():
    cluster = {"gpu_model": "v100", "gpu_models": {"a100": 40, "h100": 80}}
    run = resources("yelp", "della")
    assert gpu_model(cluster, run, "a100", None) == "a100"
    assert gpu_model(cluster, run, None, None) == "v100"
    assert gpu_model(cluster, run, "a100", 39.4) == "h100"  # CUDA's GiB of a 40 GB card
    assert gpu_model(cluster, run, "h100", 79.1) == "h100"  # none larger: it stops at start
    assert gpu_model({"gpu_model": "v100"}, run, None, 15.8) == "v100"  # no list to grow in
    assert gpu_model(cluster, resources("cnn_dailymail", "della_cpu"), "a100", None) is None


def test_cluster_keys_and_the_time_limit_warning():
    cluster = {"account": "lab", "partition": None, "gpu_partition": "gpu", "time_limit_warning_s": 600}
    assert cluster_resources(cluster, CPU_CLUSTER_KEYS) == {"slurm_account": "lab"}
    assert cluster_resources(cluster, GPU_CLUSTER_KEYS) == {"slurm_account": "lab", "slurm_partition": "gpu"}
    assert time_limit_signal(cluster, "train") == {"slurm_extra": "'--signal=USR1@600'"}
    assert time_limit_signal(cluster, "evaluate") == {}
    assert time_limit_signal({}, "train") == {}


def test_paper_gpu_hours_come_from_table6_of_the_paper_tables(tmp_path):
    hours = paper_gpu_hours(ROOT / "results" / "paper_tables.csv")
    assert set(hours) == {"yelp", "yahoo", "ptb", "snli", "cnn_dailymail", "writingprompts", "quora"}
    assert hours["yelp"] == 20.0 and hours["ptb"] == 6.0
    twice = tmp_path / "paper.csv"
    twice.write_text(
        "table,dataset,model,metric,value\n"
        "table6,yelp,DELLA,GPU-hours (RTX 3090),20\n"
        "table6,yelp,DELLA,GPU-hours (RTX 3090),21\n"
    )
    with pytest.raises(TableError, match=r"paper.csv:3: duplicate paper value"):
        paper_gpu_hours(twice)
