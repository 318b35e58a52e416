"""Generation throughput, DELLA vs GPT-2: tokens/s for beam search (10 beams) and nucleus sampling.

    PYTHONPATH=$PWD python benchmarks/bench_generation.py [--sizes sample gpt2-small] [--rounds 5] [--device cuda]

Both models decode as the pipeline does, through transformers' `generate()`
(`TransformerVAE.decode_tokens`, della/models/decoding.py) from a prior draw of z, with the key/value
cache: after the prompt, every decoder call gets one new token per row (checked here on every
run) and DELLA fuses z_l into that token's values only; the cached keys and values of earlier
tokens already carry it (tests/test_model.py checks that cached decoding equals teacher
forcing). Throughput counts the tokens returned (up to and including </s>), per
second of decoding (wall clock, and this process's CPU time, which follows the work done when
other jobs share the cores); the models are interleaved round by round (ABBA) and medians reported.
On a GPU the wall clock is the one to read: each call ends by copying its tokens to the host, which
waits for the GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (
    CLOCKS,
    DELLA,
    PLAIN,
    SIZES,
    build_backbone,
    build_model,
    machine_header,
    timed,
)

from della.models.decoding import BEAM, SAMPLE
from della.run.generate import seeded_generator

NEW_TOKENS = 32
ROWS = {"sample": 16, "gpt2-small": 4}  # sentences per call (each beam search keeps 10 per row)
DECODINGS = {
    "beam 10": {"strategy": BEAM, "num_beams": 10, "length_penalty": 1.0, "max_new_tokens": NEW_TOKENS},
    "nucleus p=0.9": {"strategy": SAMPLE, "temperature": 1.0, "top_k": 0, "top_p": 0.9, "max_new_tokens": NEW_TOKENS},
}


class StepWidths:
    """Records how many new tokens per row each decoder call receives (1 = the cache is used)."""

    def __init__(self, model):
        self.widths: list[int] = []
        decoder = model.decoder
        original = type(decoder).step.__get__(decoder)

        def step(embeds, *args):
            self.widths.append(embeds.shape[1])
            return original(embeds, *args)

        decoder.step = step


def generate_tokens(model, rows: int, decoding: dict, seed: int) -> int:
    """Draw z from the prior for `rows` unconditional sentences, decode; number of tokens made."""
    generator = seeded_generator(model, seed)
    z = model.chain(rows, None, None, generator=generator).z if model.n_groups else None
    return sum(len(row) for row in model.decode_tokens(z, [None] * rows, decoding, generator))


def measure(size_name: str, workdir: Path, rounds: int, device: str = "cpu") -> dict:
    """{decoding: {clock: {model: [tokens per second, one per round]}}}."""
    size = SIZES[size_name]
    backbone = build_backbone(size, workdir)
    models = {kind: build_model(kind, backbone, size).to(device).eval() for kind in (PLAIN, DELLA)}
    widths = {kind: StepWidths(model) for kind, model in models.items()}
    results = {}
    with torch.no_grad():
        for label, decoding in DECODINGS.items():
            speeds = {clock: {kind: [] for kind in models} for clock in CLOCKS}
            for r in range(rounds + 1):  # round 0 warms up
                for kind in models if r % 2 == 0 else reversed(list(models)):
                    widths[kind].widths.clear()
                    n_tokens, seconds = timed(partial(generate_tokens, models[kind], ROWS[size_name], decoding, seed=r))
                    if set(widths[kind].widths[1:]) != {1}:
                        raise RuntimeError(f"{kind}: decoder calls after the prompt got {widths[kind].widths} tokens")
                    for clock, elapsed in seconds.items():
                        if r:
                            speeds[clock][kind].append(n_tokens / elapsed)
            results[label] = speeds
    return results


def report(size_name: str, results: dict) -> None:
    size = SIZES[size_name]
    print(
        f"\n## {size_name}: {size.layers} layers x {size.hidden}, vocab {size.vocab}; {ROWS[size_name]} sentences "
        f"per call, up to {NEW_TOKENS} new tokens, z from the prior"
    )
    for label, clocks in results.items():
        for clock, speeds in clocks.items():
            med = {kind: statistics.median(v) for kind, v in speeds.items()}
            paired = statistics.median(d / g for d, g in zip(speeds[DELLA], speeds[PLAIN], strict=True))
            print(
                f"  {label:14s} tokens per {clock} second  GPT-2 {med[PLAIN]:8.1f}  DELLA {med[DELLA]:8.1f}  "
                f"DELLA / GPT-2 {paired:.2f}x (median of {len(speeds[PLAIN])} interleaved rounds)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the backbones are written (default: a temp dir)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_generation_")))
        print(f"# Generation: DELLA vs GPT-2, key/value cache, on {args.device}\n{machine_header(args.threads)}")
        for name in args.sizes:
            report(name, measure(name, workdir, args.rounds, args.device))
        print(f"\nfinished {machine_header(args.threads)}")


if __name__ == "__main__":
    main()
