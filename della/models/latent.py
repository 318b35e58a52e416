"""Latent variables: the Gaussian chain every model shares, and the latent-path plug-in registry.

A Transformer-VAE here differs from another in two places only:
  1. how many latent groups it has and from which encoder states they are inferred (one group
     from the last layer for the classic paradigms; one per layer for DELLA), and
  2. how z enters the decoder (the *latent path*: embeddings, memory key/values, fused values,
     final hidden state).
(1) is `GaussianChain`, written once; (2) is a `LatentPath` subclass registered by name. The
baselines live in `baselines/`, one module each; DELLA's path lives in `della/models/della_path.py`.
This module knows none of them: `della.models.plugins` imports them (and a model's `plugin:`) to fill
the registry before a model is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)

# First-layer prior: the paper's p(z_1) = N(0, I), or the official code's learned constant.
FIRST_PRIOR_STANDARD = "standard"
FIRST_PRIOR_LEARNED = "learned"


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension."""
    return -0.5 * (LOG_2PI + logvar + (z - mu) ** 2 / logvar.exp()).sum(-1)


def gaussian_kl_per_dimension(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) of each dimension of diagonal Gaussians."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1)


def gaussian_kl(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) for diagonal Gaussians, summed over the last dim."""
    return gaussian_kl_per_dimension(mu_q, logvar_q, mu_p, logvar_p).sum(-1)


@dataclass
class ChainResult:
    """One pass along the chain for N rows. Shapes: z [N, G, P]; per-group terms [N, G]."""

    z: torch.Tensor
    log_q: torch.Tensor  # log q(z_g | z_<g, x[, c]) per group; zeros when no x was given
    log_p: torch.Tensor  # log p(z_g | z_<g[, c]) per group
    kl: torch.Tensor  # closed-form KL(q(z_g|.) || p(z_g|.)) per group, given the z_<g used
    posterior_mu: torch.Tensor  # [N, G, P]
    kl_per_dimension: torch.Tensor  # [N, G, P]: kl before the sum over each group's dimensions


class GaussianChain(nn.Module):
    """p(z) = prod_g p(z_g | z_<g [, c]) and q(z|x) = prod_g q(z_g | z_<g, x [, c]).

    Paper Eq. (6)-(8) and (12): h_g = tanh(W_h h_{g-1} + W_z z_{g-1}) with h_0 = z_0 = 0;
    prior (mu, log sigma^2) = W_p [h_g (; c_g)], posterior = W_q [h_g; x_g (; c_g)]. Parameters
    are not shared across groups. With one group this is the usual single-latent VAE:
    p(z) = N(0, I) (or p(z|c) for a CVAE) and q(z|x) = N(W_q x).

    chained=False is Table 4's "independent z": h_g stays 0, so every group's prior is the first
    group's (N(0, I), a learned constant, or p(z_g|c_g)) and z_g is drawn independently of z_<g.
    bn_gamma (BN-VAE, Zhu et al. 2020): the posterior means are batch-normalised per group and
    dimension, scaled by the fixed gamma and shifted by a learned beta, which keeps the expected
    KL of every dimension above gamma^2 / 2.
    Only modules that are used are built (no W_z into the first group, no W_h into the first two,
    no prior network for a fixed N(0, I)), so every parameter of the chain receives a gradient.
    """

    def __init__(
        self,
        n_groups: int,
        latent_size: int,
        rep_size: int,
        conditional: bool,
        first_prior: str,
        chained: bool = True,
        bn_gamma: float | None = None,
    ):
        super().__init__()
        if first_prior not in (FIRST_PRIOR_STANDARD, FIRST_PRIOR_LEARNED):
            raise ValueError(
                f"first_prior must be {FIRST_PRIOR_STANDARD!r} or {FIRST_PRIOR_LEARNED!r}, got {first_prior!r}"
            )
        if bn_gamma is not None and bn_gamma <= 0:
            raise ValueError(f"bn_vae_gamma must be positive (or null for no BN-VAE), got {bn_gamma}")
        self.n_groups, self.latent_size, self.conditional, self.first_prior = (
            n_groups,
            latent_size,
            conditional,
            first_prior,
        )
        self.chained, self.bn_gamma = chained, bn_gamma
        cond = rep_size if conditional else 0
        p = latent_size
        # The transition into group g (0-based): h_g = tanh(W_h h_{g-1} + W_z z_{g-1}). h_0 = 0, so
        # W_h exists from group 2 on (into group 1 it would multiply zero), W_z from group 1 on.
        into = range(1, n_groups) if chained else range(0)
        self.w_z = nn.ModuleDict({str(g): nn.Linear(p, p, bias=False) for g in into})
        self.w_h = nn.ModuleDict({str(g): nn.Linear(p, p, bias=False) for g in into if g > 1})
        self.prior_net = nn.ModuleDict(
            {str(g): nn.Linear(p + cond, 2 * p) for g in range(n_groups) if not self._standard_prior(g)}
        )
        self.posterior_net = nn.ModuleList(nn.Linear(p + rep_size + cond, 2 * p) for _ in range(n_groups))
        if bn_gamma is not None:
            self.posterior_mean_norm = nn.ModuleList(nn.BatchNorm1d(p, affine=False) for _ in range(n_groups))
            self.posterior_mean_shift = nn.Parameter(torch.zeros(n_groups, p))  # BN-VAE's learned beta

    def _standard_prior(self, g: int) -> bool:
        """Is p(z_g | .) fixed to N(0, I)? (the first group, or every group without the chain)"""
        first = g == 0 or not self.chained
        return first and not self.conditional and self.first_prior == FIRST_PRIOR_STANDARD

    def _prior(self, g: int, h: torch.Tensor, c: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self._standard_prior(g):
            zeros = h.new_zeros(h.shape[0], self.latent_size)
            return zeros, zeros
        inputs = h if c is None else torch.cat([h, c], -1)
        return self.prior_net[str(g)](inputs).chunk(2, -1)

    def _posterior(self, g: int, h: torch.Tensor, x: torch.Tensor, c: torch.Tensor | None):
        parts = [h, x] + ([c] if c is not None else [])
        mu, logvar = self.posterior_net[g](torch.cat(parts, -1)).chunk(2, -1)
        if self.bn_gamma is not None:
            mu = self.bn_gamma * self.posterior_mean_norm[g](mu) + self.posterior_mean_shift[g]
        return mu, logvar

    def forward(
        self,
        n_rows: int,
        xs: torch.Tensor | None = None,
        cs: torch.Tensor | None = None,
        z: torch.Tensor | None = None,
        sample: bool = True,
        generator: torch.Generator | None = None,
    ) -> ChainResult:
        """Walk the chain for `n_rows` rows.

        xs [N, G, H]: per-group text representations (None: draw from the prior).
        cs [N, G, H]: per-group condition representations (CVAE) or None.
        z  [N, G, P]: evaluate at these latents instead of drawing them.
        sample: draw (reparameterised) or take the mean when z is not given.
        """
        if self.n_groups and self.conditional != (cs is not None):
            raise ValueError("a conditional chain needs condition states (and an unconditional one none)")
        device = next(self.parameters()).device if self.n_groups else torch.device("cpu")
        h = torch.zeros(n_rows, self.latent_size, device=device)
        z_prev = torch.zeros_like(h)
        zs, log_q, log_p, kl, post_mu = [], [], [], [], []
        for g in range(self.n_groups):
            if g > 0 and self.chained:
                h = torch.tanh(self.w_z[str(g)](z_prev) + (self.w_h[str(g)](h) if g > 1 else 0))
            c = cs[:, g] if cs is not None else None
            mu_p, logvar_p = self._prior(g, h, c)
            if xs is not None:
                mu_q, logvar_q = self._posterior(g, h, xs[:, g], c)
            else:
                mu_q, logvar_q = mu_p, logvar_p
            if z is not None:
                z_g = z[:, g]
            elif sample:
                # randn_like (the same draws from the default generator) keeps the shape symbolic
                # under torch.compile(dynamic=True); torch.randn(shape) does not
                noise = (
                    torch.randn_like(mu_q, dtype=torch.float32)
                    if generator is None
                    else torch.randn(mu_q.shape, generator=generator, device=mu_q.device)
                )
                z_g = mu_q + (0.5 * logvar_q).exp() * noise
            else:
                z_g = mu_q
            zs.append(z_g)
            log_p.append(gaussian_log_prob(z_g, mu_p, logvar_p))
            log_q.append(gaussian_log_prob(z_g, mu_q, logvar_q) if xs is not None else torch.zeros_like(log_p[-1]))
            kl.append(gaussian_kl_per_dimension(mu_q, logvar_q, mu_p, logvar_p))
            post_mu.append(mu_q)
            z_prev = z_g
        if not self.n_groups:
            empty = h.new_zeros(n_rows, 0)
            no_latent = h.new_zeros(n_rows, 0, self.latent_size)
            return ChainResult(no_latent, empty, empty, empty, no_latent, no_latent)
        kl_per_dimension = torch.stack(kl, 1)
        return ChainResult(
            torch.stack(zs, 1),
            torch.stack(log_q, 1),
            torch.stack(log_p, 1),
            kl_per_dimension.sum(-1),
            torch.stack(post_mu, 1),
            kl_per_dimension,
        )


# --------------------------------------------------------------------------------------------
# Latent paths: how z enters the decoder
# --------------------------------------------------------------------------------------------
class LatentPath(nn.Module):
    """The plug-in: how z changes the decoder. Every hook is the identity unless overridden.

    z arrives as [N, G, P] (G groups of size P). Hooks:
      embed(embeds, z)           token embeddings [N, T, H] before the first layer (Embedding)
      memory(z)                  one extra key/value per decoder layer (Memory)
      fuse_value(layer, v, z)    value vectors [N, T, H] of decoder layer `layer` (DELLA)
      final_hidden(hidden, z)    the last hidden state before the LM head (Softmax)
    Class attributes say how many latent groups the path needs and from which encoder states.
    A layer-wise path's constructor also receives `layers`, the decoder layers that carry latents
    (`latent_layers` in the config); with `layerwise: false` it gets one group for all of them.
    """

    has_latent = True  # False: a plain fine-tuned LM / seq2seq (no z at all)
    layerwise = False  # True: one latent group per decoder layer, from the matching encoder layer
    fuses_values = False  # True: the framework hooks the value projection of every layer in `layers`

    def __init__(self, decoder, latent_size: int, n_groups: int, layers: range | None = None):
        super().__init__()
        self.hidden_size, self.n_layers = decoder.hidden_size, decoder.n_layers
        self.n_heads, self.head_dim = decoder.n_heads, decoder.head_dim
        self.latent_size, self.n_groups = latent_size, n_groups
        # the decoder layers (0-based) that carry latents; a layer-wise path is given a range
        self.layers = range(self.n_layers) if layers is None else layers

    def initialise(self, init) -> None:
        """Initialise the new modules with `init`, the backbone's `_init_weights` (called once,
        after the constructor). A path whose stored parameters derive from initialised ones
        (DELLA's `factor_storage: summed`) overrides it."""
        self.apply(init)

    def embed(self, embeds: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return embeds

    def memory(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
        return None

    def fuse_value(self, layer: int, values: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return values

    def final_hidden(self, hidden: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return hidden


LATENT_PATHS: dict[str, type[LatentPath]] = {}


def register_latent_path(name: str):
    """Class decorator: make a latent path available to the config as `models.<id>.path: name`."""

    def add(cls: type[LatentPath]) -> type[LatentPath]:
        if name in LATENT_PATHS:
            raise ValueError(
                f"latent path {name!r} registered twice ({LATENT_PATHS[name].__module__}, {cls.__module__})"
            )
        LATENT_PATHS[name] = cls
        return cls

    return add


def get_latent_path(name: str) -> type[LatentPath]:
    """The registered class of `name`. The registry is filled by importing the modules that
    define paths: `della.models.plugins.latent_path_class` does that before it asks."""
    if name not in LATENT_PATHS:
        raise KeyError(f"unknown latent path {name!r}; registered: {sorted(LATENT_PATHS)}")
    return LATENT_PATHS[name]
