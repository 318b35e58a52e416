"""Shared fixtures: a tiny tokenizer and tiny random-init backbones, built once per test session
by the same functions the workflow's rules call."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

WORDS = (
    "the food was great terrible service friendly slow staff pizza coffee place we loved hated "
    "it is a very not really good bad price cheap expensive menu table"
).split()


def tiny_corpus(n: int, seed: int = 0, conditional: bool = False) -> list[dict]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]
    if not conditional:
        return [{"text": t} for t in texts]
    return [{"source": t, "target": texts[(i + 1) % n]} for i, t in enumerate(texts)]


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory) -> dict[str, Path]:
    """{'tokenizer', 'causal', 'seq2seq', 'encoder'} -> directories."""
    from della.backbone import BackboneSize, create_backbone
    from della.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("backbones")
    corpus = root / "train.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(300)))
    train_tokenizer([corpus], vocab_size=300, min_frequency=2, out_dir=root / "tokenizer")
    size = BackboneSize(layers=2, hidden=32, heads=4, max_positions=128)
    dirs = {"tokenizer": root / "tokenizer"}
    for kind in ("causal", "seq2seq", "encoder"):
        create_backbone(kind, size, root / "tokenizer", root / kind, seed=0)
        dirs[kind] = root / kind
    return dirs
