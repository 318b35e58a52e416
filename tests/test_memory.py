"""The token budget of the forward-heavy estimators (della/run/memory.py, metrics/representation.py):
every scoring call stays within it, and it changes how the work is cut, not the numbers."""

from __future__ import annotations

import pytest
import torch

from della.models.vae import TransformerVAE, VAEConfig
from della.run.batches import batches
from della.run.memory import AUTO, FREE_MEMORY_SHARE, free_memory, model_bytes_per_token, resolve_token_budget
from metrics.representation import batch_width, representation_metrics

from conftest import tiny_corpus

SETTINGS = {"iw_samples": 6, "iw_chunk": 4, "mi_samples": 2}


def tiny_model(tiny_backbones, kind: str, path: str = "della") -> TransformerVAE:
    torch.manual_seed(0)
    return TransformerVAE(
        VAEConfig(
            path=path,
            decoder=str(tiny_backbones[kind]),
            decoder_kind=kind,
            conditional=kind == "seq2seq",
            latent_size=4,
        )
    ).eval()


def eval_batches(model) -> list[dict]:
    return list(batches(tiny_corpus(10, conditional=model.config.conditional), model.collator, 4))


class CallLog:
    """Records rows x width of each log_likelihood call of a model (the real method runs)."""

    def __init__(self, model):
        self.calls, self.original = [], model.log_likelihood
        model.log_likelihood = self

    def __call__(self, batch, z):
        self.calls.append((z.shape[0] * z.shape[1], batch_width(batch)))
        return self.original(batch, z)


@pytest.mark.parametrize(
    "kind,path", [("causal", "della"), ("seq2seq", "della"), ("causal", "memory"), ("causal", "none")]
)
def test_a_token_budget_changes_no_number(tiny_backbones, kind, path):
    """A budget that holds batch x iw_chunk rows (the sample scale's `auto` on any machine with
    a few GB free) makes the same calls as before: the same numbers to the last digit. A budget
    that cuts the rows gives each row the same computation on fewer rows; the numbers agree to
    float32 rounding (a matrix product over fewer rows may take another BLAS kernel: the Memory
    path's prefix projection differs in the 9th digit), far below any difference the tables show."""
    model = tiny_model(tiny_backbones, kind, path)
    data = eval_batches(model)
    width = max(batch_width(b) for b in data)

    def values(budget):
        return {k: v.value for k, v in representation_metrics(model, data, SETTINGS, budget).items()}

    unbounded = values(None)
    assert values(4 * SETTINGS["iw_chunk"] * width) == unbounded
    for budget in (1, width, 3 * width, 5 * width + 1):
        assert values(budget) == pytest.approx(unbounded, rel=1e-7), budget


@pytest.mark.parametrize("budget_rows", [1, 3, 5])
def test_every_scoring_call_stays_within_the_budget(tiny_backbones, budget_rows):
    model = tiny_model(tiny_backbones, "causal")
    data = eval_batches(model)
    width = max(batch_width(b) for b in data)
    log = CallLog(model)
    representation_metrics(model, data, SETTINGS, token_budget=budget_rows * width)
    assert all(rows * w <= budget_rows * width for rows, w in log.calls), log.calls
    scored = sum(rows for rows, _ in log.calls)
    assert scored == sum(b["dec_ids"].shape[0] for b in data) * SETTINGS["iw_samples"]  # every (x, z) once
    unbounded = CallLog(tiny_model(tiny_backbones, "causal"))
    representation_metrics(unbounded.original.__self__, data, SETTINGS, token_budget=None)
    assert max(rows for rows, _ in unbounded.calls) == 4 * SETTINGS["iw_chunk"]  # batch x iw_chunk, as before


def test_auto_budget_fits_the_free_memory(tiny_backbones):
    model = tiny_model(tiny_backbones, "causal")
    budget = resolve_token_budget(AUTO, model)
    per_token = model_bytes_per_token(model)
    assert per_token == 4 * (2 * model.decoder.model.config.vocab_size + 2 * 2 * 32 + 6 * 32)
    assert 0 < budget * per_token <= free_memory(model.device) * FREE_MEMORY_SHARE * 1.05  # free memory moves
    assert resolve_token_budget(12345, model) == 12345 and resolve_token_budget(None, model) is None
    with pytest.raises(ValueError, match="evaluation.token_budget must be"):
        resolve_token_budget("lots", model)


@pytest.mark.parametrize("kind", ["causal", "seq2seq"])
@pytest.mark.parametrize("strategy", ["beam", "greedy", "sample"])
def test_a_generation_budget_changes_no_output(tiny_backbones, kind, strategy):
    """Greedy and beam search are cut into generate() calls of at most the budget (here one row
    per call) with the same outputs; sampling is never cut, so its samples stay the batch's."""
    model = tiny_model(tiny_backbones, kind)
    decoding = {
        "strategy": strategy,
        "num_beams": 3,
        "length_penalty": 1.0,
        "temperature": 1.0,
        "top_k": 5,
        "max_new_tokens": 8,
    }
    sources = [r["source"] for r in tiny_corpus(5, conditional=True)] if kind == "seq2seq" else [None] * 5
    calls = []
    model.generation_inputs = lambda z, s, original=model.generation_inputs: calls.append(len(s)) or original(z, s)

    def outputs(budget):
        return model.generate(sources, decoding, torch.Generator().manual_seed(0), token_budget=budget)

    unbounded = outputs(None)
    assert calls == [5]
    prompt = max(len(model.collator.prompt(s)) for s in sources)
    one_row = (3 if strategy == "beam" else 1) * (prompt + 8)
    assert outputs(one_row) == unbounded
    assert calls[1:] == ([5] if strategy == "sample" else [1] * 5)
