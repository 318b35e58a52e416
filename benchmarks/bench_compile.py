"""What `training.compile` and `training.precision` do to DELLA's training step, side by side.

    PYTHONPATH=$PWD python benchmarks/bench_compile.py [--size sample] [--device cpu|cuda] [--steps 32]

Each configuration trains the same model from the same initial weights on the same batches, whose
lengths vary from step to step as padded batches do (`LENGTH_CYCLE` fractions of the size's
length), with della/run/train.py's loss module, AdamW and the same autocast as training:

* `eager`: fp32, no compilation (the default);
* `compile`: `torch.compile(loss, dynamic=True)`, what `training.compile: true` runs;
* `bf16`: autocast to bfloat16 (`training.precision: bf16`), eager.

It prints the seconds spent in the first `WARMUP_STEPS` steps (compilation happens there), the
median step after them, the ratio of that median to eager's, and the final loss (the
configurations should agree to rounding). On CUDA, steps are synchronised before reading the clock.

With `--flops` it also counts one step's floating-point operations (torch.utils.flop_counter, at
the cycle's full length: matmuls, attention and convolutions, forward and backward) and gives
each configuration's rate against this machine's measured peak: the rate of a square matrix
product (`PEAK_MATMUL_SIZE`) in the configuration's dtype, on the same threads.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import DELLA, SIZES, build_backbone, build_model, full_batch, machine_header

from della.run.train import LossModule, LossSettings, autocast, compile_loss

LENGTH_CYCLE = (1.0, 0.83, 0.92, 0.75)  # padded batch lengths, as fractions of the size's length
WARMUP_STEPS = 8  # two passes over the length cycle: the compiled graph has seen every shape
CONFIGS = {"eager": (False, "fp32"), "compile": (True, "fp32"), "bf16": (False, "bf16")}
LEARNING_RATE = 5e-5
PEAK_MATMUL_SIZE = 2048  # the square product whose rate stands for the machine's peak
PEAK_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class Trainer:
    """One configuration: its model (same initial weights for all), loss function and AdamW."""

    def __init__(self, config: str, backbone: Path, size, device: torch.device):
        compiled, self.precision = CONFIGS[config]
        self.size, self.device = size, device
        self.model = build_model(DELLA, backbone, size).to(device).train()
        loss_module = LossModule(self.model, LossSettings(kl_threshold=0.0, kl_reduction="sum"))
        self.loss_fn = compile_loss(loss_module) if compiled else loss_module
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=LEARNING_RATE)
        self.generator_state = torch.random.get_rng_state()  # the same latent noise and dropout everywhere
        self.loss = float("nan")

    def step(self, step: int) -> float:
        """One training step on batch `step`; its seconds."""
        length = max(4, round(self.size.length * LENGTH_CYCLE[step % len(LENGTH_CYCLE)]))
        batch = {
            k: v.to(self.device)
            for k, v in full_batch(self.model, replace(self.size, length=length), seed=step).items()
        }
        torch.random.set_rng_state(self.generator_state)
        start = time.perf_counter()
        with autocast(self.device, self.precision):
            out = self.loss_fn(batch, 1.0)
        self.optimiser.zero_grad(set_to_none=True)
        out["loss"].backward()
        self.optimiser.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        seconds = time.perf_counter() - start
        self.generator_state = torch.random.get_rng_state()
        self.loss = out["loss"].item()
        return seconds


def measure(configs: list[str], backbone: Path, size, steps: int, device: torch.device) -> dict:
    """Warm-up steps one configuration after another (compilation), then the timed steps
    interleaved, the order reversed every other step (ABBA), so load from other processes falls
    on every configuration alike."""
    trainers = {}
    for config in configs:
        torch.manual_seed(0)
        trainers[config] = Trainer(config, backbone, size, device)
    warmup = {config: sum(trainer.step(s) for s in range(WARMUP_STEPS)) for config, trainer in trainers.items()}
    times = {config: [] for config in configs}
    for step in range(WARMUP_STEPS, steps):
        for config in configs if step % 2 == 0 else reversed(configs):
            times[config].append(trainers[config].step(step))
    return {
        config: {
            "warmup_s": warmup[config],
            "step_s": statistics.median(times[config]),
            "ratios": times[config],
            "loss": trainers[config].loss,
        }
        for config in configs
    }


def step_flops(trainer: Trainer) -> int:
    """Floating-point operations of one training step at the size's full length (its step 0)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        trainer.step(0)
    return counter.get_total_flops()


def matmul_peak(precision: str, device: torch.device, repeats: int = 10) -> float:
    """FLOP/s of a PEAK_MATMUL_SIZE-square matrix product in `precision`'s dtype (median of
    `repeats` after a warm-up)."""
    n, dtype = PEAK_MATMUL_SIZE, PEAK_DTYPES[precision]
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    times = []
    for k in range(repeats + 2):
        start = time.perf_counter()
        torch.mm(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if k >= 2:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="sample", choices=list(SIZES))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--flops", action="store_true", help="count a step's FLOPs; rate against the matmul peak")
    args = parser.parse_args()
    if args.steps <= WARMUP_STEPS:
        parser.error(f"--steps must exceed the {WARMUP_STEPS} warm-up steps")
    torch.set_num_threads(args.threads)
    size, device = SIZES[args.size], torch.device(args.device)
    print(machine_header(args.threads))
    print(
        f"DELLA at size {size.name} ({size.layers} x {size.hidden}, vocab {size.vocab}, batch {size.batch}, "
        f"lengths {[max(4, round(size.length * f)) for f in LENGTH_CYCLE]}), {args.steps} steps on {device}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        backbone = build_backbone(size, Path(tmp))
        results = measure(args.configs, backbone, size, args.steps, device)
        if args.flops:
            torch.manual_seed(0)
            flops = step_flops(Trainer("eager", backbone, size, device))  # the same operations in every dtype
            peaks = {precision: matmul_peak(precision, device) for precision in PEAK_DTYPES}
    print(
        f"| configuration | first {WARMUP_STEPS} steps (s) | median step after (s) | vs eager | final loss |"
        + (" GFLOP/s (full-length step) | of the matmul peak |" if args.flops else "")
    )
    print("| --- | --- | --- | --- | --- |" + (" --- | --- |" if args.flops else ""))
    eager = results.get("eager")
    for config, r in results.items():
        # median of the per-step ratios: each step's configurations ran back to back
        ratio = (
            f"{statistics.median(a / b for a, b in zip(r['ratios'], eager['ratios'], strict=True)):.2f}x"
            if eager
            else "-"
        )
        row = f"| {config} | {r['warmup_s']:.1f} | {r['step_s']:.4f} | {ratio} | {r['loss']:.3f} |"
        if args.flops:
            # the median step runs the cycle's mean length; scale its time to the full-length step
            full_step_s = r["step_s"] / statistics.fmean(LENGTH_CYCLE)
            rate, peak = flops / full_step_s, peaks[CONFIGS[config][1]]
            row += f" {rate / 1e9:.1f} | {rate / peak:.0%} of {peak / 1e9:.0f} GFLOP/s ({CONFIGS[config][1]}) |"
        print(row)
    if args.flops:
        print(
            f"\nOne full-length step: {flops / 1e9:.2f} GFLOP (torch.utils.flop_counter). Peaks: a "
            f"{PEAK_MATMUL_SIZE}-square matrix product, "
            + ", ".join(f"{p} {v / 1e9:.0f} GFLOP/s" for p, v in peaks.items())
            + f", {args.threads} threads."
        )


if __name__ == "__main__":
    main()
