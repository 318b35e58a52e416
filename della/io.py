"""Atomic writes and provenance: an interrupted job never leaves a complete-looking file."""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

# Packages whose versions can change a reported number; recorded in every metrics.json.
PROVENANCE_PACKAGES = (
    "della-bench",
    "torch",
    "transformers",
    "tokenizers",
    "numpy",
    "sacrebleu",
    "rouge-score",
    "nltk",
    "bert-score",
    "mauve-text",
    "faiss-cpu",
    "scikit-learn",
)

# Each test sentence's numbers, written by della/run/evaluate.py beside metrics.json, read by
# della/report/findings.py for its paired comparisons over sentences
PER_SENTENCE_FILE = "per_sentence.csv"
#: A run's folder, relative to the workflow's directory; the workflow's wildcards are these names.
RUN_DIR = "runs/{dataset}/{model}/seed{seed}"


def run_dir(dataset: str, model: str, seed: int | str) -> str:
    return RUN_DIR.format(dataset=dataset, model=model, seed=seed)


def run_path_pattern(filename: str = r"[^/]+") -> re.Pattern[str]:
    """A file of a run's folder anywhere in a longer path (`filename`: a regular expression), its
    dataset, model and seed as named groups: the inverse of RUN_DIR."""
    fields = {"dataset": r"(?P<dataset>[^/]+)", "model": r"(?P<model>[^/]+)", "seed": r"(?P<seed>\d+)"}
    return re.compile(r"(?:^|/)" + RUN_DIR.format(**fields) + "/" + filename + "$")


def _atomic(path: Path, write) -> None:
    """Write to a hidden temporary file beside `path`, then rename it over `path`.

    Whatever goes wrong (a kill, a full disk), `path` is either its old complete self or the new
    complete file, and no partial file is left under a name that looks finished.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        full = _disk_full(error)
        if full is not None:
            kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
            raise OSError(full.errno, f"disk full while writing {path} ({full.strerror}); {kept}") from error
        raise


def _disk_full(error: BaseException | None) -> OSError | None:
    """The ENOSPC/EDQUOT behind `error`, if any: torch.save's zip writer, for one, reports a failed
    write as an unrelated RuntimeError raised while handling the OSError."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


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


def keep_previous(path: Path, previous: Path) -> None:
    """Make `previous` a copy of `path` (a hard link where the file system allows: no extra space),
    so that a file about to be replaced survives as the last good version."""
    if not path.exists():
        return
    staging = previous.with_name(f".{previous.name}.partial")
    staging.unlink(missing_ok=True)
    try:
        try:
            os.link(path, staging)
        except OSError:
            shutil.copy2(path, staging)
        os.replace(staging, previous)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def provenance(device=None, hub_models: dict | None = None) -> dict:
    """Versions of what produced a number, the pipeline's commit, the device (`device`, a
    torch.device, is the one the numbers were computed on; None: this machine's first GPU if any),
    whether TF32 matmuls were in effect there (della/run/numerics.py), and `hub_models` ({role: hub
    name@revision}: the pinned models behind the numbers, della/pipeline/prefetch.py)."""
    import torch

    from della.run.numerics import tf32_in_effect

    if device is None:
        device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")

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
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({platform.processor() or platform.machine()})",
        "tf32": tf32_in_effect(device),
        "hub_models": dict(hub_models or {}),
    }


def read_jsonl(path: Path, unusable=None, error: type[Exception] = ValueError, limit: int | None = None) -> list[dict]:
    """The objects of a JSON-lines file (the first `limit`). `unusable(row)` says what is wrong with
    a row (None: nothing); a bad line raises `error` naming the file and line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as cause:
                raise error(f"{path}:{number}: not a JSON object ({cause.msg})") from cause
            problem = "not a JSON object" if not isinstance(row, dict) else unusable and unusable(row)
            if problem:
                raise error(f"{path}:{number}: {problem}")
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    return rows
