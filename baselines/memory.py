"""Memory paradigm (Fang et al. 2021; Li et al. 2020a): z as one extra key/value per decoder layer."""

import torch
from torch import nn

from della.models.latent import LatentPath, register_latent_path


class LatentToMemory(nn.Module):
    """Projects z to a key and a value vector for every decoder layer (shared with Optimus)."""

    def __init__(self, latent_size: int, n_layers: int, n_heads: int, head_dim: int):
        super().__init__()
        self.n_layers, self.n_heads, self.head_dim = n_layers, n_heads, head_dim
        self.proj = nn.Linear(latent_size, n_layers * 2 * n_heads * head_dim, bias=False)

    def forward(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        n = z.shape[0]
        kv = self.proj(z.flatten(1)).view(n, self.n_layers, 2, self.n_heads, 1, self.head_dim)
        return [(kv[:, layer, 0], kv[:, layer, 1]) for layer in range(self.n_layers)]  # [N, heads, 1, d]


@register_latent_path("memory")
class MemoryPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int):
        super().__init__(decoder, latent_size, n_groups)
        self.to_memory = LatentToMemory(latent_size * n_groups, self.n_layers, self.n_heads, self.head_dim)

    def memory(self, z):
        return self.to_memory(z)
