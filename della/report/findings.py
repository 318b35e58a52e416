"""Which of the paper's qualitative claims hold on our numbers: {results_dir}/FINDINGS.md.

Each claim of ``config/findings.yaml`` (schema: config/findings.schema.yaml) is a set of
comparisons between numbers (this row's KL above that row's, more latent layers below fewer in
PPL, ...), evaluated mechanically on our runs' rows of metrics.csv (della/report/tidy.py), and on the
paper's printed numbers beside them (a claim that does not hold on the paper's own numbers is
mis-written).

Our side of a comparison is a paired difference over the seeds both rows ran, signed so that the
claim says it is positive, with its t interval (della/report/intervals.py), judged against the claim's
minimum effect (stated in the file before any run): it holds, fails or is inconclusive; it is
"not comparable" where the paper defines the metric otherwise than our runs measured it
(`paper_defines`), and "not run" where a number is missing (the reason is named: experiment or
dataset not run, no run with that label). Where the runs wrote their per-sentence values
(metrics/representation.py), each seed's per-sentence difference gets a paired bootstrap interval
too (reported beside, not part of the verdict: it leaves out the seed-to-seed variation).
A claim holds when every comparison holds, fails when one fails, is inconclusive otherwise.
Benjamini-Hochberg over every comparison of the report says how many holds survive the
correction for making that many. docs/figures.md.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import pandas as pd
import yaml

from della import REPO
from della.io import PER_SENTENCE_FILE, atomic_write_text
from della.pipeline.config_errors import validate_document
from della.report.figures import list_written
from della.report.intervals import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_COMPARABLE,
    Summary,
    adjusted_p_values,
    differing_settings,
    one_sided_p_values,
    over_seeds,
    paired_bootstrap,
    paired_over_seeds,
    verdict,
)
from della.report.table_spec import Observation
from della.report.tables import read_paper
from della.report.tidy import read_tidy, runs_of

NOT_RUN, NOT_PRINTED = "not run", "not printed"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_COMPARABLE, NOT_RUN)
DIRECTIONS = {"higher": ">", "lower": "<"}
ROW_COMPARISONS = ("than", "order", "pairs")
LATENT_LAYERS = "latent_layers"
MORE_LAYERS, START_VS_END = "more_layers", "start_vs_end"
SCHEMA = REPO / "config" / "findings.schema.yaml"
# Which of the per-sentence values a run's evaluation writes beside its metrics.json
# (metrics/representation.py `per_sentence`) each metric is the mean of: the paired bootstrap
PER_SENTENCE_METRICS = {"NLL": "nll", "ELBO": "elbo", "KL": "kl"}
CSV_HEADER = [
    "claim",
    "status",
    "paper_status",
    "dataset",
    "metric",
    "first",
    "relation",
    "second",
    "ours_first",
    "ours_second",
    "n_seeds_first",
    "n_seeds_second",
    "paired_seeds",
    "difference",
    "difference_low",
    "difference_high",
    "minimum_effect",
    "verdict",
    "p_value",
    "p_adjusted",
    "holds_after_correction",
    "sentence_bootstrap",
    "why",
    "paper_first",
    "paper_second",
    "paper_holds",
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


def check_claim(claim: dict, where: str, minimum_effects: dict) -> dict:
    """What the schema cannot say: the comparisons a claim's kind needs, and a minimum effect
    for every metric it compares (the claim's own over the file's, merged into the claim)."""
    if claim["kind"] == LATENT_LAYERS:
        if claim.get("compare") not in (MORE_LAYERS, START_VS_END):
            raise FindingsError(f"{where}: claim {claim['id']}: compare must be {MORE_LAYERS} or {START_VS_END}")
    else:
        given = [key for key in ROW_COMPARISONS if key in claim]
        if len(given) != 1 or ("than" in claim) != ("row" in claim):
            raise FindingsError(f"{where}: claim {claim['id']}: give exactly one of row+than, order, pairs")
        row_pairs(claim)  # each row well-formed
    effects = {**minimum_effects, **claim.get("minimum_effects", {})}
    missing = [metric for metric in claim["metrics"] if metric not in effects]
    if missing:
        raise FindingsError(f"{where}: claim {claim['id']}: no minimum effect for {missing} (minimum_effects)")
    return {**claim, "minimum_effects": {metric: effects[metric] for metric in claim["metrics"]}}


@dataclass(frozen=True)
class Spec:
    """The claims, each with its minimum effects, and the statistics' settings."""

    claims: list[dict]
    confidence: float
    false_discovery_rate: float


def load_findings_spec(path: Path) -> Spec:
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    if not isinstance(spec, dict):
        raise FindingsError(f"{path}: expected a mapping with 'minimum_effects' and 'claims'")
    validate_document(spec, path, SCHEMA, FindingsError)
    ids = [c["id"] for c in spec["claims"]]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise FindingsError(f"{path}: duplicate claim ids {duplicated}")
    claims = [check_claim(claim, str(path), spec["minimum_effects"]) for claim in spec["claims"]]
    return Spec(claims, spec["confidence"], spec["false_discovery_rate"])


def load_claims(path: Path) -> list[dict]:
    return load_findings_spec(path).claims


def claim_experiments(claims: list[dict]) -> list[str]:
    """Every experiment whose runs some claim reads (a claim's own, and its rows')."""
    names = []
    for claim in claims:
        names.append(claim["experiment"])
        if claim["kind"] == "rows":
            names += [row.experiment for pair in row_pairs(claim) for row in pair]
    return list(dict.fromkeys(names))


# ------------------------------------------------------------------------------------ numbers


@dataclass
class Number:
    """One side of a comparison: our values by seed (empty: not run, `why_missing` says why),
    the settings each run measured the metric with, and the paper's printed value."""

    name: str
    paper: float | None
    by_seed: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    settings: list[dict] = field(default_factory=list)
    why_missing: str = ""

    @property
    def ours(self) -> float | None:
        """The mean over seeds."""
        return over_seeds(list(self.by_seed.values())).mean if self.by_seed else None

    @property
    def n_seeds(self) -> int:
        return len(self.by_seed)


def number_of(name: str, paper: float | None, observations: list, metric: str) -> Number:
    """`metric` of each observation (one per seed; each has .seed, .values, .settings, .path)."""
    missing = [o for o in observations if o.values.get(metric) is None]
    if missing:
        return Number(name, paper, why_missing=f"{metric} not in {missing[0].path}")
    differing = differing_settings({o.path: o.settings.get(metric, {}) for o in observations})
    if differing:  # seeds measured differently are no sample of one quantity
        raise FindingsError(f"{name}: {metric} measured with different settings across seeds in {differing}")
    return Number(
        name,
        paper,
        {o.seed: float(o.values[metric]) for o in observations},
        [str(o.path) for o in observations],
        [o.settings.get(metric, {}) for o in observations],
    )


@dataclass
class Numbers:
    """Our runs by experiment (from the long table, della/report/tidy.py), and the paper's printed numbers."""

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
            return Number(name, paper, why_missing=f"experiment {row.experiment} not run")
        if dataset not in self.datasets(row.experiment):
            return Number(name, paper, why_missing=f"{row.experiment} did not run {dataset}")
        observations = self.groups[row.experiment].get((dataset, row.label))
        if observations is None:  # a reduced experiment, or a label that is no row (tests check the config's)
            labels = sorted(label for d, label in self.groups[row.experiment] if d == dataset)
            return Number(
                name,
                paper,
                why_missing=f"{row.experiment} has no {dataset} run labelled {row.label!r} (it has {labels})",
            )
        return number_of(name, paper, observations, metric)


# -------------------------------------------------------------------------------- comparisons


@cache
def _per_sentence_columns(path: Path) -> dict[str, tuple[float, ...]]:
    """column -> values of one run's per-sentence file, read once however many comparisons use
    it ({} where there is none)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {column: tuple(float(row[column]) for row in rows) for column in (rows[0] if rows else {})}


def per_sentence_values(source: str, column: str) -> tuple[float, ...] | None:
    """One run's per-sentence `column` from the file its evaluation wrote beside metrics.json
    (None where it wrote none: a model without latents, or a run from before the file)."""
    return _per_sentence_columns(Path(source).with_name(PER_SENTENCE_FILE)).get(column)


@dataclass
class Comparison:
    """Our first row against our second on one metric, and the paper's numbers beside."""

    dataset: str
    metric: str
    direction: str  # higher | lower: what the claim says of first against second
    first: Number
    second: Number
    minimum_effect_spec: dict = field(default_factory=dict)  # {absolute, relative}
    paper_defines: dict = field(default_factory=dict)  # {setting: value} of this metric in the paper
    confidence: float = 0.95
    p_adjusted: float | None = None  # set by the report (Benjamini-Hochberg over all comparisons)
    false_discovery_rate: float = 0.05

    @property
    def sign(self) -> int:
        return 1 if self.direction == "higher" else -1

    @property
    def missing(self) -> str:
        return "; ".join(dict.fromkeys(n.why_missing for n in (self.first, self.second) if n.why_missing))

    @property
    def paired_seeds(self) -> list:
        return sorted(set(self.first.by_seed) & set(self.second.by_seed), key=str)

    @cached_property
    def difference(self) -> Summary | None:
        """sign x (first - second) over the seeds both ran, with its t interval."""
        seeds = self.paired_seeds
        if not seeds:
            return None
        return paired_over_seeds(
            {s: self.sign * self.first.by_seed[s] for s in seeds},
            {s: self.sign * self.second.by_seed[s] for s in seeds},
            self.confidence,
        )

    @property
    def minimum_effect(self) -> float | None:
        if self.second.ours is None:
            return None
        spec = self.minimum_effect_spec
        return max(spec.get("absolute", 0.0), spec.get("relative", 0.0) * abs(self.second.ours))

    @property
    def not_comparable(self) -> str:
        """Why our numbers are not the paper's quantity ('' when they are)."""
        for number in (self.first, self.second):
            for settings in number.settings:
                for key, value in self.paper_defines.items():
                    if settings.get(key) != value:
                        return (
                            f"{number.name}'s {self.metric} has {key} {settings.get(key)!r}; the paper's is {value!r}"
                        )
        return ""

    @property
    def why(self) -> str:
        if self.missing:
            return self.missing
        if not self.paired_seeds:
            return (
                f"no seed in common ({sorted(map(str, self.first.by_seed))} vs {sorted(map(str, self.second.by_seed))})"
            )
        if self.not_comparable:
            return self.not_comparable
        if not self.difference.has_interval:
            return f"{self.difference.n} seed{'s' * (self.difference.n != 1)}: no interval"
        return ""

    @property
    def verdict(self) -> str:
        if self.missing or not self.paired_seeds:
            return NOT_RUN
        if self.not_comparable:
            return NOT_COMPARABLE
        return verdict(self.difference, self.minimum_effect)

    @property
    def p_value(self) -> float | None:
        """One-sided p of "the effect is at most the minimum" (small: it is larger)."""
        if self.verdict in (NOT_RUN, NOT_COMPARABLE):
            return None
        p = one_sided_p_values(self.difference, self.minimum_effect)
        return None if p is None else p[0]

    @property
    def holds_after_correction(self) -> bool | None:
        if self.p_adjusted is None:
            return None
        return self.verdict == HOLDS and self.p_adjusted < self.false_discovery_rate

    @cached_property
    def sentence_bootstrap(self) -> list[tuple[object, Summary]]:
        """(seed, the paired bootstrap of sign x (first - second) over the test sentences) for each
        paired seed whose two runs wrote their per-sentence values of this metric."""
        column = PER_SENTENCE_METRICS.get(self.metric)
        if column is None or self.verdict in (NOT_RUN, NOT_COMPARABLE):
            return []
        by_seed = {}
        for number in (self.first, self.second):
            for seed, source in zip(number.by_seed, number.sources, strict=True):
                by_seed.setdefault(seed, []).append(per_sentence_values(source, column))
        found = []
        for seed in self.paired_seeds:
            first, second = by_seed[seed]
            if first is not None and second is not None and len(first) == len(second):
                found.append(
                    (
                        seed,
                        paired_bootstrap(
                            [self.sign * v for v in first], [self.sign * v for v in second], confidence=self.confidence
                        ),
                    )
                )
        return found

    @property
    def paper_holds(self) -> bool | None:
        """The paper's printed numbers in the claimed order (strictly: one number each, no interval)."""
        a, b = self.first.paper, self.second.paper
        if a is None or b is None:
            return None
        return a > b if self.direction == "higher" else a < b


def _comparison(claim: dict, dataset: str, metric: str, first: Number, second: Number, confidence: float) -> Comparison:
    return Comparison(
        dataset,
        metric,
        claim["metrics"][metric],
        first,
        second,
        claim["minimum_effects"][metric],
        claim.get("paper_defines", {}).get(metric, {}),
        confidence,
    )


def row_comparisons(claim: dict, numbers: Numbers, confidence: float) -> list[Comparison]:
    return [
        _comparison(
            claim,
            dataset,
            metric,
            numbers.row(claim, a, dataset, metric),
            numbers.row(claim, b, dataset, metric),
            confidence,
        )
        for dataset in claim["datasets"]
        for metric in claim["metrics"]
        for a, b in row_pairs(claim)
    ]


def layer_comparisons(claim: dict, numbers: Numbers, confidence: float) -> list[Comparison]:
    """Fig. 2's points (della/report/figures.py) compared: within each series more layers against
    fewer, or at equal counts the `start` series against the `end` series. The paper prints no
    numbers for a figure."""
    from della.report.figures import END, START, layer_points, layer_run

    runs = numbers.runs.get(claim["experiment"], [])
    metrics = list(claim["metrics"])
    points = layer_points([layer_run(obs, metrics) for obs in runs], metrics) if runs else []
    by_key = defaultdict(list)
    for p in points:
        by_key[p.dataset, p.metric, p.series].append(p)  # sorted by number of latent layers

    def number(p) -> Number:
        return number_of(f"layers {p.first}..{p.last}", None, p.runs, p.metric)

    comparisons = []
    for dataset in claim["datasets"]:
        for metric in claim["metrics"]:
            if claim["compare"] == MORE_LAYERS:
                pairs = [
                    (more, fewer)
                    for series in (START, END)
                    for fewer, more in zip(
                        by_key[dataset, metric, series], by_key[dataset, metric, series][1:], strict=False
                    )
                ]
            else:
                ends = {p.n_latent: p for p in by_key[dataset, metric, END]}
                pairs = [
                    (p, ends[p.n_latent])
                    for p in by_key[dataset, metric, START]
                    if p.n_latent in ends and p.first != ends[p.n_latent].first
                ]
            comparisons += [_comparison(claim, dataset, metric, number(a), number(b), confidence) for a, b in pairs]
    return comparisons


@dataclass
class Finding:
    claim: dict
    comparisons: list[Comparison]

    @property
    def status(self) -> str:
        """fails if one comparison fails; else not run if a number is missing (or nothing to
        compare); holds if all hold; not comparable if none is comparable; else inconclusive."""
        verdicts = [c.verdict for c in self.comparisons]
        if FAILS in verdicts:
            return FAILS
        if NOT_RUN in verdicts or not verdicts:
            return NOT_RUN
        if all(v == HOLDS for v in verdicts):
            return HOLDS
        return NOT_COMPARABLE if all(v == NOT_COMPARABLE for v in verdicts) else INCONCLUSIVE

    @property
    def holds_after_correction(self) -> bool:
        return bool(self.comparisons) and all(c.holds_after_correction for c in self.comparisons)

    @property
    def paper_status(self) -> str:
        results = [c.paper_holds for c in self.comparisons]
        if False in results:
            return FAILS
        return HOLDS if True in results else NOT_PRINTED

    def tally(self) -> str:
        """Comparisons holding, of those made."""
        return f"{sum(c.verdict == HOLDS for c in self.comparisons)}/{len(self.comparisons)}"

    def paper_tally(self) -> str:
        results = [c.paper_holds for c in self.comparisons]
        return f"{results.count(True)}/{len(results)}"


def correct_for_multiple_comparisons(findings: list[Finding], rate: float) -> int:
    """Benjamini-Hochberg adjusted p-values on every comparison that has one (set on each);
    returns how many comparisons were tested."""
    tested = [c for f in findings for c in f.comparisons if c.p_value is not None]
    for c, adjusted in zip(tested, adjusted_p_values([c.p_value for c in tested]), strict=True):
        c.p_adjusted, c.false_discovery_rate = adjusted, rate
    return len(tested)


def evaluate(claims: list[dict], numbers: Numbers, confidence: float = 0.95) -> list[Finding]:
    findings = []
    for claim in claims:
        compare = layer_comparisons if claim["kind"] == LATENT_LAYERS else row_comparisons
        findings.append(Finding(claim, compare(claim, numbers, confidence)))
    return findings


# ----------------------------------------------------------------------------------- writing


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _mark(holds: bool | None) -> str:
    return {True: "✓", False: "✗", None: "–"}[holds]


def _interval(summary: Summary | None) -> str:
    if summary is None:
        return "–"
    if not summary.has_interval:
        return f"{summary.mean:+.4g} (n={summary.n})"
    return f"{summary.mean:+.4g} [{summary.low:+.4g}, {summary.high:+.4g}] (n={summary.n})"


def _bootstrap(c: Comparison) -> str:
    return "; ".join(f"seed {seed}: {_interval(b)}" for seed, b in c.sentence_bootstrap)


def preamble(spec: Spec) -> str:
    level = f"{spec.confidence:.0%}"
    return (
        "Generated by `della-bench findings` (della/report/findings.py) from the claims in config/findings.yaml; "
        "do not edit. Each claim is a set of comparisons between numbers. Ours: the paired difference over the seeds "
        f"both rows ran, first - second, signed so that the claim says it is positive, with its {level} t interval "
        "(della/report/intervals.py); the settings behind each metric are in the tables' footers and CSVs. A "
        "comparison **holds** when the whole interval is at least the claim's minimum effect (config/findings.yaml, "
        "fixed "
        "before the runs), **fails** when the whole interval is below it, and is **inconclusive** when the "
        "interval straddles it or there is none (one seed); it is **not comparable** where the paper defines the "
        "metric otherwise than our runs measured it, **not run** where a number is missing. A claim holds when "
        "every comparison holds, fails when one fails, and is inconclusive otherwise. The paper's side: its "
        "printed numbers in the claimed order (one number each, so strictly)."
    )


def render_markdown(
    findings: list[Finding], spec: Spec, scale: str, runs: dict[str, list[Observation]], n_tested: int
) -> str:
    counts = {status: sum(f.status == status for f in findings) for status in VERDICTS}
    comparisons = [c for f in findings for c in f.comparisons]
    by_verdict = {v: sum(c.verdict == v for c in comparisons) for v in VERDICTS}
    corrected = sum(bool(c.holds_after_correction) for c in comparisons)
    lines = [
        f"# Findings at {scale} scale",
        "",
        preamble(spec),
        "",
        f"**Claims: {counts[HOLDS]} hold, {counts[FAILS]} fail, {counts[INCONCLUSIVE]} inconclusive, "
        f"{counts[NOT_COMPARABLE]} not comparable, {counts[NOT_RUN]} not run** (of {len(findings)} claims).",
        "",
        f"Comparisons: {len(comparisons)} made: {by_verdict[HOLDS]} hold, {by_verdict[FAILS]} fail, "
        f"{by_verdict[INCONCLUSIVE]} inconclusive, {by_verdict[NOT_COMPARABLE]} not comparable, "
        f"{by_verdict[NOT_RUN]} not run. Corrected for making {n_tested} tests (those with an interval; "
        f"Benjamini-Hochberg, false discovery rate {spec.false_discovery_rate:g}), {corrected} of the "
        f"{by_verdict[HOLDS]} that hold remain; claims holding after the correction: "
        f"{sum(f.holds_after_correction for f in findings)}.",
        "",
        f"Runs read: {', '.join(f'{e} ({len(observations)} runs)' for e, observations in runs.items()) or 'none'}.",
        "",
        "| # | claim | where | ours | comparisons holding | paper's numbers |",
        "|---:|---|---|---|---:|---|",
    ]
    for k, f in enumerate(findings, 1):
        where = f.claim["source"] + (" (control)" if "control" in f.claim else "")
        lines.append(
            f"| {k} | {f.claim['claim']} | {where} | **{f.status}** | "
            f"{f.tally()} | {f.paper_status} ({f.paper_tally()}) |"
        )
    for k, f in enumerate(findings, 1):
        lines += ["", f"## {k}. {f.claim['claim']} ({f.claim['id']}): {f.status}", ""]
        if not f.comparisons:
            lines.append(f"No runs of experiment `{f.claim['experiment']}`.")
            continue
        effects = ", ".join(
            f"{m} {' or '.join(f'{k} {v:g}' for k, v in e.items())}" for m, e in f.claim["minimum_effects"].items()
        )
        if "control" in f.claim:
            lines += [f"A control of ours, not a claim of the paper: {f.claim['control']}.", ""]
        lines += [f"Minimum effects: {effects} (the larger; relative to the second row's mean).", ""]
        notes = list(dict.fromkeys(c.why for c in f.comparisons if c.why and c.verdict != INCONCLUSIVE))
        if notes:
            lines += [f"Not judged: {'; '.join(notes)}.", ""]
        lines += [
            "| dataset | metric | comparison | ours (means) | difference [interval] | minimum | verdict | paper | |",
            "|---|---|---|---|---|---:|---|---|---|",
        ]
        for c in f.comparisons:
            relation = DIRECTIONS[c.direction]
            lines.append(
                f"| {c.dataset} | {c.metric} | {c.first.name} {relation} {c.second.name} | "
                f"{_number(c.first.ours)} vs {_number(c.second.ours)} | {_interval(c.difference)} | "
                f"{_number(c.minimum_effect)} | {c.verdict} | "
                f"{_number(c.first.paper)} {relation} {_number(c.second.paper)} | {_mark(c.paper_holds)} |"
            )
        bootstraps = [(c, _bootstrap(c)) for c in f.comparisons if c.sentence_bootstrap]
        if bootstraps:
            lines += [
                "",
                "Within each seed, over the test sentences (paired BCa bootstrap; leaves out the "
                "seed-to-seed variation, so not the verdict):",
                "",
            ]
            lines += [f"- {c.dataset} {c.metric} {c.first.name} vs {c.second.name}: {text}" for c, text in bootstraps]
    return "\n".join(lines) + "\n"


def render_csv(findings: list[Finding]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def cell(value) -> str:
        return "" if value is None else repr(value)

    for f in findings:
        for c in f.comparisons:
            d = c.difference
            writer.writerow(
                [
                    f.claim["id"],
                    f.status,
                    f.paper_status,
                    c.dataset,
                    c.metric,
                    c.first.name,
                    c.direction,
                    c.second.name,
                    cell(c.first.ours),
                    cell(c.second.ours),
                    c.first.n_seeds,
                    c.second.n_seeds,
                    " ".join(map(str, c.paired_seeds)),
                    cell(d and d.mean),
                    cell(d and d.low),
                    cell(d and d.high),
                    cell(c.minimum_effect),
                    c.verdict,
                    cell(c.p_value),
                    cell(c.p_adjusted),
                    cell(c.holds_after_correction),
                    _bootstrap(c),
                    c.why,
                    cell(c.first.paper),
                    cell(c.second.paper),
                    cell(c.paper_holds),
                ]
            )
    return out.getvalue()


def write_findings(
    spec: Path, tidy: pd.DataFrame, run_settings: dict, paper_csv: Path, scale: str, out_md: Path
) -> list[Path]:
    """FINDINGS.md and findings.csv (every comparison with its numbers) beside it, from the long
    table of the experiments the claims read."""
    loaded = load_findings_spec(spec)
    numbers = Numbers(tidy, run_settings, Path(paper_csv))
    findings = evaluate(loaded.claims, numbers, loaded.confidence)
    n_tested = correct_for_multiple_comparisons(findings, loaded.false_discovery_rate)
    out_md, out_csv = Path(out_md), Path(out_md).with_name("findings.csv")
    atomic_write_text(out_md, render_markdown(findings, loaded, scale, numbers.runs, n_tested))
    atomic_write_text(out_csv, render_csv(findings))
    return [out_md, out_csv]


def findings_files(results_dir: str) -> dict[str, str]:
    """The findings' files as {output name: path} (the rule's outputs and the default target's)."""
    return {"md": f"{results_dir}/FINDINGS.md", "csv": f"{results_dir}/findings.csv"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="della-bench findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("config/findings.yaml"))
    parser.add_argument(
        "--tidy",
        type=Path,
        nargs="*",
        default=[],
        help="the long table of the experiments the claims read (metrics.csv or its parts)",
    )
    parser.add_argument("--run-settings", type=Path, nargs="*", default=[], help="their run_settings.json")
    parser.add_argument("--paper", type=Path, default=Path("results/paper_tables.csv"))
    parser.add_argument("--scale", required=True, help="named in the title (sample | paper)")
    parser.add_argument("--out", type=Path, required=True, help="FINDINGS.md; findings.csv beside it")
    args = parser.parse_args(argv)
    return list_written(
        "findings",
        lambda: write_findings(args.spec, *read_tidy(args.tidy, args.run_settings), args.paper, args.scale, args.out),
    )


if __name__ == "__main__":
    sys.exit(main())
