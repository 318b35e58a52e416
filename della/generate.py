"""Generate samples from a trained model: z from the prior (p(z) or p(z|c)), then decode.

Unconditional datasets: `num_unconditional` samples. Conditional datasets: one output for each
of the first `max_conditional` test inputs, with the reference beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from tqdm import tqdm

from della.batches import load_records
from della.io import atomic_write_json, atomic_write_jsonl
from della.vae import TransformerVAE


def generate_samples(model: TransformerVAE, test_file: Path, settings: dict, seed: int) -> list[dict]:
    """`settings` is the `generation` config section; returns samples.jsonl rows."""
    generator = torch.Generator().manual_seed(seed)
    conditional = model.config.conditional
    if conditional:
        records = load_records(test_file, settings["max_conditional"])
        sources = [r["source"] for r in records]
        references = [r["target"] for r in records]
    else:
        sources = [None] * settings["num_unconditional"]
        references = [None] * len(sources)
    outputs: list[str] = []
    size = settings["batch_size"]
    for start in tqdm(range(0, len(sources), size), desc="generate", file=sys.stderr, mininterval=5):
        outputs += model.generate(sources[start:start + size], settings["decoding"], generator)
    return [
        {"id": i, "source": s, "reference": r, "generated": g}
        for i, (s, r, g) in enumerate(zip(sources, references, outputs))
    ]


def run(model_dir: Path, test_file: Path, settings: dict, seed: int, out_file: Path) -> None:
    torch.manual_seed(seed)
    model = TransformerVAE.load(model_dir)
    rows = generate_samples(model, test_file, settings, seed)
    atomic_write_jsonl(out_file, rows)
    atomic_write_json(out_file.with_suffix(".settings.json"), {"generation": settings, "seed": seed})
