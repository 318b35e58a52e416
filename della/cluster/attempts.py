"""How each job of a run ended, so that its retry asks SLURM for more of what ran out.

Every train / generate / evaluate job of a run is an attempt, recorded in
`run_dir/attempts/<stage>.json` when it starts and rewritten as it goes (training: at every log
step and checkpoint) and when it ends. How it ended (`ended`):

- `running`: never updated after it started, so killed outright: the kernel's out-of-memory
  killer (SLURM: OUT_OF_MEMORY), SIGKILL after a time limit's grace period, a lost node;
- `signal`: stopped by SIGUSR1 (the time-limit warning the profile asks SLURM for,
  `cluster.time_limit_warning_s`) or SIGTERM (a time limit, preemption, scancel); training saved
  a checkpoint first;
- `gpu_out_of_memory`, `host_out_of_memory`, `error`, `stopped` (training's `stop_after_steps`),
  `finished`.

The workflow sizes a retry from the attempts that failed before it (`retry_for`, used by
workflow/rules/common.smk): more walltime only after a time limit or a kill, more host memory only
after a kill or host out-of-memory (capped at `resources.max_mem_mb`), a larger card after GPU
out-of-memory (`cluster.gpu_models`). GPU memory cannot grow on the same card, so an attempt that
would meet the same card with the same settings as one that ran out of GPU memory stops at once
(`RepeatedOutOfMemory`). Table 6 sums the training attempts' device-seconds (della/report/tidy.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from della.io import atomic_write_json
from della.pipeline.jobenv import how_started
from della.run.memory import GIB

STAGES = ("train", "generate", "evaluate")
RUNNING, FINISHED, SIGNAL, STOPPED = "running", "finished", "signal", "stopped"
GPU_OUT_OF_MEMORY, HOST_OUT_OF_MEMORY, ERROR = "gpu_out_of_memory", "host_out_of_memory", "error"
# the ends after which more walltime could help: a time limit (its warning or SIGTERM), or a kill
# that may have been the time limit's SIGKILL
OUT_OF_TIME = (SIGNAL, RUNNING)
# the ends after which more host memory could help
OUT_OF_HOST_MEMORY = (HOST_OUT_OF_MEMORY, RUNNING)


# What to lower when a stage needs more than a card has (the start-up error and the OOM message).
LOWER = {
    "train": "training.batch_size (training.grad_accumulation_steps keeps the effective batch) or the "
    "dataset's max_source_tokens / max_target_tokens",
    "generate": "generation.token_budget (greedy/beam: a number below what `auto` chose, in the job's log) or "
    "generation.batch_size (sampling is not cut by the budget)",
    "evaluate": "evaluation.token_budget (a number below what `auto` chose, in the job's log) or the feature "
    "models' evaluation.mauve.batch_size / evaluation.bertscore.batch_size",
}


def attempts_path(run_dir: Path, stage: str) -> Path:
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r}: one of {STAGES}")
    return Path(run_dir) / "attempts" / f"{stage}.json"


def read_attempts(path: Path) -> list[dict]:
    """The attempts recorded in `path` (none when it is absent; an unreadable file is named and
    counts as none: the record only sizes retries, it never changes a result)."""
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text(encoding="utf-8"))["attempts"]
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        print(f"{path}: unreadable; counting attempts from this one", file=sys.stderr, flush=True)
        return []


def settings_digest(settings: dict) -> str:
    """SHA-256 of a job's settings (a JSON-able dict): equal settings, equal digest."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def gpu_facts() -> dict:
    """The card this process computes on (CUDA's first visible device), or none."""
    import torch

    if not torch.cuda.is_available():
        return {"gpu": None, "gpu_memory_gb": None}
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {"gpu": properties.name, "gpu_memory_gb": round(properties.total_memory / GIB, 1)}


class AttemptLog:
    """One attempt appended to a stage's record; `path` None (a data-parallel rank other than 0)
    writes nothing."""

    def __init__(self, path: Path | None, facts: dict):
        self.path, self.started, self.clock_stopped = path, time.time(), False
        self.attempts = read_attempts(path) if path is not None else []
        self.current = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": 0.0,
            "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "start": how_started(),  # warm (a forked worker, imports done) or cold: della/pipeline/jobenv.py
            **facts,
            "ended": RUNNING,
        }
        self.attempts.append(self.current)
        self.update()

    def update(self, **fields) -> None:
        if not self.clock_stopped:
            fields["seconds"] = round(time.time() - self.started, 2)
        self.current.update(fields)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, {"attempts": self.attempts})

    def forget_earlier(self) -> None:
        """Keep only this attempt: the earlier ones belonged to a run whose settings changed
        (della/run/train.py's `supersede` keeps their record beside their checkpoints)."""
        self.attempts[:] = [self.current]
        self.update()

    def end(self, ended: str, detail: str | None = None, **fields) -> None:
        self.update(ended=ended, **({"detail": detail} if detail else {}), **fields)

    @property
    def ended(self) -> str:
        return self.current["ended"]

    def summary(self) -> dict:
        """What train_done.json records: the attempts, their seconds, and seconds x devices. It
        stops this attempt's clock, so the record's seconds stay the sum written here."""
        self.update()
        self.clock_stopped = True
        return {
            "attempts": len(self.attempts),
            "seconds": round(sum(a["seconds"] for a in self.attempts), 2),
            "device_seconds": round(sum(a["seconds"] * a.get("world_size", 1) for a in self.attempts), 2),
        }


class RepeatedOutOfMemory(RuntimeError):
    """This attempt would repeat one that ran out of GPU memory: same settings, no larger card."""


class Stopped(Exception):
    """A job stopped because a signal asked it to (training's `Interrupted`, after its checkpoint)."""


class StageInterrupted(Stopped):
    """A generate / evaluate job stopped by SIGTERM (a time limit, preemption, scancel)."""


def end_of(error: BaseException) -> str:
    """How an attempt that raised `error` ended."""
    import torch

    if isinstance(error, (Stopped, KeyboardInterrupt)):
        return SIGNAL
    if isinstance(error, torch.OutOfMemoryError):
        return GPU_OUT_OF_MEMORY
    if isinstance(error, MemoryError) or "can't allocate memory" in str(error):
        return HOST_OUT_OF_MEMORY
    return ERROR


def check_not_repeated(path: Path, facts: dict, stage: str) -> None:
    """Stop before loading anything when the last attempt recorded in `path` ran out of GPU memory
    with these very settings on a card no smaller than this one: it would again."""
    attempts = read_attempts(path)
    last = attempts[-1] if attempts else None
    if last is None or last.get("ended") != GPU_OUT_OF_MEMORY or last.get("settings") != facts.get("settings"):
        return
    before, now = last.get("gpu_memory_gb"), facts.get("gpu_memory_gb")
    if before is not None and now is not None and now > before:
        return
    card = f"{last['gpu']} ({before} GB)" if last.get("gpu") else "the same device"
    raise RepeatedOutOfMemory(
        f"the last {stage} attempt ran out of GPU memory on {card} with the same settings, and this one has "
        f"{f'{now} GB' if now is not None else 'no more'}: it would again ({path}). Lower {LOWER[stage]}, "
        f"or list a larger card in cluster.gpu_models "
        f'(docs/cluster.md, "GPU memory per job")'
    )


@contextmanager
def recorded_attempt(run_dir: Path, stage: str, facts: dict, write: bool = True):
    """Record one attempt of `stage` around its work: started, then how it ended (see the module's
    docstring). `facts` should hold `settings` (a digest) and the card (`gpu_facts`)."""
    path = attempts_path(run_dir, stage)
    if write:
        check_not_repeated(path, facts, stage)
    log = AttemptLog(path if write else None, facts)
    try:
        yield log
    except BaseException as error:
        if log.ended == RUNNING:
            log.end(end_of(error), f"{type(error).__name__}: {str(error)[:300]}")
        raise
    if log.ended == RUNNING:
        log.end(FINISHED)


@dataclass(frozen=True)
class Retry:
    """What a retry asks for, relative to the first attempt: walltime and host memory factors, and
    the GPU memory (GB) of the card the last attempt ran out of, if it did."""

    time_factor: int = 1
    memory_factor: int = 1
    gpu_memory_over_gb: float | None = None


def retry_for(run_dir: Path, stage: str, attempt: int) -> Retry:
    """What Snakemake's `attempt` (1 = the first) of a stage asks for, from how the attempts before
    it in this sequence ended: the last `attempt - 1` records since the last finished one. A time
    limit or kill adds one walltime, a kill or host out-of-memory one memory, each time."""
    if attempt <= 1:
        return Retry()
    attempts = read_attempts(attempts_path(run_dir, stage))
    finished = [i for i, a in enumerate(attempts) if a.get("ended") == FINISHED]
    earlier = attempts[finished[-1] + 1 if finished else 0 :][-(attempt - 1) :]
    ends = [a.get("ended") for a in earlier]
    last = earlier[-1] if earlier else {}
    return Retry(
        time_factor=1 + sum(e in OUT_OF_TIME for e in ends),
        memory_factor=1 + sum(e in OUT_OF_HOST_MEMORY for e in ends),
        gpu_memory_over_gb=last.get("gpu_memory_gb") if last.get("ended") == GPU_OUT_OF_MEMORY else None,
    )
