"""How each job of a run ended (della/cluster/attempts.py) and what its retry asks for: more walltime only
after a time limit or a kill, more host memory only after a kill or host out-of-memory (capped),
a larger card after GPU out-of-memory, and no blind retry of GPU out-of-memory on the same card."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from della.cli import main, stage_attempt
from della.cluster.attempts import (
    ERROR,
    FINISHED,
    GPU_OUT_OF_MEMORY,
    HOST_OUT_OF_MEMORY,
    RUNNING,
    SIGNAL,
    RepeatedOutOfMemory,
    Retry,
    StageInterrupted,
    attempts_path,
    gpu_facts,
    read_attempts,
    recorded_attempt,
    retry_for,
    settings_digest,
)
from della.cluster.gpu_memory import larger_card

from helpers import ROOT


def write_attempts(run_dir: Path, stage: str, *ends: str, **facts) -> None:
    path = attempts_path(run_dir, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"attempts": [{"ended": end, "seconds": 1.0, **facts} for end in ends]}))


@pytest.mark.parametrize(
    ("ends", "attempt", "expected"),
    [
        ((), 1, Retry()),
        ((SIGNAL,), 1, Retry()),  # a first attempt asks for the config's values, whatever came before
        ((SIGNAL,), 2, Retry(time_factor=2)),  # a time limit (its warning or SIGTERM): more time only
        ((RUNNING,), 2, Retry(time_factor=2, memory_factor=2)),  # killed outright: time limit or OOM killer
        ((HOST_OUT_OF_MEMORY,), 2, Retry(memory_factor=2)),
        ((ERROR,), 2, Retry()),  # an error is not a resource: the same again
        ((SIGNAL, SIGNAL, RUNNING), 4, Retry(time_factor=4, memory_factor=2)),
        # only this sequence's attempts count: the last `attempt - 1`, after the last finished one
        ((SIGNAL, SIGNAL, FINISHED, SIGNAL), 2, Retry(time_factor=2)),
        ((RUNNING, RUNNING, SIGNAL), 2, Retry(time_factor=2)),
    ],
)
def test_a_retry_asks_for_more_of_what_ran_out(tmp_path, ends, attempt, expected):
    write_attempts(tmp_path, "train", *ends)
    assert retry_for(tmp_path, "train", attempt) == expected


def test_after_gpu_out_of_memory_the_retry_asks_for_a_larger_card(tmp_path):
    write_attempts(tmp_path, "generate", GPU_OUT_OF_MEMORY, gpu="NVIDIA A100-SXM4-40GB", gpu_memory_gb=39.4)
    ran_out_on = retry_for(tmp_path, "generate", 2).gpu_memory_over_gb
    assert ran_out_on == 39.4
    cards = {"v100": 32, "a100": 40, "h100": 80, "h200": 141}
    assert larger_card(cards, ran_out_on) == "h100"  # the a100 it ran out on (39.4 GiB) is not larger
    assert larger_card(cards, 139.8) is None
    assert retry_for(tmp_path, "evaluate", 2) == Retry()  # each stage has its own record


def run_attempt(run_dir: Path, error: BaseException | None, facts=None) -> dict:
    try:
        with recorded_attempt(run_dir, "evaluate", facts or {"settings": "s"}):
            if error is not None:
                raise error
    except BaseException as raised:  # noqa: BLE001 (what the record says about each kind)
        assert raised is error
    return read_attempts(attempts_path(run_dir, "evaluate"))[-1]


@pytest.mark.parametrize(
    ("error", "ended"),
    [
        (None, FINISHED),
        (StageInterrupted("SIGTERM received"), SIGNAL),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), GPU_OUT_OF_MEMORY),
        (MemoryError(), HOST_OUT_OF_MEMORY),
        (
            RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory"),
            HOST_OUT_OF_MEMORY,
        ),
        (ValueError("data/yelp/test.jsonl line 3: not JSON"), ERROR),
    ],
)
def test_each_attempt_records_how_it_ended(tmp_path, error, ended):
    record = run_attempt(tmp_path, error)
    assert record["ended"] == ended and record["settings"] == "s"
    if error is not None:
        assert type(error).__name__ in record["detail"]


def test_an_attempt_killed_outright_stays_running(tmp_path):
    """SIGKILL (the OOM killer, a time limit's grace run out) leaves no chance to write: the record
    says `running`, which the next attempt reads as killed."""
    code = (
        "import sys, time; from pathlib import Path; from della.cluster.attempts import recorded_attempt\n"
        "with recorded_attempt(Path(sys.argv[1]), 'generate', {'settings': 's'}):\n"
        "    print('started', flush=True); time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    process.kill()
    process.wait()
    (record,) = read_attempts(attempts_path(tmp_path, "generate"))
    assert record["ended"] == RUNNING
    assert retry_for(tmp_path, "generate", 2) == Retry(time_factor=2, memory_factor=2)


def test_sigterm_ends_a_generate_or_evaluate_attempt_as_a_signal(tmp_path):
    import argparse

    args = argparse.Namespace(command="generate", run=tmp_path, settings={"decoding": "greedy"})
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(StageInterrupted, match="SIGTERM"):
        with stage_attempt(args, None):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    (record,) = read_attempts(attempts_path(tmp_path, "generate"))
    assert record["ended"] == SIGNAL and "SIGTERM" in record["detail"]
    assert record["settings"] == settings_digest({"decoding": "greedy"})


def test_gpu_out_of_memory_is_not_retried_on_the_same_card_with_the_same_settings(tmp_path, capsys):
    """The evaluate command stops before it loads anything when its last attempt ran out of GPU
    memory with these settings on this card; other settings (or a larger card) go ahead."""
    settings = {"evaluation": {"batch_size": 64}}
    run_dir = tmp_path / "run"
    write_attempts(run_dir, "evaluate", GPU_OUT_OF_MEMORY, settings=settings_digest(settings), **gpu_facts())
    argv = [
        "evaluate",
        "--data",
        str(tmp_path),
        "--run",
        str(run_dir),
        "--samples",
        str(tmp_path / "s.jsonl"),
        "--out",
        str(tmp_path / "m.json"),
        "--seed",
        "0",
        "--settings",
    ]
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, json.dumps(settings)])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "ran out of GPU memory" in error and "evaluation.token_budget" in error and "cluster.gpu_models" in error
    assert len(read_attempts(attempts_path(run_dir, "evaluate"))) == 1  # nothing started, nothing recorded
    with pytest.raises(SystemExit):  # smaller batches: it starts (and fails later: there is no model)
        main([*argv, json.dumps({"evaluation": {"batch_size": 32}})])
    assert "ran out of GPU memory" not in capsys.readouterr().err
    assert read_attempts(attempts_path(run_dir, "evaluate"))[-1]["ended"] == ERROR


def test_a_larger_card_goes_ahead_after_gpu_out_of_memory(tmp_path):
    write_attempts(tmp_path, "evaluate", GPU_OUT_OF_MEMORY, settings="s", gpu="NVIDIA A100", gpu_memory_gb=39.4)
    with pytest.raises(RepeatedOutOfMemory, match="NVIDIA A100"):
        with recorded_attempt(tmp_path, "evaluate", {"settings": "s", "gpu_memory_gb": 39.4}):
            pass
    assert run_attempt(tmp_path, None, {"settings": "s", "gpu_memory_gb": 79.1})["ended"] == FINISHED


def test_a_job_steps_snakemake_ignores_the_time_limit_warning_and_training_still_gets_it():
    """Under SLURM (SLURM_STEP_ID set) the Snakemake process ignores SIGUSR1, the shell and the
    command below it inherit that, and a command that sets its own handler receives it."""
    child = (
        "import signal, os, time; got = []; signal.signal(signal.SIGUSR1, lambda s, f: got.append(s)); "
        "os.kill(os.getppid(), 0); os.kill(os.getpid(), signal.SIGUSR1); time.sleep(0.1); print(got)"
    )
    inherited = "import signal; print(signal.getsignal(signal.SIGUSR1).name)"
    code = (
        "import os, signal, subprocess, sys\n"
        "from della.pipeline.jobenv import ignore_time_limit_warning_in_job_step\n"
        "print(ignore_time_limit_warning_in_job_step())\n"
        "os.kill(os.getpid(), signal.SIGUSR1)\n"  # ignored: this process lives on
        f"subprocess.run(['bash', '-c', sys.executable + ' -c \"{inherited}\"'], check=True)\n"
        f"subprocess.run([sys.executable, '-c', {child!r}], check=True)\n"
    )
    usr1 = f"[{int(signal.SIGUSR1)}]"
    for step, expected in (("0", ["True", "SIG_IGN", usr1]), (None, ["False", "SIG_DFL", usr1])):
        env = {k: v for k, v in os.environ.items() if k != "SLURM_STEP_ID"} | ({"SLURM_STEP_ID": step} if step else {})
        if step is None:  # outside a job step SIGUSR1 keeps Python's default: it ends the process
            code_here = code.replace("os.kill(os.getpid(), signal.SIGUSR1)\n", "")
        else:
            code_here = code
        result = subprocess.run(
            [sys.executable, "-c", code_here], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == expected, (step, result.stdout)
