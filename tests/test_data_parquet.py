"""The third layout of a dataset under data_root: a Hugging Face parquet copy (PTB, SNLI, CNN/DM
3.0.0, Quora). It gives the records the archives give, is recorded by the SHA-256 of its files,
and a broken copy stops with one line naming the file and column.

The copies are built here, in the Hub's schemas and file layouts, from the shipped sample data
the way the Hub's builders built them from the real downloads: PTB's lines stripped, SNLI from the
``.txt`` files (not the ``.jsonl`` the pipeline reads) with ``-`` as label -1, CNN/DM's stories
in the builder's order (CNN then Daily Mail, each sorted by id) without the empty ones, Quora's
questions as a struct of lists without the row id."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from della.data import download as dl
from della.data import hf_parquet, raw
from della.data import preprocess as pp
from della.data.download import DownloadError
from della.data.raw import DataFormatError

from helpers import ROOT
from helpers.data import SAMPLE, SETTINGS, SOURCES, prepare, read_jsonl, sha256sum_of

PARQUET_DATASETS = ("ptb", "snli", "cnn_dailymail", "quora")
SNLI_CLASSES = ("entailment", "neutral", "contradiction")

PTB_SCHEMA = pa.schema([("sentence", pa.string())])
SNLI_SCHEMA = pa.schema([("premise", pa.string()), ("hypothesis", pa.string()), ("label", pa.int64())])
CNN_SCHEMA = pa.schema([("article", pa.string()), ("highlights", pa.string()), ("id", pa.string())])
QUORA_SCHEMA = pa.schema(
    [
        ("questions", pa.struct([("id", pa.list_(pa.int32())), ("text", pa.list_(pa.string()))])),
        ("is_duplicate", pa.bool_()),
    ]
)


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


def ptb_copy(raw_dir: Path) -> None:
    """ptb_text_only as refs/convert/parquet lays it out: ``penn_treebank/{split}/0000.parquet``."""
    for split, (_, lines) in raw.read_ptb(SAMPLE / "ptb", pp.SPLITS).items():
        write_parquet(
            raw_dir / "penn_treebank" / hf_parquet.HF_SPLITS[split] / "0000.parquet",
            [{"sentence": line.strip()} for _, line in lines],
            PTB_SCHEMA,
        )


def snli_copy(raw_dir: Path) -> None:
    """stanfordnlp/snli from ``snli_1.0_{split}.txt``, read as its builder reads it."""
    for split, file_split in pp.SNLI_FILE_SPLITS.items():
        member = f"snli_1.0/snli_1.0_{file_split}.txt"
        text = raw.Packed(SAMPLE / "snli", raw.SNLI_ARCHIVE).read([member])[member].decode("utf-8")
        rows = [
            {
                "premise": row["sentence1"],
                "hypothesis": row["sentence2"],
                "label": -1 if row["gold_label"] == "-" else SNLI_CLASSES.index(row["gold_label"]),
            }
            for row in csv.DictReader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
        ]
        write_parquet(
            raw_dir / "plain_text" / f"{hf_parquet.HF_SPLITS[split]}-00000-of-00001.parquet", rows, SNLI_SCHEMA
        )


def cnn_dm_rows(split: str) -> list[dict]:
    """abisee/cnn_dailymail 3.0.0's rows of ``split`` in its builder's order."""
    sample = SAMPLE / "cnn_dailymail"
    _, urls = raw.read_cnn_dm_url_list(sample, pp.CNN_DM_FILE_SPLITS[split])
    ids = {hashlib.sha1(url.encode("utf-8")).hexdigest() for _, url in urls}
    rows = []
    for archive, folder in raw.CNN_DM_ARCHIVES.values():
        stories = sorted(raw.Packed(sample, archive).iter_folder(folder, lambda name: name.endswith(".story")))
        for name, data in stories:
            story_id = Path(name).stem
            if story_id in ids:
                article, highlights = pp._story_to_example(data.decode("utf-8").split("\n"))
                if article and highlights:
                    rows.append({"article": article, "highlights": highlights, "id": story_id})
    return rows


def cnn_dm_copy(raw_dir: Path, shuffle: int | None = None) -> None:
    """``3.0.0/{split}-0000k-of-0000n.parquet`` (train in two shards) beside the url lists, which
    the copy does not replace. ``shuffle``: rows in a seeded random order instead."""
    shutil.copytree(SAMPLE / "cnn_dailymail" / "url_lists", raw_dir / "url_lists")
    for split, hf_split in hf_parquet.HF_SPLITS.items():
        rows = cnn_dm_rows(split)
        if shuffle is not None:
            random.Random(shuffle).shuffle(rows)
        shards = 2 if split == "train" else 1
        for k in range(shards):
            write_parquet(
                raw_dir / "3.0.0" / f"{hf_split}-{k:05d}-of-{shards:05d}.parquet", rows[k::shards], CNN_SCHEMA
            )


def quora_copy(raw_dir: Path) -> None:
    _, rows = raw.read_quora(SAMPLE / "quora")
    write_parquet(
        raw_dir / "default" / "train" / "0000.parquet",
        [
            {
                "questions": {"id": [int(row["qid1"]), int(row["qid2"])], "text": [row["question1"], row["question2"]]},
                "is_duplicate": row["is_duplicate"] == "1",
            }
            for _, row in rows
        ],
        QUORA_SCHEMA,
    )


BUILD = {"ptb": ptb_copy, "snli": snli_copy, "cnn_dailymail": cnn_dm_copy, "quora": quora_copy}
FOLDERS = {"ptb": "penn_treebank", "snli": "plain_text", "cnn_dailymail": "3.0.0", "quora": "default"}


@pytest.fixture(scope="module")
def hf_root(tmp_path_factory) -> Path:
    """A data_root holding only the Hugging Face copies (and CNN/DM's url lists)."""
    root = tmp_path_factory.mktemp("hf")
    for dataset, build in BUILD.items():
        build(root / dataset)
    return root


@pytest.mark.parametrize("dataset", PARQUET_DATASETS)
def test_a_hugging_face_copy_gives_the_records_of_the_archives(hf_root, dataset, tmp_path):
    (archive_report, archive_stats), (hf_report, hf_stats) = (
        prepare(dataset, root, tmp_path / name) for name, root in (("archives", SAMPLE), ("hf", hf_root))
    )
    for split in pp.SPLITS:
        from_archives, from_hf = (
            read_jsonl(tmp_path / name / "data" / f"{split}.jsonl") for name in ("archives", "hf")
        )
        # The same records in the same order (CNN/DM's rows put back in url-list order).
        assert from_archives and from_archives == from_hf, (dataset, split)
    skipped_archives, skipped_hf = archive_stats.pop("skipped"), hf_stats.pop("skipped")
    if dataset == "cnn_dailymail":  # the copy leaves out the empty stories the archives' layout counts
        assert skipped_hf == {
            pp.NOT_IN_HF_COPY: skipped_archives.pop("empty_article", 0) + skipped_archives.pop("empty_highlights", 0)
        }
        assert skipped_hf[pp.NOT_IN_HF_COPY] > 0
    else:
        assert skipped_hf == skipped_archives
    assert {**archive_stats, "raw_files": None} == {**hf_stats, "raw_files": None}
    parquet = [record for record in hf_report["files"] if record["layout"] == "parquet"]
    assert len(parquet) == 1  # CNN/DM's two story archives: one copy, one record
    copy = next(c for c in hf_parquet.HF_COPIES if c.folder == FOLDERS[dataset])
    assert parquet[0]["sha256"] == sha256sum_of(hf_root / dataset, [copy.folder])
    assert not parquet[0]["pinned"] and parquet[0]["replaces"] == list(copy.replaces)
    assert [f["layout"] for f in hf_stats["raw_files"]] == [f["layout"] for f in hf_report["files"]]
    others = [record for record in hf_report["files"] if record["layout"] != "parquet"]
    assert [r["name"] for r in others] == [
        f["name"] for f in SOURCES[dataset]["files"] if f["name"] not in copy.replaces
    ]


def test_cnn_dm_records_do_not_depend_on_the_copys_row_order(tmp_path):
    cnn_dm_copy(tmp_path / "cnn_dailymail", shuffle=7)
    settings = {**SETTINGS["cnn_dailymail"], "max_examples": {"train": 5}}
    pp.preprocess_dataset("cnn_dailymail", tmp_path / "cnn_dailymail", tmp_path / "hf", settings)
    pp.preprocess_dataset("cnn_dailymail", SAMPLE / "cnn_dailymail", tmp_path / "archives", settings)
    for split in pp.SPLITS:
        assert read_jsonl(tmp_path / "hf" / f"{split}.jsonl") == read_jsonl(tmp_path / "archives" / f"{split}.jsonl")


def test_quora_split_ids_are_the_copys_row_positions(hf_root, tmp_path):
    """The copy drops the TSV's id column; the row's position is that id (0, 1, ... in both)."""
    _, rows = raw.read_quora(SAMPLE / "quora")
    duplicates = [
        row["id"]
        for _, row in rows
        if row["is_duplicate"] == "1" and row["question1"].strip() and row["question2"].strip()
    ]
    (tmp_path / "valid.txt").write_text("\n".join(duplicates[3:8]) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(duplicates[-4:]) + "\n")
    settings = {
        "format": "quora_qqp",
        "task": "conditional",
        "split_ids": {"valid": str(tmp_path / "valid.txt"), "test": str(tmp_path / "test.txt")},
    }
    for name, raw_dir in (("tsv", SAMPLE / "quora"), ("hf", hf_root / "quora")):
        pp.preprocess_dataset("quora", raw_dir, tmp_path / name, settings)
    for split in pp.SPLITS:
        assert read_jsonl(tmp_path / "tsv" / f"{split}.jsonl") == read_jsonl(tmp_path / "hf" / f"{split}.jsonl")


def test_the_originals_are_read_wherever_they_are_there(hf_root, tmp_path):
    """Archive, extracted files and copy side by side: the archive; a partly extracted archive
    beside a copy is still an error naming the missing member, not a silent switch to the copy."""
    raw_dir = tmp_path / "ptb"
    shutil.copytree(hf_root / "ptb", raw_dir)
    shutil.copy(SAMPLE / "ptb" / raw.PTB_ARCHIVE, raw_dir)
    spec = dl.SourceFile.from_config(SOURCES["ptb"]["files"][0])
    assert dl.locate(raw_dir, spec) == "archive" and hf_parquet.copy_in(raw_dir, raw.PTB_ARCHIVE) is None
    (raw_dir / raw.PTB_ARCHIVE).unlink()
    (raw_dir / "simple-examples" / "data").mkdir(parents=True)
    (raw_dir / "simple-examples" / "data" / "ptb.train.txt").write_text(" a b \n")
    with pytest.raises(
        DownloadError, match=r"ptb\.valid\.txt: not found, and no .*simple-examples\.tgz: the other members"
    ):
        dl.locate(raw_dir, spec)


def test_a_copy_of_a_dataset_without_an_accepted_one_is_named_and_not_read(tmp_path):
    """Yelp on the Hub (yelp_review_full) is Zhang et al.'s text, not He et al.'s: not read."""
    raw_dir = tmp_path / "yelp"
    write_parquet(raw_dir / "yelp_review_full" / "train-00000-of-00001.parquet", [{"sentence": "x"}], PTB_SCHEMA)
    with pytest.raises(
        DownloadError,
        match=r"datasets\.tar\.gz: not found, nor its extracted members .*; the "
        r"parquet files there are not read: no Hugging Face copy stands in for this file",
    ):
        dl.locate(raw_dir, dl.SourceFile.from_config(SOURCES["yelp"]["files"][0]))


# --- a broken copy: one line naming the file and the column -------------------------------------


def broken_snli(raw_dir: Path, how: str) -> Path:
    """The SNLI copy with its test file broken ``how``; returns that file."""
    snli_copy(raw_dir)
    path = raw_dir / "plain_text" / "test-00000-of-00001.parquet"
    table = pq.read_table(path)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif how == "missing column":
        pq.write_table(table.drop_columns(["hypothesis"]), path)
    elif how == "wrong type":
        pq.write_table(table.set_column(2, "label", table["label"].cast(pa.string())), path)
    elif how == "null":
        premises = table["premise"].to_pylist()
        premises[4] = None
        pq.write_table(table.set_column(0, "premise", pa.array(premises, pa.string())), path)
    elif how == "bad label":
        labels = table["label"].to_pylist()
        labels[1] = 3
        pq.write_table(table.set_column(2, "label", pa.array(labels, pa.int64())), path)
    return path


@pytest.mark.parametrize(
    "how, message",
    [
        ("truncated", r"not a readable parquet file \(ArrowInvalid: .*\)"),
        (
            "missing column",
            r"no column 'hypothesis' \(it has premise, label; stanfordnlp/snli has premise, hypothesis, label\)",
        ),
        ("wrong type", r"column 'label' is string, expected integer \(stanfordnlp/snli\)"),
        ("null", r"row 5: column 'premise' is null"),
        ("bad label", r"row 2: column 'label' is 3, expected one of 0, 1, 2, -1"),
    ],
)
def test_a_broken_copy_names_the_file_and_column(tmp_path, capsys, how, message):
    path = broken_snli(tmp_path / "snli", how)
    out = tmp_path / "out"
    argv = [
        "--dataset",
        "snli",
        "--raw",
        str(tmp_path / "snli"),
        "--out",
        str(out),
        "--settings",
        '{"format": "snli_1.0", "task": "unconditional"}',
    ]
    assert pp.main(argv) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith(f"error: {path}: "), error
    assert re.search(message, error), error
    assert not out.exists()  # nothing written
    if how in ("truncated", "missing column", "wrong type"):  # what the download rule checks: the schema
        with pytest.raises(DownloadError, match=rf"^{path}: {message}"):
            dl.verify_parquet(tmp_path / "snli", hf_parquet.HF_COPIES[1])


def test_a_missing_split_names_the_folder(hf_root, tmp_path):
    raw_dir = tmp_path / "cnn_dailymail"
    shutil.copytree(hf_root / "cnn_dailymail", raw_dir)
    for path in (raw_dir / "3.0.0").glob("validation-*"):
        path.unlink()
    with pytest.raises(DataFormatError, match=rf"^{raw_dir / '3.0.0'}: no parquet file of split validation"):
        pp.preprocess_dataset("cnn_dailymail", raw_dir, tmp_path / "out", SETTINGS["cnn_dailymail"])
    with pytest.raises(DownloadError, match=rf"^{raw_dir / '3.0.0'}: no parquet file of split validation"):
        dl.download_dataset(
            "cnn_dailymail", SOURCES["cnn_dailymail"], tmp_path / "raw", tmp_path / "r.json", ROOT, data_root=tmp_path
        )


def test_a_cnn_dm_row_of_another_split_is_named(hf_root, tmp_path):
    raw_dir = tmp_path / "cnn_dailymail"
    shutil.copytree(hf_root / "cnn_dailymail", raw_dir)
    test_file = raw_dir / "3.0.0" / "test-00000-of-00001.parquet"
    train_row = cnn_dm_rows("train")[0]
    write_parquet(test_file, cnn_dm_rows("test") + [train_row], CNN_SCHEMA)
    row = len(cnn_dm_rows("test")) + 1
    with pytest.raises(
        DataFormatError,
        match=rf"^{test_file}: row {row}: story {train_row['id']} is not in the test "
        rf"split's url list .*all_test\.txt$",
    ):
        pp.preprocess_dataset("cnn_dailymail", raw_dir, tmp_path / "out", SETTINGS["cnn_dailymail"])


def test_the_cnn_dm_copy_still_needs_the_url_lists(hf_root, tmp_path):
    """The url lists give the split order the seeded subsample depends on; the copy has none."""
    raw_dir = tmp_path / "cnn_dailymail"
    shutil.copytree(hf_root / "cnn_dailymail", raw_dir)
    shutil.rmtree(raw_dir / "url_lists")
    url_list = raw_dir / "url_lists" / "all_train.txt"
    with pytest.raises(DownloadError, match=rf"^{url_list}: not found; the parquet files there are not read"):
        dl.download_dataset(
            "cnn_dailymail", SOURCES["cnn_dailymail"], tmp_path / "raw", tmp_path / "r.json", ROOT, data_root=tmp_path
        )
    with pytest.raises(DataFormatError, match=rf"^{url_list}: file not found$"):
        pp.preprocess_dataset("cnn_dailymail", raw_dir, tmp_path / "out", SETTINGS["cnn_dailymail"])
