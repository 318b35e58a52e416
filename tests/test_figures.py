"""Figures (Fig. 2-4, training curves) and the findings: from constructed metrics.json, samples
and logs, and from a tiny trained DELLA (interpolation, its real training log)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pandas as pd
import pytest
import yaml

from della.report.figures import (
    END,
    START,
    FigureError,
    figure_targets,
    layer_points,
    layer_run,
    load_spec,
    render_case_study,
    render_interpolation,
    render_latent_layers,
    render_training_curves,
    training_curve_figure,
)
from della.report.figures import (
    main as figure_main,
)
from della.report.findings import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    NOT_PRINTED,
    NOT_RUN,
    FindingsError,
    Numbers,
    correct_for_multiple_comparisons,
    evaluate,
    load_claims,
    load_findings_spec,
    write_findings,
)
from della.report.tidy import COLUMNS, read_metrics_file

from conftest import tiny_corpus
from helpers import ROOT
from helpers.tables import tidy_of

SPEC = load_spec(ROOT / "config" / "figures.yaml")
FIG2_EXPERIMENT = SPEC["figures"]["fig2"]["experiment"]


def tidy_of_experiments(runs: dict[str, list[Path]]) -> tuple[pd.DataFrame, dict]:
    """The long table (della/report/tidy.py) of metrics.json files by experiment, as the workflow's
    parts joined."""
    parts = [tidy_of(experiment, files) for experiment, files in runs.items()]
    frame = pd.concat([part for part, _ in parts], ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    return frame, {key: value for _, settings in parts for key, value in settings.items()}


PAPER = ROOT / "results" / "paper_tables.csv"
PNG_MAGIC, PDF_MAGIC = b"\x89PNG", b"%PDF"


def write_metrics(
    root: Path,
    dataset: str,
    model: str,
    label: str,
    seed: int,
    values: dict,
    n_groups: int | None = 4,
    latent_layers: dict | None = None,
) -> Path:
    """A metrics.json as della/run/evaluate.py writes it (only the fields figures and findings read)."""
    metrics = {name: {"value": value, "settings": {"scale": 1.0}} for name, value in values.items()}
    if n_groups is not None:
        metrics["AU"] = {"value": values.get("AU", 0.0), "settings": {"au_threshold": 0.2, "n_groups": n_groups}}
    model_settings = {"path": "della"} if latent_layers is None else {"path": "della", "latent_layers": latent_layers}
    path = root / "runs" / dataset / model / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "dataset": dataset,
                "model": model,
                "label": label,
                "seed": seed,
                "metrics": metrics,
                "settings": {"model": model_settings},
            }
        )
    )
    return path


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# Fig. 2
# --------------------------------------------------------------------------------------------
def layer_sweep(root: Path) -> list[Path]:
    """A 4-layer decoder: all layers (two seeds), layers 3..4, layers 1..2 and layers 1..1."""
    return [
        write_metrics(root, "yelp", "della", "DELLA", 0, {"PPL": 10.0, "KL": 9.0, "ELBO": 100.0}),
        write_metrics(root, "yelp", "della", "DELLA", 1, {"PPL": 12.0, "KL": 11.0, "ELBO": 104.0}),
        write_metrics(
            root,
            "yelp",
            "from3",
            "DELLA (layers 3-L)",
            0,
            {"PPL": 13.0, "KL": 6.0, "ELBO": 110.0},
            2,
            {"start": 3, "end": None},
        ),
        write_metrics(
            root,
            "yelp",
            "to2",
            "DELLA (layers 1-2)",
            0,
            {"PPL": 15.0, "KL": 4.0, "ELBO": 120.0},
            2,
            {"start": 1, "end": 2},
        ),
        write_metrics(
            root,
            "yelp",
            "to1",
            "DELLA (layers 1-1)",
            0,
            {"PPL": 16.0, "KL": 2.0, "ELBO": 130.0},
            1,
            {"start": 1, "end": 1},
        ),
    ]


def test_fig2_points_series_and_seed_means(tmp_path):
    files = layer_sweep(tmp_path)
    written = render_latent_layers(SPEC, *tidy_of(FIG2_EXPERIMENT, files), tmp_path / "out" / "fig2")
    assert [p.suffix for p in written] == [".png", ".pdf", ".csv"]
    assert written[0].read_bytes().startswith(PNG_MAGIC) and written[1].read_bytes().startswith(PDF_MAGIC)
    rows = read_csv(written[2])
    ppl = {(r["series"], int(r["first_layer"]), int(r["last_layer"])): r for r in rows if r["metric"] == "PPL"}
    # the run on every layer is in both series; 3..4 only starts late, 1..2 and 1..1 only end early
    assert set(ppl) == {(START, 3, 4), (START, 1, 4), (END, 1, 1), (END, 1, 2), (END, 1, 4)}
    full = ppl[START, 1, 4]
    assert float(full["mean"]) == pytest.approx(11.0) and float(full["std"]) == pytest.approx(
        statistics.stdev([10, 12])
    )
    assert full["n_seeds"] == "2" and full["seeds"] == "0 1" and int(full["n_latent_layers"]) == 4
    assert ppl[START, 3, 4]["std"] == "" and int(ppl[START, 3, 4]["n_latent_layers"]) == 2
    assert json.loads(full["settings"]) == {"scale": 1.0} and len(full["sources"].split()) == 2
    assert len(rows) == 5 * len(SPEC["figures"]["fig2"]["metrics"])


def test_fig2_rejects_runs_it_cannot_place(tmp_path):
    files = layer_sweep(tmp_path)
    middle = write_metrics(
        tmp_path,
        "yelp",
        "mid",
        "DELLA (layers 2-3)",
        0,
        {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0},
        2,
        {"start": 2, "end": 3},
    )
    with pytest.raises(FigureError, match="layers 2..3 neither start at layer 1 nor end at the last layer"):
        layer_points([layer_run(read_metrics_file(p), ["PPL"]) for p in [*files, middle]], ["PPL"])
    inconsistent = write_metrics(
        tmp_path, "yelp", "bad", "bad", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0}, 3, {"start": 1, "end": 2}
    )
    with pytest.raises(FigureError, match="latent_layers .* but 3 latent groups"):
        layer_run(read_metrics_file(inconsistent), ["PPL"])
    no_latent = write_metrics(tmp_path, "yelp", "gpt2", "GPT-2", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0}, None)
    other_dataset = write_metrics(tmp_path, "yahoo", "della", "DELLA", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0})
    other_dataset.write_text(other_dataset.read_text().replace('"scale": 1.0', '"scale": 2.0'))
    assert len(render_latent_layers(SPEC, *tidy_of(FIG2_EXPERIMENT, [*files, other_dataset]), tmp_path / "both")) == 3
    for path, groups in ((files[2], [3, 4]), (files[4], [1])):  # which groups a number covers: a run detail
        path.write_text(path.read_text().replace('"scale": 1.0', f'"scale": 1.0, "groups": {groups}'))
    assert len(render_latent_layers(SPEC, *tidy_of(FIG2_EXPERIMENT, files), tmp_path / "groups")) == 3
    files[1].write_text(files[1].read_text().replace('"scale": 1.0', '"scale": 2.0'))
    with pytest.raises(FigureError, match="metric 'PPL' on yelp measured with different settings"):
        render_latent_layers(SPEC, *tidy_of(FIG2_EXPERIMENT, files), tmp_path / "mixed")
    tidy, run_settings = tidy_of(FIG2_EXPERIMENT, [no_latent])  # the command reads them as the workflow writes them
    tidy.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "run_settings.json").write_text(json.dumps(run_settings))
    assert (
        figure_main(
            [
                "--spec",
                str(ROOT / "config/figures.yaml"),
                "fig2",
                "--tidy",
                str(tmp_path / "metrics.csv"),
                "--run-settings",
                str(tmp_path / "run_settings.json"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------------------------
# Fig. 3 and training curves, on a tiny trained DELLA
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tiny_backbones, tmp_path_factory):
    from della.models.vae import VAEConfig
    from della.run.train import TrainSettings, train

    root = tmp_path_factory.mktemp("trained")
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(16, seed=1)))
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(12, seed=2)))
    config = VAEConfig(
        path="della",
        decoder=str(tiny_backbones["causal"]),
        decoder_kind="causal",
        conditional=False,
        latent_size=8,
        max_target_tokens=16,
    )
    settings = TrainSettings(batch_size=4, learning_rate=1e-3, max_steps=3, log_every=1, checkpoint_every=3)
    train(config, settings, root / "train.jsonl", root / "run", seed=0)
    return root


GREEDY = {"strategy": "greedy", "max_new_tokens": 8}


def test_fig3_interpolation_ends_decode_the_two_test_sentences(trained_run, tmp_path):
    from della.run.batches import load_records, target_of
    from della.run.generate import load_model, reconstruct

    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["figures"]["fig3"].update(posterior="mean", taus=[0.0, 0.5, 1.0], seed=3, among_shortest=3)
    written = render_interpolation(spec, trained_run / "run", trained_run / "test.jsonl", GREEDY, tmp_path / "fig3.md")
    assert [p.suffix for p in written] == [".md", ".csv", ".png"] and written[2].read_bytes().startswith(PNG_MAGIC)
    rows = read_csv(written[1])
    settings = json.loads(rows[0]["settings"])
    texts = [target_of(r) for r in load_records(trained_run / "test.jsonl")]
    first, second = texts[settings["first_test_line"] - 1], texts[settings["second_test_line"] - 1]
    assert [r["text"] for r in rows[:2]] == [first, second] and first != second
    third_shortest = sorted(len(t.split()) for t in set(texts))[2]
    assert max(len(first.split()), len(second.split())) <= third_shortest  # drawn among the 3 shortest
    generated = {float(r["tau"]): r["text"] for r in rows[2:]}
    assert sorted(generated) == [0.0, 0.5, 1.0]
    model = load_model(trained_run / "run")
    # tau = 1 decodes the first sentence's posterior (mean), tau = 0 the second's
    assert [generated[1.0], generated[0.0]] == reconstruct(model, [first, second], GREEDY, seed=3)
    assert settings["decoding"] == GREEDY and settings["seed"] == 3 and settings["posterior"] == "mean"
    markdown = written[0].read_text()
    assert first in markdown and "| 0.50 |" in markdown and "strategy=greedy" in markdown
    # the same seed picks the same pair and decodes the same texts
    again = render_interpolation(spec, trained_run / "run", trained_run / "test.jsonl", GREEDY, tmp_path / "again.md")
    assert read_csv(again[1]) == rows


def test_training_curves_from_the_train_rule_log(trained_run, tmp_path):
    log = trained_run / "run" / "train_log.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    fig = training_curve_figure(SPEC, entries, "tiny")
    panels = {ax.get_title(): ax for ax in fig.axes}
    kl_panel = panels["KL per latent layer (nats)"]
    layers = len(entries[0]["kl_per_group"])
    assert layers == 2 and len(kl_panel.get_lines()) == layers  # one line per latent layer of the 2-layer decoder
    beta = panels["β (KL weight)"].get_lines()[0]
    assert list(beta.get_xdata()) == [e["step"] for e in entries] and list(beta.get_ydata()) == [
        e["beta"] for e in entries
    ]
    written = render_training_curves(SPEC, log, "tiny", tmp_path / "curves")
    assert [p.read_bytes()[:4] for p in written] == [PNG_MAGIC, PDF_MAGIC]


def test_training_curves_draw_validation_at_the_steps_it_ran():
    entries = [
        {"step": step, "beta": 1.0, "reconstruction": 50.0 - step, "kl_per_group": [1.0, 2.0]}
        for step in (10, 20, 30, 40)
    ]
    assert "valid_loss" not in {ax.get_title().split()[0] for ax in training_curve_figure(SPEC, entries, "t").axes}
    for entry, loss in zip(entries[1::2], (40.0, 35.0), strict=True):  # validated at steps 20 and 40 only
        entry.update(valid_loss=loss, valid_kl_per_group=[0.5, 0.25])
    panels = {ax.get_title(): ax for ax in training_curve_figure(SPEC, entries, "t").axes}
    valid = panels["validation -ELBO at β = 1 (nats per sentence)"].get_lines()[0]
    assert list(valid.get_xdata()) == [20, 40] and list(valid.get_ydata()) == [40.0, 35.0]
    assert len(panels["validation KL per latent layer (nats)"].get_lines()) == 2


def test_training_curves_name_a_bad_log_line(tmp_path):
    log = tmp_path / "train_log.jsonl"
    entry = {"step": 1, "beta": 0.0, "reconstruction": 5.0, "kl_per_group": [1.0], "nonfinite_skipped": 0}
    log.write_text(json.dumps(entry) + "\n" + json.dumps({"step": 2, "beta": 0.1}) + "\n")
    with pytest.raises(FigureError, match=r"train_log.jsonl:2: no \['reconstruction', 'kl_per_group'\]"):
        render_training_curves(SPEC, log, "bad", tmp_path / "curves")
    log.write_text("")
    with pytest.raises(FigureError, match="empty training log"):
        render_training_curves(SPEC, log, "empty", tmp_path / "curves")


# --------------------------------------------------------------------------------------------
# Fig. 4
# --------------------------------------------------------------------------------------------
def write_samples(root: Path, model: str, label: str, sources: list[str]) -> Path:
    write_metrics(root, "writingprompts", model, label, 0, {"KL": 1.0})
    path = root / "runs" / "writingprompts" / model / "seed0" / "samples.jsonl"
    rows = [
        {"id": i, "source": s, "reference": f"story {i}", "generated": f"{label} on {s}"} for i, s in enumerate(sources)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path.with_suffix(".settings.json").write_text(
        json.dumps({"generation": {"decoding": {"strategy": "beam"}}, "seed": 0})
    )
    return path


def test_fig4_same_prompts_for_every_model(tmp_path):
    prompts = [f"prompt {i}" for i in range(8)]
    files = [
        write_samples(tmp_path, "della", "DELLA", prompts),
        write_samples(tmp_path, "memory", "Memory", prompts[1:]),
    ]
    spec = yaml.safe_load(yaml.safe_dump(SPEC))
    spec["figures"]["fig4"].update(n_prompts=7, seed=0)
    tidy, _ = tidy_of(SPEC["figures"]["fig4"]["experiment"], [path.with_name("metrics.json") for path in files])
    md, table = render_case_study(spec, files, tidy, tmp_path / "fig4.md")
    rows = read_csv(table)
    shown = sorted({r["source"] for r in rows})
    assert shown == prompts[1:]  # only prompts both models generated for: all 7 shared ones
    for r in rows:
        assert r["generated"] == f"{r['model']} on {r['source']}"  # each model's own output for that prompt
    assert sorted(r["model"] for r in rows) == ["DELLA"] * 7 + ["Memory"] * 7
    spec["figures"]["fig4"].update(n_prompts=2)
    _, fewer = render_case_study(spec, files, tidy, tmp_path / "two.md")
    assert len({r["source"] for r in read_csv(fewer)}) == 2
    assert "**Memory**: Memory on" in md.read_text() and "strategy" in md.read_text()


def test_fig4_needs_conditional_samples(tmp_path):
    path = write_samples(tmp_path, "della", "DELLA", ["p"])
    path.write_text(json.dumps({"id": 0, "source": None, "reference": None, "generated": "text"}) + "\n")
    with pytest.raises(FigureError, match="samples.jsonl:1: a case study needs conditional samples"):
        render_case_study(SPEC, [path], tidy_of("table2", [path.with_name("metrics.json")])[0], tmp_path / "fig4.md")


def test_figure_targets_follow_the_experiments():
    runs = {"table1": [("yelp", "della", 0), ("yelp", "memory", 0)], "fig3": [("yelp", "della", 0)]}
    targets = figure_targets(SPEC, runs, "results/x")
    assert "results/x/figures/fig3/yelp/della/seed0.md" in targets
    assert not any("fig2" in t or "fig4" in t for t in targets)
    curves = [t for t in targets if "/training/yelp/" in t]
    assert sorted(curves) == sorted(
        f"results/x/figures/training/yelp/{m}/seed0.{e}" for m in ("della", "memory") for e in ("png", "pdf")
    )  # each run once, though two experiments share one
    convergence = ["results/x/figures/training/convergence.md", "results/x/figures/training/convergence.csv"]
    assert [t for t in targets if "/training/convergence" in t] == convergence  # one record of every run
    assert not any("convergence" in t for t in figure_targets(SPEC, {}, "results/x"))  # no runs, no record


# --------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------
MINIMUM_EFFECTS = {"KL": {"absolute": 0.1, "relative": 0.05}, "PPL": {"relative": 0.01}, "AU": {"absolute": 1}}
CLAIMS = {
    "minimum_effects": MINIMUM_EFFECTS,
    "claims": [
        {
            "id": "kl",
            "claim": "DELLA's KL above the others",
            "source": "T1",
            "experiment": "table1",
            "datasets": ["yelp", "yahoo"],
            "metrics": {"KL": "higher"},
            "row": "DELLA",
            "than": ["Memory", "Softmax"],
        },
        {
            "id": "ppl",
            "claim": "DELLA's PPL below Memory's",
            "source": "T1",
            "experiment": "table1",
            "datasets": ["yelp"],
            "metrics": {"PPL": "lower"},
            "row": "DELLA",
            "than": ["Memory"],
        },
        {
            "id": "order",
            "claim": "Ablation order",
            "source": "T4",
            "experiment": "table4",
            "datasets": ["yelp"],
            "metrics": {"KL": "higher"},
            "order": ["DELLA", "w/o tensor product", "w/o layer-wise latents"],
        },
        {
            "id": "layers",
            "claim": "More layers, lower PPL",
            "source": "F2",
            "kind": "latent_layers",
            "experiment": "fig2",
            "datasets": ["yelp"],
            "metrics": {"PPL": "lower"},
            "compare": "more_layers",
        },
        {
            "id": "start",
            "claim": "Starting higher beats ending lower",
            "source": "F2",
            "kind": "latent_layers",
            "experiment": "fig2",
            "datasets": ["yelp"],
            "metrics": {"PPL": "lower"},
            "compare": "start_vs_end",
        },
    ],
}


def claims_file(tmp_path, claims: dict) -> Path:
    spec = tmp_path / "claims.yaml"
    spec.write_text(yaml.safe_dump(claims))
    return spec


def findings_of(tmp_path, runs: dict, claims: dict = CLAIMS) -> dict:
    spec = load_findings_spec(claims_file(tmp_path, claims))
    found = evaluate(spec.claims, Numbers(*tidy_of_experiments(runs), PAPER), spec.confidence)
    correct_for_multiple_comparisons(found, spec.false_discovery_rate)
    return {f.claim["id"]: f for f in found}


def seeded_runs(
    root: Path,
    rows: dict[str, dict[str, list[float]]],
    metric: str = "KL",
    dataset: str = "yelp",
    extra: dict | None = None,
) -> list[Path]:
    """label -> {metric values by seed}: one metrics.json per seed (seed k gets the k-th value)."""
    files = []
    for label, values in rows.items():
        for seed, value in enumerate(values):
            files.append(
                write_metrics(
                    root, dataset, label.lower().replace(" ", "_"), label, seed, {metric: value, **(extra or {})}
                )
            )
    return files


def t_interval(differences: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """The closed-form t interval of a mean, for checking the findings' intervals."""
    from scipy import stats

    n, mean = len(differences), statistics.fmean(differences)
    half = stats.t.ppf((1 + confidence) / 2, n - 1) * statistics.stdev(differences) / n**0.5
    return mean - half, mean + half


def test_a_comparison_is_a_paired_difference_over_seeds_with_its_t_interval(tmp_path):
    della, memory = [3.0, 3.4, 2.9], [1.0, 1.5, 0.8]
    runs = {"table1": seeded_runs(tmp_path, {"DELLA": della, "Memory": memory, "Softmax": [3.2, 3.0, 2.5]})}
    found = findings_of(tmp_path, runs)["kl"]
    yelp_memory = found.comparisons[0]
    assert (yelp_memory.dataset, yelp_memory.second.name, yelp_memory.paired_seeds) == ("yelp", "Memory", [0, 1, 2])
    differences = [a - b for a, b in zip(della, memory, strict=True)]  # paired by seed: 2.0, 1.9, 2.1
    low, high = t_interval(differences)
    assert yelp_memory.difference.mean == pytest.approx(2.0)
    assert (yelp_memory.difference.low, yelp_memory.difference.high) == (pytest.approx(low), pytest.approx(high))
    # the minimum effect: max(0.1 absolute, 5 % of Memory's mean 1.1) = 0.1
    assert yelp_memory.minimum_effect == pytest.approx(0.1) and yelp_memory.verdict == HOLDS
    # Softmax is higher than DELLA on seed 0 and lower on the others: the interval straddles 0.1
    assert found.comparisons[1].verdict == INCONCLUSIVE
    assert found.status == NOT_RUN  # Yahoo was not run
    assert {c.why for c in found.comparisons if c.dataset == "yahoo"} == {"table1 did not run yahoo"}


def test_lower_is_signed_so_the_claim_is_positive_and_a_tie_fails(tmp_path):
    runs = {"table1": seeded_runs(tmp_path, {"DELLA": [20.0, 21.0, 22.0], "Memory": [22.0, 23.1, 24.0]}, "PPL")}
    ppl = findings_of(tmp_path, runs)["ppl"]
    (c,) = ppl.comparisons
    assert c.difference.mean == pytest.approx((2.0 + 2.1 + 2.0) / 3)  # Memory - DELLA: lower is the claim
    assert c.minimum_effect == pytest.approx(0.01 * statistics.fmean([22.0, 23.1, 24.0]))
    assert c.verdict == HOLDS and ppl.status == HOLDS
    tie = findings_of(
        tmp_path / "tie", {"table1": seeded_runs(tmp_path / "tie", {"DELLA": [20.0] * 3, "Memory": [20.0] * 3}, "PPL")}
    )
    # no difference at all: the interval is the point 0, below the minimum effect
    assert tie["ppl"].comparisons[0].verdict == FAILS and tie["ppl"].status == FAILS
    better = findings_of(
        tmp_path / "b",
        {"table1": seeded_runs(tmp_path / "b", {"DELLA": [24.0, 25.0, 26.1], "Memory": [20.0, 21.0, 22.0]}, "PPL")},
    )
    assert better["ppl"].status == FAILS  # DELLA's PPL clearly higher


def test_an_effect_smaller_than_the_minimum_fails_and_one_seed_is_inconclusive(tmp_path):
    # DELLA's KL is clearly higher, by 0.05 nats: real, but below the 0.1 the claim needs
    runs = {"table1": seeded_runs(tmp_path, {"DELLA": [1.05, 1.25, 1.15], "Memory": [1.0, 1.2, 1.1], "Softmax": [0.0]})}
    found = findings_of(tmp_path, runs)["kl"]
    memory, softmax = found.comparisons[:2]
    assert memory.difference.high < 0.1 and memory.verdict == FAILS
    # Softmax ran one seed: paired on seed 0 only, no interval
    assert softmax.paired_seeds == [0] and softmax.verdict == INCONCLUSIVE and softmax.why == "1 seed: no interval"
    assert softmax.p_value is None and softmax.p_adjusted is None


def test_not_comparable_where_the_paper_defines_the_metric_otherwise(tmp_path):
    claims = {
        "minimum_effects": MINIMUM_EFFECTS,
        "claims": [
            dict(CLAIMS["claims"][0], datasets=["yelp"], than=["Memory"], paper_defines={"KL": {"layers": "penalised"}})
        ],
    }
    files = seeded_runs(tmp_path, {"DELLA": [3.0, 3.1, 3.2], "Memory": [1.0, 1.1, 1.0]})
    found = findings_of(tmp_path, {"table1": files}, claims)["kl"]
    assert found.status == NOT_COMPARABLE
    assert found.comparisons[0].why == "DELLA's KL has layers None; the paper's is 'penalised'"
    for path in files:  # now every run says how it measured KL, as the paper does
        document = json.loads(path.read_text())
        document["metrics"]["KL"]["settings"]["layers"] = "penalised"
        path.write_text(json.dumps(document))
    assert findings_of(tmp_path, {"table1": files}, claims)["kl"].status == HOLDS


def test_benjamini_hochberg_over_every_comparison_made(tmp_path):
    from scipy import stats

    della, memory, softmax = [3.0, 3.4, 2.9], [1.0, 1.5, 0.8], [2.8, 2.9, 2.5]
    runs = {"table1": seeded_runs(tmp_path, {"DELLA": della, "Memory": memory, "Softmax": softmax})}
    claims = {"minimum_effects": MINIMUM_EFFECTS, "claims": [dict(CLAIMS["claims"][0], datasets=["yelp"])]}
    comparisons = findings_of(tmp_path, runs, claims)["kl"].comparisons
    p = []
    for other in (memory, softmax):  # the one-sided t test of "difference <= minimum effect", by hand
        differences = [a - b for a, b in zip(della, other, strict=True)]
        effect = max(0.1, 0.05 * statistics.fmean(other))
        t = (statistics.fmean(differences) - effect) / (statistics.stdev(differences) / 3**0.5)
        p.append(stats.t.sf(t, 2))
    assert [c.p_value for c in comparisons] == [pytest.approx(v) for v in p]
    ranked = sorted(p)  # BH: p_(k) x m / k, made monotone from the largest down
    adjusted = [min(1.0, min(ranked[j] * 2 / (j + 1) for j in range(k, 2))) for k in range(2)]
    assert sorted(c.p_adjusted for c in comparisons) == [pytest.approx(v) for v in adjusted]


def test_each_seeds_sentences_get_a_paired_bootstrap(tmp_path):
    files = seeded_runs(tmp_path, {"DELLA": [3.0, 3.1], "Memory": [1.0, 1.2]})
    rng = __import__("random").Random(0)
    for path in files:
        high = "della" in str(path)
        rows = [{"nll": 30.0, "elbo": 31.0, "kl": (3.0 if high else 1.0) + rng.gauss(0, 0.5)} for _ in range(40)]
        with open(path.with_name("per_sentence.csv"), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["nll", "elbo", "kl"])
            writer.writeheader()
            writer.writerows(rows)
    claims = {
        "minimum_effects": MINIMUM_EFFECTS,
        "claims": [dict(CLAIMS["claims"][0], datasets=["yelp"], than=["Memory"])],
    }
    (c,) = findings_of(tmp_path, {"table1": files}, claims)["kl"].comparisons
    assert [seed for seed, _ in c.sentence_bootstrap] == [0, 1]
    for seed, summary in c.sentence_bootstrap:
        kl = {
            label: [
                float(r["kl"])
                for r in read_csv(tmp_path / "runs" / "yelp" / label / f"seed{seed}" / "per_sentence.csv")
            ]
            for label in ("della", "memory")
        }
        differences = [a - b for a, b in zip(kl["della"], kl["memory"], strict=True)]
        assert summary.n == 40 and summary.mean == pytest.approx(statistics.fmean(differences))
        assert summary.low < summary.mean < summary.high
        low, high = t_interval(differences)  # 40 sentences: the bootstrap is near the t interval
        assert summary.low == pytest.approx(low, abs=0.15) and summary.high == pytest.approx(high, abs=0.15)


def test_seeds_measured_with_different_settings_are_an_error(tmp_path):
    files = seeded_runs(tmp_path, {"DELLA": [3.0, 3.1], "Memory": [1.0, 1.1]})
    document = json.loads(files[1].read_text())
    document["metrics"]["KL"]["settings"]["kl_reduction"] = "mean"
    files[1].write_text(json.dumps(document))
    with pytest.raises(
        FindingsError, match=r"DELLA: KL measured with different settings across seeds in .*seed0.*seed1"
    ):
        findings_of(tmp_path, {"table1": files})


def test_findings_follow_the_layer_sweep(tmp_path):
    runs = {"fig2": layer_sweep(tmp_path)}
    found = findings_of(tmp_path, runs)
    # the sweep's PPL falls with more layers in both series (16 > 15 > 11, 13 > 11), and 3..4
    # beats 1..2, but only the all-layer run has two seeds, paired with the others' seed 0
    assert len(found["layers"].comparisons) == 3 and found["layers"].status == INCONCLUSIVE
    assert {c.paired_seeds[0] for c in found["layers"].comparisons} == {0}
    assert found["start"].status == INCONCLUSIVE and found["start"].paper_status == NOT_PRINTED


def test_findings_name_what_was_not_run(tmp_path):
    claims = {"minimum_effects": MINIMUM_EFFECTS, "claims": [dict(CLAIMS["claims"][0], than=["Memroy"])]}
    found = findings_of(tmp_path, {"table1": seeded_runs(tmp_path, {"DELLA": [3.0]})}, claims)["kl"]
    assert found.status == NOT_RUN
    reasons = {c.why for c in found.comparisons}
    assert reasons == {"table1 has no yelp run labelled 'Memroy' (it has ['DELLA'])", "table1 did not run yahoo"}
    with pytest.raises(FindingsError, match="exactly one of row\\+than, order, pairs"):
        findings_of(
            tmp_path,
            {},
            {"minimum_effects": MINIMUM_EFFECTS, "claims": [dict(CLAIMS["claims"][2], row="DELLA", than=["x"])]},
        )


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda c: c["claims"][0].update(metric={"KL": "higher"}),
            r"claims\[0\]: unknown key 'metric' \(allowed there: .*",
        ),
        (
            lambda c: c["claims"][1]["metrics"].update(PPL="smaller"),
            r"claims\[1\]\.metrics\.PPL: 'smaller' is not one of",
        ),
        (lambda c: c["minimum_effects"]["KL"].update(relative=-1), r"minimum_effects\.KL\.relative: -1 is less than"),
        (lambda c: c.pop("minimum_effects"), r"\(top level\): 'minimum_effects' is a required property"),
        (lambda c: c["minimum_effects"].pop("PPL"), r"claim ppl: no minimum effect for \['PPL'\]"),
    ],
)
def test_a_malformed_claims_file_is_named_in_one_line(tmp_path, change, message):
    claims = json.loads(json.dumps(CLAIMS))
    change(claims)
    with pytest.raises(FindingsError, match=message) as error:
        load_findings_spec(claims_file(tmp_path, claims))
    assert str(error.value).startswith(str(tmp_path / "claims.yaml"))


def test_every_configured_claim_holds_on_the_papers_numbers(tmp_path):
    """A claim that fails on the paper's own printed numbers is mis-written (not a finding)."""
    claims = load_claims(ROOT / "config" / "findings.yaml")
    found = evaluate(claims, Numbers(*tidy_of_experiments({}), PAPER))
    for f in found:
        assert f.status == NOT_RUN
        if f.claim.get("kind") == "latent_layers":
            assert f.paper_status == NOT_PRINTED  # a figure: no printed numbers
        elif "control" in f.claim and f.paper_status == NOT_PRINTED:
            continue  # a control of ours the paper prints no numbers for
        else:
            assert f.paper_status == HOLDS, f.claim["id"]
            printed = [c.paper_holds for c in f.comparisons if c.paper_holds is not None]
            assert len(printed) >= len(f.comparisons) - 1  # at most one cell unreadable in the paper


def test_configured_claims_name_rows_of_the_paper_tables():
    """Every row a claim compares is a row of its experiment's table on each of its datasets
    (a misspelt label would otherwise only ever be "not run")."""
    from della.report.findings import row_pairs
    from della.report.tables import load_spec as load_tables
    from della.report.tables import table_spec

    tables = load_tables(ROOT / "config" / "tables.yaml")
    for claim in load_claims(ROOT / "config" / "findings.yaml"):
        if claim.get("kind") == "latent_layers":
            continue
        for row in {r for pair in row_pairs(claim) for r in pair}:
            rows = {(r.dataset, r.label) for r in table_spec(tables, row.experiment).expand_rows()}
            assert {(d, row.label) for d in claim["datasets"]} <= rows, (claim["id"], row)


def test_findings_markdown_and_csv(tmp_path):
    runs = {
        "table1": seeded_runs(
            tmp_path, {"DELLA": [3.0, 3.4, 2.9], "Memory": [1.0, 1.5, 0.8], "Softmax": [0.5, 0.4, 0.6]}
        )
        + seeded_runs(tmp_path, {"DELLA": [0.5], "Memory": [1.0], "Softmax": [0.1]}, dataset="yahoo")
    }
    md, table = write_findings(
        claims_file(tmp_path, CLAIMS), *tidy_of_experiments(runs), PAPER, "sample", tmp_path / "out" / "FINDINGS.md"
    )
    text = md.read_text()
    assert text.startswith("# Findings at sample scale")
    assert "**Claims: 0 hold, 0 fail, 1 inconclusive, 0 not comparable, 4 not run** (of 5 claims)." in text
    assert "Comparisons: 7 made: 2 hold, 0 fail, 2 inconclusive, 0 not comparable, 3 not run." in text
    assert "Corrected for making 2 tests" in text
    low, high = t_interval([2.0, 1.9, 2.1])
    assert f"| yelp | KL | DELLA > Memory | 3.1 vs 1.1 | +2 [{low:+.4g}, {high:+.4g}] (n=3) | 0.1 | holds |" in text
    assert "| yahoo | KL | DELLA > Memory | 0.5 vs 1 | -0.5 (n=1) | 0.1 | inconclusive | 27.84 > 4.87 | ✓ |" in text
    rows = read_csv(table)
    assert {r["claim"] for r in rows} == {"kl", "ppl", "order"}  # the sweep's have no comparison to make
    yelp_memory = next(r for r in rows if r["dataset"] == "yelp" and r["second"] == "Memory")
    assert (yelp_memory["verdict"], yelp_memory["paired_seeds"], yelp_memory["holds_after_correction"]) == (
        HOLDS,
        "0 1 2",
        "True",
    )
    assert float(yelp_memory["difference_low"]) == pytest.approx(low)


def test_findings_command_with_nothing_run(tmp_path):
    from della.cli import main as cli_main

    out = tmp_path / "paper" / "FINDINGS.md"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            [
                "findings",
                "--spec",
                str(ROOT / "config" / "findings.yaml"),
                "--paper",
                str(PAPER),
                "--scale",
                "paper",
                "--out",
                str(out),
            ]
        )
    assert exit_info.value.code == 0
    n_claims = len(load_claims(ROOT / "config" / "findings.yaml"))
    assert (
        f"**Claims: 0 hold, 0 fail, 0 inconclusive, 0 not comparable, {n_claims} not run** (of {n_claims} claims)"
    ) in out.read_text()


def test_convergence_record_lists_every_run_once_with_its_rule(tmp_path):
    from della.report.figures import convergence_rows, render_convergence

    rule = {
        "last_fraction": 0.25,
        "min_relative_improvement": 0.005,
        "metric": "valid_loss",
        "points": "beta = beta_max",
        "from_step": 75,
        "to_step": 100,
        "from": 30.0,
        "to": 29.97,
        "relative_improvement": 0.001,
        "met": True,
    }
    done = []
    for model, convergence in (("della", rule), ("finetune", None)):
        path = tmp_path / "runs" / "yelp" / model / "seed0" / "train_done.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"steps": 100, "convergence": convergence}))
        done.append(path)
    rows = convergence_rows(done + done[:1])  # a run shared by two experiments is listed once
    assert [(r["model"], r["met"]) for r in rows] == [
        ("della", True),
        ("finetune", "not checked (training.convergence null)"),
    ]
    assert rows[0]["from_step"] == 75 and rows[0]["relative_improvement"] == 0.001
    md, csv_path = render_convergence(done, tmp_path / "convergence.md")
    assert "Rule met by 1 of 1 checked runs." in md.read_text()
    assert [row["met"] for row in read_csv(csv_path)] == ["True", "not checked (training.convergence null)"]
    (tmp_path / "bad" / "runs" / "yelp" / "x" / "seed0").mkdir(parents=True)
    bad = tmp_path / "bad" / "runs" / "yelp" / "x" / "seed0" / "train_done.json"
    bad.write_text("{")
    with pytest.raises(FigureError, match="not a train_done.json"):
        convergence_rows([bad])


def _edited_yaml(tmp_path, source: Path, change) -> Path:
    spec = yaml.safe_load(source.read_text())
    change(spec)
    path = tmp_path / source.name
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda s: s["figures"]["fig3"].update(posterior="median"),
            r"figures\.fig3\.posterior: 'median' is not one of",
        ),
        (lambda s: s["figures"]["fig2"].pop("metrics"), r"figures\.fig2: 'metrics' is a required property"),
        (lambda s: s["figures"].update(fig5={"title": "x"}), r"figures: unknown key 'fig5'"),
        (
            lambda s: s["figures"]["fig4"].update(n_prompts=0),
            r"figures\.fig4\.n_prompts: 0 is less than the minimum of 1",
        ),
    ],
)
def test_a_malformed_figures_file_is_named_in_one_line(tmp_path, change, message):
    from della.report.figures import load_spec

    path = _edited_yaml(tmp_path, ROOT / "config" / "figures.yaml", change)
    with pytest.raises(FigureError, match=message) as error:
        load_spec(path)
    assert str(error.value).startswith(str(path)) and "figures.schema.yaml" in str(error.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda s: s["tables"]["table1"].update(kind="metric"), r"tables\.table1\.kind: 'metric' is not one of"),
        (lambda s: s["tables"]["table4"].pop("rows"), r"tables\.table4: 'rows' is a required property"),
        (lambda s: s["metric_directions"].update(PPL="down"), r"metric_directions\.PPL: 'down' is not one of"),
        (
            lambda s: s["tables"]["table6"]["stages"].update(generate_hours="sampling"),
            r"tables\.table6\.stages\.generate_hours: 'sampling' is not one of",
        ),
        (
            lambda s: s["tables"]["table3"]["human_eval"].update(annotators=["a1", "a1"]),
            r"tables\.table3\.human_eval\.annotators: .* has non-unique elements",
        ),
    ],
)
def test_a_malformed_tables_file_is_named_in_one_line(tmp_path, change, message):
    from della.report.table_spec import TableError, load_spec

    path = _edited_yaml(tmp_path, ROOT / "config" / "tables.yaml", change)
    with pytest.raises(TableError, match=message) as error:
        load_spec(path)
    assert str(error.value).startswith(str(path)) and "tables.schema.yaml" in str(error.value)
