"""Compare what two runs of the workflow wrote, file by file: the check that a refactor changed no
output (run the same config from two clean clones, one before and one after the change).

    python -m tools.compare_outputs CLONE_A CLONE_B [--results results/sample]

Every output records the commit it was made at, and some record where the clone was (a feature
model read from the clone's environment), so each clone's commits and absolute path are replaced by
placeholders before comparing. Wall-clock times differ from run to run by nature: files that only
hold them (Snakemake's benchmark files, the attempts' records, training logs and checkpoints, which
carry elapsed seconds, and the rendered benchmark tables) are counted apart, and the long tables
(metrics.csv and its parts) are compared without their `*_seconds` rows. Exit status 1 when
anything else differs.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

from della.report.table_spec import load_spec

# What a run writes under its working directory (logs/ and .snakemake/ left out: they say when).
TREES = ("runs", "data", "models", "raw")
# Files whose differences are wall-clock time only.
WALL_CLOCK = (
    "*/benchmarks/*.tsv",
    "runs/*/attempts/*.json",
    "runs/*/train_log.jsonl",
    "runs/*/train_done.json",
    "runs/*/checkpoints/*.pt",
)
TIMING_METRIC_SUFFIX = "_seconds"  # della/report/tidy.py SECONDS_SUFFIX: Table 6's rows
LONG_TABLES = ("metrics.csv", "metrics.parquet", "metrics/*.csv", "metrics/*.parquet")


HEX = re.compile(rb"\b[0-9a-f]{12}(?:[0-9a-f]{28})?\b")


class Clone:
    """A clone's own facts that every output may carry: its commits (an output records the commit
    it was made at, full or as 12 digits) and its absolute path; `normalised` puts placeholders in."""

    def __init__(self, root: Path):
        log = subprocess.run(["git", "log", "--format=%H"], cwd=root, capture_output=True, text=True, check=True)
        self.commits = {c.encode() for c in log.stdout.split()} | {c[:12].encode() for c in log.stdout.split()}
        self.path = str(root.resolve()).encode()

    def normalised(self, data: bytes) -> bytes:
        data = HEX.sub(lambda m: b"<commit>" if m[0] in self.commits else m[0], data)
        return data.replace(self.path, b"<clone>")

    def text(self, value):
        return self.normalised(value.encode()).decode() if isinstance(value, str) else value


def without_timings(path: Path, clone: Clone) -> pd.DataFrame:
    """A long table without its timing rows, its text normalised."""
    table = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    table = table[~table.metric.astype(str).str.endswith(TIMING_METRIC_SUFFIX)].reset_index(drop=True)
    return table.map(clone.text)


def timing_tables(clone: Path, results: str) -> list[str]:
    """The rendered benchmark tables (Table 6: the stages' hours) of config/tables.yaml."""
    spec = load_spec(clone / "config" / "tables.yaml")
    return [f"{results}/tables/{t}.*" for t, entry in spec["tables"].items() if entry["kind"] == "benchmark"]


def compare(a: Path, b: Path, results: str) -> dict[str, list[str]]:
    clone_a, clone_b = Clone(a), Clone(b)
    wall_clock = [*WALL_CLOCK, *timing_tables(b, results)] if (b / "config" / "tables.yaml").is_file() else WALL_CLOCK
    found: dict[str, list[str]] = {"identical": [], "wall-clock": [], "differ": [], "missing": []}
    names = set()
    for tree in (results, *TREES):
        for root in (a, b):
            names |= {p.relative_to(root).as_posix() for p in (root / tree).rglob("*") if p.is_file()}
    for name in sorted(names):
        path_a, path_b = a / name, b / name
        if not (path_a.is_file() and path_b.is_file()):
            found["missing"].append(f"{name} (only in {a if path_a.is_file() else b})")
            continue
        data_a, data_b = clone_a.normalised(path_a.read_bytes()), clone_b.normalised(path_b.read_bytes())
        if data_a == data_b:
            found["identical"].append(name)
        elif any(fnmatch.fnmatch(name, pattern) for pattern in wall_clock):
            found["wall-clock"].append(name)
        elif any(fnmatch.fnmatch(name, f"{results}/{pattern}") for pattern in LONG_TABLES) and (
            without_timings(path_a, clone_a).equals(without_timings(path_b, clone_b))
        ):
            found["wall-clock"].append(f"{name} (its *{TIMING_METRIC_SUFFIX} rows)")
        else:
            found["differ"].append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clone_a", type=Path)
    parser.add_argument("clone_b", type=Path)
    parser.add_argument("--results", default="results/sample", help="the config's results_dir")
    args = parser.parse_args(argv)
    found = compare(args.clone_a, args.clone_b, args.results)
    print(", ".join(f"{kind}: {len(names)}" for kind, names in found.items()))
    for kind in ("differ", "missing"):
        for name in found[kind]:
            print(f"{kind}: {name}")
    return 1 if found["differ"] or found["missing"] else 0


if __name__ == "__main__":
    sys.exit(main())
