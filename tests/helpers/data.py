"""Building raw datasets in tests: archives, the shipped sample data extracted, preprocessing settings."""

from __future__ import annotations

import gzip
import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

from della.data import download as dl
from della.data import preprocess as pp
from della.pipeline import overlays

from helpers import ROOT

#: The sample-scale settings of each dataset (what the config's datasets section holds).
SETTINGS = {
    "yelp": {"format": "yelp_he2019", "task": "unconditional", "factors": True},
    "yahoo": {"format": "yahoo_he2019", "task": "unconditional", "factors": True},
    "ptb": {"format": "ptb_mikolov", "task": "unconditional"},
    "snli": {"format": "snli_1.0", "task": "unconditional"},
    "cnn_dailymail": {"format": "cnn_dailymail_see2017", "task": "conditional"},
    "writingprompts": {"format": "writingprompts_fan2018", "task": "conditional", "max_length": 700},
    "quora": {"format": "quora_qqp", "task": "conditional", "split_sizes": {"valid": 100, "test": 100}},
}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return path


SAMPLE = ROOT / "sample_data"


SOURCES = {name: section["source"] for name, section in overlays.load("config/config.yaml")["datasets"].items()}


TAR_SUFFIXES, ZIP_SUFFIX = (".tgz", ".tar.gz"), ".zip"


def extract_everything(archive_root: Path, tree_root: Path) -> None:
    """What someone who unpacked every download where it lay (and deleted the archives) has."""
    for path in sorted(p for p in archive_root.rglob("*") if p.is_file()):
        target = tree_root / path.parent.relative_to(archive_root)
        target.mkdir(parents=True, exist_ok=True)
        if path.name.endswith(TAR_SUFFIXES):
            with tarfile.open(path) as tar:
                tar.extractall(target, filter="data")
        elif path.name.endswith(ZIP_SUFFIX):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(target)
        else:
            shutil.copy(path, target)


def extracted_sample(root: Path) -> Path:
    """The sample data of every dataset of the sample config, extracted into ``root/<dataset>/``."""
    for dataset in SOURCES:
        extract_everything(SAMPLE / dataset, root / dataset)
    return root


def sha256sum_of(root: Path, members: list[str]) -> str:
    """The documented recipe for the digest of an extracted tree, run with coreutils."""
    paths = " ".join(shlex.quote(os.path.normpath(m)) for m in members)
    command = f"find {paths} -type f | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    return subprocess.run(["bash", "-c", command], cwd=root, check=True, capture_output=True, text=True).stdout.split()[
        0
    ]


def prepare(dataset: str, data_root: Path, work: Path) -> tuple[dict, dict]:
    """The download rule (verify data_root) then preprocessing: ``(report, stats)``."""
    report = dl.download_dataset(
        dataset, SOURCES[dataset], work / "raw", work / "download.json", ROOT, data_root=data_root
    )
    stats = pp.preprocess_dataset(
        dataset, data_root / dataset, work / "data", SETTINGS[dataset], work / "download.json"
    )
    return report, stats
