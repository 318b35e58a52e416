"""Shared fixtures: a tiny tokenizer and tiny random-init backbones, built once per test session
by the same functions the workflow's rules call; the one-node SLURM of
workflow/scripts/local-slurm.sh, up for the whole session where it is installed."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOCAL_SLURM = Path(__file__).resolve().parents[1] / "workflow" / "scripts" / "local-slurm.sh"

WORDS = (
    "the food was great terrible service friendly slow staff pizza coffee place we loved hated "
    "it is a very not really good bad price cheap expensive menu table"
).split()


def archive_content(path: Path) -> object:
    """What an archive holds (names, metadata, uncompressed bytes), independent of the deflate
    implementation that compressed it; a file that is no archive: its bytes."""
    import tarfile
    import zipfile

    if path.name.endswith((".tgz", ".tar.gz")):
        with tarfile.open(path) as tar:
            return [
                (m.name, m.type, m.mode, m.mtime, m.uid, m.uname, tar.extractfile(m).read() if m.isfile() else None)
                for m in tar.getmembers()
            ]
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            return [(i.filename, i.date_time, i.external_attr, zf.read(i)) for i in zf.infolist()]
    return path.read_bytes()


def tiny_corpus(n: int, seed: int = 0, conditional: bool = False) -> list[dict]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]
    if not conditional:
        return [{"text": t} for t in texts]
    return [{"source": t, "target": texts[(i + 1) % n]} for i, t in enumerate(texts)]


@pytest.fixture(scope="session")
def tiny_backbones(tmp_path_factory) -> dict[str, Path]:
    """{'tokenizer', 'causal', 'seq2seq', 'encoder'} -> directories."""
    from della.models.backbone import BackboneSize, create_backbone
    from della.run.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("backbones")
    corpus = root / "train.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(300)))
    train_tokenizer([corpus], vocab_size=300, min_frequency=2, out_dir=root / "tokenizer")
    size = BackboneSize(layers=2, hidden=32, heads=4, max_positions=160)  # VAEConfig's default lengths: 64 + 64 + 2
    dirs = {"tokenizer": root / "tokenizer"}
    for kind in ("causal", "seq2seq", "encoder"):
        create_backbone(kind, size, root / "tokenizer", root / kind, seed=0)
        dirs[kind] = root / kind
    return dirs


def start_local_slurm() -> tuple[bool, subprocess.CompletedProcess]:
    """`local-slurm.sh start` (tests download nothing: no package install); whether it was up before."""
    was_up = subprocess.run([LOCAL_SLURM, "status"], capture_output=True).returncode == 0
    started = subprocess.run(
        [LOCAL_SLURM, "start"],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "LOCAL_SLURM_NO_INSTALL": "1"},
    )
    return was_up, started


def stop_local_slurm() -> None:
    subprocess.run([LOCAL_SLURM, "stop"], check=True, capture_output=True, timeout=120)


# the controller's `local-slurm.sh start` result ({"was_up", "returncode", "output"}), None where not tried
SLURM_START = pytest.StashKey[dict | None]()


def pytest_sessionstart(session):
    """Where SLURM is installed and we are root, the local SLURM runs for the whole session (and is
    stopped at its end unless it was up before): with SLURM's client installed and no controller,
    every `snakemake`, local runs included, waits ~10 s at start for `scontrol show config`
    (snakemake-executor-plugin-slurm 2.8.0; docs/cluster.md). Elsewhere it does nothing, and the
    `slurm` tests fail in `local_slurm`. Under pytest-xdist the controlling process starts it once,
    before any worker runs a test, and hands its result to the workers (`pytest_configure_node`);
    a failed start fails only the `slurm` tests."""
    config = session.config
    if hasattr(config, "workerinput"):
        config.stash[SLURM_START] = config.workerinput["local_slurm_start"]
        return
    if shutil.which("slurmctld") is None or os.geteuid() != 0:
        config.stash[SLURM_START] = None
        return
    was_up, started = start_local_slurm()
    config.stash[SLURM_START] = {
        "was_up": was_up,
        "returncode": started.returncode,
        "output": started.stdout + started.stderr,
    }


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    node.workerinput["local_slurm_start"] = node.config.stash[SLURM_START]


def pytest_sessionfinish(session):
    start = session.config.stash.get(SLURM_START, None)
    if not hasattr(session.config, "workerinput") and start and not start["was_up"] and start["returncode"] == 0:
        stop_local_slurm()


@pytest.fixture(scope="session")
def local_slurm(request):
    """The one-node SLURM, started by the script a user runs (left running if it already was)."""
    assert os.geteuid() == 0, "the SLURM tests start daemons: run them as root (or deselect them: -m 'not slurm')"
    started_for_session = request.config.stash[SLURM_START]
    if started_for_session is not None:
        assert started_for_session["returncode"] == 0, started_for_session["output"]
        yield
        return
    # slurmctld not found: the script says which packages are missing and what to type
    was_up, started = start_local_slurm()
    assert started.returncode == 0, started.stdout + started.stderr
    yield
    if not was_up:
        stop_local_slurm()


def pytest_collection_modifyitems(items):
    """The `slurm` tests first: they are the session's longest module, mostly waiting on SLURM's
    clock, so under pytest-xdist (pyproject's addopts: one module per worker, in this order) the
    other worker runs the rest meanwhile instead of SLURM's waits coming last."""
    items.sort(key=lambda item: item.get_closest_marker("slurm") is None)


# Training runs shared by test_reliability, test_warm and others: one per test module
@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(64)))
    return path


@pytest.fixture(scope="module")
def uninterrupted(tiny_backbones, train_file, tmp_path_factory) -> Path:
    """helpers.training.SETTINGS trained start to end in one go, with the CLI the train rule runs."""
    from della.cli import main

    from helpers.training import SETTINGS, cli_args

    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    main(cli_args(tiny_backbones, SETTINGS, train_file, run))
    return run
