"""One training loop for every model (DELLA and all baselines): same optimiser, schedule, annealing.

Resumable: every `checkpoint_every` steps (and at the end) the model, optimiser, scheduler, step,
data order and RNG states go to `checkpoints/last.pt` atomically; a rerun continues from there.
A non-finite loss stops the run with an error naming the step and the loss terms, before any
weights are written.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from della.batches import load_records
from della.io import atomic_write_text, torch_save_atomic
from della.vae import KL_SUM, TransformerVAE, VAEConfig

# β schedules (`training.beta_schedule`): constant, or cyclical annealing (Fu et al. 2019) as
# used by Optimus and DELLA: each cycle holds β at β_min, raises it linearly, then holds β_max.
# DELLA (App. A.1): β_min = 1e-5 for the first half of a period, rising over the next quarter.
CONSTANT, CYCLICAL = "constant", "cyclical"


@dataclass
class TrainSettings:
    """The `training` config section (a model entry's `train:` overrides keys of it)."""

    batch_size: int
    learning_rate: float
    max_steps: int
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
    kl_reduction: str = KL_SUM
    log_every: int = 10
    checkpoint_every: int = 100
    max_train_examples: int | None = None


def beta_at(step: int, s: TrainSettings) -> float:
    """The KL weight at `step` (0-based)."""
    if s.beta_schedule == CONSTANT:
        return s.beta_max
    if s.beta_schedule != CYCLICAL:
        raise ValueError(f"training.beta_schedule must be {CONSTANT!r} or {CYCLICAL!r}, got {s.beta_schedule!r}")
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    return {"python": random.getstate(), "torch": torch.get_rng_state()}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])


def train(
    model_config: VAEConfig, settings: TrainSettings, train_file: Path, run_dir: Path, seed: int,
    stop_after_steps: int | None = None,
) -> Path | None:
    """Train to `settings.max_steps`, resuming from `run_dir/checkpoints/last.pt` if present.

    Returns the directory of the final model (`run_dir/model`), or None when `stop_after_steps`
    ended the run early (checkpoint written; how tests stand in for a preempted job).
    """
    seed_everything(seed)
    model = TransformerVAE(model_config).train()
    if model_config.init_from is not None:  # a pre-trained Optimus VAE (a resumed run then overwrites it)
        from baselines.optimus import load_optimus_checkpoint

        load_optimus_checkpoint(model, Path(model_config.init_from))
    records = load_records(train_file, settings.max_train_examples)
    if len(records) < settings.batch_size:
        raise ValueError(f"{train_file}: {len(records)} examples, fewer than one batch of {settings.batch_size}")
    optimiser = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, linear_warmup_decay(settings))
    checkpoint = run_dir / "checkpoints" / "last.pt"
    log_path = run_dir / "train_log.jsonl"
    step, order, position = 0, None, 0
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        step, order, position = state["step"], state["order"], state["position"]
        _set_rng_state(state["rng"])
        print(f"resuming {run_dir} from step {step} ({checkpoint})", file=sys.stderr)
    elif log_path.exists():
        log_path.unlink()  # a log without a checkpoint belongs to a run that never saved

    def save_checkpoint() -> None:
        state = {
            "model": model.state_dict(), "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
            "step": step, "order": order, "position": position, "rng": _rng_state(),
        }
        torch_save_atomic(state, checkpoint)

    progress = tqdm(total=settings.max_steps, initial=step, desc=f"train {run_dir}", file=sys.stderr, mininterval=5)
    started = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        while step < settings.max_steps:
            if order is None or position + settings.batch_size > len(order):
                order, position = random.sample(range(len(records)), len(records)), 0
            batch = model.collator([records[i] for i in order[position:position + settings.batch_size]])
            position += settings.batch_size
            beta = beta_at(step, settings)
            out = model.loss(batch, beta, settings.kl_threshold, settings.kl_reduction)
            if not torch.isfinite(out["loss"]):
                terms = {k: v.tolist() for k, v in out.items()}
                raise FloatingPointError(
                    f"non-finite loss at step {step} of {run_dir}: {terms}; last good checkpoint: "
                    f"{checkpoint if checkpoint.exists() else 'none'}"
                )
            optimiser.zero_grad(set_to_none=True)
            out["loss"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimiser.step()
            scheduler.step()
            step += 1
            progress.update(1)
            if step % settings.log_every == 0 or step == settings.max_steps:
                entry = {
                    "step": step, "beta": beta, "lr": scheduler.get_last_lr()[0],
                    "loss": out["loss"].item(), "reconstruction": out["reconstruction"].item(),
                    "kl": out["kl"].item(), "kl_per_group": out["kl_per_group"].tolist(),
                    "token_nll": out["reconstruction"].item() * batch["dec_ids"].shape[0] / out["tokens"].item(),
                    "elapsed_s": round(time.time() - started, 2),
                }
                log.write(json.dumps(entry) + "\n")
                log.flush()
            if step % settings.checkpoint_every == 0:
                save_checkpoint()
            if step == stop_after_steps:
                save_checkpoint()
                return None
    progress.close()
    save_checkpoint()
    final = run_dir / "model"
    staging = run_dir / "model.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.save(staging)
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    atomic_write_text(run_dir / "train_done.json", json.dumps({"steps": step, "seed": seed, "time_s": time.time() - started}))
    return final

