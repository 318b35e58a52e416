"""The dress-rehearsal data (sample_data/rehearsal/, tools/rehearsal_data.py): rebuilt byte
for byte by its generator, read by the same preprocessing with the paper config's settings, and
longer than every length limit of the paper config, longest first, counted in whitespace words
(preprocess' unit) and in GPT-2 BPE tokens (the real BPE, built offline; BART's is the same)."""

from __future__ import annotations

import hashlib
import json
import re
import zlib

import pytest

from della.data.preprocess import preprocess_dataset
from della.pipeline import overlays
from tools import rehearsal_data

from conftest import archive_content
from helpers import ROOT

REHEARSAL = ROOT / "sample_data" / "rehearsal"
PAPER = overlays.load("config/paper.yaml")["datasets"]

#: Minimum words of the longest (first) test example and of every valid/test example, per field
#: (``text`` for the unconditional datasets). SNLI: the first sentence is a premise; the
#: hypotheses are shorter. CNN/DM: a few highlights are long, the first's always.
FIRST_WORDS = {
    "yelp": {"text": 260},
    "yahoo": {"text": 260},
    "ptb": {"text": 120},
    "snli": {"text": 60},
    "cnn_dailymail": {"source": 1500, "target": 220},
    "writingprompts": {"source": 70, "target": 1200},
    "quora": {"source": 60, "target": 60},
}
EVERY_HELD_OUT_WORDS = {
    "yelp": {"text": 260},
    "yahoo": {"text": 260},
    "ptb": {"text": 120},
    "snli": {},
    "cnn_dailymail": {"source": 1100},
    "writingprompts": {"source": 70, "target": 850},
    "quora": {"source": 60, "target": 60},
}
SIZES = {
    "yelp": (24, 8, 8),
    "yahoo": (24, 8, 8),
    "ptb": (24, 8, 8),
    "cnn_dailymail": (16, 8, 8),
    "writingprompts": (16, 8, 8),
    "quora": (24, 8, 8),
}
GPT2_POSITIONS = 1024
WP_TRAIN_FILTER = 900


def _words(text: str) -> int:
    return len(text.split())


def _limit(dataset: str, field: str) -> int:
    """The paper config's token limit of a field (``text`` is an unconditional dataset's target)."""
    return PAPER[dataset]["max_source_tokens" if field == "source" else "max_target_tokens"]


def test_generator_reproduces_shipped_rehearsal_files(tmp_path):
    shipped = dict(line.split("  ", 1)[::-1] for line in (REHEARSAL / "SHA256SUMS").read_text().splitlines())
    on_disk = {str(p.relative_to(REHEARSAL)) for p in REHEARSAL.rglob("*") if p.is_file()}
    assert on_disk == set(shipped) | {"SHA256SUMS"}, "SHA256SUMS should list every shipped file"
    for name, digest in shipped.items():
        assert hashlib.sha256((REHEARSAL / name).read_bytes()).hexdigest() == digest, f"shipped {name} was edited"
    out = tmp_path / "rehearsal"
    assert rehearsal_data.main(["--out", str(out)]) == 0
    generated = dict(line.split("  ", 1)[::-1] for line in (out / "SHA256SUMS").read_text().splitlines())
    assert set(generated) == set(shipped)
    recorded_zlib = re.search(r"zlib (\S+);", (REHEARSAL / "README.md").read_text()).group(1)
    if zlib.ZLIB_RUNTIME_VERSION == recorded_zlib:
        assert generated == shipped
        assert (out / "SHA256SUMS").read_bytes() == (REHEARSAL / "SHA256SUMS").read_bytes()
    else:  # another deflate implementation: the content must still be identical
        for name in shipped:
            if name != "README.md":  # it names the zlib version
                assert archive_content(out / name) == archive_content(REHEARSAL / name), name


def test_rehearsal_data_is_small():
    assert sum(p.stat().st_size for p in REHEARSAL.rglob("*") if p.is_file()) < 1_500_000


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> dict[str, tuple[dict, dict[str, list[dict]]]]:
    """Every dataset preprocessed with the paper's settings as adapted to this data."""
    out = tmp_path_factory.mktemp("rehearsal_processed")
    result = {}
    for dataset in rehearsal_data.DATASETS:
        settings = rehearsal_data.rehearsal_settings(dataset, PAPER[dataset]["preprocess"])
        stats = preprocess_dataset(dataset, REHEARSAL / dataset, out / dataset, settings)
        result[dataset] = (
            stats,
            {
                split: [
                    json.loads(line)
                    for line in (out / dataset / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
                ]
                for split in ("train", "valid", "test")
            },
        )
    return result


@pytest.fixture(scope="module")
def gpt2_tokens():
    from della.run.tokenizer import published_tokenizer

    tokenizer = published_tokenizer("gpt2")
    return lambda text: len(tokenizer(text, verbose=False).input_ids)


def test_settings_are_the_papers_but_subsample_and_quora_split():
    for dataset in rehearsal_data.DATASETS:
        paper = PAPER[dataset]["preprocess"]
        adapted = rehearsal_data.rehearsal_settings(dataset, paper)
        assert adapted["max_examples"] == {"train": None, "valid": None, "test": None}
        changed = {key for key in set(paper) | set(adapted) if paper.get(key) != adapted.get(key)}
        assert changed <= {"max_examples", "split_sizes"}, dataset
    assert rehearsal_data.rehearsal_settings("quora", PAPER["quora"]["preprocess"])["split_sizes"] == {
        "valid": 8,
        "test": 8,
    }
    assert PAPER["writingprompts"]["preprocess"]["max_length"] == {
        "train": WP_TRAIN_FILTER,
        "valid": None,
        "test": None,
    }


@pytest.mark.parametrize("dataset", rehearsal_data.DATASETS)
def test_each_dataset_preprocesses_into_long_splits_longest_first(dataset, processed, gpt2_tokens):
    stats, splits = processed[dataset]
    assert all(splits[split] for split in splits), stats["splits"]
    if dataset in SIZES:
        assert tuple(stats["splits"].values()) == SIZES[dataset]
    test = splits["test"]
    for field, words in FIRST_WORDS[dataset].items():
        lengths = [_words(example[field]) for example in test]
        assert lengths[0] == max(lengths), f"{dataset} test: the first {field} is not the longest: {lengths}"
        assert lengths[0] >= words, (dataset, field, lengths[0])
        tokens = gpt2_tokens(test[0][field])
        assert tokens > _limit(dataset, field), (dataset, field, tokens)
    for split in ("valid", "test"):
        for field, words in EVERY_HELD_OUT_WORDS[dataset].items():
            lengths = [_words(example[field]) for example in splits[split]]
            assert lengths[0] == max(lengths), (dataset, split, field, lengths)
            assert min(lengths) >= words, (dataset, split, field, lengths)
            assert min(gpt2_tokens(e[field]) for e in splits[split]) > _limit(dataset, field), (dataset, split, field)
    # train meets the limits too (the long texts mixed with the sample's short ones)
    for field in FIRST_WORDS[dataset]:
        assert max(gpt2_tokens(example[field]) for example in splits["train"]) > _limit(dataset, field), (
            dataset,
            field,
        )


def test_cnn_dailymail_articles_pass_the_positions(processed, gpt2_tokens):
    _, splits = processed["cnn_dailymail"]
    for split in ("valid", "test"):
        assert all(gpt2_tokens(example["source"]) > GPT2_POSITIONS for example in splits[split])
        assert gpt2_tokens(splits[split][0]["target"]) > _limit("cnn_dailymail", "target")


def test_writingprompts_train_meets_the_900_word_filter(processed, gpt2_tokens):
    """Train keeps the pairs under 900 words (the paper's filter drops the others, counted as
    too_long), and some kept stories still pass the 958-token limit; valid and test are not
    filtered."""
    stats, splits = processed["writingprompts"]
    assert stats["skipped"] == {"too_long": rehearsal_data.WP_TRAIN_OVER_FILTER}
    assert (
        stats["subsample"]["available"]["train"]
        == rehearsal_data.WP_PAIRS["train"] - rehearsal_data.WP_TRAIN_OVER_FILTER
    )
    train = splits["train"]
    assert all(_words(e["source"]) + _words(e["target"]) < WP_TRAIN_FILTER for e in train)
    assert sum(gpt2_tokens(e["target"]) > _limit("writingprompts", "target") for e in train) >= len(train) // 3
    assert all(
        _words(e["source"]) + _words(e["target"]) >= WP_TRAIN_FILTER
        for split in ("valid", "test")
        for e in splits[split]
    )
    assert any("\n" in e["target"] for e in train)  # <newline> became a line break


def test_snli_first_held_out_sentence_is_a_long_premise(processed, gpt2_tokens):
    _, splits = processed["snli"]
    for split in ("valid", "test"):
        texts = [e["text"] for e in splits[split]]
        assert _words(texts[0]) == max(map(_words, texts)) >= 70
        assert gpt2_tokens(texts[0]) == max(map(gpt2_tokens, texts)) > _limit("snli", "text")
