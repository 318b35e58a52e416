"""Data parallelism with PyTorch's own stack: torchrun ranks, DDP training, sharded evaluation.

`della-bench train|generate|evaluate --nproc N` with N > 1 starts N ranks on this node with
torchrun's launcher (`torch.distributed.run`, called in-process: the same as
`torchrun --standalone --nproc-per-node N -m della.cli ...`); each rank runs the same command
with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, ...) and joins the process group
(gloo on CPU, NCCL for CUDA tensors). N <= 1 runs the command in this process, as before.

What a rank does with the world is decided by the code that needs it (docs/distributed.md):
- training (della/run/train.py): DDP; every rank takes its slice of the same global batch;
- IW-PPL/ELBO/KL/MI/AU (metrics/representation.py) and generation (della/run/generate.py): each
  rank takes every N-th batch; the results are gathered in the original order. Each batch's
  randomness is seeded by (seed, batch index), so the numbers do not depend on N.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

# Exit status of a run stopped by a signal after saving: sysexits' "temporary failure, retry".
EX_TEMPFAIL = 75
# Signals the launcher forwards to its ranks (SIGUSR1: SLURM's `--signal` warning before walltime).
FORWARDED_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"
# How long the launcher lets signalled ranks finish their step and checkpoint before SIGKILL.
SHUTDOWN_TIMEOUT_S = 300


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes files."""
        return self.rank == 0


def world() -> World:
    """This process's place among the ranks (rank 0 of 1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size())
    return World()


def launched() -> bool:
    """Whether torchrun (or `launch`) started this process as one of several ranks."""
    return "TORCHELASTIC_RUN_ID" in os.environ or {"RANK", "WORLD_SIZE", "MASTER_ADDR"} <= os.environ.keys()


@contextmanager
def process_group():
    """Join the ranks torchrun started; outside torchrun (or already joined), nothing to do.

    A CUDA rank uses GPU LOCAL_RANK. Collectives go through gloo for CPU tensors and NCCL for
    CUDA tensors, so the same calls work for CPU and GPU runs (and CPU-side metadata on GPU runs).
    """
    if not launched() or dist.is_initialized():
        yield world()
        return
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cpu:gloo,cuda:nccl"
    dist.init_process_group(backend)
    try:
        yield world()
    finally:
        dist.destroy_process_group()


def launch(nproc: int, argv: list[str]) -> int:
    """Run `della-bench <argv>` as `nproc` ranks on this node and wait; returns the exit status.

    A rank that stopped for a signal after checkpointing exits EX_TEMPFAIL, and so does the
    whole launch then (Snakemake's retries resume it); a signal to the launcher itself is
    forwarded to the ranks, which checkpoint and stop at their next step boundary, and then the
    launcher process exits with EX_TEMPFAIL itself (it does not return: see below).
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = torchrun.parse_args(
        [
            "--standalone",
            f"--nproc-per-node={nproc}",
            f"--signals-to-handle={FORWARDED_SIGNALS}",
            f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}",
            "--module",
            "della.cli",
        ]
    )
    args.training_script_args = argv  # set, not parsed: torchrun's parser would read our flags as its own
    try:
        torchrun.run(args)
    except SignalException as stop:
        print(
            f"della-bench: {signal.Signals(stop.sigval).name} received, forwarded to the {nproc} ranks", file=sys.stderr
        )
        # The agent has already waited for the ranks (they checkpointed and exited). On a signal
        # torchrun deliberately leaves its rendezvous store open, and the store's C++ thread
        # then aborts interpreter shutdown at random ("terminate called without an active
        # exception", exit -6). Nothing is left to clean up in this process: leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EX_TEMPFAIL)
    except ChildFailedError as failed:
        codes = {rank: failure.exitcode for rank, failure in failed.failures.items()}
        print(
            f"della-bench: ranks exited with {codes} (rank: status; negative: killed by that signal)", file=sys.stderr
        )
        # EX_TEMPFAIL comes only after the checkpoint every rank waited for; a rank killed by the
        # launcher as it tore the others down shows as a signal.
        if EX_TEMPFAIL in codes.values():
            return EX_TEMPFAIL
        return next((code for code in codes.values() if code > 0), 1)
    return 0


# -----------------------------------------------------------------------------
# devices

# The `device` setting of training, generation and evaluation (and of the metrics' feature models).
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(setting: str, owner: str = "device") -> torch.device:
    """The device a `device` setting names: "auto" is CUDA when available; under torchrun a CUDA
    rank gets its own GPU (LOCAL_RANK, selected by `process_group`). `owner` names the setting
    in errors, e.g. "generation.device"."""
    if setting not in DEVICES:
        raise ValueError(f"{owner} must be one of {list(DEVICES)}, got {setting!r}")
    if setting == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{owner} is 'cuda' but no CUDA device is available")
    if setting == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


# -----------------------------------------------------------------------------
# seeds that do not depend on the number of ranks


def derived_seed(seed: int, *keys: int) -> int:
    """A seed for (seed, *keys), e.g. (run seed, batch index): independent streams, the same
    whichever rank computes that batch (numpy's SeedSequence mixes the keys)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


# -----------------------------------------------------------------------------
# collectives (each a no-op in a single process)


def shard(n: int) -> range:
    """The indices 0..n-1 this rank handles: every size-th one, starting at its rank."""
    w = world()
    return range(w.rank, n, w.size)


def gather_in_order(pairs: list[tuple[int, object]]) -> list:
    """Every rank's (index, value) pairs, on every rank, as the list of values in index order."""
    if world().size > 1:
        parts: list = [None] * world().size
        dist.all_gather_object(parts, pairs)
        pairs = [pair for part in parts for pair in part]
    return [value for _, value in sorted(pairs, key=lambda pair: pair[0])]


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if `flag` is true on one: ranks take the same branch (stop, skip)."""
    if world().size == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    if world().size > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor


def barrier() -> None:
    if world().size > 1:
        dist.barrier()
