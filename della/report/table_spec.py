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

# What a table reads: run metrics, dataset statistics, benchmark timings, or human ratings.
KINDS = ("metrics", "data", "benchmark", "human")
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


def columns_of(spec: dict, dataset: str) -> list[str]:
    """A table's columns are one list, or a mapping dataset -> list (Table 3's criteria differ)."""
    columns = spec["columns"]
    return list(columns[dataset]) if isinstance(columns, dict) else list(columns)


def all_columns(spec: dict) -> list[str]:
    """Every column of a table, each once, in first-seen order."""
    seen = [c for dataset in dataset_names(spec) for c in columns_of(spec, dataset)]
    return list(dict.fromkeys(seen))


def dataset_names(spec: dict) -> list[str]:
    return [entry if isinstance(entry, str) else entry["name"] for entry in spec["datasets"]]


# Keys a table of each kind needs besides title, kind, datasets and columns.
KIND_KEYS = {
    "metrics": ("rows",),
    "data": ("paper_model", "stats_fields"),
    "benchmark": ("rows", "stages"),
    "human": ("rows", "human_eval"),
}


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
    missing = [key for key in KIND_KEYS[spec["kind"]] if key not in spec]
    if missing:
        raise TableError(f"table {table_id}: a {spec['kind']} table needs {missing}")
    columns = all_columns(spec)
    if spec["kind"] == "data":
        unmapped = [c for c in columns if c not in spec["stats_fields"]]
        if unmapped:
            raise TableError(f"table {table_id}: no stats_fields entry for {unmapped}")
        return spec
    directions = config["metric_directions"]
    undirected = [c for c in columns if lookup(directions, c) not in DIRECTIONS]
    if undirected and not single_block(spec):
        raise TableError(
            f"table {table_id}: no direction ({'/'.join(DIRECTIONS)}) in metric_directions for {undirected}"
        )
    if spec["kind"] == "benchmark":
        unmapped = [c for c in columns if c not in spec["stages"]]
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
            # one block for all datasets: the row is named by its dataset (and label, if several)
            display = (dataset if len(entries) == 1 else f"{dataset} / {label}") if single_block(spec) else ""
            rows.append(RowSpec(dataset, label, label, optional, na, display))
    return rows


def single_block(spec: dict) -> bool:
    return spec["kind"] in SINGLE_BLOCK_KINDS


def block_title(spec: dict, row: RowSpec) -> str | None:
    """One block per dataset, or a single block of datasets (data and benchmark tables)."""
    return None if single_block(spec) else row.dataset


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
