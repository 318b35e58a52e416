"""Train the sample-scale tokenizer (paper scale uses each backbone's own pretrained tokenizer).

A byte-level BPE like GPT-2's, trained with the `tokenizers` library on the training splits, so
that the small sample backbones get a small vocabulary (the output layer dominates the cost of a
small model on CPU; see the design notes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
TEXT_FIELDS = ("text", "source", "target")


def iter_texts(jsonl_files: list[Path]) -> Iterator[str]:
    for path in jsonl_files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                yield from (record[field] for field in TEXT_FIELDS if record.get(field))


def train_tokenizer(jsonl_files: list[Path], vocab_size: int, min_frequency: int, out_dir: Path) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on every text field of `jsonl_files` and save it to `out_dir`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, BOS, EOS, UNK],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(iter_texts(jsonl_files), trainer=trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(out_dir)
    return wrapped
