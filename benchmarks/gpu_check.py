"""The GPU check (issue 21): the first thing to run on any GPU lent to this project. On one GPU it
finishes in at most 8 minutes and prints one Markdown table; `--append FILE` also appends it, with
the machine, the versions and the date, to FILE (results/benchmarks.md):

    PYTHONPATH=$PWD python benchmarks/gpu_check.py --append results/benchmarks.md
    PYTHONPATH=$PWD python benchmarks/gpu_check.py --tiny      # CPU, tiny sizes, <= 3 min on one core

`--tiny` runs every part at tiny sizes (tests/test_gpu_check.py runs it, so the script cannot rot);
the full sizes need a GPU. On the CPU, torch.compile's rows run Dynamo only (Inductor's compilation
takes minutes there) and MFU has no peak; the rows say so. The rows:

1. Training step, DELLA vs GPT-2 fine-tuning (the `finetune` entry: no latent) at the GPT-2-small
   size (random init, 12 layers x 768, vocab 50257, batch 8 x 128), in fp32, bf16 and fp16
   autocast, eager and with torch.compile. One step is della/run/train.py's: its LossModule (through
   `compile_loss` when compiled), `autocast`, `gradient_scaler`, `clip_gradients`, `adamw`.
   - tokens/s: batch x length per step; the median step of interleaved (ABBA) rounds, synchronised.
   - MFU: FLOPs per step / step time / the GPU's published dense peak for the dtype (GPU_PEAK_TFLOPS;
     fp32 against the plain FP32 rate, PyTorch's default, or TF32's when TF32 matmuls are on).
     FLOPs are counted by torch.utils.flop_counter on one eager step of each model (matmuls and
     attention, forward and backward): what the model computes, DELLA's encoder pass included.
   - peak memory: CUDA's peak allocation above what was allocated before the model was built
     (weights, gradients, AdamW state, activations); on the CPU the RSS high-water mark, where
     freed memory that the allocator reuses makes the second model's figure a lower bound
     (bench_train_step.py measures CPU memory in fresh processes).
   - estimated peak (fp32 eager rows, CUDA only): della/cluster/gpu_memory.py's estimate with fused
     attention, the formula of docs/cluster.md's GPU-memory table, and measured / estimated.
   - targets (issue 21): DELLA in bf16 at least 40 % MFU and at most 1.6x GPT-2's step time.
   On a GPU the compiled configurations run last, bf16 first, each only if the 8-minute budget
   allows it (the first compiled pair is guessed at COMPILE_GUESS_S, later ones at the last one's
   time); a row says so when not.
2. Generation tokens/s with the key/value cache, beam 10 and nucleus, DELLA vs GPT-2:
   bench_generation.py's measurement on the device.
3. IW log p(x) at k = 100 on a DELLA model (the sample scale's backbone size): metrics/
   representation.py's estimator with all k samples scored in one call (iw_chunk = k) against one
   call per sample (iw_chunk = 1). They score the same draws, so the values must agree to
   IW_TOLERANCE (float rounding of different batch shapes); target: batched >= 5x faster.
4. `della-bench train`, `generate` and `evaluate` of one run per model (GPT-2 `finetune`, DELLA) on
   the device (CUDA when present), at the sample scale (config/config.yaml) on synthetic text;
   then `della-bench evaluate` of the same weights and samples on the CPU. Training's random
   streams (dropout, latent noise) differ between devices, so the metrics compared are those
   that depend on none (TEXT_COMPARED, LATENT_COMPARED, NO_LATENT_COMPARED), each to a
   tolerance for the float rounding that can differ. Without CUDA this part runs CPU against CPU
   and says so.

Progress goes to stderr; stdout is the table. Exit status 1 if a check failed (FAILED in a row).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_generation
from bench_common import (
    DELLA,
    PLAIN,
    SIZES,
    BenchSize,
    build_backbone,
    build_model,
    full_batch,
    interleaved_times,
    machine_header,
    paired_ratio,
    reset_rss_peak,
    rss_kib,
    word_texts,
    write_jsonl_texts,
)

from della.cluster.gpu_memory import FUSED, model_training_peak
from della.models.backbone import CAUSAL, BackboneSize, create_backbone
from della.models.vae import KL_SUM, weighted_parameters
from della.pipeline import overlays
from della.pipeline.targets import train_settings
from della.run.tokenizer import train_tokenizer
from della.run.train import (
    BF16,
    FP16,
    FP32,
    LossModule,
    LossSettings,
    adamw,
    autocast,
    clip_gradients,
    compile_loss,
    gradient_scaler,
)
from metrics.representation import representation_metrics

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CONFIG = ROOT / "config" / "config.yaml"
MODEL_LABELS = {PLAIN: "GPT-2", DELLA: "DELLA"}
PRECISIONS = (FP32, BF16, FP16)
EAGER, COMPILED = "eager", "torch.compile"
COMPILE_ORDER = (BF16, FP32, FP16)  # the targets' dtype first: the budget may not reach the last
BETA, LEARNING_RATE, WEIGHT_DECAY, GRAD_CLIP = 1.0, 5e-5, 0.0, 1.0  # config/paper.yaml's training values
MFU_TARGET, STEP_RATIO_TARGET = 0.40, 1.6  # issue 21, DELLA in bf16
IW_SAMPLES, IW_SPEEDUP_TARGET = 100, 5.0
# Relative difference allowed between the batched and the per-sample IW estimate: the same draws,
# scored in batches of different shapes, differ only by float32 rounding of the logits (~1e-7 each).
IW_TOLERANCE = 1e-5
# Metrics compared between the device's and the CPU's evaluation of the same weights and samples,
# with the relative difference allowed. Text metrics read the same samples file: equal but for the
# order of float sums (CND sums over n-gram sets, whose order Python's string hashing changes from
# process to process: 2.5e-16 seen), so 1e-12. AU counts from posterior means (no draw): exact.
# PPL and NLL are compared for the model without a latent only, where log p(x) is one forward
# pass (no draw): float rounding of CUDA and CPU kernels, ~1e-6.
# Everything else (IW-PPL, KL, MI of a latent model) depends on the device's random stream.
TEXT_COMPARED = {"BLEU": 1e-12, "Self-BLEU": 1e-12, "Dist": 1e-12, "JS": 1e-12, "CND": 1e-12}
LATENT_COMPARED = {"AU": 0.0, "AU@0.01": 0.0}
NO_LATENT_COMPARED = {"PPL": 1e-4, "NLL": 1e-4}
# Reported beside the compared ones: MAUVE's k-means turns float rounding of its features into
# jumps; DELLA's PPL comes from importance samples of the device's random stream.
REPORTED = ("MAUVE", "PPL")
E2E_MODELS = {PLAIN: "finetune", DELLA: "della"}  # config/config.yaml's entries

# Published dense peaks (TFLOP/s, without structured sparsity) from NVIDIA's data sheets, keyed by
# a substring of torch.cuda.get_device_name(); the first match wins, so specific names come first.
# "fp32" is the plain FP32 rate (PyTorch's default: fp32 matmuls do not use TF32), "tf32" the
# tensor-core rate used when torch.backends.cuda.matmul.allow_tf32 is on. V100 and T4 have no bf16.
GPU_PEAK_TFLOPS = (
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
    ("L40S", {"fp32": 91.6, "tf32": 183.0, "bf16": 362.1, "fp16": 362.1}),
    ("L4", {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0}),
    ("V100-PCIE", {"fp32": 14.0, "fp16": 112.0}),
    ("V100", {"fp32": 15.7, "fp16": 125.0}),  # SXM2
    ("T4", {"fp32": 8.1, "fp16": 65.0}),
)


@dataclass(frozen=True)
class Mode:
    """The sizes and budget of one way of running the check."""

    name: str
    train_size: BenchSize
    warmup_steps: int  # untimed steps per configuration (AdamW's state, caches, compilation)
    rounds: int  # interleaved timed steps per model and configuration
    generation_size: str  # a bench_common.SIZES name, as bench_generation.py takes
    generation_rounds: int
    iw_size: BenchSize
    iw_batches: int
    iw_rounds: int
    e2e_backbone: BackboneSize
    e2e_texts: dict[str, int]  # split -> synthetic sentences
    e2e_overrides: dict = field(default_factory=dict)  # config section -> keys changed from config/config.yaml
    # Wall seconds the whole check may take: compiled configurations that would not fit are not run.
    # None: run them all (--tiny, where they are Dynamo traces of seconds).
    budget_s: float | None = 480.0
    threads: int | None = None  # torch threads (None: torch's default)


SAMPLE = SIZES["sample"]
GPU = Mode(
    name="gpu",
    train_size=replace(SIZES["gpt2-small"], batch=8, length=128),
    warmup_steps=3,
    rounds=10,
    generation_size="gpt2-small",
    generation_rounds=3,
    iw_size=SAMPLE,
    iw_batches=4,
    iw_rounds=3,
    e2e_backbone=BackboneSize(**overlays.load(SAMPLE_CONFIG)["backbones"]["gpt2"]["create"]),
    e2e_texts={"train": 2000, "test": 200},
)
TINY = Mode(
    name="tiny",
    train_size=SAMPLE,
    warmup_steps=2,
    rounds=3,
    generation_size="sample",
    generation_rounds=1,
    iw_size=replace(SAMPLE, batch=4, length=24),
    iw_batches=1,
    iw_rounds=1,
    e2e_backbone=BackboneSize(layers=2, hidden=32, heads=4, max_positions=128),
    e2e_texts={"train": 64, "test": 16},
    e2e_overrides={
        "training": {"batch_size": 8, "max_steps": 12, "warmup_steps": 2, "log_every": 4, "checkpoint_every": 12},
        "generation": {"batch_size": 16, "num_unconditional": 16},
        "decoding": {"max_new_tokens": 16},
        "evaluation": {"batch_size": 16, "max_test_examples": 16},
        "representation": {"iw_samples": 4, "iw_chunk": 4},
    },
    budget_s=None,
    threads=1,
)
COMPILE_GUESS_S = 150.0  # one compiled pair (GPT-2 + DELLA) on a GPU, before one was timed
# torch.compile's Inductor backend generates and builds C++ on the CPU: on this project's 2-core
# machine one model's first compiled steps took 80 s and more (bench_compile.py, results/benchmarks.md),
# more than --tiny's whole budget. On the CPU the compiled rows therefore trace with Dynamo only.
CPU_COMPILE_BACKEND = "eager"
CPU_COMPILE_SKIP = (
    "skipped on CPU: Inductor compiles a model for 80 s or more per precision here "
    "(bench_compile.py), over --tiny's 3 minutes; this ran torch.compile(backend='eager') "
    "(Dynamo tracing only) to check the compiled path"
)

# fp16 autocast (and its gradient scaler) runs on the CPU in torch 2.x, so --tiny measures it to run
# the code path; training itself refuses it there (della/run/train.py training_device).
CPU_FP16_NOTE = "CPU fp16 autocast runs only here: training.precision fp16 refuses the CPU"


@dataclass
class Row:
    part: str
    configuration: str
    result: str
    target: str = ""
    verdict: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict.startswith("FAILED")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -----------------------------------------------------------------------------
# 1. training step


class StepRunner:
    """One model and its optimiser; `step()` is della/run/train.py's optimiser step (one micro-batch)."""

    def __init__(
        self,
        kind: str,
        backbone: Path,
        size: BenchSize,
        device: torch.device,
        precision: str,
        compile_backend: str | None,
    ):
        self.device, self.precision = device, precision
        self.model = build_model(kind, backbone, size).to(device).train()
        self.batch = {name: t.to(device) for name, t in full_batch(self.model, size).items()}
        self.weighted = weighted_parameters(self.model)
        self.optimiser = adamw(self.weighted, LEARNING_RATE, WEIGHT_DECAY)
        self.scaler = gradient_scaler(device, precision)
        loss_module = LossModule(self.model, LossSettings(kl_threshold=0.0, kl_reduction=KL_SUM))
        self.loss_fn = loss_module if compile_backend is None else compile_loss(loss_module, compile_backend)

    def loss(self) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return self.loss_fn(self.batch, BETA)["loss"]

    def step(self) -> None:
        loss = self.loss()
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimiser)
        clip_gradients(self.weighted, GRAD_CLIP)
        self.scaler.step(self.optimiser)
        self.scaler.update()
        synchronize(self.device)

    def count_flops(self) -> int:
        """FLOPs of one forward and backward pass (what a step computes besides the optimiser)."""
        with FlopCounterMode(display=False) as counter:
            self.loss().backward()
        self.optimiser.zero_grad(set_to_none=True)
        return counter.get_total_flops()


class MemoryPeak:
    """Peak memory from `start()` on, above what was in use then (bytes)."""

    def __init__(self, device: torch.device):
        self.device = device

    def start(self) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
        else:
            reset_rss_peak()
            self.base = rss_kib() * 1024

    def peak(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) - self.base
        return rss_kib("VmHWM") * 1024 - self.base


def peak_tflops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """(dense peak TFLOP/s of the matmuls `precision` runs, what it is); None where unknown."""
    if device.type != "cuda":
        return None, f"unknown peak ({device.type})"
    name = torch.cuda.get_device_name(device)
    rate = "tf32" if precision == FP32 and torch.backends.cuda.matmul.allow_tf32 else precision
    for substring, peaks in GPU_PEAK_TFLOPS:
        if substring in name:
            if rate in peaks:
                return peaks[rate], f"{peaks[rate]:g} TFLOP/s ({substring}, {rate})"
            return None, f"no published {rate} peak for {name}"
    return None, f"unknown peak ({name})"


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure_configuration(
    backbone: Path, mode: Mode, device: torch.device, precision: str, compile_backend: str | None, flops: dict[str, int]
) -> dict:
    """Both models in one configuration: their warm-up and peak memory one after the other, then
    their steps interleaved (ABBA). Counts each model's FLOPs into `flops` the first time."""
    clock = "wall" if device.type == "cuda" else "cpu"
    runners, peaks, warmup_s, estimates = {}, {}, {}, {}
    if compile_backend is not None:
        torch._dynamo.reset()  # earlier configurations' graphs would count against the recompile limit
    try:
        for kind in (PLAIN, DELLA):
            memory = MemoryPeak(device)
            memory.start()
            runners[kind] = StepRunner(kind, backbone, mode.train_size, device, precision, compile_backend)
            if kind not in flops:
                flops[kind] = runners[kind].count_flops()
            start = time.perf_counter()
            for _ in range(mode.warmup_steps):
                runners[kind].step()
            warmup_s[kind] = time.perf_counter() - start
            peaks[kind] = memory.peak()
            # della/cluster/gpu_memory.py's estimate, fused attention (sdpa on CUDA): docs/cluster.md's table
            estimates[kind] = model_training_peak(runners[kind].model, runners[kind].batch, FUSED).total
        steps = interleaved_times({kind: runner.step for kind, runner in runners.items()}, mode.rounds)[clock]
    finally:  # the next configuration's peak memory must not include these models
        runners.clear()
        free_memory(device)
    return {"steps": steps, "peaks": peaks, "warmup_s": warmup_s, "clock": clock, "estimates": estimates}


class TrainingStepCheck:
    """Part 1: every (precision, eager or compiled) configuration of both models. The eager ones
    run first; the compiled ones after the other parts, each while the budget allows."""

    def __init__(self, backbone: Path, mode: Mode, device: torch.device):
        self.backbone, self.mode, self.device = backbone, mode, device
        self.flops: dict[str, int] = {}
        # (precision, EAGER or COMPILED) -> measure_configuration's numbers, or why there are none
        self.results: dict[tuple[str, str], dict | str] = {}

    def _run(self, precision: str, compiled: str) -> None:
        backend = None
        if compiled == COMPILED:
            backend = "inductor" if self.device.type == "cuda" else CPU_COMPILE_BACKEND
        log(f"training step: {precision}, {compiled}")
        try:
            self.results[(precision, compiled)] = measure_configuration(
                self.backbone, self.mode, self.device, precision, backend, self.flops
            )
        except Exception as error:  # one configuration failing must not lose the others' numbers
            traceback.print_exc()
            self.results[(precision, compiled)] = f"FAILED: {type(error).__name__}: {error}"

    def run_eager(self) -> None:
        for precision in PRECISIONS:
            self._run(precision, EAGER)

    def run_compiled(self, deadline: float | None) -> None:
        expected_s = COMPILE_GUESS_S
        for precision in COMPILE_ORDER:
            left = math.inf if deadline is None else deadline - time.perf_counter()
            if left < expected_s:
                self.results[(precision, COMPILED)] = (
                    f"not measured: {left:.0f} s of the {self.mode.budget_s:.0f} s budget left, a compiled "
                    f"pair (GPT-2 + DELLA) takes about {expected_s:.0f} s"
                )
                continue
            start = time.perf_counter()
            self._run(precision, COMPILED)
            expected_s = time.perf_counter() - start

    def rows(self) -> list[Row]:
        return [
            self._row(precision, compiled, kind)
            for precision in PRECISIONS
            for compiled in (EAGER, COMPILED)
            for kind in (PLAIN, DELLA)
        ]

    def _memory_label(self, kind: str) -> str:
        if self.device.type == "cuda":
            return "peak memory"
        # freed memory the allocator keeps and reuses does not raise the RSS again
        return "RSS peak growth" if kind == PLAIN else "RSS peak growth (a lower bound after GPT-2's)"

    def _row(self, precision: str, compiled: str, kind: str) -> Row:
        configuration = f"{precision}, {compiled}, {MODEL_LABELS[kind]}"
        targeted = kind == DELLA and precision == BF16
        target = f"MFU >= {MFU_TARGET:.0%}; step <= {STEP_RATIO_TARGET}x GPT-2's" if targeted else ""
        outcome = self.results.get((precision, compiled), "FAILED: not run")
        if isinstance(outcome, str):
            return Row(
                "training step",
                configuration,
                outcome,
                target,
                "FAILED" if outcome.startswith("FAILED") else "not measured",
            )
        peak, peak_text = peak_tflops(self.device, precision)
        tokens = self.mode.train_size.batch * self.mode.train_size.length
        step_s = statistics.median(outcome["steps"][kind])
        mfu = self.flops[kind] / step_s / (peak * 1e12) if peak else None
        parts = [
            f"{tokens / step_s:,.0f} tokens/s ({1000 * step_s:.1f} ms/step, {outcome['clock']} clock)",
            f"MFU {mfu:.1%} of {peak_text}" if mfu is not None else f"MFU: {peak_text}",
            f"{self._memory_label(kind)} {outcome['peaks'][kind] / 2**20:,.0f} MiB",
        ]
        ratio = paired_ratio(outcome["steps"], DELLA, PLAIN)
        if kind == DELLA:
            parts.append(f"{ratio:.2f}x GPT-2's step")
        if precision == FP32 and compiled == EAGER:
            parts.append(f"{self.flops[kind] / 1e9:,.1f} GFLOP/step")
            if self.device.type == "cuda":  # the CPU's RSS is no allocation count (tests/test_gpu_memory.py is)
                estimate = outcome["estimates"][kind]
                parts.append(
                    f"estimated peak {estimate / 2**20:,.0f} MiB (della/cluster/gpu_memory.py, fused attention; "
                    f"measured / estimated {outcome['peaks'][kind] / estimate:.2f})"
                )
        if precision == FP16 and self.device.type != "cuda":
            parts.append(CPU_FP16_NOTE)
        if compiled == COMPILED:
            parts.append(f"first {self.mode.warmup_steps} steps {outcome['warmup_s'][kind]:.1f} s (compilation)")
            if self.device.type != "cuda":
                parts[0] = f"{CPU_COMPILE_SKIP}. Dynamo only: {parts[0]}"
        verdict = ""
        if targeted:
            mfu_verdict = "no peak" if mfu is None else ("met" if mfu >= MFU_TARGET else "not met")
            verdict = f"MFU {mfu_verdict}; time {'met' if ratio <= STEP_RATIO_TARGET else 'not met'}"
        return Row("training step", configuration, "; ".join(parts), target, verdict)


# -----------------------------------------------------------------------------
# 2. generation


def generation(workdir: Path, mode: Mode, device: torch.device) -> list[Row]:
    results = bench_generation.measure(mode.generation_size, workdir, mode.generation_rounds, device)
    clock = "wall" if device.type == "cuda" else "cpu"
    rows = []
    for label, clocks in results.items():
        speeds = clocks[clock]
        for kind in (PLAIN, DELLA):
            result = (
                f"{statistics.median(speeds[kind]):,.1f} tokens/s ({clock} clock, median of {len(speeds[kind])} rounds)"
            )
            if kind == DELLA:
                result += f"; {paired_ratio(speeds, DELLA, PLAIN):.2f}x GPT-2's tokens/s"
            rows.append(Row("generation", f"{label}, {MODEL_LABELS[kind]}", result))
    return rows


# -----------------------------------------------------------------------------
# 3. IW log p(x)


def importance_weighted(workdir: Path, mode: Mode, device: torch.device) -> list[Row]:
    size = mode.iw_size
    model = build_model(DELLA, build_backbone(size, workdir), size).to(device).eval()
    batches = [
        {name: t.to(device) for name, t in full_batch(model, size, seed=i).items()} for i in range(mode.iw_batches)
    ]
    runs = {
        chunk: partial(representation_metrics, model, batches, {"iw_samples": IW_SAMPLES, "iw_chunk": chunk})
        for chunk in (IW_SAMPLES, 1)
    }
    nll = {chunk: run()["NLL"].value for chunk, run in runs.items()}  # also the warm-up of both paths
    clock = "wall" if device.type == "cuda" else "cpu"
    # every call ends by reading its numbers on the host, which waits for the GPU: the wall clock is synchronised
    times = interleaved_times(runs, mode.iw_rounds)[clock]
    speedup = paired_ratio(times, 1, IW_SAMPLES)
    difference = abs(nll[IW_SAMPLES] - nll[1]) / abs(nll[1])
    result = (
        f"NLL per sentence {nll[IW_SAMPLES]:.6f} batched, {nll[1]:.6f} loop (rel. diff {difference:.1e}); "
        f"{statistics.median(times[IW_SAMPLES]):.3f} s vs {statistics.median(times[1]):.3f} s: {speedup:.1f}x "
        f"({clock} clock, {size.batch * mode.iw_batches} sentences, iw_chunk {IW_SAMPLES} vs 1, median of "
        f"{mode.iw_rounds} rounds; each call also computes KL, MI, AU)"
    )
    agree = difference <= IW_TOLERANCE
    verdict = (
        f"agree; speed {'met' if speedup >= IW_SPEEDUP_TARGET else 'not met'}"
        if agree
        else f"FAILED: the values differ by more than {IW_TOLERANCE:g}"
    )
    return [
        Row(
            "IW log p(x)",
            f"k = {IW_SAMPLES}: batched vs per-sample loop, DELLA",
            result,
            f"agree to rel. {IW_TOLERANCE:g}; batched >= {IW_SPEEDUP_TARGET:g}x",
            verdict,
        )
    ]


# -----------------------------------------------------------------------------
# 4. end to end: della-bench train, generate, evaluate


def della_bench(command: str, *args: str, threads: int | None) -> float:
    """Run `della-bench <command>` (the console entry point's module) as the rules do; its wall seconds."""
    argv = [sys.executable, "-m", "della.cli", command, *args, *(["--threads", str(threads)] if threads else [])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"della-bench {command} exited with {done.returncode}: {done.stderr.strip()[-2000:]}")
    return time.perf_counter() - start


def run_settings(config: dict, name: str, backbone: Path, mode: Mode, device: str) -> dict[str, dict]:
    """The train, generate and evaluate rules' --settings for config/config.yaml's model `name`,
    with `mode`'s sizes and everything on `device`."""
    entry, changed = config["models"][name], mode.e2e_overrides
    evaluation = {
        **config["evaluation"],
        **changed.get("evaluation", {}),
        "device": device,
        "representation": {**config["evaluation"]["representation"], **changed.get("representation", {})},
        "mauve": {**config["evaluation"]["mauve"], "device": device},
    }
    return {
        "train": {  # the train rule's settings for (yelp, name), on this backbone, device and sizes
            **(rule := train_settings(config, "yelp", name)),
            "decoder": {**rule["decoder"], "name_or_path": str(backbone)},
            "training": {**rule["training"], **changed.get("training", {}), "device": device},
        },
        "generate": {
            **config["generation"],
            **changed.get("generation", {}),
            "device": device,
            "decoding": {
                **config["generation"]["decoding"],
                **entry.get("decoding", {}),
                **changed.get("decoding", {}),
            },
        },
        "evaluate": {
            "evaluation": evaluation,
            "dataset": "synthetic",
            "model": name,
            "label": entry["label"] or config["backbones"]["gpt2"]["label"],
        },
    }


def end_to_end(workdir: Path, mode: Mode, device: torch.device) -> list[Row]:
    root = workdir / "end_to_end"
    shutil.rmtree(root, ignore_errors=True)  # a reused --workdir: earlier runs would be resumed, not rerun
    data = root / "data"
    data.mkdir(parents=True)
    for seed, (split, n) in enumerate(mode.e2e_texts.items()):
        write_jsonl_texts(data / f"{split}.jsonl", word_texts(n, seed, min_words=4, max_words=16))
    config = overlays.load(SAMPLE_CONFIG)
    train_tokenizer(
        [data / "train.jsonl"],
        config["tokenizer"]["vocab_size"],
        config["tokenizer"]["min_frequency"],
        root / "tokenizer",
    )
    create_backbone(CAUSAL, mode.e2e_backbone, root / "tokenizer", root / "gpt2", seed=config["backbone_seed"])
    return [end_to_end_run(root, data, config, kind, mode, device) for kind in (PLAIN, DELLA)]


def end_to_end_run(root: Path, data: Path, config: dict, kind: str, mode: Mode, device: torch.device) -> Row:
    name = E2E_MODELS[kind]
    log(f"end to end: {name} on {device.type}, then evaluate on cpu")
    run, seed = root / "runs" / name, "0"
    on_device = run_settings(config, name, root / "gpt2", mode, device.type)
    on_cpu = run_settings(config, name, root / "gpt2", mode, "cpu")
    samples = run / "samples.jsonl"
    seconds = {
        "train": della_bench(
            "train",
            "--data",
            str(data),
            "--run",
            str(run),
            "--seed",
            seed,
            "--settings",
            json.dumps(on_device["train"]),
            threads=mode.threads,
        ),
        "generate": della_bench(
            "generate",
            "--data",
            str(data),
            "--run",
            str(run),
            "--out",
            str(samples),
            "--seed",
            seed,
            "--settings",
            json.dumps(on_device["generate"]),
            threads=mode.threads,
        ),
    }
    metrics = {}  # "device" (where the run is) and "cpu" -> metrics.json
    for role, settings in (("device", on_device), ("cpu", on_cpu)):
        out = run / f"metrics.{role}.json"
        seconds["evaluate" if role == "device" else "evaluate again on cpu"] = della_bench(
            "evaluate",
            "--data",
            str(data),
            "--run",
            str(run),
            "--samples",
            str(samples),
            "--out",
            str(out),
            "--seed",
            seed,
            "--settings",
            json.dumps(settings["evaluate"]),
            threads=mode.threads,
        )
        metrics[role] = json.loads(out.read_text())
    trained_on = json.loads((run / "train_done.json").read_text())["device"]
    tolerances = {**TEXT_COMPARED, **(NO_LATENT_COMPARED if kind == PLAIN else LATENT_COMPARED)}
    mine, cpu = ({m: v["value"] for m, v in metrics[role]["metrics"].items()} for role in ("device", "cpu"))
    compared = [m for m in tolerances if m in mine]
    differences = {m: abs(mine[m] - cpu[m]) / max(abs(mine[m]), abs(cpu[m]), 1e-300) for m in compared}
    errors = [f"{m} {mine[m]:.8g} vs {cpu[m]:.8g}" for m in compared if differences[m] > tolerances[m]]
    if not trained_on.startswith(device.type):
        errors.append(f"trained on {trained_on}, not {device.type}")
    if metrics["device"]["device"].startswith("cpu") != (device.type == "cpu"):
        errors.append(f"evaluated on {metrics['device']['device']}, not {device.type}")
    missing = [m for m in tolerances if m not in mine]
    if missing:
        errors.append(f"metrics missing: {missing}")
    if device.type == "cuda":
        versus = "cuda vs cpu"
    else:
        versus = "CPU vs CPU (" + ("--device cpu)" if torch.cuda.is_available() else "no CUDA on this machine)")
    worst = max(compared, key=differences.get)
    result = "; ".join(
        [
            f"{versus}: " + ", ".join(f"{step} {s:.1f} s" for step, s in seconds.items()),
            f"{len(compared)} compared ({', '.join(compared)}), largest rel. diff {differences[worst]:.1e} ({worst})",
            "headline " + ", ".join(f"{m} {mine[m]:.6g} vs {cpu[m]:.6g}" for m in ("PPL", "AU") if m in compared),
            "not compared: "
            + ", ".join(f"{m} {mine[m]:.4g} vs {cpu[m]:.4g}" for m in REPORTED if m in mine and m not in compared),
        ]
    )
    target = "compared metrics equal: " + ", ".join(
        f"{m} {'exact' if t == 0 else f'rel. {t:g}'}" for m, t in tolerances.items()
    )
    return Row(
        "end to end",
        f"della-bench train, generate, evaluate: {MODEL_LABELS[kind]} ({name})",
        result,
        target,
        "FAILED: " + "; ".join(errors) if errors else "ok",
    )


# -----------------------------------------------------------------------------
# the table


def guarded(part: str, function, *args) -> list[Row]:
    """A part's rows, or one FAILED row: a part that breaks must not lose the other parts' numbers."""
    try:
        return function(*args)
    except Exception as error:
        traceback.print_exc()
        return [Row(part, "(whole part)", f"{type(error).__name__}: {error}", verdict="FAILED")]


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown_table(rows: list[Row]) -> str:
    lines = ["| part | configuration | result | target | verdict |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {cell(r.part)} | {cell(r.configuration)} | {cell(r.result)} | {cell(r.target)} | {cell(r.verdict)} |"
        for r in rows
    ]
    return "\n".join(lines)


def describe_device(device: torch.device) -> str:
    if device.type != "cuda":
        return "cpu (no GPU)"
    properties = torch.cuda.get_device_properties(device)
    return (
        f"{properties.name} ({properties.total_memory / 2**30:.0f} GiB, compute capability "
        f"{properties.major}.{properties.minor}), CUDA {torch.version.cuda}"
    )


def sizes_line(mode: Mode) -> str:
    t, i, b = mode.train_size, mode.iw_size, mode.e2e_backbone
    g = SIZES[mode.generation_size]
    return (
        f"Sizes: training step {t.layers} x {t.hidden}, vocab {t.vocab}, batch {t.batch} x {t.length}; "
        f"generation {g.layers} x {g.hidden}, vocab {g.vocab}, {bench_generation.ROWS[mode.generation_size]} "
        f"sentences per call, up to {bench_generation.NEW_TOKENS} new tokens; IW {i.layers} x {i.hidden}, "
        f"{i.batch * mode.iw_batches} sentences of {i.length} tokens; end to end {b.layers} x {b.hidden} "
        f"backbones, config/config.yaml's settings"
        + (" with smaller sizes" if mode.e2e_overrides else "")
        + f", {mode.e2e_texts['train']} synthetic training sentences."
    )


def cpu_seconds() -> float:
    """CPU seconds of this process and of the commands it ran (the end-to-end `della-bench` runs)."""
    return sum(
        resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, every part in <= 3 min on one CPU core")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--append", type=Path, metavar="FILE", help="also append the table as a section to FILE")
    parser.add_argument("--workdir", type=Path, help="where backbones and runs are written (default: a temp dir)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    if device.type == "cpu" and not args.tiny:
        parser.error(
            "the full sizes need a GPU (a GPT-2-small step takes seconds on a CPU, compilation minutes); "
            "on a CPU run --tiny"
        )
    if args.append is not None and not args.append.is_file():
        parser.error(f"--append {args.append}: no such file")
    mode = TINY if args.tiny else GPU
    if mode.threads:
        torch.set_num_threads(mode.threads)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu_check_")))
        workdir.mkdir(parents=True, exist_ok=True)
        training = TrainingStepCheck(build_backbone(mode.train_size, workdir), mode, device)
        training.run_eager()
        log("generation")
        other_rows = guarded("generation", generation, workdir, mode, device)
        log("IW log p(x)")
        other_rows += guarded("IW log p(x)", importance_weighted, workdir, mode, device)
        other_rows += guarded("end to end", end_to_end, workdir, mode, device)
        training.run_compiled(None if mode.budget_s is None else started + mode.budget_s)
        rows = training.rows() + other_rows
    elapsed = time.perf_counter() - started
    command = f"PYTHONPATH=$PWD python benchmarks/gpu_check.py{' --tiny' if args.tiny else ''} --device {args.device}"
    budget = "" if mode.budget_s is None else f" (budget {mode.budget_s:.0f} s)"
    header = (
        f"`{command}` on {describe_device(device)}: {elapsed:.0f} s{budget}, {cpu_seconds():.0f} CPU seconds. "
        f"{sizes_line(mode)}\n{machine_header(torch.get_num_threads())}"
    )
    table = markdown_table(rows)
    print(f"{header}\n\n{table}")
    if args.append is not None:
        title = f"### GPU check: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {describe_device(device)}" + (
            " (`--tiny`)" if args.tiny else ""
        )
        with open(args.append, "a", encoding="utf-8") as handle:
            handle.write(f"\n{title}\n\n{header}\n\n{table}\n")
    failed = [f"{r.part}: {r.configuration}" for r in rows if r.failed]
    if failed:
        log(f"FAILED: {failed}")
        sys.exit(1)


if __name__ == "__main__":
    main()
