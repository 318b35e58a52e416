"""Embedding paradigm (Li et al. 2020a): z projected and added to every input token embedding."""

import torch
from torch import nn

from della.latent import LatentPath, register_latent_path


class LatentToEmbedding(nn.Module):
    """Adds W z to the embedding of every token (shared with Optimus)."""

    def __init__(self, latent_size: int, hidden_size: int):
        super().__init__()
        self.proj = nn.Linear(latent_size, hidden_size, bias=False)

    def forward(self, embeds: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return embeds + self.proj(z.flatten(1))[:, None, :]


@register_latent_path("embedding")
class EmbeddingPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int):
        super().__init__(decoder, latent_size, n_groups)
        self.to_embedding = LatentToEmbedding(latent_size * n_groups, self.hidden_size)

    def embed(self, embeds, z):
        return self.to_embedding(embeds, z)
