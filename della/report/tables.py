"""Render the paper's tables from the long table of every number, beside the paper's printed numbers.

One renderer serves every table: what a table shows (datasets, columns, rows in the paper's
order, which metrics a model does not have) and what it reads (its `kind`: run metrics, dataset
statistics, benchmark timings or human ratings) is data in ``config/tables.yaml``. Every cell
shows our number (mean ± std over seeds, or annotators), the paper's number and the difference,
and a footer records the settings, seeds, software and device behind our numbers, because a
number without its settings cannot be compared. docs/tables.md.

The numbers come from `results/{scale}/metrics.csv` (della/report/tidy.py: one row per experiment,
dataset, model, seed and metric); a table takes its experiment's rows (Table 7: the `data` rows,
Table 6: the stages' seconds), so every number of a table is a number of that file. Only the human
ratings of Table 3 are read here, from the annotators' forms, since people fill them after the
run. pandas does the work: a group-by gives each cell's mean ± sample std, a pivot the layout, and
pandas writes the Markdown (tabulate), the LaTeX (`Styler.to_latex`) and the CSV. `collect` gives
the frames unformatted. Strictness is deliberate: a metric missing from a run, a row without runs
or seeds with different settings stop the render with the file named.

A column may be a pattern holding `{label}` (`Probe[{label}]`, the latent probe): one column per
metric of a dataset's runs that matches it, because which labels a dataset carries is the data's
business, not the table's; a dataset whose runs match none shows none (footer says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import operator
import os
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from della.io import atomic_write_text
from della.pipeline.targets import table_experiment
from della.report.human_eval import table_observations
from della.report.intervals import over_seeds
from della.report.table_spec import (
    DIRECTIONS,
    PLACEHOLDER,
    REFERENCE,
    RowSpec,
    Summary,
    TableError,
    TableSpec,
    is_pattern,
    load_spec,
    lookup,
    matches,
    pattern_label,
    table_spec,
)
from della.report.tidy import (
    COLUMNS,
    COMMIT,
    DEVICE,
    LINE_OFFSET,
    SECONDS_PER_HOUR,
    SECONDS_SUFFIX,
    canonical_json,
    first_non_finite,
    observation_rows,
    read_tidy,
)

# What the ± of a cell runs over, per kind.
REPLICATES = {"metrics": "seeds", "data": "seeds", "benchmark": "seeds", "human": "annotators"}
MISSING = "–"  # no paper number / no difference
NOT_APPLICABLE = "n/a"  # the model has no such metric (e.g. KL of a model without latent)
NOT_RUN = "not run"  # an optional row without input files
CSV_HEADER = [
    "table",
    "dataset",
    "model",
    "metric",
    "ours_mean",
    "ours_std",
    "n_seeds",
    "ours_low",
    "ours_high",
    "paper",
    "diff",
    "settings",
    "sources",
]
RUN = ["dataset", "label", "seed"]  # one seed (or annotator) of one row


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
    return {
        (d, m, k): float(v)
        for d, m, k, v in zip(printed.dataset, printed.model, printed.metric, printed["value"], strict=True)
    }


# --------------------------------------------------------------------- a table's records


def table_records(
    table_id: str, spec: TableSpec, config: dict, tidy: pd.DataFrame, run_settings: dict, human: dict[str, list[Path]]
) -> tuple[pd.DataFrame, list[Summary]]:
    """The long table's rows a table shows, with the table's column names as `metric` and the
    seed as text; for a human table the annotators' ratings in the same form (and the agreement)."""
    kind = spec.kind
    if kind == "human":
        observations, summaries = table_observations(spec, human.get("keys", []), human.get("annotations", []))
        rows = [row for obs in observations for row in observation_rows(obs, table_id, obs.label, run_settings)]
        return pd.DataFrame(rows, columns=COLUMNS).astype({"seed": str}), summaries
    records = tidy[tidy.experiment == table_experiment(spec)].astype({"seed": str})
    if kind == "data":
        return data_records(spec, records, run_settings), []
    if kind == "benchmark":
        return benchmark_records(spec, records), []
    check_directions(records, config["metric_directions"])
    return records, []


def data_records(spec: TableSpec, records: pd.DataFrame, run_settings: dict) -> pd.DataFrame:
    """Each column's stats.json field (`stats_fields`), with the `stats_settings` of the dataset's
    stats.json (the rows' run settings) as the settings behind it."""
    column_of = {dotted: column for column, dotted in spec.stats_fields.items()}
    shown = records[records.metric.isin(column_of)]
    chosen = {
        key: canonical_json({name: document[name] for name in spec.stats_settings if name in document})
        for key, document in run_settings.items()
    }
    return shown.assign(metric=shown.metric.map(column_of), settings=shown.run_settings_hash.map(chosen))


def benchmark_records(spec: TableSpec, records: pd.DataFrame) -> pd.DataFrame:
    """Each column's stage in hours, with the run's device as a setting: a time means little
    without the hardware it was measured on. Every run needs every stage a column shows."""
    stages = pd.DataFrame(
        {"column": list(spec.stages), "metric": [f"{stage}{SECONDS_SUFFIX}" for stage in spec.stages.values()]}
    )
    runs = records.drop_duplicates(["dataset", "model", "seed"])[["dataset", "model", "seed"]]
    timed = runs.merge(stages, how="cross").merge(records, on=["dataset", "model", "seed", "metric"], how="left")
    lacking = timed[timed.value.isna()]
    if len(lacking):
        first = lacking.iloc[0]
        raise TableError(
            f"run {first.dataset}/{first.model}/seed{first.seed}: no benchmark file of stage "
            f"{first.metric.removesuffix(SECONDS_SUFFIX)!r} (column {first.column!r})"
        )
    # a training time summed over all attempts says so (della/report/tidy.py, training_rows); a job's
    # own settings (its start, warm or cold: della/report/tidy.py, benchmark_rows) go along
    settings = [
        canonical_json(
            {
                **json.loads(own or "{}"),
                "stage": metric.removesuffix(SECONDS_SUFFIX),
                "device": device or "(not recorded)",
                "measure": json.loads(own or "{}").get("measure", "wall-clock hours of the job (snakemake benchmark)"),
            }
        )
        for metric, device, own in zip(timed.metric, timed.device, timed.settings, strict=True)
    ]
    return timed.assign(metric=timed.column, value=timed.value / SECONDS_PER_HOUR, settings=settings)[COLUMNS]


def check_directions(records: pd.DataFrame, directions: dict[str, str]) -> None:
    """The config is the one place for directions; a run that states another is an error."""
    stated = records.dropna(subset=["higher_is_better"]).drop_duplicates(["metric", "higher_is_better"])
    for metric, higher, source in zip(stated.metric, stated.higher_is_better, stated.source, strict=True):
        declared = lookup(directions, metric)
        if declared in DIRECTIONS and DIRECTIONS[declared] != higher:
            raise TableError(
                f"{source}: metric {metric!r} has higher_is_better={higher}, "
                f"config/tables.yaml says {declared!r} is better"
            )


def check_replicates(records: pd.DataFrame) -> None:
    """A seed (or annotator) of a row given twice, say two models of one label, is an error."""
    twice = records[records.duplicated([*RUN, "metric"], keep=False)]
    if len(twice):
        first = twice.iloc[0]
        other = twice[(twice[[*RUN, "metric"]] == first[[*RUN, "metric"]]).all(axis=1)].source.iloc[1]
        raise TableError(f"{first.source}: seed {first.seed} of {first.dataset}/{first.label} also in {other}")


def layout_frame(spec: TableSpec, rows: list[RowSpec]) -> pd.DataFrame:
    """One record per cell the table shows, (row, column) in display order: `position`."""
    return (
        pd.DataFrame(
            [
                {
                    "row": row,
                    "dataset": row.dataset,
                    "label": row.label,
                    "paper_model": row.paper_model,
                    "metric": metric,
                    "block": spec.block_title(row),
                    "optional": row.optional,
                    "not_applicable": any(matches(name, metric) for name in row.not_applicable),
                }
                for row in rows
                for metric in spec.columns_of(row.dataset)
            ]
        )
        .rename_axis("position")
        .reset_index()
    )


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
        raise TableError(
            f"row {cell.row.iloc[0].name}: metric {cell.metric.iloc[0]!r} is missing from "
            f"{list(cell.path)} (other seeds have it)"
        )
    settings = measured.drop_duplicates(["position", "settings"])
    differing = settings[settings.duplicated("position", keep=False)]
    if len(differing):
        cell = differing[differing.position == differing.position.iloc[0]]
        raise TableError(f"metric {cell.metric.iloc[0]!r}: different settings across seeds in {sorted(cell.path)}")


def joined_sources(sources: pd.Series) -> str:
    """The files behind a cell, each once, in the order of its seeds."""
    return " ".join(dict.fromkeys(path for files in sources for path in files.split(" ")))


def cell_frame(spec: TableSpec, config: dict, rows: list[RowSpec], long: pd.DataFrame, paper: dict) -> pd.DataFrame:
    """One record per shown cell: the layout, our mean, sample std (ddof=1) and count over the
    seeds (annotators), the settings and files behind it, the paper's value, the difference, and
    whether ours is the best of its block's column (by the metric's direction)."""
    runs = long.drop_duplicates(RUN)[[*RUN, "source"]].rename(columns={"source": "path"})
    layout = layout_frame(spec, rows)
    grid = layout.merge(runs, on=["dataset", "label"]).merge(
        long[[*RUN, "metric", "value", "settings", "source"]], on=[*RUN, "metric"], how="left"
    )
    layout["run"] = layout.position.isin(grid.position)
    check_cells(layout, grid)
    valued = grid.dropna(subset=["value"])
    numbers = valued.groupby("position").agg(settings=("settings", "first"), sources=("source", joined_sources))
    # mean, spread and interval over the seeds (annotators): della/report/intervals.py, as figures and findings
    summaries = valued.groupby("position")["value"].agg(lambda values: over_seeds(values.tolist()))
    for column, attribute in (("mean", "mean"), ("std", "std"), ("n_seeds", "n"), ("low", "low"), ("high", "high")):
        numbers[column] = summaries.map(operator.attrgetter(attribute)).astype(float)
    printed = pd.DataFrame(
        [(*key, value) for key, value in paper.items()], columns=["dataset", "paper_model", "metric", "paper"]
    ).astype({"paper": float})
    cells = (
        layout.join(numbers, on="position")
        .merge(printed, on=["dataset", "paper_model", "metric"], how="left")
        .fillna({"n_seeds": 0, "settings": canonical_json({}), "sources": ""})
        .astype({"n_seeds": int})
    )
    cells["diff"] = cells["mean"] - cells["paper"]
    # Best: the highest mean x (+1 or -1 by the metric's direction) of a block's column; none in a
    # reference column (no direction) or in a table whose rows are datasets (single block).
    directions = config["metric_directions"]
    higher = cells.metric.map(lambda metric: DIRECTIONS.get(lookup(directions, metric)))
    score = cells["mean"] * higher.map({True: 1.0, False: -1.0})  # NaN in a reference column
    cells["best"] = score.eq(score.groupby([cells.block.fillna(""), cells.metric]).transform("max"))
    cells["best"] &= not spec.single_block
    return cells


def uncovered_paper_cells(spec: TableSpec, rows: list[RowSpec], paper: dict) -> list[tuple[str, str, str]]:
    """Paper numbers of the table's declared metrics that no (row, column) would show."""
    shown = {(row.dataset, row.paper_model, metric) for row in rows for metric in spec.columns_of(row.dataset)}
    return sorted(key for key in paper if key[2] in spec.all_columns and key not in shown)


# Kinds whose rows are models of the table's experiment: a model with results gets a row.
MODEL_ROW_KINDS = ("metrics", "benchmark")


def rows_from_data(spec: TableSpec, rows: list[RowSpec], long: pd.DataFrame) -> list[RowSpec]:
    """The spec's rows, then a row for every (dataset, label) of the table's datasets that has
    results and no row, in the order of the long table: a new model of the experiment is shown,
    never dropped. The spec's rows only order the table and mark special cases. Such a row has no
    paper number; a column none of its runs has is not applicable to it (a model without a latent
    has no KL), and its footer line says so. Other kinds only note rows they do not show."""
    declared = {(row.dataset, row.label) for row in rows}
    shown = long[long.dataset.isin(spec.dataset_names)]
    extra = shown[[key not in declared for key in zip(shown.dataset, shown.label, strict=True)]]
    new_rows = []
    for (dataset, label), runs in extra.groupby(["dataset", "label"], sort=False):
        if spec.kind not in MODEL_ROW_KINDS:
            print(f"note: {runs.source.iloc[0]}: label {label!r} is not a row of this table", file=sys.stderr)
            continue
        missing = frozenset(column for column in spec.columns_of(dataset) if column not in set(runs.metric))
        display = f"{dataset} / {label}" if spec.single_block else ""
        new_rows.append(RowSpec(dataset, label, label, not_applicable=missing, display=display, from_data=True))
        print(
            f"note: row {dataset}/{label} added from the data (no row in the spec); "
            f"not applicable: {sorted(missing) or 'none'}",
            file=sys.stderr,
        )
    # keep each dataset's rows together: the added ones after that dataset's declared rows
    order = {dataset: i for i, dataset in enumerate(spec.dataset_names)}
    return sorted(rows + new_rows, key=lambda row: order.get(row.dataset, len(order)))


def expand_columns(spec: TableSpec, long: pd.DataFrame) -> tuple[dict, dict[str, list[str]]]:
    """The spec with every run of adjacent pattern columns replaced, per dataset, by the metrics
    of that dataset's runs they match: for each label found (sorted), the run's patterns in
    order (Probe[a], Majority[a], Probe[b], Majority[b]). Also dataset -> the patterns that
    matched nothing there."""
    if not any(is_pattern(column) for column in spec.all_columns):
        return spec, {}
    columns, unmatched = {}, {}
    for dataset in spec.dataset_names:
        metrics = set(long.metric[long.dataset == dataset])
        columns[dataset] = []
        for patterns, run in itertools.groupby(spec.columns_of(dataset), key=is_pattern):
            run = list(run)
            if not patterns:
                columns[dataset] += run
                continue
            labels = sorted({pattern_label(p, m) for p in run for m in metrics} - {None})
            columns[dataset] += [p.replace(PLACEHOLDER, label) for label in labels for p in run]
            if not labels:
                unmatched.setdefault(dataset, []).extend(run)
    return dataclasses.replace(spec, columns=columns), unmatched


@dataclass
class Collected:
    """Everything a table shows, before formatting: figures may read this too (`collect`)."""

    table_id: str
    spec: TableSpec  # with pattern columns expanded
    rows: list[RowSpec]
    observations: pd.DataFrame  # the long table's rows of this table (della/report/tidy.py COLUMNS), seeds as text
    cells: pd.DataFrame  # one record per shown (row, column): `cell_frame`
    run_settings: dict  # run_settings_hash -> the run's settings
    summaries: list[Summary] = field(default_factory=list)
    unmatched: dict[str, list[str]] = field(default_factory=dict)  # dataset -> patterns nothing matched


def collect(
    table_id: str,
    config: dict,
    paper_csv: Path,
    tidy: pd.DataFrame,
    run_settings: dict,
    human: dict[str, list[Path]] | None = None,
) -> Collected:
    """Check one table's numbers: the long table (`read_tidy`) and its run settings; for a human
    table the key files and filled forms (`human`: keys / annotations -> files)."""
    tspec = table_spec(config, table_id)
    rows = tspec.expand_rows()
    paper = read_paper(Path(paper_csv), table_id)
    uncovered = uncovered_paper_cells(tspec, rows, paper)
    if uncovered:
        raise TableError(f"table {table_id}: paper values not shown by the spec: {uncovered}")
    run_settings = dict(run_settings)  # a human table adds its rated runs' settings
    long, summaries = table_records(table_id, tspec, config, tidy, run_settings, human or {})
    check_replicates(long)
    tspec, unmatched = expand_columns(tspec, long)
    rows = rows_from_data(tspec, rows, long)
    cells = cell_frame(tspec, config, rows, long, paper)
    return Collected(table_id, tspec, rows, long, cells, run_settings, summaries, unmatched)


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
    if not math.isnan(cell.std):
        text = f"{text} ± {fmt_number(cell.std, decimals)}"
    if not math.isnan(cell.low) and cell.low != cell.high:  # the 95 % interval over seeds (none with one)
        text = f"{text} [{fmt_number(cell.low, decimals)}, {fmt_number(cell.high, decimals)}]"
    return text


SUB_ROWS = ["ours", "paper", "Δ"]  # each row of a table shows ours, the paper's number and the difference


def shown_frame(cells: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Long form of what the table shows: one record per (cell, sub-row) with its text."""
    decimals = cells.metric.map(lambda metric: _decimals(config, metric))
    texts = cells.assign(
        ours=[fmt_ours(cell, d) for cell, d in zip(cells.itertuples(), decimals, strict=True)],
        paper=[fmt_number(value, d) for value, d in zip(cells.paper, decimals, strict=True)],
        **{"Δ": [fmt_number(value, d, signed=True) for value, d in zip(cells["diff"], decimals, strict=True)]},
    )
    shown = texts.melt(
        id_vars=["position", "row", "block", "metric", "best"],
        value_vars=SUB_ROWS,
        var_name="sub_row",
        value_name="text",
    )
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
        labels = pd.DataFrame(
            {
                "Dataset" if collected.spec.single_block else "Model": [
                    collected.rows[o].shown if sub == "ours" else ""
                    for o, sub in zip(lines.order, lines.sub_row, strict=True)
                ],
                "": lines.sub_row.astype(str),
            }
        )
        columns = list(dict.fromkeys(part.metric))
        headers = header(collected.spec, config, columns)
        values = {
            name: wide[name][columns].set_axis(headers, axis=1).reset_index(drop=True) for name in ("text", "best")
        }
        blocks.append(
            Block(
                title or None,
                pd.concat([labels, values["text"]], axis=1),
                pd.concat([labels.map(lambda _: False), values["best"].astype(bool)], axis=1),
            )
        )
    return blocks


def header(spec: TableSpec, config: dict, columns: list[str]) -> list[str]:
    """Column names with the direction that makes a value best (none in a table of datasets)."""
    arrows = {"lower": " ↓", "higher": " ↑"}
    directions = config["metric_directions"]
    if spec.single_block:
        return list(columns)
    return [m + arrows.get(lookup(directions, m), "") for m in columns]


# ------------------------------------------------------------------------------------ writers


def render_markdown(spec: TableSpec, blocks: list[Block], footer: list[str]) -> str:
    lines = [f"## {spec.title}", ""]
    for block in blocks:
        if block.title:
            lines += [f"### {block.title}", ""]
        marked = block.texts.mask(block.best, "**" + block.texts + "**")
        align = ["left", "left"] + ["right"] * (marked.shape[1] - 2)
        lines += [marked.to_markdown(index=False, disable_numparse=True, colalign=align), ""]
    lines += footer
    return "\n".join(lines) + "\n"


# Characters of our texts that LaTeX needs as math (Styler escapes LaTeX's special characters).
TEX_SYMBOLS = {
    "–": "--",
    "−": "-",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
    "α": r"$\alpha$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
}


def tex_symbols(text: str) -> str:
    return text.translate(str.maketrans(TEX_SYMBOLS))


def render_tex(spec: TableSpec, blocks: list[Block], footer: list[str]) -> str:
    """booktabs tabulars by pandas' Styler, one per run of blocks with the same columns, a block's
    title (its dataset) opening its first line, best values bold; the title and footer go along
    as comments."""
    parts = [f"% {spec.title}"]
    for _, run in itertools.groupby(blocks, key=lambda block: list(block.texts.columns)):
        run = list(run)
        texts = pd.concat([titled(b.texts, b.title, "") if b.title else b.texts for b in run], ignore_index=True)
        best = pd.concat([titled(b.best, False, False) if b.title else b.best for b in run], ignore_index=True)
        labels = LABEL_COLUMNS + bool(run[0].title)
        styler = (
            texts.style.hide(axis="index")
            .format(tex_symbols, escape="latex")
            .format_index(tex_symbols, escape="latex", axis="columns")
            .apply(lambda _, best=best: best.map({True: "textbf:--rwrap;", False: ""}.get), axis=None)
        )
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
    frame = pd.DataFrame(
        {
            "table": collected.table_id,
            "dataset": cells.dataset,
            "model": cells.paper_model,
            "metric": cells.metric,
            "ours_mean": cells["mean"],
            "ours_std": cells["std"],
            "n_seeds": cells.n_seeds,
            # the 95 % t interval of the mean over seeds (della/report/intervals.py); empty with one seed
            "ours_low": cells["low"],
            "ours_high": cells["high"],
            "paper": cells.paper,
            "diff": cells["diff"],
            "settings": cells.settings,
            "sources": cells.sources,
        }
    )
    summaries = pd.DataFrame(
        [
            {
                "table": collected.table_id,
                "dataset": s.dataset,
                "model": s.name,
                "metric": s.metric,
                "ours_mean": s.value,
                "n_seeds": s.n,
                "settings": canonical_json(s.settings),
            }
            for s in collected.summaries
        ],
        columns=CSV_HEADER,
    )
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


def run_setting_lines(config: dict, observed: dict[RowSpec, pd.DataFrame], run_settings: dict) -> list[str]:
    """Run settings named in footer_run_settings (e.g. decoding), per row where they differ."""
    lines = []
    for name, dotted in config.get("footer_run_settings", {}).items():
        described = {}
        for row, records in observed.items():
            value = run_settings.get(records.run_settings_hash.iloc[0], {})
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
    spec, cells, long = collected.spec, collected.cells, collected.observations
    rows = list(dict.fromkeys(cells.row))
    observed = {row: long[(long.dataset == row.dataset) & (long.label == row.label)] for row in rows}
    observed = {row: records for row, records in observed.items() if len(records)}
    metrics_by_text: dict[str, list[str]] = defaultdict(list)
    measured = cells[cells.n_seeds > 0]
    for metric in spec.all_columns:
        of_metric = measured[measured.metric == metric]
        described = {
            row: compact(key_settings(metric, json.loads(settings), config))
            for row, settings in zip(of_metric.row, of_metric.settings, strict=True)
        }
        if described:
            metrics_by_text[by_rows(described)].append(metric)

    replicates = REPLICATES[spec.kind]
    ours = f"mean ± sample std (ddof=1) [95 % t interval of the mean] over {replicates}, or the value of a single one"
    best = "" if spec.single_block else "**bold** = best of ours per column (↓ lower / ↑ higher is better); "
    directions = config["metric_directions"]
    if best and any(lookup(directions, metric) == REFERENCE for metric in spec.all_columns):
        best += "no arrow = a reference value, not a score; "
    if spec.kind == "data":
        ours = "our stats.json"
    lines = [
        f"Cells: ours = {ours}; "
        f"paper = the printed number; Δ = ours − paper; {best}{MISSING} = not printed in the paper; "
        f"{NOT_APPLICABLE} = not defined for this row; {NOT_RUN} = optional row without results.",
        "",
        "Settings (all of them per cell in the CSV's settings column):",
    ]
    lines += [f"- {', '.join(metrics)}: {text}" for text, metrics in metrics_by_text.items()]
    lines += [
        f"- {dataset}: no metric of its files matches {', '.join(patterns)}, so no such column"
        for dataset, patterns in collected.unmatched.items()
    ]
    added = [row.name for row in rows if row.from_data]
    if added:
        lines.append(
            f"- rows from the data, not in config/tables.yaml (no paper numbers; {NOT_APPLICABLE} = a "
            f"column none of its files has): {', '.join(added)}"
        )
    lines += run_setting_lines(config, observed, collected.run_settings)
    seeds = {row: ", ".join(dict.fromkeys(records.seed)) for row, records in observed.items()}
    lines += ["", f"{replicates.capitalize()}: {by_rows(seeds) if seeds else '(none)'}"]
    for s in collected.summaries:
        value = "undefined (no variation)" if s.value is None else f"{s.value:.3f}"
        lines.append(f"{s.name}, {s.dataset}, {s.metric}: {value} ({s.n} {replicates}; {compact(s.settings)})")
    shown = pd.concat(observed.values()) if observed else long
    lines.append(f"Software and device: {versions_line(shown)}")
    lines.append(f"Sources: {len({path for files in shown.source for path in files.split(' ')})} files")
    return lines


def versions_line(records: pd.DataFrame) -> str:
    """Every package version, the commit and the device of the records; several of one are all named."""
    packages: dict[str, list[str]] = defaultdict(list)
    provenance = records.drop_duplicates(["versions", "git_commit", "device"])
    for versions, commit, device in zip(provenance.versions, provenance.git_commit, provenance.device, strict=True):
        for package, version in {**json.loads(versions or "{}"), COMMIT: commit, DEVICE: device}.items():
            if version and str(version) not in packages[package]:
                packages[package].append(str(version))
    if not packages:
        return "(none recorded)"
    return ", ".join(f"{p} {' / '.join(v)}" for p, v in sorted(packages.items()))


# ---------------------------------------------------------------------------------- rendering


def render_table(
    table_id: str,
    config: dict,
    paper_csv: Path,
    out_dir: Path,
    tidy: pd.DataFrame,
    run_settings: dict,
    human: dict[str, list[Path]] | None = None,
) -> list[Path]:
    """Render one table to out_dir/{table_id}.md, .csv and .tex; returns the written paths.

    `config` is the whole tables config (as from `load_spec`): the table's own entry plus the
    shared metric directions, number formats and footer choices. The rest as in `collect`.
    """
    collected = collect(table_id, config, paper_csv, tidy, run_settings, human)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render one paper table (ours beside the paper's numbers).")
    parser.add_argument("--table", required=True, help="table id in the spec, e.g. table1")
    parser.add_argument("--spec", type=Path, default=Path("config/tables.yaml"))
    parser.add_argument(
        "--tidy",
        type=Path,
        nargs="*",
        default=[],
        help="the long table(s) of numbers: results/{scale}/metrics.csv or its experiment's part",
    )
    parser.add_argument("--run-settings", type=Path, nargs="*", default=[], help="their run_settings.json")
    parser.add_argument("--keys", type=Path, nargs="*", default=[], help="human-evaluation key files (human tables)")
    parser.add_argument(
        "--annotations", type=Path, nargs="*", default=[], help="annotators' filled CSV forms (human tables)"
    )
    parser.add_argument("--paper", type=Path, default=Path("results/paper_tables.csv"))
    parser.add_argument("--out", type=Path, default=Path("results/tables"))
    args = parser.parse_args(argv)
    try:
        tidy, run_settings = read_tidy(args.tidy, args.run_settings)
        written = render_table(
            args.table,
            load_spec(args.spec),
            args.paper,
            args.out,
            tidy,
            run_settings,
            {"keys": args.keys, "annotations": args.annotations},
        )
    except TableError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
