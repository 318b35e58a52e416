"""The two layouts of a dataset under data_root: its archives as downloaded, or their members
extracted long ago (``yelp_data/yelp.train.txt``, ``cnn/stories/*.story``, ...). Both give the same
records, and each is recorded by a SHA-256: the archive's, or the digest of the extracted tree.

The archives are the shipped sample data (sample_data/, written by tools/sample_generator/
in the seven datasets' real file names, archive layouts and formats); the extracted layout is
what unpacking them here with the standard library leaves."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from della.data import download as dl
from della.data import preprocess as pp
from della.data import raw
from della.data.download import DownloadError
from della.data.raw import DataFormatError

from helpers import ROOT
from helpers.data import SAMPLE, SETTINGS, SOURCES, extracted_sample, prepare, read_jsonl, sha256sum_of, tar_gz


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    """``{"archives": root, "extracted": root}``, each with one folder per dataset."""
    return {"archives": SAMPLE, "extracted": extracted_sample(tmp_path_factory.mktemp("extracted"))}


@pytest.mark.parametrize("dataset", list(SOURCES))
def test_archives_and_extracted_files_give_the_same_records(layouts, dataset, tmp_path):
    results = {name: prepare(dataset, root, tmp_path / name) for name, root in layouts.items()}
    for split in pp.SPLITS:
        from_archives, from_extracted = (read_jsonl(tmp_path / name / "data" / f"{split}.jsonl") for name in layouts)
        assert from_archives and from_archives == from_extracted, (dataset, split)
    (_, archive_stats), (_, extracted_stats) = results.values()
    assert {**archive_stats, "raw_files": None} == {**extracted_stats, "raw_files": None}
    archive_report, extracted_report = (report for report, _ in results.values())
    for entry, from_archive, from_extracted in zip(
        SOURCES[dataset]["files"], archive_report["files"], extracted_report["files"], strict=True
    ):
        packed = entry["archive"] != "none"
        assert from_archive["layout"] == ("archive" if packed else "file")
        assert from_extracted["layout"] == ("extracted" if packed else "file")
        if packed:
            assert from_extracted["sha256"] == sha256sum_of(layouts["extracted"] / dataset, entry["members"])
            assert from_archive["pinned"] and not from_extracted["pinned"]
        else:
            assert from_extracted == from_archive
    assert [f["layout"] for f in extracted_stats["raw_files"]] == [f["layout"] for f in extracted_report["files"]]


def yelp_tree(root: Path) -> Path:
    """A small extracted Yelp (label, TAB, text) without the archive: ``root/yelp``."""
    for split in pp.SPLITS:
        for member, content in (
            (f"yelp_data/yelp.{split}.txt", b"4\tgood food .\n"),
            (f"yelp_data/yelp.{split}.factors.jsonl", b'{"business": "bar"}\n'),
        ):
            (root / "yelp" / member).parent.mkdir(parents=True, exist_ok=True)
            (root / "yelp" / member).write_bytes(content)
    return root / "yelp"


def test_a_partly_extracted_archive_names_the_missing_file(tmp_path):
    raw_dir = yelp_tree(tmp_path / "root")
    (raw_dir / "yelp_data" / "yelp.valid.txt").unlink()
    missing = raw_dir / "yelp_data" / "yelp.valid.txt"
    with pytest.raises(DownloadError, match=rf"^{missing}: not found, and no {raw_dir / raw.HE2019_ARCHIVE}"):
        dl.download_dataset(
            "yelp", SOURCES["yelp"], tmp_path / "raw", tmp_path / "r.json", ROOT, data_root=tmp_path / "root"
        )
    with pytest.raises(
        DataFormatError,
        match=rf"^{missing}: file not found, and no archive "
        rf"{raw_dir / raw.HE2019_ARCHIVE}",
    ):
        pp.preprocess_dataset("yelp", raw_dir, tmp_path / "out", SETTINGS["yelp"])


def test_neither_layout_names_the_archive_and_a_member(tmp_path):
    (tmp_path / "root" / "ptb").mkdir(parents=True)
    archive, member = tmp_path / "root" / "ptb" / raw.PTB_ARCHIVE, "simple-examples/data/ptb.train.txt"
    with pytest.raises(
        DownloadError,
        match=rf"^{archive}: not found, nor its extracted members "
        rf"\(e\.g\. {tmp_path / 'root' / 'ptb' / member}\)",
    ):
        dl.locate(tmp_path / "root" / "ptb", dl.SourceFile.from_config(SOURCES["ptb"]["files"][0]))


def test_an_extracted_file_is_named_with_its_line(tmp_path):
    raw_dir = yelp_tree(tmp_path / "root")
    (raw_dir / "yelp_data" / "yelp.test.txt").write_bytes(b"4\tgood .\n2\tcaf\xe9 .\n")
    with pytest.raises(DataFormatError, match=rf"^{raw_dir / 'yelp_data' / 'yelp.test.txt'}:2: not valid UTF-8"):
        pp.preprocess_dataset("yelp", raw_dir, tmp_path / "out", SETTINGS["yelp"])


def test_the_archive_is_read_when_both_layouts_are_there(tmp_path):
    raw_dir = yelp_tree(tmp_path / "root")
    tar_gz(
        raw_dir / raw.HE2019_ARCHIVE,
        {
            member.relative_to(raw_dir).as_posix(): b"0\tfrom the archive .\n"
            for member in (raw_dir / "yelp_data").glob("*.txt")
        }
        | {
            member.relative_to(raw_dir).as_posix(): b'{"business": "gym"}\n'
            for member in (raw_dir / "yelp_data").glob("*.jsonl")
        },
    )
    pp.preprocess_dataset("yelp", raw_dir, tmp_path / "out", SETTINGS["yelp"])
    assert read_jsonl(tmp_path / "out" / "train.jsonl") == [
        {"text": "from the archive .", pp.LABELS_KEY: {"business": "gym", "review_label": 0}}
    ]
    report = dl.download_dataset(
        "yelp",
        {**SOURCES["yelp"], "files": [{**SOURCES["yelp"]["files"][0], "sha256": None}]},
        tmp_path / "raw",
        tmp_path / "r.json",
        ROOT,
        data_root=tmp_path / "root",
    )
    assert [f["layout"] for f in report["files"]] == ["archive"]


def test_a_story_missing_from_the_extracted_folders_names_them(layouts, tmp_path):
    raw_dir = tmp_path / "cnn_dailymail"
    shutil.copytree(layouts["extracted"] / "cnn_dailymail", raw_dir)
    first_url = (raw_dir / "url_lists" / "all_val.txt").read_text().split()[0]
    story = raw_dir / "dailymail" / "stories" / f"{hashlib.sha1(first_url.encode()).hexdigest()}.story"
    if not story.exists():
        story = raw_dir / "cnn" / "stories" / story.name
    story.unlink()
    folders = f"{raw_dir / 'cnn' / 'stories'} or {raw_dir / 'dailymail' / 'stories'}"
    with pytest.raises(DataFormatError, match=rf"all_val\.txt:1: no story {story.stem}\.story in {folders}$"):
        pp.preprocess_dataset("cnn_dailymail", raw_dir, tmp_path / "out", SETTINGS["cnn_dailymail"])


def test_an_empty_extracted_folder_is_an_error(tmp_path):
    raw_dir = tmp_path / "root" / "cnn_dailymail"
    (raw_dir / "cnn" / "stories").mkdir(parents=True)
    spec = dl.SourceFile.from_config(SOURCES["cnn_dailymail"]["files"][0])
    with pytest.raises(DownloadError, match=rf"^{raw_dir / 'cnn' / 'stories'}: an empty folder"):
        dl.verify_extracted(raw_dir, spec)


def test_stats_record_the_layout_of_each_raw_file(tmp_path):
    report = tmp_path / "download.json"
    report.write_text(
        json.dumps(
            {
                "files": [
                    {
                        "name": raw.PTB_ARCHIVE,
                        "sha256": "ab" * 32,
                        "pinned": False,
                        "layout": "extracted",
                        "bytes": 3,
                        "files": 3,
                        "url": "file:x",
                    }
                ]
            }
        )
    )
    stats = pp.preprocess_dataset("ptb", ROOT / "sample_data" / "ptb", tmp_path / "out", SETTINGS["ptb"], report)
    assert stats["raw_files"] == [
        {"name": raw.PTB_ARCHIVE, "sha256": "ab" * 32, "pinned": False, "layout": "extracted"}
    ]
