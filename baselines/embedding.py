"""Embedding paradigm (Li et al. 2020a): z projected and added to every input token embedding."""

import math

import torch
from torch import nn

from della.latent import LatentPath, register_latent_path

# How the projection W (z -> embedding space) starts: `settings: {embedding_init: ...}` of the
# embedding and optimus models (docs/paper-vs-code.md, "Scale of the Embedding paradigm's z").
#   backbone:    normal(0, initializer_range), as the backbone initialises new modules; this is
#                Optimus' `linear_emb` (built inside GPT2Model, initialised by `init_weights()`).
#   token_scale: normal(0, std(E) / sqrt(P)), E the decoder's token embeddings: for z ~ N(0, I)
#                each coordinate of W z then has the spread of a token embedding's coordinates.
INIT_BACKBONE = "backbone"
INIT_TOKEN_SCALE = "token_scale"
EMBEDDING_INITS = (INIT_BACKBONE, INIT_TOKEN_SCALE)


class LatentToEmbedding(nn.Module):
    """Adds W z to the embedding of every token (shared with Optimus)."""

    def __init__(self, decoder, latent_size: int, init: str = INIT_BACKBONE):
        super().__init__()
        if init not in EMBEDDING_INITS:
            raise ValueError(f"embedding_init must be one of {EMBEDDING_INITS}, got {init!r}")
        self.proj = nn.Linear(latent_size, decoder.hidden_size, bias=False)
        if init == INIT_TOKEN_SCALE:
            with torch.no_grad():
                vocabulary = torch.arange(decoder.model.config.vocab_size)
                token_std = decoder.embed(vocabulary).std().item()  # as the first layer receives them
            nn.init.normal_(self.proj.weight, std=token_std / math.sqrt(latent_size))
            # Keep this initialisation when TransformerVAE then applies the backbone's
            # `_init_weights` to the path (HF's init functions skip tensors flagged so).
            self.proj.weight._is_hf_initialized = True

    def forward(self, embeds: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return embeds + self.proj(z.flatten(1))[:, None, :]


@register_latent_path("embedding")
class EmbeddingPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int, embedding_init: str = INIT_BACKBONE):
        super().__init__(decoder, latent_size, n_groups)
        self.to_embedding = LatentToEmbedding(decoder, latent_size * n_groups, embedding_init)

    def embed(self, embeds, z):
        return self.to_embedding(embeds, z)
