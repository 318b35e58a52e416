"""Atomic writes and provenance: an interrupted job never leaves a complete-looking file."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

# Packages whose versions can change a reported number; recorded in every metrics.json.
PROVENANCE_PACKAGES = (
    "della-bench", "torch", "transformers", "tokenizers", "numpy", "sacrebleu", "rouge-score",
    "nltk", "bert-score", "mauve-text", "faiss-cpu", "scikit-learn",
)


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    _atomic(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic(Path(path), lambda handle: handle.write(data))


def atomic_write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def atomic_write_jsonl(path: Path, rows) -> None:
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def torch_save_atomic(obj, path: Path) -> None:
    import torch  # imported here so that the table and data stages do not pay for it

    _atomic(Path(path), lambda handle: torch.save(obj, handle))


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def provenance() -> dict:
    """Versions of what produced a number, the pipeline's commit and the device."""
    import torch

    versions = {}
    for name in PROVENANCE_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "python": platform.python_version(),
        "git_commit": git_commit(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor() or platform.machine()})",
    }
