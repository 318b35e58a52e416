"""DELLA's latent path: layer-wise latents fused into each decoder layer's values (paper Sec. 4).

The layer-wise posterior/prior chain itself (Eq. 6-8, 12) is `della.latent.GaussianChain` with one
group per layer; this module adds what is particular to DELLA, the low-rank tensor-product fusion
of z_l with the value vectors of decoder layer l (Eq. 9, after Liu et al. 2018), and Table 4's
"w/o tensor product" ablation, where z_l enters layer l as a memory key/value instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.memory import LatentToMemory
from della.latent import LatentPath, register_latent_path

# Where the rank-r sum goes. Eq. (9) as printed, and the official code, sum the r factor
# projections *before* the element-wise product: (sum_i W_v^i v~) o (sum_i W_z^i z~), which is
# one linear map of v~ times one of z~, whatever r is. Liu et al. (2018)'s low-rank fusion sums
# *after* it: sum_i (W_v^i v~) o (W_z^i z~), where the rank matters. The paper's form is the default.
SUM_BEFORE_PRODUCT = "before_product"
SUM_AFTER_PRODUCT = "after_product"

# How z_l enters decoder layer l (`settings.fusion`): the paper's tensor product with the values,
# or, for Table 4's "w/o tensor product", as one extra key/value of that layer (Memory paradigm).
FUSION_TENSOR_PRODUCT = "tensor_product"
FUSION_MEMORY = "memory"


class LowRankFusion(nn.Module):
    """Low-rank tensor product of a value vector v [N, T, H] and a latent z [N, P] -> [N, T, H].

    Each factor is an nn.Linear, whose bias plays the role of the appended 1 in v~ = [v; 1] and
    z~ = [z; 1] (the official code appends the 1 *and* keeps a bias, one redundant column each).
    """

    def __init__(self, hidden_size: int, latent_size: int, rank: int, rank_sum: str):
        super().__init__()
        if rank_sum not in (SUM_BEFORE_PRODUCT, SUM_AFTER_PRODUCT):
            raise ValueError(f"rank_sum must be {SUM_BEFORE_PRODUCT!r} or {SUM_AFTER_PRODUCT!r}, got {rank_sum!r}")
        self.rank_sum = rank_sum
        self.value_factors = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(rank))
        self.latent_factors = nn.ModuleList(nn.Linear(latent_size, hidden_size) for _ in range(rank))

    @staticmethod
    def _summed(factors: nn.ModuleList, inputs: torch.Tensor) -> torch.Tensor:
        """sum_i W^i x + b^i as one matmul with the summed weights (same output and gradients)."""
        weight = torch.stack([f.weight for f in factors]).sum(0)
        bias = torch.stack([f.bias for f in factors]).sum(0)
        return F.linear(inputs, weight, bias)

    def forward(self, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.rank_sum == SUM_BEFORE_PRODUCT:
            return self._summed(self.value_factors, values) * self._summed(self.latent_factors, z)[:, None, :]
        value_parts = torch.stack([f(values) for f in self.value_factors])  # [r, N, T, H]
        latent_parts = torch.stack([f(z) for f in self.latent_factors])[:, :, None, :]  # [r, N, 1, H]
        return (value_parts * latent_parts).sum(0)


@register_latent_path("della")
class DellaPath(LatentPath):
    """One latent per decoder layer of `layers`, fused into that layer's values by low-rank
    tensor product (or, with fusion: memory, turned into that layer's memory key/value).

    With one group for several layers (`layerwise: false`) every layer fuses the same z, each
    with its own fusion parameters.
    """

    layerwise = True

    def __init__(
        self, decoder, latent_size: int, n_groups: int, layers: range | None = None,
        fusion: str = FUSION_TENSOR_PRODUCT, rank: int = 4, rank_sum: str = SUM_BEFORE_PRODUCT,
    ):
        super().__init__(decoder, latent_size, n_groups, layers)
        if n_groups not in (1, len(self.layers)):
            raise ValueError(f"DELLA needs one latent group or one per latent layer ({len(self.layers)}), got {n_groups}")
        # Parameters are per layer, not shared (paper Sec. 4.2: distinct vector spaces per layer).
        if fusion == FUSION_TENSOR_PRODUCT:
            self.fuses_values = True
            self.fusions = nn.ModuleList(
                LowRankFusion(self.hidden_size, latent_size, rank, rank_sum) for _ in self.layers
            )
        elif fusion == FUSION_MEMORY:
            if self.layers != range(self.n_layers):
                # a memory slot is attended to by every layer (one shared attention mask)
                raise ValueError(
                    f"DELLA settings.fusion: {FUSION_MEMORY} needs latents in every decoder layer; "
                    f"latent_layers covers layers {self.layers.start + 1}..{self.layers.stop} of {self.n_layers}"
                )
            self.to_memory = nn.ModuleList(
                LatentToMemory(latent_size, 1, self.n_heads, self.head_dim) for _ in self.layers
            )
        else:
            raise ValueError(f"DELLA settings.fusion must be {FUSION_TENSOR_PRODUCT!r} or {FUSION_MEMORY!r}, got {fusion!r}")

    def _latent_of(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """z_l [N, P] of decoder layer `layer` (the one shared z without layer-wise latents)."""
        return z[:, layer - self.layers.start if self.n_groups > 1 else 0]

    def fuse_value(self, layer: int, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.fusions[layer - self.layers.start](values, self._latent_of(layer, z))

    def memory(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if self.fuses_values:
            return None
        return [to_memory(self._latent_of(layer, z))[0] for layer, to_memory in zip(self.layers, self.to_memory)]
