"""Decoding by transformers' `generate()` (della/models/decoding.py) against the hand-written decoder it
replaced (the reference, kept at the end of this file): identical tokens for greedy decoding and
beam search on every latent path, causal (GPT-2) and seq2seq (BART), and the same next-token
distribution for sampling, compared step by step given the same prefix."""

from __future__ import annotations

import pytest
import torch

from della.models.decoding import (
    BEAM,
    NO_REPETITION_PENALTY,
    LatentConditionedLM,
    generation_config,
    sampling_seeded_by,
)
from della.models.vae import TransformerVAE, VAEConfig

from conftest import tiny_corpus

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
    "all": {
        "strategy": "sample",
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.9,
        "repetition_penalty": 1.3,
        "max_new_tokens": NEW_TOKENS,
    },
}
# Weights drawn with this spread, and </s> made likelier by this much per generated token: at the
# backbones' own initialisation (std 0.02) every row and every z decode to the same repeated
# token and no sentence ends, so an error in how z, the cache or a finished beam is handled
# would go unseen. Here rows differ and end after 4 to 8 tokens.
WEIGHT_STD, EOS_PER_TOKEN = 0.15, 1.0


def case_id(case) -> str:
    path, kind, conditional, separate, settings = case
    return "-".join(
        [path, kind, "conditional" if conditional else "unconditional"]
        + ["bert"] * separate
        + [f"{k}={v}" for k, v in settings.items()]
    )


def decisive_setup(dirs, path, kind, conditional, separate_encoder, settings):
    """A tiny model whose outputs depend on z and the source and whose sentences end, with a
    latent from the prior and a source (or None) for each of ROWS rows."""
    torch.manual_seed(0)
    config = VAEConfig(
        path=path,
        decoder=str(dirs[kind]),
        decoder_kind=kind,
        conditional=conditional,
        latent_size=8,
        encoder=str(dirs["encoder"]) if separate_encoder else None,
        path_settings=settings,
    )
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
        positions = last_call["positions"][:, -hidden.shape[1] :]
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
        source = (
            inputs["source_states"].repeat_interleave(beams, 0),
            inputs["source_mask"].repeat_interleave(beams, 0),
        )
    return DecodingState(
        model,
        model._repeat(z, beams),
        source,
        inputs["input_ids"].repeat_interleave(beams, 0),
        inputs["attention_mask"].repeat_interleave(beams, 0),
    )


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
            reference = greedy(state, decoding, model.eos, model.pad)
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
    plain = assert_same_tokens(model, z, sources, BEAMS if decoding["strategy"] == BEAM else GREEDY)
    assert assert_same_tokens(model, z, sources, decoding) != plain, "the penalty changed nothing: untested"


def assert_same_sampling_distributions(model, z, sources, decoding) -> None:
    """At every step, given the prefix transformers sampled, the probabilities it sampled the
    next token from equal the reference's (repetition penalty, temperature, top-k, top-p)."""
    result, prompt_width = through_transformers(
        model, z, sources, decoding, output_scores=True, return_dict_in_generate=True
    )
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
    inputs, config = (
        model.generation_inputs(z, sources),
        generation_config(SAMPLING["temperature"], model.bos, model.eos, model.pad),
    )

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


# --------------------------------------------------------------------------------------------
# The reference: the decoder della/models/vae.py had before decoding went through transformers, written
# after HF's BeamSearchScorer (early_stopping=False), RepetitionPenaltyLogitsProcessor and
# top-k / top-p warpers, with Python loops over rows and ranks. An implementation of its own,
# kept as what generate() and its processors are checked against.
# --------------------------------------------------------------------------------------------
class DecodingState:
    """What one generation step needs: the latent, the source, the key/value cache, the masks."""

    def __init__(self, model: TransformerVAE, z, source, prompts, prompt_mask):
        self.model, self.z, self.source = model, z, source
        self.cache, prefix = model._start(z, prompts.shape[0], prompts.device)
        self.mask = torch.cat([prefix, prompt_mask], -1)  # memory slot (if any) + tokens
        self.token_mask = prompt_mask  # tokens only: positions count these
        self.ids = prompts
        self.sequence = prompts  # every token so far (prompt included): what repetition penalises

    def next_logits(self) -> torch.Tensor:
        """Logits [N, V] of the token after the current ones."""
        positions = (self.token_mask.cumsum(-1) - 1).clamp(min=0)[:, -self.ids.shape[1] :]
        return self.model._decode(self.ids, self.mask, self.z, self.cache, self.source, positions)[:, -1]

    def advance(self, next_ids: torch.Tensor, order: torch.Tensor | None = None) -> None:
        """Append `next_ids` [N]; with `order`, row i continues the hypothesis of row order[i]."""
        if order is not None:
            self.cache.reorder_cache(order)
            self.mask, self.token_mask = self.mask[order], self.token_mask[order]
            self.z = None if self.z is None else self.z[order]
            self.source = None if self.source is None else tuple(t[order] for t in self.source)
            self.sequence = self.sequence[order]
        self.sequence = torch.cat([self.sequence, next_ids[:, None]], -1)
        ones = torch.ones(next_ids.shape[0], 1, dtype=torch.long, device=next_ids.device)
        self.mask, self.token_mask = torch.cat([self.mask, ones], -1), torch.cat([self.token_mask, ones], -1)
        self.ids = next_ids[:, None]


def greedy(state: DecodingState, decoding: dict, eos: int, pad_id: int) -> list[list[int]]:
    """Greedy decoding until every row has produced </s> or max_new_tokens."""
    n = state.ids.shape[0]
    finished = torch.zeros(n, dtype=torch.bool, device=state.ids.device)
    generated = []
    for _ in range(decoding["max_new_tokens"]):
        next_ids = penalise_repetitions(state.next_logits(), state, decoding).argmax(-1)
        next_ids = torch.where(finished, torch.full_like(next_ids, pad_id), next_ids)
        generated.append(next_ids)
        finished |= next_ids == eos
        if finished.all():
            break
        state.advance(next_ids)
    return torch.stack(generated, 1).tolist() if generated else [[] for _ in range(n)]


def beam_search(state: DecodingState, n: int, beams: int, decoding: dict, eos: int) -> list[list[int]]:
    """Beam search as in HF transformers' BeamSearchScorer (early_stopping=False).

    Each step ranks the 2k best continuations of a row's k beams; a continuation ending in </s>
    among the top k becomes a finished hypothesis scored sum log p / length ** length_penalty
    (length = generated tokens, </s> included), the others refill the k beams. A row is done
    once it has k hypotheses and its best running beam cannot beat the worst of them.
    """
    penalty = decoding["length_penalty"]
    device = state.ids.device
    scores = torch.full((n, beams), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: let only the first one expand
    scores = scores.view(-1)
    histories: list[list[int]] = [[] for _ in range(n * beams)]
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(n)]
    done = [False] * n

    def add(row: int, score: float, tokens: list[int]) -> None:
        finished[row].append((score / len(tokens) ** penalty, tokens))
        finished[row].sort(key=lambda hyp: -hyp[0])
        del finished[row][beams:]

    for step in range(decoding["max_new_tokens"]):
        # HF applies its logits processors to the log-probabilities in beam search
        logp = penalise_repetitions(state.next_logits().log_softmax(-1), state, decoding)  # [n * k, V]
        vocab = logp.shape[-1]
        top_scores, top_index = (scores[:, None] + logp).view(n, beams * vocab).topk(2 * beams, -1)
        order, next_ids, next_scores = [], [], []
        for row in range(n):
            kept = 0
            for rank in range(2 * beams):
                if done[row] or kept == beams:
                    break
                origin = row * beams + int(top_index[row, rank]) // vocab
                token, score = int(top_index[row, rank]) % vocab, float(top_scores[row, rank])
                if token == eos:
                    if rank < beams:
                        add(row, score, histories[origin] + [eos])
                    continue
                order.append(origin), next_ids.append(token), next_scores.append(score)
                kept += 1
            if done[row]:  # keep the tensor shape: dead beams, never chosen again
                order += [row * beams] * beams
                next_ids += [eos] * beams
                next_scores += [float("-inf")] * beams
            elif len(finished[row]) == beams:
                best_running = max(next_scores[-beams:]) / (step + 1) ** penalty
                done[row] = finished[row][-1][0] >= best_running
        histories = [histories[o] + [t] for o, t in zip(order, next_ids, strict=True)]
        scores = torch.tensor(next_scores, device=device)
        if all(done):
            break
        state.advance(torch.tensor(next_ids, device=device), torch.tensor(order, device=device))
    scores = scores.tolist()
    for row in range(n):  # rows cut off by max_new_tokens: their running beams compete too
        if not done[row]:
            for flat in range(row * beams, (row + 1) * beams):
                if histories[flat] and scores[flat] > float("-inf"):
                    add(row, scores[flat], histories[flat])
    return [finished[row][0][1] if finished[row] else [] for row in range(n)]


def penalise_repetitions(scores: torch.Tensor, state: DecodingState, decoding: dict) -> torch.Tensor:
    """The repetition penalty (Keskar et al. 2019): the score of every token that occurs in the
    sequence so far (prompt included, left padding not) is divided by the penalty if positive
    and multiplied by it if negative."""
    penalty = decoding.get("repetition_penalty", NO_REPETITION_PENALTY)
    if penalty == NO_REPETITION_PENALTY:
        return scores
    occurrences = scores.new_zeros(scores.shape).scatter_add(-1, state.sequence, state.token_mask.to(scores.dtype))
    return torch.where(occurrences > 0, torch.where(scores < 0, scores * penalty, scores / penalty), scores)


def sampling_logits(logits: torch.Tensor, decoding: dict) -> torch.Tensor:
    """The logits sampling draws from: scaled by the temperature, then truncated to the top k
    and to the nucleus (top p) by setting the others to -inf."""
    logits = logits / decoding["temperature"]
    top_k = decoding.get("top_k") or 0
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), -1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    top_p = decoding.get("top_p") or 1.0
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # drop a token once the mass before it already reaches top_p (the first is always kept)
        drop = (cumulative - sorted_logits.softmax(-1)) >= top_p
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits
