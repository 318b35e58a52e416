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
from conftest import tiny_corpus

from della.figures import (
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
from della.figures import (
    main as figure_main,
)
from della.findings import (
    FAILS,
    HOLDS,
    NOT_PRINTED,
    NOT_RUN,
    FindingsError,
    Numbers,
    evaluate,
    load_claims,
    write_findings,
)

from della.tidy import COLUMNS, read_metrics_file
from test_tables import tidy_of

ROOT = Path(__file__).resolve().parents[1]
SPEC = load_spec(ROOT / "config" / "figures.yaml")
FIG2_EXPERIMENT = SPEC["figures"]["fig2"]["experiment"]


def tidy_of_experiments(runs: dict[str, list[Path]]) -> tuple[pd.DataFrame, dict]:
    """The long table (della/tidy.py) of metrics.json files by experiment, as the workflow's
    parts joined."""
    parts = [tidy_of(experiment, files) for experiment, files in runs.items()]
    frame = pd.concat([part for part, _ in parts], ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    return frame, {key: value for _, settings in parts for key, value in settings.items()}
PAPER = ROOT / "results" / "paper_tables.csv"
PNG_MAGIC, PDF_MAGIC = b"\x89PNG", b"%PDF"


def write_metrics(root: Path, dataset: str, model: str, label: str, seed: int, values: dict, n_groups: int | None = 4,
                  latent_layers: dict | None = None) -> Path:
    """A metrics.json as della/evaluate.py writes it (only the fields figures and findings read)."""
    metrics = {name: {"value": value, "settings": {"scale": 1.0}} for name, value in values.items()}
    if n_groups is not None:
        metrics["AU"] = {"value": values.get("AU", 0.0), "settings": {"au_threshold": 0.2, "n_groups": n_groups}}
    model_settings = {"path": "della"} if latent_layers is None else {"path": "della", "latent_layers": latent_layers}
    path = root / "runs" / dataset / model / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"dataset": dataset, "model": model, "label": label, "seed": seed, "metrics": metrics,
                                "settings": {"model": model_settings}}))
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
        write_metrics(root, "yelp", "from3", "DELLA (layers 3-L)", 0, {"PPL": 13.0, "KL": 6.0, "ELBO": 110.0}, 2,
                      {"start": 3, "end": None}),
        write_metrics(root, "yelp", "to2", "DELLA (layers 1-2)", 0, {"PPL": 15.0, "KL": 4.0, "ELBO": 120.0}, 2,
                      {"start": 1, "end": 2}),
        write_metrics(root, "yelp", "to1", "DELLA (layers 1-1)", 0, {"PPL": 16.0, "KL": 2.0, "ELBO": 130.0}, 1,
                      {"start": 1, "end": 1}),
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
    assert float(full["mean"]) == pytest.approx(11.0) and float(full["std"]) == pytest.approx(statistics.stdev([10, 12]))
    assert full["n_seeds"] == "2" and full["seeds"] == "0 1" and int(full["n_latent_layers"]) == 4
    assert ppl[START, 3, 4]["std"] == "" and int(ppl[START, 3, 4]["n_latent_layers"]) == 2
    assert json.loads(full["settings"]) == {"scale": 1.0} and len(full["sources"].split()) == 2
    assert len(rows) == 5 * len(SPEC["figures"]["fig2"]["metrics"])


def test_fig2_rejects_runs_it_cannot_place(tmp_path):
    files = layer_sweep(tmp_path)
    middle = write_metrics(tmp_path, "yelp", "mid", "DELLA (layers 2-3)", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0}, 2,
                           {"start": 2, "end": 3})
    with pytest.raises(FigureError, match="layers 2..3 neither start at layer 1 nor end at the last layer"):
        layer_points([layer_run(read_metrics_file(p), ["PPL"]) for p in [*files, middle]], ["PPL"])
    inconsistent = write_metrics(tmp_path, "yelp", "bad", "bad", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0}, 3,
                                 {"start": 1, "end": 2})
    with pytest.raises(FigureError, match="latent_layers .* but 3 latent groups"):
        layer_run(read_metrics_file(inconsistent), ["PPL"])
    no_latent = write_metrics(tmp_path, "yelp", "gpt2", "GPT-2", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0}, None)
    other_dataset = write_metrics(tmp_path, "yahoo", "della", "DELLA", 0, {"PPL": 1.0, "KL": 1.0, "ELBO": 1.0})
    other_dataset.write_text(other_dataset.read_text().replace('"scale": 1.0', '"scale": 2.0'))
    assert len(render_latent_layers(SPEC, *tidy_of(FIG2_EXPERIMENT, [*files, other_dataset]), tmp_path / "both")) == 3
    files[1].write_text(files[1].read_text().replace('"scale": 1.0', '"scale": 2.0'))
    with pytest.raises(FigureError, match="metric 'PPL' on yelp measured with different settings"):
        render_latent_layers(SPEC, *tidy_of(FIG2_EXPERIMENT, files), tmp_path / "mixed")
    tidy, run_settings = tidy_of(FIG2_EXPERIMENT, [no_latent])  # the command reads them as the workflow writes them
    tidy.to_csv(tmp_path / "metrics.csv", index=False)
    (tmp_path / "run_settings.json").write_text(json.dumps(run_settings))
    assert figure_main(["--spec", str(ROOT / "config/figures.yaml"), "fig2", "--tidy", str(tmp_path / "metrics.csv"),
                        "--run-settings", str(tmp_path / "run_settings.json"), "--out", str(tmp_path / "x")]) == 1
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------------------------
# Fig. 3 and training curves, on a tiny trained DELLA
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(tiny_backbones, tmp_path_factory):
    from della.train import TrainSettings, train
    from della.vae import VAEConfig

    root = tmp_path_factory.mktemp("trained")
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(16, seed=1)))
    (root / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(12, seed=2)))
    config = VAEConfig(path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False,
                       latent_size=8, max_target_tokens=16)
    settings = TrainSettings(batch_size=4, learning_rate=1e-3, max_steps=3, log_every=1, checkpoint_every=3)
    train(config, settings, root / "train.jsonl", root / "run", seed=0)
    return root


GREEDY = {"strategy": "greedy", "max_new_tokens": 8}


def test_fig3_interpolation_ends_decode_the_two_test_sentences(trained_run, tmp_path):
    from della.batches import load_records, target_of
    from della.generate import load_model, reconstruct

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
    assert list(beta.get_xdata()) == [e["step"] for e in entries] and list(beta.get_ydata()) == [e["beta"] for e in entries]
    written = render_training_curves(SPEC, log, "tiny", tmp_path / "curves")
    assert [p.read_bytes()[:4] for p in written] == [PNG_MAGIC, PDF_MAGIC]


def test_training_curves_draw_validation_at_the_steps_it_ran():
    entries = [{"step": step, "beta": 1.0, "reconstruction": 50.0 - step, "kl_per_group": [1.0, 2.0]}
               for step in (10, 20, 30, 40)]
    assert "valid_loss" not in {ax.get_title().split()[0] for ax in training_curve_figure(SPEC, entries, "t").axes}
    for entry, loss in zip(entries[1::2], (40.0, 35.0)):  # validated at steps 20 and 40 only
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
    rows = [{"id": i, "source": s, "reference": f"story {i}", "generated": f"{label} on {s}"} for i, s in enumerate(sources)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path.with_suffix(".settings.json").write_text(json.dumps({"generation": {"decoding": {"strategy": "beam"}}, "seed": 0}))
    return path


def test_fig4_same_prompts_for_every_model(tmp_path):
    prompts = [f"prompt {i}" for i in range(8)]
    files = [write_samples(tmp_path, "della", "DELLA", prompts), write_samples(tmp_path, "memory", "Memory", prompts[1:])]
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
    assert sorted(curves) == sorted(f"results/x/figures/training/yelp/{m}/seed0.{e}" for m in ("della", "memory")
                                    for e in ("png", "pdf"))  # each run once, though two experiments share one
    convergence = ["results/x/figures/training/convergence.md", "results/x/figures/training/convergence.csv"]
    assert [t for t in targets if "/training/convergence" in t] == convergence  # one record of every run
    assert not any("convergence" in t for t in figure_targets(SPEC, {}, "results/x"))  # no runs, no record


# --------------------------------------------------------------------------------------------
# Findings
# --------------------------------------------------------------------------------------------
CLAIMS = {
    "claims": [
        {"id": "kl", "claim": "DELLA's KL above the others", "source": "T1", "experiment": "table1",
         "datasets": ["yelp", "yahoo"], "metrics": {"KL": "higher"}, "row": "DELLA", "than": ["Memory", "Softmax"]},
        {"id": "ppl", "claim": "DELLA's PPL below Memory's", "source": "T1", "experiment": "table1",
         "datasets": ["yelp"], "metrics": {"PPL": "lower"}, "row": "DELLA", "than": ["Memory"]},
        {"id": "order", "claim": "Ablation order", "source": "T4", "experiment": "table4", "datasets": ["yelp"],
         "metrics": {"KL": "higher"}, "order": ["DELLA", "w/o tensor product", "w/o layer-wise latents"]},
        {"id": "layers", "claim": "More layers, lower PPL", "source": "F2", "kind": "latent_layers",
         "experiment": "fig2", "datasets": ["yelp"], "metrics": {"PPL": "lower"}, "compare": "more_layers"},
        {"id": "start", "claim": "Starting higher beats ending lower", "source": "F2", "kind": "latent_layers",
         "experiment": "fig2", "datasets": ["yelp"], "metrics": {"PPL": "lower"}, "compare": "start_vs_end"},
    ]
}


def findings_of(tmp_path, runs: dict, claims: dict = CLAIMS) -> dict:
    spec = tmp_path / "claims.yaml"
    spec.write_text(yaml.safe_dump(claims))
    return {f.claim["id"]: f for f in evaluate(load_claims(spec), Numbers(*tidy_of_experiments(runs), PAPER))}


def table1_runs(root: Path, della_kl: dict[str, list[float]]) -> list[Path]:
    files = []
    for dataset, kls in della_kl.items():
        for seed, kl in enumerate(kls):
            files.append(write_metrics(root, dataset, "della", "DELLA", seed, {"KL": kl, "PPL": 20.0}))
        files.append(write_metrics(root, dataset, "memory", "Memory", 0, {"KL": 1.0, "PPL": 20.0}))
        files.append(write_metrics(root, dataset, "softmax", "Softmax", 0, {"KL": 2.0, "PPL": 30.0}))
    return files


def test_findings_hold_fail_and_not_run(tmp_path):
    runs = {"table1": table1_runs(tmp_path / "a", {"yelp": [3.0, 5.0], "yahoo": [2.5]}), "fig2": layer_sweep(tmp_path / "b")}
    found = findings_of(tmp_path, runs)
    assert found["kl"].status == HOLDS  # mean over seeds: 4 > 2 > 1 on yelp, 2.5 on yahoo
    assert [c.first.ours for c in found["kl"].comparisons[:1]] == [4.0] and found["kl"].comparisons[0].first.n_seeds == 2
    assert found["ppl"].status == FAILS  # a tie (20 vs 20) does not hold
    assert found["order"].status == NOT_RUN and found["order"].comparisons[0].first.ours is None
    # the sweep's PPL falls with more layers in both series (16 > 15 > 11, 13 > 11), and 3..4 beats 1..2
    assert found["layers"].status == HOLDS and len(found["layers"].comparisons) == 3
    assert found["start"].status == HOLDS and found["start"].paper_status == NOT_PRINTED
    # the paper's printed numbers: DELLA's KL is above Memory's and Softmax's on Yelp and Yahoo
    assert found["kl"].paper_status == HOLDS and found["kl"].comparisons[0].second.paper == 5.70
    worse = findings_of(tmp_path, {"table1": table1_runs(tmp_path / "c", {"yelp": [3.0, 5.0], "yahoo": [1.5]})})
    failing = [c for c in worse["kl"].comparisons if c.holds is False]
    assert worse["kl"].status == FAILS and [(c.dataset, c.second.name) for c in failing] == [("yahoo", "Softmax")]
    assert worse["layers"].status == NOT_RUN and not worse["layers"].comparisons


def test_findings_reverse_when_the_numbers_do(tmp_path):
    files = layer_sweep(tmp_path)
    write_metrics(tmp_path, "yelp", "from3", "DELLA (layers 3-L)", 0, {"PPL": 9.0, "KL": 6.0, "ELBO": 110.0}, 2,
                  {"start": 3, "end": None})  # now fewer layers (3..4) beat all four
    found = findings_of(tmp_path, {"fig2": files})
    assert found["layers"].status == FAILS and found["start"].status == HOLDS
    failing = [(c.first.name, c.second.name) for c in found["layers"].comparisons if c.holds is False]
    assert failing == [("layers 1..4", "layers 3..4")]


def test_findings_name_what_was_not_run(tmp_path):
    claims = {"claims": [dict(CLAIMS["claims"][0], than=["Memroy"])]}
    found = findings_of(tmp_path, {"table1": table1_runs(tmp_path, {"yelp": [3.0]})}, claims)["kl"]
    assert found.status == NOT_RUN
    reasons = {c.second.why_missing for c in found.comparisons}
    assert reasons == {"table1 has no yelp run labelled 'Memroy' (it has ['DELLA', 'Memory', 'Softmax'])",
                       "table1 did not run yahoo"}
    with pytest.raises(FindingsError, match="exactly one of row\\+than, order, pairs"):
        findings_of(tmp_path, {}, {"claims": [dict(CLAIMS["claims"][2], row="DELLA", than=["x"])]})


def test_every_configured_claim_holds_on_the_papers_numbers(tmp_path):
    """A claim that fails on the paper's own printed numbers is mis-written (not a finding)."""
    claims = load_claims(ROOT / "config" / "findings.yaml")
    found = evaluate(claims, Numbers(*tidy_of_experiments({}), PAPER))
    for f in found:
        assert f.status == NOT_RUN
        if f.claim.get("kind") == "latent_layers":
            assert f.paper_status == NOT_PRINTED  # a figure: no printed numbers
        else:
            assert f.paper_status == HOLDS, f.claim["id"]
            printed = [c.paper_holds for c in f.comparisons if c.paper_holds is not None]
            assert len(printed) >= len(f.comparisons) - 1  # at most one cell unreadable in the paper


def test_configured_claims_name_rows_of_the_paper_tables():
    """Every row a claim compares is a row of its experiment's table on each of its datasets
    (a misspelt label would otherwise only ever be "not run")."""
    from della.findings import row_pairs
    from della.tables import expand_rows
    from della.tables import load_spec as load_tables

    tables = load_tables(ROOT / "config" / "tables.yaml")["tables"]
    for claim in load_claims(ROOT / "config" / "findings.yaml"):
        if claim.get("kind") == "latent_layers":
            continue
        for row in {r for pair in row_pairs(claim) for r in pair}:
            rows = {(r.dataset, r.label) for r in expand_rows(row.experiment, tables[row.experiment])}
            assert {(d, row.label) for d in claim["datasets"]} <= rows, (claim["id"], row)


def test_findings_markdown_and_csv(tmp_path):
    runs = {"table1": table1_runs(tmp_path, {"yelp": [3.0], "yahoo": [0.5]})}
    spec = tmp_path / "claims.yaml"
    spec.write_text(yaml.safe_dump(CLAIMS))
    md, table = write_findings(spec, *tidy_of_experiments(runs), PAPER, "sample", tmp_path / "out" / "FINDINGS.md")
    text = md.read_text()
    assert text.startswith("# Findings at sample scale")
    assert "**0 hold, 2 do not hold, 3 not run** (of 5 claims)" in text
    assert "| yahoo | KL | DELLA > Memory | 0.5 > 1 | ✗ | 27.84 > 4.87 | ✓ |" in text
    rows = read_csv(table)
    assert {r["claim"] for r in rows} == {"kl", "ppl", "order"}  # the sweep's claims have no comparison yet
    assert all(r["status"] == FAILS for r in rows if r["claim"] == "kl")


def test_findings_command_with_nothing_run(tmp_path):
    from della.cli import main as cli_main

    out = tmp_path / "paper" / "FINDINGS.md"
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["findings", "--spec", str(ROOT / "config" / "findings.yaml"), "--paper", str(PAPER),
                  "--scale", "paper", "--out", str(out)])
    assert exit_info.value.code == 0
    n_claims = len(load_claims(ROOT / "config" / "findings.yaml"))
    assert f"**0 hold, 0 do not hold, {n_claims} not run** (of {n_claims} claims)" in out.read_text()


def test_convergence_record_lists_every_run_once_with_its_rule(tmp_path):
    from della.figures import convergence_rows, render_convergence

    rule = {"last_fraction": 0.25, "min_relative_improvement": 0.005, "metric": "valid_loss",
            "points": "beta = beta_max", "from_step": 75, "to_step": 100, "from": 30.0, "to": 29.97,
            "relative_improvement": 0.001, "met": True}
    done = []
    for model, convergence in (("della", rule), ("finetune", None)):
        path = tmp_path / "runs" / "yelp" / model / "seed0" / "train_done.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"steps": 100, "convergence": convergence}))
        done.append(path)
    rows = convergence_rows(done + done[:1])  # a run shared by two experiments is listed once
    assert [(r["model"], r["met"]) for r in rows] == [("della", True), ("finetune", "not checked (training.convergence null)")]
    assert rows[0]["from_step"] == 75 and rows[0]["relative_improvement"] == 0.001
    md, csv_path = render_convergence(done, tmp_path / "convergence.md")
    assert "Rule met by 1 of 1 checked runs." in md.read_text()
    assert [row["met"] for row in read_csv(csv_path)] == ["True", "not checked (training.convergence null)"]
    (tmp_path / "bad" / "runs" / "yelp" / "x" / "seed0").mkdir(parents=True)
    bad = tmp_path / "bad" / "runs" / "yelp" / "x" / "seed0" / "train_done.json"
    bad.write_text("{")
    with pytest.raises(FigureError, match="not a train_done.json"):
        convergence_rows([bad])
