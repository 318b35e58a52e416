"""Every number of a scale in one long-format table: `results/{scale}/metrics.csv`.

One row per (experiment, dataset, model, seed, metric), for people who want all results in their
own analysis in one line (`pandas.read_csv`). Three kinds of numbers go in:
  - each run's metrics.json (the evaluate rule), under every experiment the run belongs to
    (Table 1 and Table 4 share DELLA's Yelp run: its rows appear under both);
  - each run's stage timings, `{stage}_seconds`, from the snakemake benchmark files (Table 6);
  - each dataset's statistics (data/{dataset}/stats.json, Table 7) under experiment `data`,
    one row per numeric field, named by its dotted path.
Each row carries the metric's direction and settings (JSON, with a short hash), the run's
settings as a hash into `run_settings.json` beside the CSV (model config, decoding: too long for
a cell), the package versions, commit and device. This module is the one reader of those files:
the tables, the number figures and FINDINGS.md are rendered from this table (`read_tidy`), one
part per experiment (`metrics/{experiment}.csv`, joined into metrics.csv by `--concat`), so a
number cannot mean one thing here and another in a table. With pyarrow installed (it is not a
dependency), a Parquet copy is written too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from della.cluster.attempts import STAGES, attempts_path, read_attempts
from della.io import atomic_write_json, atomic_write_text, run_path_pattern
from della.report.table_spec import Observation, TableError, provenance_of

# ------------------------------------------------------------------------------------ readers


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


# `benchmark:` files of the workflow: {results_dir}/benchmarks/{stage}/{dataset}/{model}/seed{seed}.tsv
BENCHMARK_PATH = re.compile(
    r"(?:^|/)benchmarks/(?P<stage>[^/]+)/(?P<dataset>[^/]+)/(?P<model>[^/]+)/seed(?P<seed>\d+)\.tsv$"
)
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


# ------------------------------------------------------------------------------ the long table

COLUMNS = [
    "experiment",
    "dataset",
    "model",
    "label",
    "seed",
    "metric",
    "value",
    "higher_is_better",
    "settings",
    "settings_hash",
    "run_settings_hash",
    "git_commit",
    "device",
    "versions",
    "source",
]
DATA_EXPERIMENT = "data"  # the experiment name of dataset statistics rows
SECONDS_SUFFIX = "_seconds"  # metric name of a stage's wall-clock time: train_seconds, ...
HASH_CHARS = 12
BENCHMARK_SUFFIX = ".tsv"
TRAIN_DONE = "train_done.json"  # a finished training run's record, with its attempts (della/run/train.py)
TRAIN_ATTEMPTS = "train_attempts"  # metric: how many processes trained the run (1: never resumed)
# runs/{dataset}/{model}/seed{seed}/train_done.json
TRAIN_DONE_PATH = run_path_pattern(r"train_done\.json")
COMMIT, DEVICE = "della-bench commit", "device"  # provenance_of's names for the columns git_commit, device


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def short_hash(value) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:HASH_CHARS]


def _provenance(versions: dict) -> dict:
    """versions (packages) apart from the commit and device, which get columns of their own."""
    packages = {k: v for k, v in versions.items() if k not in (COMMIT, DEVICE)}
    return {
        "git_commit": versions.get(COMMIT, ""),
        "device": versions.get(DEVICE, ""),
        "versions": canonical_json(packages),
    }


def run_key(dataset: str, model: str, seed) -> tuple[str, str, str]:
    return dataset, model, str(seed)


def experiments_of(experiments: dict[str, list]) -> dict[tuple[str, str, str], list[str]]:
    """(dataset, model, seed) -> the experiments it belongs to, in the config's order."""
    belongs: dict[tuple[str, str, str], list[str]] = {}
    for experiment, runs in experiments.items():
        for dataset, model, seed in runs:
            belongs.setdefault(run_key(dataset, model, seed), []).append(experiment)
    return belongs


def observation_rows(obs: Observation, experiment: str, model: str, run_settings: dict) -> list[dict]:
    """One row per metric of an observation (a run's metrics.json, or an annotator's ratings of a
    model); its run settings are added to `run_settings` under their hash."""
    settings_hash = short_hash(obs.run_settings)
    run_settings[settings_hash] = obs.run_settings
    return [
        {
            "experiment": experiment,
            "dataset": obs.dataset,
            "model": model,
            "label": obs.label,
            "seed": obs.seed,
            "metric": metric,
            "value": value,
            "higher_is_better": obs.higher_is_better.get(metric),
            "settings": canonical_json(obs.settings.get(metric, {})),
            "settings_hash": short_hash(obs.settings.get(metric, {})),
            "run_settings_hash": settings_hash,
            **_provenance(obs.versions),
            "source": " ".join(map(str, obs.files)),
        }
        for metric, value in obs.values.items()
    ]


def metrics_rows(paths: list[Path], belongs: dict, run_settings: dict, runs: dict) -> list[dict]:
    """The rows of each metrics.json; `runs` gets each run's RUN_FIELDS (for its timing rows)."""
    rows = []
    for path in paths:
        obs = read_metrics_file(Path(path))
        key = run_key(obs.dataset, obs.model or obs.label, obs.seed)
        if key not in belongs:
            raise TableError(f"{path}: run {'/'.join(key)} belongs to no experiment of the config")
        settings_hash = short_hash(obs.run_settings)
        run_settings[settings_hash] = obs.run_settings
        runs[key] = {"label": obs.label, "run_settings_hash": settings_hash, **_provenance(obs.versions)}
        for experiment in belongs[key]:
            rows += observation_rows(obs, experiment, key[1], run_settings)
    missing = sorted(set(belongs) - set(runs))
    if missing:
        raise TableError(f"no metrics.json for the runs {['/'.join(m) for m in missing]}")
    return rows


def training_rows(paths: list[Path], belongs: dict, runs: dict) -> list[dict]:
    """A run's training time over all its attempts (the first, and each resume after a time
    limit, preemption or crash: train_done.json's `attempts`), as its `train_seconds` row in
    device-seconds, and their number as its `train_attempts` row: Table 6 counts every attempt,
    where a snakemake benchmark file holds the last one only."""
    rows = []
    for path in paths:
        found = TRAIN_DONE_PATH.search(Path(path).as_posix())
        if not found:
            raise TableError(f"{path}: not a training record (runs/DATASET/MODEL/seedN/{TRAIN_DONE})")
        attempts = _read_json(Path(path)).get("attempts")
        if attempts is None:  # written before attempts were counted: the benchmark file stands
            continue
        key = run_key(found["dataset"], found["model"], found["seed"])
        # the same words for every run, so that seeds of one cell agree; the count is a row of its own
        settings = {"measure": "device-seconds summed over all of the run's attempts (its attempts/train.json)"}
        for experiment in belongs.get(key, ()):
            for metric, value in (
                (f"train{SECONDS_SUFFIX}", attempts["device_seconds"]),
                (TRAIN_ATTEMPTS, attempts["attempts"]),
            ):
                rows.append(
                    {
                        "experiment": experiment,
                        "dataset": key[0],
                        "model": key[1],
                        **runs[key],
                        "seed": int(key[2]),
                        "metric": metric,
                        "value": float(value),
                        "higher_is_better": False,
                        "settings": canonical_json(settings),
                        "settings_hash": short_hash(settings),
                        "source": str(path),
                    }
                )
    return rows


NOT_RECORDED = "not recorded"


def job_start(run_dir: Path | None, stage: str) -> str:
    """How the last attempt of a run's stage started: `warm` (forked from the warm server, its
    imports done: its benchmark time leaves them out) or `cold` (della/pipeline/warm.py), from the run's
    attempts record; NOT_RECORDED for a stage or run without one."""
    if run_dir is None or stage not in STAGES:
        return NOT_RECORDED
    attempts = read_attempts(attempts_path(run_dir, stage))
    return attempts[-1].get("start", NOT_RECORDED) if attempts else NOT_RECORDED


def benchmark_rows(
    paths: list[Path], belongs: dict, runs: dict, counted: set = frozenset(), run_dirs: dict | None = None
) -> list[dict]:
    """A row per stage of a run, with its run's label, settings and provenance (`runs`: run key ->
    those fields, from its metrics.json): the device is what makes a wall-clock time comparable,
    and so is the start (a warm job's time leaves its imports out), a setting of each row.
    `counted`: (run key, stage) already timed over all attempts (`training_rows`); `run_dirs`: run
    key -> its folder, where the attempts record the start."""
    rows = []
    for path in paths:
        found = BENCHMARK_PATH.search(Path(path).as_posix())
        if not found:
            raise TableError(f"{path}: not a benchmark file (…/benchmarks/STAGE/DATASET/MODEL/seedN.tsv)")
        key = run_key(found["dataset"], found["model"], found["seed"])
        if (key, found["stage"]) in counted:
            continue
        settings = {"start": job_start((run_dirs or {}).get(key), found["stage"])}
        for experiment in belongs.get(key, ()):
            rows.append(
                {
                    "experiment": experiment,
                    "dataset": key[0],
                    "model": key[1],
                    **runs[key],
                    "seed": int(key[2]),
                    "metric": f"{found['stage']}{SECONDS_SUFFIX}",
                    "value": benchmark_seconds(Path(path)),
                    "higher_is_better": False,
                    "settings": canonical_json(settings),
                    "settings_hash": short_hash(settings),
                    "source": str(path),
                }
            )
    return rows


def numeric_leaves(data, prefix: str = ""):
    """(dotted path, number) of every number in a JSON document (booleans are not numbers)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from numeric_leaves(value, f"{prefix}{key}.")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix.rstrip("."), float(data)


def truncation_summary(lengths: dict) -> dict:
    """What Table 7's footer says of a lengths.json: the limits, and per split how many sources
    and targets were longer (cut by the collator) of how many examples."""
    cut = {
        split: f"{e.get('sources_cut', 0)}/{e['targets_cut']} of {e['examples']}"
        for split, e in lengths["splits"].items()
    }
    return {
        "limits": f"{lengths['max_source_tokens']}/{lengths['max_target_tokens']} tokens of {lengths['tokenizer']}",
        "sources/targets cut": cut,
    }


def stats_rows(paths: list[Path], run_settings: dict, lengths: list[Path] = ()) -> list[dict]:
    """A row per number of each stats.json; the whole document is the rows' run settings (how
    the data was made: length unit, subsampling, skipped records), its `seed` their seed. A
    dataset's lengths.json (della/run/lengths.py: texts longer than its token limits) enters its
    document as `truncation`."""
    truncation = {Path(p).parent.name: _read_json(Path(p)) for p in lengths}
    rows = []
    for path in paths:
        data = _read_json(Path(path))
        dataset = data.get("dataset") or Path(path).parent.name
        if Path(path).parent.name in truncation:
            data["truncation"] = truncation_summary(truncation[Path(path).parent.name])
        settings_hash = short_hash(data)
        run_settings[settings_hash] = data
        for metric, value in numeric_leaves({k: v for k, v in data.items() if k != "seed"}):
            rows.append(
                {
                    "experiment": DATA_EXPERIMENT,
                    "dataset": dataset,
                    "model": "",
                    "label": dataset,
                    "seed": data.get("seed", ""),
                    "metric": metric,
                    "value": value,
                    "higher_is_better": None,
                    "settings": canonical_json({}),
                    "settings_hash": short_hash({}),
                    "run_settings_hash": settings_hash,
                    **_provenance({}),
                    "source": str(path),
                }
            )
    return rows


def tidy_frame(
    experiments: dict[str, list],
    metrics: list[Path],
    benchmarks: list[Path] = (),
    stats: list[Path] = (),
    lengths: list[Path] = (),
    trainings: list[Path] = (),
) -> tuple[pd.DataFrame, dict]:
    """The long table and the run settings its `run_settings_hash` column points into."""
    belongs = experiments_of(experiments)
    run_settings: dict[str, dict] = {}
    runs: dict[tuple[str, str, str], dict] = {}
    rows = metrics_rows([Path(p) for p in metrics], belongs, run_settings, runs)
    trained = training_rows([Path(p) for p in trainings], belongs, runs)
    counted = {(run_key(r["dataset"], r["model"], r["seed"]), "train") for r in trained}
    run_dirs = {}
    for path in metrics:
        found = run_path_pattern().search(Path(path).as_posix())
        if found:
            run_dirs[run_key(found["dataset"], found["model"], found["seed"])] = Path(path).parent
    rows += trained + benchmark_rows([Path(p) for p in benchmarks], belongs, runs, counted, run_dirs)
    rows += stats_rows([Path(p) for p in stats], run_settings, [Path(p) for p in lengths])
    return pd.DataFrame(rows, columns=COLUMNS), run_settings


# How the text columns read back: as written ("" stays "", a seed is text: an annotator's name
# in a human table), the direction as True / False / None (a reference value).
TEXT_COLUMNS = [c for c in COLUMNS if c not in ("value", "higher_is_better")]
DIRECTION_TEXT = {"True": True, "False": False, "": None}


def read_tidy(csv_files: list[Path], settings_files: list[Path]) -> tuple[pd.DataFrame, dict]:
    """Written long tables (and their run settings) as one frame, each number exactly as written."""
    frames = [
        pd.read_csv(
            path,
            dtype={c: str for c in TEXT_COLUMNS},
            keep_default_na=False,
            converters={"higher_is_better": DIRECTION_TEXT.get},
        )
        for path in csv_files
    ]
    run_settings = {}
    for path in settings_files:
        run_settings.update(_read_json(Path(path)))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return frame.astype({"value": float}), run_settings


def runs_of(frame: pd.DataFrame, run_settings: dict) -> list[Observation]:
    """Each run's rows (of one experiment) back as one record, for code that works run by run:
    figures and findings compare runs, tables only cells."""
    return [
        Observation(
            path=Path(rows.source.iloc[0]),
            dataset=dataset,
            label=rows.label.iloc[0],
            seed=int(seed),
            values=dict(zip(rows.metric, rows.value, strict=True)),
            settings={metric: json.loads(text) for metric, text in zip(rows.metric, rows.settings, strict=True)},
            run_settings=run_settings.get(rows.run_settings_hash.iloc[0], {}),
            model=model,
        )
        for (dataset, model, seed), rows in frame.groupby(["dataset", "model", "seed"], sort=False)
    ]


def write(frame: pd.DataFrame, run_settings: dict, out_csv: Path, out_settings: Path) -> list[Path]:
    atomic_write_text(out_csv, frame.to_csv(index=False, lineterminator="\n"))
    atomic_write_json(out_settings, run_settings)
    written = [out_csv, out_settings]
    try:
        import pyarrow  # noqa: F401  (optional: not installed by this project)
    except ImportError:
        return written
    parquet = out_csv.with_suffix(".parquet")
    frame.astype({"seed": str, "higher_is_better": object}).to_parquet(parquet, index=False)
    return written + [parquet]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="della-bench tidy", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--experiments",
        type=json.loads,
        default={},
        help="JSON: experiment -> [[dataset, model, seed], ...] (the config's experiments)",
    )
    parser.add_argument(
        "--runs",
        nargs="*",
        type=Path,
        default=[],
        help="the runs' metrics.json, train_done.json and snakemake benchmark files (.tsv)",
    )
    parser.add_argument("--stats", nargs="*", type=Path, default=[], help="the datasets' stats.json")
    parser.add_argument(
        "--lengths",
        nargs="*",
        type=Path,
        default=[],
        help="the datasets' lengths.json (texts longer than the token limits), beside their stats.json",
    )
    parser.add_argument(
        "--concat",
        nargs="*",
        type=Path,
        default=[],
        help="instead of files: long tables written before (one per experiment) to join",
    )
    parser.add_argument("--concat-settings", nargs="*", type=Path, default=[], help="their run settings")
    parser.add_argument("--out", type=Path, required=True, help="metrics.csv")
    parser.add_argument("--run-settings", type=Path, required=True, help="run_settings.json (hash -> settings)")
    args = parser.parse_args(argv)
    try:
        trainings = [p for p in args.runs if p.name == TRAIN_DONE]
        metrics = [p for p in args.runs if p.suffix == ".json" and p.name != TRAIN_DONE]
        benchmarks = [p for p in args.runs if p.suffix == BENCHMARK_SUFFIX]
        unknown = sorted(set(args.runs) - set(metrics) - set(benchmarks) - set(trainings))
        if unknown:
            raise TableError(
                f"--runs: neither metrics.json, {TRAIN_DONE} nor a benchmark file ({BENCHMARK_SUFFIX}): {unknown}"
            )
        if args.concat:
            frame, run_settings = read_tidy(args.concat, args.concat_settings)
        else:
            frame, run_settings = tidy_frame(args.experiments, metrics, benchmarks, args.stats, args.lengths, trainings)
    except TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in write(frame, run_settings, args.out, args.run_settings):
        print(f"wrote {path} ({len(frame)} rows)" if path == args.out else f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
