"""The latent probe (metrics/probe.py): on constructed latents whose information is known, through
the real model and the evaluate command, and in its table (config/tables.yaml `table1_probe`) and
figure (della/report/figures.py `probe`)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from della.pipeline import overlays
from metrics.probe import (
    DEFAULTS,
    MEAN,
    SAMPLE,
    LabelledSplits,
    labelled_splits,
    metric_key,
    parse_metric_key,
    posterior_features,
    probe_metrics,
    training_subset,
)

from conftest import tiny_corpus
from helpers import ROOT
from helpers.probe import probe_values, table_runs, write_run
from helpers.tables import ours_line, render_files, row_cells, tidy_of

PAPER = ROOT / "results" / "paper_tables.csv"
PNG_MAGIC = b"\x89PNG"

# Constructed data: three latent groups of four dimensions; only group 2 carries the label.
N_TRAIN, N_TEST, GROUPS, SIZE = 1500, 500, 3, 4
CLASS_PROBS = [0.6, 0.25, 0.15]  # imbalanced: the majority rate (0.6) is far from chance (1/3)
INFORMATIVE = 2  # 1-based, as in Probe[...]@z2
CLASS_SEPARATION = 3.0  # distance of each class's centre from the origin, in noise standard deviations
# A probe on noise features predicts independently of the test labels, so it cannot beat the
# majority rate beyond chance: allow 3 binomial standard errors of an accuracy on N_TEST examples.
NOISE_TOLERANCE = 3 * math.sqrt(CLASS_PROBS[0] * (1 - CLASS_PROBS[0]) / N_TEST)


class FixedLatents:
    """A model behind the estimator interface whose posterior mean is given: batch {"z": [B, G * P]}."""

    def __init__(self, n_groups: int = GROUPS, latent_size: int = SIZE):
        self.n_groups, self.latent_size, self.training = n_groups, latent_size, False

    def encode(self, batch):
        return batch["z"]

    def posterior_mean(self, enc):
        return enc


def constructed(n: int, seed: int, informative: int | None = INFORMATIVE) -> tuple[torch.Tensor, list[int]]:
    """Latents [n, G * P] of pure N(0, 1) noise, except group `informative`, whose mean is the
    class's centre; labels drawn with CLASS_PROBS."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(CLASS_PROBS), size=n, p=CLASS_PROBS)
    z = rng.standard_normal((n, GROUPS, SIZE))
    if informative is not None:
        centres = np.random.default_rng(0).standard_normal((len(CLASS_PROBS), SIZE))
        centres *= CLASS_SEPARATION / np.linalg.norm(centres, axis=1, keepdims=True)
        z[:, informative - 1] = centres[labels] + 0.5 * z[:, informative - 1]
    return torch.tensor(z.reshape(n, -1)), labels.tolist()


def batched(z: torch.Tensor, size: int = 256) -> list[dict]:
    return [{"z": z[i : i + size]} for i in range(0, len(z), size)]


def probe_on(train, test, settings=None, model=None, name="sentiment") -> dict:
    """The probe on the means alone (the sample and floor probes: their own test)."""
    (z_train, y_train), (z_test, y_test) = train, test
    labelled = LabelledSplits([{}] * len(y_train), {name: y_train}, {name: y_test})
    settings = {"samples": False, "untrained_floor": False, **(settings or {})}
    return probe_metrics(model or FixedLatents(), batched(z_train), batched(z_test), labelled, settings)


class NoisyPosterior(FixedLatents):
    """Posterior means as given, and samples mean + `spread` x N(0, 1) noise."""

    def __init__(self, spread: float):
        super().__init__()
        self.spread = spread

    def sample_posterior(self, enc, k):
        z = enc.unsqueeze(1) + self.spread * torch.randn(enc.shape[0], k, enc.shape[1], dtype=enc.dtype)
        return z, None


class Untrained(FixedLatents):
    """The untrained model's posterior means: the batch's `noise`, which knows no label."""

    def encode(self, batch):
        return batch["noise"]


def test_the_sample_probe_sees_the_spread_and_the_floor_sees_the_untrained_model():
    """Means that separate the classes, under a posterior spread ten times the separation: the
    probe on means reads the label, the probe on samples cannot, and the untrained model's
    (noise) features give the majority rate."""
    (z_train, y_train), (z_test, y_test) = constructed(N_TRAIN, seed=3), constructed(N_TEST, seed=4)
    noise = torch.randn(
        N_TRAIN + N_TEST, z_train.shape[1], generator=torch.Generator().manual_seed(9), dtype=torch.float64
    )

    def with_noise(z, offset):
        return [
            {**b, "noise": noise[offset + i : offset + i + len(b["z"])]}
            for i, b in zip(range(0, len(z), 256), batched(z), strict=True)
        ]

    labelled = LabelledSplits([{}] * N_TRAIN, {"sentiment": y_train}, {"sentiment": y_test})
    out = probe_metrics(
        NoisyPosterior(10 * CLASS_SEPARATION),
        with_noise(z_train, 0),
        with_noise(z_test, N_TRAIN),
        labelled,
        {"samples": True, "untrained_floor": True},
        Untrained(),
    )
    majority = majority_rate(y_train, y_test)
    key = metric_key("Probe", "sentiment", INFORMATIVE)
    assert out[key].value > 95
    for metric in ("Probe-sample", "Probe-untrained"):
        accuracy = out[metric_key(metric, "sentiment", INFORMATIVE)].value / 100
        assert abs(accuracy - majority) <= NOISE_TOLERANCE, (metric, accuracy, majority)
    with pytest.raises(ValueError, match="untrained_floor needs the untrained model"):
        probe_metrics(FixedLatents(), batched(z_train), batched(z_test), labelled, {"untrained_floor": True})


def majority_rate(train_labels, test_labels) -> float:
    values, counts = np.unique(train_labels, return_counts=True)
    return float(np.mean(np.asarray(test_labels) == values[np.argmax(counts)]))


@pytest.fixture(scope="module")
def informative_group():
    train, test = constructed(N_TRAIN, seed=1), constructed(N_TEST, seed=2)
    return probe_on(train, test), train, test


# -----------------------------------------------------------------------------
# the probe on constructed latents


def test_a_linearly_encoded_label_is_found(informative_group):
    out, _, _ = informative_group
    assert out["Probe[sentiment]"].value > 95
    assert out["Probe-F1[sentiment]"].value > 95


def test_on_noise_the_probe_scores_the_majority_rate():
    train, test = constructed(N_TRAIN, seed=3, informative=None), constructed(N_TEST, seed=4, informative=None)
    out = probe_on(train, test)
    majority = majority_rate(train[1], test[1])
    assert out["Majority[sentiment]"].value == pytest.approx(100 * majority)
    for group in (None, 1, 2, 3):
        accuracy = out[metric_key("Probe", "sentiment", group)].value / 100
        assert abs(accuracy - majority) <= NOISE_TOLERANCE, (group, accuracy, majority)


def test_per_group_scores_pick_out_the_group_that_carries_the_label(informative_group):
    out, train, test = informative_group
    majority = majority_rate(train[1], test[1])
    assert out[metric_key("Probe", "sentiment", INFORMATIVE)].value > 95
    for noise_group in set(range(1, GROUPS + 1)) - {INFORMATIVE}:
        accuracy = out[metric_key("Probe", "sentiment", noise_group)].value / 100
        assert abs(accuracy - majority) <= NOISE_TOLERANCE, (noise_group, accuracy)
    assert sorted(out) == sorted(
        [
            "Probe[sentiment]",
            "Probe-F1[sentiment]",
            "Majority[sentiment]",
            "Probe[sentiment]@z1",
            "Probe[sentiment]@z2",
            "Probe[sentiment]@z3",
        ]
    )


def test_a_single_latent_gets_one_probe_on_its_z():
    z_train, y_train = constructed(200, seed=5)
    z_test, y_test = constructed(100, seed=6)
    model = FixedLatents(n_groups=1, latent_size=GROUPS * SIZE)
    out = probe_on((z_train, y_train), (z_test, y_test), model=model)
    assert set(out) == {"Probe[sentiment]", "Probe-F1[sentiment]", "Majority[sentiment]"}


def test_settings_and_details_are_recorded(informative_group):
    out, _, _ = informative_group
    settings = {"max_train_examples": 300, "C": 0.5, "max_iter": 200, "standardize": False, "seed": 7}
    value = out["Probe[sentiment]@z2"]
    assert value.higher_is_better is True and value.settings["scale"] == 100
    which = ("samples", "untrained_floor")  # which probes run: no setting of this one's number
    assert {k: value.settings[k] for k in DEFAULTS if k not in which} == {
        k: v for k, v in DEFAULTS.items() if k not in which
    }
    assert value.settings["fit_split"] == "train" and value.settings["score_split"] == "test"
    assert "logistic regression" in value.settings["probe"] and value.settings["label"] == "sentiment"
    details = value.details
    assert details["n_train"] == N_TRAIN and details["n_test"] == N_TEST and details["n_features"] == SIZE
    assert sum(details["class_counts"]["train"].values()) == N_TRAIN and details["converged"]
    assert details["accuracy"] == pytest.approx(value.value)
    assert out["Majority[sentiment]"].higher_is_better is None
    assert out["Majority[sentiment]"].to_dict()["higher_is_better"] is None  # null in metrics.json

    train, test = constructed(400, seed=8), constructed(100, seed=9)
    other = probe_on(train, test, settings)["Probe[sentiment]"]
    assert {k: other.settings[k] for k in settings} == settings
    with pytest.raises(ValueError, match=r"unknown evaluation.probe settings: \['c'\]"):
        probe_on(train, test, {"c": 1.0})


def test_one_training_class_is_answered_without_a_fit():
    z_train, _ = constructed(50, seed=10)
    z_test, y_test = constructed(40, seed=11)
    out = probe_on((z_train, [1] * 50), (z_test, y_test))
    expected = 100 * float(np.mean(np.asarray(y_test) == 1))
    assert out["Probe[sentiment]"].value == pytest.approx(expected) == out["Majority[sentiment]"].value


def test_metric_keys_round_trip():
    assert parse_metric_key(metric_key("Probe", "topic", 12)) == ("Probe", "topic", 12)
    assert parse_metric_key(metric_key("Majority", "review_label")) == ("Majority", "review_label", None)
    assert parse_metric_key("AU@0.01") is None and parse_metric_key("PPL") is None


# -----------------------------------------------------------------------------
# the labels of the data


def labelled_records(n: int, seed: int, labels: bool = True) -> list[dict]:
    records = tiny_corpus(n, seed=seed)
    if labels:
        for i, record in enumerate(records):
            record["labels"] = {"sentiment": "good" if "great" in record["text"] else "bad", "stars": 1 + i % 5}
    return records


def test_records_without_labels_give_no_probe():
    assert labelled_splits(tiny_corpus(10), tiny_corpus(5), None, "train.jsonl", "test.jsonl") is None


def test_labels_of_both_splits_with_a_seeded_training_subset():
    train, test = labelled_records(30, seed=0), labelled_records(8, seed=1)
    splits = labelled_splits(train, test, {"max_train_examples": 12, "seed": 3}, "train.jsonl", "test.jsonl")
    rows = training_subset(30, 12, 3)
    assert rows == sorted(rows) and len(set(rows)) == 12 and rows != list(range(12))
    assert splits.train_records == [train[i] for i in rows]
    assert splits.train_labels["stars"] == [train[i]["labels"]["stars"] for i in rows]
    assert splits.test_labels["sentiment"] == [r["labels"]["sentiment"] for r in test]
    assert list(splits.train_labels) == ["sentiment", "stars"]
    assert training_subset(30, None, 3) == list(range(30)) == training_subset(30, 100, 3)


def test_a_training_label_missing_from_a_test_record_names_the_file_and_line():
    train, test = labelled_records(10, seed=0), labelled_records(5, seed=1)
    del test[3]["labels"]["stars"]
    with pytest.raises(ValueError, match=r"data/yelp/test\.jsonl:4: no label \['stars'\]"):
        labelled_splits(train, test, None, "data/yelp/train.jsonl", "data/yelp/test.jsonl")
    test[3]["labels"]["stars"] = 2.5
    with pytest.raises(ValueError, match=r"test\.jsonl:4: label 'stars' is 2\.5; a label value is an int or a string"):
        labelled_splits(train, test, None, "train.jsonl", "test.jsonl")
    test[3]["labels"]["stars"] = "2"
    with pytest.raises(ValueError, match=r"label 'stars' mixes ints and strings in train\.jsonl and test\.jsonl"):
        labelled_splits(train, test, None, "train.jsonl", "test.jsonl")
    train[0]["labels"]["a[b]"] = "x"
    with pytest.raises(ValueError, match=r"train\.jsonl: label names \['a\[b\]'\] cannot name a metric"):
        labelled_splits(train, test, None, "train.jsonl", "test.jsonl")


# -----------------------------------------------------------------------------
# through the real model and the evaluate command


def test_features_are_the_posterior_mean_chain_and_draws_of_della(tiny_backbones):
    """The probe's features are the mean chain (E q(z_l | z_<l mean, x)), as posterior_latents,
    and one draw along the chain of draws, as sample_posterior gives with the same RNG state."""
    from della.models.vae import TransformerVAE, VAEConfig
    from della.run.batches import batches

    torch.manual_seed(0)
    model = TransformerVAE(
        VAEConfig(
            path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=4
        )
    ).eval()
    records = tiny_corpus(7)
    with torch.no_grad():
        torch.manual_seed(3)
        features = posterior_features({"m": (model, True)}, batches(records, model.collator, 3))
        expected = model.posterior_latents([r["text"] for r in records], sample=False)
        torch.manual_seed(3)
        draws = torch.cat(
            [model.sample_posterior(model.encode(batch), 1)[0][:, 0] for batch in batches(records, model.collator, 3)]
        )
    assert features["m", MEAN].shape == (7, model.n_groups, 4) and model.n_groups > 1
    torch.testing.assert_close(features["m", MEAN], expected.double())
    torch.testing.assert_close(features["m", SAMPLE], draws.double().view(7, model.n_groups, 4))
    assert not torch.allclose(features["m", SAMPLE], features["m", MEAN])


def evaluate_command(tmp_path: Path, model_dir: Path, data: Path, skip=("MAUVE", "BERTScore")) -> dict:

    from della.cli import main

    evaluation = overlays.load("config/config.yaml")["evaluation"]
    evaluation.update(max_test_examples=20, batch_size=8, skip=list(skip))
    evaluation["representation"].update(iw_samples=2, iw_chunk=2)
    evaluation["probe"].update(max_train_examples=40)
    samples = tmp_path / "samples.jsonl"
    samples.write_text(
        "".join(
            json.dumps({"id": i, "source": None, "reference": None, "generated": r["text"]}) + "\n"
            for i, r in enumerate(tiny_corpus(10, seed=5))
        )
    )
    samples.with_suffix(".settings.json").write_text(json.dumps({"generation": {}, "seed": 0}))
    out = tmp_path / "metrics.json"
    settings = {"dataset": "toy", "model": "della", "label": "DELLA", "evaluation": evaluation}
    main(
        [
            "evaluate",
            "--data",
            str(data),
            "--run",
            str(model_dir.parent),
            "--samples",
            str(samples),
            "--out",
            str(out),
            "--seed",
            "0",
            "--settings",
            json.dumps(settings),
        ]
    )
    return json.loads(out.read_text())["metrics"]


def write_split(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("path", ["della", "none"])
def test_evaluate_command_writes_the_probe_for_a_latent_model_only(tiny_backbones, tmp_path, path):
    from della.models.vae import TransformerVAE, VAEConfig

    torch.manual_seed(0)
    model = TransformerVAE(
        VAEConfig(
            path=path, decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=4
        )
    )
    model.save(tmp_path / "run" / "model")
    train, test = labelled_records(60, seed=0), labelled_records(20, seed=1)
    write_split(tmp_path / "data" / "train.jsonl", train)
    write_split(tmp_path / "data" / "test.jsonl", test)
    metrics = evaluate_command(tmp_path, tmp_path / "run" / "model", tmp_path / "data")
    probes = {name for name in metrics if parse_metric_key(name)}
    if path == "none":  # a plain LM: no latent, no probe
        assert probes == set()
        return
    probed = ("Probe", "Probe-sample", "Probe-untrained")  # each on all groups and on each group
    assert probes == {
        f"{m}[{label}]" for m in (*probed, "Probe-F1", "Majority") for label in ("sentiment", "stars")
    } | {f"{m}[{label}]@z{g}" for m in probed for label in ("sentiment", "stars") for g in (1, 2)}
    assert metrics["Probe-untrained[stars]"]["higher_is_better"] is None  # a floor, not a score
    assert "before training" in metrics["Probe-untrained[stars]@z1"]["settings"]["features"]
    assert "one posterior sample" in metrics["Probe-sample[stars]"]["settings"]["features"]
    rows = training_subset(len(train), 40, DEFAULTS["seed"])
    for label in ("sentiment", "stars"):
        expected = majority_rate([train[i]["labels"][label] for i in rows], [r["labels"][label] for r in test])
        assert metrics[f"Majority[{label}]"]["value"] == pytest.approx(100 * expected)
        assert metrics[f"Probe[{label}]"]["details"]["n_train"] == 40
        assert metrics[f"Probe[{label}]"]["settings"]["max_train_examples"] == 40
        assert 0 <= metrics[f"Probe[{label}]@z2"]["value"] <= 100


def test_evaluate_command_without_labels_writes_no_probe(tiny_backbones, tmp_path):
    from della.models.vae import TransformerVAE, VAEConfig

    torch.manual_seed(0)
    model = TransformerVAE(
        VAEConfig(
            path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=4
        )
    )
    model.save(tmp_path / "run" / "model")
    write_split(tmp_path / "data" / "train.jsonl", labelled_records(30, seed=0, labels=False))
    write_split(tmp_path / "data" / "test.jsonl", labelled_records(10, seed=1, labels=False))
    metrics = evaluate_command(tmp_path, tmp_path / "run" / "model", tmp_path / "data")
    assert "AU" in metrics and not any(parse_metric_key(name) for name in metrics)


# -----------------------------------------------------------------------------
# the table and the figure


def test_probe_table_shows_each_label_beside_the_majority_rate(tmp_path):
    from della.report.tables import load_spec

    render_files(
        "table1_probe",
        load_spec(ROOT / "config" / "tables.yaml"),
        PAPER,
        tmp_path / "out",
        metrics=table_runs(tmp_path),
    )
    with open(tmp_path / "out" / "table1_probe.csv", newline="") as handle:
        rows = {(r["dataset"], r["model"], r["metric"]): r for r in csv.DictReader(handle)}
    assert {d for d, _, _ in rows} == {"yelp"}  # yahoo's records carry no labels
    assert float(rows["yelp", "DELLA", "Probe[business]"]["ours_mean"]) == 55.0
    assert float(rows["yelp", "Memory", "Majority[review_label]"]["ours_mean"]) == 40.0
    assert rows["yelp", "GPT-2", "Probe[review_label]"]["ours_mean"] == ""  # n/a: no latent
    assert all(r["paper"] == "" for r in rows.values())  # the paper has no probe
    md = (tmp_path / "out" / "table1_probe.md").read_text()
    header = [
        "Model",
        "",
        "Probe[business] ↑",
        "Probe-F1[business] ↑",
        "Probe-sample[business] ↑",
        "Probe-untrained[business]",
        "Majority[business]",
        "Probe[review_label] ↑",
        "Probe-F1[review_label] ↑",
        "Probe-sample[review_label] ↑",
        "Probe-untrained[review_label]",
        "Majority[review_label]",
    ]
    assert header in [row_cells(line) for line in md.splitlines()]
    assert ours_line(md, "DELLA") == [
        "**55.00**",
        "**45.00**",
        "**50.00**",
        "43.00",
        "41.00",
        "**54.00**",
        "**44.00**",
        "**49.00**",
        "42.00",
        "40.00",
    ]
    assert (
        "yahoo: no metric of its files matches Probe[{label}], Probe-F1[{label}], Probe-sample[{label}], "
        "Probe-untrained[{label}], Majority[{label}]"
    ) in md
    assert "no arrow = a reference value" in md
    tex = (tmp_path / "out" / "table1_probe.tex").read_text()
    assert r"Majority[business] & Probe[review\_label] $\uparrow$" in tex


def test_probe_table_with_a_label_missing_from_one_run_is_an_error(tmp_path):
    from della.report.tables import TableError, load_spec

    files = table_runs(tmp_path)
    memory = next(p for p in files if "yelp/memory" in p.as_posix())
    document = json.loads(memory.read_text())
    del document["metrics"]["Probe[business]"]
    memory.write_text(json.dumps(document))
    with pytest.raises(TableError, match=r"memory/seed0/metrics\.json: metric 'Probe\[business\]' is missing"):
        render_files("table1_probe", load_spec(ROOT / "config" / "tables.yaml"), PAPER, tmp_path / "out", metrics=files)


def test_probe_figure_by_layer_with_the_majority_rate(tmp_path):
    from della.report.figures import load_spec, main

    files = [
        write_run(tmp_path, "yelp", "DELLA", seed, probe_values(60.0 + 2 * seed, 40.0, groups=4)) for seed in (0, 1)
    ]
    files.append(write_run(tmp_path, "yahoo", "DELLA", 0, probe_values(30.0, 20.0, labels=("topic",), groups=4)))
    tidy, _ = tidy_of(load_spec(ROOT / "config" / "figures.yaml")["figures"]["probe"]["experiment"], files)
    tidy.to_csv(tmp_path / "metrics.csv", index=False)  # as the workflow writes it
    assert (
        main(
            [
                "--spec",
                str(ROOT / "config" / "figures.yaml"),
                "probe",
                "--tidy",
                str(tmp_path / "metrics.csv"),
                "--out",
                str(tmp_path / "probe"),
            ]
        )
        == 0
    )
    assert (tmp_path / "probe.png").read_bytes()[:4] == PNG_MAGIC and (tmp_path / "probe.pdf").exists()
    with open(tmp_path / "probe.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_key = {(r["dataset"], r["label"], r["features"], r["metric"]): r for r in rows}
    z3 = by_key["yelp", "review_label", "z3", "Probe"]
    assert float(z3["mean"]) == 58.0 and float(z3["std"]) == pytest.approx(math.sqrt(2)) and z3["seeds"] == "0 1"
    assert float(by_key["yelp", "business", "all", "Probe"]["mean"]) == 62.0
    assert float(by_key["yahoo", "topic", "all", "Majority"]["mean"]) == 20.0
    assert len(rows) == 3 * (4 + 1 + 1)  # per (dataset, label): groups and all (probe), majority; seeds merged
    assert "probe" in load_spec(ROOT / "config" / "figures.yaml")["figures"]


def test_probe_figure_without_labels_says_so(tmp_path):
    from della.report.figures import render_probe

    spec = {"figures": {"probe": {"title": "probe", "experiment": "table1", "models": ["della"]}}}
    tidy, _ = tidy_of("table1", [write_run(tmp_path, "ptb", "DELLA", 0, {"PPL": 10.0})])  # a run without probe values
    written = render_probe(spec, tidy, tmp_path / "probe")
    assert [p.suffix for p in written] == [".png", ".pdf", ".csv"]
    assert (tmp_path / "probe.csv").read_text().count("\n") == 1  # the header only
