"""Decoding by transformers' `generate()`: a Transformer-VAE's decoder as a `GenerationMixin` model.

Beam search, sampling, the logits processors (repetition penalty, temperature, top-k, top-p) and
the stopping rules are transformers' own; this module only makes the VAE's decoder look like a
decoder-only language model p(x | z [, source]) to `generate()`, and maps the config's
`decoding` settings to a `GenerationConfig`.

The latent is a model input that `generate` carries: a tensor keyword (`latent`, [N, G, P]) that
it expands with the beams (every beam of a row shares its row's z) and passes to every forward
call, where `TransformerVAE._decode` puts it where the model's latent path says:
  - Memory, Optimus, DELLA w/o tensor product: one key/value slot per layer, computed from z at
    the first call and kept at the front of the key/value cache (which `generate` reorders
    with the beams);
  - Embedding, Optimus: added to every token's embedding;
  - DELLA: fused into the values of each latent layer (its value hooks);
  - Softmax: added to the last hidden state before the LM head.
A seq2seq (BART) decoder gets the encoded source the same way, as two more tensor keywords
(`source_states`, `source_mask`), encoded once before `generate`: to `generate` the model is
decoder-only, its prompt the decoder's start token.

Randomness: transformers samples with torch's global random stream. `sampling_seeded_by` runs
`generate` on a copy of that stream, seeded by one draw from the caller's `torch.Generator`
(seeded from the run's seed), so the sampled tokens follow from the run's seed and the caller's
global stream is left as it was.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import GenerationConfig, GenerationMixin, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

# Decoding strategies (the `decoding.strategy` setting).
GREEDY, SAMPLE, BEAM = "greedy", "sample", "beam"
STRATEGIES = (GREEDY, SAMPLE, BEAM)
# transformers' "no penalty" value of `decoding.repetition_penalty`.
NO_REPETITION_PENALTY = 1.0
# Largest seed drawn for the global random stream (torch.manual_seed takes 64-bit seeds).
MAX_SEED = 2**63 - 1


def generation_config(decoding: dict, bos: int, eos: int, pad: int) -> GenerationConfig:
    """The `GenerationConfig` of a `decoding` section (docs/interfaces.md). Fields left unset take
    transformers' global defaults, none of which selects a logits processor but `top_k` (50),
    set here; a backbone's own generation defaults (BART's forced </s>) never reach `generate`
    (`LatentConditionedLM` has an empty `generation_config` of its own)."""
    strategy = decoding["strategy"]
    common = {
        "max_new_tokens": decoding["max_new_tokens"],
        "repetition_penalty": float(decoding.get("repetition_penalty", NO_REPETITION_PENALTY)),
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
    }
    if strategy == GREEDY:
        return GenerationConfig(do_sample=False, num_beams=1, **common)
    if strategy == SAMPLE:
        return GenerationConfig(
            do_sample=True,
            num_beams=1,
            temperature=float(decoding["temperature"]),
            top_k=decoding.get("top_k") or 0,
            top_p=float(decoding.get("top_p") or 1.0),
            **common,
        )
    if strategy == BEAM:
        # early_stopping=False: a row stops once no running beam can beat its worst finished one
        return GenerationConfig(
            do_sample=False,
            num_beams=decoding["num_beams"],
            length_penalty=float(decoding["length_penalty"]),
            early_stopping=False,
            **common,
        )
    raise ValueError(f"decoding.strategy must be one of {STRATEGIES}, got {strategy!r}")


@contextlib.contextmanager
def sampling_seeded_by(generator: torch.Generator):
    """Run the body on a copy of torch's global random stream (the one transformers samples
    with), seeded by one draw from `generator`; the caller's global stream is restored after."""
    seed = int(torch.randint(MAX_SEED, (), generator=generator, device=generator.device))
    devices = [generator.device] if generator.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


class LatentConditionedLM(PreTrainedModel, GenerationMixin):
    """p(x | z [, source]) of a `TransformerVAE` as a decoder-only model `generate()` can drive.

    It owns no weights: `vae` is the model itself, registered as a submodule so that `device`
    and `dtype` are the VAE's. Build it for a call (`TransformerVAE.decode` does), not as a
    submodule of the VAE (that would be a cycle of modules).
    """

    main_input_name = "input_ids"

    def __init__(self, vae):
        # The backbone's own config stays the backbone's (attention implementation, generation
        # defaults); this one only tells `generate` the model is decoder-only, which it is for
        # BART too: the source is encoded before `generate` and travels as a tensor keyword.
        super().__init__(PreTrainedConfig(is_encoder_decoder=False, vocab_size=vae.decoder.model.config.vocab_size))
        self.vae = vae
        # A clean default: `generate` fills unset settings from here, never from the backbone's
        # own generation defaults (the `generation_config` argument sets every one that matters).
        self.generation_config = GenerationConfig(bos_token_id=vae.bos, eos_token_id=vae.eos, pad_token_id=vae.pad)

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        """`generate` must not build the cache: `forward` builds it at the first call, with the
        Memory/Optimus key/value slot in front and BART's cross-attention part (the route
        transformers keeps for models that supply their own cache)."""
        return False

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache=None,
        latent: torch.Tensor | None = None,
        source_states: torch.Tensor | None = None,
        source_mask: torch.Tensor | None = None,
        logits_to_keep: int = 0,
        **unused,
    ) -> CausalLMOutputWithPast:
        """Logits of the tokens after `input_ids` [N, T] (the last `logits_to_keep` positions;
        0: all), continuing `cache` (None: the first call, which starts one from `latent`).

        `attention_mask` covers the tokens only (prompt and generated; None: all attended) and
        `position_ids` count them (`generate` derives both from the prompt's padding); the memory
        slot, if any, is put in front of the mask here.
        """
        vae = self.vae
        rows, new_tokens = input_ids.shape
        if cache is None:
            cache, _ = vae._start(latent, rows, input_ids.device)
        if position_ids is None:
            raise ValueError("LatentConditionedLM needs the position_ids that generate() derives from the prompt")
        attended = cache.get_seq_length() + new_tokens  # memory slot + earlier tokens + these
        if attention_mask is None:
            mask = torch.ones(rows, attended, dtype=torch.long, device=input_ids.device)
        else:
            slot = torch.ones(
                rows, attended - attention_mask.shape[1], dtype=attention_mask.dtype, device=input_ids.device
            )
            mask = torch.cat([slot, attention_mask], -1)
        source = None if source_states is None else (source_states, source_mask)
        logits = vae._decode(input_ids, mask, latent, cache, source, position_ids, keep=logits_to_keep)
        return CausalLMOutputWithPast(logits=logits, cache=cache)
