"""The numbers of every rendered table, held against a reference: the renderer (della/report/tables.py)
was rebuilt on pandas (issue 20), and its tables may change in form, never in numbers.

`tests/data/table_numbers.csv` was written by the hand-written renderer it replaced, from the
inputs of `scenarios` below: every kind of table (metrics, data, benchmark, human) from the other
test files' inputs, and Tables 1, 1-probe, 4, 6 and 7 from a real small-scale run
(`tests/data/small_run.tar.gz`, see tests/data/README.md). Per cell it holds the CSV's numbers
(ours_mean, ours_std, n_seeds, paper, diff: compared to 1e-12) and what the Markdown shows in
that cell (ours with its ± and bold, the paper's number, Δ, n/a, not run, –: compared exactly).
A second test checks that the LaTeX shows what the Markdown shows.

Rewrite the reference only when a number is meant to change:
`python tests/test_table_numbers.py --write-reference`.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from della.report.tables import load_spec, table_spec

from helpers import ROOT
from helpers.human_eval import export_forms, keys_of, simulate
from helpers.probe import table_runs
from helpers.tables import (
    TOY_SPEC,
    render_files,
    row_cells,
    write_paper,
    write_run_metrics,
    write_table6_runs,
    write_table7_stats,
    write_toy_runs,
)

DATA = ROOT / "tests" / "data"
REFERENCE = DATA / "table_numbers.csv"
SMALL_RUN = DATA / "small_run.tar.gz"
SPEC_PATH = ROOT / "config" / "tables.yaml"
PAPER = ROOT / "results" / "paper_tables.csv"

NUMBER_FIELDS = ["ours_mean", "ours_std", "paper", "diff"]
KEY_FIELDS = ["scenario", "dataset", "model", "metric"]  # a cell of the CSV
SUB_ROWS = {"shown_ours": "ours", "shown_paper": "paper", "shown_diff": "Δ"}  # what the Markdown shows in each sub-row
TEXT_FIELDS = ["n_seeds", *SUB_ROWS]  # compared exactly
REFERENCE_FIELDS = ["table", *KEY_FIELDS, *NUMBER_FIELDS, *TEXT_FIELDS]
RELATIVE_TOLERANCE = 1e-12  # means and stds may be summed in another order


@dataclass
class Scenario:
    name: str
    table: str
    config: dict
    paper: Path
    sources: dict[str, list] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- inputs


def small_run_files(root: Path, pattern: str) -> list[Path]:
    return sorted(root.glob(pattern))


def with_datasets(config: dict, table: str, datasets: list[str], paper_out: Path) -> tuple[dict, Path]:
    """The tables config and paper CSV with `table` cut down to `datasets` (the small run has two
    of Table 6's and Table 7's seven datasets)."""
    config = copy.deepcopy(config)
    spec = config["tables"][table]
    spec["datasets"] = [d for d in spec["datasets"] if (d if isinstance(d, str) else d["name"]) in datasets]
    with open(PAPER, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["table"] != table or r["dataset"] in datasets]
    with open(paper_out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return config, paper_out


def second_seed(first: Path) -> Path:
    """A seed-1 copy of a real run, every value moved by a few per cent, so its table has a ±."""
    document = json.loads(first.read_text())
    document["seed"] = 1
    for k, entry in enumerate(document["metrics"].values()):
        entry["value"] = entry["value"] * (1 + 0.01 * (k % 7 - 3))
    path = first.parent.parent / "seed1" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def probe_columns_of_the_run(config: dict) -> dict:
    """The tables config with the probe table's columns cut to those the reference was written
    with (before the probe on samples and the untrained floor; the small run measured only them)."""
    config = copy.deepcopy(config)
    spec = config["tables"]["table1_probe"]
    measured = ("Probe[{label}]", "Probe-F1[{label}]", "Majority[{label}]")
    spec["columns"] = [c for c in spec["columns"] if c in measured]
    for row in spec["rows"]:
        if isinstance(row, dict):
            row["not_applicable"] = [c for c in row["not_applicable"] if c in measured]
    return config


def small_run_scenarios(root: Path, config: dict) -> list[Scenario]:
    with tarfile.open(SMALL_RUN) as tar:
        tar.extractall(root, filter="data")
    table1_models = ["finetune", "optimus", "embedding", "memory", "softmax", "della"]
    table1 = [root / "runs" / d / m / "seed0" / "metrics.json" for d in ("yelp", "yahoo") for m in table1_models]
    table4 = [
        p
        for p in small_run_files(root, "runs/yelp/*/seed0/metrics.json")
        if p.parts[-3]
        not in ("finetune", "optimus", "embedding", "memory", "softmax", "della_layers_from3", "della_layers_to2")
    ]
    extra = root / "runs" / "yelp" / "della_layers_from3" / "seed0" / "metrics.json"  # a model with no row
    table6_config, table6_paper = with_datasets(config, "table6", ["yelp", "yahoo"], root / "paper6.csv")
    table7_config, table7_paper = with_datasets(config, "table7", ["yelp", "yahoo"], root / "paper7.csv")
    return [
        Scenario("small/table1", "table1", config, PAPER, {"metrics": table1}),
        Scenario("small/table1_probe", "table1_probe", probe_columns_of_the_run(config), PAPER, {"metrics": table1}),
        Scenario("small/table1+row from the data", "table1", config, PAPER, {"metrics": table1 + [extra]}),
        Scenario("small/table4", "table4", config, PAPER, {"metrics": table4}),
        Scenario(
            "small/table4, two seeds", "table4", config, PAPER, {"metrics": table4 + [second_seed(p) for p in table4]}
        ),
        Scenario(
            "small/table6",
            "table6",
            table6_config,
            table6_paper,
            {
                "benchmarks": small_run_files(root, "results/small/benchmarks/*/*/della/seed0.tsv"),
                "metrics": small_run_files(root, "runs/*/della/seed0/metrics.json"),
            },
        ),
        Scenario(
            "small/table7", "table7", table7_config, table7_paper, {"stats": small_run_files(root, "data/*/stats.json")}
        ),
    ]


def table2_runs(root: Path, config: dict) -> list[Path]:
    """Two seeds of every Table 2 row (its rows differ per dataset), no latent metrics for the
    fine-tuned models."""
    spec = table_spec(config, "table2")
    rng = np.random.default_rng(2)
    files = []
    for dataset in spec.dataset_names:
        for entry in spec.rows[dataset]:
            label, absent = (entry, []) if isinstance(entry, str) else (entry["name"], entry["not_applicable"])
            for seed in (0, 1):
                values = {m: float(rng.uniform(0, 60)) for m in spec.columns if m not in absent}
                files.append(
                    write_run_metrics(
                        root, dataset, label.lower().replace("-", ""), label, seed, values, config["metric_directions"]
                    )
                )
    return files


def toy_scenarios(root: Path, config: dict) -> list[Scenario]:
    for sub in ("toy", "table6", "table7", "probe", "table2"):
        (root / sub).mkdir()
    toy_files, _ = write_toy_runs(root / "toy")
    table6_metrics, table6_benchmarks, _ = write_table6_runs(root / "table6", table_spec(config, "table6"))
    table7_stats, _ = write_table7_stats(root / "table7", table_spec(config, "table7"))
    exported = export_forms(root / "human")
    annotations, _ = simulate(exported, noise=1)
    return [
        Scenario("toy/toy", "toy", TOY_SPEC, write_paper(root / "toy_paper.csv"), {"metrics": toy_files}),
        Scenario("toy/table2", "table2", config, PAPER, {"metrics": table2_runs(root / "table2", config)}),
        Scenario("toy/table6", "table6", config, PAPER, {"metrics": table6_metrics, "benchmarks": table6_benchmarks}),
        Scenario("toy/table7", "table7", config, PAPER, {"stats": table7_stats}),
        Scenario(
            "toy/table1_probe",
            "table1_probe",
            probe_columns_of_the_run(config),
            PAPER,
            {"metrics": table_runs(root / "probe")},
        ),
        Scenario("toy/table3", "table3", config, PAPER, {"keys": keys_of(exported), "annotations": annotations}),
    ]


def scenarios(root: Path) -> list[Scenario]:
    config = load_spec(SPEC_PATH)
    (root / "small").mkdir(parents=True)
    (root / "toy").mkdir()
    return small_run_scenarios(root / "small", config) + toy_scenarios(root / "toy", config)


# ------------------------------------------------------------------------------ what is shown


def markdown_cells(markdown: str) -> dict[tuple[str, str, str, str], str]:
    """(block, row, sub-row, column) -> the text of a cell of a rendered Markdown table; a row's
    label is carried down to its paper and Δ sub-rows, arrows are left out of column names."""
    cells, block, header, row = {}, "", None, ""
    for line in markdown.splitlines():
        if line.startswith("### "):
            block, header = line[4:].strip(), None
            continue
        if not line.startswith("|"):
            header = None
            continue
        texts = row_cells(line)
        if header is None:
            header = [re.sub(r" [↑↓]$", "", text) for text in texts]
            continue
        if all(set(text) <= set(":-") for text in texts):  # the alignment line
            continue
        row = texts[0] or row
        for column, text in zip(header[2:], texts[2:], strict=True):
            cells[block, row, texts[1], column] = text
    return cells


LATEX_TO_TEXT = [
    (r"$\pm$", "±"),
    (r"$\Delta$", "Δ"),
    (r"\_", "_"),
    (r"\&", "&"),
    (r"\%", "%"),
    (r"\#", "#"),
    ("--", "–"),
]


def latex_cells(tex: str) -> list[str]:
    """The value cells of a rendered LaTeX table's body rows (ours, paper, Δ), in order, as the
    Markdown writes them (`\\textbf{x}` as `**x**`)."""
    cells = []
    for line in tex.splitlines():
        texts = [text.strip() for text in line.removesuffix(r"\\").split(" & ")]
        sub_row = next((i for i, text in enumerate(texts) if text in ("ours", "paper", r"$\Delta$")), None)
        if not line.endswith(r"\\") or sub_row is None:
            continue  # not a body row: a header, a block title, a rule or the footer
        for text in texts[sub_row + 1 :]:
            bold = re.fullmatch(r"\\textbf\{(.*)\}", text)
            text = bold[1] if bold else text
            for latex, plain in LATEX_TO_TEXT:
                text = text.replace(latex, plain)
            cells.append(f"**{text}**" if bold else text)
    return cells


def markdown_row(shown: dict, block: str, dataset: str, model: str) -> str:
    """The Markdown row of a CSV cell: its model, or in a table of datasets its dataset (and model
    when a dataset has several rows)."""
    rows = {key[1] for key in shown if key[0] == block}
    return next((r for r in (model, dataset, f"{dataset} / {model}") if r in rows), model)


def numbers_of(scenario: Scenario, out_dir: Path) -> list[dict]:
    """Reference records of one rendered table: per cell of its CSV (and per table-wide summary,
    such as the agreement), the CSV's numbers and what the Markdown shows in each sub-row."""
    with open(out_dir / f"{scenario.table}.csv", newline="", encoding="utf-8") as f:
        numbers = list(csv.DictReader(f))
    shown = markdown_cells((out_dir / f"{scenario.table}.md").read_text(encoding="utf-8"))
    single_block = scenario.config["tables"][scenario.table]["kind"] in ("data", "benchmark")
    records = []
    for number in numbers:
        block = "" if single_block else number["dataset"]
        row = markdown_row(shown, block, number["dataset"], number["model"])
        cells = {field: shown.get((block, row, sub_row, number["metric"]), "") for field, sub_row in SUB_ROWS.items()}
        cells["shown_ours"] = without_interval(cells["shown_ours"], number)
        records.append(
            {
                "table": scenario.table,
                "scenario": scenario.name,
                **{name: number[name] for name in ["dataset", "model", "metric", "n_seeds"] + NUMBER_FIELDS},
                **cells,
            }
        )
    return records


INTERVAL = re.compile(r"^(?P<rest>.*?) \[(?P<low>-?[\d.]+), (?P<high>-?[\d.]+)\](?P<bold>\*\*)?$")


def without_interval(shown: str, number: dict) -> str:
    """What a cell shows without the 95 % interval the renderer added after the reference was
    written (issue 30), checked here against the CSV's ours_low / ours_high at the shown decimals."""
    match = INTERVAL.match(shown)
    if match is None:
        assert number.get("ours_low", "") in ("", number.get("ours_high")), (shown, number)
        return shown
    for side in ("low", "high"):
        decimals = len(match[side].partition(".")[2])
        assert float(match[side]) == pytest.approx(float(number[f"ours_{side}"]), abs=0.5 * 10**-decimals + 1e-9)
    return match["rest"] + (match["bold"] or "")


def render_all(root: Path) -> list[tuple[Scenario, Path]]:
    """Every scenario rendered, each into its own folder."""
    done = []
    for k, scenario in enumerate(scenarios(root / "inputs")):
        out_dir = root / "out" / str(k)
        render_files(scenario.table, scenario.config, scenario.paper, out_dir, **scenario.sources)
        done.append((scenario, out_dir))
    return done


def read_reference() -> list[dict]:
    with open(REFERENCE, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def keyed(records: list[dict]) -> dict[tuple, dict]:
    found = {}
    for record in records:
        key = tuple(record[name] for name in KEY_FIELDS)
        assert key not in found, f"two cells at {key}"
        found[key] = record
    return found


def same_number(ours: str, reference: str) -> bool:
    if ours == "" or reference == "":
        return ours == reference
    return float(ours) == pytest.approx(float(reference), rel=RELATIVE_TOLERANCE, abs=1e-12)


# --------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[tuple[Scenario, Path]]:
    return render_all(tmp_path_factory.mktemp("table_numbers"))


def test_every_rendered_table_has_the_reference_numbers(rendered):
    reference = keyed(read_reference())
    now = keyed([record for scenario, out_dir in rendered for record in numbers_of(scenario, out_dir)])
    assert sorted(now) == sorted(reference), "cells added or lost"
    differing = [
        (key, name, now[key][name], ref[name])
        for key, ref in reference.items()
        for name in NUMBER_FIELDS + TEXT_FIELDS
        if not (same_number(now[key][name], ref[name]) if name in NUMBER_FIELDS else now[key][name] == ref[name])
    ]
    assert not differing, f"{len(differing)} differ, e.g. {differing[:5]}"


def test_the_reference_covers_every_kind_of_table_and_cell():
    reference = read_reference()
    shown = {r[field] for r in reference for field in SUB_ROWS}
    assert {"n/a", "not run", "–"} <= shown
    assert any(s.startswith("**") for s in shown) and any("±" in s for s in shown)
    tables = load_spec(SPEC_PATH)["tables"]
    assert {tables[r["table"]]["kind"] for r in reference if r["table"] in tables} == {
        "metrics",
        "data",
        "benchmark",
        "human",
    }
    assert any(r["model"].startswith("Krippendorff") for r in reference)  # Table 3's agreement


def test_latex_shows_what_markdown_shows(rendered):
    for scenario, out_dir in rendered:
        markdown = markdown_cells((out_dir / f"{scenario.table}.md").read_text(encoding="utf-8"))
        latex = latex_cells((out_dir / f"{scenario.table}.tex").read_text(encoding="utf-8"))
        assert latex == list(markdown.values()), scenario.name


if __name__ == "__main__" and sys.argv[1:] == ["--write-reference"]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        records = [record for scenario, out_dir in render_all(Path(tmp)) for record in numbers_of(scenario, out_dir)]
    with open(REFERENCE, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=REFERENCE_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    print(f"wrote {REFERENCE} ({len(records)} cells)")


def test_cells_over_several_seeds_show_their_interval(rendered):
    """Two seeds: each cell shows mean ± std [95 % t interval]; one seed shows no interval."""
    two = next(out for scenario, out in rendered if scenario.name == "small/table4, two seeds")
    one = next(out for scenario, out in rendered if scenario.name == "small/table4")
    shown = [
        text
        for (_, _, sub_row, _), text in markdown_cells((two / "table4.md").read_text()).items()
        if sub_row == "ours"
    ]
    spread = [text for text in shown if "±" in text and not re.search(r"± 0(\.0+)?(\*\*)?$", text)]
    assert spread and all(INTERVAL.match(text) for text in spread)  # seeds that agree: the point itself
    assert not any(INTERVAL.match(text) for text in markdown_cells((one / "table4.md").read_text()).values())
