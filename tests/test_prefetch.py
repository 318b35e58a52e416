"""Models fetched once, pinned, read offline (della/pipeline/prefetch.py): a local folder stands in for the
hub (`model_hub_mirror`, the same rule and code but the transfer), the workflow's jobs read the
prefetched copy with the hub offline, an unpinned hub name stops the workflow at start-up, and a
job that finds its model missing names the prefetch target."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from della.models.backbone import BackboneSize, check_source, create_backbone
from della.pipeline import overlays
from della.pipeline.jobenv import OFFLINE
from della.pipeline.prefetch import DONE_FILE, PREFETCH_TARGET, prefetch

from helpers.workflow import snakemake, write_config

SAMPLE_CONFIG = overlays.load("config/config.yaml")
HUB_NAME = "tiny-org/tiny-gpt2"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def mirror(tiny_backbones, tmp_path_factory) -> Path:
    """A folder standing in for the hub: <hub name>/ holds a repository's files."""
    root = tmp_path_factory.mktemp("hub")
    create_backbone("causal", BackboneSize(2, 32, 4, 160), tiny_backbones["tokenizer"], root / HUB_NAME, seed=0)
    return root


def test_prefetch_copies_verifies_and_records(mirror, tmp_path):
    out = tmp_path / "cache" / "gpt2"
    record = prefetch(HUB_NAME, REVISION, out, mirror)
    assert (out / DONE_FILE).is_file() and json.loads((out / DONE_FILE).read_text()) == record
    assert record["name"] == HUB_NAME and record["revision"] == REVISION and str(mirror) in record["source"]
    assert set(record["files"]) >= {"config.json", "model.safetensors"}
    assert record["files"]["config.json"]["bytes"] == (mirror / HUB_NAME / "config.json").stat().st_size
    assert not out.with_name("gpt2.partial").exists()
    # read offline, as a job reads it
    code = "from transformers import AutoModelForCausalLM as M; import sys; M.from_pretrained(sys.argv[1])"
    env = {**os.environ, **OFFLINE}
    subprocess.run([sys.executable, "-c", code, str(out)], env=env, check=True, timeout=300)


def test_a_model_missing_from_the_mirror_is_named_and_leaves_nothing(mirror, tmp_path):
    out = tmp_path / "cache" / "bart"
    with pytest.raises(FileNotFoundError, match="model_hub_mirror .* has no tiny-org/absent/config.json"):
        prefetch("tiny-org/absent", REVISION, out, mirror)
    assert not out.exists()


def test_a_job_whose_model_is_missing_names_the_prefetch_target(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"`snakemake {PREFETCH_TARGET}`"):
        check_source(str(tmp_path / "models" / "hub" / "gpt2"))


def pinned_sample_config(mirror: Path) -> dict:
    config = copy.deepcopy(SAMPLE_CONFIG)
    config["backbones"]["gpt2"] = {"kind": "causal", "label": "GPT-2", "name_or_path": HUB_NAME, "revision": REVISION}
    config["model_hub_mirror"] = str(mirror)
    return config


def test_the_workflow_prefetches_once_and_its_jobs_read_the_cache_offline(mirror, tmp_path):
    """SNLI's GPT-2 is a pinned hub model, and MAUVE's feature model names it too: the prefetch rule
    copies it into models/hub/gpt2 once, and count_lengths, training, generation and evaluation
    read it there, with the hub offline in their environment. The numbers record the hub name and
    revision, not the cache's folder: beside every metric (metrics.json's `hub_models`, the
    versions column of metrics.csv) and in MAUVE's settings."""
    work = tmp_path / "work"
    work.mkdir()
    config = pinned_sample_config(mirror)
    config["evaluation"]["mauve"]["feature_model"] = HUB_NAME
    config_file = write_config(tmp_path / "config.yaml", config)
    metrics_file = "runs/snli/finetune/seed0/metrics.json"
    targets = ["data/snli/lengths.json", "runs/snli/finetune/seed0/train_done.json", metrics_file]
    result = snakemake(work, config_file, targets=targets)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    record = json.loads((work / "models" / "hub" / "gpt2" / DONE_FILE).read_text())
    assert record["revision"] == REVISION
    assert json.loads((work / "data" / "snli" / "lengths.json").read_text())["tokenizer"] == "models/hub/gpt2"
    saved = json.loads((work / "runs" / "snli" / "finetune" / "seed0" / "model" / "config.json").read_text())
    assert saved["decoder"] == "models/hub/gpt2"  # generate and evaluate rebuild it from there
    assert (result.stdout + result.stderr).count("rule prefetch_model:") == 1
    metrics = json.loads((work / metrics_file).read_text())
    assert metrics["hub_models"] == {
        "decoder": f"{HUB_NAME}@{REVISION}",
        "mauve feature_model": f"{HUB_NAME}@{REVISION}",
    }
    mauve = metrics["metrics"]["MAUVE"]["settings"]
    assert (mauve["feature_model"], mauve["feature_model_revision"], mauve["feature_model_path"]) == (
        HUB_NAME,
        REVISION,
        "models/hub/gpt2",
    )
    # a second start prefetches nothing
    again = snakemake(work, config_file, "-n", targets=targets)
    assert again.returncode == 0 and "prefetch_model" not in again.stdout + again.stderr


def test_an_unpinned_hub_name_stops_the_workflow_at_start_up(mirror, tmp_path):
    config = pinned_sample_config(mirror)
    del config["backbones"]["gpt2"]["revision"]
    result = snakemake(tmp_path, write_config(tmp_path / "config.yaml", config), "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"backbones.gpt2: '{HUB_NAME}' is neither a local folder nor pinned: add `revision: <commit hash>`" in output
    config = pinned_sample_config(mirror)
    config["evaluation"]["mauve"]["feature_model"] = "some-org/unpinned"
    result = snakemake(tmp_path, write_config(tmp_path / "feature.yaml", config), "-n")
    assert result.returncode != 0
    assert "feature model 'some-org/unpinned' is neither a local folder nor a backbone's name" in (
        result.stdout + result.stderr
    )


def test_the_paper_config_pins_every_model_it_loads():
    paper = overlays.load("config/paper.yaml")
    names = {entry["name_or_path"] for entry in paper["backbones"].values()}
    assert {paper["evaluation"]["mauve"]["feature_model"], paper["evaluation"]["bertscore"]["model"]} <= names
    assert all(len(entry["revision"]) == 40 for entry in paper["backbones"].values())
