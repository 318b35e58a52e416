"""The GPU-memory estimates (della/cluster/gpu_memory.py, docs/cluster.md's table) against the bytes the
real jobs allocate, measured here on the CPU at small sizes: a training step of every model path
(two steps, so AdamW's moments are held), an IW scoring call, greedy and beam generate() calls,
and a feature model's batch. The backbones carry the published models' dropouts (GPT-2's are its
defaults; BART-base's attention and activation dropouts are 0.1, BartConfig's default 0), because
a dropout decides what autograd saves. With dropout the CPU materialises attention scores, so these checks are
of the `materialised` training estimates, as is the feature pass (an attention mask also keeps
the CPU off its fused kernel); scoring and generation (no dropout, no padding here) run the CPU's
fused kernel, as a GPU does everywhere, and are checked as `fused` (benchmarks/gpu_check measures
the fused estimates on a GPU)."""

from __future__ import annotations

import json
import random

import pytest
import torch

from della.cluster.cluster_table import markdown_table
from della.cluster.gpu_memory import (
    FUSED,
    LATENT_PARAMETER_SHARE,
    MATERIALISED,
    GpuTooSmall,
    feature_peak,
    generation_peak,
    gpu_model_for,
    measure_peak_bytes,
    model_training_peak,
    needed_gib,
    out_of_memory_message,
    run_need,
    run_peaks,
    scoring_peak,
    smallest_card,
    stacks_of,
    table_runs,
)
from della.models.architectures import PUBLISHED
from della.models.backbone import BackboneSize, create_backbone
from della.models.decoding import BEAM, GREEDY
from della.models.vae import TransformerVAE, VAEConfig
from della.pipeline import overlays
from della.run.tokenizer import train_tokenizer

from conftest import WORDS
from helpers import ROOT

# An estimate may exceed the measured peak by this share (it sums what the allocator may free
# and reuse in between) and fall short by the lower one (tensors the formula leaves out: a padded
# batch's [rows, 1, length, length] attention mask, the latent path's small ones).
OVER, UNDER = 0.15, 0.10
WIDTH, HEADS, LAYERS, POSITIONS = 64, 4, 2, 300
PUBLISHED_DROPOUTS = {"seq2seq": {"attention_dropout": 0.1, "activation_dropout": 0.1}}


def within(estimate: float, measured: float) -> bool:
    return (1 - UNDER) * measured <= estimate <= (1 + OVER) * measured


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("memory_backbones")
    rng = random.Random(0)
    corpus = root / "train.jsonl"
    corpus.write_text("".join(json.dumps({"text": " ".join(rng.choices(WORDS, k=30))}) + "\n" for _ in range(300)))
    train_tokenizer([corpus], vocab_size=400, min_frequency=1, out_dir=root / "tokenizer")
    dirs = {}
    for kind in ("causal", "seq2seq", "encoder"):
        create_backbone(kind, BackboneSize(LAYERS, WIDTH, HEADS, POSITIONS), root / "tokenizer", root / kind, seed=0)
        config_file = root / kind / "config.json"
        config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **PUBLISHED_DROPOUTS.get(kind, {})}))
        dirs[kind] = root / kind
    return dirs


def texts(n: int, words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=words)) for _ in range(n)]


def build(backbones, kind: str, path: str, length: int, separate_encoder: bool = False) -> TransformerVAE:
    torch.manual_seed(0)
    return TransformerVAE(
        VAEConfig(
            path=path,
            decoder=str(backbones[kind]),
            decoder_kind=kind,
            conditional=kind == "seq2seq",
            latent_size=8,
            max_source_tokens=length,
            max_target_tokens=length,
            encoder=str(backbones["encoder"]) if separate_encoder else None,
        )
    )


def records(model: TransformerVAE, rows: int, words: int) -> list[dict]:
    if model.config.conditional:
        return [{"source": s, "target": t} for s, t in zip(texts(rows, words, 1), texts(rows, words, 2), strict=True)]
    return [{"text": t} for t in texts(rows, words)]


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def stacks(model: TransformerVAE):
    decoder = stacks_of(model.decoder.model.config)
    encoder = (stacks_of(model.separate_encoder.model.config) if model.separate_encoder is not None else decoder)[
        "encoder"
    ]
    return decoder, encoder


@pytest.mark.parametrize(
    "kind,path,rows,words",
    [
        ("causal", "none", 4, 60),
        ("causal", "della", 4, 60),
        ("causal", "della", 8, 120),
        ("causal", "embedding", 4, 60),
        ("causal", "memory", 4, 60),
        ("causal", "softmax", 4, 60),
        ("causal", "optimus", 4, 60),
        ("seq2seq", "none", 4, 60),
        ("seq2seq", "della", 4, 60),
        ("seq2seq", "memory", 2, 120),
    ],
)
def test_training_step_estimate(backbones, kind, path, rows, words):
    model = build(backbones, kind, path, words + 8, separate_encoder=path == "optimus").train()
    batch = model.collator(records(model, rows, words))
    optimizer = torch.optim.AdamW(model.parameters())

    def two_steps():
        for _ in range(2):
            model.loss(batch, 1.0, 0.0, "sum")["loss"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

    measured = measure_peak_bytes(two_steps, "cpu") + 4 * n_params(model)  # the weights were there before
    estimate = model_training_peak(model, batch, MATERIALISED)
    assert estimate.components["weights"] == 4 * n_params(model)
    assert within(estimate.total, measured), (estimate.components, measured)
    # without the score matrices the estimate is lower: the fused kernels' saving
    assert model_training_peak(model, batch, FUSED).total < estimate.total


@pytest.mark.parametrize("kind,path", [("causal", "della"), ("causal", "none"), ("seq2seq", "della")])
def test_scoring_call_estimate(backbones, kind, path):
    model = build(backbones, kind, path, 128).eval()
    batch = model.collator(records(model, 4, 120))
    k = 6
    z = torch.randn(4, k, max(model.n_groups, 1) * model.latent_size) if model.n_groups else torch.zeros(4, k, 0)

    def score():
        with torch.no_grad():
            model.log_likelihood(batch, z)

    measured = measure_peak_bytes(score, "cpu") + 4 * n_params(model)
    decoder, _ = stacks(model)
    source = batch["src_ids"].shape[1] if "src_ids" in batch else 0
    # no dropout without gradients: the CPU's scaled_dot_product_attention runs its fused kernel
    estimate = scoring_peak(
        n_params(model),
        decoder["decoder"],
        model.decoder.model.config.vocab_size,
        4 * k,
        batch["dec_ids"].shape[1],
        FUSED,
        source_tokens=source,
    )
    assert within(estimate.total, measured), (estimate.components, measured)


@pytest.mark.parametrize("kind,strategy,beams", [("causal", GREEDY, 1), ("causal", BEAM, 4), ("seq2seq", BEAM, 4)])
def test_generation_call_estimate(backbones, kind, strategy, beams):
    model = build(backbones, kind, "della", 100).eval()
    rows, new_tokens, new_tokens_floor = 3, 80, 20
    sources = texts(rows, 90, 3) if model.config.conditional else [None] * rows
    decoding = {
        "strategy": strategy,
        "num_beams": beams,
        "max_new_tokens": new_tokens,
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 1.0,
        "length_penalty": 1.0,
        "repetition_penalty": 1.0,
    }
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(rows, model.n_groups, model.latent_size)
    outputs = []
    measured = measure_peak_bytes(lambda: outputs.extend(model.decode_tokens(z, sources, decoding, generator)), "cpu")
    measured += 4 * n_params(model)
    new_tokens = max(map(len, outputs))  # the steps generate() ran: a row may end at </s> before the limit
    assert new_tokens > new_tokens_floor
    decoder_stacks, _ = stacks(model)
    inputs = model.generation_inputs(z, sources)
    prompt = inputs["input_ids"].shape[1] if kind == "causal" else 1
    source = model._source_batch(sources)["src_ids"].shape[1] if model.config.conditional else 0
    estimate = generation_peak(
        n_params(model),
        decoder_stacks["decoder"],
        model.decoder.model.config.vocab_size,
        rows,
        beams,
        prompt,
        new_tokens,
        FUSED,
        source=decoder_stacks.get("encoder") if source else None,
        source_tokens=source,
    )
    assert within(estimate.total, measured), (estimate.components, measured)


def test_feature_pass_estimate(backbones):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(backbones["causal"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(backbones["causal"])
    tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(texts(8, 200), return_tensors="pt", padding=True, truncation=True, max_length=256)

    def forward():
        with torch.no_grad():
            model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    params = n_params(model)
    measured = measure_peak_bytes(forward, "cpu") + 4 * params
    # with an attention mask, the CPU's attention materialises the scores (a GPU's fused kernel does not)
    estimate = feature_peak(params, stacks_of(model.config)["decoder"], 8, batch["input_ids"].shape[1], MATERIALISED)
    assert within(estimate.total, measured), (estimate.components, measured)


def test_measured_peak_counts_what_is_held_at_once():
    """The profiler replay: two 4 MB tensors alive together peak at 8 MB; one freed before the
    next is allocated peaks at 4 MB (the allocator may reuse it)."""
    n = 1024 * 1024

    def together():
        a = torch.ones(n)
        b = torch.ones(n)
        return a.sum() + b.sum()

    def in_turn():
        for _ in range(2):
            torch.ones(n).sum()

    assert measure_peak_bytes(together, "cpu") >= 8 * n
    assert 4 * n <= measure_peak_bytes(in_turn, "cpu") < 8 * n


# ------------------------------------------------------------------ the paper config's table

PAPER = overlays.load("config/paper.yaml")


def test_the_docs_table_is_the_paper_configs():
    """docs/cluster.md shows what `della-bench gpu-memory --configfile config/paper.yaml` prints."""
    docs = (ROOT / "docs" / "cluster.md").read_text()
    assert markdown_table(PAPER) in docs


def test_estimates_grow_with_what_they_hold():
    yelp, wp = run_peaks(PAPER, "yelp", "della"), run_peaks(PAPER, "writingprompts", "della")
    assert wp["train"].total > yelp["train"].total  # 1,024 tokens against 258
    eager = run_peaks(PAPER, "writingprompts", "della", MATERIALISED)
    assert eager["train"].components["activations"] > 2 * wp["train"].components["activations"]  # the T^2 scores
    finetune = run_peaks(PAPER, "writingprompts", "finetune")
    assert finetune["train"].components["activations"] < wp["train"].components["activations"]  # no encoder pass
    medium = run_peaks(PAPER, "yelp", "della_medium")
    assert medium["train"].components["weights"] == 4 * round(
        (1 + LATENT_PARAMETER_SHARE) * PUBLISHED["gpt2-medium"].parameters
    )
    assert run_peaks(PAPER, "yelp", "finetune")["train"].components["weights"] == 4 * PUBLISHED["gpt2"].parameters
    # beam search holds 10 beams' caches; sampling one
    assert run_peaks(PAPER, "yelp", "della")["generate"].components["cache"] == pytest.approx(
        10 * run_peaks(PAPER, "yelp", "memory")["generate"].components["cache"]
    )
    # with the budgets cutting scoring to one row, training is what WritingPrompts cannot do without
    stage, need = run_need(PAPER, "writingprompts", "della")
    assert stage == "train" and need.total == wp["train"].total < wp["evaluate"].total


def test_each_run_gets_the_smallest_card_it_fits():
    cards = {"small": 24, "big": 48}
    config = {**PAPER, "cluster": {**PAPER["cluster"], "gpu_models": cards}}
    for dataset, model in table_runs(config):
        _, job = run_need(config, dataset, model)
        chosen = gpu_model_for(config, dataset, model)
        assert cards[chosen] >= needed_gib(job)
        assert chosen == "big" or needed_gib(job) <= cards["small"]
        assert chosen == "small" or needed_gib(job) > cards["small"]
    assert {gpu_model_for(config, *run) for run in table_runs(config)} == set(cards)
    with pytest.raises(
        GpuTooSmall,
        match=r"datasets.writingprompts \(model \w+\): its train jobs need about \d+ GB"
        r".*lower training.batch_size",
    ):
        gpu_model_for({**config, "cluster": {"gpu_models": {"small": 24}}}, "writingprompts", "della")
    assert gpu_model_for({**PAPER, "cluster": {"gpu_model": "a100"}}, "yelp", "della") == "a100"
    assert smallest_card(23.5) == 24 and smallest_card(500) is None


def test_out_of_memory_names_the_setting_to_lower():
    try:
        torch.empty(2**50, dtype=torch.uint8)  # a real allocation failure: a petabyte
    except RuntimeError as error:
        message = out_of_memory_message("evaluate", error)
    assert "can't allocate memory" in message and "evaluation.token_budget" in message
    cuda = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    assert "training.batch_size" in out_of_memory_message("train", cuda)
    assert "generation.token_budget" in out_of_memory_message("generate", cuda)
    assert out_of_memory_message("train", RuntimeError("shape mismatch")) is None
    assert out_of_memory_message("tidy", cuda) is None
