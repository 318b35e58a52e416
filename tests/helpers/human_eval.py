"""A human-evaluation round in tests: exported forms, simulated annotators, their rows read back."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from della.report.human_eval import Protocol, export
from della.report.tables import load_spec, table_spec

from helpers import ROOT

CONFIG = load_spec(ROOT / "config" / "tables.yaml")


TABLE = "table3"


SPEC = table_spec(CONFIG, TABLE)


PROTOCOL = Protocol.of(SPEC)


N_TEST = 40  # test inputs each run generated for (more than the protocol's 30)


def make_runs(root: Path, dataset: str) -> tuple[list[Path], dict[str, str]]:
    """A metrics.json + samples.jsonl per row of the dataset; returns the files and, for the
    simulated annotators only, which label wrote each generated text."""
    files, writer_of = [], {}
    rng = random.Random(dataset)
    for row in SPEC.expand_rows():
        if row.dataset != dataset:
            continue
        run = root / dataset / row.label.lower().replace("-", "") / "seed0"
        run.mkdir(parents=True)
        samples = []
        for i in range(N_TEST):
            text = " ".join(rng.choice("alpha beta gamma delta epsilon zeta eta theta".split()) for _ in range(12))
            writer_of[text] = row.label
            samples.append({"id": i, "source": f"input number {i}", "reference": "ref", "generated": text})
        (run / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
        doc = {
            "dataset": dataset,
            "model": run.parent.name,
            "label": row.label,
            "seed": 0,
            "metrics": {},
            "settings": {"generation": {"generation": {"decoding": {"strategy": "beam"}}}},
            "versions": {"torch": "2.13.0"},
            "device": "cpu (test)",
        }
        (run / "metrics.json").write_text(json.dumps(doc))
        files.append(run / "metrics.json")
    return files, writer_of


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def export_forms(root: Path):
    """Forms and keys for both datasets; returns (root, {dataset: (forms dir, key, writer_of)})."""
    out = {}
    for dataset in SPEC.dataset_names:
        files, writer_of = make_runs(root / "runs", dataset)
        forms, key = root / "forms" / dataset, root / "keys" / f"{dataset}.json"
        export(SPEC, TABLE, dataset, files, forms, key)
        out[dataset] = (forms, key, writer_of)
    return root, out


def simulate(exported, noise: int, seed: int = 0):
    """Annotators who score by the (hidden) model: a per-model base score per criterion plus
    annotator noise in [-noise, noise], clipped to the scale. Returns the filled files and the
    scores given, by (dataset, annotator, label, criterion)."""
    root, out = exported
    rng = random.Random(seed)
    low, high = PROTOCOL.scale
    filled, given = [], {}
    for dataset, (forms, _, writer_of) in out.items():
        labels = sorted(set(writer_of.values()))
        base = {
            (label, c): rng.randint(low + noise, high - noise) for label in labels for c in SPEC.columns_of(dataset)
        }
        for annotator in PROTOCOL.annotators:
            rows = read_rows(forms / f"{annotator}.csv")
            for row in rows:
                label = writer_of[row["output"]]
                for c in SPEC.columns_of(dataset):
                    score = base[label, c] + rng.randint(-noise, noise)
                    row[c] = str(score)
                    given.setdefault((dataset, annotator, label, c), []).append(score)
            path = root / f"filled_noise{noise}" / dataset / f"{annotator}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            filled.append(write_rows(path, rows))
    return filled, given


def keys_of(exported) -> list[Path]:
    return [key for _, key, _ in exported[1].values()]
