"""Speed of metrics/ against the reference loops it replaces, measured side by side in one run.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_metrics.py [--sizes 1000 5000]

Prints a markdown report (machine, versions, date, one table per family) for the "Metrics"
section of results/benchmarks.md. Times are CPU seconds of this process (`time.process_time`,
one torch thread), so other jobs on a shared machine disturb them less than wall time would.

* Self-BLEU and whole-test-set (unconditional) BLEU at N generations x N references: the fast
  multi-reference path of metrics/ngram.py against nltk's `sentence_bleu` called once per
  hypothesis with the full reference list (Texygen's loop). nltk needs minutes per thousand
  hypotheses at these N, so it is timed on a seeded random subset of `--nltk-hypotheses`
  hypotheses and extrapolated per hypothesis to all N; on that subset both paths' sentence
  scores are compared (largest absolute difference reported).
* JS and CND at growing N: time per sentence should stay roughly flat (near-linear). JS is also
  checked against the plain O(N^2) Python loop over pairs at the smallest N.
* IW log p(x) on a DELLA model of the sample-scale size (random init): the k importance samples
  evaluated `chunk` at a time per model call (`evaluation.representation.iw_chunk`; chunk = k is
  one call) against one call per sample, from the *same* z draws, so the estimates agree to
  float rounding. The batched path saves per-call overhead (kernel launches on a GPU, Python
  and framework overhead everywhere), not arithmetic: on one CPU thread a tiny model is
  compute-bound and the gain is small or negative, on a GPU it is the launches that dominate.

Texts are synthetic (seeded Zipf-distributed words, 1-40 words a sentence): the point is speed;
correctness on real and edge-case text is tests/test_metrics.py's job.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

import metrics
from metrics import ngram
from metrics.registry import compute_metric

VOCABULARY = 20000
ZIPF_EXPONENT = 1.1
MAX_WORDS = 40
BLEU_ORDERS = 4


def synthetic_corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, VOCABULARY + 1)
    p = ranks**-ZIPF_EXPONENT
    p /= p.sum()
    lengths = rng.integers(1, MAX_WORDS + 1, size=n)
    words = rng.choice(VOCABULARY, size=int(lengths.sum()), p=p)
    out, start = [], 0
    for length in lengths:
        out.append(" ".join(f"w{w}" for w in words[start : start + length]))
        start += length
    return out


def cpu_seconds(fn, *args):
    start = time.process_time()
    result = fn(*args)
    return time.process_time() - start, result


def device_seconds(device: str, fn, *args):
    """CPU seconds on the CPU; wall seconds, synchronised, on a GPU (its work is asynchronous)."""
    if device == "cpu":
        return cpu_seconds(fn, *args)
    torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn(*args)
    torch.cuda.synchronize()
    return time.perf_counter() - start, result


# -----------------------------------------------------------------------------
# BLEU family


def bleu_rows(n: int, n_nltk: int, seed: int) -> list[dict]:
    s = metrics.resolve_settings({})
    generated, references = synthetic_corpus(n, seed), synthetic_corpus(n, seed + 1)
    gen_tokens, ref_tokens = ngram.tokenize_all(generated, s), ngram.tokenize_all(references, s)
    chosen = np.random.default_rng(seed).choice(n, size=min(n_nltk, n), replace=False)
    weights, smooth = (1.0 / BLEU_ORDERS,) * BLEU_ORDERS, SmoothingFunction().method1
    rows = []
    cases = {
        "Self-BLEU": (
            lambda: compute_metric("Self-BLEU", generated, s),
            lambda i: sentence_bleu(
                gen_tokens[:i] + gen_tokens[i + 1 :], gen_tokens[i], weights, smoothing_function=smooth
            ),
            gen_tokens,
            True,
        ),
        "BLEU (unconditional, whole test set)": (
            lambda: compute_metric("BLEU", generated, None, references, False, s),
            lambda i: sentence_bleu(ref_tokens, gen_tokens[i], weights, smoothing_function=smooth),
            ref_tokens,
            False,
        ),
    }
    for name, (fast, reference, ref_set_tokens, leave_out) in cases.items():
        fast_seconds, value = cpu_seconds(fast)
        nltk_seconds, nltk_scores = cpu_seconds(lambda reference=reference: [reference(i) for i in chosen])
        ref_set = ngram.ReferenceSet(ref_set_tokens, BLEU_ORDERS)
        fast_scores = [ref_set.sentence_bleu(gen_tokens[i], BLEU_ORDERS, "method1", leave_out) for i in chosen]
        nltk_total = nltk_seconds / len(chosen) * n
        rows.append(
            {
                "metric": name,
                "N": n,
                "value": value.value,
                "fast_s": fast_seconds,
                "nltk_s_extrapolated": nltk_total,
                "nltk_hypotheses_timed": len(chosen),
                "speedup": nltk_total / fast_seconds,
                "max_abs_diff_vs_nltk": float(np.max(np.abs(np.array(fast_scores) - np.array(nltk_scores)))),
            }
        )
    return rows


# -----------------------------------------------------------------------------
# JS and CND


def naive_mean_pairwise_jaccard(texts: list[str], n: int) -> float:
    sets = [set(zip(*(t.split()[i:] for i in range(n)), strict=False)) for t in texts]
    total = sum(ngram.jaccard(a, b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    return total / (len(sets) * (len(sets) - 1) / 2)


def scaling_rows(sizes: list[int], seed: int) -> list[dict]:
    s = metrics.resolve_settings({})
    rows = []
    for n in sizes:
        generated, references = synthetic_corpus(n, seed), synthetic_corpus(n, seed + 1)
        js_seconds, js = cpu_seconds(compute_metric, "JS", generated, s)
        cnd_seconds, cnd = cpu_seconds(compute_metric, "CND", generated, references, s)
        row = {
            "N": n,
            "JS": js.value,
            "JS_s": js_seconds,
            "JS_us_per_sentence": 1e6 * js_seconds / n,
            "CND": cnd.value,
            "CND_s": cnd_seconds,
            "CND_us_per_sentence": 1e6 * cnd_seconds / n,
        }
        if n == min(sizes):
            naive_seconds, naive = cpu_seconds(naive_mean_pairwise_jaccard, generated, s["js"]["n"])
            row.update(JS_naive_pairs_s=naive_seconds, JS_abs_diff_vs_naive=abs(naive - js.value))
        rows.append(row)
    return rows


# -----------------------------------------------------------------------------
# importance-weighted log p(x)


def tiny_della(workdir: Path, texts: list[str]):
    """A DELLA model with the sample scale's backbone size (config/config.yaml), random init."""
    from della.models.backbone import BackboneSize, create_backbone
    from della.models.vae import TransformerVAE, VAEConfig
    from della.run.tokenizer import train_tokenizer

    corpus = workdir / "train.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    train_tokenizer([corpus], vocab_size=1000, min_frequency=2, out_dir=workdir / "tokenizer")
    create_backbone(
        "causal",
        BackboneSize(layers=4, hidden=64, heads=4, max_positions=256),
        workdir / "tokenizer",
        workdir / "gpt2",
        seed=0,
    )
    torch.manual_seed(0)
    config = VAEConfig(
        path="della",
        decoder=str(workdir / "gpt2"),
        decoder_kind="causal",
        conditional=False,
        latent_size=32,
        max_target_tokens=48,
    )
    return TransformerVAE(config).eval()


def iw_log_px(model, batches, k: int, chunk: int, seed: int) -> float:
    """sum_x log (1/k) sum_i p(x, z_i) / q(z_i | x), the z_i drawn at once from a seeded RNG;
    p(x | z_i) p(z_i) evaluated `chunk` samples per model call (1: a per-sample loop)."""
    torch.manual_seed(seed)
    total = 0.0
    with torch.no_grad():
        for batch in batches:
            enc = model.encode(batch)
            z, log_q = model.sample_posterior(enc, k)  # [B, k, D], [B, k]
            log_joint = torch.cat(
                [
                    model.log_likelihood(batch, z[:, i : i + chunk]) + model.log_prior(batch, z[:, i : i + chunk])
                    for i in range(0, k, chunk)
                ],
                dim=1,
            )
            total += (torch.logsumexp((log_joint - log_q).double(), dim=1) - math.log(k)).sum().item()
    return total


def iw_rows(ks: list[int], chunks: list[int], n_sentences: int, batch_size: int, seed: int, device: str) -> list[dict]:
    from della.run.batches import batches

    texts = [" ".join(t.split()[:30]) for t in synthetic_corpus(n_sentences, seed)]
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_della(Path(tmp), texts).to(device)
        data = [
            {name: t.to(device) for name, t in batch.items()}
            for batch in batches([{"text": t} for t in texts], model.collator, batch_size)
        ]
        rows = []
        for k in ks:
            loop_seconds, looped = device_seconds(device, iw_log_px, model, data, k, 1, seed)
            for chunk in sorted({min(c, k) for c in chunks} | {k}):
                batched_seconds, batched = device_seconds(device, iw_log_px, model, data, k, chunk, seed)
                rows.append(
                    {
                        "k": k,
                        "chunk": chunk,
                        "device": device,
                        "sentences": n_sentences,
                        "batch_size": batch_size,
                        "batched_s": batched_seconds,
                        "loop_s": loop_seconds,
                        "speedup": loop_seconds / batched_seconds,
                        "log_px_batched": batched,
                        "log_px_loop": looped,
                        "rel_diff": abs(batched - looped) / abs(looped),
                    }
                )
    return rows


# -----------------------------------------------------------------------------
# report


def machine() -> dict:
    packages = ("numpy", "scipy", "nltk", "sacrebleu", "torch", "transformers")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        **{p: version(p) for p in packages},
    }


def markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores, 1-min load {m['load_average_1min']:.1f}), "
        f"Python {m['python']}, torch {m['torch']} ({m['torch_threads']} thread), numpy {m['numpy']}, "
        f"scipy {m['scipy']}, nltk {m['nltk']}, sacrebleu {m['sacrebleu']}. CPU seconds of one process.",
        "",
    ]
    lines += [
        "| metric | N | value | metrics/ (s) | nltk loop (s, extrapolated) | nltk hyps timed | speed-up "
        "| max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["bleu"]:
        lines.append(
            f"| {r['metric']} | {r['N']} | {r['value']:.4f} | {r['fast_s']:.2f} | {r['nltk_s_extrapolated']:.1f} | "
            f"{r['nltk_hypotheses_timed']} | {r['speedup']:.0f}x | {r['max_abs_diff_vs_nltk']:.1e} |"
        )
    lines += [
        "",
        "| N | JS | JS (s) | JS (us/sentence) | CND | CND (s) | CND (us/sentence) | naive JS pair loop (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["scaling"]:
        naive = f"{r['JS_naive_pairs_s']:.1f} (diff {r['JS_abs_diff_vs_naive']:.0e})" if "JS_naive_pairs_s" in r else ""
        lines.append(
            f"| {r['N']} | {r['JS']:.4f} | {r['JS_s']:.2f} | {r['JS_us_per_sentence']:.0f} | {r['CND']:.4f} | "
            f"{r['CND_s']:.2f} | {r['CND_us_per_sentence']:.0f} | {naive} |"
        )
    lines += [
        "",
        f"IW log p(x) on {report['iw'][0]['device']}:",
        "",
        "| k | samples per call | sentences (batch) | batched (s) | per-sample loop (s) | speed-up "
        "| sum log p(x) batched | loop | rel. diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in report["iw"]:
        lines.append(
            f"| {r['k']} | {r['chunk']} | {r['sentences']} ({r['batch_size']}) | {r['batched_s']:.2f} | "
            f"{r['loop_s']:.2f} | "
            f"{r['speedup']:.1f}x | {r['log_px_batched']:.3f} | {r['log_px_loop']:.3f} | {r['rel_diff']:.1e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="N for the BLEU family")
    parser.add_argument("--scaling-sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000], help="N for JS/CND")
    parser.add_argument("--nltk-hypotheses", type=int, default=30, help="hypotheses the nltk loop is timed on")
    parser.add_argument("--iw-samples", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--iw-chunks", type=int, nargs="+", default=[10], help="samples per call besides k itself")
    parser.add_argument("--iw-sentences", type=int, default=40)
    parser.add_argument("--iw-batch-size", type=int, default=10)
    parser.add_argument(
        "--iw-device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="device of the IW model (GPU times are synchronised wall seconds)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    report = {"machine": machine(), "settings": vars(args) | {"json": str(args.json)}}
    report["bleu"] = [row for n in args.sizes for row in bleu_rows(n, args.nltk_hypotheses, args.seed)]
    report["scaling"] = scaling_rows(args.scaling_sizes, args.seed)
    report["iw"] = iw_rows(
        args.iw_samples, args.iw_chunks, args.iw_sentences, args.iw_batch_size, args.seed, args.iw_device
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print(markdown(report))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
