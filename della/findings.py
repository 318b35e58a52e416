"""Which of the paper's qualitative claims hold on our numbers: {results_dir}/FINDINGS.md.

Each claim of ``config/findings.yaml`` is a set of comparisons between numbers (this row's KL
above that row's, more latent layers below fewer in PPL, ...), evaluated mechanically on the
means over seeds of our runs' rows of metrics.csv (della/tidy.py), and on the paper's printed
numbers beside them (a claim that does not hold on the paper's own numbers is mis-written). A
claim holds when every comparison holds, does not hold when one fails, and is "not run" when one
of our numbers is missing (the reason is named: experiment or dataset not run, no run with that label).
Strict inequalities: a tie (say AU 0 against AU 0) does not hold. docs/figures.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import pandas as pd

from della.figures import list_written
from della.io import atomic_write_text
from della.table_spec import Observation
from della.tables import read_paper
from della.tidy import read_tidy, runs_of

HOLDS, FAILS, NOT_RUN, NOT_PRINTED = "holds", "does not hold", "not run", "not printed"
DIRECTIONS = {"higher": ">", "lower": "<"}
ROW_COMPARISONS = ("than", "order", "pairs")
LATENT_LAYERS = "latent_layers"
MORE_LAYERS, START_VS_END = "more_layers", "start_vs_end"
CLAIM_KEYS = ("id", "claim", "source", "experiment", "datasets", "metrics")
CSV_HEADER = [
    "claim", "status", "paper_status", "dataset", "metric", "first", "relation", "second", "ours_first",
    "ours_second", "n_seeds_first", "n_seeds_second", "holds", "paper_first", "paper_second", "paper_holds",
]


class FindingsError(ValueError):
    """A claim that cannot be evaluated as written; the message names the claim."""


# --------------------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Row:
    """A model label within an experiment's runs (and the paper table of the same name)."""

    experiment: str
    label: str


def _row(entry, claim: dict) -> Row:
    if isinstance(entry, str):
        return Row(claim["experiment"], entry)
    if isinstance(entry, dict) and isinstance(entry.get("label"), str):
        return Row(entry.get("experiment", claim["experiment"]), entry["label"])
    raise FindingsError(f"claim {claim['id']}: a row is a label or {{experiment, label}}, not {entry!r}")


def row_pairs(claim: dict) -> list[tuple[Row, Row]]:
    """The (first, second) row pairs a row claim compares: row vs each of `than`, each of
    `order` vs the next, or the explicit `pairs`."""
    if "than" in claim:
        return [(_row(claim["row"], claim), _row(other, claim)) for other in claim["than"]]
    if "order" in claim:
        order = [_row(entry, claim) for entry in claim["order"]]
        return list(itertools.pairwise(order))
    return [(_row(a, claim), _row(b, claim)) for a, b in claim["pairs"]]


def check_claim(claim: dict, where: str) -> dict:
    missing = [key for key in CLAIM_KEYS if key not in claim]
    if missing:
        raise FindingsError(f"{where}: claim {claim.get('id', '?')!r} lacks {missing}")
    bad = {m: d for m, d in claim["metrics"].items() if d not in DIRECTIONS}
    if bad:
        raise FindingsError(f"{where}: claim {claim['id']}: directions must be {list(DIRECTIONS)}, got {bad}")
    if claim.get("kind", "rows") == LATENT_LAYERS:
        if claim.get("compare") not in (MORE_LAYERS, START_VS_END):
            raise FindingsError(f"{where}: claim {claim['id']}: compare must be {MORE_LAYERS} or {START_VS_END}")
        return claim
    if claim.get("kind", "rows") != "rows":
        raise FindingsError(f"{where}: claim {claim['id']}: unknown kind {claim['kind']!r}")
    given = [key for key in ROW_COMPARISONS if key in claim]
    if len(given) != 1 or ("than" in claim) != ("row" in claim):
        raise FindingsError(f"{where}: claim {claim['id']}: give exactly one of row+than, order, pairs")
    if not row_pairs(claim):
        raise FindingsError(f"{where}: claim {claim['id']}: no comparison")
    return claim


def load_claims(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    claims = spec.get("claims") if isinstance(spec, dict) else None
    if not isinstance(claims, list) or not claims:
        raise FindingsError(f"{path}: expected a non-empty 'claims' list")
    ids = [c.get("id") for c in claims]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise FindingsError(f"{path}: duplicate claim ids {duplicated}")
    return [check_claim(claim, str(path)) for claim in claims]


def claim_experiments(claims: list[dict]) -> list[str]:
    """Every experiment whose runs some claim reads (a claim's own, and its rows')."""
    names = []
    for claim in claims:
        names.append(claim["experiment"])
        if claim.get("kind", "rows") == "rows":
            names += [row.experiment for pair in row_pairs(claim) for row in pair]
    return list(dict.fromkeys(names))


# ------------------------------------------------------------------------------------ numbers


@dataclass
class Number:
    """One side of a comparison: our mean over seeds (None: not run) and the paper's value."""

    name: str
    ours: float | None
    paper: float | None
    n_seeds: int = 0
    sources: list[str] = field(default_factory=list)
    why_missing: str = ""  # why `ours` is None


def mean_of(observations: list[Observation], metric: str) -> float | None:
    values = [o.values[metric] for o in observations if metric in o.values]
    return statistics.fmean(values) if values and len(values) == len(observations) else None


@dataclass
class Numbers:
    """Our runs by experiment (from the long table, della/tidy.py), and the paper's printed numbers."""

    tidy: pd.DataFrame
    run_settings: dict
    paper_csv: Path
    runs: dict[str, list[Observation]] = field(default_factory=dict)
    groups: dict[str, dict[tuple[str, str], list[Observation]]] = field(default_factory=dict)
    paper: dict[str, dict[tuple[str, str, str], float]] = field(default_factory=dict)

    def __post_init__(self):
        for experiment, rows in self.tidy.groupby("experiment", sort=False):
            self.runs[experiment] = runs_of(rows, self.run_settings)
            self.groups[experiment] = defaultdict(list)
            for obs in self.runs[experiment]:
                self.groups[experiment][obs.dataset, obs.label].append(obs)

    def datasets(self, experiment: str) -> set[str]:
        return {dataset for dataset, _ in self.groups.get(experiment, {})}

    def paper_value(self, experiment: str, dataset: str, label: str, metric: str) -> float | None:
        if experiment not in self.paper:
            self.paper[experiment] = read_paper(self.paper_csv, experiment)
        return self.paper[experiment].get((dataset, label, metric))

    def row(self, claim: dict, row: Row, dataset: str, metric: str) -> Number:
        name = row.label if row.experiment == claim["experiment"] else f"{row.label} ({row.experiment})"
        paper = self.paper_value(row.experiment, dataset, row.label, metric)
        if row.experiment not in self.runs:
            return Number(name, None, paper, why_missing=f"experiment {row.experiment} not run")
        if dataset not in self.datasets(row.experiment):
            return Number(name, None, paper, why_missing=f"{row.experiment} did not run {dataset}")
        observations = self.groups[row.experiment].get((dataset, row.label))
        if observations is None:  # a reduced experiment, or a label that is no row (tests check the config's)
            labels = sorted(label for d, label in self.groups[row.experiment] if d == dataset)
            return Number(name, None, paper, why_missing=f"{row.experiment} has no {dataset} run labelled "
                                                         f"{row.label!r} (it has {labels})")
        value = mean_of(observations, metric)
        return Number(name, value, paper, len(observations), [str(o.path) for o in observations],
                      "" if value is not None else f"{metric} not in every run of {row.label} on {dataset}")


# -------------------------------------------------------------------------------- comparisons


@dataclass
class Comparison:
    dataset: str
    metric: str
    direction: str  # higher | lower: first against second
    first: Number
    second: Number

    @staticmethod
    def _holds(a: float | None, b: float | None, direction: str) -> bool | None:
        if a is None or b is None:
            return None
        return a > b if direction == "higher" else a < b

    @property
    def holds(self) -> bool | None:
        return self._holds(self.first.ours, self.second.ours, self.direction)

    @property
    def paper_holds(self) -> bool | None:
        return self._holds(self.first.paper, self.second.paper, self.direction)


def row_comparisons(claim: dict, numbers: Numbers) -> list[Comparison]:
    return [
        Comparison(dataset, metric, direction, numbers.row(claim, a, dataset, metric), numbers.row(claim, b, dataset, metric))
        for dataset in claim["datasets"]
        for metric, direction in claim["metrics"].items()
        for a, b in row_pairs(claim)
    ]


def layer_comparisons(claim: dict, numbers: Numbers) -> list[Comparison]:
    """Fig. 2's points (della/figures.py) compared: within each series more layers against
    fewer, or at equal counts the `start` series against the `end` series. The paper prints no
    numbers for a figure."""
    from della.figures import END, START, layer_points, layer_run

    runs = numbers.runs.get(claim["experiment"], [])
    metrics = list(claim["metrics"])
    points = layer_points([layer_run(obs, metrics) for obs in runs], metrics) if runs else []
    by_key = defaultdict(list)
    for p in points:
        by_key[p.dataset, p.metric, p.series].append(p)  # sorted by number of latent layers

    def number(p) -> Number:
        return Number(f"layers {p.first}..{p.last}", p.mean, None, len(p.runs), [str(r.path) for r in p.runs])

    comparisons = []
    for dataset in claim["datasets"]:
        for metric, direction in claim["metrics"].items():
            if claim["compare"] == MORE_LAYERS:
                pairs = [(more, fewer) for series in (START, END)
                         for fewer, more in zip(by_key[dataset, metric, series], by_key[dataset, metric, series][1:])]
            else:
                ends = {p.n_latent: p for p in by_key[dataset, metric, END]}
                pairs = [(p, ends[p.n_latent]) for p in by_key[dataset, metric, START]
                         if p.n_latent in ends and p.first != ends[p.n_latent].first]
            comparisons += [Comparison(dataset, metric, direction, number(a), number(b)) for a, b in pairs]
    return comparisons


@dataclass
class Finding:
    claim: dict
    comparisons: list[Comparison]

    @property
    def status(self) -> str:
        results = [c.holds for c in self.comparisons]
        if False in results:
            return FAILS
        return NOT_RUN if None in results or not results else HOLDS

    @property
    def paper_status(self) -> str:
        results = [c.paper_holds for c in self.comparisons]
        if False in results:
            return FAILS
        return HOLDS if True in results else NOT_PRINTED

    def tally(self, attribute: str) -> str:
        results = [getattr(c, attribute) for c in self.comparisons]
        return f"{results.count(True)}/{len(results)}"


def evaluate(claims: list[dict], numbers: Numbers) -> list[Finding]:
    findings = []
    for claim in claims:
        compare = layer_comparisons if claim.get("kind", "rows") == LATENT_LAYERS else row_comparisons
        findings.append(Finding(claim, compare(claim, numbers)))
    return findings


# ----------------------------------------------------------------------------------- writing


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _mark(holds: bool | None) -> str:
    return {True: "✓", False: "✗", None: "–"}[holds]


PREAMBLE = (
    "Generated by `della-bench findings` (della/findings.py) from the claims in config/findings.yaml; "
    "do not edit. Each claim is a set of comparisons between numbers; ours are means over seeds of the "
    "runs' rows of metrics.csv (the settings behind each metric are in the tables' footers and CSVs), the "
    "paper's are its printed numbers. A claim holds when every comparison holds (strictly: a tie does "
    "not), does not hold when one fails, and is not run when one of our numbers is missing."
)


def render_markdown(findings: list[Finding], scale: str, runs: dict[str, list[Observation]]) -> str:
    counts = {status: sum(f.status == status for f in findings) for status in (HOLDS, FAILS, NOT_RUN)}
    lines = [
        f"# Findings at {scale} scale",
        "",
        PREAMBLE,
        "",
        f"**{counts[HOLDS]} hold, {counts[FAILS]} do not hold, {counts[NOT_RUN]} not run** (of {len(findings)} claims).",
        "",
        f"Runs read: {', '.join(f'{e} ({len(observations)} runs)' for e, observations in runs.items()) or 'none'}.",
        "",
        "| # | claim | where | ours | comparisons holding | paper's numbers |",
        "|---:|---|---|---|---:|---|",
    ]
    for k, f in enumerate(findings, 1):
        lines.append(f"| {k} | {f.claim['claim']} | {f.claim['source']} | **{f.status}** | "
                     f"{f.tally('holds')} | {f.paper_status} ({f.tally('paper_holds')}) |")
    for k, f in enumerate(findings, 1):
        lines += ["", f"## {k}. {f.claim['claim']} ({f.claim['id']}): {f.status}", ""]
        if not f.comparisons:
            lines.append(f"No runs of experiment `{f.claim['experiment']}`.")
            continue
        missing = [n.why_missing for c in f.comparisons for n in (c.first, c.second) if n.why_missing]
        if missing:
            lines += [f"Numbers missing: {'; '.join(dict.fromkeys(missing))}.", ""]
        lines += ["| dataset | metric | comparison | ours | | paper | |", "|---|---|---|---|---|---|---|"]
        for c in f.comparisons:
            relation = DIRECTIONS[c.direction]
            lines.append(
                f"| {c.dataset} | {c.metric} | {c.first.name} {relation} {c.second.name} | "
                f"{_number(c.first.ours)} {relation} {_number(c.second.ours)} | {_mark(c.holds)} | "
                f"{_number(c.first.paper)} {relation} {_number(c.second.paper)} | {_mark(c.paper_holds)} |"
            )
    return "\n".join(lines) + "\n"


def render_csv(findings: list[Finding]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def cell(value) -> str:
        return "" if value is None else repr(value)

    for f in findings:
        for c in f.comparisons:
            writer.writerow([
                f.claim["id"], f.status, f.paper_status, c.dataset, c.metric, c.first.name, c.direction, c.second.name,
                cell(c.first.ours), cell(c.second.ours), c.first.n_seeds, c.second.n_seeds, cell(c.holds),
                cell(c.first.paper), cell(c.second.paper), cell(c.paper_holds),
            ])
    return out.getvalue()


def write_findings(spec: Path, tidy: pd.DataFrame, run_settings: dict, paper_csv: Path, scale: str,
                   out_md: Path) -> list[Path]:
    """FINDINGS.md and findings.csv (every comparison with its numbers) beside it, from the long
    table of the experiments the claims read."""
    claims = load_claims(spec)
    numbers = Numbers(tidy, run_settings, Path(paper_csv))
    findings = evaluate(claims, numbers)
    out_md, out_csv = Path(out_md), Path(out_md).with_name("findings.csv")
    atomic_write_text(out_md, render_markdown(findings, scale, numbers.runs))
    atomic_write_text(out_csv, render_csv(findings))
    return [out_md, out_csv]


def findings_files(results_dir: str) -> list[str]:
    return [f"{results_dir}/FINDINGS.md", f"{results_dir}/findings.csv"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="della-bench findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("config/findings.yaml"))
    parser.add_argument("--tidy", type=Path, nargs="*", default=[],
                        help="the long table of the experiments the claims read (metrics.csv or its parts)")
    parser.add_argument("--run-settings", type=Path, nargs="*", default=[], help="their run_settings.json")
    parser.add_argument("--paper", type=Path, default=Path("results/paper_tables.csv"))
    parser.add_argument("--scale", required=True, help="named in the title (sample | paper)")
    parser.add_argument("--out", type=Path, required=True, help="FINDINGS.md; findings.csv beside it")
    args = parser.parse_args(argv)
    return list_written("findings", lambda: write_findings(args.spec, *read_tidy(args.tidy, args.run_settings),
                                                           args.paper, args.scale, args.out))


if __name__ == "__main__":
    sys.exit(main())
