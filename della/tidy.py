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
a cell), the package versions, commit and device. The files are read by the tables' own readers
(`della.tables`), so a number cannot mean one thing here and another in a table; a test checks
that every cell of the rendered tables is the mean of its rows here. With pyarrow installed
(it is not a dependency), a Parquet copy is written too.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import pandas as pd

from della.io import atomic_write_json, atomic_write_text
from della.tables import BENCHMARK_PATH, TableError, benchmark_seconds, read_metrics_file

COLUMNS = [
    "experiment", "dataset", "model", "label", "seed", "metric", "value", "higher_is_better",
    "settings", "settings_hash", "run_settings_hash", "git_commit", "device", "versions", "source",
]
DATA_EXPERIMENT = "data"  # the experiment name of dataset statistics rows
SECONDS_SUFFIX = "_seconds"  # metric name of a stage's wall-clock time: train_seconds, ...
HASH_CHARS = 12
BENCHMARK_SUFFIX = ".tsv"


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def short_hash(value) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:HASH_CHARS]


def _provenance(versions: dict) -> dict:
    """versions (packages) apart from the commit and device, which get columns of their own."""
    packages = {k: v for k, v in versions.items() if k not in ("della-bench commit", "device")}
    return {"git_commit": versions.get("della-bench commit", ""), "device": versions.get("device", ""),
            "versions": canonical_json(packages)}


def run_key(dataset: str, model: str, seed) -> tuple[str, str, str]:
    return dataset, model, str(seed)


def experiments_of(experiments: dict[str, list]) -> dict[tuple[str, str, str], list[str]]:
    """(dataset, model, seed) -> the experiments it belongs to, in the config's order."""
    belongs: dict[tuple[str, str, str], list[str]] = {}
    for experiment, runs in experiments.items():
        for dataset, model, seed in runs:
            belongs.setdefault(run_key(dataset, model, seed), []).append(experiment)
    return belongs


def metrics_rows(paths: list[Path], belongs: dict, run_settings: dict) -> list[dict]:
    rows, seen = [], set()
    for path in paths:
        obs = read_metrics_file(Path(path))  # the tables' reader: the same checks, the same values
        key = run_key(obs.dataset, obs.model or obs.label, obs.seed)
        if key not in belongs:
            raise TableError(f"{path}: run {'/'.join(key)} belongs to no experiment of the config")
        seen.add(key)
        settings_hash = short_hash(obs.run_settings)
        run_settings[settings_hash] = obs.run_settings
        for experiment in belongs[key]:
            for metric, value in obs.values.items():
                settings = obs.settings.get(metric, {})
                rows.append({
                    "experiment": experiment, "dataset": obs.dataset, "model": key[1], "label": obs.label,
                    "seed": obs.seed, "metric": metric, "value": value,
                    "higher_is_better": obs.higher_is_better.get(metric),
                    "settings": canonical_json(settings), "settings_hash": short_hash(settings),
                    "run_settings_hash": settings_hash, **_provenance(obs.versions), "source": str(path),
                })
    missing = sorted(set(belongs) - seen)
    if missing:
        raise TableError(f"no metrics.json for the runs {['/'.join(m) for m in missing]}")
    return rows


def benchmark_rows(paths: list[Path], belongs: dict, labels: dict) -> list[dict]:
    rows = []
    for path in paths:
        found = BENCHMARK_PATH.search(Path(path).as_posix())
        if not found:
            raise TableError(f"{path}: not a benchmark file (…/benchmarks/STAGE/DATASET/MODEL/seedN.tsv)")
        key = run_key(found["dataset"], found["model"], found["seed"])
        for experiment in belongs.get(key, ()):
            rows.append({
                "experiment": experiment, "dataset": key[0], "model": key[1], "label": labels.get(key, key[1]),
                "seed": int(key[2]), "metric": f"{found['stage']}{SECONDS_SUFFIX}", "value": benchmark_seconds(Path(path)),
                "higher_is_better": False, "settings": canonical_json({}), "settings_hash": short_hash({}),
                "source": str(path),
            })
    return rows


def numeric_leaves(data, prefix: str = ""):
    """(dotted path, number) of every number in a JSON document (booleans are not numbers)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from numeric_leaves(value, f"{prefix}{key}.")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield prefix.rstrip("."), float(data)


def stats_rows(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        dataset = data.get("dataset") or Path(path).parent.name
        for metric, value in numeric_leaves(data):
            rows.append({
                "experiment": DATA_EXPERIMENT, "dataset": dataset, "model": "", "label": dataset, "seed": "",
                "metric": metric, "value": value, "higher_is_better": None, "settings": canonical_json({}),
                "settings_hash": short_hash({}), "source": str(path),
            })
    return rows


def tidy_frame(experiments: dict[str, list], metrics: list[Path], benchmarks: list[Path] = (),
               stats: list[Path] = ()) -> tuple[pd.DataFrame, dict]:
    """The long table and the run settings its `run_settings_hash` column points into."""
    belongs = experiments_of(experiments)
    run_settings: dict[str, dict] = {}
    rows = metrics_rows([Path(p) for p in metrics], belongs, run_settings)
    labels = {run_key(r["dataset"], r["model"], r["seed"]): r["label"] for r in rows}
    rows += benchmark_rows([Path(p) for p in benchmarks], belongs, labels)
    rows += stats_rows([Path(p) for p in stats])
    frame = pd.DataFrame(rows, columns=COLUMNS)
    return frame, run_settings


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
    parser.add_argument("--experiments", required=True, type=json.loads,
                        help="JSON: experiment -> [[dataset, model, seed], ...] (the config's experiments)")
    parser.add_argument("--runs", nargs="+", type=Path, required=True,
                        help="the runs' metrics.json and snakemake benchmark files (.tsv)")
    parser.add_argument("--stats", nargs="*", type=Path, default=[], help="the datasets' stats.json")
    parser.add_argument("--out", type=Path, required=True, help="metrics.csv")
    parser.add_argument("--run-settings", type=Path, required=True, help="run_settings.json (hash -> settings)")
    args = parser.parse_args(argv)
    try:
        metrics = [p for p in args.runs if p.suffix == ".json"]
        benchmarks = [p for p in args.runs if p.suffix == BENCHMARK_SUFFIX]
        unknown = sorted(set(args.runs) - set(metrics) - set(benchmarks))
        if unknown:
            raise TableError(f"--runs: neither metrics.json nor a benchmark file ({BENCHMARK_SUFFIX}): {unknown}")
        frame, run_settings = tidy_frame(args.experiments, metrics, benchmarks, args.stats)
    except TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in write(frame, run_settings, args.out, args.run_settings):
        print(f"wrote {path} ({len(frame)} rows)" if path == args.out else f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
