"""The small scale (config/small.yaml): its DAG schedules every run of its experiments, its data is
the shipped archive its checksum names, and one of its training runs takes its first steps on the
real small data, tokenizer and backbone with exactly the config's settings.

The full small run takes over an hour on 2 cores; its outputs are committed under results/small/.
Expected numbers come from the config, never written down.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from della.pipeline import overlays

from helpers import ROOT
from helpers.workflow import job_stats, run, target_dry_run

SMALL = ROOT / "config" / "small.yaml"


@pytest.fixture(scope="module")
def small() -> dict:
    return overlays.load(SMALL)


def test_small_dry_run_schedules_every_run_of_its_experiments(small, tmp_path):
    all_runs = set()
    for target in small["experiments"]:
        runs, _ = target_dry_run(tmp_path, small, SMALL, target)
        all_runs |= runs
    everything = job_stats(run(tmp_path, SMALL, "-n", "--quiet", "rules").stdout)
    trained = {r for r in all_runs if "decodes" not in small["models"].get(r[1], {})}
    assert everything["train"] == len(trained) < len(all_runs)
    assert everything["generate"] == everything["evaluate"] == len(all_runs)
    # one backbone per run seed (backbone_init: per_seed), each seed of every run
    assert small["backbone_init"] == "per_seed" and len(small["seeds"]) >= 3
    assert everything["create_backbone"] == len(small["backbones"]) * len(small["seeds"])
    assert {seed for _, _, seed in all_runs} == set(small["seeds"]) and everything["train_tokenizer"] == 1
    assert everything["preprocess"] == len(small["datasets"])
    # the experiments the small scale exists for (issue 17): never fewer
    assert {"table1", "table4", "fig2"} <= set(small["experiments"])


def test_small_data_is_the_shipped_archive_its_config_pins(small):
    for name, dataset in small["datasets"].items():
        for entry in dataset["source"]["files"]:
            path = ROOT / entry["url"].removeprefix("file:")
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], name


@pytest.mark.parametrize("name", ["yelp", "yahoo"])
def test_small_data_has_no_test_text_in_its_training_split(small, tmp_path, name):
    """A generated dataset's overlap is a bug in its generator (issue 30): no valid or test text
    of the small data is a training text, as preprocessing counts it."""
    from della.data.preprocess import preprocess_dataset

    dataset = small["datasets"][name]
    raw_dir = ROOT / Path(dataset["source"]["files"][0]["url"].removeprefix("file:")).parent
    overlap = preprocess_dataset(name, raw_dir, tmp_path / "data", dataset["preprocess"])["overlap_with_train"]
    assert overlap["valid"]["text_in_train"] == overlap["test"]["text_in_train"] == 0
    assert overlap["valid"]["examples"] == overlap["test"]["examples"] == 1000


def test_the_generator_redraws_a_held_out_text_seen_in_training():
    import random

    from tools.sample_generator.common import unseen_splits

    rng = random.Random(0)
    sizes = {"train": 6, "valid": 3, "test": 3}
    splits = unseen_splits(sizes, lambda: rng.choice("abcdefgh"), lambda item: item, "toy")
    assert {split: len(items) for split, items in splits.items()} == sizes
    assert not set(splits["train"]) & (set(splits["valid"]) | set(splits["test"]))
    with pytest.raises(RuntimeError, match="toy: no valid text outside the training split in 1000 draws"):
        unseen_splits(sizes, lambda: "a", lambda item: item, "toy")  # one possible text


def test_a_small_training_run_takes_its_first_steps(small, tmp_path):
    from della.data.preprocess import preprocess_dataset
    from della.models.backbone import BackboneSize, create_backbone
    from della.models.vae import VAEConfig
    from della.pipeline.targets import train_settings
    from della.run.tokenizer import train_tokenizer
    from della.run.train import TrainSettings, train

    dataset = small["datasets"]["yelp"]
    raw_dir = ROOT / Path(dataset["source"]["files"][0]["url"].removeprefix("file:")).parent
    stats = preprocess_dataset("yelp", raw_dir, tmp_path / "data", dataset["preprocess"])
    assert stats["splits"] == {"train": 10000, "valid": 1000, "test": 1000}
    assert set(stats["labels"]) == {"review_label", "business", "persona"}
    train_tokenizer(
        [tmp_path / "data" / "train.jsonl"],
        small["tokenizer"]["vocab_size"],
        small["tokenizer"]["min_frequency"],
        tmp_path / "tokenizer",
    )
    backbone = small["backbones"]["gpt2"]
    create_backbone(
        backbone["kind"],
        BackboneSize(**backbone["create"]),
        tmp_path / "tokenizer",
        tmp_path / "gpt2",
        small["backbone_seed"],
    )
    settings = train_settings(small, "yelp", "della")  # what the train rule passes
    settings["decoder"] = {**backbone, "name_or_path": str(tmp_path / "gpt2")}
    steps = 3
    # log every step: a setting that leaves the weights alone (della.run.train.RESUMABLE_CHANGES)
    training = TrainSettings(**{**settings["training"], "log_every": 1})
    assert (
        train(
            VAEConfig.from_settings(settings),
            training,
            tmp_path / "data" / "train.jsonl",
            tmp_path / "run",
            seed=0,
            stop_after_steps=steps,
        )
        is None
    )  # stopped after a checkpoint, as if preempted
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == steps and state["settings"]["max_steps"] == small["training"]["max_steps"]
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3]
    n_layers = backbone["create"]["layers"]
    assert all(torch.isfinite(torch.tensor(e["loss"])) and len(e["kl_per_group"]) == n_layers for e in log)
    assert log[0]["beta"] == small["training"]["beta_min"]  # the cyclical schedule starts low
