"""DELLA's latent path: layer-wise latents fused into each decoder layer's values (paper Sec. 4).

The layer-wise posterior/prior chain itself (Eq. 6-8, 12) is `della.latent.GaussianChain` with one
group per layer; this module adds what is particular to DELLA, the low-rank tensor-product fusion
of z_l with the value vectors of decoder layer l (Eq. 9, after Liu et al. 2018).
"""

from __future__ import annotations

import torch
from torch import nn

from della.latent import LatentPath, register_latent_path

# Where the rank-r sum goes. Eq. (9) as printed, and the official code, sum the r factor
# projections *before* the element-wise product: (sum_i W_v^i v) o (sum_i W_z^i z), which is
# rank 1 whatever r is. Liu et al. (2018)'s low-rank fusion sums *after* it:
# sum_i (W_v^i v) o (W_z^i z). The paper's form is the default.
SUM_BEFORE_PRODUCT = "before_product"
SUM_AFTER_PRODUCT = "after_product"


class LowRankFusion(nn.Module):
    """Low-rank tensor product of a value vector v [N, T, H] and a latent z [N, P] -> [N, T, H]."""

    def __init__(self, hidden_size: int, latent_size: int, rank: int, rank_sum: str):
        super().__init__()
        if rank_sum not in (SUM_BEFORE_PRODUCT, SUM_AFTER_PRODUCT):
            raise ValueError(f"rank_sum must be {SUM_BEFORE_PRODUCT!r} or {SUM_AFTER_PRODUCT!r}, got {rank_sum!r}")
        self.rank_sum = rank_sum
        self.value_factors = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(rank))
        self.latent_factors = nn.ModuleList(nn.Linear(latent_size, hidden_size) for _ in range(rank))

    def forward(self, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        value_parts = torch.stack([f(values) for f in self.value_factors])  # [r, N, T, H]
        latent_parts = torch.stack([f(z) for f in self.latent_factors])[:, :, None, :]  # [r, N, 1, H]
        if self.rank_sum == SUM_BEFORE_PRODUCT:
            return value_parts.sum(0) * latent_parts.sum(0)
        return (value_parts * latent_parts).sum(0)


@register_latent_path("della")
class DellaPath(LatentPath):
    """One latent per decoder layer, fused into that layer's values by low-rank tensor product."""

    layerwise = True
    fuses_values = True

    def __init__(self, decoder, latent_size: int, n_groups: int, rank: int = 4, rank_sum: str = SUM_BEFORE_PRODUCT):
        super().__init__(decoder, latent_size, n_groups)
        # Parameters are per layer, not shared (paper Sec. 4.2: distinct vector spaces per layer).
        self.fusions = nn.ModuleList(
            LowRankFusion(self.hidden_size, latent_size, rank, rank_sum) for _ in range(n_groups)
        )

    def fuse_value(self, layer: int, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.fusions[layer](values, z[:, layer])
