"""What every dataset generator shares: the splits, the line counts of Yelp, Yahoo and PTB, small text
helpers and the draw that keeps every valid and test text out of the training split."""

from __future__ import annotations

import random
import re

SPLITS = ("train", "valid", "test")
#: Lines per split for the one-text-per-line datasets (yelp, yahoo, ptb).
LINES_PER_SPLIT = {"train": 1500, "valid": 200, "test": 200}


def indefinite_article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def unk_rare(text: str, rng: random.Random, rate: float, unk: str, min_len: int) -> str:
    """Replace a fraction of content words by the unknown token, standing in for the rare
    words the real vocabularies cut off."""
    return " ".join(unk if t.isalpha() and len(t) >= min_len and rng.random() < rate else t for t in text.split())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


#: Draws of a valid or test text before the generator gives up finding one absent from train.
MAX_UNSEEN_DRAWS = 1000


def unseen_splits(
    lines_per_split: dict[str, int], draw, texts_of, dataset: str, train: list | None = None
) -> dict[str, list]:
    """{split: [draw() ...]}, training split first (or `train`, drawn already), every valid and
    test item redrawn until none of its texts (`texts_of(item)`, as preprocessing keys them) is a
    training text: a generated test sentence a decoder has seen in training would be scored from
    memory (preprocessing reports any overlap in stats.json). A split without such a collision
    takes the same draws as before this rule."""
    splits = {"train": train if train is not None else [draw() for _ in range(lines_per_split["train"])]}
    seen = {text for item in splits["train"] for text in texts_of(item)}
    for split in (name for name in lines_per_split if name != "train"):
        items = []
        for _ in range(lines_per_split[split]):
            for _ in range(MAX_UNSEEN_DRAWS):
                item = draw()
                if seen.isdisjoint(texts_of(item)):
                    break
            else:
                raise RuntimeError(
                    f"{dataset}: no {split} text outside the training split in {MAX_UNSEEN_DRAWS} "
                    f"draws: add templates or words"
                )
            items.append(item)
        splits[split] = items
    return {split: splits[split] for split in lines_per_split}
