"""One training loop for every model (DELLA and all baselines): same optimiser, schedule, annealing.

Fault tolerance (docs/reliability.md lists each fault and the test that shows it):
- Every `checkpoint_every` steps, at the end, and when SIGTERM or SIGUSR1 arrives (preemption,
  walltime), the model, optimiser, scheduler, gradient scaler, step, data order and every RNG
  state go to `checkpoints/last.pt` atomically; the checkpoint before it stays as `prev.pt`.
  A rerun continues from `last.pt` and ends with the weights and log of an uninterrupted run.
- After a signal the run saves at the next step boundary and exits with EX_TEMPFAIL (75,
  "try again"), so the scheduler or Snakemake's `retries` resubmits it and it resumes.
- A non-finite loss or gradient stops the run with an error naming the step, the loss terms and
  the last good checkpoint (`nonfinite: stop`), or skips that step and counts it in the log
  (`nonfinite: skip`, at most `max_nonfinite_skips` times). Non-finite weights are never saved.

Data parallel (launched by torchrun, della/run/distributed.py; docs/distributed.md): DDP over
`world_size` ranks. `batch_size` stays the global batch: every rank draws the same global order
and takes its slice of each batch, so the optimiser sees the gradient of the same batch as one
process. Rank 0 writes the log, the checkpoints and the model; the checkpoint holds the global
data position and every rank's RNG states, so it resumes on any number of ranks.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import random
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from della.cluster.attempts import (
    SIGNAL,
    STOPPED,
    AttemptLog,
    Stopped,
    attempts_path,
    gpu_facts,
    recorded_attempt,
    settings_digest,
)
from della.io import atomic_write_json, keep_previous, read_jsonl, torch_save_atomic
from della.models.vae import (
    KL_SUM,
    KL_THRESHOLD_DIMENSION,
    KL_THRESHOLD_GROUP,
    TransformerVAE,
    VAEConfig,
    weighted_parameters,
)
from della.run.batches import batches, load_records, target_of
from della.run.distributed import (
    DEVICES,
    EX_TEMPFAIL,
    any_rank,
    barrier,
    derived_seed,
    gather_in_order,
    resolve_device,
    sum_over_ranks,
    world,
)
from della.run.numerics import tf32_in_effect

# β schedules (`training.beta_schedule`): constant, or cyclical annealing (Fu et al. 2019) as
# used by Optimus and DELLA: each cycle holds β at β_min, raises it linearly, then holds β_max.
# DELLA (App. A.1): β_min = 1e-5 for the first half of a period, rising over the next quarter.
CONSTANT, CYCLICAL = "constant", "cyclical"
# `training.precision`: the autocast dtype of forward passes (weights and optimiser stay fp32).
FP32, BF16, FP16 = "fp32", "bf16", "fp16"
AUTOCAST_DTYPES = {FP32: None, BF16: torch.bfloat16, FP16: torch.float16}
# `training.nonfinite`: what a non-finite loss or gradient does.
STOP, SKIP = "stop", "skip"
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# Settings that may change between a checkpoint and its resumption without changing the weights
# (validation runs on a random stream of its own).
RESUMABLE_CHANGES = {
    "log_every",
    "checkpoint_every",
    "max_nonfinite_skips",
    "valid_every",
    "max_valid_examples",
    "convergence",
}
CONVERGENCE_KEYS = ("last_fraction", "min_relative_improvement")
# What the validation pass reports: the negative ELBO at beta = 1 per sentence (for a model without
# a latent, its NLL), the reconstruction and KL per sentence, the NLL per token, the KL per group.
VALID_LOSS = "valid_loss"
VALID_SEED_OFFSET = 7919  # the validation stream's seed: seed + this, apart from the training streams


@dataclass
class TrainSettings:
    """The `training` config section (a model entry's `train:` overrides keys of it)."""

    batch_size: int
    learning_rate: float
    max_steps: int | None = None  # or epochs_per_period and periods (below)
    warmup_steps: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    beta_schedule: str = CYCLICAL
    beta_max: float = 1.0
    beta_min: float = 0.0
    beta_cycles: int = 4
    beta_ratio_zero: float = 0.25
    beta_ratio_increase: float = 0.25
    kl_threshold: float = 0.0
    kl_threshold_scope: str = KL_THRESHOLD_DIMENSION  # della/models/vae.py: Optimus' per-dimension free bits
    kl_reduction: str = KL_SUM
    bow_weight: float = 0.0  # BOW loss weight (0: none); Table 5
    bn_vae_gamma: float | None = None  # BN-VAE on the posterior means (None: off); Table 5
    log_every: int = 10
    checkpoint_every: int = 100
    # Validation loss every `valid_every` steps and at the end (None: never), on the first
    # `max_valid_examples` validation examples (None: all), logged beside the training terms.
    valid_every: int | None = None
    max_valid_examples: int | None = None
    # The convergence rule checked at the end (needs valid_every): the validation loss of the last
    # `last_fraction` of training improved by less than `min_relative_improvement`. Recorded in
    # train_done.json; it never stops or extends a run (the budget is max_steps, fixed in advance).
    convergence: dict | None = None
    max_train_examples: int | None = None
    # Batches of texts of similar length (None: plain shuffled batches, the paper's code): each
    # epoch's shuffled order is cut into groups of this many batches, each group sorted by length
    # and cut into batches, and the batches shuffled, as transformers' `group_by_length` does (its
    # groups are 50 batches). Fewer padding tokens per step, the same data per epoch. The length is
    # the text's character count, a proxy for its token count that needs no tokenizer pass.
    length_grouped_batches: int | None = None
    grad_accumulation_steps: int = 1  # one optimiser step per k batches: effective batch = batch_size * k
    precision: str = FP32
    compile: bool = False  # torch.compile the loss (forward and backward)
    device: str = "auto"  # auto: CUDA when available
    deterministic: bool = True  # torch.use_deterministic_algorithms: reruns and resumes repeat exactly
    nonfinite: str = STOP
    max_nonfinite_skips: int = 10
    # False: a finished run deletes checkpoints/ (last.pt and prev.pt: weights and AdamW moments,
    # ~1.5 GB per GPT-2-small run, ~4.3 GB per medium one); train_done.json marks it finished.
    keep_checkpoints: bool = True
    # App. A.1's schedule per dataset: an annealing period is `epochs_per_period` epochs of the
    # run's own training data, and training lasts `periods` periods; once the data is loaded they
    # set max_steps and beta_cycles (`resolve_schedule`). None: max_steps and beta_cycles as given.
    epochs_per_period: float | None = None
    periods: int | None = None

    def __post_init__(self):
        choices = {
            "precision": AUTOCAST_DTYPES,
            "nonfinite": (STOP, SKIP),
            "device": DEVICES,
            "beta_schedule": (CONSTANT, CYCLICAL),
            "kl_threshold_scope": (KL_THRESHOLD_DIMENSION, KL_THRESHOLD_GROUP),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"training.{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        if self.length_grouped_batches is not None and self.length_grouped_batches < 1:
            raise ValueError(f"training.length_grouped_batches must be >= 1 or null, got {self.length_grouped_batches}")
        if self.grad_accumulation_steps < 1:
            raise ValueError(f"training.grad_accumulation_steps must be >= 1, got {self.grad_accumulation_steps}")
        if self.max_steps is None and self.epochs_per_period is None:
            raise ValueError(
                "set training.max_steps (with beta_cycles), or training.epochs_per_period and "
                "training.periods (App. A.1's schedule per dataset)"
            )
        if (self.epochs_per_period is None) != (self.periods is None):
            raise ValueError(
                "training.epochs_per_period and training.periods go together (a period is that many "
                "epochs, training that many periods); set both or neither"
            )
        if self.epochs_per_period is not None and (self.epochs_per_period <= 0 or self.periods < 1):
            raise ValueError(
                f"training.epochs_per_period must be > 0 and training.periods >= 1, got "
                f"{self.epochs_per_period} and {self.periods}"
            )
        if self.convergence is not None:
            if self.valid_every is None:
                raise ValueError("training.convergence needs training.valid_every (the rule reads the validation loss)")
            if set(self.convergence) != set(CONVERGENCE_KEYS):
                raise ValueError(
                    f"training.convergence must have exactly the keys {list(CONVERGENCE_KEYS)}, "
                    f"got {sorted(self.convergence)}"
                )
            if not 0 < self.convergence["last_fraction"] < 1:
                raise ValueError(
                    f"training.convergence.last_fraction must be in (0, 1), got {self.convergence['last_fraction']}"
                )


__all__ = ["EX_TEMPFAIL", "CheckpointError", "Interrupted", "TrainSettings", "train"]


class Interrupted(Stopped):
    """The run saved a checkpoint and stopped because a signal asked it to; rerun to resume."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, or that belongs to a different run."""


def steps_per_epoch(n_examples: int, s: TrainSettings) -> int:
    """Optimiser steps one epoch of `n_examples` takes: whole batches (EpochSampler skips the
    short last one), `grad_accumulation_steps` batches per step (as the official code counts)."""
    return max(1, (n_examples // s.batch_size) // s.grad_accumulation_steps)


def resolve_schedule(s: TrainSettings, n_examples: int) -> TrainSettings:
    """With `epochs_per_period` and `periods`: max_steps = periods x period and beta_cycles =
    periods, a period being epochs_per_period epochs of this run's `n_examples`."""
    if s.epochs_per_period is None:
        return s
    period = max(1, round(s.epochs_per_period * steps_per_epoch(n_examples, s)))
    return replace(s, max_steps=s.periods * period, beta_cycles=s.periods)


def beta_at(step: int, s: TrainSettings) -> float:
    """The KL weight at `step` (0-based)."""
    if s.beta_schedule == CONSTANT:
        return s.beta_max
    cycle_length = s.max_steps / s.beta_cycles
    position = (step % cycle_length) / cycle_length  # in [0, 1)
    if position < s.beta_ratio_zero:
        return s.beta_min
    rising = min(1.0, (position - s.beta_ratio_zero) / s.beta_ratio_increase)
    return s.beta_min + (s.beta_max - s.beta_min) * rising


def linear_warmup_decay(s: TrainSettings):
    def factor(step: int) -> float:
        if step < s.warmup_steps:
            return (step + 1) / s.warmup_steps
        return max(0.0, (s.max_steps - step) / max(1, s.max_steps - s.warmup_steps))

    return factor


def adamw(
    weighted: list[tuple[torch.nn.Parameter, int]], learning_rate: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW on the paper's parameterisation, given each stored parameter's multiplicity m
    (`della.models.vae.weighted_parameters`). m parameters that always get the same gradient get the same
    AdamW moments and update u, so their sum S moves as S <- S (1 - lr wd) - m lr u: that is AdamW
    on S itself with learning rate m lr and weight decay wd / m. One param group per multiplicity,
    the plain parameters (m = 1) first: the LR schedule scales each group's rate alike."""
    groups: dict[int, list[torch.nn.Parameter]] = {}
    for parameter, m in weighted:
        groups.setdefault(m, []).append(parameter)
    return torch.optim.AdamW(
        [
            {"params": params, "lr": learning_rate * m, "weight_decay": weight_decay / m}
            for m, params in sorted(groups.items())
        ],
        lr=learning_rate,
        weight_decay=weight_decay,
    )


def clip_gradients(weighted: list[tuple[torch.nn.Parameter, int]], max_norm: float) -> torch.Tensor:
    """`clip_grad_norm_` over the paper's parameterisation: a stored parameter standing for m with
    the same gradient counts m times in the total norm (its norm times sqrt(m)). Returns the norm."""
    norms = [p.grad if m == 1 else p.grad.norm() * math.sqrt(m) for p, m in weighted if p.grad is not None]
    total = torch.nn.utils.get_total_norm(norms)
    torch.nn.utils.clip_grads_with_norm_([p for p, _ in weighted], max_norm, total)
    return total


def autocast(device: torch.device, precision: str):
    """The autocast of the forward passes for `training.precision` (fp32: none)."""
    return torch.autocast(device.type, AUTOCAST_DTYPES[precision], enabled=precision != FP32)


def gradient_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """fp16 gradients underflow without loss scaling; bf16 and fp32 need none (a no-op scaler)."""
    return torch.amp.GradScaler(device.type, enabled=precision == FP16)


def compile_loss(loss_module: torch.nn.Module, backend: str = "inductor"):
    """`training.compile`: the loss (forward and backward) through torch.compile. dynamic: padded
    lengths change from batch to batch, so one graph serves them all instead of one per length."""
    return torch.compile(loss_module, dynamic=True, backend=backend)


def training_device(s: TrainSettings) -> torch.device:
    device = resolve_device(s.device, "training.device")
    if s.precision == FP16 and device.type != "cuda":
        raise ValueError(
            "training.precision 'fp16' needs a CUDA device (fp16 autocast with a gradient scaler); "
            "on CPU use 'bf16' or 'fp32'"
        )
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CPU and every CUDA device


@contextmanager
def determinism(enabled: bool):
    """Deterministic kernels while training (restored afterwards: it is process-wide state).

    On CPU this, a fixed thread count (`--threads`) and the saved RNG states make reruns and
    resumed runs bit-identical. On CUDA it also needs cuBLAS' fixed workspace; an op without a
    deterministic kernel warns instead of failing, so the run goes on.
    """
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


@contextmanager
def preemption_signals():
    """SIGTERM / SIGUSR1 set a flag (the loop acts on it at a step boundary, never mid-update)."""
    received: list[str] = []
    previous = {}
    if threading.current_thread() is threading.main_thread():  # Python only delivers signals there
        for sig in PREEMPTION_SIGNALS:
            previous[sig] = signal.signal(sig, lambda signum, frame: received.append(signal.Signals(signum).name))
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EpochSampler:
    """Whole global batches from shuffled epochs; its state is checkpointed so a resumed run sees
    the batches an uninterrupted one would. The shuffle has its own RNG, seeded by the run's seed:
    every rank draws the same order and takes its slice of each batch (`rank_slice`).

    With `lengths` and `group_batches` (training.length_grouped_batches), each epoch's order
    holds batches of similar lengths: the shuffled order is cut into groups of `group_batches`
    batches, each group sorted by length (longest first) and cut into batches, and the batches
    shuffled again."""

    def __init__(
        self,
        n_records: int,
        batch_size: int,
        seed: int,
        lengths: list[int] | None = None,
        group_batches: int | None = None,
    ):
        if (lengths is None) != (group_batches is None):
            raise ValueError("length grouping needs both the lengths and the group size")
        self.n, self.batch_size = n_records, batch_size
        self.lengths, self.group_batches = lengths, group_batches
        self.rng = random.Random(seed)
        self.order: list[int] | None = None
        self.position = 0

    def _epoch_order(self) -> list[int]:
        order = self.rng.sample(range(self.n), self.n)
        if self.group_batches is None:
            return order
        group = self.group_batches * self.batch_size
        batched = []
        for start in range(0, self.n, group):
            by_length = sorted(order[start : start + group], key=lambda i: -self.lengths[i])
            batched += [by_length[i : i + self.batch_size] for i in range(0, len(by_length), self.batch_size)]
        self.rng.shuffle(batched)
        # the epoch's one short batch (if any) goes last, where next_indices skips it as before
        batched.sort(key=lambda batch: len(batch) < self.batch_size)
        return [i for batch in batched for i in batch]

    def next_indices(self) -> list[int]:
        if self.order is None or self.position + self.batch_size > self.n:
            self.order, self.position = self._epoch_order(), 0
        indices = self.order[self.position : self.position + self.batch_size]
        self.position += self.batch_size
        return indices

    def state_dict(self) -> dict:
        return {"order": self.order, "position": self.position, "rng": self.rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        self.order, self.position = state["order"], state["position"]
        self.rng.setstate(state["rng"])


def rank_slice(indices: list[int]) -> list[int]:
    """This rank's contiguous share of a global batch (all of it in one process)."""
    w = world()
    share = len(indices) // w.size
    return indices[w.rank * share : (w.rank + 1) * share]


@dataclass(frozen=True)
class LossSettings:
    """What the training loss takes besides beta (the schedule's, per step): free bits, the scope
    they apply to and the KL's reduction (della/models/vae.py's `loss`). One object, taken from the
    training settings by `of`; the loss's other settings are the model's (VAEConfig)."""

    kl_threshold: float = 0.0
    kl_reduction: str = KL_SUM
    kl_threshold_scope: str = KL_THRESHOLD_DIMENSION

    @classmethod
    def of(cls, settings: TrainSettings) -> LossSettings:
        return cls(settings.kl_threshold, settings.kl_reduction, settings.kl_threshold_scope)


class LossModule(torch.nn.Module):
    """`model.loss` as forward(): DDP synchronises gradients of what runs through its forward."""

    def __init__(self, model: TransformerVAE, settings: LossSettings = LossSettings()):
        super().__init__()
        self.model, self.settings = model, settings

    def forward(self, batch, beta: float) -> dict[str, torch.Tensor]:
        s = self.settings
        return self.model.loss(batch, beta, s.kl_threshold, s.kl_reduction, s.kl_threshold_scope)


@dataclass
class TrainState:
    """A run's training at a step: what a checkpoint restores (with each rank's random streams,
    saved beside it) so that a resumed run continues bit for bit. `skipped`: the steps skipped
    for a non-finite loss or gradient so far (training.nonfinite: skip)."""

    model: TransformerVAE
    optimiser: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    sampler: EpochSampler
    step: int = 0
    skipped: int = 0

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimiser": self.optimiser.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "data": self.sampler.state_dict(),
            "step": self.step,
            "nonfinite_skipped": self.skipped,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.sampler.load_state_dict(state["data"])
        self.step, self.skipped = state["step"], state["nonfinite_skipped"]


@dataclass
class StepResult:
    """One optimiser step's beta and loss terms, and why it was skipped (None: it was taken), with
    the last micro-batch's terms (`out`) for the message."""

    beta: float
    terms: StepTerms
    failure: str | None
    out: dict[str, torch.Tensor]


def train_step(
    state: TrainState, records: list[dict], loss_fn, weighted, settings: TrainSettings, device
) -> StepResult:
    """One optimiser step over `grad_accumulation_steps` micro-batches of this rank's share of the
    sampler's next global batches; on a non-finite loss (any rank) or gradient, nothing is
    applied and the result says why. `weighted`: the parameters with their multiplicities, whose
    gradient norm is clipped (della/models/vae.py's `weighted_parameters`)."""
    beta = beta_at(state.step, settings)
    state.optimiser.zero_grad(set_to_none=True)
    terms, failure = StepTerms(), None
    for _ in range(settings.grad_accumulation_steps):
        batch = state.model.collator([records[i] for i in rank_slice(state.sampler.next_indices())])
        batch = {name: tensor.to(device) for name, tensor in batch.items()}
        with autocast(device, settings.precision):
            out = loss_fn(batch, beta)
        if any_rank(not torch.isfinite(out["loss"]), device):  # every rank skips, or none
            failure = "non-finite loss"
            break
        state.scaler.scale(out["loss"] / settings.grad_accumulation_steps).backward()
        terms.add(out, batch["dec_ids"].shape[0])
    if failure is None:
        state.scaler.unscale_(state.optimiser)
        grad_norm = clip_gradients(weighted, settings.grad_clip)
        # With fp16 the scaler itself skips steps whose gradients overflowed (and lowers its scale).
        if not state.scaler.is_enabled() and not torch.isfinite(grad_norm):
            failure = "non-finite gradient"
    if failure is None:
        state.scaler.step(state.optimiser)
        state.scaler.update()
        state.scheduler.step()
        state.step += 1
    return StepResult(beta, terms, failure, out)


class StepTerms:
    """The loss terms of one optimiser step, averaged over its micro-batches per sentence."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.sentences = 0
        self.tokens = 0

    def add(self, out: dict[str, torch.Tensor], sentences: int) -> None:
        for name, value in out.items():
            if name != "tokens":
                self.sums[name] = self.sums.get(name, 0) + value.detach().float() * sentences
        self.sentences += sentences
        self.tokens += int(out["tokens"])

    def means(self) -> dict:
        """The means over the global batch (every rank calls this: it sums over the ranks)."""
        sums = {name: sum_over_ranks(total) for name, total in self.sums.items()}
        counts = sum_over_ranks(
            torch.tensor([self.sentences, self.tokens], dtype=torch.float64, device=sums["loss"].device)
        ).tolist()
        means = {name: (total / counts[0]).tolist() for name, total in sums.items()}
        means["token_nll"] = sums["reconstruction"].item() / counts[1]
        return means


@torch.no_grad()
def validation_terms(model: TransformerVAE, valid_batches: list[dict], seed: int) -> dict:
    """Loss terms on the validation batches at beta = 1, without free bits, in eval mode. Its z
    draws come from a forked random stream seeded by `seed`, so the training streams (and with them
    the trained weights) are the same whether or not a run validates. Every rank computes the same
    numbers (the full validation set each), so the means are those of one process."""
    devices = [model.device] if model.device.type == "cuda" else []
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            terms = StepTerms()
            for batch in valid_batches:
                terms.add(model.loss(batch, 1.0, 0.0, KL_SUM), batch["dec_ids"].shape[0])
            means = terms.means()
    finally:
        model.train(was_training)
    return {
        VALID_LOSS: means["reconstruction"] + means["kl"],
        "valid_reconstruction": means["reconstruction"],
        "valid_kl": means["kl"],
        "valid_token_nll": means["token_nll"],
        "valid_kl_per_group": means["kl_per_group"],
    }


def convergence_check(log_path: Path, settings: TrainSettings) -> dict | None:
    """The convergence rule on the run's logged validation losses: the relative improvement of
    the validation loss from the validation point nearest the start of the last `last_fraction`
    of training to the last one. Met when it is not negative (a loss that got worse is no
    convergence) and below `min_relative_improvement`. One window for every model: only points
    logged at beta = beta_max count, for a model without latents too (it logs the same schedule).
    Under the cyclical schedule the loss at beta = 1 is only comparable with itself (while beta is
    held low the KL grows by orders of magnitude), so the rule then compares the ends of the
    beta = 1 plateaus, at the same steps for every model."""
    if settings.convergence is None:
        return None
    curve = [
        (e["step"], e[VALID_LOSS]) for e in read_jsonl(log_path) if VALID_LOSS in e and e["beta"] == settings.beta_max
    ]
    rule = dict(settings.convergence, metric=VALID_LOSS, points="beta = beta_max")
    start = (1 - settings.convergence["last_fraction"]) * settings.max_steps
    earlier = [point for point in curve[:-1] if point[0] <= start] or curve[:1]
    if len(curve) < 2 or earlier[-1] == curve[-1]:
        return {**rule, "met": False, "reason": f"fewer than two comparable validation points ({len(curve)})"}
    (from_step, before), (to_step, after) = earlier[-1], curve[-1]
    improvement = (before - after) / abs(before)
    met = 0 <= improvement < settings.convergence["min_relative_improvement"]
    found = {
        **rule,
        "from_step": from_step,
        "to_step": to_step,
        "from": before,
        "to": after,
        "relative_improvement": improvement,
        "met": met,
    }
    return found if improvement >= 0 else {**found, "reason": "the validation loss got worse"}


def restore_rng(state: dict, seed: int) -> None:
    """Every rank continues its own RNG streams where the checkpoint's run had the same number of
    ranks; otherwise the streams (dropout, latent noise) start afresh from (seed, rank, step)."""
    w = world()
    if state.get("world_size", 1) == w.size:
        _set_rng_state(state["rng"][w.rank])
    else:
        seed_everything(derived_seed(seed, w.rank, state["step"]))
        if w.main:
            print(
                f"checkpoint of {state.get('world_size', 1)} ranks resumed on {w.size}: weights, optimiser and "
                f"data order continue; the ranks' random streams restart from (seed, rank, step)",
                file=sys.stderr,
                flush=True,
            )


def load_checkpoint(path: Path, previous: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a truncated or corrupted file fails in zip, pickle or tensor reading
        if previous.exists():
            advice = f"the previous checkpoint {previous} is intact: move it to {path} to resume from it"
        else:
            advice = f"no previous checkpoint exists: delete {path} to start over"
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); {advice}") from error


def settings_changed(state: dict, model_config: VAEConfig, settings: TrainSettings, seed: int) -> list[str]:
    """What differs between a checkpoint's run and this one (model, settings that change numbers, seed)."""
    saved = {
        "seed": state["seed"],
        **{f"model.{k}": v for k, v in state["model_config"].items()},
        **{f"training.{k}": v for k, v in state["settings"].items() if k not in RESUMABLE_CHANGES},
    }
    now = {
        "seed": seed,
        **{f"model.{k}": v for k, v in asdict(model_config).items()},
        **{f"training.{k}": v for k, v in asdict(settings).items() if k not in RESUMABLE_CHANGES},
    }
    return [f"{k}: {saved[k]!r} -> {now[k]!r}" for k in now if k in saved and saved[k] != now[k]]


def supersede(run_dir: Path, changed: list[str]) -> Path:
    """A checkpoint resumes only the run that wrote it. One of other settings means the config changed
    (Snakemake reruns training when its params do): its checkpoints and log move aside, kept, and
    training starts over."""
    aside = run_dir / f"superseded-{datetime.datetime.now():%Y%m%dT%H%M%S%f}"
    aside.mkdir(parents=True)
    for name in ("checkpoints", "train_log.jsonl"):
        if (run_dir / name).exists():
            (run_dir / name).rename(aside / name)
    attempts = attempts_path(run_dir, "train")
    if attempts.exists():
        shutil.copy2(attempts, aside / "attempts-train.json")
    print(
        f"{run_dir}: the checkpoint belongs to other settings ({'; '.join(changed)}); moved it to {aside} "
        "and starting over",
        file=sys.stderr,
        flush=True,
    )
    return aside


def write_checkpoint(state: TrainState, checkpoint: Path, previous: Path, facts: dict, attempt: AttemptLog) -> None:
    """Save the state, every rank's random streams and the run's `facts` to `checkpoint` (the one
    before kept as `previous`), atomically; all ranks take part, rank 0 writes. Weights that are
    not finite are never saved over the last good checkpoint."""
    w = world()
    if not all(torch.isfinite(p).all() for p in state.model.parameters()):
        raise FloatingPointError(
            f"non-finite weights after step {state.step} of {checkpoint.parent.parent}; not saved over the "
            f"last good checkpoint {checkpoint if checkpoint.exists() else '(none)'}"
        )
    rng = gather_in_order([(w.rank, _rng_state())])  # every rank's streams (all ranks take part)
    if w.main:
        keep_previous(checkpoint, previous)
        torch_save_atomic({**state.state_dict(), "rng": rng, "world_size": w.size, **facts}, checkpoint)
        attempt.update(to_step=state.step)
    barrier()  # no rank moves on (or exits) before the checkpoint is complete


def train(
    model_config: VAEConfig,
    settings: TrainSettings,
    train_file: Path,
    run_dir: Path,
    seed: int,
    stop_after_steps: int | None = None,
    valid_file: Path | None = None,
) -> Path | None:
    """Train to `settings.max_steps`, resuming from `run_dir/checkpoints/last.pt` if present;
    with `settings.valid_every`, validate on `valid_file` (default: valid.jsonl beside `train_file`).

    Returns the directory of the final model (`run_dir/model`), or None when `stop_after_steps`
    ended the run early (checkpoint written; how tests stand in for a preempted job). Raises
    `Interrupted` after saving when SIGTERM/SIGUSR1 arrived.
    """
    device = training_device(settings)
    # what the next attempt needs to know: these settings, this card (della/cluster/attempts.py)
    facts = {
        "settings": settings_digest({"model": asdict(model_config), "training": asdict(settings), "seed": seed}),
        **gpu_facts(),
    }
    with (
        determinism(settings.deterministic),
        preemption_signals() as received,
        recorded_attempt(run_dir, "train", facts, write=world().main) as attempt,
    ):
        return _train(
            model_config=model_config,
            settings=settings,
            train_file=train_file,
            valid_file=valid_file or train_file.with_name("valid.jsonl"),
            run_dir=run_dir,
            seed=seed,
            stop_after_steps=stop_after_steps,
            device=device,
            received=received,
            attempt=attempt,
        )


def _train(
    *,
    model_config: VAEConfig,
    settings: TrainSettings,
    train_file: Path,
    valid_file: Path,
    run_dir: Path,
    seed: int,
    stop_after_steps: int | None,
    device: torch.device,
    received: list[str],  # the preemption signals that arrived (preemption_signals)
    attempt: AttemptLog,
) -> Path | None:
    """train()'s body, inside its determinism, signal and attempt-record contexts."""
    w = world()
    if settings.batch_size % w.size:
        raise ValueError(
            f"training.batch_size {settings.batch_size} is the global batch and must divide among the {w.size} ranks"
        )
    seed_everything(seed)  # the same initial weights on every rank
    # the training tricks that add modules travel in the model's config (saved with its weights)
    model_config = model_config.with_training(asdict(settings))
    model = TransformerVAE(model_config).to(device).train()
    if model_config.init_from is not None:  # a pre-trained Optimus VAE (a resumed run then overwrites it)
        from baselines.optimus import load_optimus_checkpoint

        load_optimus_checkpoint(model, Path(model_config.init_from))
    if not w.main:  # rank 0 keeps the one-process stream; the others draw their own dropout and latent noise
        seed_everything(derived_seed(seed, w.rank))
    records = load_records(train_file, settings.max_train_examples)
    if len(records) < settings.batch_size:
        raise ValueError(f"{train_file}: {len(records)} examples, fewer than one batch of {settings.batch_size}")
    settings = resolve_schedule(settings, len(records))
    if settings.epochs_per_period is not None:
        print(
            f"schedule: {settings.periods} periods of {settings.epochs_per_period:g} epochs of {len(records)} "
            f"examples = {settings.max_steps} steps",
            file=sys.stderr,
        )
    lengths = None
    if settings.length_grouped_batches is not None:
        lengths = [len(target_of(r)) + len(r.get("source", "")) for r in records]
    sampler = EpochSampler(len(records), settings.batch_size, seed, lengths, settings.length_grouped_batches)
    valid_batches = []
    if settings.valid_every is not None:
        valid_records = load_records(valid_file, settings.max_valid_examples)
        valid_batches = [
            model.to_device(batch) for batch in batches(valid_records, model.collator, settings.batch_size)
        ]
    weighted = weighted_parameters(model)  # multiplicities: DELLA's summed fusion factors (della/models/della_path.py)
    optimiser = adamw(weighted, settings.learning_rate, settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, linear_warmup_decay(settings))
    state = TrainState(model, optimiser, scheduler, gradient_scaler(device, settings.precision), sampler)
    loss_module = LossModule(model, LossSettings.of(settings))
    if w.size > 1:
        # static_graph: the set of parameters a loss uses never changes, so DDP finds the unused
        # ones (Optimus' BERT pooler) once instead of searching the graph every step. Gradients
        # are averaged over the ranks after every micro-batch (DDP's no_sync, which would save
        # all but the last, does not combine with static_graph).
        loss_module = torch.nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None, static_graph=True
        )
    loss_fn = compile_loss(loss_module) if settings.compile else loss_module
    checkpoint, previous = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "prev.pt"
    log_path = run_dir / "train_log.jsonl"
    log_bytes = 0
    saved = load_checkpoint(checkpoint, previous) if checkpoint.exists() else None
    barrier()  # every rank has read the checkpoint before rank 0 may move it aside
    if saved is not None and (changed := settings_changed(saved, model_config, settings, seed)):
        if w.main:
            supersede(run_dir, changed)
            attempt.forget_earlier()
        saved = None
    if saved is not None:
        state.load_state_dict(saved)
        log_bytes = saved["log_bytes"]
        restore_rng(saved, seed)
        if w.main:
            print(f"resuming {run_dir} from step {state.step} ({checkpoint})", file=sys.stderr, flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    if (
        log_path.exists() and w.main
    ):  # lines logged after the checkpoint (by a run killed before its next one) are redone
        os.truncate(log_path, log_bytes)
    # an attempt that crashed or was killed keeps `ended: running` and its last update
    attempt.update(from_step=state.step, to_step=state.step, device=str(device), world_size=w.size)
    with open(log_path if w.main else os.devnull, "a", encoding="utf-8") as log:
        # the run's own facts a checkpoint records beside its state (settings_changed compares them)
        run_facts = {"seed": seed, "settings": asdict(settings), "model_config": asdict(model_config)}

        def save_checkpoint() -> None:
            log_bytes = log_path.stat().st_size if w.main else 0  # only rank 0 logs (and writes)
            write_checkpoint(state, checkpoint, previous, {**run_facts, "log_bytes": log_bytes}, attempt)

        started, first_step = time.time(), state.step
        while state.step < settings.max_steps:
            result = train_step(state, records, loss_fn, weighted, settings, device)
            if result.failure is not None:
                state.skipped += 1
                loss_terms = {name: value.tolist() for name, value in result.out.items()}
                message = (
                    f"{result.failure} at step {state.step} of {run_dir} (loss terms {loss_terms}); "
                    f"last good checkpoint: {checkpoint if checkpoint.exists() else 'none'}"
                )
                if settings.nonfinite == STOP:
                    raise FloatingPointError(message)
                if state.skipped > settings.max_nonfinite_skips:
                    raise FloatingPointError(
                        f"{message}; more than training.max_nonfinite_skips = "
                        f"{settings.max_nonfinite_skips} steps skipped"
                    )
                if w.main:
                    print(f"skipped ({state.skipped} so far): {message}", file=sys.stderr, flush=True)
                continue
            step, terms = state.step, result.terms
            validate = settings.valid_every is not None and (
                step % settings.valid_every == 0 or step == settings.max_steps
            )
            if step % settings.log_every == 0 or step == settings.max_steps or validate:
                entry = {
                    "step": step,
                    "beta": result.beta,
                    "lr": scheduler.get_last_lr()[0],
                    **terms.means(),
                    "nonfinite_skipped": state.skipped,
                    "elapsed_s": round(time.time() - started, 2),
                }
                if validate:
                    entry.update(validation_terms(model, valid_batches, seed + VALID_SEED_OFFSET))
                log.write(json.dumps(entry) + "\n")
                log.flush()
                rate = (step - first_step) / max(time.time() - started, 1e-9)
                eta = datetime.timedelta(seconds=round((settings.max_steps - step) / rate))
                if w.main:
                    print(
                        f"step {step}/{settings.max_steps}  loss {entry['loss']:.4g}  {rate:.2f} step/s  ETA {eta}",
                        file=sys.stderr,
                        flush=True,
                    )
                    attempt.update(to_step=step)
            # a signal may reach one rank only, or the ranks at different steps: they stop together
            stop = any_rank(bool(received), device)
            if step % settings.checkpoint_every == 0 or step == stop_after_steps or stop:
                save_checkpoint()
            if stop:
                cause = received[0] if received else "a signal on another rank"
                attempt.end(SIGNAL, f"{cause} received", to_step=step)
                raise Interrupted(
                    f"{cause} received: stopped {run_dir} after step {step} of "
                    f"{settings.max_steps}; checkpoint {checkpoint}; rerun to resume"
                )
            if step == stop_after_steps:
                attempt.end(STOPPED, "stop_after_steps", to_step=step)
                return None
        save_checkpoint()
    step, final = state.step, run_dir / "model"
    if w.main:
        attempt.update(to_step=step)  # recorded `finished` once train() returns
        staging = run_dir / "model.partial"
        shutil.rmtree(staging, ignore_errors=True)
        model.save(staging)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        atomic_write_json(
            run_dir / "train_done.json",
            {
                "steps": step,
                "seed": seed,
                "device": str(device),
                "world_size": w.size,
                "tf32": tf32_in_effect(device),
                "effective_batch_size": settings.batch_size * settings.grad_accumulation_steps,
                "nonfinite_skipped": state.skipped,
                "settings": asdict(settings),
                "time_s": round(time.time() - started, 2),
                "attempts": attempt.summary(),
                "convergence": convergence_check(log_path, settings),
            },
        )
        if not settings.keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    barrier()
    return final
