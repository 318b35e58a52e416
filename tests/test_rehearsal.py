"""The paper config's longest-input jobs at the real sizes (config/rehearsal.yaml over
config/paper.yaml): a WritingPrompts and a CNN/DailyMail DELLA run, each one training step on
real-size random-init GPT-2 / BART-base, two samples by beam search (beam 10), and every metric
on the longest test text: IW-PPL with 30 samples at 1,024 positions, MAUVE features from a
real-size gpt2-large, BERTScore from a real-size roberta-large. What crashed the paper scale's
first batch before (1,026 positions into 1,024) runs here, through Snakemake.

The samples stop at 8 new tokens instead of the paper's 256 (an overlay of this test): the
inputs, not the outputs, reach the position limit, and the full rehearsal
(results/rehearsal/RUN.md) decodes the 256; this keeps the test suite within CI's 25 minutes
(beam search over 10 beams at 1,024 positions was about a third of this test's time at 32 tokens)."""

from __future__ import annotations

import json

import pytest
import yaml

from della.pipeline import overlays

from helpers import ROOT
from helpers.workflow import snakemake

RUNS = {"writingprompts": "della", "cnn_dailymail": "della"}
SAMPLE_TOKENS = 8
PAPER = overlays.load("config/paper.yaml")


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("rehearsal")
    targets = [f"runs/{dataset}/{model}/seed0/metrics.json" for dataset, model in RUNS.items()]
    targets += [f"data/{dataset}/lengths.json" for dataset in RUNS]
    shorter = workdir / "shorter-samples.yaml"
    shorter.write_text(yaml.safe_dump({"generation": {"decoding": {"max_new_tokens": SAMPLE_TOKENS}}}))
    configs = [ROOT / "config" / "paper.yaml", ROOT / "config" / "rehearsal.yaml", shorter]
    result = snakemake(workdir, configs, targets=targets)
    logs = "\n".join(
        f"--- {p}\n{p.read_text()[-1500:]}"
        for p in sorted((workdir / "logs").rglob("*.log"))
        if "rror" in p.read_text()
    )
    assert result.returncode == 0, f"{result.stderr[-3000:]}\n{logs}"
    return workdir


def test_the_longest_inputs_fill_the_models_positions_exactly(rehearsal, monkeypatch):
    """The longest test text of each dataset is longer than its limits (counted in lengths.json),
    and the trained model's collator turns it into a sequence of exactly 1,024 positions, the
    most GPT-2 and BART take."""
    from della.models.vae import TransformerVAE
    from della.run.batches import load_records

    monkeypatch.chdir(rehearsal)  # the model names its backbone relative to the work directory
    for dataset, model_name in RUNS.items():
        limits = PAPER["datasets"][dataset]
        lengths = json.loads((rehearsal / "data" / dataset / "lengths.json").read_text())
        test = lengths["splits"]["test"]
        assert test["longest_source"] > limits["max_source_tokens"] and test["sources_cut"] >= 1, lengths
        model = TransformerVAE.load(rehearsal / "runs" / dataset / model_name / "seed0" / "model")
        assert model.decoder.max_positions == 1024 and model.decoder.model.config.vocab_size >= 50257
        longest = load_records(rehearsal / "data" / dataset / "test.jsonl", limit=1)
        batch = model.collator(longest)
        widest = batch["src_ids"] if dataset == "cnn_dailymail" else batch["dec_ids"]
        assert widest.shape[1] == 1024, {name: tuple(t.shape) for name, t in batch.items()}


def test_every_metric_at_the_paper_settings(rehearsal):
    for dataset, model in RUNS.items():
        run = rehearsal / "runs" / dataset / model / "seed0"
        metrics = json.loads((run / "metrics.json").read_text())["metrics"]
        assert metrics["PPL"]["settings"]["iw_samples"] == 30 and metrics["PPL"]["settings"]["n_examples"] == 1
        assert metrics["MAUVE"]["settings"]["feature_model"].endswith("gpt2_large")
        assert {"BLEU", "CND", "MAUVE", "Self-BLEU", "Dist", "JS", "ROUGE-L", "BERTScore", "KL", "MI", "AU"} <= set(
            metrics
        )
        settings = json.loads((run / "samples.settings.json").read_text())["generation"]
        assert settings["decoding"]["strategy"] == "beam" and settings["decoding"]["num_beams"] == 10
        assert settings["decoding"]["max_new_tokens"] == SAMPLE_TOKENS
        samples = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
        # random-init weights: beam search may well pick end-of-text first (an empty sample)
        assert len(samples) == 2 and all(isinstance(s["generated"], str) for s in samples)
        done = json.loads((run / "train_done.json").read_text())
        assert done["steps"] == 1 and not (run / "checkpoints").exists()  # paper.yaml: keep_checkpoints false
