"""Embedding paradigm (Li et al. 2020a): z projected and added to every input token embedding."""

import math

import torch
from torch import nn

from della.models.latent import LatentPath, register_latent_path

# How large W z is next to the token embeddings: `settings: {embedding_scale: ...}` of the
# embedding and optimus models (docs/paper-vs-code.md, "Scale of z in the Embedding paradigm").
#   none:  e + W z, W initialised normal(0, initializer_range) like every new module: Optimus'
#          `linear_emb` exactly (the default).
#   token: e + s W z with the constant s = std(E) / (initializer_range * sqrt(P)), E the decoder's
#          token embeddings as the first layer receives them: for z ~ N(0, I) each coordinate of
#          s W z starts with the spread of a token embedding's coordinates, and since s scales the
#          output, Adam's steps on W move s W z s times as far, so it stays at that scale.
SCALE_NONE = "none"
SCALE_TOKEN = "token"
EMBEDDING_SCALES = (SCALE_NONE, SCALE_TOKEN)


def initializer_std(config) -> float:
    """The std a HF backbone initialises new weights with (GPT-2: initializer_range; BART: init_std)."""
    return config.initializer_range if hasattr(config, "initializer_range") else config.init_std


class LatentToEmbedding(nn.Module):
    """Adds (s) W z to the embedding of every token (shared with Optimus)."""

    def __init__(self, decoder, latent_size: int, scale: str = SCALE_NONE):
        super().__init__()
        if scale not in EMBEDDING_SCALES:
            raise ValueError(f"embedding_scale must be one of {EMBEDDING_SCALES}, got {scale!r}")
        self.proj = nn.Linear(latent_size, decoder.hidden_size, bias=False)
        factor = 1.0
        if scale == SCALE_TOKEN:
            with torch.no_grad():
                token_std = decoder.embed(torch.arange(decoder.model.config.vocab_size)).std().item()
            factor = token_std / (initializer_std(decoder.model.config) * math.sqrt(latent_size))
        # A function of the backbone the model is built from (the same at training and at loading),
        # so it is not stored with the weights.
        self.register_buffer("scale", torch.tensor(factor), persistent=False)

    def forward(self, embeds: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return embeds + self.scale * self.proj(z.flatten(1))[:, None, :]


@register_latent_path("embedding")
class EmbeddingPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int, embedding_scale: str = SCALE_NONE):
        super().__init__(decoder, latent_size, n_groups)
        self.to_embedding = LatentToEmbedding(decoder, latent_size * n_groups, embedding_scale)

    def embed(self, embeds, z):
        return self.to_embedding(embeds, z)
