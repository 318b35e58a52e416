"""Archives whose bytes depend on their content only: tar/gzip mtime 0, sorted members, a fixed owner,
zip entries with a fixed date; and the files written with their SHA256SUMS."""

from __future__ import annotations

import gzip
import hashlib
import io
import stat
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

ARCHIVE_MTIME = 0
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
ARCHIVE_OWNER = "root"
FILE_MODE = 0o644
DIR_MODE = 0o755
GZIP_LEVEL = 9
ZIP_CREATED_ON_UNIX = 3
MSDOS_DIRECTORY_FLAG = 0x10


def _gzip(data: bytes) -> bytes:
    """gzip without a file name and with mtime 0 in the header, so the bytes never vary."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=ARCHIVE_MTIME, compresslevel=GZIP_LEVEL) as gz:
        gz.write(data)
    return out.getvalue()


def _parent_dirs(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts)) if parts[i] not in ("", ".")]


def tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz of ``files`` plus their folders, sorted, with fixed owner, modes and mtimes."""
    dirs = {d for name in files for d in _parent_dirs(name)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs | set(files)):  # sorting puts each folder before its content
            info = tarfile.TarInfo(name)
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ARCHIVE_OWNER
            if name in files:
                info.mode, info.size = FILE_MODE, len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
                tar.addfile(info)
    return _gzip(buffer.getvalue())


def zip_bytes(entries: Sequence[tuple[str, bytes | None]]) -> bytes:
    """A zip of ``(name, data)`` in the given order; ``data=None`` makes a folder entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = ZIP_CREATED_ON_UNIX
            if data is None:
                info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | MSDOS_DIRECTORY_FLAG
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=GZIP_LEVEL)
    return buffer.getvalue()


def lines_bytes(lines: Sequence[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


def write_files(out_dir: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write `files` ({relative path: bytes}) under `out_dir` and their SHA256SUMS; returns
    ``{relative path: sha256}``."""
    sums = {}
    for relative, data in sorted(files.items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sums[relative] = hashlib.sha256(data).hexdigest()
    (out_dir / "SHA256SUMS").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in sums.items()), encoding="utf-8"
    )
    return sums
