"""Tables from hand-written runs: metrics and benchmark files as the workflow writes them, rendered tables read back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from della.report.tables import (
    SECONDS_PER_HOUR,
    TableSpec,
    render_table,
    table_spec,
)
from della.report.tidy import BENCHMARK_PATH, DATA_EXPERIMENT, SECONDS_SUFFIX, read_metrics_file, tidy_frame

# A small table of our own so the tests do not depend on the real table layouts.
TOY_SPEC = {
    "metric_directions": {"PPL": "lower", "BLEU": "higher", "AU": "higher", "KL": "higher"},
    "default_decimals": 2,
    "integer_columns": ["AU"],
    "tables": {
        "toy": {
            "title": "Toy table",
            "kind": "metrics",
            "datasets": ["yelp"],
            "columns": ["PPL", "BLEU", "AU", "KL"],
            "rows": [{"name": "GPT-2", "not_applicable": ["AU", "KL"]}, "DELLA", {"name": "Extra", "optional": True}],
        }
    },
}


TOY_PAPER = {("GPT-2", "PPL"): 22.13, ("DELLA", "PPL"): 12.35, ("DELLA", "BLEU"): 57.15, ("DELLA", "KL"): 29.47}


def tidy_of(experiment: str, metrics=(), benchmarks=(), stats=()):
    """The long table of the given files (della/report/tidy.py), every run in `experiment`: what the
    workflow's tidy rule gives a table, without the workflow."""
    runs = [[obs.dataset, obs.model or obs.label, obs.seed] for obs in map(read_metrics_file, metrics)]
    runs += [[m["dataset"], m["model"], int(m["seed"])] for m in (BENCHMARK_PATH.search(str(p)) for p in benchmarks)]
    unique = [list(run) for run in dict.fromkeys(map(tuple, runs))]
    return tidy_frame({experiment: unique}, metrics, benchmarks, stats)


def render_files(
    table_id: str,
    config: dict,
    paper: Path,
    out_dir: Path,
    metrics=(),
    benchmarks=(),
    stats=(),
    keys=(),
    annotations=(),
):
    """render_table on the long table of these files (or, for a human table, the forms)."""
    tidy, run_settings = tidy_of(table_spec(config, table_id).experiment, metrics, benchmarks, stats)
    return render_table(
        table_id, config, paper, out_dir, tidy, run_settings, {"keys": keys, "annotations": annotations}
    )


def write_paper(path: Path) -> Path:
    lines = ["table,dataset,model,metric,value"]
    lines += [f"toy,yelp,{model},{metric},{value}" for (model, metric), value in TOY_PAPER.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_metrics(dir_: Path, label: str, seed: int, values: dict, dataset: str = "yelp") -> Path:
    directions = TOY_SPEC["metric_directions"]
    doc = {
        "dataset": dataset,
        "model": label.lower(),
        "label": label,
        "seed": seed,
        "metrics": {
            m: {"value": v, "higher_is_better": directions[m] == "higher", "settings": {"iw_samples": 30}}
            for m, v in values.items()
        },
        "versions": {"torch": "2.13.0"},
        "settings": {"beta": 1.0},
        "git_commit": f"commit-of-{label}",
        "device": "cpu (toy)",
    }
    path = dir_ / f"{dataset}_{label}_seed{seed}.json"
    path.write_text(json.dumps(doc))
    return path


def write_toy_runs(dir_: Path) -> tuple[list[Path], dict[str, list[dict]]]:
    """Two DELLA seeds, one GPT-2 seed; returns (files, the values that went in)."""
    rng = np.random.default_rng(0)
    della = [
        {
            "PPL": float(rng.uniform(10, 14)),
            "BLEU": float(rng.uniform(50, 60)),
            "AU": int(rng.integers(10, 30)),
            "KL": float(rng.uniform(20, 30)),
        }
        for _ in range(2)
    ]
    gpt2 = {"PPL": 25.0, "BLEU": 70.0}  # BLEU above DELLA's: it must be bolded; PPL worse: not
    files = [write_metrics(dir_, "DELLA", s, v) for s, v in enumerate(della)]
    files.append(write_metrics(dir_, "GPT-2", 0, gpt2))
    return files, {"DELLA": della, "GPT-2": [gpt2]}


def row_cells(line: str) -> list[str]:
    """The cells of one line of a Markdown table, without their padding."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def ours_line(md: str, label: str) -> list[str]:
    """The value cells of a row's `ours` line in a rendered Markdown table."""
    return next(cells[2:] for cells in map(row_cells, md.splitlines()) if cells[:2] == [label, "ours"])


def write_stats(dir_: Path, dataset: str, splits: dict, avg_text: float, avg_target: float | None) -> Path:
    doc = {
        "dataset": dataset,
        "splits": splits,
        "avg_len_text": avg_text,
        "avg_len_target": avg_target,
        "length_unit": "whitespace tokens",
        "skipped": {"empty": 0},
        "seed": 0,
    }
    path = dir_ / dataset / "stats.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(doc))
    return path


def write_table7_stats(dir_: Path, spec: TableSpec) -> tuple[list[Path], dict[str, dict]]:
    """A stats.json per dataset of Table 7 (no target length where it is not applicable);
    returns the files and each dataset's values by column."""
    files, inputs = [], {}
    for i, row in enumerate(spec.expand_rows()):
        splits = {"train": 1000 + i, "valid": 100 + i, "test": 50 + i}
        target = None if row.not_applicable else 20.5 + i
        files.append(write_stats(dir_, row.dataset, splits, 10.25 + i, target))
        inputs[row.dataset] = {**splits, "avg length (source/text)": 10.25 + i, "avg length (target)": target}
    return files, inputs


BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def write_run(root: Path, dataset: str, seed: int, seconds: dict[str, list[float]], device: str) -> Path:
    """Benchmark files of the stages (one line per repeat) and the run's metrics.json."""
    for stage, repeats in seconds.items():
        path = root / "results" / "benchmarks" / stage / dataset / "della" / f"seed{seed}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{s}\t0:00:01\t100\t200\t90\t95\t0.1\t0.2\t50.0\t{s / 2}" for s in repeats]
        path.write_text("\n".join([BENCHMARK_HEADER] + lines) + "\n")
    metrics = root / "runs" / dataset / "della" / f"seed{seed}" / "metrics.json"
    metrics.parent.mkdir(parents=True, exist_ok=True)
    metrics.write_text(
        json.dumps(
            {
                "dataset": dataset,
                "model": "della",
                "label": "DELLA",
                "seed": seed,
                "metrics": {},
                "device": device,
                "versions": {"torch": "2.13.0"},
            }
        )
    )
    return metrics


def write_table6_runs(root: Path, spec: TableSpec) -> tuple[list[Path], list[str], dict[tuple[str, str], list[float]]]:
    """DELLA's runs of every Table 6 dataset (two seeds, the second with two benchmark repeats,
    on the first); returns the metrics.json files, the benchmark files and the hours expected
    per (dataset, column), one per seed."""
    stages = spec.stages
    rng = np.random.default_rng(1)
    metrics, expected = [], {}
    for i, dataset in enumerate(spec.dataset_names):
        seeds = [0, 1] if i == 0 else [0]  # two seeds on the first dataset: mean ± std
        for seed in seeds:
            seconds = {stage: rng.uniform(10, 5000, size=1 + seed).tolist() for stage in sorted(set(stages.values()))}
            metrics.append(write_run(root, dataset, seed, seconds, device=f"GPU-{i % 2}"))
            for column, stage in stages.items():
                expected.setdefault((dataset, column), []).append(np.mean(seconds[stage]) / 3600)
    benchmarks = sorted(str(p) for p in (root / "results" / "benchmarks").rglob("*.tsv"))
    return metrics, benchmarks, expected


def write_run_metrics(
    runs_dir: Path, dataset: str, model: str, label: str, seed: int, values: dict, directions: dict
) -> Path:
    """A metrics.json as the evaluate rule writes it (docs/interfaces.md)."""
    document = {
        "dataset": dataset,
        "model": model,
        "label": label,
        "seed": seed,
        "metrics": {
            m: {"value": v, "higher_is_better": directions[m] == "higher", "settings": {}} for m, v in values.items()
        },
        "settings": {},
        "versions": {"torch": torch.__version__},
    }
    path = runs_dir / dataset / model / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    return path


def table_cells(table_csv: Path) -> list[dict]:
    with open(table_csv, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row["ours_mean"] not in ("", "n/a")]


def assert_table_cells_come_from_tidy(table_csv: Path, tidy: pd.DataFrame, experiment: str, spec: TableSpec) -> int:
    """Each cell of a rendered table (its CSV) is the mean of the tidy rows of the same experiment,
    dataset, row label and metric (for a data table: the stats field the column names; for a
    benchmark table: the stages' seconds, in hours). Returns the number of cells checked."""
    cells = table_cells(table_csv)
    for cell in cells:
        if spec.kind == "data":
            rows = tidy[
                (tidy.experiment == DATA_EXPERIMENT)
                & (tidy.dataset == cell["dataset"])
                & (tidy.metric == spec.stats_fields[cell["metric"]])
            ]
            expected = rows.value.mean()
        elif spec.kind == "benchmark":
            rows = tidy[
                (tidy.experiment == experiment)
                & (tidy.dataset == cell["dataset"])
                & (tidy.label == cell["model"])
                & (tidy.metric == f"{spec.stages[cell['metric']]}{SECONDS_SUFFIX}")
            ]
            expected = (rows.groupby("seed").value.sum() / SECONDS_PER_HOUR).mean()
        else:
            rows = tidy[
                (tidy.experiment == experiment)
                & (tidy.dataset == cell["dataset"])
                & (tidy.label == cell["model"])
                & (tidy.metric == cell["metric"])
            ]
            expected = rows.value.mean()
            assert len(rows) == int(cell["n_seeds"]), cell
        assert len(rows), f"{table_csv}: no row of metrics.csv for {cell}"
        assert float(cell["ours_mean"]) == pytest.approx(expected, rel=1e-9, abs=1e-12), cell
    return len(cells)
