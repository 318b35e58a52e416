"""Tests of the shipped sample data, the raw-format readers and the preprocessing."""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import re
import tarfile
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import pytest

import della.io
from della.data import preprocess as pp
from della.data import raw
from della.data.raw import DataFormatError
from tools.sample_generator.generate import generate_all

from conftest import archive_content
from helpers import ROOT
from helpers.data import SETTINGS, read_jsonl, tar_gz

SAMPLE = ROOT / "sample_data"

CONDITIONAL = {"cnn_dailymail", "writingprompts", "quora"}
#: The probe's labels each sample dataset's records carry (the others carry none).
LABELS = {"yelp": {"review_label", "business"}, "yahoo": {"topic"}}


def _run(name: str, out: Path, raw_dir: Path | None = None, **overrides) -> dict:
    settings = {**SETTINGS[name], **overrides}
    return pp.preprocess_dataset(name, raw_dir or SAMPLE / name, out, settings)


def _wp_members(split_lines: dict[str, tuple[list[str], list[str]]]) -> dict[str, bytes]:
    """WritingPrompts' six members; a split not in ``split_lines`` gets one pair."""
    members = {}
    for split in pp.SPLITS:
        sources, targets = split_lines.get(split, (["[ WP ] p"], ["s"]))
        members[f"writingPrompts/{split}.wp_source"] = "".join(s + "\n" for s in sources).encode()
        members[f"writingPrompts/{split}.wp_target"] = "".join(t + "\n" for t in targets).encode()
    return members


def _wp_archive(raw_dir: Path, split_lines: dict[str, tuple[list[str], list[str]]]) -> None:
    tar_gz(raw_dir / raw.WP_ARCHIVE, _wp_members(split_lines))


QUORA_HEADER = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"


# --- the shipped sample data ------------------------------------------------------------------


def test_generator_reproduces_shipped_files(tmp_path):
    shipped = dict(line.split("  ", 1)[::-1] for line in (SAMPLE / "SHA256SUMS").read_text().splitlines())
    assert len(shipped) >= 12, "SHA256SUMS should list every shipped file"
    for name, digest in shipped.items():  # the tree matches its own checksums ...
        assert hashlib.sha256((SAMPLE / name).read_bytes()).hexdigest() == digest, f"shipped {name} was edited"
    out = tmp_path / "sample_data"
    generated = generate_all(out, seed=0)  # ... and the generator rebuilds it byte for byte
    assert set(generated) == set(shipped)
    recorded_zlib = re.search(r"zlib (\S+)", (SAMPLE / "README.md").read_text()).group(1)
    if zlib.ZLIB_RUNTIME_VERSION == recorded_zlib:
        assert generated == shipped
        assert (out / "SHA256SUMS").read_bytes() == (SAMPLE / "SHA256SUMS").read_bytes()
    else:  # another deflate implementation: the content must still be identical
        for name in shipped:
            if name != "README.md":  # it names the zlib version
                assert archive_content(out / name) == archive_content(SAMPLE / name), name


def test_shipped_data_is_small():
    total = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert total < 3_000_000


def test_sample_archives_have_the_real_layout():
    with tarfile.open(SAMPLE / "ptb" / "simple-examples.tgz") as tar:
        names = tar.getnames()
        assert "./simple-examples/data/ptb.train.txt" in names
        line = tar.extractfile("./simple-examples/data/ptb.valid.txt").readline().decode()
    assert line.startswith(" ") and line.endswith(" \n")
    assert all(t == "N" or t == t.lower() for t in line.split())
    with zipfile.ZipFile(SAMPLE / "snli" / "snli_1.0.zip") as zf:
        names = set(zf.namelist())
        assert {"snli_1.0/Icon\r", "__MACOSX/snli_1.0/._Icon\r", "snli_1.0/README.txt"} <= names
        first = zf.read("snli_1.0/snli_1.0_dev.jsonl").decode().splitlines()[0]
        header = zf.read("snli_1.0/snli_1.0_train.txt").decode().splitlines()[0].split("\t")
    assert list(json.loads(first)) == list(raw.SNLI_JSONL_KEYS)
    assert tuple(header) == raw.SNLI_TXT_HEADER
    tsv_header = (SAMPLE / "quora" / raw.QUORA_FILE).read_text().splitlines()[0]
    assert tsv_header == QUORA_HEADER.strip()


# --- every dataset preprocesses -----------------------------------------------------------------


@pytest.mark.parametrize("name", list(SETTINGS))
def test_each_dataset_preprocesses(name, tmp_path):
    stats = _run(name, tmp_path)
    keys = {"source", "target"} if name in CONDITIONAL else {"text"}
    labelled = name in LABELS
    for split in pp.SPLITS:
        rows = read_jsonl(tmp_path / f"{split}.jsonl")
        assert rows, f"{name} {split} is empty"
        assert all(set(row) == keys | ({pp.LABELS_KEY} if labelled else set()) for row in rows)
        assert all(isinstance(row[k], str) and row[k].strip() for row in rows for k in keys)
        if labelled:
            assert all(set(row[pp.LABELS_KEY]) == LABELS[name] for row in rows)
        assert stats["splits"][split] == len(rows)
    assert json.loads((tmp_path / "stats.json").read_text()) == stats
    assert stats["dataset"] == name and stats["length_unit"] == "whitespace tokens" and stats["seed"] == 0
    assert stats["avg_len_text"] > 0
    assert (stats["avg_len_target"] is not None) == (name in CONDITIONAL)
    # each valid/test text found verbatim in the training split, counted here from the files
    train = read_jsonl(tmp_path / "train.jsonl")
    key = (lambda r: r["target"]) if name in CONDITIONAL else (lambda r: r["text"])
    for split in ("valid", "test"):
        rows = read_jsonl(tmp_path / f"{split}.jsonl")
        counted = stats["overlap_with_train"][split]
        assert counted["examples"] == len(rows)
        assert counted["target_in_train" if name in CONDITIONAL else "text_in_train"] == sum(
            key(r) in {key(t) for t in train} for r in rows
        )
        # a generated dataset's overlap is a bug of its generator (docs/data.md)
        assert all(value == 0 for what, value in counted.items() if what.endswith("_in_train")), (name, counted)


def test_cleaning_follows_the_original_pipelines(tmp_path):
    _run("yelp", tmp_path / "yelp")
    yelp = read_jsonl(tmp_path / "yelp" / "train.jsonl")
    assert not any("\t" in r["text"] or re.match(r"[0-4] ", r["text"]) for r in yelp), "yelp label must be dropped"
    _run("ptb", tmp_path / "ptb")
    ptb = read_jsonl(tmp_path / "ptb" / "valid.jsonl")
    assert all(r["text"] == r["text"].strip() for r in ptb)
    stats = _run("snli", tmp_path / "snli")
    snli = [r["text"] for r in read_jsonl(tmp_path / "snli" / "train.jsonl")]
    assert len(snli) == len(set(snli)), "snli sentences are de-duplicated"
    assert all(t == t.lower() for t in snli) and any(t.endswith(" .") for t in snli)
    assert stats["skipped"]["no_gold_label"] > 0


def test_snli_tokenize():
    assert pp.snli_tokenize("A man's dog, running. Don't!") == "a man 's dog , running . do n't !"
    assert pp.snli_tokenize("It costs 3.50 dollars") == "it costs 3.50 dollars"


# --- subsampling ----------------------------------------------------------------------------------


def test_max_examples_and_seeded_subsample(tmp_path):
    limits = {"train": 100, "valid": 20, "test": None}
    stats = _run("yelp", tmp_path / "a", max_examples=limits, seed=3)
    assert stats["splits"] == {"train": 100, "valid": 20, "test": 200}
    _run("yelp", tmp_path / "b", max_examples=limits, seed=3)
    _run("yelp", tmp_path / "c", max_examples=limits, seed=4)
    same = (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "b" / "train.jsonl").read_bytes()
    other = (tmp_path / "a" / "train.jsonl").read_bytes() == (tmp_path / "c" / "train.jsonl").read_bytes()
    assert same and not other
    _run("yelp", tmp_path / "full")
    all_train = [r["text"] for r in read_jsonl(tmp_path / "full" / "train.jsonl")]
    subset = [r["text"] for r in read_jsonl(tmp_path / "a" / "train.jsonl")]
    positions = [all_train.index(t) for t in subset]
    assert positions == sorted(positions), "a subsample keeps the original order"


def test_quora_split_is_seeded(tmp_path):
    first = _run("quora", tmp_path / "a", seed=1)
    _run("quora", tmp_path / "b", seed=1)
    _run("quora", tmp_path / "c", seed=2)
    assert first["splits"]["valid"] == 100 and first["splits"]["test"] == 100
    read = lambda d, s: (tmp_path / d / f"{s}.jsonl").read_bytes()  # noqa: E731
    assert read("a", "valid") == read("b", "valid") and read("a", "valid") != read("c", "valid")
    _, rows = raw.read_quora(SAMPLE / "quora")
    usable = [r for _, r in rows if r["is_duplicate"] == "1" and r["question1"].strip() and r["question2"].strip()]
    assert first["splits"]["train"] == len(usable) - 200
    lines = {s: set(read("a", s).splitlines()) for s in pp.SPLITS}
    assert not (lines["valid"] & lines["test"] or lines["train"] & (lines["valid"] | lines["test"]))


# --- WritingPrompts ------------------------------------------------------------------------------


def test_writingprompts_alignment_and_newlines(tmp_path):
    sources = [f"[ WP ] prompt number {i}" for i in range(5)]
    targets = [f"story number {i} . <newline> <newline> The end ." for i in range(5)]
    targets[3] = "word " * 50  # too long for max_length below
    _wp_archive(tmp_path / "raw", {"train": (sources, targets)})
    stats = pp.preprocess_dataset(
        "writingprompts", tmp_path / "raw", tmp_path / "out", {**SETTINGS["writingprompts"], "max_length": 40}
    )
    rows = read_jsonl(tmp_path / "out" / "train.jsonl")
    assert [r["source"] for r in rows] == [s for i, s in enumerate(sources) if i != 3]
    for row in rows:
        number = row["source"].split()[-1]
        assert row["target"] == f"story number {number} . \n \n The end ."
        assert "<newline>" not in row["target"]
    assert stats["skipped"] == {"too_long": 1}


def test_test_texts_found_in_the_training_split_are_counted(tmp_path):
    """stats.json's overlap_with_train: per split, the targets and the whole (source, target)
    pairs of a conditional dataset that occur verbatim in the training split."""
    train = ([f"[ WP ] prompt {i}" for i in range(4)], [f"story {i} ." for i in range(4)])
    valid = (["[ WP ] other prompt", "[ WP ] prompt 9"], ["story 0 .", "story 9 ."])  # a train target, new prompt
    test = (["[ WP ] prompt 1", "[ WP ] new", "[ WP ] newer"], ["story 1 .", "story 2 .", "story 8 ."])  # a train pair
    _wp_archive(tmp_path / "raw", {"train": train, "valid": valid, "test": test})
    stats = pp.preprocess_dataset("writingprompts", tmp_path / "raw", tmp_path / "out", SETTINGS["writingprompts"])
    assert stats["overlap_with_train"] == {
        "compared": ["pair", "target"],
        "valid": {"examples": 2, "target_in_train": 1, "pair_in_train": 0},
        "test": {"examples": 3, "target_in_train": 2, "pair_in_train": 1},
    }


def test_max_length_per_split_filters_only_the_splits_it_names(tmp_path):
    """The paper filters WritingPrompts "for training"; an int filters every split, as the code."""
    long_pair = (["[ WP ] long"], ["word " * 50])
    short_pair = (["[ WP ] short"], ["a story"])
    splits = {split: (long_pair[0] + short_pair[0], long_pair[1] + short_pair[1]) for split in pp.SPLITS}
    _wp_archive(tmp_path / "raw", splits)
    per_split = _run(
        "writingprompts", tmp_path / "a", tmp_path / "raw", max_length={"train": 40, "valid": None, "test": None}
    )
    assert per_split["splits"] == {"train": 1, "valid": 2, "test": 2}
    assert per_split["subsample"]["max_length"] == {"train": 40, "valid": None, "test": None}
    everywhere = _run("writingprompts", tmp_path / "b", tmp_path / "raw", max_length=40)
    assert everywhere["splits"] == {"train": 1, "valid": 1, "test": 1}
    assert everywhere["skipped"] == {"too_long": 3}
    with pytest.raises(ValueError, match="max_length must map"):
        _run("writingprompts", tmp_path / "c", tmp_path / "raw", max_length={"dev": 3})


def test_writingprompts_sample_stories_follow_their_prompts(tmp_path):
    _run("writingprompts", tmp_path)
    rows = read_jsonl(tmp_path / "train.jsonl")
    assert all(r["source"].startswith("[ ") for r in rows)
    assert Counter(r["source"].split()[1] for r in rows).most_common(1)[0][0] == "WP"
    assert any("\n" in r["target"] for r in rows)


# --- CNN / DailyMail ------------------------------------------------------------------------------


def test_cnn_story_without_article_is_skipped_and_counted(tmp_path):
    stats = _run("cnn_dailymail", tmp_path)
    assert stats["skipped"] == {"empty_article": 1}
    assert stats["splits"]["train"] == len(raw.read_cnn_dm_url_list(SAMPLE / "cnn_dailymail", "train")[1]) - 1
    rows = read_jsonl(tmp_path / "train.jsonl")
    # HF 3.0.0: highlights are joined with "\n" and every one ends with a period.
    assert all(all(h.endswith((" .", ".", '"', "!", "?")) for h in r["target"].split("\n")) for r in rows)
    assert all("@highlight" not in r["source"] for r in rows)


def test_story_parsing_like_huggingface():
    lines = [
        "(CNN) -- First paragraph.",
        "",
        "A caption without period",
        "",
        "@highlight",
        "",
        "Fact one",
        "",
        "@highlight",
        "",
        "Fact two!",
    ]
    assert pp._story_to_example(lines) == (
        "(CNN) -- First paragraph. A caption without period .",
        "Fact one .\nFact two!",
    )
    assert pp.fix_missing_period('He said "yes"') == 'He said "yes"'


def test_cnn_missing_story_names_the_url_list(tmp_path):
    raw_dir = tmp_path / "raw"
    for archive, folder in raw.CNN_DM_ARCHIVES.values():
        tar_gz(raw_dir / archive, {f"{folder}/{'0' * 40}.story": b"Text.\n\n@highlight\n\nFact\n"})
    (raw_dir / "url_lists").mkdir()
    for split in ("train", "val", "test"):
        (raw_dir / "url_lists" / f"all_{split}.txt").write_text("http://example.com/a\n")
    with pytest.raises(DataFormatError, match=r"all_train\.txt:1: no story"):
        _run("cnn_dailymail", tmp_path / "out", raw_dir)


# --- Quora ------------------------------------------------------------------------------------------


def test_quora_quoting_and_empty_questions(tmp_path):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    rows = [QUORA_HEADER]
    rows += [f"{i}\t{2 * i}\t{2 * i + 1}\tQuestion {i}?\tAsked as {i}?\t1\n" for i in range(10)]
    rows.append('10\t20\t21\t"What does ""spill the beans"" mean?"\t"What is the meaning of ""spill the beans""?"\t1\n')
    rows.append('11\t22\t23\t"A question\non two lines?"\tAnother one?\t1\n')
    rows.append("12\t24\t25\t\tEmpty first question?\t0\n")
    rows.append("13\t26\t27\tNot a duplicate?\tReally not?\t0\n")
    (raw_dir / raw.QUORA_FILE).write_text("".join(rows), encoding="utf-8")
    stats = pp.preprocess_dataset(
        "quora", raw_dir, tmp_path / "out", {**SETTINGS["quora"], "split_sizes": {"valid": 1, "test": 1}}
    )
    assert stats["skipped"] == {"empty_question": 1, "not_duplicate": 1}
    everything = [r for s in pp.SPLITS for r in read_jsonl(tmp_path / "out" / f"{s}.jsonl")]
    assert len(everything) == 12
    assert {
        "source": 'What does "spill the beans" mean?',
        "target": 'What is the meaning of "spill the beans"?',
    } in everything
    assert {"source": "A question\non two lines?", "target": "Another one?"} in everything


def _quora_with_ids(tmp_path: Path, valid: str, test: str) -> dict:
    """Rows 0-9 duplicate pairs, 10 a non-duplicate, 11 an empty question; the id files given."""
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir(exist_ok=True)
    rows = [QUORA_HEADER] + [f"{i}\t{2 * i}\t{2 * i + 1}\tQuestion {i}?\tAsked as {i}?\t1\n" for i in range(10)]
    rows += ["10\t20\t21\tNot a duplicate?\tReally not?\t0\n", "11\t22\t23\t\tEmpty?\t1\n"]
    (raw_dir / raw.QUORA_FILE).write_text("".join(rows), encoding="utf-8")
    (tmp_path / "valid_ids.txt").write_text(valid)
    (tmp_path / "test_ids.txt").write_text(test)
    split_ids = {"valid": str(tmp_path / "valid_ids.txt"), "test": str(tmp_path / "test_ids.txt")}
    settings = {"format": "quora_qqp", "task": "conditional", "split_ids": split_ids}
    return pp.preprocess_dataset("quora", raw_dir, tmp_path / "out", settings)


def test_quora_split_by_row_ids(tmp_path):
    stats = _quora_with_ids(tmp_path, valid="7\n3\n\n", test="5\n")
    sources = {split: [r["source"] for r in read_jsonl(tmp_path / "out" / f"{split}.jsonl")] for split in pp.SPLITS}
    assert sources == {
        "valid": ["Question 3?", "Question 7?"],
        "test": ["Question 5?"],
        "train": [f"Question {i}?" for i in (0, 1, 2, 4, 6, 8, 9)],
    }
    assert stats["split_ids"]["valid"] == {
        "file": str(tmp_path / "valid_ids.txt"),
        "sha256": hashlib.sha256(b"7\n3\n\n").hexdigest(),
    }


@pytest.mark.parametrize(
    "valid, test, message",
    [
        ("3\n99\n", "5\n", r"valid_ids\.txt:2: row id 99: .*quora_duplicate_questions\.tsv has no row with this id$"),
        ("3\n", "10\n", r"test_ids\.txt:1: row id 10: .*quora_duplicate_questions\.tsv:12 is no duplicate pair"),
        ("3\n", "11\n", r"test_ids\.txt:1: row id 11: .*quora_duplicate_questions\.tsv:13 is no duplicate pair"),
        ("3\n4\n", "5\n4\n", r"test_ids\.txt:2: row id 4 is listed already \(.*valid_ids\.txt:2\)$"),
    ],
)
def test_a_bad_quora_split_id_names_the_id_file_and_line(tmp_path, valid, test, message):
    with pytest.raises(DataFormatError, match=message):
        _quora_with_ids(tmp_path, valid, test)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"split_ids": {"valid": "v.txt", "test": "t.txt"}, "split_sizes": {"valid": 1, "test": 1}},
            "split_ids and split_sizes are two ways to split quora_qqp; give one",
        ),
        ({"split_ids": {"valid": "v.txt"}}, r"split_ids must be \{valid: FILE, test: FILE\}"),
    ],
)
def test_quora_takes_split_ids_or_split_sizes(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        pp.preprocess_dataset(
            "quora", SAMPLE / "quora", tmp_path, {"format": "quora_qqp", "task": "conditional", **settings}
        )


def test_quora_sample_has_quotes_and_duplicate_rate():
    _, rows = raw.read_quora(SAMPLE / "quora")
    assert any('"' in r["question1"] + r["question2"] for _, r in rows)
    rate = sum(r["is_duplicate"] == "1" for _, r in rows) / len(rows)
    assert 0.33 < rate < 0.41
    assert sum(not r["question1"] or not r["question2"] for _, r in rows) in (1, 2)


# --- malformed input -------------------------------------------------------------------------------


def test_non_utf8_line_is_reported_with_file_and_line(tmp_path):
    member = "yelp_data/yelp.train.txt"
    members = {f"yelp_data/yelp.{s}.txt": b"4\tgood food .\n" for s in pp.SPLITS}
    members[member] = b"4\tgood food .\n0\tbad food .\n3\tcaf\xe9 ok .\n"
    archive = tar_gz(tmp_path / "raw" / raw.HE2019_ARCHIVE, members)
    with pytest.raises(DataFormatError) as info:
        _run("yelp", tmp_path / "out", tmp_path / "raw")
    assert f"{archive}[{member}]:3:" in str(info.value) and "UTF-8" in str(info.value)


@pytest.mark.parametrize(
    ("encoding", "what"),
    [
        ("utf-16-le", "UTF-16 LE text (byte-order mark FF FE)"),
        ("utf-16-be", "UTF-16 BE text (byte-order mark FE FF)"),
        ("utf-32-le", "UTF-32 LE text (byte-order mark FF FE 00 00)"),
    ],
)
def test_a_utf16_or_utf32_file_says_what_it_is_and_how_to_convert_it(tmp_path, encoding, what):
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "utf-32-le": codecs.BOM_UTF32_LE}
    (tmp_path / "raw").mkdir()
    path = tmp_path / "raw" / raw.QUORA_FILE
    path.write_bytes(bom[encoding] + (QUORA_HEADER + "0\t1\t2\tQ one?\tQ two?\t1\n").encode(encoding))
    iconv = "UTF-32" if "32" in encoding else "UTF-16"
    with pytest.raises(
        DataFormatError,
        match=rf"^{re.escape(str(path))}:1: {re.escape(what)}, not UTF-8: "
        rf"convert it with `iconv -f {iconv} -t UTF-8 FILE > FILE.utf8`",
    ):
        raw.read_quora(tmp_path / "raw")
    member = "writingPrompts/valid.wp_target"
    members = _wp_members({})
    members[member] = bom[encoding] + "a story\n".encode(encoding)
    tar_gz(tmp_path / "wp" / raw.WP_ARCHIVE, members)
    with pytest.raises(DataFormatError, match=rf"{re.escape(member)}\]:1: {re.escape(what)}"):
        raw.read_writingprompts(tmp_path / "wp", pp.SPLITS)


def test_a_utf8_byte_order_mark_is_read_as_utf8(tmp_path):
    """An editor's UTF-8 BOM is not text: the records equal those of the file without it."""
    lines = "4\tgood food .\n0\tbad food .\n"
    factors = b'{"business": "bar"}\n{"business": "gym"}\n'
    _yelp_with_factors(tmp_path / "plain", lines.encode(), factors)
    _yelp_with_factors(tmp_path / "bom", codecs.BOM_UTF8 + lines.encode(), codecs.BOM_UTF8 + factors)
    _run("yelp", tmp_path / "out-plain", tmp_path / "plain")
    _run("yelp", tmp_path / "out-bom", tmp_path / "bom")
    rows = read_jsonl(tmp_path / "out-bom" / "train.jsonl")
    assert rows == read_jsonl(tmp_path / "out-plain" / "train.jsonl")
    assert rows[0] == {"text": "good food .", pp.LABELS_KEY: {"review_label": 4, "business": "bar"}}
    (tmp_path / "quora").mkdir()
    (tmp_path / "quora" / raw.QUORA_FILE).write_bytes(codecs.BOM_UTF8 + QUORA_HEADER.encode() + b"0\t1\t2\tQ?\tR?\t1\n")
    assert raw.read_quora(tmp_path / "quora")[1] == [
        (2, dict(zip(raw.QUORA_COLUMNS, ["0", "1", "2", "Q?", "R?", "1"], strict=True)))
    ]


def _yelp_with_factors(raw_dir: Path, train_lines: bytes, train_factors: bytes) -> Path:
    members = {}
    for split in pp.SPLITS:
        members[f"yelp_data/yelp.{split}.txt"] = b"4\tgood food .\n"
        members[f"yelp_data/yelp.{split}.factors.jsonl"] = b'{"business": "bar"}\n'
    members["yelp_data/yelp.train.txt"], members["yelp_data/yelp.train.factors.jsonl"] = train_lines, train_factors
    return tar_gz(raw_dir / raw.HE2019_ARCHIVE, members)


def test_labels_follow_their_lines_through_skips_and_subsampling(tmp_path):
    lines = b"4\tgood food .\n\n0\tbad food .\nno tab here\n2\tok food .\n9\tnine stars .\n3\tfine food .\n"
    factors = b"".join(
        b'{"business": "%s"}\n' % name for name in (b"bar", b"gym", b"hotel", b"salon", b"spa", b"pub", b"cafe")
    )
    _yelp_with_factors(tmp_path / "raw", lines, factors)
    _run("yelp", tmp_path / "out", tmp_path / "raw", max_examples={"train": 3}, seed=1, bad_labels="skip")
    rows = {r["text"]: r.get(pp.LABELS_KEY) for r in read_jsonl(tmp_path / "out" / "train.jsonl")}
    expected = {
        "good food .": {"review_label": 4, "business": "bar"},  # the empty line 2 is skipped
        "bad food .": {"review_label": 0, "business": "hotel"},  # so are lines 4 and 6 (no valid label)
        "ok food .": {"review_label": 2, "business": "spa"},
        "fine food .": {"review_label": 3, "business": "cafe"},
    }
    assert len(rows) == 3 and all(expected[text] == labels for text, labels in rows.items())
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert sum(stats["labels"]["business"].values()) == 3
    assert stats["skipped"] == {"empty_line": 1, "bad_label": 2}


def test_labels_off_keeps_only_the_review_label(tmp_path):
    _yelp_with_factors(tmp_path / "raw", b"3\tfine .\n", b"not json\n")  # factors: false never reads them
    _run("yelp", tmp_path / "out", tmp_path / "raw", factors=False)
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == [{"text": "fine .", pp.LABELS_KEY: {"review_label": 3}}]


@pytest.mark.parametrize(
    ("lines", "factors", "message"),
    [
        (b"7\tgood .\n", b'{"business": "bar"}\n', "yelp.train.txt]:1: Yelp label '7' is not one of 0..4"),
        (
            b"4\tgood .\nno label here\n",
            b'{"business": "bar"}\n{"business": "gym"}\n',
            "yelp.train.txt]:2: no label: expected '<label>\\t<text>'",
        ),
        (b"4\tgood .\n\tempty label\n", b'{"business": "bar"}\n{"business": "gym"}\n', "yelp.train.txt]:2: no label"),
        (b"-1\tgood .\n", b'{"business": "bar"}\n', "yelp.train.txt]:1: Yelp label '-1' is not one of 0..4"),
        (b"4\tgood .\n4\tbad .\n", b'{"business": "bar"}\n', "yelp.train.factors.jsonl]: 1 lines of factors for the 2"),
        (b"4\tgood .\n", b'{"business": [1]}\n', "yelp.train.factors.jsonl]:1: expected a JSON object"),
        (b"4\tgood .\n", b'{"business": \n', "yelp.train.factors.jsonl]:1: invalid JSON"),
    ],
)
def test_bad_labels_name_file_and_line(tmp_path, lines, factors, message):
    _yelp_with_factors(tmp_path / "raw", lines, factors)
    with pytest.raises(DataFormatError, match=re.escape(message)):
        _run("yelp", tmp_path / "out", tmp_path / "raw")
    assert not (tmp_path / "out").exists()


def test_factors_only_for_the_he2019_formats(tmp_path):
    with pytest.raises(ValueError, match="factors applies to yelp_he2019 and yahoo_he2019 only"):
        _run("ptb", tmp_path / "out", factors=True)


def test_bad_labels_is_a_yelp_setting_of_two_values(tmp_path):
    with pytest.raises(ValueError, match="bad_labels applies to yelp_he2019 only"):
        _run("yahoo", tmp_path / "out", bad_labels="skip")
    with pytest.raises(ValueError, match="bad_labels must be one of error, skip, got 'ignore'"):
        _run("yelp", tmp_path / "out", bad_labels="ignore")


def test_small_scale_data_has_more_entropy_and_its_factors():
    """The small scale's texts carry a persona the sample's lack, and are more varied per word."""

    def entropy(lines: list[str]) -> float:
        counts = Counter(word for line in lines for word in line.split("\t")[-1].split())
        total = sum(counts.values())
        return -sum(c / total * math.log(c / total) for c in counts.values())

    for dataset in ("yelp", "yahoo"):
        sample = [line for _, line in raw.read_he2019(SAMPLE / dataset, dataset, ["train"])["train"][1]]
        small_lines = raw.read_he2019(SAMPLE / "small" / dataset, dataset, pp.SPLITS)
        small_factors = raw.read_he2019_factors(SAMPLE / "small" / dataset, dataset, pp.SPLITS)
        assert {s: len(small_lines[s][1]) for s in pp.SPLITS} == {"train": 10000, "valid": 1000, "test": 1000}
        factors = [f for _, f in small_factors["train"][1]]
        assert {len({f["persona"] for f in factors})} == {4}
        small = [line for _, line in small_lines["train"][1]][: len(sample)]
        assert entropy(small) > entropy(sample), dataset


def test_wp_line_count_mismatch(tmp_path):
    _wp_archive(tmp_path / "raw", {"valid": (["[ WP ] a", "[ WP ] b", "[ WP ] c"], ["story a", "story b"])})
    with pytest.raises(DataFormatError) as info:
        _run("writingprompts", tmp_path / "out", tmp_path / "raw")
    message = str(info.value)
    assert "writingPrompts/valid.wp_source]:3:" in message and "valid.wp_target" in message
    assert raw.WP_ARCHIVE in message


def test_quora_missing_column(tmp_path):
    (tmp_path / "raw").mkdir()
    path = tmp_path / "raw" / raw.QUORA_FILE
    path.write_text(QUORA_HEADER + "0\t1\t2\tQ one?\tQ two?\t1\n1\t3\t4\tOnly one question?\t0\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=rf"{re.escape(str(path))}:3: expected 6 tab-separated columns, got 5"):
        _run("quora", tmp_path / "out", tmp_path / "raw")


def test_quora_non_utf8(tmp_path):
    (tmp_path / "raw").mkdir()
    path = tmp_path / "raw" / raw.QUORA_FILE
    path.write_bytes(QUORA_HEADER.encode() + b"0\t1\t2\tQ one?\tQ two?\t1\n1\t3\t4\tQ\xff?\tQ?\t1\n")
    with pytest.raises(DataFormatError, match=rf"{re.escape(str(path))}:3: not valid UTF-8"):
        raw.read_quora(tmp_path / "raw")


def test_truncated_archive_fails_and_writes_nothing(tmp_path):
    data = (SAMPLE / "yelp" / raw.HE2019_ARCHIVE).read_bytes()
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    (raw_dir / raw.HE2019_ARCHIVE).write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=re.escape(str(raw_dir / raw.HE2019_ARCHIVE))):
        _run("yelp", out, raw_dir)
    assert not (out / "stats.json").exists()
    assert not out.exists() or list(out.iterdir()) == []


def test_failed_write_leaves_no_stats(tmp_path, monkeypatch):
    """A failure while writing the splits must not leave a stats.json (nor temp files)."""
    real_replace = della.io.os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if str(dst).endswith("test.jsonl"):
            raise OSError("disk full")
        real_replace(src, dst)

    (tmp_path / "stats.json").write_text("{}")  # left by an earlier run
    monkeypatch.setattr(della.io.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        _run("ptb", tmp_path)
    assert not (tmp_path / "stats.json").exists()
    assert not list(tmp_path.glob(".*.partial"))


def test_missing_member_is_reported(tmp_path):
    tar_gz(tmp_path / "raw" / raw.PTB_ARCHIVE, {"./simple-examples/data/ptb.train.txt": b" a b \n"})
    with pytest.raises(DataFormatError, match="missing member"):
        _run("ptb", tmp_path / "out", tmp_path / "raw")


# --- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"maxexamples": {}}, "unknown settings key"),
        ({"task": "conditional"}, "is unconditional"),
        ({"format": "yelp"}, "format must be one of"),
        ({"max_examples": {"training": 5}}, "max_examples"),
        ({"max_examples": {"train": -1}}, "max_examples.train"),
        ({"split_sizes": {"valid": 1, "test": 1}}, "split_sizes and split_ids only apply to quora_qqp"),
        ({"split_ids": {"valid": "v.txt", "test": "t.txt"}}, "split_sizes and split_ids only apply to quora_qqp"),
    ],
)
def test_bad_settings_are_rejected(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        _run("yelp", tmp_path, **bad)
    assert not (tmp_path / "stats.json").exists()


@pytest.mark.parametrize("sizes", [None, {"valid": 1}, {"train": 5, "valid": 1, "test": 1}])
def test_quora_needs_split_sizes(tmp_path, sizes):
    settings = {"format": "quora_qqp", "task": "conditional"} | ({"split_sizes": sizes} if sizes else {})
    with pytest.raises(ValueError, match="needs split_sizes"):
        pp.preprocess_dataset("quora", SAMPLE / "quora", tmp_path, settings)


def test_quora_split_sizes_may_name_train_as_null(tmp_path):
    stats = _run("quora", tmp_path, split_sizes={"train": None, "valid": 10, "test": 20})
    assert stats["splits"]["valid"] == 10 and stats["splits"]["test"] == 20


def test_cli(tmp_path, capsys):
    settings = json.dumps({**SETTINGS["ptb"], "max_examples": {"train": 10}})
    report = tmp_path / "download.json"
    report.write_text(
        json.dumps(
            {"files": [{"name": raw.PTB_ARCHIVE, "sha256": "ab" * 32, "pinned": False, "bytes": 1, "url": "file:x"}]}
        )
    )
    assert (
        pp.main(
            [
                "--dataset",
                "ptb",
                "--raw",
                str(SAMPLE / "ptb"),
                "--out",
                str(tmp_path),
                "--settings",
                settings,
                "--download-report",
                str(report),
            ]
        )
        == 0
    )
    assert "ptb: train=10 valid=200 test=200" in capsys.readouterr().out
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["raw_files"] == [{"name": raw.PTB_ARCHIVE, "sha256": "ab" * 32, "pinned": False}]
    assert stats["subsample"] == {
        "available": {"train": 1500, "valid": 200, "test": 200},
        "max_examples": {"train": 10, "valid": None, "test": None},
        "max_length": {"train": None, "valid": None, "test": None},
        "seed": 0,
    }
    report.write_text("{}")
    assert (
        pp.main(
            [
                "--dataset",
                "ptb",
                "--raw",
                str(SAMPLE / "ptb"),
                "--out",
                str(tmp_path / "y"),
                "--settings",
                settings,
                "--download-report",
                str(report),
            ]
        )
        == 1
    )
    assert "not a download report" in capsys.readouterr().err
    assert (
        pp.main(["--dataset", "ptb", "--raw", str(tmp_path), "--out", str(tmp_path / "x"), "--settings", settings]) == 1
    )
    assert "error:" in capsys.readouterr().err


# --- latent structure ------------------------------------------------------------------------------

POSITIVE = {
    "amazing",
    "outstanding",
    "fantastic",
    "excellent",
    "incredible",
    "perfect",
    "superb",
    "friendly",
    "helpful",
    "recommend",
    "definitely",
}
NEGATIVE = {"terrible", "horrible", "awful", "rude", "worst", "disappointing", "mediocre", "bland", "avoid"}


def test_yelp_sentiment_follows_the_label():
    _, lines = raw.read_he2019(SAMPLE / "yelp", "yelp", ["train"])["train"]
    counts = {label: Counter() for label in "01234"}
    for _, line in lines:
        label, text = line.split("\t")
        counts[label].update(text.split())

    def rate(label, words):
        return sum(counts[label][w] for w in words) / sum(counts[label].values())

    assert rate("4", POSITIVE) > 5 * rate("0", POSITIVE)
    assert rate("0", NEGATIVE) > 5 * rate("4", NEGATIVE)
    assert rate("4", POSITIVE) > rate("2", POSITIVE) > rate("0", POSITIVE)


def test_cnn_highlights_restate_article_facts(tmp_path):
    _run("cnn_dailymail", tmp_path)
    rows = read_jsonl(tmp_path / "train.jsonl")
    for row in rows:
        for number in re.findall(r"\d[\d,.]*\d|\d", row["target"]):
            assert number in row["source"], (number, row)
    names = sum(bool(set(re.findall(r"\b[A-Z][a-z]+\b", r["target"])) & set(r["source"].split())) for r in rows)
    assert names == len(rows)


def test_yahoo_topics_are_separable():
    """Each document's words point to one topic: nouns of two topics rarely meet in one line."""
    from tools.sample_generator.yahoo import YAHOO_TOPICS

    noun_topic = {}
    for topic, spec in YAHOO_TOPICS.items():
        for noun in spec.nouns:
            if " " not in noun:
                noun_topic.setdefault(noun, set()).add(topic)
    _, lines = raw.read_he2019(SAMPLE / "yahoo", "yahoo", ["valid"])["valid"]
    pure = 0
    for _, line in lines:
        topics = Counter(t for w in line.split() for t in noun_topic.get(w, ()))
        pure += bool(topics) and topics.most_common(1)[0][1] >= 0.8 * sum(topics.values())
    assert pure > 0.8 * len(lines)


def test_quora_duplicates_are_closer_than_non_duplicates():
    _, rows = raw.read_quora(SAMPLE / "quora")

    def overlap(row):
        a, b = (set(re.findall(r"\w+", row[q].lower())) for q in ("question1", "question2"))
        return len(a & b) / max(1, len(a | b))

    def mean(values):
        return sum(values) / len(values)

    duplicates = [overlap(r) for _, r in rows if r["is_duplicate"] == "1"]
    others = [overlap(r) for _, r in rows if r["is_duplicate"] == "0" and r["question2"]]
    assert mean(duplicates) > mean(others) > 0.1  # non-duplicates still share the topic
