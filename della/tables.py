"""Render the paper's tables from our run outputs, beside the paper's printed numbers.

One renderer serves every table: what a table shows (datasets, columns, rows in the paper's
order, which metrics a model does not have) and what it reads (its `kind`: run metrics, dataset
statistics, benchmark timings or human ratings) is data in ``config/tables.yaml``. Every cell
shows our number (mean ± std over seeds, or annotators), the paper's number and the difference,
and a footer records the settings, seeds, software and device behind our numbers, because a
number without its settings cannot be compared. docs/tables.md.

pandas does the work: the inputs become a long frame (one record per dataset, row label, seed
or annotator and metric), a group-by gives each cell's mean ± sample std, a pivot the layout, and
pandas writes the Markdown (tabulate), the LaTeX (`Styler.to_latex`) and the CSV. `collect` gives
the frames unformatted. Strictness is deliberate: a metric missing from our files, a row without
files, a non-finite value or seeds with different settings stop the render with the file named.

A column may be a pattern holding `{label}` (`Probe[{label}]`, the latent probe): one column per
metric of a dataset's files that matches it, because which labels a dataset carries is the
data's business, not the table's; a dataset whose files match none shows none (footer says so).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from della.human_eval import table_observations
from della.io import atomic_write_text
from della.table_spec import (
    DIRECTIONS, PLACEHOLDER, REFERENCE, Observation, RowSpec, Summary, TableError, all_columns, block_title, columns_of,
    dataset_names, expand_rows, is_pattern, load_spec, lookup, matches, pattern_label, provenance_of, single_block,
    table_spec,
)

# What the ± of a cell runs over, per kind.
REPLICATES = {"metrics": "seeds", "data": "seeds", "benchmark": "seeds", "human": "annotators"}
MISSING = "–"  # no paper number / no difference
NOT_APPLICABLE = "n/a"  # the model has no such metric (e.g. KL of a model without latent)
NOT_RUN = "not run"  # an optional row without input files
CSV_HEADER = [
    "table", "dataset", "model", "metric", "ours_mean", "ours_std", "n_seeds", "paper", "diff", "settings", "sources",
]


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
        if "higher_is_better" in entry:  # null: a reference value (DIRECTIONS)
            higher = entry["higher_is_better"]
            directions[name] = None if higher is None else bool(higher)
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
        model=data.get("model", ""),
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


# `benchmark:` files of the workflow: {results_dir}/benchmarks/{stage}/{dataset}/{model}/seed{seed}.tsv
BENCHMARK_PATH = re.compile(r"(?:^|/)benchmarks/(?P<stage>[^/]+)/(?P<dataset>[^/]+)/(?P<model>[^/]+)/seed(?P<seed>\d+)\.tsv$")
SECONDS_PER_HOUR = 3600.0
LINE_OFFSET = 2  # a frame's row 0 is line 2 of its file (line 1: the header)


def first_non_finite(values: pd.Series) -> int | None:
    """The index of the first value that is not a finite number (None: all are)."""
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = values.index[~np.isfinite(numbers)]
    return bad[0] if len(bad) else None


def benchmark_seconds(path: Path) -> float:
    """Wall-clock seconds of a snakemake benchmark file (`s` column; mean over repeats)."""
    try:
        records = pd.read_csv(path, sep="\t", dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise TableError(f"{path}: cannot read benchmark file: {e}") from e
    if records.empty or "s" not in records:
        raise TableError(f"{path}: not a snakemake benchmark file (no 's' column or no rows)")
    bad = first_non_finite(records["s"])
    if bad is not None:
        raise TableError(f"{path}:{bad + LINE_OFFSET}: 's' is not a finite number: {records['s'][bad]!r}")
    return float(records["s"].astype(float).mean())


def read_benchmarks(benchmark_files: list[Path], metrics_files: list[Path], spec: dict) -> list[Observation]:
    """One observation per run: hours of each column's stage, with the run's label, settings and
    device taken from the metrics.json of the same (dataset, model, seed)."""
    runs = {}
    for path in metrics_files:
        data = _read_json(Path(path))
        key = (_require(data, "dataset", path), _require(data, "model", path), _seed(data, path))
        runs[key] = (Path(path), data)
    hours: dict[tuple[str, str, int], dict[str, tuple[float, Path]]] = defaultdict(dict)
    for path in map(Path, benchmark_files):
        match = BENCHMARK_PATH.search(path.as_posix())
        if not match:
            raise TableError(f"{path}: not at benchmarks/{{stage}}/{{dataset}}/{{model}}/seed{{seed}}.tsv")
        key = (match["dataset"], match["model"], int(match["seed"]))
        if key not in runs:
            raise TableError(f"{path}: no metrics.json given for run {key} (it records the device)")
        hours[key][match["stage"]] = (benchmark_seconds(path) / SECONDS_PER_HOUR, path)
    observations = []
    for key, by_stage in hours.items():
        metrics_path, data = runs[key]
        values, settings, sources = {}, {}, [metrics_path]
        for column in all_columns(spec):
            stage = spec["stages"][column]
            if stage not in by_stage:
                raise TableError(f"run {key}: no benchmark file of stage {stage!r} (column {column!r})")
            values[column], path = by_stage[stage]
            sources.append(path)
            settings[column] = {"stage": stage, "measure": "wall-clock hours of the job (snakemake benchmark)",
                                "device": data.get("device") or "(not recorded)"}
        observations.append(Observation(
            path=metrics_path, dataset=key[0], label=_require(data, "label", metrics_path), seed=key[2],
            values=values, settings=settings, run_settings=data.get("settings") or {},
            versions=provenance_of(data), sources=sources,
        ))
    return observations


def read_paper(paper_csv: Path, table_id: str) -> dict[tuple[str, str, str], float]:
    """The paper's printed numbers of one table, keyed by (dataset, model, metric)."""
    printed = pd.read_csv(paper_csv, dtype=str, keep_default_na=False)
    printed.index += LINE_OFFSET
    printed = printed[printed["table"] == table_id]
    twice = printed.index[printed.duplicated(["dataset", "model", "metric"])]
    if len(twice):
        key = tuple(printed.loc[twice[0], ["dataset", "model", "metric"]])
        raise TableError(f"{paper_csv}:{twice[0]}: duplicate paper value for {key}")
    bad = first_non_finite(printed["value"])
    if bad is not None:
        raise TableError(f"{paper_csv}:{bad}: value is not a finite number: {printed['value'][bad]!r}")
    return {(d, m, k): float(v) for d, m, k, v in zip(printed.dataset, printed.model, printed.metric, printed["value"])}


# ---------------------------------------------------------------------------- the long frame


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


def settings_json(settings: dict) -> str:
    """A metric's settings as one comparable, printable string (the CSV's settings column)."""
    return json.dumps(settings, sort_keys=True, default=str)


# The long frame of a table's inputs: one record per (dataset, row label, seed or annotator, metric).
OBSERVATION_COLUMNS = ["table", "dataset", "label", "seed", "metric", "value", "settings", "sources"]


def observation_frame(table_id: str, observations: Iterable[Observation]) -> pd.DataFrame:
    """Every number of the table's input files, long form; `value` is NaN where a file has null
    (a stats.json's target length of unconditional data), `sources` the files behind it."""
    records = [
        (table_id, obs.dataset, obs.label, obs.seed, metric, np.nan if value is None else value,
         settings_json(obs.settings.get(metric, {})), tuple(map(str, obs.files)))
        for obs in observations for metric, value in obs.values.items()
    ]
    return pd.DataFrame(records, columns=OBSERVATION_COLUMNS).astype({"value": float})


def layout_frame(spec: dict, rows: list[RowSpec]) -> pd.DataFrame:
    """One record per cell the table shows, (row, column) in display order: `position`."""
    return pd.DataFrame([
        {"row": row, "dataset": row.dataset, "label": row.label, "paper_model": row.paper_model, "metric": metric,
         "block": block_title(spec, row), "optional": row.optional,
         "not_applicable": any(matches(name, metric) for name in row.not_applicable)}
        for row in rows for metric in columns_of(spec, row.dataset)
    ]).rename_axis("position").reset_index()


def check_cells(layout: pd.DataFrame, grid: pd.DataFrame) -> None:
    """Our numbers are complete (every required row has runs, every run has each metric its row
    needs, a metric is in all of a row's runs or in none) and comparable (one setting per cell).
    `grid`: each cell of the layout once per run of its row (`seed`, `path`), with the run's value."""
    not_run = layout[~layout.run & ~layout.optional]
    if len(not_run):
        row = not_run.row.iloc[0]
        raise TableError(f"row {row.name}: no input file with dataset={row.dataset!r}, label={row.label!r}")
    lacking = grid[grid.value.isna()]
    needed = lacking[~lacking.not_applicable]
    if len(needed):
        first = needed.iloc[0]
        raise TableError(f"{first.path}: metric {first.metric!r} is missing (needed by row {first.row.name})")
    measured = grid.dropna(subset=["value"])
    partly = lacking[lacking.position.isin(measured.position)]
    if len(partly):
        cell = partly[partly.position == partly.position.iloc[0]]
        raise TableError(f"row {cell.row.iloc[0].name}: metric {cell.metric.iloc[0]!r} is missing from "
                         f"{list(cell.path)} (other seeds have it)")
    settings = measured.drop_duplicates(["position", "settings"])
    differing = settings[settings.duplicated("position", keep=False)]
    if len(differing):
        cell = differing[differing.position == differing.position.iloc[0]]
        raise TableError(f"metric {cell.metric.iloc[0]!r}: different settings across seeds in {sorted(cell.path)}")


def joined_sources(sources: pd.Series) -> str:
    """The files behind a cell, each once, in the order of its seeds."""
    return " ".join(dict.fromkeys(path for files in sources for path in files))


def cell_frame(spec: dict, config: dict, rows: list[RowSpec], observations: list[Observation],
               long: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """One record per shown cell: the layout, our mean, sample std (ddof=1) and count over the
    seeds (annotators), the settings and files behind it, the paper's value, the difference, and
    whether ours is the best of its block's column (by the metric's direction)."""
    runs = pd.DataFrame([(o.dataset, o.label, o.seed, str(o.path)) for o in observations],
                        columns=["dataset", "label", "seed", "path"])
    layout = layout_frame(spec, rows)
    grid = layout.merge(runs, on=["dataset", "label"]).merge(
        long.drop(columns="table"), on=["dataset", "label", "seed", "metric"], how="left")
    layout["run"] = layout.position.isin(grid.position)
    check_cells(layout, grid)
    numbers = grid.dropna(subset=["value"]).groupby("position").agg(
        mean=("value", "mean"), std=("value", "std"), n_seeds=("value", "count"), settings=("settings", "first"),
        sources=("sources", joined_sources))
    printed = pd.DataFrame([(*key, value) for key, value in paper.items()],
                           columns=["dataset", "paper_model", "metric", "paper"]).astype({"paper": float})
    cells = (layout.join(numbers, on="position").merge(printed, on=["dataset", "paper_model", "metric"], how="left")
             .fillna({"n_seeds": 0, "settings": settings_json({}), "sources": ""}).astype({"n_seeds": int}))
    cells["diff"] = cells["mean"] - cells["paper"]
    # Best: the highest mean x (+1 or -1 by the metric's direction) of a block's column; none in a
    # reference column (no direction) or in a table whose rows are datasets (single block).
    directions = config.get("metric_directions", {})
    higher = cells.metric.map(lambda metric: DIRECTIONS.get(lookup(directions, metric)))
    score = cells["mean"] * higher.map({True: 1.0, False: -1.0})  # NaN in a reference column
    cells["best"] = score.eq(score.groupby([cells.block.fillna(""), cells.metric]).transform("max"))
    cells["best"] &= not single_block(spec)
    return cells


def check_directions(observations: Iterable[Observation], directions: dict[str, str]) -> None:
    """The config is the one place for directions; a metrics.json that disagrees is an error."""
    for obs in observations:
        for metric, higher in obs.higher_is_better.items():
            declared = lookup(directions, metric)
            if declared in DIRECTIONS and DIRECTIONS[declared] != higher:
                raise TableError(
                    f"{obs.path}: metric {metric!r} has higher_is_better={higher}, "
                    f"config/tables.yaml says {declared!r} is better"
                )


def uncovered_paper_cells(spec: dict, rows: list[RowSpec], paper: dict) -> list[tuple[str, str, str]]:
    """Paper numbers of the table's declared metrics that no (row, column) would show."""
    shown = {(row.dataset, row.paper_model, metric) for row in rows for metric in columns_of(spec, row.dataset)}
    return sorted(key for key in paper if key[2] in all_columns(spec) and key not in shown)


# Kinds whose rows are models of the table's experiment: a model with results gets a row.
MODEL_ROW_KINDS = ("metrics", "benchmark")


def rows_from_data(spec: dict, rows: list[RowSpec], observations: Iterable[Observation]) -> list[RowSpec]:
    """The spec's rows, then a row for every (dataset, label) of the table's datasets that has
    results and no row, in the order the inputs list them: a new model of the experiment is
    shown, never dropped. The spec's rows only order the table and mark special cases. Such a
    row has no paper number; a column none of its files has is not applicable to it (a model
    without a latent has no KL), and its footer line says so."""
    if spec["kind"] not in MODEL_ROW_KINDS:
        return rows
    declared = {(row.dataset, row.label) for row in rows}
    added: dict[tuple[str, str], set[str]] = {}
    for obs in observations:
        key = (obs.dataset, obs.label)
        if obs.dataset in dataset_names(spec) and key not in declared:
            added.setdefault(key, set()).update(name for name, value in obs.values.items() if value is not None)
    new_rows = []
    for (dataset, label), metrics in added.items():
        missing = frozenset(column for column in columns_of(spec, dataset) if column not in metrics)
        display = f"{dataset} / {label}" if single_block(spec) else ""
        new_rows.append(RowSpec(dataset, label, label, not_applicable=missing, display=display, from_data=True))
        print(f"note: row {dataset}/{label} added from the data (no row in the spec); "
              f"not applicable: {sorted(missing) or 'none'}", file=sys.stderr)
    # keep each dataset's rows together: the added ones after that dataset's declared rows
    order = {dataset: i for i, dataset in enumerate(dataset_names(spec))}
    return sorted(rows + new_rows, key=lambda row: order.get(row.dataset, len(order)))


def warn_unused(observations: Iterable[Observation], rows: list[RowSpec]) -> None:
    """Files of this table's datasets that match no row (tables whose rows are not models)."""
    datasets = {row.dataset for row in rows}
    wanted = {(row.dataset, row.label) for row in rows}
    for obs in observations:
        if obs.dataset in datasets and (obs.dataset, obs.label) not in wanted:
            print(f"note: {obs.path}: label {obs.label!r} is not a row of this table", file=sys.stderr)


def read_observations(tspec: dict, config: dict, sources: dict[str, list[Path]]) -> tuple[list[Observation], list[Summary]]:
    """The observations of one table from the source files its kind reads."""
    kind = tspec["kind"]
    if kind == "metrics":
        observations = [read_metrics_file(Path(p)) for p in sources.get("metrics", ())]
        check_directions(observations, config.get("metric_directions", {}))
        return observations, []
    if kind == "data":
        return [read_stats_file(Path(p), tspec) for p in sources.get("stats", ())], []
    if kind == "benchmark":
        return read_benchmarks(sources.get("benchmarks", []), sources.get("metrics", []), tspec), []
    return table_observations(tspec, sources.get("keys", []), sources.get("annotations", []))


def expand_columns(spec: dict, observations: list[Observation]) -> tuple[dict, dict[str, list[str]]]:
    """The spec with every run of adjacent pattern columns replaced, per dataset, by the metrics
    of that dataset's files they match: for each label found (sorted), the run's patterns in
    order (Probe[a], Majority[a], Probe[b], Majority[b]). Also dataset -> the patterns that
    matched nothing there."""
    if not any(is_pattern(column) for column in all_columns(spec)):
        return spec, {}
    columns, unmatched = {}, {}
    for dataset in dataset_names(spec):
        metrics = {metric for obs in observations if obs.dataset == dataset for metric in obs.values}
        columns[dataset] = []
        for patterns, run in itertools.groupby(columns_of(spec, dataset), key=is_pattern):
            run = list(run)
            if not patterns:
                columns[dataset] += run
                continue
            labels = sorted({pattern_label(p, m) for p in run for m in metrics} - {None})
            columns[dataset] += [p.replace(PLACEHOLDER, label) for label in labels for p in run]
            if not labels:
                unmatched.setdefault(dataset, []).extend(run)
    return {**spec, "columns": columns}, unmatched


@dataclass
class Collected:
    """Everything a table shows, before formatting: figures may read this too (`collect`)."""

    table_id: str
    spec: dict  # with pattern columns expanded
    rows: list[RowSpec]
    observations: pd.DataFrame  # long form, one record per (dataset, label, seed, metric): OBSERVATION_COLUMNS
    cells: pd.DataFrame  # one record per shown (row, column): `cell_frame`
    groups: dict[tuple[str, str], list[Observation]]
    summaries: list[Summary] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=dict)  # dataset -> patterns nothing matched


def collect(table_id: str, config: dict, paper_csv: Path, sources: dict[str, list[Path]]) -> Collected:
    """Read and check one table's inputs. `sources` maps metrics / stats / benchmarks / keys /
    annotations to file lists; a table reads those of its kind (metrics.json for benchmark
    tables too: they record the device)."""
    tspec = table_spec(config, table_id)
    rows = expand_rows(table_id, tspec)
    paper = read_paper(Path(paper_csv), table_id)
    uncovered = uncovered_paper_cells(tspec, rows, paper)
    if uncovered:
        raise TableError(f"table {table_id}: paper values not shown by the spec: {uncovered}")
    observations, summaries = read_observations(tspec, config, sources)
    tspec, unmatched = expand_columns(tspec, observations)
    rows = rows_from_data(tspec, rows, observations)
    warn_unused(observations, rows)
    groups = group_observations(observations)
    long = observation_frame(table_id, observations)
    cells = cell_frame(tspec, config, rows, observations, long, paper)
    return Collected(table_id, tspec, rows, long, cells, groups, summaries, unmatched)


# --------------------------------------------------------------------------------- formatting


def _decimals(config: dict, metric: str) -> int:
    decimals = lookup(config.get("decimals", {}), metric)
    if decimals is not None:
        return int(decimals)
    integer = any(matches(name, metric) for name in config.get("integer_columns", ()))
    return 0 if integer else int(config.get("default_decimals", 2))


def fmt_number(value: float, decimals: int, signed: bool = False) -> str:
    if math.isnan(value):
        return MISSING
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def fmt_ours(cell, decimals: int) -> str:
    if not cell.run:
        return NOT_RUN
    if cell.n_seeds == 0:
        return NOT_APPLICABLE
    text = fmt_number(cell.mean, decimals)
    return text if math.isnan(cell.std) else f"{text} ± {fmt_number(cell.std, decimals)}"


SUB_ROWS = ["ours", "paper", "Δ"]  # each row of a table shows ours, the paper's number and the difference


def shown_frame(cells: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Long form of what the table shows: one record per (cell, sub-row) with its text."""
    decimals = cells.metric.map(lambda metric: _decimals(config, metric))
    texts = cells.assign(
        ours=[fmt_ours(cell, d) for cell, d in zip(cells.itertuples(), decimals)],
        paper=[fmt_number(value, d) for value, d in zip(cells.paper, decimals)],
        **{"Δ": [fmt_number(value, d, signed=True) for value, d in zip(cells["diff"], decimals)]},
    )
    shown = texts.melt(id_vars=["position", "row", "block", "metric", "best"], value_vars=SUB_ROWS,
                       var_name="sub_row", value_name="text")
    shown["best"] &= shown.sub_row == "ours"
    shown["sub_row"] = pd.Categorical(shown.sub_row, categories=SUB_ROWS, ordered=True)
    return shown


@dataclass
class Block:
    """The rows rendered together under one header (one dataset, or a whole table of datasets):
    their texts, a row's label and the sub-row's name first, and which of them are bold."""

    title: str | None
    texts: pd.DataFrame
    best: pd.DataFrame


LABEL_COLUMNS = 2  # a row's label (on its `ours` line) and the sub-row's name precede the values


def make_blocks(collected: Collected, config: dict) -> list[Block]:
    """Each block's cells pivoted to (row, sub-row) x the block's columns in the spec's order,
    headed with their direction."""
    shown = shown_frame(collected.cells, config)
    shown["order"] = shown.row.map({row: i for i, row in enumerate(collected.rows)})
    blocks = []
    for title, part in shown.groupby(shown.block.fillna(""), sort=False):
        wide = part.pivot(index=["order", "sub_row"], columns="metric", values=["text", "best"])
        lines = wide.index.to_frame(index=False)
        labels = pd.DataFrame({
            "Dataset" if single_block(collected.spec) else "Model":
                [collected.rows[o].shown if sub == "ours" else "" for o, sub in zip(lines.order, lines.sub_row)],
            "": lines.sub_row.astype(str),
        })
        columns = list(dict.fromkeys(part.metric))
        headers = header(collected.spec, config, columns)
        values = {name: wide[name][columns].set_axis(headers, axis=1).reset_index(drop=True) for name in ("text", "best")}
        blocks.append(Block(title or None, pd.concat([labels, values["text"]], axis=1),
                            pd.concat([labels.map(lambda _: False), values["best"].astype(bool)], axis=1)))
    return blocks


def header(spec: dict, config: dict, columns: list[str]) -> list[str]:
    """Column names with the direction that makes a value best (none in a table of datasets)."""
    arrows = {"lower": " ↓", "higher": " ↑"}
    directions = config.get("metric_directions", {})
    if single_block(spec):
        return list(columns)
    return [m + arrows.get(lookup(directions, m), "") for m in columns]


# ------------------------------------------------------------------------------------ writers


def render_markdown(spec: dict, blocks: list[Block], footer: list[str]) -> str:
    lines = [f"## {spec['title']}", ""]
    for block in blocks:
        if block.title:
            lines += [f"### {block.title}", ""]
        marked = block.texts.mask(block.best, "**" + block.texts + "**")
        align = ["left", "left"] + ["right"] * (marked.shape[1] - 2)
        lines += [marked.to_markdown(index=False, disable_numparse=True, colalign=align), ""]
    lines += footer
    return "\n".join(lines) + "\n"


# Characters of our texts that LaTeX needs as math (Styler escapes LaTeX's special characters).
TEX_SYMBOLS = {"–": "--", "−": "-", "±": r"$\pm$", "Δ": r"$\Delta$", "α": r"$\alpha$", "↓": r"$\downarrow$",
               "↑": r"$\uparrow$"}


def tex_symbols(text: str) -> str:
    return text.translate(str.maketrans(TEX_SYMBOLS))


def render_tex(spec: dict, blocks: list[Block], footer: list[str]) -> str:
    """booktabs tabulars by pandas' Styler, one per run of blocks with the same columns, a block's
    title (its dataset) opening its first line, best values bold; the title and footer go along
    as comments."""
    parts = [f"% {spec['title']}"]
    for _, run in itertools.groupby(blocks, key=lambda block: list(block.texts.columns)):
        run = list(run)
        texts = pd.concat([titled(b.texts, b.title, "") if b.title else b.texts for b in run], ignore_index=True)
        best = pd.concat([titled(b.best, False, False) if b.title else b.best for b in run], ignore_index=True)
        labels = LABEL_COLUMNS + bool(run[0].title)
        styler = (texts.style.hide(axis="index")
                  .format(tex_symbols, escape="latex")
                  .format_index(tex_symbols, escape="latex", axis="columns")
                  .apply(lambda _: best.map({True: "textbf:--rwrap;", False: ""}.get), axis=None))
        parts.append(styler.to_latex(hrules=True, column_format="l" * labels + "r" * (len(texts.columns) - labels)))
    parts += ["% " + line for line in footer if line]
    return "\n".join(part.rstrip("\n") for part in parts) + "\n"


def titled(frame: pd.DataFrame, first, rest) -> pd.DataFrame:
    """A block's frame behind a `Dataset` column: `first` (its title) on the first line, `rest` below."""
    return pd.concat([pd.DataFrame({"Dataset": [first] + [rest] * (len(frame) - 1)}), frame], axis=1)


def render_csv(collected: Collected) -> str:
    """Long form with full precision, the metric's settings and the source files, so numbers can
    be checked and re-plotted; table-wide summaries (agreement) follow as their own rows."""
    cells = collected.cells
    frame = pd.DataFrame({
        "table": collected.table_id, "dataset": cells.dataset, "model": cells.paper_model, "metric": cells.metric,
        "ours_mean": cells["mean"], "ours_std": cells["std"], "n_seeds": cells.n_seeds, "paper": cells.paper,
        "diff": cells["diff"], "settings": cells.settings, "sources": cells.sources,
    })
    summaries = pd.DataFrame([
        {"table": collected.table_id, "dataset": s.dataset, "model": s.name, "metric": s.metric, "ours_mean": s.value,
         "n_seeds": s.n, "settings": settings_json(s.settings)}
        for s in collected.summaries
    ], columns=CSV_HEADER)
    if len(summaries):
        frame = pd.concat([frame, summaries], ignore_index=True)
    return frame.to_csv(index=False, columns=CSV_HEADER, lineterminator="\n")


# ------------------------------------------------------------------------------------- footer


def compact(settings: dict) -> str:
    """{"iw_samples": 30, "kl_reduction": "sum"} -> "iw_samples=30, kl_reduction=sum"."""
    if not settings:
        return "(none recorded)"

    def show(value) -> str:
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))

    return ", ".join(f"{key}={show(settings[key])}" for key in sorted(settings))


def portable_bertscore_hash(settings: dict) -> str | None:
    """bert-score's hash names a local model directory by its path; name it by the model instead,
    so the description is the same on every machine (`<model>_L<layers>_<idf>_version=...`)."""
    hash_, model = settings.get("hash"), settings.get("model")
    if not isinstance(hash_, str) or not os.path.isabs(hash_) or "num_layers" not in settings:
        return hash_
    marker = f"_L{settings['num_layers']}_"
    cut = hash_.rfind(marker)
    return hash_ if cut < 0 else f"{model}{hash_[cut:]}"


def key_settings(metric: str, settings: dict, config: dict) -> dict:
    """The settings of `metric` named in the config's footer_settings (all of them if unnamed)."""
    keys = lookup(config.get("footer_settings", {}), metric)
    if keys is None:
        return settings
    chosen = {key: settings[key] for key in keys if key in settings}
    if "hash" in chosen:
        chosen["hash"] = portable_bertscore_hash(settings)
    return chosen


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


def run_setting_lines(config: dict, observed: dict[RowSpec, list[Observation]]) -> list[str]:
    """Run settings named in footer_run_settings (e.g. decoding), per row where they differ."""
    lines = []
    for name, dotted in config.get("footer_run_settings", {}).items():
        described = {}
        for row, obs in observed.items():
            value = obs[0].run_settings
            for key in dotted.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                described[row] = compact(value) if isinstance(value, dict) else str(value)
        if described:
            lines.append(f"- {name}: {by_rows(described)}")
    return lines


def footer_lines(collected: Collected, config: dict) -> list[str]:
    """Key settings per metric (metrics sharing a description merged), run settings, replicates,
    table-wide summaries, software and device."""
    spec, cells = collected.spec, collected.cells
    rows = list(dict.fromkeys(cells.row))
    observed = {row: collected.groups.get((row.dataset, row.label), []) for row in rows}
    observed = {row: obs for row, obs in observed.items() if obs}

    metrics_by_text: dict[str, list[str]] = defaultdict(list)
    measured = cells[cells.n_seeds > 0]
    for metric in all_columns(spec):
        of_metric = measured[measured.metric == metric]
        described = {row: compact(key_settings(metric, json.loads(settings), config))
                     for row, settings in zip(of_metric.row, of_metric.settings)}
        if described:
            metrics_by_text[by_rows(described)].append(metric)

    replicates = REPLICATES[spec["kind"]]
    ours = f"mean ± sample std (ddof=1) over {replicates}, or the value of a single one"
    best = "" if single_block(spec) else "**bold** = best of ours per column (↓ lower / ↑ higher is better); "
    directions = config.get("metric_directions", {})
    if best and any(lookup(directions, metric) == REFERENCE for metric in all_columns(spec)):
        best += "no arrow = a reference value, not a score; "
    if spec["kind"] == "data":
        ours = "our stats.json"
    lines = [
        f"Cells: ours = {ours}; "
        f"paper = the printed number; Δ = ours − paper; {best}{MISSING} = not printed in the paper; "
        f"{NOT_APPLICABLE} = not defined for this row; {NOT_RUN} = optional row without results.",
        "",
        "Settings (all of them per cell in the CSV's settings column):",
    ]
    lines += [f"- {', '.join(metrics)}: {text}" for text, metrics in metrics_by_text.items()]
    lines += [f"- {dataset}: no metric of its files matches {', '.join(patterns)}, so no such column"
              for dataset, patterns in collected.unmatched.items()]
    added = [row.name for row in rows if row.from_data]
    if added:
        lines.append(f"- rows from the data, not in config/tables.yaml (no paper numbers; {NOT_APPLICABLE} = a "
                     f"column none of its files has): {', '.join(added)}")
    lines += run_setting_lines(config, observed)
    seeds = {row: ", ".join(str(o.seed) for o in obs) for row, obs in observed.items()}
    lines += ["", f"{replicates.capitalize()}: {by_rows(seeds) if seeds else '(none)'}"]
    for s in collected.summaries:
        value = "undefined (no variation)" if s.value is None else f"{s.value:.3f}"
        lines.append(f"{s.name}, {s.dataset}, {s.metric}: {value} ({s.n} {replicates}; {compact(s.settings)})")
    lines.append(f"Software and device: {versions_line(o for obs in observed.values() for o in obs)}")
    lines.append(f"Sources: {len({p for obs in observed.values() for o in obs for p in o.files})} files")
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
    table_id: str, config: dict, paper_csv: Path, out_dir: Path, **sources: list[Path]
) -> list[Path]:
    """Render one table to out_dir/{table_id}.md, .csv and .tex; returns the written paths.

    `config` is the whole tables config (as from `load_spec`): the table's own entry plus the
    shared metric directions, number formats and footer choices. `sources` as in `collect`.
    """
    collected = collect(table_id, config, paper_csv, sources)
    blocks = make_blocks(collected, config)
    footer = footer_lines(collected, config)
    out_dir = Path(out_dir)
    outputs = {
        out_dir / f"{table_id}.md": render_markdown(collected.spec, blocks, footer),
        out_dir / f"{table_id}.csv": render_csv(collected),
        out_dir / f"{table_id}.tex": render_tex(collected.spec, blocks, footer),
    }
    for path, text in outputs.items():
        atomic_write_text(path, text)
    return list(outputs)


SOURCE_FLAGS = {
    "metrics": "metrics.json files (metrics tables; benchmark tables: the device of each run)",
    "stats": "stats.json files (data tables)",
    "benchmarks": "snakemake benchmark .tsv files (benchmark tables)",
    "keys": "human-evaluation key files (human tables)",
    "annotations": "annotators' filled CSV forms (human tables)",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render one paper table (ours beside the paper's numbers).")
    parser.add_argument("--table", required=True, help="table id in the spec, e.g. table1")
    parser.add_argument("--spec", type=Path, default=Path("config/tables.yaml"))
    for flag, help_text in SOURCE_FLAGS.items():
        parser.add_argument(f"--{flag}", type=Path, nargs="*", default=[], help=help_text)
    parser.add_argument("--paper", type=Path, default=Path("results/paper_tables.csv"))
    parser.add_argument("--out", type=Path, default=Path("results/tables"))
    args = parser.parse_args(argv)
    try:
        sources = {flag: getattr(args, flag) for flag in SOURCE_FLAGS}
        written = render_table(args.table, load_spec(args.spec), args.paper, args.out, **sources)
    except TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
