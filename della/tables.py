"""Render the paper's tables from our run outputs, beside the paper's printed numbers.

One renderer serves every table: what a table shows (datasets, columns, rows in the paper's
order, which metrics a model does not have) is data in ``config/tables.yaml``, so adding or
changing a table never means another copy of this code. Every cell shows our number (mean ± std
over seeds), the paper's number and the difference, and a footer records the settings, seeds and
package versions behind our numbers, because a number without its settings cannot be compared.

Strictness is deliberate: a metric missing from our files, a row without files or a non-finite
value stops the render with the file named, so a table never silently shows a gap or a NaN.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

from della.io import atomic_write_text

KINDS = ("metrics", "data")
DIRECTIONS = {"lower": False, "higher": True}  # value: higher_is_better
MISSING = "–"  # no paper number / no difference
NOT_APPLICABLE = "n/a"  # the model has no such metric (e.g. KL of a model without latent)
NOT_RUN = "not run"  # an optional row without input files
CSV_HEADER = ["table", "dataset", "model", "metric", "ours_mean", "ours_std", "n_seeds", "paper", "diff"]


class TableError(ValueError):
    """Input that would make a table wrong or incomplete; the message names the file."""


# --------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class RowSpec:
    """One row of a table: which observations fill it and which paper row it is compared to."""

    dataset: str
    label: str  # matched to metrics.json `label` (for data tables: the dataset id)
    paper_model: str  # the `model` column of paper_tables.csv
    optional: bool = False
    not_applicable: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        """Short name for footers and error messages."""
        return self.label if self.label == self.dataset else f"{self.dataset}/{self.label}"


def load_spec(path: Path) -> dict:
    """Read the tables config (the whole file: directions, formats and all tables)."""
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    if not isinstance(config, dict) or not isinstance(config.get("tables"), dict):
        raise TableError(f"{path}: expected a mapping with a 'tables' section")
    return config


def table_spec(config: dict, table_id: str) -> dict:
    """The spec of one table, checked so that later code can trust its shape."""
    tables = config["tables"]
    if table_id not in tables:
        raise TableError(f"unknown table {table_id!r}; the spec defines {sorted(tables)}")
    spec = tables[table_id]
    for key in ("title", "kind", "datasets", "columns"):
        if key not in spec:
            raise TableError(f"table {table_id}: missing key {key!r}")
    if spec["kind"] not in KINDS:
        raise TableError(f"table {table_id}: kind must be one of {KINDS}, not {spec['kind']!r}")
    if spec["kind"] == "metrics":
        if "rows" not in spec:
            raise TableError(f"table {table_id}: missing key 'rows'")
        directions = config.get("metric_directions", {})
        undirected = [c for c in spec["columns"] if directions.get(c) not in DIRECTIONS]
        if undirected:
            raise TableError(f"table {table_id}: no direction (lower/higher) in metric_directions for {undirected}")
    else:
        missing = [c for c in spec["columns"] if c not in spec.get("stats_fields", {})]
        if missing or "paper_model" not in spec:
            raise TableError(f"table {table_id}: a data table needs paper_model and stats_fields for {missing}")
    return spec


def _row_entry(entry, table_id: str) -> tuple[str, bool, frozenset[str]]:
    """A row entry is a plain name or a mapping {name, optional, not_applicable}."""
    if isinstance(entry, str):
        return entry, False, frozenset()
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return entry["name"], bool(entry.get("optional", False)), frozenset(entry.get("not_applicable", ()))
    raise TableError(f"table {table_id}: bad row entry {entry!r}")


def expand_rows(table_id: str, spec: dict) -> list[RowSpec]:
    """All rows of a table in display order, one per (dataset, label)."""
    if spec["kind"] == "data":
        rows = []
        for entry in spec["datasets"]:
            name, optional, na = _row_entry(entry, table_id)
            rows.append(RowSpec(name, name, spec["paper_model"], optional, na))
        return rows
    rows = []
    for dataset in spec["datasets"]:
        entries = spec["rows"][dataset] if isinstance(spec["rows"], dict) else spec["rows"]
        for entry in entries:
            label, optional, na = _row_entry(entry, table_id)
            rows.append(RowSpec(dataset, label, label, optional, na))
    return rows


def block_title(spec: dict, row: RowSpec) -> str | None:
    """Metrics tables get one block per dataset; a data table is a single block of datasets."""
    return row.dataset if spec["kind"] == "metrics" else None


# ------------------------------------------------------------------------------------ readers


# Provenance fields of metrics.json (della/io.py `provenance`) shown beside the package versions.
PROVENANCE_FIELDS = {"python": "python", "git_commit": "della-bench commit", "device": "device"}


def provenance_of(data: dict) -> dict:
    """Package versions plus the Python version, the pipeline's commit and the device."""
    found = dict(data.get("versions") or {})
    found.update({label: data[key] for key, label in PROVENANCE_FIELDS.items() if data.get(key)})
    return found


@dataclass
class Observation:
    """What one metrics.json or stats.json contributes: one seed of one (dataset, label)."""

    path: Path
    dataset: str
    label: str
    seed: int
    values: dict[str, float | None]
    settings: dict[str, dict] = field(default_factory=dict)  # per metric
    run_settings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    higher_is_better: dict[str, bool] = field(default_factory=dict)


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise TableError(f"{path}: cannot read JSON: {e}") from e
    if not isinstance(data, dict):
        raise TableError(f"{path}: expected a JSON object")
    return data


def _require(data: dict, key: str, path: Path):
    if key not in data:
        raise TableError(f"{path}: missing top-level key {key!r}")
    return data[key]


def _seed(data: dict, path: Path) -> int:
    seed = _require(data, "seed", path)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TableError(f"{path}: seed is not an integer: {seed!r}")
    return seed


def check_number(value, path: Path, what: str) -> float:
    """A finite real number, or an error naming the file and the quantity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TableError(f"{path}: {what} is not a number: {value!r}")
    if not math.isfinite(value):
        raise TableError(f"{path}: {what} is not finite: {value!r}")
    return float(value)


def read_metrics_file(path: Path) -> Observation:
    """Read a run's metrics.json (format in docs/interfaces.md)."""
    path = Path(path)
    data = _read_json(path)
    metrics = _require(data, "metrics", path)
    values, settings, directions = {}, {}, {}
    for name, entry in metrics.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise TableError(f"{path}: metric {name!r} has no 'value'")
        values[name] = check_number(entry["value"], path, f"metric {name!r}")
        settings[name] = entry.get("settings") or {}
        if "higher_is_better" in entry:
            directions[name] = bool(entry["higher_is_better"])
    return Observation(
        path=path,
        dataset=_require(data, "dataset", path),
        label=_require(data, "label", path),
        seed=_seed(data, path),
        values=values,
        settings=settings,
        run_settings=data.get("settings") or {},
        versions=provenance_of(data),
        higher_is_better=directions,
    )


def _dotted(data: dict, dotted: str, path: Path):
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            raise TableError(f"{path}: missing field {dotted!r}")
        data = data[key]
    return data


def read_stats_file(path: Path, spec: dict) -> Observation:
    """Read a data/{dataset}/stats.json; columns come from the table's stats_fields.

    A null value is kept as None (the interface allows a null target length for unconditional
    data); whether that is acceptable is decided per row by `not_applicable`.
    """
    path = Path(path)
    data = _read_json(path)
    dataset = _require(data, "dataset", path)
    values = {}
    for column, dotted in spec["stats_fields"].items():
        raw = _dotted(data, dotted, path)
        values[column] = None if raw is None else check_number(raw, path, f"{dotted!r}")
    shared = {key: data[key] for key in spec.get("stats_settings", ()) if key in data}
    return Observation(
        path=path,
        dataset=dataset,
        label=dataset,
        seed=_seed(data, path),
        values=values,
        settings={column: shared for column in values},
    )


def read_paper(paper_csv: Path, table_id: str) -> dict[tuple[str, str, str], float]:
    """The paper's printed numbers of one table, keyed by (dataset, model, metric)."""
    paper = {}
    with open(paper_csv, encoding="utf-8", newline="") as f:
        for line_no, rec in enumerate(csv.DictReader(f), start=2):
            if rec["table"] != table_id:
                continue
            key = (rec["dataset"], rec["model"], rec["metric"])
            if key in paper:
                raise TableError(f"{paper_csv}:{line_no}: duplicate paper value for {key}")
            try:
                value = float(rec["value"])
            except ValueError as e:
                raise TableError(f"{paper_csv}:{line_no}: value is not a number: {rec['value']!r}") from e
            paper[key] = check_number(value, Path(f"{paper_csv}:{line_no}"), "value")
    return paper


# --------------------------------------------------------------------------------- assembling


@dataclass
class Cell:
    """One (row, metric): our per-seed values, the paper's value, and their comparison."""

    row: RowSpec
    metric: str
    values: list[float]
    paper: float | None
    run: bool = True  # False: an optional row whose files are absent

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof=1) over seeds; None for a single seed."""
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def diff(self) -> float | None:
        return None if self.mean is None or self.paper is None else self.mean - self.paper


def group_observations(observations: Iterable[Observation]) -> dict[tuple[str, str], list[Observation]]:
    """Observations by (dataset, label), seeds sorted; a seed given twice is an error."""
    groups: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for obs in observations:
        clash = [o for o in groups[obs.dataset, obs.label] if o.seed == obs.seed]
        if clash:
            raise TableError(f"{obs.path}: seed {obs.seed} of {obs.dataset}/{obs.label} also in {clash[0].path}")
        groups[obs.dataset, obs.label].append(obs)
    for group in groups.values():
        group.sort(key=lambda o: o.seed)
    return dict(groups)


def _settings_key(settings: dict) -> str:
    return json.dumps(settings, sort_keys=True, default=str)


def build_cells(rows: list[RowSpec], columns: list[str], groups: dict, paper: dict) -> list[Cell]:
    """Every (row, column) cell; a required row or metric without our numbers is an error."""
    cells = []
    for row in rows:
        observations = groups.get((row.dataset, row.label), [])
        if not observations and not row.optional:
            raise TableError(f"row {row.name}: no input file with dataset={row.dataset!r}, label={row.label!r}")
        for metric in columns:
            values = [_observed_value(obs, metric, row) for obs in observations]
            present = [v for v in values if v is not None]
            if 0 < len(present) < len(values):
                lacking = [str(o.path) for o, v in zip(observations, values) if v is None]
                raise TableError(f"row {row.name}: metric {metric!r} is missing from {lacking} (other seeds have it)")
            _check_same_settings(observations, metric)
            values = present  # empty: not applicable, which _observed_value allowed
            paper_value = paper.get((row.dataset, row.paper_model, metric))
            cells.append(Cell(row, metric, values, paper_value, run=bool(observations)))
    return cells


def _observed_value(obs: Observation, metric: str, row: RowSpec) -> float | None:
    value = obs.values.get(metric)
    if value is None and metric not in row.not_applicable:
        raise TableError(f"{obs.path}: metric {metric!r} is missing (needed by row {row.name})")
    return value


def _check_same_settings(observations: list[Observation], metric: str) -> None:
    """Averaging over seeds only makes sense when every seed used the same settings."""
    seen = {_settings_key(o.settings.get(metric, {})): o.path for o in observations if metric in o.values}
    if len(seen) > 1:
        raise TableError(f"metric {metric!r}: different settings across seeds in {sorted(map(str, seen.values()))}")


def check_directions(observations: Iterable[Observation], directions: dict[str, str]) -> None:
    """The config is the one place for directions; a metrics.json that disagrees is an error."""
    for obs in observations:
        for metric, higher in obs.higher_is_better.items():
            declared = directions.get(metric)
            if declared in DIRECTIONS and DIRECTIONS[declared] != higher:
                raise TableError(
                    f"{obs.path}: metric {metric!r} has higher_is_better={higher}, "
                    f"config/tables.yaml says {declared!r} is better"
                )


def uncovered_paper_cells(rows: list[RowSpec], columns: list[str], paper: dict) -> list[tuple[str, str, str]]:
    """Paper numbers of the table's declared metrics that no (row, column) would show."""
    shown = {(row.dataset, row.paper_model, metric) for row in rows for metric in columns}
    return sorted(key for key in paper if key[2] in columns and key not in shown)


def warn_unused(observations: Iterable[Observation], rows: list[RowSpec]) -> None:
    """Files of this table's datasets that match no row: usually fine (ablations), maybe a typo."""
    datasets = {row.dataset for row in rows}
    wanted = {(row.dataset, row.label) for row in rows}
    for obs in observations:
        if obs.dataset in datasets and (obs.dataset, obs.label) not in wanted:
            print(f"note: {obs.path}: label {obs.label!r} is not a row of this table", file=sys.stderr)


# --------------------------------------------------------------------------------- formatting


def _decimals(config: dict, metric: str) -> int:
    return 0 if metric in config.get("integer_columns", ()) else int(config.get("default_decimals", 2))


def fmt_number(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return MISSING
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def fmt_ours(cell: Cell, decimals: int) -> str:
    if not cell.run:
        return NOT_RUN
    if not cell.values:
        return NOT_APPLICABLE
    text = fmt_number(cell.mean, decimals)
    return text if cell.std is None else f"{text} ± {fmt_number(cell.std, decimals)}"


def best_cells(cells: list[Cell], higher_is_better: bool | None) -> set[tuple[RowSpec, str]]:
    """(row, metric) of the cells holding the best of our means in one block column (ties: all)."""
    means = [c.mean for c in cells if c.mean is not None]
    if higher_is_better is None or not means:
        return set()
    best = max(means) if higher_is_better else min(means)
    return {(c.row, c.metric) for c in cells if c.mean == best}


@dataclass
class Block:
    """A group of rows rendered together (one dataset of a metrics table, or a whole data table)."""

    title: str | None
    rows: list[RowSpec]
    cells: dict[tuple[RowSpec, str], Cell]
    best: set[tuple[RowSpec, str]]


def make_blocks(spec: dict, config: dict, cells: list[Cell]) -> list[Block]:
    directions = config.get("metric_directions", {})
    blocks: dict[str | None, Block] = {}
    for cell in cells:
        title = block_title(spec, cell.row)
        block = blocks.setdefault(title, Block(title, [], {}, set()))
        if cell.row not in block.rows:
            block.rows.append(cell.row)
        block.cells[cell.row, cell.metric] = cell
    for block in blocks.values():
        for metric in spec["columns"]:
            column = [block.cells[row, metric] for row in block.rows]
            direction = DIRECTIONS.get(directions.get(metric)) if spec["kind"] == "metrics" else None
            block.best |= best_cells(column, direction)
    return list(blocks.values())


def _sub_rows(block: Block, spec: dict, config: dict):
    """(row label, sub-row name, [(text, is_best)]) for ours, paper and difference."""
    for row in block.rows:
        cells = [block.cells[row, m] for m in spec["columns"]]
        dec = [_decimals(config, m) for m in spec["columns"]]
        yield row.label, "ours", [(fmt_ours(c, d), (row, c.metric) in block.best) for c, d in zip(cells, dec)]
        yield "", "paper", [(fmt_number(c.paper, d), False) for c, d in zip(cells, dec)]
        yield "", "Δ", [(fmt_number(c.diff, d, signed=True), False) for c, d in zip(cells, dec)]


def _header(spec: dict, config: dict) -> list[str]:
    arrows = {"lower": " ↓", "higher": " ↑"}
    directions = config.get("metric_directions", {})
    if spec["kind"] != "metrics":
        return list(spec["columns"])
    return [m + arrows.get(directions.get(m), "") for m in spec["columns"]]


def render_markdown(spec: dict, config: dict, blocks: list[Block], footer: list[str]) -> str:
    first = "Model" if spec["kind"] == "metrics" else "Dataset"
    header = [first, ""] + _header(spec, config)
    lines = [f"## {spec['title']}", ""]
    for block in blocks:
        if block.title:
            lines += [f"### {block.title}", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|---|---|" + "---:|" * len(spec["columns"]))
        for label, sub, texts in _sub_rows(block, spec, config):
            shown = [f"**{t}**" if best else t for t, best in texts]
            lines.append("| " + " | ".join([label, sub] + shown) + " |")
        lines.append("")
    lines += footer
    return "\n".join(lines) + "\n"


TEX_REPLACEMENTS = (
    ("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
    ("–", "--"), ("−", "-"), ("±", r"$\pm$"), ("Δ", r"$\Delta$"),
    ("↓", r"$\downarrow$"), ("↑", r"$\uparrow$"),
)


def _tex_escape(text: str) -> str:
    for char, repl in TEX_REPLACEMENTS:  # backslash first, before the others add some
        text = text.replace(char, repl)
    return text


def render_tex(spec: dict, config: dict, blocks: list[Block], footer: list[str]) -> str:
    """A booktabs tabular fragment; the footer goes along as comments."""
    n = len(spec["columns"])
    header = ["", ""] + _header(spec, config)
    lines = [f"% {spec['title']}", r"\begin{tabular}{ll" + "r" * n + "}", r"\toprule"]
    lines.append(" & ".join(_tex_escape(h) for h in header) + r" \\")
    for block in blocks:
        lines.append(r"\midrule")
        if block.title:
            lines.append(rf"\multicolumn{{{n + 2}}}{{l}}{{\textit{{{_tex_escape(block.title)}}}}} \\")
        for label, sub, texts in _sub_rows(block, spec, config):
            shown = [rf"\textbf{{{_tex_escape(t)}}}" if best else _tex_escape(t) for t, best in texts]
            lines.append(" & ".join([_tex_escape(label), _tex_escape(sub)] + shown) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += ["% " + line for line in footer if line]
    return "\n".join(lines) + "\n"


def render_csv(table_id: str, cells: list[Cell]) -> str:
    """Long form with full precision, so numbers can be checked and re-plotted."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for c in cells:
        optional = [c.mean, c.std, c.paper, c.diff]
        mean, std, paper, diff = ("" if v is None else repr(v) for v in optional)
        writer.writerow([table_id, c.row.dataset, c.row.paper_model, c.metric, mean, std, len(c.values), paper, diff])
    return out.getvalue()


# ------------------------------------------------------------------------------------- footer


def compact(settings: dict) -> str:
    """{"iw_samples": 30, "kl_reduction": "sum"} -> "iw_samples=30, kl_reduction=sum"."""
    if not settings:
        return "(none recorded)"

    def show(value) -> str:
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))

    return ", ".join(f"{key}={show(settings[key])}" for key in sorted(settings))


def by_rows(described: dict[RowSpec, str]) -> str:
    """One description if every row shares it; else the exceptions with their rows, then the rest.

    Naming only the exceptions keeps the footer short where one model (say DELLA's KL
    reduction) differs from all the others.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for row, text in described.items():
        groups[text].append(row.name)
    if len(groups) == 1:
        return next(iter(groups))
    common, *exceptions = sorted(groups, key=lambda text: -len(groups[text]))
    parts = [f"{text} [{', '.join(groups[text])}]" for text in exceptions]
    return "; ".join(parts + [f"{common} [the other rows]"])


def footer_lines(spec: dict, cells: list[Cell], groups: dict) -> list[str]:
    """Settings per metric (metrics sharing a description merged), seeds, run settings, versions."""
    rows = list(dict.fromkeys(c.row for c in cells))
    observed = {row: groups.get((row.dataset, row.label), []) for row in rows}
    observed = {row: obs for row, obs in observed.items() if obs}

    metrics_by_text: dict[str, list[str]] = defaultdict(list)
    for metric in spec["columns"]:
        described = {
            row: compact(obs[0].settings.get(metric, {})) for row, obs in observed.items() if metric in obs[0].values
        }
        if described:
            metrics_by_text[by_rows(described)].append(metric)

    if spec["kind"] == "metrics":
        ours = "mean ± sample std (ddof=1) over seeds, or the value of a single seed"
        best = "**bold** = best of ours per column (↓ lower / ↑ higher is better); "
    else:
        ours, best = "our stats.json", ""
    lines = [
        f"Cells: ours = {ours}; "
        f"paper = the printed number; Δ = ours − paper; {best}{MISSING} = not printed in the paper; "
        f"{NOT_APPLICABLE} = not defined for this row; {NOT_RUN} = optional row without results.",
        "",
        "Settings:",
    ]
    lines += [f"- {', '.join(metrics)}: {text}" for text, metrics in metrics_by_text.items()]
    seeds = {row: ", ".join(str(o.seed) for o in obs) for row, obs in observed.items()}
    lines += ["", f"Seeds: {by_rows(seeds) if seeds else '(none)'}"]
    run_settings = {row: compact(obs[0].run_settings) for row, obs in observed.items() if obs[0].run_settings}
    if run_settings:
        lines.append(f"Run settings: {by_rows(run_settings)}")
    lines.append(f"Software and device: {versions_line(o for obs in observed.values() for o in obs)}")
    lines.append(f"Sources: {sum(len(obs) for obs in observed.values())} files")
    return lines


def versions_line(observations: Iterable[Observation]) -> str:
    packages: dict[str, list[str]] = defaultdict(list)
    for obs in observations:
        for package, version in obs.versions.items():
            if str(version) not in packages[package]:
                packages[package].append(str(version))
    if not packages:
        return "(none recorded)"
    return ", ".join(f"{p} {' / '.join(v)}" for p, v in sorted(packages.items()))


# ---------------------------------------------------------------------------------- rendering


def render_table(
    table_id: str,
    spec: dict,
    metrics_files: list[Path],
    stats_files: list[Path],
    paper_csv: Path,
    out_dir: Path,
) -> list[Path]:
    """Render one table to out_dir/{table_id}.md, .csv and .tex; returns the written paths.

    `spec` is the whole tables config (as from `load_spec`): the table's own entry plus the
    shared metric directions and number formats. Metrics tables read `metrics_files`, data
    tables read `stats_files`; the other list is ignored.
    """
    tspec = table_spec(spec, table_id)
    rows = expand_rows(table_id, tspec)
    paper = read_paper(Path(paper_csv), table_id)
    uncovered = uncovered_paper_cells(rows, tspec["columns"], paper)
    if uncovered:
        raise TableError(f"table {table_id}: paper values not shown by the spec: {uncovered}")

    if tspec["kind"] == "metrics":
        observations = [read_metrics_file(Path(p)) for p in metrics_files]
        check_directions(observations, spec.get("metric_directions", {}))
    else:
        observations = [read_stats_file(Path(p), tspec) for p in stats_files]
    warn_unused(observations, rows)
    groups = group_observations(observations)
    cells = build_cells(rows, tspec["columns"], groups, paper)
    blocks = make_blocks(tspec, spec, cells)
    footer = footer_lines(tspec, cells, groups)

    out_dir = Path(out_dir)
    outputs = {
        out_dir / f"{table_id}.md": render_markdown(tspec, spec, blocks, footer),
        out_dir / f"{table_id}.csv": render_csv(table_id, cells),
        out_dir / f"{table_id}.tex": render_tex(tspec, spec, blocks, footer),
    }
    for path, text in outputs.items():
        atomic_write_text(path, text)
    return list(outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render one paper table (ours beside the paper's numbers).")
    parser.add_argument("--table", required=True, help="table id in the spec, e.g. table1")
    parser.add_argument("--spec", type=Path, default=Path("config/tables.yaml"))
    parser.add_argument("--metrics", type=Path, nargs="*", default=[], help="metrics.json files")
    parser.add_argument("--stats", type=Path, nargs="*", default=[], help="stats.json files")
    parser.add_argument("--paper", type=Path, default=Path("results/paper_tables.csv"))
    parser.add_argument("--out", type=Path, default=Path("results/tables"))
    args = parser.parse_args(argv)
    try:
        written = render_table(
            args.table, load_spec(args.spec), args.metrics, args.stats, args.paper, args.out
        )
    except TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
