"""What a table is, before anything is read or drawn: its spec in config/tables.yaml (kinds,
columns, rows, column patterns) and the observations its inputs become.

Shared by the renderer (`della.report.tables`) and the readers of table inputs that live elsewhere
(`della.report.human_eval`), which is why it is a module of its own: both import it, neither imports
the other's internals back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from della import REPO
from della.pipeline.config_errors import validate_document

# Tables whose rows all sit in one block (one row per dataset); the others get a block per dataset.
SINGLE_BLOCK_KINDS = ("data", "benchmark")
# value: higher_is_better; a reference column (the probe's majority-class rate) is not a score
REFERENCE = "reference"
DIRECTIONS = {"lower": False, "higher": True, REFERENCE: None}


class TableError(ValueError):
    """Input that would make a table wrong or incomplete; the message names the file."""


# ------------------------------------------------------------------------------ column patterns

# A column name (or a key of metric_directions, footer_settings, decimals, or a not_applicable
# entry) holding this placeholder is a pattern: it matches every metric name with a label put in.
PLACEHOLDER = "{label}"
# What a label may be: the characters that delimit it in a metric name (`Probe[x]@z3`) excluded.
LABEL_CHARS = r"[^\[\]@]+"


def is_pattern(name: str) -> bool:
    return PLACEHOLDER in name


def pattern_label(pattern: str, metric: str) -> str | None:
    """The label that makes `pattern` read `metric` (None: no label does)."""
    before, after = pattern.split(PLACEHOLDER, 1)
    match = re.fullmatch(re.escape(before) + f"({LABEL_CHARS})" + re.escape(after), metric)
    return match[1] if match else None


def matches(name: str, metric: str) -> bool:
    """Is `name` the metric itself, or a pattern that matches it?"""
    return name == metric or (is_pattern(name) and pattern_label(name, metric) is not None)


def lookup(mapping: dict, metric: str):
    """The entry of `metric` in a per-metric mapping of the config: its own key, else the
    pattern key that matches it; None when neither is there."""
    if metric in mapping:
        return mapping[metric]
    return next((value for key, value in mapping.items() if matches(key, metric)), None)


# --------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class RowSpec:
    """One row of a table: which observations fill it and which paper row it is compared to."""

    dataset: str
    label: str  # matched to metrics.json `label` (for data tables: the dataset id)
    paper_model: str  # the `model` column of paper_tables.csv
    optional: bool = False
    not_applicable: frozenset[str] = frozenset()
    display: str = ""  # the row's name in the rendered table ("" = the label)
    from_data: bool = False  # added because a model of the experiment has results and no row

    @property
    def name(self) -> str:
        """Short name for footers and error messages."""
        return self.label if self.label == self.dataset else f"{self.dataset}/{self.label}"

    @property
    def shown(self) -> str:
        return self.display or self.label


# What config/tables.yaml may hold (checked at start-up; what a schema cannot say, below).
SCHEMA = REPO / "config" / "tables.schema.yaml"


def load_spec(path: Path) -> dict:
    """Read the tables config (the whole file: directions, formats and all tables), checked
    against config/tables.schema.yaml (one-line errors that name the file, key and rule)."""
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    return validate_document(config, path, SCHEMA, TableError)


@dataclass(frozen=True)
class TableSpec:
    """One table of config/tables.yaml, read once (`table_spec`); the file's schema has checked its
    shape (config/tables.schema.yaml), `table_spec` what a schema cannot say."""

    id: str
    title: str
    kind: str  # what it reads: metrics (runs), data (statistics), benchmark (timings), human (ratings)
    datasets: tuple  # dataset names, or a data table's {name, optional, not_applicable} entries
    columns: tuple[str, ...] | dict[str, tuple[str, ...]]  # one list, or dataset -> list (Table 3)
    rows: tuple | dict[str, tuple] = ()  # one list of row entries, or dataset -> list
    runs_from: str | None = None  # the experiment whose runs a companion table reads
    paper_model: str | None = None  # a data table's `model` in paper_tables.csv
    stats_fields: dict[str, str] = field(default_factory=dict)  # a data table's column -> stats.json path
    stats_settings: tuple[str, ...] = ()
    stages: dict[str, str] = field(default_factory=dict)  # a benchmark table's column -> stage
    human_eval: dict | None = None  # a human table's protocol (della/report/human_eval.py)

    @classmethod
    def from_config(cls, table_id: str, entry: dict) -> TableSpec:
        def frozen(value):
            return {k: tuple(v) for k, v in value.items()} if isinstance(value, dict) else tuple(value)

        return cls(
            id=table_id,
            title=entry["title"],
            kind=entry["kind"],
            datasets=tuple(entry["datasets"]),
            columns=frozen(entry["columns"]),
            rows=frozen(entry.get("rows", ())),
            runs_from=entry.get("runs_from"),
            paper_model=entry.get("paper_model"),
            stats_fields=dict(entry.get("stats_fields", {})),
            stats_settings=tuple(entry.get("stats_settings", ())),
            stages=dict(entry.get("stages", {})),
            human_eval=entry.get("human_eval"),
        )

    @property
    def experiment(self) -> str:
        """The experiment whose runs a metrics or benchmark table reads: its own, or `runs_from`'s."""
        return self.runs_from or self.id

    @property
    def single_block(self) -> bool:
        """All rows in one block (one row per dataset), or a block per dataset."""
        return self.kind in SINGLE_BLOCK_KINDS

    @property
    def dataset_names(self) -> list[str]:
        return [entry if isinstance(entry, str) else entry["name"] for entry in self.datasets]

    def columns_of(self, dataset: str) -> list[str]:
        """A table's columns are one list, or a mapping dataset -> list (Table 3's criteria differ)."""
        return list(self.columns[dataset]) if isinstance(self.columns, dict) else list(self.columns)

    @property
    def all_columns(self) -> list[str]:
        """Every column of the table, each once, in first-seen order."""
        return list(dict.fromkeys(c for dataset in self.dataset_names for c in self.columns_of(dataset)))

    def block_title(self, row: RowSpec) -> str | None:
        return None if self.single_block else row.dataset

    def expand_rows(self) -> list[RowSpec]:
        """All rows of the table in display order, one per (dataset, label)."""
        if self.kind == "data":
            rows = []
            for entry in self.datasets:
                name, optional, na = _row_entry(entry, self.id)
                rows.append(RowSpec(name, name, self.paper_model, optional, na))
            return rows
        rows = []
        for dataset in self.datasets:
            entries = self.rows[dataset] if isinstance(self.rows, dict) else self.rows
            for entry in entries:
                label, optional, na = _row_entry(entry, self.id)
                # one block for all datasets: the row is named by its dataset (and label, if several)
                display = (dataset if len(entries) == 1 else f"{dataset} / {label}") if self.single_block else ""
                rows.append(RowSpec(dataset, label, label, optional, na, display))
        return rows


def table_spec(config: dict, table_id: str) -> TableSpec:
    """The spec of one table, checked so that later code can trust it: its shape by the schema
    (when `load_spec` read the file), here what a schema cannot say."""
    tables = config["tables"]
    if table_id not in tables:
        raise TableError(f"unknown table {table_id!r}; the spec defines {sorted(tables)}")
    spec = TableSpec.from_config(table_id, tables[table_id])
    columns = spec.all_columns
    if spec.kind == "data":
        unmapped = [c for c in columns if c not in spec.stats_fields]
        if unmapped:
            raise TableError(f"table {table_id}: no stats_fields entry for {unmapped}")
        return spec
    directions = config["metric_directions"]
    undirected = [c for c in columns if lookup(directions, c) not in DIRECTIONS]
    if undirected and not spec.single_block:
        raise TableError(
            f"table {table_id}: no direction ({'/'.join(DIRECTIONS)}) in metric_directions for {undirected}"
        )
    if spec.kind == "benchmark":
        unmapped = [c for c in columns if c not in spec.stages]
        if unmapped:
            raise TableError(f"table {table_id}: no stage in 'stages' for {unmapped}")
    return spec


def _row_entry(entry, table_id: str) -> tuple[str, bool, frozenset[str]]:
    """A row entry is a plain name or a mapping {name, optional, not_applicable}."""
    if isinstance(entry, str):
        return entry, False, frozenset()
    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
        return entry["name"], bool(entry.get("optional", False)), frozenset(entry.get("not_applicable", ()))
    raise TableError(f"table {table_id}: bad row entry {entry!r}")


# ------------------------------------------------------------------------------------ readers


# Provenance fields of metrics.json (della/io.py `provenance`) shown beside the package versions.
PROVENANCE_FIELDS = {
    "python": "python",
    "git_commit": "della-bench commit",
    "device": "device",
    "tf32": "TF32 matmuls",
    "hub_models": "hub models",
}


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
    seed: int | str  # str: an annotator (human tables)
    values: dict[str, float | None]
    settings: dict[str, dict] = field(default_factory=dict)  # per metric
    run_settings: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    higher_is_better: dict[str, bool | None] = field(default_factory=dict)
    sources: list[Path] = field(default_factory=list)  # every file behind the values (default: path)
    model: str = ""  # the run's model id (metrics.json `model`), where the input names one

    @property
    def files(self) -> list[Path]:
        return self.sources or [self.path]


@dataclass
class Summary:
    """A per-dataset number about the table as a whole (e.g. inter-annotator agreement)."""

    dataset: str
    name: str
    metric: str
    value: float | None  # None: undefined (e.g. agreement when nobody's scores vary)
    n: int  # how many replicates it is computed over
    settings: dict = field(default_factory=dict)
