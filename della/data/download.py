"""Fetch a dataset's raw files from the sources its config lists, resumably and verified.

One dataset's ``source:`` section (config/schema.yaml ``$defs/source``) names its files::

    source:
      citation: ...            # who to cite, shown in docs/data.md and the download report
      licence: ...
      homepage: ...
      files:
        - name: datasets.tar.gz            # the file name on disk (what della/data/raw.py opens)
          url: https://...                 # http(s)://, file:///abs/path or file:rel/path
          sha256: null | <64 hex digits>   # null: not pinned yet (warning; see docs/data.md)
          archive: tar | zip | gz | none   # how to check it is complete (and how to extract it)
          members: [yelp_data/yelp.train.txt, ...]   # must be inside the archive
          extract: false                   # true: also unpack it beside the archive

A ``file:`` URL with a relative path is relative to ``--base-dir`` (the repository root), which
is how the sample config points this same code at the archives shipped in ``sample_data/``.

For every file: an existing verified copy is kept; otherwise the bytes go to ``<name>.part``,
resuming from what a previous attempt left there (HTTP ``Range``; an offset into a ``file:``
source), with a tqdm progress bar and retries with exponential backoff on transient errors.
The finished ``.part`` is verified (size, SHA-256 when pinned, the whole archive read through so
that a truncated or corrupt archive cannot pass, the listed members present) and only then
renamed to ``<name>``; a file that fails is moved to ``<name>.corrupt`` and the run stops with an
error naming it. When every file is done, the download report (``--report``, the workflow's
completion marker) is written atomically: the computed checksums, whether they were pinned,
sizes, source and licence.

``--data-root DIR`` reads ``DIR/<dataset>/<name>`` as it is (clusters whose nodes have no
internet): nothing is downloaded, written or moved there; the files are verified the same way
and a missing or bad file is an error. There an archive (tar or zip with ``members``) may also be
present as its extracted layout, each member a file (or a folder of files) under
``DIR/<dataset>/``: the archive is used when it is there, else its extracted files, whose
record's ``sha256`` is the tree digest (:func:`tree_digest`) and ``layout`` is ``extracted``.
Where neither is there, a Hugging Face parquet copy that holds the same records
(:mod:`della.data.hf_parquet`) stands in for the files it replaces: one record for the copy,
``layout`` ``parquet``, ``sha256`` the tree digest of its parquet files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import logging
import os
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from della.data import hf_parquet
from della.data.raw import DataFormatError
from della.io import atomic_write_json

__all__ = [
    "DownloadError",
    "SourceFile",
    "Retry",
    "check_data_root",
    "download_dataset",
    "locate",
    "main",
    "sha256_file",
    "tree_digest",
    "verify_extracted",
    "verify_file",
    "verify_parquet",
]

log = logging.getLogger("della.download")

ARCHIVE_KINDS = ("tar", "zip", "gz", "none")
#: Archive kinds whose listed members may be on disk extracted instead (data_root only).
EXTRACTABLE_KINDS = ("tar", "zip")
#: How a file of a source is present: the archive itself, a plain file, the archive's members
#: extracted, or a Hugging Face parquet copy of its records.
LAYOUT_ARCHIVE, LAYOUT_FILE, LAYOUT_EXTRACTED, LAYOUT_PARQUET = "archive", "file", "extracted", "parquet"
PART_SUFFIX = ".part"
CORRUPT_SUFFIX = ".corrupt"
CHUNK_BYTES = 1 << 20
USER_AGENT = "della-bench (https://github.com/OpenVLG/DELLA reproduction)"
#: HTTP statuses worth another try (the server is busy or timed out, not "no such file").
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: Seconds between tqdm refreshes: often enough on a terminal, few lines in a Snakemake log.
PROGRESS_INTERVAL_S = 2.0


class DownloadError(RuntimeError):
    """A file could not be fetched or failed verification; the message names the file."""


class _Transient(Exception):
    """A failed attempt that another attempt may fix (network drop, busy server)."""


@dataclass(frozen=True)
class SourceFile:
    name: str
    url: str
    sha256: str | None
    archive: str
    members: tuple[str, ...] = ()
    extract: bool = False
    pinned_by: str = "config"  # where `sha256` comes from: the config, or the lock file of a first download

    @classmethod
    def from_config(cls, entry: dict) -> SourceFile:
        unknown = set(entry) - {"name", "url", "sha256", "archive", "members", "extract"}
        if unknown:
            raise ValueError(f"source file {entry.get('name')!r}: unknown key(s) {sorted(unknown)}")
        missing = [key for key in ("name", "url", "sha256", "archive") if key not in entry]
        if missing:
            raise ValueError(f"source file {entry.get('name')!r}: missing key(s) {missing} (sha256 may be null)")
        archive = entry["archive"]
        if archive not in ARCHIVE_KINDS:
            raise ValueError(
                f"source file {entry.get('name')!r}: archive must be one of {ARCHIVE_KINDS}, got {archive!r}"
            )
        sha = entry.get("sha256")
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise ValueError(f"source file {entry.get('name')!r}: sha256 must be 64 lower-case hex digits or null")
        name = entry["name"]
        if os.path.isabs(name) or ".." in Path(name).parts:
            raise ValueError(f"source file name {name!r} must be a path inside the dataset's folder")
        return cls(name, entry["url"], sha, archive, tuple(entry.get("members", ())), bool(entry.get("extract", False)))


@dataclass(frozen=True)
class Retry:
    """How often and how patiently a failed transfer is tried again."""

    attempts: int = 5
    backoff_s: float = 2.0  # wait backoff_s * 2**(k-1) after the k-th failed attempt
    timeout_s: float = 60.0  # socket timeout of one request

    def wait(self, failures: int) -> float:
        return self.backoff_s * 2 ** (failures - 1)


# --- checks ------------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def _member_path(member: str) -> str:
    """A member's name without a ``./`` prefix or trailing slash (tar writes both)."""
    return os.path.normpath(member)


def _has_member(names: set[str], member: str) -> bool:
    """``member`` is one of the archive's names or a folder holding some of them (an archive need
    not list its folders)."""
    member = _member_path(member)
    return member in names or any(name.startswith(member + "/") for name in names)


def _archive_names(path: Path, kind: str) -> set[str]:
    """Read the whole archive (so a truncated or corrupt one fails here) and return its member
    names without a ``./`` prefix."""
    if kind == "tar":
        names = set()
        with tarfile.open(path, mode="r:*") as tar:
            for info in tar:
                names.add(_member_path(info.name))
                if info.isfile():
                    handle = tar.extractfile(info)
                    while handle.read(CHUNK_BYTES):
                        pass
        return names
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()  # reads every member and checks its CRC
            if bad is not None:
                raise zipfile.BadZipFile(f"bad CRC in member {bad}")
            return {_member_path(n) for n in archive.namelist()}
    if kind == "gz":
        with gzip.open(path, "rb") as handle:
            while handle.read(CHUNK_BYTES):
                pass
        return {path.name.removesuffix(".gz")}
    return set()


def verify_file(path: Path, spec: SourceFile, expected_bytes: int | None = None) -> dict:
    """Check one file; returns what the report records. Raises DownloadError naming ``path``."""
    size = path.stat().st_size
    if expected_bytes is not None and size != expected_bytes:
        raise DownloadError(f"{path}: truncated download ({size} of {expected_bytes} bytes from {spec.url})")
    digest = sha256_file(path)
    if spec.sha256 is not None and digest != spec.sha256:
        raise DownloadError(
            f"{path}: SHA-256 mismatch: expected {spec.sha256} ({spec.pinned_by}), got {digest} ({size} bytes)"
        )
    if spec.archive != "none":
        try:
            names = _archive_names(path, spec.archive)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
            raise DownloadError(
                f"{path}: truncated or corrupt {spec.archive} archive ({type(exc).__name__}: {exc})"
            ) from None
        missing = [m for m in spec.members if not _has_member(names, m)]
        if missing:
            raise DownloadError(f"{path}: archive lacks member(s) {', '.join(missing)}")
    layout = LAYOUT_FILE if spec.archive == "none" else LAYOUT_ARCHIVE
    return {
        "name": spec.name,
        "url": spec.url,
        "sha256": digest,
        "pinned": spec.sha256 is not None,
        "pinned_by": spec.pinned_by if spec.sha256 is not None else None,
        "bytes": size,
        "layout": layout,
    }


# --- the extracted layout (data_root) -------------------------------------------------------------


def locate(raw_dir: Path, spec: SourceFile) -> str:
    """Which layout of ``spec`` ``raw_dir`` holds, without reading it: the file itself
    (``archive`` or ``file``) or, for an archive with ``members``, every member extracted
    (``extracted``). Raises a one-line DownloadError naming what is missing."""
    path = raw_dir / spec.name
    if path.is_file():
        return LAYOUT_FILE if spec.archive == "none" else LAYOUT_ARCHIVE
    if hf_parquet.copy_in(raw_dir, spec.name) is not None:
        return LAYOUT_PARQUET
    extractable = spec.archive in EXTRACTABLE_KINDS and spec.members
    if extractable:
        missing = [m for m in spec.members if not (raw_dir / _member_path(m)).exists()]
        if not missing:
            return LAYOUT_EXTRACTED
        if len(missing) < len(spec.members):
            raise DownloadError(
                f"{raw_dir / _member_path(missing[0])}: not found, and no {path}: the other members "
                f"of {spec.name} are there extracted, so this one must be too"
            )
    extracted = f", nor its extracted members (e.g. {raw_dir / _member_path(spec.members[0])})" if extractable else ""
    copies = [copy for copy in hf_parquet.HF_COPIES if spec.name in copy.replaces]
    if copies:
        extracted += f", nor a {copies[0].name} copy"
    elif next(raw_dir.rglob("*.parquet"), None) is not None:
        # Said so that a Hub copy of this dataset is not taken for one the pipeline overlooked.
        extracted += (
            "; the parquet files there are not read: no Hugging Face copy stands in for this file "
            "(docs/data.md lists the copies that do)"
        )
    raise DownloadError(
        f"{path}: not found{extracted} (data_root is read as it is, nothing is downloaded into it; "
        f"the file comes from {spec.url})"
    )


def _extracted_files(raw_dir: Path, spec: SourceFile) -> list[str]:
    """The regular files of the extracted layout, relative to ``raw_dir``: each member that is a
    file, and every file below each member that is a folder."""
    files = set()
    for member in spec.members:
        path = raw_dir / _member_path(member)
        below = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        if not below:
            raise DownloadError(f"{path}: an empty folder where the extracted files of {spec.name} belong")
        files.update(p.relative_to(raw_dir).as_posix() for p in below)
    return sorted(files)


def tree_digest(root: Path, files: list[str]) -> str:
    """SHA-256 of the lines ``<sha256 of the file>  <path>`` of the sorted relative paths: what
    ``sha256sum`` prints for them, hashed again (``cd ROOT && LC_ALL=C sort LIST | xargs
    sha256sum | sha256sum``)."""
    listing = "".join(f"{sha256_file(root / name)}  {name}\n" for name in sorted(files))
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def verify_extracted(raw_dir: Path, spec: SourceFile) -> dict:
    """The record of an archive read as its extracted members: the tree digest of the files,
    their number and bytes. A pinned sha256 is the archive's and cannot check them."""
    locate(raw_dir, spec)
    files = _extracted_files(raw_dir, spec)
    return {
        "name": spec.name,
        "url": spec.url,
        "sha256": tree_digest(raw_dir, files),
        "pinned": False,
        "bytes": sum((raw_dir / name).stat().st_size for name in files),
        "layout": LAYOUT_EXTRACTED,
        "files": len(files),
    }


def verify_parquet(raw_dir: Path, copy: hf_parquet.HFCopy) -> dict:
    """The record of a Hugging Face parquet copy: every file opens with the copy's schema; the
    tree digest of the files, their number and bytes, and the source files it stands in for."""
    try:
        files = hf_parquet.verify(raw_dir, copy)
    except DataFormatError as exc:
        raise DownloadError(str(exc)) from None
    return {
        "name": f"{copy.folder}/",
        "url": f"https://huggingface.co/datasets/{copy.repo}",
        "sha256": tree_digest(raw_dir, files),
        "pinned": False,
        "bytes": sum((raw_dir / name).stat().st_size for name in files),
        "layout": LAYOUT_PARQUET,
        "files": len(files),
        "replaces": list(copy.replaces),
    }


def check_data_root(data_root: Path, sources: dict[str, dict]) -> None:
    """Every dataset of ``sources`` (``{dataset: source section}``) is in ``data_root``, as its
    files or archives' extracted members, before any job runs; else a one-line DownloadError
    naming the folder and the dataset. Reads no file."""
    data_root = Path(data_root)
    if not data_root.is_dir():
        raise DownloadError(
            f"data_root {data_root} is not a directory (it must hold one folder per dataset: "
            f"{', '.join(sources)}; docs/data.md)"
        )
    for dataset, source in sources.items():
        raw_dir = data_root / dataset
        if not raw_dir.is_dir():
            raise DownloadError(
                f"data_root {data_root} has no folder {dataset}/ for dataset {dataset} "
                f"(it must hold {', '.join(entry['name'] for entry in source['files'])}, "
                "or their extracted files, or a Hugging Face parquet copy; docs/data.md)"
            )
        for entry in source["files"]:
            try:
                locate(raw_dir, SourceFile.from_config(entry))
            except DownloadError as exc:
                raise DownloadError(f"data_root, dataset {dataset}: {exc}") from None


# --- transfer ----------------------------------------------------------------------------------


def resolve_url(url: str, base_dir: Path) -> str:
    """``file:rel/path`` -> ``file:///base_dir/rel/path``; other URLs unchanged."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file" and not parsed.netloc and not parsed.path.startswith("/"):
        return (Path(base_dir) / urllib.parse.unquote(parsed.path)).resolve().as_uri()
    if parsed.scheme not in ("file", "http", "https"):
        raise ValueError(f"unsupported URL scheme in {url!r} (use http, https or file)")
    return url


def _open(url: str, offset: int, timeout: float):
    """``(stream, start, total)``: the bytes from ``start`` (``offset`` if the source could
    resume, else 0) and the full size when known."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.request.url2pathname(parsed.path))
        if not path.is_file():
            raise DownloadError(f"{path}: source file not found ({url})")
        total = path.stat().st_size
        start = offset if offset <= total else 0
        handle = open(path, "rb")
        handle.seek(start)
        return handle, start, total
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing past the end: the part already holds it all
            return _Empty(), offset, offset
        if exc.code in TRANSIENT_STATUSES:
            raise _Transient(f"HTTP {exc.code}") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _Transient(str(exc)) from None
    if response.headers.get_content_type() == "text/html":
        response.close()
        raise DownloadError(
            f"{url}: the server sent an HTML page instead of the file (a login, quota or "
            "confirmation page); fetch it in a browser and point data_root at it (docs/data.md)"
        )
    length = response.headers.get("Content-Length")
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")  # bytes start-end/total
        start = int(content_range.split()[1].split("-")[0]) if content_range.startswith("bytes ") else -1
        if start != offset:
            response.close()
            raise DownloadError(f"{url}: asked for bytes from {offset}, server sent {content_range!r}")
        total_text = content_range.rsplit("/", 1)[-1]
        total = int(total_text) if total_text.isdigit() else None
        return response, offset, total
    return response, 0, int(length) if length and length.isdigit() else None


class _Empty:
    def read(self, _size: int) -> bytes:
        return b""

    def close(self) -> None:
        pass


def _attempt(url: str, part: Path, timeout: float) -> int | None:
    """Append the rest of ``url`` to ``part``; returns the full size when the source said."""
    offset = part.stat().st_size if part.exists() else 0
    stream, start, total = _open(url, offset, timeout)
    try:
        mode = "ab" if start == offset else "wb"  # a source that cannot resume starts again
        if start != offset:
            log.info("%s: source does not resume; starting again from byte 0", part)
        with (
            open(part, mode) as out,
            tqdm(
                total=total,
                initial=start,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(PART_SUFFIX),
                mininterval=PROGRESS_INTERVAL_S,
                file=sys.stderr,
            ) as bar,
        ):
            while True:
                try:
                    block = stream.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    raise _Transient(f"connection lost after {out.tell()} bytes ({exc})") from None
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    finally:
        stream.close()
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Transient(f"connection closed after {size} of {total} bytes")
    return total


def fetch(url: str, part: Path, retry: Retry) -> int | None:
    """Download ``url`` into ``part`` (resuming), retrying transient failures with backoff."""
    for failures in range(1, retry.attempts + 1):
        try:
            return _attempt(url, part, retry.timeout_s)
        except _Transient as exc:
            if failures == retry.attempts:
                raise DownloadError(
                    f"{part}: giving up on {url} after {failures} attempts ({exc}); the partial file "
                    "is kept and the next run resumes it"
                ) from None
            wait = retry.wait(failures)
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s", part, failures, exc, wait)
            time.sleep(wait)
    raise AssertionError("unreachable")  # the loop returns or raises


# --- extraction --------------------------------------------------------------------------------


def _check_member_paths(path: Path, names: list[str], staging: Path, dest: Path) -> None:
    root = staging.resolve()
    for name in names:
        if os.path.isabs(name) or not (staging / name).resolve().is_relative_to(root):
            raise DownloadError(f"{path}: member {name!r} would be written outside {dest}")


def extract(path: Path, kind: str, dest: Path) -> None:
    """Unpack into ``dest``; members that would land outside it (absolute paths, ``..``, links
    out of the tree, devices) are an error, never silently renamed."""
    staging = dest / f".{path.name}.extracting"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if kind == "tar":
            with tarfile.open(path, mode="r:*") as tar:
                _check_member_paths(path, tar.getnames(), staging, dest)
                tar.extractall(staging, filter="data")  # the stdlib's filter also refuses links out, devices
        elif kind == "zip":
            with zipfile.ZipFile(path) as archive:
                _check_member_paths(path, archive.namelist(), staging, dest)
                archive.extractall(staging)
        elif kind == "gz":
            with gzip.open(path, "rb") as src, open(staging / path.name.removesuffix(".gz"), "wb") as out:
                shutil.copyfileobj(src, out, CHUNK_BYTES)
        else:
            raise ValueError(f"{path}: archive kind {kind!r} cannot be extracted")
    except tarfile.FilterError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise DownloadError(f"{path}: unsafe member ({exc})") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for entry in staging.iterdir():  # only a complete extraction is moved into place
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()


# --- one dataset -------------------------------------------------------------------------------

# --- checksums recorded at first use (sources that publish none) ---------------------------------


def read_lock(path: Path | None) -> dict[str, dict]:
    """file name -> {sha256, bytes, url, recorded} of a dataset's lock file (empty if none yet)."""
    if path is None or not Path(path).exists():
        return {}
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))["files"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DownloadError(
            f"{path}: not a checksum lock file ({type(exc).__name__}: {exc}); restore it from "
            f"version control, or delete it to record the checksums again"
        ) from None


def with_lock(spec: SourceFile, locked: dict[str, dict], lock: Path | None) -> SourceFile:
    """The file's spec with the SHA-256 to check: the config's, else the lock file's (the first
    download's). Both present and different is an error: the config was changed, or the lock."""
    entry = locked.get(spec.name)
    if entry is None:
        return spec
    if spec.sha256 is not None:
        if spec.sha256 != entry["sha256"]:
            raise DownloadError(
                f"{spec.name}: the config pins sha256 {spec.sha256}, the lock file {lock} recorded "
                f"{entry['sha256']} on {entry['recorded']}; keep one (docs/data.md)"
            )
        return spec
    return replace(
        spec,
        sha256=entry["sha256"],
        pinned_by=f"recorded by the first download on {entry['recorded']} in {lock}; if the source "
        f"changed on purpose, delete that entry",
    )


def record_lock(lock: Path, dataset: str, locked: dict[str, dict], records: list[dict]) -> None:
    """Add the checksum of every downloaded file that neither the config nor the lock pins."""
    new = {
        r["name"]: {
            "sha256": r["sha256"],
            "bytes": r["bytes"],
            "url": r["url"],
            "recorded": time.strftime("%Y-%m-%d", time.gmtime()),
        }
        for r in records
        if not r["pinned"] and r["layout"] in (LAYOUT_FILE, LAYOUT_ARCHIVE)
    }
    if new:
        Path(lock).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            Path(lock),
            {
                "dataset": dataset,
                "about": "SHA-256 of each raw file at its first download; later downloads must match "
                "(della/data/download.py, docs/data.md). Commit it so every clone checks the same bytes.",
                "files": {**locked, **new},
            },
        )


def _quarantine(path: Path, name: str) -> Path:
    corrupt = path.with_name(Path(name).name + CORRUPT_SUFFIX)
    os.replace(path, corrupt)
    return corrupt


def _download_file(spec: SourceFile, out_dir: Path, base_dir: Path, retry: Retry) -> dict:
    final = out_dir / spec.name
    if final.exists():
        try:
            return verify_file(final, spec)
        except DownloadError as exc:
            log.warning("%s; moved to %s, downloading again", exc, _quarantine(final, spec.name))
    part = out_dir / (spec.name + PART_SUFFIX)
    part.parent.mkdir(parents=True, exist_ok=True)
    url = resolve_url(spec.url, base_dir)
    log.info("%s <- %s%s", final, url, f" (resuming at byte {part.stat().st_size})" if part.exists() else "")
    total = fetch(url, part, retry)
    try:
        record = verify_file(part, spec, expected_bytes=total)
    except DownloadError as exc:
        corrupt = _quarantine(part, spec.name)
        raise DownloadError(f"{final}: {exc}; the bad download is kept as {corrupt}") from None
    os.replace(part, final)
    return record


def download_dataset(
    dataset: str,
    source: dict,
    out_dir: Path,
    report: Path,
    base_dir: Path,
    data_root: Path | None = None,
    retry: Retry = Retry(),
    lock: Path | None = None,
) -> dict:
    """Fetch (or, with ``data_root``, only verify) every file of ``source``; write ``report``.
    With ``lock``, a file the config does not pin is checked against the SHA-256 its first
    download recorded there, and recorded if it is the first."""
    locked = read_lock(lock)
    files = [with_lock(SourceFile.from_config(entry), locked, lock) for entry in source["files"]]
    raw_dir = Path(data_root) / dataset if data_root is not None else Path(out_dir)
    if data_root is None:
        raw_dir.mkdir(parents=True, exist_ok=True)
    records, copies_read = [], set()
    for spec in files:
        layout = locate(raw_dir, spec) if data_root is not None else None
        if layout == LAYOUT_PARQUET:
            copy = hf_parquet.copy_in(raw_dir, spec.name)
            if copy in copies_read:
                continue  # one copy stands in for several files (CNN/DM's two story archives): one record
            copies_read.add(copy)
            record = verify_parquet(raw_dir, copy)
        elif layout == LAYOUT_EXTRACTED:
            record = verify_extracted(raw_dir, spec)
        elif data_root is not None:
            record = verify_file(raw_dir / spec.name, spec)
        else:
            record = _download_file(spec, raw_dir, base_dir, retry)
            if spec.extract:
                extract(raw_dir / spec.name, spec.archive, (raw_dir / spec.name).parent)
        if record["layout"] in (LAYOUT_EXTRACTED, LAYOUT_PARQUET):
            what = "extracted files" if record["layout"] == LAYOUT_EXTRACTED else f"{copy.name} parquet files"
            log.warning(
                "%s: not there, its %d %s are read instead; their tree digest is %s (the config's "
                "sha256, if any, is the original's and cannot check them; docs/data.md)",
                raw_dir / spec.name,
                record["files"],
                what,
                record["sha256"],
            )
        elif not record["pinned"]:
            log.warning(
                "%s: no sha256 pinned in the config (datasets.%s.source); computed %s%s. To pin it in "
                "the config, set `sha256: %s` for this file (docs/data.md)",
                raw_dir / spec.name,
                dataset,
                record["sha256"],
                f", recorded in {lock} for later downloads" if lock else "",
                record["sha256"],
            )
        records.append(record)
    if lock is not None:
        record_lock(lock, dataset, locked, records)
    document = {
        "dataset": dataset,
        "raw_dir": str(raw_dir),
        "mode": "verified data_root" if data_root is not None else "downloaded",
        "citation": source.get("citation"),
        "licence": source.get("licence"),
        "homepage": source.get("homepage"),
        "files": records,
    }
    atomic_write_json(Path(report), document)
    return document


def main(argv: list[str] | None = None) -> int:
    """``--dataset NAME --source JSON --out DIR --report FILE [--data-root DIR]``."""
    parser = argparse.ArgumentParser(prog="della-bench download", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--source", required=True, help="the dataset's `source:` config section as JSON")
    parser.add_argument("--out", required=True, type=Path, help="folder the files are downloaded into")
    parser.add_argument("--report", required=True, type=Path, help="download report (written last, atomically)")
    parser.add_argument("--base-dir", type=Path, default=Path.cwd(), help="what relative file: URLs are relative to")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="verify DATA_ROOT/<dataset>/ instead of downloading"
    )
    parser.add_argument(
        "--lock",
        type=Path,
        default=None,
        help="checksum lock file: files the config does not pin must match their first download's",
    )
    parser.add_argument("--attempts", type=int, default=Retry.attempts, help="tries per file")
    parser.add_argument(
        "--backoff", type=float, default=Retry.backoff_s, help="seconds before the first retry (doubles)"
    )
    parser.add_argument("--timeout", type=float, default=Retry.timeout_s, help="socket timeout in seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        source = json.loads(args.source)
        document = download_dataset(
            args.dataset,
            source,
            args.out,
            args.report,
            args.base_dir,
            args.data_root,
            Retry(args.attempts, args.backoff, args.timeout),
            args.lock,
        )
    except json.JSONDecodeError as exc:
        parser.error(f"--source is not valid JSON: {exc}")
    except (DownloadError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.dataset}: {len(document['files'])} file(s) {document['mode']} in {document['raw_dir']} -> {args.report}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
