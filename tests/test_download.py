"""The download stage on local sources only: file: URLs (the shipped sample archives and files
made here) and a loopback HTTP server that speaks Range, fails on purpose or cuts connections.
No test touches the network."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import json
import logging
import tarfile
import tempfile
import threading
import zipfile
from pathlib import Path

import pytest

from della.data import download as dl
from della.data.download import DownloadError, Retry
from della.pipeline import overlays

from helpers import ROOT
from helpers.data import tar_gz

FAST = Retry(attempts=3, backoff_s=0.01, timeout_s=5)
PAYLOAD = bytes(range(256)) * 400  # 100 KiB, several read chunks' worth over HTTP


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_gz_bytes(members: dict[str, bytes]) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return tar_gz(Path(tmp) / "a.tgz", members).read_bytes()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def source(url: str, name: str = "file.bin", sha256: str | None = None, archive: str = "none", **extra) -> dict:
    entry = {"name": name, "url": url, "sha256": sha256, "archive": archive, **extra}
    return {"citation": "c", "licence": "l", "homepage": "h", "files": [entry]}


def serve_file(tmp_path: Path, data: bytes, name: str = "src.bin") -> str:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path.as_uri()


def run(tmp_path: Path, src: dict, **kwargs) -> dict:
    return dl.download_dataset(
        "ds", src, tmp_path / "raw", tmp_path / "raw" / "download.json", ROOT, retry=kwargs.pop("retry", FAST), **kwargs
    )


# --- a loopback HTTP server -------------------------------------------------------------------------


class Server:
    """Serves ``data`` at ``/file``; ``fail_first`` requests get 503, ``cut_first`` requests send
    the full Content-Length but only half the body, ``ranges`` toggles Range support."""

    def __init__(self, data: bytes, content_type: str = "application/octet-stream"):
        self.data, self.content_type = data, content_type
        self.fail_first = self.cut_first = 0
        self.ranges = True
        self.requests: list[str | None] = []  # the Range header of each request
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                owner.requests.append(self.headers.get("Range"))
                if self.path != "/file":
                    self.send_error(404)
                    return
                if len(owner.requests) <= owner.fail_first:
                    self.send_error(503)
                    return
                start = 0
                if owner.ranges and self.headers.get("Range"):
                    start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
                    if start >= len(owner.data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(owner.data) - 1}/{len(owner.data)}")
                else:
                    self.send_response(200)
                body = owner.data[start:]
                self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if len(owner.requests) <= owner.fail_first + owner.cut_first:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # drop the connection mid-body
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- file: sources ----------------------------------------------------------------------------------


def test_file_download_verifies_and_reports(tmp_path):
    url = serve_file(tmp_path, PAYLOAD)
    report = run(tmp_path, source(url, sha256=sha(PAYLOAD)))
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "raw" / "file.bin.part").exists()
    assert report["files"] == [
        {
            "name": "file.bin",
            "url": url,
            "sha256": sha(PAYLOAD),
            "pinned": True,
            "pinned_by": "config",
            "bytes": len(PAYLOAD),
            "layout": "file",
        }
    ]
    assert json.loads((tmp_path / "raw" / "download.json").read_text()) == report


def test_relative_file_url_is_relative_to_the_base_dir(tmp_path):
    assert (
        dl.resolve_url("file:sample_data/ptb/simple-examples.tgz", ROOT)
        == (ROOT / "sample_data" / "ptb" / "simple-examples.tgz").as_uri()
    )
    assert dl.resolve_url("https://example.org/a.zip", ROOT) == "https://example.org/a.zip"
    with pytest.raises(ValueError, match="unsupported URL scheme"):
        dl.resolve_url("ftp://example.org/a.zip", ROOT)


def test_file_download_resumes_from_the_partial_file(tmp_path, caplog):
    url = serve_file(tmp_path, PAYLOAD)
    part = tmp_path / "raw" / "file.bin.part"
    part.parent.mkdir(parents=True)
    # A different prefix of the right length shows the rest is appended at the offset, not re-read.
    part.write_bytes(b"\xff" * 1000)
    with caplog.at_level(logging.INFO, logger="della.download"):
        run(tmp_path, source(url))
    assert (tmp_path / "raw" / "file.bin").read_bytes() == b"\xff" * 1000 + PAYLOAD[1000:]
    assert "resuming at byte 1000" in caplog.text


def test_partial_file_longer_than_the_source_starts_again(tmp_path):
    url = serve_file(tmp_path, PAYLOAD[:500])
    part = tmp_path / "raw" / "file.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 800)
    run(tmp_path, source(url, sha256=sha(PAYLOAD[:500])))
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD[:500]


def test_checksum_mismatch_moves_the_file_aside(tmp_path):
    url = serve_file(tmp_path, PAYLOAD)
    with pytest.raises(DownloadError, match=r"file\.bin.*SHA-256 mismatch.*kept as .*file\.bin\.corrupt"):
        run(tmp_path, source(url, sha256="0" * 64))
    raw = tmp_path / "raw"
    assert (raw / "file.bin.corrupt").read_bytes() == PAYLOAD
    assert not (raw / "file.bin").exists() and not (raw / "file.bin.part").exists()
    assert not (raw / "download.json").exists()


@pytest.mark.parametrize(
    "kind, data",
    [
        ("tar", tar_gz_bytes({"d/a.txt": PAYLOAD, "d/b.txt": PAYLOAD})),
        ("zip", zip_bytes({"d/a.txt": PAYLOAD, "d/b.txt": PAYLOAD})),
        ("gz", gzip.compress(PAYLOAD)),
    ],
)
def test_truncated_archive_is_an_error_even_without_a_checksum(tmp_path, kind, data):
    url = serve_file(tmp_path, data[: len(data) * 2 // 3])
    with pytest.raises(DownloadError, match=rf"file\.bin.*truncated or corrupt {kind} archive"):
        run(tmp_path, source(url, archive=kind))
    assert (tmp_path / "raw" / "file.bin.corrupt").exists()
    assert not (tmp_path / "raw" / "file.bin").exists()


def test_missing_archive_member_is_an_error(tmp_path):
    url = serve_file(tmp_path, tar_gz_bytes({"d/a.txt": b"a\n"}))
    with pytest.raises(DownloadError, match=r"lacks member\(s\) d/b\.txt"):
        run(tmp_path, source(url, archive="tar", members=["./d/a.txt", "d/b.txt"]))


def test_a_member_may_be_a_folder_the_archive_does_not_list(tmp_path):
    """CNN/DM's members are the folders of .story files; a tar need not list its folders."""
    url = serve_file(tmp_path, tar_gz_bytes({"cnn/stories/a.story": b"a\n"}))
    run(tmp_path, source(url, archive="tar", members=["cnn/stories"]))
    with pytest.raises(DownloadError, match=r"lacks member\(s\) cnn/stor;"):
        run(tmp_path / "again", source(url, archive="tar", members=["cnn/stor"]))


def test_unpinned_checksum_is_logged_and_reported(tmp_path, caplog):
    url = serve_file(tmp_path, PAYLOAD)
    with caplog.at_level(logging.WARNING, logger="della.download"):
        report = run(tmp_path, source(url))
    assert report["files"][0]["pinned"] is False and report["files"][0]["sha256"] == sha(PAYLOAD)
    assert f"sha256: {sha(PAYLOAD)}" in caplog.text


def test_the_first_download_pins_an_unpinned_file_for_every_later_one(tmp_path):
    """A file the config does not pin: its first download records the SHA-256 in the lock file;
    a later download of the same bytes passes as pinned, of other bytes stops naming both hashes."""
    url, lock = serve_file(tmp_path, PAYLOAD), tmp_path / "checksums" / "ds.json"
    first = run(tmp_path, source(url), lock=lock)
    assert first["files"][0]["pinned"] is False
    recorded = json.loads(lock.read_text())["files"]["file.bin"]
    assert recorded["sha256"] == sha(PAYLOAD) and recorded["bytes"] == len(PAYLOAD) and recorded["url"] == url
    (tmp_path / "raw" / "file.bin").unlink()  # another clone, or a fresh download
    again = run(tmp_path, source(url), lock=lock)
    assert again["files"][0]["pinned"] is True and "first download" in again["files"][0]["pinned_by"]
    changed = PAYLOAD[::-1]
    (tmp_path / "src" / "src.bin").write_bytes(changed)
    (tmp_path / "raw" / "file.bin").unlink()
    with pytest.raises(dl.DownloadError) as error:
        run(tmp_path, source(url), lock=lock)
    message = str(error.value)
    assert f"expected {sha(PAYLOAD)}" in message and f"got {sha(changed)}" in message and str(lock) in message
    assert (tmp_path / "raw" / "file.bin.corrupt").read_bytes() == changed  # kept aside, nothing lost
    assert json.loads(lock.read_text())["files"]["file.bin"] == recorded  # the lock is not rewritten


def test_a_lock_that_disagrees_with_the_config_or_is_damaged_is_an_error(tmp_path):
    url, lock = serve_file(tmp_path, PAYLOAD), tmp_path / "ds.json"
    run(tmp_path, source(url), lock=lock)
    with pytest.raises(
        dl.DownloadError, match=f"the config pins sha256 {'0' * 64}, the lock file .* recorded {sha(PAYLOAD)}"
    ):
        run(tmp_path, source(url, sha256="0" * 64), lock=lock)
    lock.write_text("{not json")
    with pytest.raises(dl.DownloadError, match="not a checksum lock file"):
        run(tmp_path, source(url), lock=lock)


def test_data_root_files_are_pinned_by_first_use_too(tmp_path):
    root, lock = tmp_path / "shared", tmp_path / "ds.json"
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "file.bin").write_bytes(PAYLOAD)
    run(tmp_path, source("https://unreachable.invalid/file.bin"), data_root=root, lock=lock)
    assert json.loads(lock.read_text())["files"]["file.bin"]["sha256"] == sha(PAYLOAD)
    (root / "ds" / "file.bin").write_bytes(PAYLOAD + b"x")
    with pytest.raises(dl.DownloadError, match="SHA-256 mismatch"):
        run(tmp_path, source("https://unreachable.invalid/file.bin"), data_root=root, lock=lock)


def test_a_verified_file_is_not_fetched_again(tmp_path):
    src = tmp_path / "src" / "src.bin"
    url = serve_file(tmp_path, PAYLOAD)
    run(tmp_path, source(url, sha256=sha(PAYLOAD)))
    src.unlink()  # a second run needs no source any more
    run(tmp_path, source(url, sha256=sha(PAYLOAD)))
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD


def test_a_damaged_existing_file_is_moved_aside_and_fetched_again(tmp_path):
    url = serve_file(tmp_path, PAYLOAD)
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "file.bin").write_bytes(b"damaged")
    run(tmp_path, source(url, sha256=sha(PAYLOAD)))
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD
    assert (tmp_path / "raw" / "file.bin.corrupt").read_bytes() == b"damaged"


def test_missing_file_source_is_an_error(tmp_path):
    with pytest.raises(DownloadError, match="source file not found"):
        run(tmp_path, source((tmp_path / "nope.bin").as_uri()))


# --- http: Range, retries, backoff ------------------------------------------------------------------


def test_http_download_resumes_with_a_range_request(tmp_path):
    part = tmp_path / "raw" / "file.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:4096])
    with Server(PAYLOAD) as server:
        run(tmp_path, source(server.url, sha256=sha(PAYLOAD)))
    assert server.requests == ["bytes=4096-"]
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD


def test_http_without_range_support_starts_again(tmp_path):
    part = tmp_path / "raw" / "file.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale prefix")
    with Server(PAYLOAD) as server:
        server.ranges = False
        run(tmp_path, source(server.url, sha256=sha(PAYLOAD)))
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD


def test_complete_partial_file_gets_416_and_is_verified(tmp_path):
    part = tmp_path / "raw" / "file.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    with Server(PAYLOAD) as server:
        run(tmp_path, source(server.url, sha256=sha(PAYLOAD)))
    assert server.requests == [f"bytes={len(PAYLOAD)}-"]
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD


def test_busy_server_is_retried_with_backoff(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(dl.time, "sleep", waits.append)
    with Server(PAYLOAD) as server:
        server.fail_first = 2
        run(tmp_path, source(server.url, sha256=sha(PAYLOAD)), retry=Retry(attempts=3, backoff_s=1.5))
    assert waits == [1.5, 3.0]  # exponential
    assert len(server.requests) == 3
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD


def test_dropped_connection_resumes_where_it_stopped(tmp_path):
    with Server(PAYLOAD) as server:
        server.cut_first = 1
        run(tmp_path, source(server.url, sha256=sha(PAYLOAD)))
    assert server.requests[0] is None and server.requests[1].startswith("bytes=")
    assert int(server.requests[1].removeprefix("bytes=").rstrip("-")) > 0
    assert (tmp_path / "raw" / "file.bin").read_bytes() == PAYLOAD


def test_giving_up_keeps_the_partial_file(tmp_path):
    with Server(PAYLOAD) as server:
        server.fail_first = 99
        with pytest.raises(DownloadError, match=r"file\.bin\.part: giving up .* after 3 attempts"):
            run(tmp_path, source(server.url))
    assert len(server.requests) == 3


def test_http_error_that_retrying_cannot_fix_stops_at_once(tmp_path):
    with Server(PAYLOAD) as server:
        with pytest.raises(DownloadError, match="HTTP 404"):
            run(tmp_path, source(server.url.removesuffix("/file") + "/missing"))
    assert len(server.requests) == 1


def test_an_html_page_instead_of_the_file_is_an_error(tmp_path):
    with Server(b"<html>confirm download</html>", content_type="text/html") as server:
        with pytest.raises(DownloadError, match="HTML page instead of the file"):
            run(tmp_path, source(server.url))
    assert not (tmp_path / "raw" / "file.bin").exists()


# --- extraction -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, data, extracted",
    [
        ("tar", tar_gz_bytes({"d/a.txt": b"a\n"}), "d/a.txt"),
        ("zip", zip_bytes({"d/a.txt": b"a\n"}), "d/a.txt"),
        ("gz", gzip.compress(b"a\n"), "a.txt"),
    ],
    ids=["tar", "zip", "gz"],
)  # the archives' bytes hold the time: ids from them differ between pytest-xdist workers
def test_extraction(tmp_path, kind, data, extracted):
    name = "a.txt.gz" if kind == "gz" else f"arch.{kind}"
    url = serve_file(tmp_path, data, name)
    run(tmp_path, source(url, name=name, archive=kind, extract=True))
    assert (tmp_path / "raw" / extracted).read_bytes() == b"a\n"
    assert not list((tmp_path / "raw").glob(".*.extracting"))


@pytest.mark.parametrize("kind", ["tar", "zip"])
@pytest.mark.parametrize("evil", ["../outside.txt", "/abs/outside.txt"])
def test_extraction_refuses_paths_outside_the_folder(tmp_path, kind, evil):
    data = tar_gz_bytes({evil: b"x"}) if kind == "tar" else zip_bytes({evil: b"x"})
    url = serve_file(tmp_path, data, f"arch.{kind}")
    with pytest.raises(DownloadError, match="outside|unsafe member"):
        run(tmp_path, source(url, name=f"arch.{kind}", archive=kind, extract=True))
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "raw" / "download.json").exists()


def test_tar_link_out_of_the_folder_is_refused(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("d/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tar.addfile(link)
    url = serve_file(tmp_path, buffer.getvalue(), "arch.tgz")
    with pytest.raises(DownloadError, match="unsafe member"):
        run(tmp_path, source(url, name="arch.tgz", archive="tar", extract=True))


# --- data_root ----------------------------------------------------------------------------------------


def test_data_root_is_verified_in_place(tmp_path):
    root = tmp_path / "shared"
    (root / "ds").mkdir(parents=True)
    (root / "ds" / "file.bin").write_bytes(PAYLOAD)
    src = source("https://unreachable.invalid/file.bin", sha256=sha(PAYLOAD))
    report = run(tmp_path, src, data_root=root)
    assert report["raw_dir"] == str(root / "ds") and report["mode"] == "verified data_root"
    assert sorted(p.name for p in (root / "ds").iterdir()) == ["file.bin"]  # nothing written there
    assert not (tmp_path / "raw" / "file.bin").exists()


def test_data_root_missing_or_bad_file_is_an_error_and_left_alone(tmp_path):
    root = tmp_path / "shared"
    (root / "ds").mkdir(parents=True)
    with pytest.raises(DownloadError, match=r"ds/file\.bin: not found .*https://unreachable"):
        run(tmp_path, source("https://unreachable.invalid/file.bin"), data_root=root)
    (root / "ds" / "file.bin").write_bytes(b"wrong")
    with pytest.raises(DownloadError, match="SHA-256 mismatch"):
        run(tmp_path, source("https://unreachable.invalid/file.bin", sha256=sha(PAYLOAD)), data_root=root)
    assert (root / "ds" / "file.bin").read_bytes() == b"wrong"


# --- settings and the command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"archive": "rar"}, "archive must be one of"),
        ({"sha256": "ABC"}, "64 lower-case hex"),
        ({"name": "../x"}, "inside the dataset's folder"),
        ({"colour": 1}, "unknown key"),
    ],
)
def test_bad_source_entries_are_rejected(tmp_path, entry, message):
    src = source("file:x", **{k: v for k, v in entry.items() if k not in ("name",)})
    if "name" in entry:
        src["files"][0]["name"] = entry["name"]
    with pytest.raises(ValueError, match=message):
        run(tmp_path, src)


def test_a_source_entry_without_url_or_sha256_is_rejected(tmp_path):
    for key in ("url", "sha256"):
        src = source("file:x")
        del src["files"][0][key]
        with pytest.raises(ValueError, match=rf"missing key\(s\) \['{key}'\]"):
            run(tmp_path, src)


def test_cli(tmp_path, capsys):
    url = serve_file(tmp_path, PAYLOAD)
    args = [
        "--dataset",
        "ds",
        "--out",
        str(tmp_path / "raw"),
        "--report",
        str(tmp_path / "r.json"),
        "--backoff",
        "0.01",
    ]
    assert dl.main([*args, "--source", json.dumps(source(url, sha256=sha(PAYLOAD)))]) == 0
    assert "ds: 1 file(s) downloaded" in capsys.readouterr().out
    assert dl.main([*args, "--source", json.dumps(source(url, name="y", sha256="1" * 64))]) == 1
    assert "error:" in capsys.readouterr().err and (tmp_path / "raw" / "y.corrupt").exists()


# --- the configs' sources ----------------------------------------------------------------------------


def _config(name: str) -> dict:
    return overlays.load(f"config/{name}")


def test_every_sample_source_downloads_and_verifies(tmp_path):
    """The sample config's file: sources are the shipped archives with their real checksums."""
    for dataset, section in _config("config.yaml")["datasets"].items():
        report = dl.download_dataset(dataset, section["source"], tmp_path / dataset, tmp_path / f"{dataset}.json", ROOT)
        assert all(f["pinned"] for f in report["files"]), dataset


def test_sample_sources_mirror_the_paper_layout():
    """Same file names, archive kinds and members at both scales: the same readers see the same
    layout; only the URLs and checksums differ, and the generated Yelp/Yahoo archives add their
    ground-truth factors (one member per split, read with `preprocess.factors: true`)."""
    sample, paper = _config("config.yaml")["datasets"], _config("paper.yaml")["datasets"]
    assert sample.keys() == paper.keys()
    for dataset in sample:

        def layout(section, extra=()):
            return [
                (f["name"], f["archive"], [m for m in f.get("members", []) if m not in extra] or None)
                for f in section["source"]["files"]
            ]

        factors = (
            [f"{dataset}_data/{dataset}.{split}.factors.jsonl" for split in ("train", "valid", "test")]
            if sample[dataset]["preprocess"].get("factors")
            else []
        )
        members = [m for f in sample[dataset]["source"]["files"] for m in f.get("members", [])]
        assert set(factors) <= set(members), dataset
        assert layout(sample[dataset], factors) == layout(paper[dataset]), dataset
        assert not paper[dataset]["preprocess"].get("factors"), dataset  # no real download has them
        for entry in paper[dataset]["source"]["files"]:
            assert entry["url"].startswith(("https://", "http://")), entry
