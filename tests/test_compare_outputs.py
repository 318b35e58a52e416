"""tools/compare_outputs.py, the before/after check of a refactor, on two small fake clones: what
it must forgive (each clone's commit and folder, wall-clock times) and what it must not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

from tools.compare_outputs import compare

RESULTS = "results/sample"


def fake_clone(root: Path, value: float = 1.5, seconds: float = 10.0) -> Path:
    """A git repository with one commit and the outputs a run leaves, each naming that commit."""
    root.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / "README").write_text(root.name)
    subprocess.run(["git", "add", "README"], cwd=root, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "outputs"], cwd=root, check=True
    )
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    run = root / "runs" / "yelp" / "della" / "seed0"
    run.mkdir(parents=True)
    metrics = {"git_commit": commit, "metrics": {"PPL": {"value": value}}, "feature": str(root / ".venv" / "m")}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "train_log.jsonl").write_text(json.dumps({"step": 1, "elapsed": seconds}) + "\n")
    bench = root / RESULTS / "benchmarks" / "train" / "yelp" / "della"
    bench.mkdir(parents=True)
    (bench / "seed0.tsv").write_text(f"s\n{seconds}\n")
    rows = [
        {"metric": "PPL", "value": value, "git_commit": commit[:12], "higher_is_better": False},
        {"metric": "train_seconds", "value": seconds, "git_commit": commit[:12], "higher_is_better": None},
    ]
    pd.DataFrame(rows).to_csv(root / RESULTS / "metrics.csv", index=False)
    return root


def test_two_runs_that_differ_only_in_commit_folder_and_time_compare_equal(tmp_path):
    found = compare(fake_clone(tmp_path / "a"), fake_clone(tmp_path / "b", seconds=12.0), RESULTS)
    assert not found["differ"] and not found["missing"]
    assert found["identical"] == ["runs/yelp/della/seed0/metrics.json"]
    assert sorted(found["wall-clock"]) == [
        f"{RESULTS}/benchmarks/train/yelp/della/seed0.tsv",
        f"{RESULTS}/metrics.csv (its *_seconds rows)",
        "runs/yelp/della/seed0/train_log.jsonl",
    ]


def test_a_changed_number_is_a_difference(tmp_path):
    found = compare(fake_clone(tmp_path / "a"), fake_clone(tmp_path / "b", value=1.5000000000000002), RESULTS)
    assert sorted(found["differ"]) == [f"{RESULTS}/metrics.csv", "runs/yelp/della/seed0/metrics.json"]


def test_a_file_on_one_side_only_is_reported(tmp_path):
    a, b = fake_clone(tmp_path / "a"), fake_clone(tmp_path / "b")
    (b / "data").mkdir()
    (b / "data" / "extra.json").write_text("{}")
    assert compare(a, b, RESULTS)["missing"] == [f"data/extra.json (only in {b})"]
