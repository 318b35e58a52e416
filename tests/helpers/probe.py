"""Probe values in metrics.json files, as della/run/evaluate.py writes them, for the table tests."""

from __future__ import annotations

import json
from pathlib import Path


def write_run(root: Path, dataset: str, label: str, seed: int, values: dict[str, float]) -> Path:
    """A metrics.json as della/run/evaluate.py writes it, with these probe values (and PPL)."""
    settings = {
        "probe": "logistic regression",
        "C": 1.0,
        "max_iter": 1000,
        "standardize": True,
        "seed": 0,
        "max_train_examples": 2000,
        "fit_split": "train",
        "score_split": "test",
        "scale": 100.0,
    }
    metrics = {"PPL": {"value": 10.0, "higher_is_better": False, "settings": {}}}
    for name, value in values.items():
        higher = None if name.startswith(("Majority", "Probe-untrained")) else True
        metrics[name] = {"value": value, "higher_is_better": higher, "settings": settings}
    path = root / "runs" / dataset / label.lower().replace("-", "") / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "dataset": dataset,
                "model": label.lower(),
                "label": label,
                "seed": seed,
                "metrics": metrics,
                "settings": {},
            }
        )
    )
    return path


def probe_values(accuracy: float, majority: float, labels=("review_label", "business"), groups: int = 0) -> dict:
    values = {}
    for k, label in enumerate(labels):
        values.update(
            {
                f"Probe[{label}]": accuracy + k,
                f"Probe-F1[{label}]": accuracy - 10 + k,
                f"Probe-sample[{label}]": accuracy - 5 + k,
                f"Probe-untrained[{label}]": majority + 2 + k,
                f"Majority[{label}]": majority + k,
            }
        )
        values.update({f"Probe[{label}]@z{g}": accuracy - g + k for g in range(1, groups + 1)})
    return values


def table_runs(root: Path) -> list[Path]:
    """Yelp with two labels for every latent model; Yahoo with no labels at all (no probe)."""
    files = []
    for dataset in ("yelp", "yahoo"):
        labelled = dataset == "yelp"
        files.append(write_run(root, dataset, "GPT-2", 0, {}))
        for k, label in enumerate(("Optimus", "Embedding", "Memory", "Softmax", "DELLA")):
            files.append(write_run(root, dataset, label, 0, probe_values(50.0 + k, 40.0) if labelled else {}))
    return files
