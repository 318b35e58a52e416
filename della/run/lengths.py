"""Every sequence fits its model's positions, by construction.

A dataset's `max_source_tokens` / `max_target_tokens` count the text's own tokens; the collator
(della/run/batches.py) adds special tokens around them, and generation adds `max_new_tokens` to a
prompt. Each of those sequences must fit the learned positional embedding of the backbone that
reads it (GPT-2 and BART: 1,024 positions; BERT, Optimus' encoder: 512): one position too many is
an IndexError on a CPU and a device-side assert on a GPU, in the first batch of a run that may
have waited a day in a queue. `sequence_lengths` is the one place that says how long each
sequence gets; `check_lengths` compares them with the positions and raises one line naming the
dataset, the key and the limit. The workflow calls it at start-up for every run of the config
(positions from `position_limit`: a created backbone's `create.max_positions`, a published
architecture's, or a local directory's config.json), and the collator calls it again with the
positions of the loaded models, so no batch can exceed them whichever way a model is run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from della.models.architectures import PUBLISHED, SEQ2SEQ, usable_positions


@dataclass(frozen=True)
class Sequence:
    """One kind of sequence a run feeds a model: what it is, the config key that bounds its
    content, how many positions it takes at most, and which model (decoder or encoder) reads it."""

    role: str  # posterior | condition | decoder | source | generation
    what: str
    key: str
    length: int
    reader: str  # "decoder" | "encoder"


def sequence_lengths(
    decoder_kind: str, conditional: bool, max_source: int, max_target: int, max_new_tokens: int | None = None
) -> list[Sequence]:
    """The longest sequence of each kind (della/run/batches.py builds them; the special tokens here
    are the ones it adds)."""
    source_key, target_key = "max_source_tokens", "max_target_tokens"
    seqs = [Sequence("posterior", "<s> target </s> (posterior encoder)", target_key, max_target + 2, "encoder")]
    if conditional:
        seqs.append(Sequence("condition", "<s> source </s> (condition encoder)", source_key, max_source + 2, "encoder"))
    if decoder_kind == SEQ2SEQ:
        prompt = 1  # the decoder start token
        seqs.append(Sequence("decoder", "<start> target (decoder input)", target_key, max_target + 1, "decoder"))
        if conditional:
            seqs.append(
                Sequence("source", "<s> source </s> (BART encoder input)", source_key, max_source + 2, "decoder")
            )
    else:
        prompt = max_source + 2 if conditional else 1  # <bos> [source </s>]
        seqs.append(
            Sequence(
                "decoder",
                "<bos> [source </s>] target (decoder input)",
                f"{source_key} + {target_key}" if conditional else target_key,
                prompt + max_target,
                "decoder",
            )
        )
    if max_new_tokens is not None:
        seqs.append(
            Sequence(
                "generation",
                "prompt + generated tokens",
                "generation.decoding.max_new_tokens",
                prompt + max_new_tokens,
                "decoder",
            )
        )
    return seqs


class SequenceTooLong(ValueError):
    """A configured length that does not fit a model's positions (one line, naming the setting)."""


def check_lengths(where: str, seqs: list[Sequence], positions: dict[str, tuple[int | None, str]]) -> None:
    """Raise SequenceTooLong for the first sequence longer than its reader's positions.
    `positions`: reader -> (usable positions or None when unknown, the model's name)."""
    for seq in seqs:
        limit, model = positions.get(seq.reader, (None, ""))
        if limit is not None and seq.length > limit:
            over = seq.length - limit
            raise SequenceTooLong(
                f"{where}: {seq.key} gives {seq.what} of up to {seq.length} tokens, {over} more than the "
                f"{limit} positions of {model}; lower {seq.key.split(' + ')[-1]} by {over}"
            )


def position_limit(backbone: dict, repo: Path | None = None) -> int | None:
    """Usable positions of a config backbone entry, without loading it: a created backbone's
    `create.max_positions`, a published architecture's (della/models/architectures.py), or the
    `config.json` of a local directory; None when none of these tells (the collator checks the
    loaded model then)."""
    if "create" in backbone:
        return backbone["create"].get("max_positions") or PUBLISHED[backbone["create"]["architecture"]].max_positions
    name = backbone["name_or_path"]
    if name in PUBLISHED:
        return PUBLISHED[name].max_positions
    path = Path(name) if repo is None or Path(name).is_absolute() else repo / name
    if (path / "config.json").is_file():
        return usable_positions(json.loads((path / "config.json").read_text()))
    return None


def run_sequences(config: dict, dataset: str, model: str) -> list[Sequence]:
    """The sequences of one (dataset, model) run of a workflow config."""
    from della.pipeline.targets import backbone_of, generation_decoding

    data = config["datasets"][dataset]
    decoder = backbone_of(config, dataset, model)
    return sequence_lengths(
        decoder["kind"],
        data["preprocess"]["task"] == "conditional",
        data["max_source_tokens"],
        data["max_target_tokens"],
        generation_decoding(config, dataset, model)["max_new_tokens"],
    )


def check_run_lengths(config: dict, runs: list[tuple[str, str]], repo: Path | None = None) -> None:
    """The workflow's start-up check over its (dataset, model) runs."""
    from della.pipeline.targets import backbone_of, encoder_backbone_of

    for dataset, model in runs:
        decoder = backbone_of(config, dataset, model)
        encoder = encoder_backbone_of(config, model) or decoder
        positions = {
            reader: (position_limit(entry, repo), f"{reader} {entry['name_or_path']}")
            for reader, entry in (("decoder", decoder), ("encoder", encoder))
        }
        check_lengths(f"datasets.{dataset} (model {model})", run_sequences(config, dataset, model), positions)


# ------------------------------------------------------------------ how many texts a run cuts

TOKENIZE_BATCH = 1000  # texts per fast-tokenizer call


def _token_counts(tokenizer, texts: list[str], what: str) -> list[int]:
    from tqdm import tqdm

    counts = []
    for start in tqdm(range(0, len(texts), TOKENIZE_BATCH), desc=what, mininterval=10, file=sys.stderr):
        ids = tokenizer(texts[start : start + TOKENIZE_BATCH], add_special_tokens=False)["input_ids"]
        counts += [len(row) for row in ids]
    return counts


def count_cut(
    splits: dict[str, tuple[list[str] | None, list[str]]],
    tokenizer,
    tokenizer_name: str,
    max_source: int,
    max_target: int,
) -> dict:
    """Per split ({split: (sources or None, targets)}): how many sources and targets are longer
    than `max_source_tokens` / `max_target_tokens` in the decoder tokenizer's tokens (so the
    collator cuts them), and the longest of each. The document `data/{dataset}/lengths.json`
    holds; Table 7's footer shows it."""
    document = {
        "tokenizer": tokenizer_name,
        "max_source_tokens": max_source,
        "max_target_tokens": max_target,
        "unit": "decoder tokenizer tokens, special tokens excluded",
        "splits": {},
    }
    for split, (sources, targets) in splits.items():
        target_counts = _token_counts(tokenizer, targets, f"{split} targets")
        entry = {
            "examples": len(targets),
            "targets_cut": sum(n > max_target for n in target_counts),
            "longest_target": max(target_counts, default=0),
        }
        if sources is not None:
            source_counts = _token_counts(tokenizer, sources, f"{split} sources")
            entry.update(
                sources_cut=sum(n > max_source for n in source_counts), longest_source=max(source_counts, default=0)
            )
        document["splits"][split] = entry
    return document
