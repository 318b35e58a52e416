"""DELLA's training step against plain GPT-2 fine-tuning, at equal batch and length.

    PYTHONPATH=$PWD python benchmarks/bench_train_step.py [--sizes sample gpt2-small] [--rounds 9]

One step is what della/run/train.py does: `model.loss` (beta 1, sum of per-layer KL), backward,
gradient clipping and AdamW (della/run/train.py's `clip_gradients` and `adamw`). Per backbone size
(bench_common.SIZES) it prints:

* time per step, wall clock and this process's CPU time (which follows the work done when other
  jobs share the cores), the models run in one process, interleaved ABBA round by round,
  medians and the median of the per-round DELLA/GPT-2 ratios;
* a breakdown, by cutting the autograd graph (detach + requires_grad) at the encoder's layer
  states and at the decoder's final states, so that backward runs stage by stage: encoder
  pass, decoder pass (DELLA: with the fusion and the latent chain), LM head and loss, optimiser
  (clip + AdamW), in CPU seconds. Fusion = DELLA's decoder pass minus GPT-2's; its forward part is timed directly;
* `della, encoder no_grad`: the encoder pass under torch.no_grad (what the saving would be;
  the objective does not allow it: its gradient reaches the shared GPT-2 weights through q(z|x));
* `della, rank 1` (memory only): with rank_sum before_product the r factor pairs sum to one
  matrix each before the product, so rank 1 spans the same functions with a quarter of the
  fusion parameters (the trained result differs: init scale and AdamW step of the sum);
* `della, summed factors` (time and memory): `factor_storage: summed`, the rank-4 model stored
  as the factors' sums, trained exactly as the factors (AdamW at 4x the learning rate and 1/4
  the weight decay on the sums, clipping counting them 4 times; tests/test_ablations.py);
* peak memory: each configuration in a fresh subprocess; after the model is built, the kernel's
  peak-RSS counter is reset (`/proc/self/clear_refs` 5), three steps run, and the peak
  (VmHWM) minus the RSS before the model was built is the training peak (weights, gradients,
  AdamW state, activations, allocator slack). tracemalloc cannot see torch's C++ allocations.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from della.models.vae import weighted_parameters
from della.run.train import adamw, clip_gradients

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    DELLA,
    PLAIN,
    SIZES,
    build_backbone,
    build_model,
    full_batch,
    interleaved_times,
    machine_header,
    paired_ratio,
    reset_rss_peak,
    rss_kib,
)

BETA = 1.0  # the KL weight at the end of an annealing cycle: the full ELBO
LEARNING_RATE = 5e-5  # config/paper.yaml training.learning_rate
WEIGHT_DECAY = 0.0  # config/paper.yaml training.weight_decay
GRAD_CLIP = 1.0
WARMUP_STEPS = 2  # AdamW allocates its state on the first step; the first steps also warm caches
MEMORY_STEPS = 3
ENCODER_NO_GRAD, RANK_1, SUMMED = "della, encoder no_grad", "della, rank 1", "della, summed factors"
# name -> (model kind, encoder under no_grad, DELLA settings); rank 1 is measured for memory only
CONFIGS = {
    PLAIN: (PLAIN, False, None),
    DELLA: (DELLA, False, None),
    ENCODER_NO_GRAD: (DELLA, True, None),
    RANK_1: (DELLA, False, {"rank": 1}),
    SUMMED: (DELLA, False, {"factor_storage": "summed"}),
}
TIMED = (PLAIN, DELLA, ENCODER_NO_GRAD, SUMMED)
STAGES = ("encoder", "decoder", "head", "optimiser")
CLOCK = time.process_time  # the breakdown in CPU seconds of this process (robust to shared cores)


class Trainer:
    """One model, its AdamW and its batch; `step()` is della/run/train.py's step."""

    def __init__(self, config: str, backbone: Path, size):
        kind, encoder_no_grad, settings = CONFIGS[config]
        self.model = build_model(kind, backbone, size, settings).train()
        self.batch = full_batch(self.model, size)
        self.weighted = weighted_parameters(self.model)
        self.optimiser = adamw(self.weighted, LEARNING_RATE, WEIGHT_DECAY)
        if encoder_no_grad:  # the encoder is the GPT-2 adapter itself: shadow its method
            self.model.encoder.layer_states = _no_grad(self.model.encoder.layer_states)

    def loss(self) -> torch.Tensor:
        return self.model.loss(self.batch, BETA, 0.0, "sum")["loss"]

    def update(self) -> None:
        clip_gradients(self.weighted, GRAD_CLIP)
        self.optimiser.step()

    def step(self) -> None:
        loss = self.loss()
        self.optimiser.zero_grad(set_to_none=True)
        loss.backward()
        self.update()


def _no_grad(function):
    def run(*args):
        with torch.no_grad():
            return function(*args)

    return run


class StagedStep:
    """The same step with the graph cut at the encoder states and the decoder's final states, so
    that each stage's forward and backward are timed apart. Gradients are those of `step()`."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.times: dict[str, float] = {}
        self.cuts: dict[str, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        model = trainer.model
        self._wrap(model.decoder, "step", "decoder")
        if model.n_groups:
            self._wrap(model.encoder, "layer_states", "encoder")
            self._wrap(model.path, "fuse_value", "fusion forward", cut=False)

    def _wrap(self, owner, method: str, stage: str, cut: bool = True) -> None:
        original = getattr(type(owner), method).__get__(owner)

        def timed(*args):
            start = CLOCK()
            out = original(*args)
            self.times[stage] = self.times.get(stage, 0.0) + CLOCK() - start
            if not cut:
                return out
            outs = out if isinstance(out, list) else [out]
            leaves = [o.detach().requires_grad_() for o in outs]
            self.cuts[stage] = (outs, leaves)
            return leaves if isinstance(out, list) else leaves[0]

        setattr(owner, method, timed)

    def run(self) -> dict[str, float]:
        self.times, self.cuts = {}, {}
        trainer = self.trainer
        start = CLOCK()
        loss = trainer.loss()
        forward = CLOCK() - start
        trainer.optimiser.zero_grad(set_to_none=True)
        start = CLOCK()
        # LM head, cross-entropy, KL: stops at the cuts. z and the KL share the chain's graph,
        # which the decoder stage goes through again: keep it.
        loss.backward(retain_graph=True)
        head_backward = CLOCK() - start
        forwards = dict(self.times)
        for stage in ("decoder", "encoder"):  # reverse order of the forward pass
            if stage in self.cuts:
                outs, leaves = self.cuts[stage]
                start = CLOCK()
                torch.autograd.backward(outs, [leaf.grad for leaf in leaves])
                self.times[stage] += CLOCK() - start
        start = CLOCK()
        trainer.update()
        result = {
            "encoder": self.times.get("encoder", 0.0),
            "decoder": self.times["decoder"],
            "head": forward - forwards["decoder"] - forwards.get("encoder", 0.0) + head_backward,
            "optimiser": CLOCK() - start,
        }
        if "fusion forward" in self.times:
            result["fusion forward"] = self.times["fusion forward"]
        return result


def check_staged_gradients(backbone: Path, size) -> float:
    """Largest gradient difference between the staged and the plain DELLA step (must be ~0)."""
    grads = []
    for staged in (False, True):
        trainer = Trainer(DELLA, backbone, size)
        torch.manual_seed(1)  # the same dropout masks and posterior noise in both
        if staged:
            StagedStep(trainer).run()
        else:
            trainer.loss().backward()
            trainer.update()  # the staged step clips too (in place)
        grads.append([p.grad.clone() for p in trainer.model.parameters() if p.grad is not None])
    return max((a - b).abs().max().item() for a, b in zip(*grads, strict=True))


def time_steps(backbone: Path, size, rounds: int) -> dict:
    trainers = {name: Trainer(name, backbone, size) for name in TIMED}
    for trainer in trainers.values():
        for _ in range(WARMUP_STEPS):
            trainer.step()
    steps = interleaved_times({name: t.step for name, t in trainers.items()}, rounds)
    staged = {name: StagedStep(trainers[name]) for name in (PLAIN, DELLA)}
    stages = {name: [] for name in staged}
    for r in range(rounds):
        for name in staged if r % 2 == 0 else reversed(list(staged)):
            stages[name].append(staged[name].run())
    breakdown = {
        name: {key: statistics.median(run[key] for run in runs) for key in runs[0]} for name, runs in stages.items()
    }
    return {"steps": steps, "breakdown": breakdown}


def memory_worker(size_name: str, config: str, workdir: Path) -> None:
    """Run in a fresh interpreter: print the training peak (KiB) and parameter count as JSON."""
    size = SIZES[size_name]
    backbone = build_backbone(size, workdir)
    before = rss_kib()
    trainer = Trainer(config, backbone, size)
    built = rss_kib()
    reset_rss_peak()
    for _ in range(MEMORY_STEPS):
        trainer.step()
    peak = rss_kib("VmHWM")
    parameters = sum(p.numel() for p, _ in trainer.weighted)
    paper_parameters = sum(p.numel() * m for p, m in trainer.weighted)
    print(
        json.dumps(
            {
                "peak_kib": peak - before,
                "model_kib": built - before,
                "parameters": parameters,
                "paper_parameters": paper_parameters,
            }
        )
    )


def measure_memory(size_name: str, workdir: Path, threads: int, repeats: int) -> dict[str, list[dict]]:
    results = {name: [] for name in CONFIGS}
    for r in range(repeats):
        for name in results if r % 2 == 0 else reversed(list(results)):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-worker",
                    size_name,
                    name,
                    "--workdir",
                    str(workdir),
                    "--threads",
                    str(threads),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def report(size, timing: dict, memory: dict) -> None:
    print(
        f"\n## {size.name}: {size.layers} layers x {size.hidden}, vocab {size.vocab}, "
        f"batch {size.batch} x {size.length}"
    )
    if memory:
        params = {name: runs[0]["parameters"] for name, runs in memory.items()}
        paper = {name: runs[0]["paper_parameters"] for name, runs in memory.items()}
        print(
            "parameters stored: "
            + ", ".join(
                f"{name} {n:,} ({n / params[PLAIN]:.2f}x"
                + (f"; stands for {paper[name]:,})" if paper[name] != n else ")")
                for name, n in params.items()
            )
        )
    for clock, steps in timing["steps"].items():
        med = {name: statistics.median(t) for name, t in steps.items()}
        print(f"time per step, {clock} clock, median of {len(steps[PLAIN])} interleaved rounds (s):")
        for name, value in med.items():
            print(f"  {name:24s} {value:8.4f}  (min {min(steps[name]):.4f}, max {max(steps[name]):.4f})")
        print(
            f"  DELLA / GPT-2: {paired_ratio(steps, DELLA, PLAIN):.2f}x (median of per-round ratios; "
            f"ratio of medians {med[DELLA] / med[PLAIN]:.2f}x)"
        )
        print(
            f"  encoder under no_grad saves {1 - paired_ratio(steps, ENCODER_NO_GRAD, DELLA):.0%} of DELLA's step "
            f"({paired_ratio(steps, ENCODER_NO_GRAD, PLAIN):.2f}x GPT-2)"
        )
        print(
            f"  summed factors: {paired_ratio(steps, SUMMED, PLAIN):.2f}x GPT-2, "
            f"{paired_ratio(steps, SUMMED, DELLA):.2f}x DELLA's step"
        )
    plain, della = timing["breakdown"][PLAIN], timing["breakdown"][DELLA]
    base = sum(plain[s] for s in STAGES)
    print("breakdown, forward + backward per stage, median CPU seconds and as a fraction of GPT-2's staged step:")
    for stage in STAGES:
        print(
            f"  {stage:10s} GPT-2 {plain[stage]:8.4f} ({plain[stage] / base:.2f})  DELLA {della[stage]:8.4f} "
            f"({della[stage] / base:.2f})"
        )
    fusion = della["decoder"] - plain["decoder"]
    print(
        f"  fusion + chain (DELLA decoder - GPT-2 decoder) {fusion:.4f} ({fusion / base:.2f}); "
        f"fusion forward alone {della['fusion forward']:.4f}"
    )
    print(f"  staged step total: GPT-2 {base:.4f}, DELLA {sum(della[s] for s in STAGES):.4f}")
    if not memory:
        return
    mem = {name: statistics.median(r["peak_kib"] for r in runs) / 1024 for name, runs in memory.items()}
    print(f"peak training memory (MiB above the pre-model RSS; median of {len(memory[PLAIN])} fresh processes):")
    for name, value in mem.items():
        print(f"  {name:24s} {value:8.1f}  ({value / mem[PLAIN]:.2f}x GPT-2)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=9, help="interleaved timing rounds per model")
    parser.add_argument(
        "--memory-repeats", type=int, default=2, help="fresh processes per model for peak memory (0: skip)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the backbones are written (default: a temp dir)"
    )
    parser.add_argument("--memory-worker", nargs=2, metavar=("SIZE", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory_worker:
        memory_worker(*args.memory_worker, args.workdir)
        return
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_train_")))
        print(f"# Training step: DELLA vs GPT-2 fine-tuning\n{machine_header(args.threads)}")
        for name in args.sizes:
            size = SIZES[name]
            backbone = build_backbone(size, workdir)
            print(
                f"\n[{name}] staged vs plain DELLA gradients differ by at most "
                f"{check_staged_gradients(backbone, size):.2e}"
            )
            timing = time_steps(backbone, size, args.rounds)
            memory = measure_memory(name, workdir, args.threads, args.memory_repeats) if args.memory_repeats else {}
            report(size, timing, memory)
        print(f"\nfinished {machine_header(args.threads)}")


if __name__ == "__main__":
    main()
