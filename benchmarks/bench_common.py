"""What the model benchmarks share: random-init GPT-2 backbones of a named size, full-length
random batches, DELLA / plain-GPT-2 models built through the same `TransformerVAE` the pipeline
trains, interleaved (ABAB) timing with medians, and the machine/version header of a report.

Nothing is downloaded: the backbones come from `GPT2Config` and are saved with a small BPE
tokenizer trained on a synthetic corpus (only its special ids matter, the batches are random ids).
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

from della.models.backbone import CAUSAL, load_tokenizer, special_ids
from della.models.vae import TransformerVAE, VAEConfig
from della.run.batches import IGNORE_INDEX
from della.run.tokenizer import train_tokenizer


@dataclass(frozen=True)
class BenchSize:
    """A backbone size and the batch it is benchmarked at (equal for DELLA and GPT-2)."""

    name: str
    layers: int
    hidden: int
    heads: int
    vocab: int
    batch: int
    length: int  # tokens per sequence, encoder and decoder side alike


# `sample`: config/config.yaml's gpt2 backbone (4 x 64, tokenizer.vocab_size 1000) at its training
# batch (training.batch_size 16, yelp's max_target_tokens 48). `gpt2-small`: GPT2Config()'s
# defaults (12 x 768, 12 heads, vocab 50257) at batch 4 x 64.
SIZES = {
    "sample": BenchSize("sample", layers=4, hidden=64, heads=4, vocab=1000, batch=16, length=48),
    # config/small.yaml's backbones (4 x 128, tokenizer.vocab_size 2000) at batch 32 x 40
    "small": BenchSize("small", layers=4, hidden=128, heads=4, vocab=2000, batch=32, length=40),
    "gpt2-small": BenchSize("gpt2-small", layers=12, hidden=768, heads=12, vocab=50257, batch=4, length=64),
}

# The two models compared: the `finetune` entry (path none, plain GPT-2 fine-tuning) and the
# `della` entry of config/config.yaml and config/paper.yaml (latent 32, rank 4, before_product).
PLAIN, DELLA = "gpt2", "della"
MODEL_PATHS = {PLAIN: "none", DELLA: "della"}
DELLA_SETTINGS = {"rank": 4, "rank_sum": "before_product"}
LATENT_SIZE = 32
MAX_POSITIONS = 1024  # GPT2Config()'s n_positions

_WORDS = [
    "the",
    "food",
    "was",
    "great",
    "service",
    "slow",
    "staff",
    "pizza",
    "coffee",
    "place",
    "we",
    "loved",
    "it",
    "is",
    "very",
    "good",
    "bad",
    "price",
    "menu",
]


def build_backbone(size: BenchSize, root: Path) -> Path:
    """A random-init GPT-2 of `size` with a tokenizer, saved under `root` (reused if present)."""
    out = root / size.name
    if (out / "config.json").exists():
        return out
    tokenizer_dir = root / "tokenizer"
    if not (tokenizer_dir / "tokenizer.json").exists():
        corpus = root / "corpus.jsonl"
        write_jsonl_texts(corpus, word_texts(200, seed=0))
        train_tokenizer([corpus], vocab_size=300, min_frequency=2, out_dir=tokenizer_dir)
    tokenizer = load_tokenizer(str(tokenizer_dir))
    bos, eos, pad = special_ids(tokenizer)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=size.vocab,
        n_positions=MAX_POSITIONS,
        n_embd=size.hidden,
        n_layer=size.layers,
        n_head=size.heads,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def word_texts(n: int, seed: int, min_words: int = 12, max_words: int = 12) -> list[str]:
    """`n` seeded sentences of `min_words` to `max_words` words drawn from a small vocabulary."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(rng.randint(min_words, max_words))) for _ in range(n)]


def write_jsonl_texts(path: Path, texts: list[str]) -> None:
    """`texts` as the pipeline's processed-split format ({"text": ...} per line)."""
    path.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))


def build_model(kind: str, backbone: Path, size: BenchSize, settings: dict | None = None) -> TransformerVAE:
    """The plain GPT-2 or the DELLA model; `settings` override DELLA's path settings."""
    torch.manual_seed(0)
    config = VAEConfig(
        path=MODEL_PATHS[kind],
        decoder=str(backbone),
        decoder_kind=CAUSAL,
        conditional=False,
        latent_size=LATENT_SIZE,
        max_target_tokens=size.length,
        path_settings={**DELLA_SETTINGS, **(settings or {})} if kind == DELLA else {},
    )
    return TransformerVAE(config)


def full_batch(model: TransformerVAE, size: BenchSize, seed: int = 0) -> dict[str, torch.Tensor]:
    """A collated-format batch with every sequence exactly `size.length` tokens, no padding:
    x = <s> w_1..w_{L-2} </s> (encoder), dec_ids = <s> w_1..w_{L-1}, labels = w_1..w_{L-1} </s>."""
    generator = torch.Generator().manual_seed(seed)
    n_special = 4  # the tokenizer's <pad> <s> </s> <unk> are ids 0-3: words are drawn above them
    words = torch.randint(n_special, size.vocab, (size.batch, size.length), generator=generator)
    bos = torch.full((size.batch, 1), model.bos)
    eos = torch.full((size.batch, 1), model.eos)
    ones = torch.ones(size.batch, size.length, dtype=torch.long)
    labels = torch.cat([words[:, : size.length - 1], eos], 1)
    assert (labels != IGNORE_INDEX).all()
    return {
        "x_ids": torch.cat([bos, words[:, : size.length - 2], eos], 1),
        "x_mask": ones,
        "dec_ids": torch.cat([bos, words[:, : size.length - 1]], 1),
        "dec_mask": ones.clone(),
        "labels": labels,
    }


# Wall-clock time, and the CPU time of this process (all its threads): on a machine whose cores
# other jobs share, CPU time follows the work done much more closely than wall time does.
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def timed(function) -> tuple[object, dict[str, float]]:
    """Run `function`; its result and the seconds it took on each clock of CLOCKS."""
    start = {name: clock() for name, clock in CLOCKS.items()}
    result = function()
    return result, {name: clock() - start[name] for name, clock in CLOCKS.items()}


def rss_kib(field: str = "VmRSS") -> int:
    """This process's resident memory (`VmRSS`) or its high-water mark (`VmHWM`), KiB."""
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def reset_rss_peak() -> None:
    """Set the kernel's high-water mark (VmHWM) to the current RSS, so that VmHWM read later is the
    peak since now (tracemalloc cannot see torch's C++ allocations)."""
    Path("/proc/self/clear_refs").write_text("5")


def interleaved_times(runs: dict, rounds: int) -> dict[str, dict[str, list[float]]]:
    """Time each callable of `runs` once per round, in ABAB... order reversed every other round
    (ABBA), so drifting load from other processes falls on every configuration alike.
    Returns {clock: {run: [seconds per round]}}."""
    names = list(runs)
    times = {clock: {name: [] for name in names} for clock in CLOCKS}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            _, seconds = timed(runs[name])
            for clock, value in seconds.items():
                times[clock][name].append(value)
    return times


def paired_ratio(times: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """Median over rounds of the per-round ratio (each round's two runs saw similar load)."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator], strict=True))


def machine_header(threads: int) -> str:
    load = os.getloadavg()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {cpu_name()}, "
        f"{os.cpu_count()} CPUs, torch.set_num_threads({threads}); load average {load[0]:.1f} "
        f"(1 min); python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}"
    )


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()
