"""The paper's figures from our run outputs: Fig. 2 (PPL, KL and ELBO against the number of latent
layers), Fig. 3 (sentences decoded along an interpolation between two posteriors), Fig. 4 (DELLA
and Memory on the same prompts) and the training curves of every run; and one figure the paper
does not have, the latent probe's accuracy by layer (which layer knows which label).
docs/figures.md.

Plotted numbers come from the long table of numbers (della/report/tidy.py, metrics.csv); what is not a
metric (the model, its samples, its train log) from the run's files. What each figure shows is
data in ``config/figures.yaml``; every setting that changes a figure is
written beside it (a CSV with the plotted numbers and their settings, or a settings section in
the Markdown). Plots are matplotlib PNG + PDF, written atomically.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import sys
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from della import REPO
from della.io import RUN_DIR, atomic_write_bytes, atomic_write_text, run_path_pattern
from della.io import read_jsonl as io_read_jsonl
from della.pipeline.config_errors import validate_document
from della.report.intervals import Summary, differing_settings, over_seeds
from della.report.table_spec import Observation
from della.report.tables import compact
from della.report.tidy import canonical_json, read_tidy, runs_of

PLOT_FORMATS = ("png", "pdf")
FIGURES_DIR = "figures"
# What config/figures.yaml may hold: the figures and each one's keys (checked at start-up).
SCHEMA = REPO / "config" / "figures.schema.yaml"
# A run directory as the workflow names it (runs/{dataset}/{model}/seed{seed}/...).
RUN_PATH = run_path_pattern()


class FigureError(ValueError):
    """Input that would make a figure wrong; the message names the file or the setting."""


# ------------------------------------------------------------------------------------- specs
# config/figures.yaml read into frozen dataclasses (its schema, config/figures.schema.yaml, holds
# the allowed keys and values; a spec's field names are the file's keys).


@dataclass(frozen=True)
class ExperimentFigure:
    """A figure drawn from one experiment's runs."""

    title: str
    experiment: str  # the run config's experiment


@dataclass(frozen=True)
class LatentLayersFigure(ExperimentFigure):
    """Fig. 2: one panel per metric against the number of latent layers."""

    metrics: tuple[str, ...]


@dataclass(frozen=True)
class InterpolationFigure(ExperimentFigure):
    """Fig. 3: sentences decoded along the interpolation between two test sentences' posteriors."""

    taus: tuple[float, ...]
    posterior: str  # sample: a draw of each posterior; mean: its mean
    seed: int
    among_shortest: int | None  # the pair drawn among this many shortest test sentences (None: all)


@dataclass(frozen=True)
class CaseStudyFigure(ExperimentFigure):
    """Fig. 4: the experiment's models on the same seeded choice of prompts."""

    n_prompts: int
    seed: int


@dataclass(frozen=True)
class ProbeFigure(ExperimentFigure):
    """The latent probe's accuracy by latent layer (not in the paper)."""

    models: tuple[str, ...]


@dataclass(frozen=True)
class TrainingCurvesFigure:
    """Every run's curves from its train_log.jsonl (and validation points, where it validated)."""

    title: str
    panels: tuple[str, ...]
    validation_panels: tuple[str, ...]


@dataclass(frozen=True)
class FigureSpecs:
    fig2: LatentLayersFigure
    fig3: InterpolationFigure
    fig4: CaseStudyFigure
    probe: ProbeFigure
    training_curves: TrainingCurvesFigure

    @classmethod
    def of(cls, spec: dict) -> FigureSpecs:
        """`spec`: config/figures.yaml as `load_spec` read it (validated)."""
        return cls(**{name: figure_spec(spec, name) for name in FIGURE_KINDS})


# Each figure's key in config/figures.yaml and its dataclass (FigureSpecs' fields, in order).
FIGURE_KINDS = {
    "fig2": LatentLayersFigure,
    "fig3": InterpolationFigure,
    "fig4": CaseStudyFigure,
    "probe": ProbeFigure,
    "training_curves": TrainingCurvesFigure,
}


def figure_spec(spec: dict, name: str):
    """One figure of config/figures.yaml (as `load_spec` read it) as its frozen dataclass: a
    renderer reads its own figure only."""
    entry = spec["figures"][name]
    return FIGURE_KINDS[name](**{key: tuple(v) if isinstance(v, list) else v for key, v in entry.items()})


# --------------------------------------------------------------------------------------- spec


def load_spec(path: Path) -> dict:
    """config/figures.yaml, checked against config/figures.schema.yaml (one-line errors that name
    the file, the key and the rule)."""
    with open(path, encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    return validate_document(spec, path, SCHEMA, FigureError)


# ------------------------------------------------------------------------------------ targets


# Each figure's files as {output name: path}: the rules' outputs (workflow/rules/figures.smk) and
# the default target's list come from here, so a figure's files are declared once.


def named_files(prefix: str, extensions) -> dict[str, str]:
    return {ext: f"{prefix}.{ext}" for ext in extensions}


def latent_layer_files(results_dir: str) -> dict[str, str]:
    return named_files(f"{results_dir}/{FIGURES_DIR}/fig2", (*PLOT_FORMATS, "csv"))


def interpolation_files(results_dir: str, dataset: str, model: str, seed: int | str) -> dict[str, str]:
    return named_files(f"{results_dir}/{FIGURES_DIR}/fig3/{dataset}/{model}/seed{seed}", ("md", "csv", "png"))


def case_study_files(results_dir: str) -> dict[str, str]:
    return named_files(f"{results_dir}/{FIGURES_DIR}/fig4", ("md", "csv"))


def probe_files(results_dir: str) -> dict[str, str]:
    return named_files(f"{results_dir}/{FIGURES_DIR}/probe", (*PLOT_FORMATS, "csv"))


def run_files(runs: list[tuple[str, str, int]], filename: str) -> list[str]:
    """`filename` in the directory of each (dataset, model, seed) run."""
    return [f"{RUN_DIR.format(dataset=dataset, model=model, seed=seed)}/{filename}" for dataset, model, seed in runs]


def seed_runs(runs: list[tuple[str, str, int]], seed: int) -> list[tuple[str, str, int]]:
    return [run for run in runs if run[2] == seed]


def training_curve_files(results_dir: str, dataset: str, model: str, seed: int | str) -> dict[str, str]:
    return named_files(f"{results_dir}/{FIGURES_DIR}/training/{dataset}/{model}/seed{seed}", PLOT_FORMATS)


def convergence_files(results_dir: str) -> dict[str, str]:
    return named_files(f"{results_dir}/{FIGURES_DIR}/training/convergence", ("md", "csv"))


def experiment_figures(spec: dict, experiment: str, runs: list[tuple[str, str, int]], results_dir: str) -> list[str]:
    """The figures drawn from one experiment's runs (`snakemake <experiment>` may ask for them)."""
    figures = FigureSpecs.of(spec)
    files = []
    if figures.fig2.experiment == experiment:
        files += latent_layer_files(results_dir).values()
    if figures.fig3.experiment == experiment:
        files += [path for run in runs for path in interpolation_files(results_dir, *run).values()]
    if figures.fig4.experiment == experiment:
        files += case_study_files(results_dir).values()
    if figures.probe.experiment == experiment:
        files += probe_files(results_dir).values()
    return files


def figure_targets(
    spec: dict, experiment_runs: dict[str, list[tuple[str, str, int]]], results_dir: str, trains=lambda model: True
) -> list[str]:
    """Every figure the run config asks for: those whose experiment runs, and the training
    curves of every run that trains (`trains(model)`: false for a decoding entry, which reuses
    another's training). `experiment_runs`: experiment -> its (dataset, model, seed) runs."""
    targets = [
        path for name, runs in experiment_runs.items() for path in experiment_figures(spec, name, runs, results_dir)
    ]
    runs = [run for run in dict.fromkeys(run for runs in experiment_runs.values() for run in runs) if trains(run[1])]
    for run in runs:
        targets += training_curve_files(results_dir, *run).values()
    return targets + (list(convergence_files(results_dir).values()) if runs else [])


# ------------------------------------------------------------------------------------ drawing


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def save_plot(fig, prefix: Path) -> list[Path]:
    """prefix.png and prefix.pdf; no timestamps in them, so a rerun writes the same bytes."""
    written = []
    for ext in PLOT_FORMATS:
        buffer = io.BytesIO()
        metadata = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        fig.savefig(buffer, format=ext, bbox_inches="tight", metadata=metadata)
        path = Path(f"{prefix}.{ext}")
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    pyplot().close(fig)
    return written


def read_jsonl(path: Path, unusable) -> list[dict]:
    """The objects of a JSON-lines file; `unusable(row)` says what is wrong with a row (None:
    nothing), and a bad line is a FigureError naming the file and line."""
    return io_read_jsonl(path, unusable, error=FigureError)


def list_written(command: str, render) -> int:
    """Run a command's `render()` and print the files it wrote (exit status 0), or one line naming
    what is wrong (exit status 1): FigureError, FindingsError, TableError of a metrics.json, a
    missing file."""
    try:
        written = render()
    except (ValueError, OSError) as error:
        print(f"della-bench {command}: error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, out.getvalue())
    return path


# ------------------------------------------------------------------ Fig. 2: latent layers

START, END = "start", "end"
SERIES = {
    START: "latents on layers s..L (starting at layer s)",
    END: "latents on layers 1..e (ending at layer e)",
}
LAYER_CSV_HEADER = [
    "figure",
    "dataset",
    "series",
    "first_layer",
    "last_layer",
    "n_latent_layers",
    "metric",
    "mean",
    "std",
    "low",
    "high",
    "n_seeds",
    "seeds",
    "settings",
    "sources",
]


@dataclass
class LayerRun:
    """One metrics.json of a latent-layer sweep: which decoder layers carried latents."""

    path: Path
    dataset: str
    label: str
    seed: int
    first: int  # 1-based first latent layer
    n_latent: int
    values: dict[str, float]
    settings: dict[str, dict]

    @property
    def last(self) -> int:
        return self.first + self.n_latent - 1


def layer_run(obs: Observation, metrics: list[str]) -> LayerRun:
    """The layer range from the run's model settings (`latent_layers`, absent = all layers) and
    the number of latent layers from its AU settings (`n_groups`: one latent group per layer)."""
    path = obs.path
    layers = obs.run_settings.get("model", {}).get("latent_layers") or {"start": 1, "end": None}
    n_latent = obs.settings.get("AU", {}).get("n_groups")
    if not isinstance(n_latent, int) or n_latent < 1:
        raise FigureError(f"{path}: no latent layer count (metrics.AU.settings.n_groups); Fig. 2 needs latent models")
    if layers.get("end") is not None and layers["end"] - layers["start"] + 1 != n_latent:
        raise FigureError(f"{path}: latent_layers {layers} but {n_latent} latent groups")
    missing = [m for m in metrics if m not in obs.values]
    if missing:
        raise FigureError(f"{path}: metrics {missing} missing (config/figures.yaml fig2.metrics)")
    return LayerRun(path, obs.dataset, obs.label, obs.seed, layers["start"], n_latent, obs.values, obs.settings)


class OverSeeds:
    """A plotted value over the seeds in `values`: its mean, sample standard deviation (ddof 1)
    and 95 % t interval, from della/report/intervals.py (as the tables' and the findings')."""

    values: list[float]

    @property
    def summary(self) -> Summary:
        return over_seeds(self.values)

    @property
    def mean(self) -> float:
        return self.summary.mean

    @property
    def std(self) -> float | None:
        return self.summary.std

    @property
    def error_bar(self) -> float:
        """Half the interval's width (0 without one: one seed): what the plots draw."""
        summary = self.summary
        return (summary.high - summary.low) / 2 if summary.has_interval else 0.0

    def number_cells(self) -> list[str]:
        """A CSV row's mean, std, interval low and high ("" where undefined: one seed)."""
        summary = self.summary
        interval = ["", ""] if not summary.has_interval else [repr(summary.low), repr(summary.high)]
        return [repr(self.mean), "" if self.std is None else repr(self.std), *interval]


@dataclass
class LayerPoint(OverSeeds):
    """One plotted point: a series, its number of latent layers and one metric over seeds."""

    dataset: str
    series: str
    first: int
    last: int
    metric: str
    runs: list[LayerRun] = field(default_factory=list)

    @property
    def n_latent(self) -> int:
        return self.last - self.first + 1

    @property
    def values(self) -> list[float]:
        return [run.values[self.metric] for run in self.runs]


def layer_points(runs: list[LayerRun], metrics: list[str]) -> list[LayerPoint]:
    """Points of the two series per dataset. L (the decoder's depth) is the deepest layer any run
    reaches; a run on layers s..L is in the `start` series, one on 1..e in the `end` series (the
    run on every layer, 1..L, in both). Seeds of the same range are averaged."""
    by_range: dict[tuple[str, int, int], list[LayerRun]] = defaultdict(list)
    for run in runs:
        clash = [r for r in by_range[run.dataset, run.first, run.last] if r.seed == run.seed]
        if clash:
            raise FigureError(f"{run.path}: seed {run.seed} of layers {run.first}..{run.last} also in {clash[0].path}")
        by_range[run.dataset, run.first, run.last].append(run)
    depth = {dataset: max(last for d, _, last in by_range if d == dataset) for dataset, _, _ in by_range}
    points = []
    for (dataset, first, last), group in sorted(by_range.items()):
        series = ([START] if last == depth[dataset] else []) + ([END] if first == 1 else [])
        if not series:
            raise FigureError(
                f"{group[0].path}: latents on layers {first}..{last} neither start at layer 1 nor end at the last "
                f"layer ({depth[dataset]}), so the run is in no series of Fig. 2"
            )
        points += [LayerPoint(dataset, s, first, last, m, group) for s in series for m in metrics]
    order = list(SERIES)
    return sorted(points, key=lambda p: (p.dataset, order.index(p.series), p.n_latent, metrics.index(p.metric)))


def plot_latent_layers(points: list[LayerPoint], metrics: list[str], title: str, prefix: Path) -> list[Path]:
    plt = pyplot()
    datasets = sorted({p.dataset for p in points})
    fig, axes = plt.subplots(
        len(datasets), len(metrics), figsize=(4 * len(metrics), 3.2 * len(datasets)), squeeze=False
    )
    for row, dataset in enumerate(datasets):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            for series, marker in zip(SERIES, "os", strict=True):
                shown = sorted(
                    (p for p in points if (p.dataset, p.series, p.metric) == (dataset, series, metric)),
                    key=lambda p: p.n_latent,
                )
                if not shown:
                    continue
                xs = [p.n_latent for p in shown]
                errors = [p.error_bar for p in shown]
                ax.errorbar(xs, [p.mean for p in shown], yerr=errors, marker=marker, capsize=3, label=SERIES[series])
                for p in shown:
                    layer = p.first if series == START else p.last
                    ax.annotate(
                        f"{'s' if series == START else 'e'}={layer}",
                        (p.n_latent, p.mean),
                        fontsize=7,
                        textcoords="offset points",
                        xytext=(4, 4) if series == START else (4, -10),
                    )
            ax.set_xlabel("number of latent layers")
            ax.set_ylabel(metric)
            ax.set_title(f"{dataset}: {metric}")
            ax.xaxis.get_major_locator().set_params(integer=True)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save_plot(fig, prefix)


def latent_layer_csv(points: list[LayerPoint], path: Path) -> Path:
    rows = [
        [
            "fig2",
            p.dataset,
            p.series,
            p.first,
            p.last,
            p.n_latent,
            p.metric,
            *p.number_cells(),
            len(p.runs),
            " ".join(str(r.seed) for r in p.runs),
            canonical_json(p.runs[0].settings.get(p.metric, {})),
            " ".join(str(r.path) for r in p.runs),
        ]
        for p in points
    ]
    return write_csv(path, LAYER_CSV_HEADER, rows)


def runs_of_experiment(tidy: pd.DataFrame, run_settings: dict, experiment: str, what: str) -> list[Observation]:
    """The runs of `experiment` in the long table (della/report/tidy.py); none is an error naming `what`."""
    runs = runs_of(tidy[tidy.experiment == experiment], run_settings)
    if not runs:
        raise FigureError(f"{what}: no run of experiment {experiment!r} in the long table given")
    return runs


def render_latent_layers(spec: dict, tidy: pd.DataFrame, run_settings: dict, prefix: Path) -> list[Path]:
    """Fig. 2 from the sweep's rows of the long table: prefix.png/.pdf and prefix.csv (every
    plotted number with its seeds, settings and source files)."""
    entry = figure_spec(spec, "fig2")
    metrics = list(entry.metrics)
    runs = [layer_run(obs, metrics) for obs in runs_of_experiment(tidy, run_settings, entry.experiment, "Fig. 2")]
    _check_settings_agree(runs, metrics)
    points = layer_points(runs, metrics)
    return [
        *plot_latent_layers(points, metrics, entry.title, prefix),
        latent_layer_csv(points, Path(f"{prefix}.csv")),
    ]


def _check_settings_agree(runs: list[LayerRun], metrics: list[str]) -> None:
    """Points of one dataset are only comparable when each metric was measured the same way."""
    for dataset in {r.dataset for r in runs}:
        for metric in metrics:
            differing = differing_settings(
                {r.path: r.settings.get(metric, {}) for r in runs if r.dataset == dataset}, RUN_DETAILS
            )
            if differing:
                raise FigureError(
                    f"Fig. 2: metric {metric!r} on {dataset} measured with different settings in {differing}"
                )


# Metric settings that describe the run rather than how the metric was computed: how many latent
# groups it has and which of them a number covers (metrics/representation.py `groups`).
RUN_DETAILS = ("n_groups", "groups")


# -------------------------------------------------------------------- Fig. 3: interpolation

INTERPOLATION_CSV_HEADER = ["role", "tau", "text", "settings"]


def pick_pair(texts: list[str], seed: int, among_shortest: int | None) -> tuple[int, int]:
    """Indices of two different test sentences, drawn (seeded) among the `among_shortest`
    shortest distinct ones in words (ties in test order; None: among all)."""
    first_of = {}
    for i, text in enumerate(texts):
        if text.strip():
            first_of.setdefault(text, i)
    candidates = sorted(first_of.values(), key=lambda i: (len(texts[i].split()), i))[:among_shortest]
    if len(candidates) < 2:
        raise FigureError(
            f"Fig. 3: fewer than two distinct test sentences to interpolate between (among_shortest={among_shortest})"
        )
    first, second = random.Random(seed).sample(candidates, 2)
    return first, second


def render_interpolation(spec: dict, run_dir: Path, test_file: Path, decoding: dict, out_md: Path) -> list[Path]:
    """Fig. 3 for one run: out_md (.md), and beside it .csv and a .png rendering of the table."""
    from della.run.batches import load_records, target_of
    from della.run.generate import interpolate, load_model

    entry = figure_spec(spec, "fig3")
    model = load_model(Path(run_dir))
    if model.config.conditional:
        raise FigureError(
            f"Fig. 3: {run_dir} is a conditional model; the interpolation is between unconditional sentences"
        )
    texts = [target_of(r) for r in load_records(test_file)]
    i, j = pick_pair(texts, entry.seed, entry.among_shortest)
    taus = [float(t) for t in entry.taus]
    outputs = interpolate(model, texts[i], texts[j], taus, decoding, entry.seed, posterior=entry.posterior)
    settings = {
        "run": str(run_dir),
        "test_file": str(test_file),
        "first_test_line": i + 1,
        "second_test_line": j + 1,
        "taus": taus,
        "posterior": entry.posterior,
        "seed": entry.seed,
        "among_shortest": entry.among_shortest,
        "decoding": decoding,
        "interpolation": "z_l = tau z_l^1 + (1 - tau) z_l^2 for every latent layer l",
    }
    rows = [("x1 (tau = 1)", 1.0, texts[i]), ("x2 (tau = 0)", 0.0, texts[j])]
    rows += [("generated", tau, text) for tau, text in zip(taus, outputs, strict=True)]
    out_md = Path(out_md)
    atomic_write_text(out_md, interpolation_markdown(entry.title, rows, settings))
    csv_path = write_csv(
        out_md.with_suffix(".csv"),
        INTERPOLATION_CSV_HEADER,
        [[role, repr(tau), text, canonical_json(settings)] for role, tau, text in rows],
    )
    return [out_md, csv_path, plot_interpolation(entry.title, rows, out_md.with_suffix(".png"))]


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "(empty)"


def interpolation_markdown(title: str, rows: list[tuple[str, float, str]], settings: dict) -> str:
    lines = [f"## {title}", ""]
    lines += [
        f"- **{role}** (test line {settings['first_test_line' if k == 0 else 'second_test_line']}): {_md_cell(text)}"
        for k, (role, _, text) in enumerate(rows[:2])
    ]
    lines += ["", "| τ | generated |", "|---:|---|"]
    lines += [f"| {tau:.2f} | {_md_cell(text)} |" for _, tau, text in rows[2:]]
    lines += ["", "Settings:"] + [
        f"- {key}: {compact(value) if isinstance(value, dict) else value}" for key, value in settings.items()
    ]
    return "\n".join(lines) + "\n"


def plot_interpolation(title: str, rows: list[tuple[str, float, str]], path: Path) -> Path:
    """The Markdown table drawn as a PNG (endpoints first, then one line per tau)."""
    plt = pyplot()
    lines = [f"{role}: {text}" for role, _, text in rows[:2]] + [""]
    lines += [f"τ = {tau:.2f}   {text or '(empty)'}" for _, tau, text in rows[2:]]
    wrapped = [part for line in lines for part in (textwrap.wrap(line, 110, subsequent_indent="            ") or [""])]
    fig = plt.figure(figsize=(11, 0.6 + 0.24 * (len(wrapped) + 2)))
    fig.text(0.01, 0.98, title, fontsize=11, weight="bold", va="top")
    fig.text(0.01, 0.98 - 1.6 / (len(wrapped) + 4), "\n".join(wrapped), fontsize=9, va="top", family="monospace")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# -------------------------------------------------------------------- Fig. 4: case study

CASE_CSV_HEADER = ["dataset", "prompt", "test_id", "source", "reference", "model", "generated", "samples", "settings"]


@dataclass
class SampleRun:
    path: Path
    dataset: str
    label: str
    rows: dict[str, dict]  # source -> samples.jsonl row
    settings: dict


def read_sample_run(path: Path, labels: dict[tuple[str, str], str]) -> SampleRun:
    """A run's samples.jsonl, its decoding settings, and its label (`labels`: (dataset, model) ->
    label, from the long table)."""
    path = Path(path)
    match = RUN_PATH.search(path.as_posix())
    if not match:
        raise FigureError(f"{path}: not at runs/{{dataset}}/{{model}}/seed{{seed}}/samples.jsonl")
    label = labels.get((match["dataset"], match["model"]))
    if label is None:
        raise FigureError(f"{path}: run {match['dataset']}/{match['model']} has no rows in the long table given")

    def unusable(row: dict) -> str | None:
        if not isinstance(row.get("source"), str) or "generated" not in row:
            return "a case study needs conditional samples (source and generated)"
        return None

    rows = {}
    for row in read_jsonl(path, unusable):
        rows.setdefault(row["source"], row)
    settings_file = path.with_suffix(".settings.json")
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    return SampleRun(path, match["dataset"], label, rows, settings)


def pick_prompts(runs: list[SampleRun], n: int, seed: int) -> list[str]:
    """n prompts (seeded) among the sources every run generated for, in test order."""
    common = [s for s in runs[0].rows if all(s in r.rows for r in runs[1:])]
    if not common:
        raise FigureError(f"Fig. 4: no test input shared by {[str(r.path) for r in runs]}")
    chosen = set(random.Random(seed).sample(common, min(n, len(common))))
    return [s for s in common if s in chosen]


def render_case_study(spec: dict, samples: list[Path], tidy: pd.DataFrame, out_md: Path) -> list[Path]:
    """Fig. 4: the same prompts, each model's output beside the reference; out_md and .csv. The
    models' labels come from the long table."""
    entry = figure_spec(spec, "fig4")
    if not samples:
        raise FigureError("Fig. 4: no samples.jsonl given")
    labels = dict(zip(zip(tidy.dataset, tidy.model, strict=True), tidy.label, strict=True))
    by_dataset: dict[str, list[SampleRun]] = defaultdict(list)
    for path in samples:
        run = read_sample_run(path, labels)
        by_dataset[run.dataset].append(run)
    lines, csv_rows = [f"## {entry.title}", ""], []
    for dataset, runs in by_dataset.items():
        lines += [f"### {dataset}", ""]
        for k, source in enumerate(pick_prompts(runs, entry.n_prompts, entry.seed), 1):
            first = runs[0].rows[source]
            lines += [
                f"#### Prompt {k} (test input {first.get('id')})",
                "",
                f"> {_md_cell(source)}",
                "",
                f"**Reference**: {_md_cell(first.get('reference') or '')}",
                "",
            ]
            for run in runs:
                generated = run.rows[source]["generated"]
                lines += [f"**{run.label}**: {_md_cell(generated)}", ""]
                csv_rows.append(
                    [
                        dataset,
                        k,
                        first.get("id"),
                        source,
                        first.get("reference"),
                        run.label,
                        generated,
                        str(run.path),
                        canonical_json(run.settings),
                    ]
                )
    lines += [
        "Settings:",
        (
            f"- prompts: {entry.n_prompts} drawn with seed {entry.seed} among the test inputs "
            "every model generated for, shown in test order"
        ),
    ]
    lines += [
        f"- {run.label} ({run.dataset}): {compact(run.settings)} [{run.path}]"
        for runs in by_dataset.values()
        for run in runs
    ]
    out_md = Path(out_md)
    atomic_write_text(out_md, "\n".join(lines) + "\n")
    return [out_md, write_csv(out_md.with_suffix(".csv"), CASE_CSV_HEADER, csv_rows)]


# ------------------------------------------------------------------- latent probe by layer

ALL_GROUPS = "all"  # the probe on every latent group together
PROBE_CSV_HEADER = [
    "figure",
    "dataset",
    "model",
    "label",
    "features",
    "metric",
    "mean",
    "std",
    "low",
    "high",
    "n_seeds",
    "seeds",
    "settings",
    "sources",
]
NO_PROBE_NOTE = "no probe values: the datasets' records carry no labels (docs/interfaces.md)"
PERCENT_MAX = 100.0  # accuracies are percentages


@dataclass
class ProbePoint(OverSeeds):
    """One plotted number over seeds: a label's probe accuracy on one latent group (or all of
    them), or its majority-class rate, for one (dataset, model)."""

    dataset: str
    model: str  # the run's label (the table row)
    label: str
    features: int | str  # latent group g (1-based) or ALL_GROUPS
    metric: str  # Probe or Majority
    values: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def probe_points(runs: list[Observation]) -> list[ProbePoint]:
    """The probe accuracies (each group and all) and majority rates of the runs, seeds averaged.
    The seeds of a (dataset, model) must report the same probe values with the same settings."""
    from metrics.probe import MAJORITY, PROBE, parse_metric_key

    points: dict[tuple, ProbePoint] = {}
    keys_of: dict[tuple[str, str], tuple[set, Path]] = {}
    for obs in runs:
        path = obs.path
        parsed = {name: parse_metric_key(name) for name in obs.values}
        shown = {name: key for name, key in parsed.items() if key is not None and key[0] in (PROBE, MAJORITY)}
        seen, first = keys_of.setdefault((obs.dataset, obs.label), (set(shown), path))
        if seen != set(shown):
            raise FigureError(f"{path}: probe values {sorted(set(shown) ^ seen)} differ from those of {first}")
        for name, (metric, label, group) in shown.items():
            features = ALL_GROUPS if group is None else group
            point = points.setdefault(
                (obs.dataset, obs.label, label, features, metric),
                ProbePoint(obs.dataset, obs.label, label, features, metric, settings=obs.settings.get(name, {})),
            )
            if canonical_json(point.settings) != canonical_json(obs.settings.get(name, {})):
                raise FigureError(f"{path}: {name} measured with other settings than in {point.paths[0]}")
            point.values.append(obs.values[name])
            point.seeds.append(obs.seed)
            point.paths.append(path)
    return sorted(points.values(), key=lambda p: (p.dataset, p.model, p.label, p.metric, *_feature_order(p.features)))


def _feature_order(features: int | str) -> tuple[bool, int]:
    """Latent groups in order, all groups together last."""
    return (True, 0) if features == ALL_GROUPS else (False, features)


def plot_probe(points: list[ProbePoint], title: str, prefix: Path) -> list[Path]:
    """One panel per (dataset, model): each label's accuracy on latent group g (x = g) and on all
    groups together (x = G + 1), its majority rate a dashed line of the same colour."""
    from metrics.probe import MAJORITY, PROBE

    plt = pyplot()
    panels = list(dict.fromkeys((p.dataset, p.model) for p in points))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 3.4), squeeze=False)
    if not panels:
        axes[0][0].text(0.5, 0.5, NO_PROBE_NOTE, ha="center", va="center", wrap=True)
        axes[0][0].set_axis_off()
    for ax, (dataset, model) in zip(axes[0], panels, strict=False):
        shown = [p for p in points if (p.dataset, p.model) == (dataset, model)]
        groups = sorted({p.features for p in shown if p.features != ALL_GROUPS})
        x_all = (groups[-1] if groups else 0) + 1
        for colour, label in enumerate(dict.fromkeys(p.label for p in shown)):
            style = {"color": f"C{colour}", "capsize": 3}
            probe = [p for p in shown if (p.label, p.metric) == (label, PROBE)]
            by_group = [p for p in probe if p.features != ALL_GROUPS]
            together = [p for p in probe if p.features == ALL_GROUPS]
            # the groups are one line; all groups together is another quantity: a point apart
            ax.errorbar(
                [p.features for p in by_group],
                [p.mean for p in by_group],
                yerr=[p.error_bar for p in by_group],
                marker="o",
                label=f"{label}: probe",
                **style,
            )
            ax.errorbar(
                [x_all] * len(together),
                [p.mean for p in together],
                yerr=[p.error_bar for p in together],
                marker="*",
                markersize=9,
                linestyle="none",
                **style,
            )
            for majority in (p for p in shown if (p.label, p.metric) == (label, MAJORITY)):
                ax.axhline(majority.mean, linestyle="--", linewidth=1, color=f"C{colour}", label=f"{label}: majority")
        ax.set_xticks(groups + [x_all], [f"z{g}" for g in groups] + [ALL_GROUPS])
        ax.set_ylim(0, PERCENT_MAX)  # one scale for every panel: accuracies and rates are comparable
        ax.set_xlabel("latent group (one per decoder layer)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset}: {model}")
        ax.legend(fontsize=6)
    fig.suptitle(title)
    fig.tight_layout()
    return save_plot(fig, prefix)


def probe_csv(points: list[ProbePoint], path: Path) -> Path:
    rows = [
        [
            "probe",
            p.dataset,
            p.model,
            p.label,
            p.features if p.features == ALL_GROUPS else f"z{p.features}",
            p.metric,
            *p.number_cells(),
            len(p.values),
            " ".join(map(str, p.seeds)),
            canonical_json(p.settings),
            " ".join(map(str, p.paths)),
        ]
        for p in points
    ]
    return write_csv(path, PROBE_CSV_HEADER, rows)


def render_probe(spec: dict, tidy: pd.DataFrame, prefix: Path) -> list[Path]:
    """The latent probe by layer, from the rows of the figure's models in the long table:
    prefix.png/.pdf and prefix.csv (every plotted number with its seeds, settings and source
    files). Runs without probe values (no labels in their data) add nothing; with none at all the
    plot says so."""
    entry = figure_spec(spec, "probe")
    drawn = tidy[tidy.model.isin(entry.models)]
    points = probe_points(runs_of_experiment(drawn, {}, entry.experiment, "probe figure"))
    return [*plot_probe(points, entry.title, prefix), probe_csv(points, Path(f"{prefix}.csv"))]


# ------------------------------------------------------------------------- training curves


def read_train_log(path: Path, fields: list[str]) -> list[dict]:
    """train_log.jsonl (one JSON object per logged step, della/run/train.py), each with `step` and
    the plotted fields; a bad line is an error naming the file and line."""

    def unusable(entry: dict) -> str | None:
        missing = [key for key in ("step", *fields) if key not in entry]
        return f"no {missing} in the log entry" if missing else None

    entries = read_jsonl(path, unusable)
    if not entries:
        raise FigureError(f"{path}: empty training log")
    return entries


# More lines than this (a deep paper-scale decoder) and a legend would hide the curves.
MAX_LEGEND_ENTRIES = 12
# Titles of the train_log.jsonl fields (della/run/train.py); other fields show their own name.
PANEL_TITLES = {
    "reconstruction": "reconstruction (nats per sentence)",
    "kl_per_group": "KL per latent layer (nats)",
    "kl": "KL (nats, all layers)",
    "beta": "β (KL weight)",
    "token_nll": "NLL per token",
    "loss": "loss",
    "valid_loss": "validation -ELBO at β = 1 (nats per sentence)",
    "valid_token_nll": "validation NLL per token",
    "valid_kl": "validation KL (nats)",
    "valid_kl_per_group": "validation KL per latent layer (nats)",
}


def training_curve_figure(spec: dict, entries: list[dict], title: str):
    """One panel per field of `training_curves.panels` against the step, then one per field of
    `validation_panels` at the steps the run validated (absent when it never did: training.
    valid_every null); a list-valued field (kl_per_group) gets one line per latent layer."""
    curves = figure_spec(spec, "training_curves")
    validated = [e for e in entries if all(name in e for name in curves.validation_panels)]
    panels = [(name, entries) for name in curves.panels]
    panels += [(name, validated) for name in curves.validation_panels if validated]
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (name, shown) in zip(axes[0], panels, strict=True):
        steps, values = [e["step"] for e in shown], [e[name] for e in shown]
        marker = "o" if shown is validated else None
        if isinstance(values[0], list):
            for layer in range(len(values[0])):
                ax.plot(
                    steps, [v[layer] for v in values], marker=marker, markersize=3, label=f"layer group {layer + 1}"
                )
            if len(values[0]) <= MAX_LEGEND_ENTRIES:
                ax.legend(fontsize=6)
        else:
            ax.plot(steps, values, marker=marker, markersize=3)
        ax.set_xlabel("step")
        ax.set_title(PANEL_TITLES.get(name, name), fontsize=9)
    fig.suptitle(f"{curves.title}: {title}")
    fig.tight_layout()
    return fig


def render_training_curves(spec: dict, log: Path, title: str, prefix: Path) -> list[Path]:
    """The training curves of one run's train_log.jsonl: prefix.png and prefix.pdf."""
    entries = read_train_log(Path(log), list(figure_spec(spec, "training_curves").panels))
    return save_plot(training_curve_figure(spec, entries, title), prefix)


# ------------------------------------------------------------------------- convergence record

CONVERGENCE_COLUMNS = (
    "dataset",
    "model",
    "seed",
    "steps",
    "metric",
    "points",
    "from_step",
    "to_step",
    "from",
    "to",
    "relative_improvement",
    "threshold",
    "met",
)


def convergence_rows(done_files: list[Path]) -> list[dict]:
    """One row per run from its train_done.json: the convergence rule it recorded (della/run/train.py,
    `training.convergence`), or `met` = "not checked" when its settings had no rule."""
    rows = []
    for path in sorted({Path(p) for p in done_files}):
        match = RUN_PATH.search(path.as_posix())
        if not match:
            raise FigureError(f"{path}: not at runs/{{dataset}}/{{model}}/seed{{seed}}/train_done.json")
        try:
            done = json.loads(path.read_text(encoding="utf-8"))
            rule, steps = done.get("convergence"), done["steps"]
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as error:
            raise FigureError(f"{path}: not a train_done.json ({type(error).__name__}: {error})") from None
        row = {"dataset": match["dataset"], "model": match["model"], "seed": int(match["seed"]), "steps": steps}
        if rule is None:
            rows.append({**row, "met": "not checked (training.convergence null)"})
            continue
        rows.append(
            {
                **row,
                "metric": rule["metric"],
                "points": rule.get("points", "all"),
                "from_step": rule.get("from_step"),
                "to_step": rule.get("to_step"),
                "from": rule.get("from"),
                "to": rule.get("to"),
                "relative_improvement": rule.get("relative_improvement"),
                "threshold": rule["min_relative_improvement"],
                "met": rule["met"],
            }
        )
    return rows


def render_convergence(done_files: list[Path], out_md: Path) -> list[Path]:
    """Every run's convergence record: out_md (readable) and the .csv beside it (full precision)."""
    rows = convergence_rows(done_files)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CONVERGENCE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    out_csv = out_md.with_suffix(".csv")

    def cell(row: dict, key: str) -> str:
        value = row.get(key)
        if value is None:
            return ""
        if key in ("relative_improvement", "threshold"):
            return f"{100 * value:.2f} %"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    met = [row for row in rows if row["met"] is True]
    checked = [row for row in rows if isinstance(row["met"], bool)]
    lines = [
        "# Convergence of every run",
        "",
        "The rule (`training.convergence`, della/run/train.py): the validation loss (negative ELBO at beta = 1; "
        "for a model without a latent, its NLL) improved by less than the threshold from `from_step` (the "
        "validation point nearest the start of the last quarter of training; with a latent, among points at "
        "beta = beta_max only) to the end. Reported, never acted on: the budget (`steps`) was fixed in advance.",
        "",
        f"Rule met by {len(met)} of {len(checked)} checked runs.",
        "",
        "| " + " | ".join(CONVERGENCE_COLUMNS) + " |",
        "|" + " --- |" * len(CONVERGENCE_COLUMNS),
    ]
    lines += ["| " + " | ".join(cell(row, key) for key in CONVERGENCE_COLUMNS) + " |" for row in rows]
    atomic_write_text(out_md, "\n".join(lines) + "\n")
    atomic_write_text(out_csv, buffer.getvalue())
    return [out_md, out_csv]


# ---------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="della-bench figure", description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", type=Path, default=Path("config/figures.yaml"))
    figures = parser.add_subparsers(dest="figure", required=True)
    fig2 = figures.add_parser("fig2", help="PPL, KL and ELBO against the number of latent layers")
    fig2.add_argument(
        "--tidy", type=Path, nargs="+", required=True, help="the sweep's long table (metrics.csv or its part)"
    )
    fig2.add_argument("--run-settings", type=Path, nargs="+", required=True, help="its run_settings.json")
    fig2.add_argument("--out", type=Path, required=True, help="path without extension: .png, .pdf, .csv")
    fig3 = figures.add_parser("fig3", help="interpolation between two test sentences' posteriors")
    fig3.add_argument("--run", type=Path, required=True, help="run (or model) directory")
    fig3.add_argument("--test", type=Path, required=True, help="the test split (test.jsonl)")
    fig3.add_argument("--decoding", type=json.loads, required=True, help="decoding settings as JSON")
    fig3.add_argument("--out", type=Path, required=True, help="the .md; .csv and .png beside it")
    fig4 = figures.add_parser("fig4", help="case study: the models' outputs for the same prompts")
    fig4.add_argument(
        "--samples", type=Path, nargs="+", required=True, help="runs/{dataset}/{model}/seed{seed}/samples.jsonl"
    )
    fig4.add_argument("--tidy", type=Path, nargs="+", required=True, help="the runs' long table (their labels)")
    fig4.add_argument("--out", type=Path, required=True, help="the .md; .csv beside it")
    probe = figures.add_parser("probe", help="latent probe accuracy by layer, with the majority rate")
    probe.add_argument(
        "--tidy", type=Path, nargs="+", required=True, help="the runs' long table (metrics.csv or its part)"
    )
    probe.add_argument("--out", type=Path, required=True, help="path without extension: .png, .pdf, .csv")
    convergence = figures.add_parser("convergence", help="every run's convergence record (train_done.json)")
    convergence.add_argument("--done", type=Path, nargs="+", required=True, help="the runs' train_done.json")
    convergence.add_argument("--out", type=Path, required=True, help="the .md; .csv beside it")
    curves = figures.add_parser("training-curves", help="reconstruction, KL per layer and beta of one run")
    curves.add_argument("--log", type=Path, required=True, help="the run's train_log.jsonl")
    curves.add_argument("--title", required=True)
    curves.add_argument("--out", type=Path, required=True, help="path without extension: .png, .pdf")
    args = parser.parse_args(argv)

    def render() -> list[Path]:
        if args.figure == "convergence":  # reads the runs only, no figure spec
            return render_convergence(args.done, args.out)
        spec = load_spec(args.spec)
        if args.figure == "fig2":
            return render_latent_layers(spec, *read_tidy(args.tidy, args.run_settings), args.out)
        if args.figure == "fig3":
            return render_interpolation(spec, args.run, args.test, args.decoding, args.out)
        if args.figure == "fig4":
            return render_case_study(spec, args.samples, read_tidy(args.tidy, [])[0], args.out)
        if args.figure == "probe":
            return render_probe(spec, read_tidy(args.tidy, [])[0], args.out)
        return render_training_curves(spec, args.log, args.title, args.out)

    return list_written(f"figure {args.figure}", render)


if __name__ == "__main__":
    sys.exit(main())
