"""Decoding by transformers' `generate()` (della/decoding.py) against the hand-written decoder it
replaces (the reference): identical tokens for greedy decoding and beam search on every latent
path, causal (GPT-2) and seq2seq (BART), and the same next-token distribution for sampling,
compared step by step given the same prefix."""

from __future__ import annotations

import pytest
import torch

from conftest import tiny_corpus
from della.decoding import LatentConditionedLM, generation_config, sampling_seeded_by
from della.vae import (
    BEAM,
    DecodingState,
    TransformerVAE,
    VAEConfig,
    beam_search,
    penalise_repetitions,
    sample,
    sampling_logits,
)

ROWS, NEW_TOKENS = 4, 10

# (latent path, decoder kind, conditional, separate BERT encoder, path settings)
CASES = [
    ("none", "causal", False, False, {}),
    ("embedding", "causal", False, False, {}),
    ("memory", "causal", False, False, {}),
    ("softmax", "causal", False, False, {}),
    ("optimus", "causal", False, True, {}),
    ("della", "causal", False, False, {}),
    ("della", "causal", False, False, {"fusion": "memory"}),  # Table 4's w/o tensor product
    ("della", "causal", True, False, {}),  # conditional GPT-2: left-padded prompts
    ("memory", "causal", True, False, {}),
    ("none", "seq2seq", True, False, {}),
    ("embedding", "seq2seq", True, False, {}),
    ("memory", "seq2seq", True, False, {}),
    ("softmax", "seq2seq", True, False, {}),
    ("della", "seq2seq", True, False, {}),
]
PADDED_PROMPTS, SEQ2SEQ_MEMORY = CASES[7], CASES[11]

GREEDY = {"strategy": "greedy", "max_new_tokens": NEW_TOKENS}
BEAMS = {"strategy": "beam", "num_beams": 3, "length_penalty": 1.0, "max_new_tokens": NEW_TOKENS}
SAMPLING = {
    "temperature": {"strategy": "sample", "temperature": 1.5, "top_k": 0, "top_p": 1.0, "max_new_tokens": NEW_TOKENS},
    "top_k": {"strategy": "sample", "temperature": 1.0, "top_k": 5, "top_p": 1.0, "max_new_tokens": NEW_TOKENS},
    "top_p": {"strategy": "sample", "temperature": 1.0, "top_k": 0, "top_p": 0.8, "max_new_tokens": NEW_TOKENS},
    "all": {"strategy": "sample", "temperature": 0.7, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.3,
            "max_new_tokens": NEW_TOKENS},
}
# Weights drawn with this spread, and </s> made likelier by this much per generated token: at the
# backbones' own initialisation (std 0.02) every row and every z decode to the same repeated
# token and no sentence ends, so an error in how z, the cache or a finished beam is handled
# would go unseen. Here rows differ and end after 4 to 8 tokens.
WEIGHT_STD, EOS_PER_TOKEN = 0.15, 1.0


def case_id(case) -> str:
    path, kind, conditional, separate, settings = case
    return "-".join([path, kind, "conditional" if conditional else "unconditional"] + ["bert"] * separate
                    + [f"{k}={v}" for k, v in settings.items()])


def decisive_setup(dirs, path, kind, conditional, separate_encoder, settings):
    """A tiny model whose outputs depend on z and the source and whose sentences end, with a
    latent from the prior and a source (or None) for each of ROWS rows."""
    torch.manual_seed(0)
    config = VAEConfig(path=path, decoder=str(dirs[kind]), decoder_kind=kind, conditional=conditional, latent_size=8,
                       encoder=str(dirs["encoder"]) if separate_encoder else None, path_settings=settings)
    model = TransformerVAE(config).eval()
    weights = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, WEIGHT_STD, generator=weights)
    sources = [r.get("source") for r in tiny_corpus(ROWS, seed=5, conditional=conditional)]
    z = None
    if model.n_groups:
        condition = model._condition(model._source_batch(sources)) if conditional else None
        z = model.chain(ROWS, None, condition, generator=torch.Generator().manual_seed(7)).z
    favour_ending_with_length(model, sources)
    return model, z, sources


def favour_ending_with_length(model: TransformerVAE, sources: list[str | None]) -> None:
    """Add EOS_PER_TOKEN * (tokens generated so far) to the </s> logit, as a trained LM's end
    grows likelier with length. The decoder's step records the positions each call computes
    logits for; generated tokens start after the prompt's last position (rows in the order
    both decoders keep them: each source's row, or its beams, one after another)."""
    prompt_end = model.generation_inputs(None, sources)["attention_mask"].sum(-1) - 1
    decoder = model.decoder
    step, logits = decoder.step, decoder.logits
    last_call = {}

    def step_recording_positions(embeds, attention_mask, position_ids, cache, source=None):
        last_call["positions"] = position_ids
        return step(embeds, attention_mask, position_ids, cache, source)

    def logits_favouring_the_end(hidden):
        scores = logits(hidden)
        positions = last_call["positions"][:, -hidden.shape[1]:]
        row_prompt_end = prompt_end.repeat_interleave(scores.shape[0] // len(sources))[:, None]
        scores[..., model.eos] += EOS_PER_TOKEN * (positions - row_prompt_end).clamp(min=0)
        return scores

    decoder.step, decoder.logits = step_recording_positions, logits_favouring_the_end


def through_transformers(model, z, sources, decoding, **outputs):
    """transformers' generate() on the model (the code under test)."""
    inputs = model.generation_inputs(z, sources)
    config = generation_config(decoding, model.bos, model.eos, model.pad)
    for name, value in outputs.items():
        setattr(config, name, value)
    with torch.no_grad(), sampling_seeded_by(torch.Generator().manual_seed(11)):
        result = LatentConditionedLM(model).generate(**inputs, generation_config=config)
    return result, inputs["input_ids"].shape[1]


def reference_state(model, z, sources, beams: int = 1) -> DecodingState:
    """The reference decoder's state for the same prompts, latents and source (each row `beams` times)."""
    inputs = model.generation_inputs(z, sources)
    source = None
    if "source_states" in inputs:
        source = (inputs["source_states"].repeat_interleave(beams, 0), inputs["source_mask"].repeat_interleave(beams, 0))
    return DecodingState(model, model._repeat(z, beams), source, inputs["input_ids"].repeat_interleave(beams, 0),
                         inputs["attention_mask"].repeat_interleave(beams, 0))


def up_to_eos(tokens: list[int], eos: int) -> list[int]:
    """A generated row up to and including its first </s> (the padding after it dropped)."""
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def assert_same_tokens(model, z, sources, decoding) -> list[list[int]]:
    sequences, prompt_width = through_transformers(model, z, sources, decoding)
    ours = [up_to_eos(row, model.eos) for row in sequences[:, prompt_width:].tolist()]
    beams = decoding["num_beams"] if decoding["strategy"] == BEAM else 1
    with torch.no_grad():
        state = reference_state(model, z, sources, beams)
        if beams > 1:
            reference = beam_search(state, len(sources), beams, decoding, model.eos)
        else:
            reference = sample(state, decoding, None, model.eos, model.pad)
    assert ours == [up_to_eos(row, model.eos) for row in reference]
    return ours


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("decoding", [GREEDY, BEAMS], ids=["greedy", "beam"])
def test_transformers_decodes_the_reference_tokens(tiny_backbones, case, decoding):
    model, z, sources = decisive_setup(tiny_backbones, *case)
    tokens = assert_same_tokens(model, z, sources, decoding)
    # the comparison is only worth something if rows differ (rows without z or source share one
    # prompt) and sentences end
    if model.n_groups or model.config.conditional:
        assert len({tuple(row) for row in tokens}) > 1, "every row decoded the same: z (or the source) has no effect"
    assert any(row[-1] == model.eos for row in tokens), "no sentence ended: the stopping rules went untested"


PENALISED = {
    "greedy-repetition": {**GREEDY, "repetition_penalty": 2.0},
    "beam-repetition": {**BEAMS, "repetition_penalty": 2.0},
    "beam-length": {**BEAMS, "length_penalty": 0.0},  # sum of log-probabilities: shorter wins
}


@pytest.mark.parametrize("case", [PADDED_PROMPTS, SEQ2SEQ_MEMORY], ids=case_id)
@pytest.mark.parametrize("penalised", PENALISED)
def test_penalties_decode_the_reference_tokens(tiny_backbones, case, penalised):
    model, z, sources = decisive_setup(tiny_backbones, *case)
    decoding = PENALISED[penalised]
    plain = assert_same_tokens(model, z, sources, GREEDY if decoding["strategy"] == "greedy" else BEAMS)
    assert assert_same_tokens(model, z, sources, decoding) != plain, "the penalty changed nothing: untested"


def assert_same_sampling_distributions(model, z, sources, decoding) -> None:
    """At every step, given the prefix transformers sampled, the probabilities it sampled the
    next token from equal the reference's (repetition penalty, temperature, top-k, top-p)."""
    result, prompt_width = through_transformers(model, z, sources, decoding, output_scores=True,
                                                return_dict_in_generate=True)
    generated = result.sequences[:, prompt_width:]
    state = reference_state(model, z, sources)
    running = torch.ones(len(sources), dtype=torch.bool)
    with torch.no_grad():
        for step, scores in enumerate(result.scores):
            reference = sampling_logits(penalise_repetitions(state.next_logits(), state, decoding), decoding)
            torch.testing.assert_close(scores[running].softmax(-1), reference[running].softmax(-1), atol=1e-5, rtol=0)
            running &= generated[:, step] != model.eos  # a finished row's later steps are padding
            state.advance(generated[:, step])
    assert len(result.scores) > 1


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_sampling_draws_from_the_reference_distribution(tiny_backbones, case):
    model, z, sources = decisive_setup(tiny_backbones, *case)
    assert_same_sampling_distributions(model, z, sources, SAMPLING["all"])


@pytest.mark.parametrize("decoding", ["temperature", "top_k", "top_p"])
@pytest.mark.parametrize("case", [CASES[5], PADDED_PROMPTS, SEQ2SEQ_MEMORY], ids=case_id)
def test_each_sampling_setting_matches_the_reference(tiny_backbones, case, decoding):
    model, z, sources = decisive_setup(tiny_backbones, *case)
    assert_same_sampling_distributions(model, z, sources, SAMPLING[decoding])


def test_sampling_follows_the_generator_and_leaves_the_global_stream_alone(tiny_backbones):
    model, z, sources = decisive_setup(tiny_backbones, *CASES[5])
    inputs, config = model.generation_inputs(z, sources), generation_config(SAMPLING["temperature"], model.bos, model.eos, model.pad)

    def draw(seed: int) -> list[list[int]]:
        with torch.no_grad(), sampling_seeded_by(torch.Generator().manual_seed(seed)):
            return LatentConditionedLM(model).generate(**inputs, generation_config=config).tolist()

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    assert draw(1) == draw(1) and draw(1) != draw(2)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_an_unknown_strategy_is_an_error():
    with pytest.raises(ValueError, match="decoding.strategy must be one of .*'nucleus'"):
        generation_config({"strategy": "nucleus", "max_new_tokens": 4}, 1, 2, 0)
