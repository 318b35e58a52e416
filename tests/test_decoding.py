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
# Weights drawn with this spread, and </s> favoured by this much in the LM head: at the
# backbones' own initialisation (std 0.02) every row and every z decode to the same repeated
# token and no beam ever finishes, so an error in how z, the cache or a finished beam is
# handled would go unseen.
WEIGHT_STD, EOS_BOOST = 0.3, 3.0


def case_id(case) -> str:
    path, kind, conditional, separate, settings = case
    return "-".join([path, kind, "conditional" if conditional else "unconditional"] + ["bert"] * separate
                    + [f"{k}={v}" for k, v in settings.items()])


def decisive_model(dirs, path, kind, conditional, separate_encoder, settings) -> TransformerVAE:
    """A tiny model whose outputs depend on z and the source, and whose sentences end."""
    torch.manual_seed(0)
    config = VAEConfig(path=path, decoder=str(dirs[kind]), decoder_kind=kind, conditional=conditional, latent_size=8,
                       encoder=str(dirs["encoder"]) if separate_encoder else None, path_settings=settings)
    model = TransformerVAE(config).eval()
    weights = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.normal_(0.0, WEIGHT_STD, generator=weights)
    eos_bias = torch.zeros(model.decoder.model.config.vocab_size)
    eos_bias[model.eos] = EOS_BOOST
    model.decoder.model.lm_head.register_forward_hook(lambda module, inputs, logits: logits + eos_bias)
    return model


def latents_and_sources(model: TransformerVAE):
    sources = [r.get("source") for r in tiny_corpus(ROWS, seed=5, conditional=model.config.conditional)]
    if not model.n_groups:
        return None, sources
    condition = model._condition(model._source_batch(sources)) if model.config.conditional else None
    return model.chain(ROWS, None, condition, generator=torch.Generator().manual_seed(7)).z, sources


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
    model = decisive_model(tiny_backbones, *case)
    z, sources = latents_and_sources(model)
    tokens = assert_same_tokens(model, z, sources, decoding)
    # the comparison is only worth something if rows differ and sentences end
    if model.n_groups or model.config.conditional:
        assert len({tuple(row) for row in tokens}) > 1, "every row decoded the same: z (or the source) has no effect"
    if decoding is BEAMS:
        assert any(row[-1] == model.eos for row in tokens), "no beam finished: the stopping rules went untested"


@pytest.mark.parametrize("case", [PADDED_PROMPTS, SEQ2SEQ_MEMORY], ids=case_id)
@pytest.mark.parametrize("decoding", [GREEDY, BEAMS], ids=["greedy", "beam"])
def test_repetition_penalty_decodes_the_reference_tokens(tiny_backbones, case, decoding):
    model = decisive_model(tiny_backbones, *case)
    z, sources = latents_and_sources(model)
    plain = assert_same_tokens(model, z, sources, decoding)
    penalised = assert_same_tokens(model, z, sources, {**decoding, "repetition_penalty": 2.0})
    assert penalised != plain


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
    model = decisive_model(tiny_backbones, *case)
    z, sources = latents_and_sources(model)
    assert_same_sampling_distributions(model, z, sources, SAMPLING["all"])


@pytest.mark.parametrize("decoding", ["temperature", "top_k", "top_p"])
@pytest.mark.parametrize("case", [CASES[5], PADDED_PROMPTS, SEQ2SEQ_MEMORY], ids=case_id)
def test_each_sampling_setting_matches_the_reference(tiny_backbones, case, decoding):
    model = decisive_model(tiny_backbones, *case)
    z, sources = latents_and_sources(model)
    assert_same_sampling_distributions(model, z, sources, SAMPLING[decoding])


def test_sampling_follows_the_generator_and_leaves_the_global_stream_alone(tiny_backbones):
    model = decisive_model(tiny_backbones, *CASES[5])
    z, sources = latents_and_sources(model)
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
