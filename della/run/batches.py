"""From processed records ({"text"} or {"source", "target"}) to padded tensors.

One collator for every model: the encoder sees the target x (and the condition c for a CVAE) with
the encoder's tokenizer; the decoder sees
  causal (GPT-2):   <bos> [source </s>] target </s>   loss on target and the final </s>
  seq2seq (BART):   encoder: <bos> source </s>; decoder: <start> target </s>
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from della.io import read_jsonl
from della.models.backbone import CAUSAL, SEQ2SEQ, special_ids
from della.run.lengths import check_lengths, sequence_lengths

IGNORE_INDEX = -100  # label of positions without loss (prefix, padding)


def load_records(path: Path, limit: int | None = None) -> list[dict]:
    """Read a processed split; an unreadable line is an error naming the file and line."""

    def unusable(record: dict) -> str | None:
        if "text" not in record and not {"source", "target"} <= record.keys():
            return f"needs 'text' or 'source' and 'target', has {sorted(record)}"
        return None

    return read_jsonl(path, unusable, limit=limit)


def target_of(record: dict) -> str:
    return record["text"] if "text" in record else record["target"]


def pad(sequences: list[list[int]], value: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to a rectangle; returns (ids [B, T], mask [B, T])."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), value, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


@dataclass
class Collator:
    decoder_tokenizer: object
    encoder_tokenizer: object
    decoder_kind: str
    conditional: bool
    max_source_tokens: int
    max_target_tokens: int
    decoder_start: int | None = None  # seq2seq: the decoder's start token (default: <bos>)
    # Positions of the models that read the batches: every sequence built here (content cut at
    # max_*_tokens, plus the special tokens added around it) must fit them, checked once here
    # (della/run/lengths.py). None: unchecked (a collator for text statistics, no model).
    decoder_positions: int | None = None
    encoder_positions: int | None = None

    def __post_init__(self):
        if self.decoder_kind not in (CAUSAL, SEQ2SEQ):
            raise ValueError(f"decoder kind {self.decoder_kind!r}")
        check_lengths(
            "collator",
            self.sequences(),
            {
                "decoder": (self.decoder_positions, "the decoder"),
                "encoder": (self.encoder_positions, "the encoder"),
            },
        )
        self.dec_bos, self.dec_eos, self.dec_pad = special_ids(self.decoder_tokenizer)
        self.enc_bos, self.enc_eos, self.enc_pad = special_ids(self.encoder_tokenizer)
        self.dec_start = self.decoder_start if self.decoder_start is not None else self.dec_bos

    def sequences(self, max_new_tokens: int | None = None):
        """The longest sequence of each kind this collator builds (and generation, given
        `max_new_tokens`): della/run/lengths.py."""
        return sequence_lengths(
            self.decoder_kind, self.conditional, self.max_source_tokens, self.max_target_tokens, max_new_tokens
        )

    def _tokens(self, tokenizer, text: str, limit: int) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"][:limit]

    def _encoder_input(self, texts: list[str], limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = [[self.enc_bos] + self._tokens(self.encoder_tokenizer, t, limit) + [self.enc_eos] for t in texts]
        return pad(seqs, self.enc_pad)

    def prompt(self, source: str | None) -> list[int]:
        """The decoder prefix that generation continues from."""
        if self.decoder_kind == SEQ2SEQ:
            return [self.dec_start]
        if self.conditional:
            return (
                [self.dec_bos] + self._tokens(self.decoder_tokenizer, source, self.max_source_tokens) + [self.dec_eos]
            )
        return [self.dec_bos]

    def source_input(self, sources: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """BART encoder input for cross-attention."""
        seqs = [
            [self.dec_bos] + self._tokens(self.decoder_tokenizer, s, self.max_source_tokens) + [self.dec_eos]
            for s in sources
        ]
        return pad(seqs, self.dec_pad)

    def __call__(self, records: list[dict]) -> dict[str, torch.Tensor]:
        targets = [target_of(r) for r in records]
        sources = [r["source"] for r in records] if self.conditional else None
        batch = {}
        batch["x_ids"], batch["x_mask"] = self._encoder_input(targets, self.max_target_tokens)
        if self.conditional:
            batch["c_ids"], batch["c_mask"] = self._encoder_input(sources, self.max_source_tokens)
            if self.decoder_kind == SEQ2SEQ:
                batch["src_ids"], batch["src_mask"] = self.source_input(sources)
        inputs, labels = [], []
        for i, target in enumerate(targets):
            prefix = self.prompt(sources[i] if sources else None)
            seq = prefix + self._tokens(self.decoder_tokenizer, target, self.max_target_tokens) + [self.dec_eos]
            inputs.append(seq[:-1])
            labels.append([IGNORE_INDEX] * (len(prefix) - 1) + seq[len(prefix) :])
        batch["dec_ids"], batch["dec_mask"] = pad(inputs, self.dec_pad)
        batch["labels"], _ = pad(labels, IGNORE_INDEX)
        return batch


def batches(records: list[dict], collator: Collator, batch_size: int, order: list[int] | None = None):
    """Yield collated batches in `order` (default: file order)."""
    order = list(range(len(records))) if order is None else order
    for start in range(0, len(order), batch_size):
        yield collator([records[i] for i in order[start : start + batch_size]])
