"""How much memory a forward pass takes per token, and the token budget that bounds it.

The forward-heavy estimators (IW-PPL, ELBO: `iw_samples` decoder passes per sentence) score
`batch_size x iw_chunk` sequences at a time. Unbounded, their logits alone are
rows x length x vocabulary floats: 320 x 1,026 x 50,257 x 4 B = 66 GB for WritingPrompts. So the
rows of each scoring call are capped by a token budget (rows x padded length; see
`metrics.representation.scored_log_likelihood`): the peak then depends on the budget, not on the
dataset's length. `evaluation.token_budget: auto` derives the budget from the device's free
memory and `scoring_bytes_per_token`; an integer fixes it. The budget changes how the work is
cut, not the numbers.

Beam search (beam 10 at up to 1,024 tokens) is bounded the same way: `generation.token_budget`
caps rows x beams x (prompt + max_new_tokens) of each generate() call (della/models/vae.py,
`decode_tokens`); sampling is not cut (its random stream is per batch: cutting would change the
samples), its memory is batch x length, one beam per row.
"""

from __future__ import annotations

import os

import torch

GIB = 1024**3

AUTO = "auto"
# Of the memory free after the model is loaded, the share the scoring calls may fill: the rest
# is for the allocator's fragmentation, the batches, the encoder pass and the latents.
FREE_MEMORY_SHARE = 0.5


def scoring_bytes_per_token(vocab: int, layers: int, hidden: int, element_bytes: int = 4) -> int:
    """Peak bytes one scored token holds in a no-grad decoder pass, at the logits (the peak
    phase whenever the vocabulary is some 10 x the width, as GPT-2's and BART's are): its logits
    and the log-softmax cross-entropy computes from them (2 x vocab), its key and value in every
    layer's cache (2 x layers x hidden; the decoder step keeps a cache for the Memory/Optimus
    prefix), and the embedded input, residual stream, final states and LayerNorm output still
    alive (about 6 x hidden). Measured against real scoring calls in tests/test_gpu_memory.py;
    BART's cross-attention cache of the source comes on top (della/cluster/gpu_memory.py)."""
    return element_bytes * (2 * vocab + 2 * layers * hidden + 6 * hidden)


def generation_bytes_per_token(layers: int, hidden: int, element_bytes: int = 4) -> int:
    """Bytes one token of one beam holds while decoding: its key and value in every layer's cache
    (2 x layers x hidden) and the copy a growing cache makes of one layer's keys or values (hidden).
    A step's working activations and logits are of the new token only (della/cluster/gpu_memory.py adds
    them: for GPT-2 a row's 3 x vocab floats, under 4 % of a 256-token row's cache)."""
    return element_bytes * (2 * layers + 1) * hidden


def free_memory(device: torch.device) -> int:
    """Bytes free on `device` now: the GPU's (cudaMemGetInfo), else the host's available RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def model_bytes_per_token(model, stage: str = "scoring") -> int:
    """Bytes per token of a TransformerVAE's decoder at its parameters' precision, for `stage`:
    `scoring` (`scoring_bytes_per_token`) or `generation` (`generation_bytes_per_token`)."""
    decoder = model.decoder
    element_bytes = next(model.parameters()).element_size()
    if stage == "generation":
        return generation_bytes_per_token(decoder.n_layers, decoder.hidden_size, element_bytes)
    return scoring_bytes_per_token(
        decoder.model.config.vocab_size, decoder.n_layers, decoder.hidden_size, element_bytes
    )


def resolve_token_budget(setting: int | str | None, model, stage: str = "scoring") -> int | None:
    """`evaluation.token_budget` (stage `scoring`) or `generation.token_budget` (`generation`) as
    a number of tokens: an integer as is, `auto` from the free memory of the model's device,
    None (no cap) as is."""
    section = "generation" if stage == "generation" else "evaluation"
    if setting is None or (isinstance(setting, int) and setting >= 1):
        return setting
    if setting != AUTO:
        raise ValueError(f"{section}.token_budget must be a positive integer, {AUTO!r} or null, got {setting!r}")
    return max(1, int(free_memory(model.device) * FREE_MEMORY_SHARE) // model_bytes_per_token(model, stage))
