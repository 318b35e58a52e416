"""The environment the workflow's jobs inherit (workflow/rules/common.smk): every rule runs
`"$DELLA_PYTHON" -m della <stage>`, so it needs the interpreter and this repository on PYTHONPATH,
not an installed `della-bench` command."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

# Jobs never reach the model hub: pinned models are read from the prefetched model cache
# (della/pipeline/prefetch.py), so a compute node without internet runs them, and no two jobs race to
# download into one cache. The prefetch rule alone turns these off for its command.
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def export_job_environment(repo: Path, python: str) -> None:
    """Set DELLA_PYTHON, the hub offline, and put `repo` first on PYTHONPATH (once) for the jobs
    started from here."""
    os.environ["DELLA_PYTHON"] = python
    os.environ.update(OFFLINE)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(repo) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(repo), *paths])


def ignore_time_limit_warning_in_job_step() -> bool:
    """In a SLURM job step, ignore SIGUSR1; True when it did.

    SLURM sends the time-limit warning a train job asks for (`sbatch --signal=USR1@N`,
    `cluster.time_limit_warning_s`) to every process of the job's steps: the training, which saves a
    checkpoint and exits to be resumed (della/run/train.py), and the Snakemake that runs it there, which
    Python's default action for SIGUSR1 kills, failing the step while the checkpoint is written.
    So the step's Snakemake ignores it; the shell below inherits that, and training sets its own
    handler (tests/test_slurm.py)."""
    if os.environ.get("SLURM_STEP_ID") is None or threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    return True


# How this process started its job (della/pipeline/warm.py): `warm` in a worker the warm server forked, its
# imports done, else `cold`. Here, in a module that imports nothing of the project, so that both
# the server and della/cluster/attempts.py (which records it) can import it without a cycle.
WARM, COLD = "warm", "cold"
_started = COLD


def mark_started_warm() -> None:
    global _started
    _started = WARM


def how_started() -> str:
    return _started
