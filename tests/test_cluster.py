"""The paper-scale workflow as a SLURM cluster sees it, without SLURM: the `slurm` profile is found
by name from the repository root and parses, a dry run through it asks for GPUs on the GPU rules
only (with the memory and walltime the config derives from the paper's Table 6), and the paper
config's dry run schedules, for every table and figure target, the runs its experiment lists.

The paper config's download sources are replaced by the sample config's (file: URLs of the shipped
sample data, same file layout; the real downloads are not here); nothing else of config/paper.yaml
changes. Expected numbers are computed from the
configs, never written down.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import yaml

from della.cluster.gpu_memory import gpu_model_for
from della.pipeline import overlays

from helpers import ROOT
from helpers.workflow import (
    GPU_RULES,
    expected_walltime_and_memory,
    job_stats,
    run,
    snakemake,
    target_dry_run,
    write_config,
)

# the rules the workflow runs where snakemake runs (`localrules:` blocks), never sent to SLURM
LOCAL_RULES = {
    name
    for path in (ROOT / "workflow" / "rules").glob("*.smk")
    for block in re.findall(r"^localrules:\n((?:    \w+,?\n)+)", path.read_text(), re.M)
    for name in re.findall(r"\w+", block)
}
CLUSTER = {
    "account": "lab",
    "partition": "cpu",
    "gpu_partition": "gpu",
    "gpu_model": "a100",
    "constraint": None,
    "time_limit_warning_s": 600,
}


def paper_config() -> dict:
    config = overlays.load("config/paper.yaml")
    sample = overlays.load("config/config.yaml")
    for name, dataset in config["datasets"].items():
        dataset["source"] = sample["datasets"][name]["source"]
    config["cluster"] = dict(CLUSTER)
    return config


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("paper")
    config = paper_config()
    return workdir, config, write_config(workdir / "paper.yaml", config)


def scheduled_jobs(output: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(rule, wildcards, resources) of every job a dry run prints."""
    jobs = []
    for block in re.split(r"^rule ", output, flags=re.M)[1:]:
        rule = block.split(":", 1)[0]
        fields = dict(re.findall(r"^    (\w+): (.*)$", block, re.M))
        wildcards = dict(item.split("=", 1) for item in fields.get("wildcards", "").split(", ") if item)
        resources = dict(item.split("=", 1) for item in fields["resources"].split(", "))
        jobs.append((rule, wildcards, resources))
    return jobs


def test_slurm_profile_is_found_by_name_from_the_repository_root():
    import snakemake_executor_plugin_slurm  # noqa: F401  (the executor the profile names is installed)
    from snakemake.cli import get_profile_dir

    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        profile_dir, profile_file = (Path(p).resolve() for p in get_profile_dir("slurm"))
    finally:
        os.chdir(cwd)
    assert profile_dir == ROOT / "slurm"
    profile = yaml.safe_load(profile_file.read_text())
    assert profile["executor"] == "slurm"
    assert profile["retries"] >= 1
    # account/partition/GPU type are config values (`cluster:`), not profile edits
    assert not {"slurm_account", "slurm_partition", "gpu_model"} & set(profile.get("default-resources", {}))


def test_profile_dry_run_requests_gpus_on_gpu_rules_only(paper):
    workdir, config, config_file = paper
    result = run(workdir, config_file, "--profile", "slurm", "-n", targets=["table5", "table7", "fig3"])
    jobs = scheduled_jobs(result.stdout + result.stderr)
    assert {rule for rule, _, _ in jobs} >= {*GPU_RULES, "preprocess", "render_data_table"}
    for rule, wildcards, resources in jobs:
        if rule in GPU_RULES:
            assert resources["gpu"] == "1" and resources["gpu_model"] == CLUSTER["gpu_model"], (rule, resources)
            assert resources["slurm_partition"] == CLUSTER["gpu_partition"]
            minutes, mem_mb = expected_walltime_and_memory(config, rule, wildcards["dataset"], wildcards["model"])
            assert int(resources["runtime"]) == minutes, (rule, wildcards, resources)
            assert int(resources["mem_mb"]) == mem_mb
            # training alone is warned before its time limit (it checkpoints); the others are not
            warning = f"'--signal=USR1@{config['cluster']['time_limit_warning_s']}'"
            assert resources.get("slurm_extra") == (warning if rule == "train" else None), (rule, resources)
        elif rule in ("preprocess", "render_data_table", "render_metrics_table"):
            assert "gpu" not in resources and "gpu_model" not in resources, (rule, resources)
            assert resources["slurm_partition"] == CLUSTER["partition"]
        # every job sent to SLURM carries the account (local rules run where snakemake does)
        # (a target rule, `snakemake table4`, has no command: nothing to submit)
        targets = {"all", *config["experiments"], *config.get("data_tables", [])}
        if rule not in LOCAL_RULES | targets:
            assert resources.get("slurm_account") == CLUSTER["account"], (rule, resources)


def test_paper_dry_run_schedules_every_run_of_every_table(paper):
    workdir, config, config_file = paper
    tables = yaml.safe_load((ROOT / config["tables_spec"]).read_text())["tables"]
    # what renders each kind of table (a human table: its forms, until annotators fill them)
    render_jobs = {
        "metrics": lambda spec: {"render_metrics_table": 1},
        "benchmark": lambda spec: {"render_benchmark_table": 1},
        "human": lambda spec: {"human_eval_export": len(spec["datasets"])},
    }
    all_render_rules = {rule for kind in render_jobs.values() for rule in kind({"datasets": []})}
    all_runs = set()
    for target in config["experiments"]:
        runs, stats = target_dry_run(workdir, config, config_file, target)
        all_runs |= runs
        assert stats["preprocess"] == len({d for d, _, _ in runs}), (target, stats)
        expected = render_jobs[tables[target]["kind"]](tables[target]) if target in tables else {}
        # companion tables (`runs_from`) show other metrics of the same runs: rendered with it
        companions = sum(spec.get("runs_from") == target for spec in tables.values())
        if companions:
            expected["render_metrics_table"] = expected.get("render_metrics_table", 0) + companions
        assert {rule: n for rule, n in stats.items() if rule in all_render_rules} == expected, (target, stats)
        assert "create_backbone" not in stats and "train_tokenizer" not in stats  # pretrained by name
    for target in config["data_tables"]:
        stats = job_stats(run(workdir, config_file, "-n", "--quiet", "rules", targets=[target]).stdout)
        n = len(config["datasets"])
        # the statistics reach the table through metrics.csv's `data` part (rule tidy_experiment),
        # with the texts each dataset's limits cut (count_lengths, with the datasets' backbones'
        # tokenizers, prefetched: GPT-2's and BART's)
        backbones = {config["datasets"][d]["backbone"] for d in config["datasets"]}
        assert stats == {
            "download": n,
            "preprocess": n,
            "count_lengths": n,
            "prefetch_model": len(backbones),
            "tidy_experiment": 1,
            "render_data_table": 1,
            target: 1,
        }
    everything = job_stats(run(workdir, config_file, "-n", "--quiet", "rules").stdout)
    assert everything["train"] == len(all_runs)


def test_an_unknown_name_is_an_error_naming_its_key(paper, tmp_path):
    workdir, config, _ = paper
    config = copy.deepcopy(config)
    config["experiments"]["table4"]["models"].append("della_typo")
    result = snakemake(workdir, write_config(tmp_path / "bad.yaml", config), "-n")
    assert result.returncode != 0
    assert "experiments.table4.models: 'della_typo'" in result.stdout + result.stderr


def test_gpu_models_send_each_run_to_the_smallest_card_its_estimate_fits(paper, tmp_path):
    """With `cluster.gpu_models`, each GPU job's --gpus type is the smallest card its run's
    estimated need fits (della/cluster/gpu_memory.py): WritingPrompts' latent models need more than 24 GB
    (about 38), CNN/DM's less."""
    workdir, config, _ = paper
    config = copy.deepcopy(config)
    config["cluster"]["gpu_models"] = {"small": 24, "big": 48}
    result = run(workdir, write_config(tmp_path / "cards.yaml", config), "--profile", "slurm", "-n", targets=["table2"])
    chosen = {
        (w["dataset"], w["model"]): r["gpu_model"]
        for rule, w, r in scheduled_jobs(result.stdout + result.stderr)
        if rule in GPU_RULES
    }
    assert chosen[("writingprompts", "della")] == "big" and chosen[("cnn_dailymail", "della")] == "small"
    assert chosen == {run: gpu_model_for(config, *run) for run in chosen}


def test_a_run_no_card_fits_stops_the_workflow_naming_it(paper, tmp_path):
    workdir, config, _ = paper
    config = copy.deepcopy(config)
    config["cluster"]["gpu_models"] = {"small": 24}
    result = snakemake(workdir, write_config(tmp_path / "small_cards.yaml", config), "-n", targets=["table2"])
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "datasets.writingprompts (model " in output and "more than every card of cluster.gpu_models" in output
    assert "lower training.batch_size" in output and "Traceback" not in output
