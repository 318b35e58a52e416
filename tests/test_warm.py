"""Warm start (della/pipeline/warm.py): jobs forked from a server that imported the libraries once must
write what cold jobs write, end with the same status and stderr, take the same signals, and fall
back to running cold whenever the server cannot stand in for a fresh interpreter."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from della.pipeline.warm import SOCKET_VARIABLE, WarmServer, start_server
from della.run.train import EX_TEMPFAIL

from helpers import ROOT
from helpers.training import SETTINGS, assert_same_run, cli_args, logged_metrics
from helpers.workflow import one_run_config, snakemake, write_config

WAIT_S = 120


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server started as Snakemake's onstart starts it, in this process's environment (with the
    repository on PYTHONPATH, which the clients below share)."""
    saved = dict(os.environ)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p)
    warm = WarmServer(tmp_path_factory.mktemp("warm") / "server.log")
    wait_for(lambda: "serving" in warm.log_path.read_text(), "the server to import its modules")
    yield warm
    warm.stop()
    os.environ.clear()
    os.environ.update(saved)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"waited {WAIT_S} s for {what}"
        time.sleep(0.05)


def della(server: WarmServer, args: list[str], **env: str) -> subprocess.Popen:
    """`python -m della ARGS` as a rule runs it, in the environment Snakemake gives its jobs: the
    server's (stdout and stderr to pipes here, to the rule's log there)."""
    job_env = {**server.environment, SOCKET_VARIABLE: server.socket, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "della", *args],
        env=job_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=WAIT_S)
    return process.returncode, out, err


def workers(server: WarmServer) -> list[str]:
    return re.findall(r"worker \d+: (\w+) in ", server.log_path.read_text())


def test_a_warm_training_run_ends_in_the_weights_of_a_cold_one(
    server, tiny_backbones, train_file, uninterrupted, tmp_path
):
    before = len(workers(server))
    status, out, err = finish(della(server, cli_args(tiny_backbones, SETTINGS, train_file, tmp_path / "run")))
    assert status == 0, err
    assert "trained ->" in out and "warm start" not in err
    assert workers(server)[before:] == ["train"]  # it ran in a worker, not cold
    assert_same_run(uninterrupted, tmp_path / "run")


def test_a_failing_job_ends_with_the_status_and_stderr_of_a_cold_one(server, tmp_path):
    args = [
        "evaluate",
        "--data",
        str(tmp_path),
        "--run",
        str(tmp_path / "missing"),
        "--samples",
        str(tmp_path / "samples.jsonl"),
        "--out",
        str(tmp_path / "metrics.json"),
        "--seed",
        "0",
        "--threads",
        "1",
        "--settings",
        "{}",
    ]
    before = len(workers(server))
    warm = finish(della(server, args))
    cold = finish(della(server, args, **{SOCKET_VARIABLE: ""}))
    assert workers(server)[before:] == ["evaluate"]
    assert warm[0] == cold[0] != 0
    assert warm[2] == cold[2] and warm[2].strip(), warm[2]


def test_sigterm_to_the_job_reaches_the_worker_which_checkpoints_and_the_rerun_resumes(
    server, tiny_backbones, train_file, uninterrupted, tmp_path
):
    """What SLURM's preemption or Snakemake's Ctrl-C does to a job: training saves a checkpoint and
    exits with EX_TEMPFAIL, as a cold process does (test_reliability)."""
    run = tmp_path / "run"
    args = cli_args(tiny_backbones, SETTINGS, train_file, run)
    job = della(server, args)
    wait_for(lambda: (run / "checkpoints" / "last.pt").exists() or job.poll() is not None, "a checkpoint")
    job.send_signal(signal.SIGTERM)
    status, _, err = finish(job)
    assert status == EX_TEMPFAIL, err
    assert f"worker {read_pid(server, 'train', -1)}: status {EX_TEMPFAIL}" in server.log_path.read_text()
    status, _, err = finish(della(server, args))
    assert status == 0, err
    assert_same_run(uninterrupted, run)


def read_pid(server: WarmServer, command: str, index: int) -> int:
    return int(re.findall(rf"worker (\d+): {command} in ", server.log_path.read_text())[index])


def test_a_killed_job_takes_its_worker_with_it(server, tiny_backbones, train_file, tmp_path):
    """kill -9 of the client (a dying Snakemake's jobs): the worker must not train on unseen; it gets
    SIGTERM, checkpoints and ends."""
    run = tmp_path / "run"
    job = della(server, cli_args(tiny_backbones, SETTINGS, train_file, run))
    wait_for(lambda: (run / "checkpoints" / "last.pt").exists() or job.poll() is not None, "a checkpoint")
    job.kill()
    job.communicate()
    pid = read_pid(server, "train", -1)
    wait_for(lambda: f"worker {pid}: status" in server.log_path.read_text(), f"worker {pid} to end")
    log = server.log_path.read_text()
    assert f"worker {pid}: its client is gone; SIGTERM" in log
    assert f"worker {pid}: status {EX_TEMPFAIL}" in log or f"worker {pid}: status 0" in log  # or it had just finished


@pytest.mark.parametrize(
    "env, why",
    [
        ({"HF_HOME": "/elsewhere"}, "environment differs from the server's in HF_HOME"),
        ({"SLURM_JOB_ID": "1"}, "environment differs from the server's in SLURM_JOB_ID"),  # a job SLURM started
        ({SOCKET_VARIABLE: "/nonexistent/socket"}, "no server at /nonexistent/socket"),
    ],
)
def test_a_job_the_server_cannot_stand_in_for_runs_cold(server, tiny_backbones, train_file, tmp_path, env, why):
    before = len(workers(server))
    status, out, err = finish(della(server, cli_args(tiny_backbones, SETTINGS, train_file, tmp_path / "run"), **env))
    assert status == 0, err
    assert "trained ->" in out
    assert workers(server)[before:] == []
    if why:
        assert why in err and "running cold" in err
    else:
        assert "warm start" not in err


def test_a_malformed_request_is_logged_and_the_server_serves_on(server, tmp_path):
    import socket

    for payload in (b"not json\n", b'{"argv": ["train"]}\n'):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.connect(server.socket)
            raw.sendall(payload)
            assert raw.recv(100) == b""  # closed without an answer
    assert server.log_path.read_text().count("bad request") >= 2
    assert server.process.poll() is None
    test_a_failing_job_ends_with_the_status_and_stderr_of_a_cold_one(server, tmp_path)


def test_the_server_starts_only_for_local_runs_in_its_own_interpreter(tmp_path):
    log = tmp_path / "server.log"
    assert start_server({"warm_start": False}, True, sys.executable, log) is None
    assert start_server({"warm_start": True}, False, sys.executable, log) is None  # --profile slurm
    assert start_server({"warm_start": True}, True, "python", log) is None  # --sdm conda: the env's python
    assert not log.exists()


def test_the_server_ends_when_snakemake_is_killed(tmp_path):
    """Its stdin is a pipe from Snakemake: SIGKILL of Snakemake closes it, and the server exits and
    removes its socket."""
    script = (
        "import sys, time; from pathlib import Path; from della.pipeline.warm import WarmServer; "
        f"s = WarmServer(Path({str(tmp_path / 'server.log')!r})); print(s.process.pid, s.socket, flush=True); "
        "time.sleep(600)"
    )
    head = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    pid, socket_path = head.stdout.readline().split()
    wait_for(lambda: os.path.exists(socket_path), "the socket")
    head.kill()
    head.wait()
    wait_for(
        lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2],
        "the server to exit",
    )
    assert not os.path.exists(socket_path) and not os.path.exists(os.path.dirname(socket_path))
    assert "stopped" in (tmp_path / "server.log").read_text()


def test_a_warm_snakemake_run_writes_what_a_cold_one_writes(tmp_path):
    """The whole path, from Snakemake's onstart to the jobs' outputs: one run's train, generate,
    evaluate and training-curves figure, with warm_start on and off."""
    config = one_run_config()
    run = "runs/yelp/della/seed0"
    targets = [f"{run}/metrics.json", f"{config['results_dir']}/figures/training/yelp/della/seed0.png"]
    results = {}
    for warm in (False, True):
        workdir = tmp_path / ("warm" if warm else "cold")
        workdir.mkdir()
        config_file = write_config(workdir / "config.yaml", {**config, "warm_start": warm})
        result = snakemake(workdir, config_file, targets=targets)
        assert result.returncode == 0, result.stderr[-4000:]
        results[warm] = workdir
    log = (results[True] / "logs" / "warm_start.log").read_text()
    assert sorted(workers_in(log)) == ["evaluate", "figure", "generate", "train"], log
    assert "refused" not in log and log.rstrip().endswith("stopped"), log
    # PRELOAD follows the code: no job imported a third-party package the server had not
    assert "imported beyond the preload" not in log, log
    assert not (results[False] / "logs" / "warm_start.log").exists()
    cold, warm = results[False] / run, results[True] / run
    assert logged_metrics(cold) == logged_metrics(warm)
    for name in ("model/config.json", "model/weights.pt", "samples.jsonl", "samples.settings.json", "metrics.json"):
        assert (cold / name).read_bytes() == (warm / name).read_bytes(), name
    assert (
        json.loads((cold / "train_done.json").read_text()).keys()
        == json.loads((warm / "train_done.json").read_text()).keys()
    )
    for stage in ("train", "generate", "evaluate"):  # each attempt records how it started (Table 6)
        for folder, start in ((cold, "cold"), (warm, "warm")):
            attempts = json.loads((folder / "attempts" / f"{stage}.json").read_text())["attempts"]
            assert [a["start"] for a in attempts] == [start], (stage, attempts)


def test_the_server_refuses_to_fork_with_a_second_thread():
    """fork() copies only the calling thread; a lock another thread held would stay locked in the
    worker. A fresh interpreter has one thread; one that started another has two, and the server
    would run the job cold."""
    code = (
        "import threading, time\n"
        "from della.pipeline.warm import fork_hazard\n"
        "print(fork_hazard())\n"
        "threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n"
        "print(fork_hazard())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    alone, with_thread = result.stdout.splitlines()
    assert alone == "None"
    assert with_thread == "the server has 2 threads, and fork() copies only one"


def workers_in(log: str) -> list[str]:
    return re.findall(r"worker \d+: (\w+) in ", log)


def test_imports_beyond_the_preload_name_third_party_packages_only():
    """What a worker logs when its job imported a package the server had not (PRELOAD drifted)."""
    code = (
        "import sys\n"
        "from della.pipeline.warm import imported_beyond\n"
        "before = set(sys.modules)\n"
        "import decimal, della.run.lengths, yaml\n"  # stdlib, ours, third-party
        "print(imported_beyond(before))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "['yaml']"
