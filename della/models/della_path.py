"""DELLA's latent path: layer-wise latents fused into each decoder layer's values (paper Sec. 4).

The layer-wise posterior/prior chain itself (Eq. 6-8, 12) is `della.models.latent.GaussianChain` with one
group per layer; this module adds what is particular to DELLA, the low-rank tensor-product fusion
of z_l with the value vectors of decoder layer l (Eq. 9, after Liu et al. 2018), and Table 4's
"w/o tensor product" ablation, where z_l enters layer l as a memory key/value instead.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from baselines.memory import LatentToMemory
from della.models.latent import LatentPath, register_latent_path

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


# How the r factor pairs are stored (`settings.factor_storage`). With the sum before the product,
# Eq. 9 only uses S_v = sum_i W_v^i and S_z = sum_i W_z^i (weights and biases), so every factor of
# a sum gets the same gradient dL/dS, and under AdamW the same moments and the same update. The
# paper's parameterisation keeps the r factors (`factors`, the default); `summed` stores S alone,
# which AdamW moves exactly as the r factors move their sum when its learning rate is r times
# and its weight decay 1/r times theirs and the gradient clipping counts it r times (della/run/train.py
# does both for every parameter a module lists in `parameter_multiplicity`). Same training, a
# quarter of the fusion's weights, gradients and AdamW moments at r = 4; docs/paper-vs-code.md.
FACTOR_STORAGE_FACTORS = "factors"
FACTOR_STORAGE_SUMMED = "summed"
SUMMED_PARAMETERS = ("value_weight", "value_bias", "latent_weight", "latent_bias")


class LowRankFusion(nn.Module):
    """Low-rank tensor product of a value vector v [N, T, H] and a latent z [N, P] -> [N, T, H].

    Each factor is an nn.Linear, whose bias plays the role of the appended 1 in v~ = [v; 1] and
    z~ = [z; 1] (the official code appends the 1 *and* keeps a bias, one redundant column each).
    With `factor_storage: summed` the factors only exist until they are initialised (the path's
    `initialise`); then their sums replace them (`value_weight`, `value_bias`, `latent_weight`,
    `latent_bias`).
    """

    def __init__(
        self,
        hidden_size: int,
        latent_size: int,
        rank: int,
        rank_sum: str,
        factor_storage: str = FACTOR_STORAGE_FACTORS,
    ):
        super().__init__()
        if rank_sum not in (SUM_BEFORE_PRODUCT, SUM_AFTER_PRODUCT):
            raise ValueError(f"rank_sum must be {SUM_BEFORE_PRODUCT!r} or {SUM_AFTER_PRODUCT!r}, got {rank_sum!r}")
        if factor_storage not in (FACTOR_STORAGE_FACTORS, FACTOR_STORAGE_SUMMED):
            raise ValueError(
                f"DELLA settings.factor_storage must be {FACTOR_STORAGE_FACTORS!r} or "
                f"{FACTOR_STORAGE_SUMMED!r}, got {factor_storage!r}"
            )
        if factor_storage == FACTOR_STORAGE_SUMMED and rank_sum != SUM_BEFORE_PRODUCT:
            raise ValueError(
                f"DELLA settings.factor_storage: {FACTOR_STORAGE_SUMMED} keeps only the sums of the factors, "
                f"all Eq. 9 uses with settings.rank_sum: {SUM_BEFORE_PRODUCT}; got rank_sum: {rank_sum}, "
                f"which needs every factor (use factor_storage: {FACTOR_STORAGE_FACTORS})"
            )
        self.rank, self.rank_sum, self.factor_storage = rank, rank_sum, factor_storage
        # Summed storage builds and initialises the factors too: the same random draws as factor
        # storage, so its sums start equal to factor storage's, and so does every module after it.
        self.value_factors = nn.ModuleList(nn.Linear(hidden_size, hidden_size) for _ in range(rank))
        self.latent_factors = nn.ModuleList(nn.Linear(latent_size, hidden_size) for _ in range(rank))
        # how many parameters of the paper's parameterisation each stored one stands for (default 1)
        self.parameter_multiplicity: dict[str, int] = {}

    def replace_factors_by_sums(self) -> None:
        """Summed storage, once the factors are initialised: keep only their sums, each standing
        for the r factors it sums."""
        with torch.no_grad():
            sums = (*self._sums(self.value_factors), *self._sums(self.latent_factors))
        del self.value_factors, self.latent_factors
        for name, tensor in zip(SUMMED_PARAMETERS, sums, strict=True):
            self.register_parameter(name, nn.Parameter(tensor))
        self.parameter_multiplicity = dict.fromkeys(SUMMED_PARAMETERS, self.rank)

    @property
    def stores_sums(self) -> bool:
        """Whether the factors were replaced by their sums (summed storage, after initialisation)."""
        return "value_factors" not in self._modules

    @staticmethod
    def _sums(factors: nn.ModuleList) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum_i W^i, sum_i b^i): sum_i W^i x + b^i is one matmul with these (same output and gradients).

        Added one by one, not stacked and summed: the backward of stack + sum hands the r factors
        views of one expanded gradient, which autograd keeps as their .grad, all r in one storage;
        every in-place change of a .grad (clipping, gradient accumulation, the fp16 scaler's
        unscaling) then happened r times (tests/test_ablations.py checks the gradients are apart).
        """
        return (
            functools.reduce(torch.add, (f.weight for f in factors)),
            functools.reduce(torch.add, (f.bias for f in factors)),
        )

    def forward(self, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if self.rank_sum == SUM_BEFORE_PRODUCT:
            if self.stores_sums:
                value_map, latent_map = (self.value_weight, self.value_bias), (self.latent_weight, self.latent_bias)
            else:
                value_map, latent_map = self._sums(self.value_factors), self._sums(self.latent_factors)
            return F.linear(values, *value_map) * F.linear(z, *latent_map)[:, None, :]
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
        self,
        decoder,
        latent_size: int,
        n_groups: int,
        layers: range | None = None,
        fusion: str = FUSION_TENSOR_PRODUCT,
        rank: int = 4,
        rank_sum: str = SUM_BEFORE_PRODUCT,
        factor_storage: str = FACTOR_STORAGE_FACTORS,
    ):
        super().__init__(decoder, latent_size, n_groups, layers)
        if n_groups not in (1, len(self.layers)):
            raise ValueError(
                f"DELLA needs one latent group or one per latent layer ({len(self.layers)}), got {n_groups}"
            )
        # Parameters are per layer, not shared (paper Sec. 4.2: distinct vector spaces per layer).
        if fusion == FUSION_TENSOR_PRODUCT:
            self.fuses_values = True
            self.fusions = nn.ModuleList(
                LowRankFusion(self.hidden_size, latent_size, rank, rank_sum, factor_storage) for _ in self.layers
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
            raise ValueError(
                f"DELLA settings.fusion must be {FUSION_TENSOR_PRODUCT!r} or {FUSION_MEMORY!r}, got {fusion!r}"
            )

    def initialise(self, init) -> None:
        super().initialise(init)
        for fusion in self.fusions if self.fuses_values else ():
            if fusion.factor_storage == FACTOR_STORAGE_SUMMED:
                fusion.replace_factors_by_sums()

    def _latent_of(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """z_l [N, P] of decoder layer `layer` (the one shared z without layer-wise latents)."""
        return z[:, layer - self.layers.start if self.n_groups > 1 else 0]

    def fuse_value(self, layer: int, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.fusions[layer - self.layers.start](values, self._latent_of(layer, z))

    def memory(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        if self.fuses_values:
            return None
        return [
            to_memory(self._latent_of(layer, z))[0]
            for layer, to_memory in zip(self.layers, self.to_memory, strict=True)
        ]
