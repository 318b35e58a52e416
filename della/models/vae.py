"""The Transformer-VAE every model is an instance of: backbone + Gaussian chain + latent path.

Training, generation and evaluation only talk to `TransformerVAE`. It implements the narrow
estimator interface of docs/interfaces.md (after vae-lagging-encoder), so IW-PPL, ELBO, KL, MI
and AU are written once, in `metrics/representation.py`, for every model.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN

from della.models.backbone import SEQ2SEQ, load_decoder, load_encoder, load_tokenizer, special_ids
from della.models.decoding import BEAM, SAMPLE, LatentConditionedLM, generation_config, sampling_seeded_by
from della.models.latent import FIRST_PRIOR_STANDARD, GaussianChain
from della.models.plugins import latent_path_class
from della.run.batches import IGNORE_INDEX, Collator, pad
from della.run.lengths import check_lengths

# How the sentence representation x_l is read off an encoder layer's states.
POOL_FIRST_TOKEN = "first_token"  # the paper: "the hidden state of the first token"
POOL_MEAN = "mean"  # mean over non-padding tokens (Fang et al. 2021)
POOL_ATTENTION = "attention"  # the official DELLA code's learned attention pooling, per layer
POOL_BERT_POOLER = "bert_pooler"  # Optimus: BERT's pooler output, tanh(W h_[CLS] + b)
POOLINGS = (POOL_FIRST_TOKEN, POOL_MEAN, POOL_ATTENTION, POOL_BERT_POOLER)


class AttentionPooling(nn.Module):
    """The official code's `AverageSelfAttention`: softmax_t(act(h_t . w)) weighted sum of states.

    Unlike the official code, padding positions are masked out, so a representation does not
    depend on how long the other sentences of its batch are.
    """

    def __init__(self, hidden_size: int, activation: str, initializer_range: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(hidden_size) * initializer_range)
        self.activation = ACT2FN[activation]

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.activation(states @ self.weight).masked_fill(mask == 0, float("-inf"))  # [B, T]
        return (scores.softmax(-1)[..., None] * states).sum(1)  # [B, H]


# How the per-layer KL terms are combined in the training loss (paper Eq. 6 sums; the official
# DELLA code averages over the layers).
KL_SUM, KL_MEAN = "sum", "mean"
# Which groups' KL terms enter the training loss (`kl_layers`; Table 4's "KL only on z_1 / z_L").
# Where `kl_threshold` applies (free bits): "dimension", each example's KL of each latent dimension,
# masked out at or below the threshold (Optimus' `dim_target_kl`, its code's fb_mode 1: 0.5 nats a
# dimension); "group", each example's KL of each latent group, clamped to at least the threshold.
# The gradient is zero below the threshold either way; what differs is what the threshold bounds.
KL_THRESHOLD_DIMENSION, KL_THRESHOLD_GROUP = "dimension", "group"
KL_LAYERS = {"all": slice(None), "first": slice(0, 1), "last": slice(-1, None)}


# VAEConfig fields set from the run's `training` settings rather than its model entry
FROM_TRAINING = {"set_from": "training"}
# VAEConfig fields set from the run's backbones and dataset rather than its model entry
RUN_FIELDS = frozenset({"decoder", "decoder_kind", "encoder", "conditional", "max_source_tokens", "max_target_tokens"})
# the model entry's key naming Optimus' encoder backbone (della/pipeline/targets.py passes it as `encoder`)
ENCODER_ENTRY_KEY = "encoder_backbone"


@dataclass
class VAEConfig:
    """Everything needed to rebuild a model; written next to its weights as config.json."""

    path: str  # registered latent path (della, embedding, memory, softmax, optimus, none)
    decoder: str  # decoder backbone: hub name or local directory
    decoder_kind: str  # causal | seq2seq
    conditional: bool
    latent_size: int = 32
    encoder: str | None = None  # separate encoder backbone (Optimus' BERT); None: share the decoder's
    pooling: str = POOL_FIRST_TOKEN
    first_prior: str = FIRST_PRIOR_STANDARD
    max_source_tokens: int = 64
    max_target_tokens: int = 64
    path_settings: dict = field(default_factory=dict)
    # 1-based inclusive range of decoder layers carrying latents (end None: the last layer); Fig. 2
    latent_layers: dict = field(default_factory=lambda: {"start": 1, "end": None})
    layerwise: bool = True  # False: one z, from the last encoder layer, for all latent layers
    chain: bool = True  # False: independent z_l (Table 4)
    kl_layers: str = "all"  # all | first | last: whose KL enters the training loss (Table 4)
    # Training tricks (Table 5) that add modules: set from the `training` settings (with_training)
    bow_weight: float = field(default=0.0, metadata=FROM_TRAINING)  # bag-of-words loss weight from z_L (0: no head)
    bn_vae_gamma: float | None = field(default=None, metadata=FROM_TRAINING)  # BN-VAE's gamma on the means (None: off)
    plugin: str | None = None  # file or module that registers `path` (della/models/plugins.py)
    init_from: str | None = None  # pre-trained Optimus checkpoint training starts from (baselines/optimus.py)

    @classmethod
    def from_settings(cls, settings: dict) -> VAEConfig:
        """A run's config from the train rule's settings (della.pipeline.targets.train_settings): the model
        entry's keys by their field names (absent: the defaults above, the paper's model; its
        `settings` are `path_settings`), the backbones and the dataset's lengths. A model key
        that is no field is an error: this class is the one home of the model's keys."""
        model, decoder, encoder = dict(settings["model"]), settings["decoder"], settings.get("encoder")
        model["path_settings"] = model.pop("settings", {})
        model.pop(ENCODER_ENTRY_KEY, None)  # the encoder's backbone, given as settings["encoder"]
        own = {f.name for f in fields(cls) if not _from_training(f)} - RUN_FIELDS
        unknown = sorted(set(model) - own)
        if unknown:
            raise ValueError(
                f"model settings: {unknown[0]!r} is no key of the model (della.models.vae.VAEConfig's fields)"
            )
        return cls(
            **model,
            decoder=decoder["name_or_path"],
            decoder_kind=decoder["kind"],
            encoder=encoder["name_or_path"] if encoder else None,
            conditional=settings["conditional"],
            max_source_tokens=settings["max_source_tokens"],
            max_target_tokens=settings["max_target_tokens"],
        )

    def with_training(self, training: dict) -> VAEConfig:
        """This config with the training tricks that add modules (the fields marked FROM_TRAINING)
        taken from the `training` settings, absent ones as they are."""
        tricks = {f.name: training[f.name] for f in fields(self) if _from_training(f) and f.name in training}
        return replace(self, **tricks)


def _from_training(config_field) -> bool:
    return config_field.metadata.get("set_from") == FROM_TRAINING["set_from"]


@dataclass
class Encoding:
    """What the posterior needs for a batch: per-group text (and condition) representations."""

    xs: torch.Tensor  # [B, G, H]
    cs: torch.Tensor | None  # [B, G, H] or None


class TransformerVAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        self.decoder = load_decoder(config.decoder, config.decoder_kind)
        self.decoder_tokenizer = load_tokenizer(config.decoder)
        # A separate encoder (Optimus' BERT) is a submodule of its own; a shared one is reached
        # through the `encoder` property, so its weights are stored once.
        self.separate_encoder = load_encoder(config.encoder) if config.encoder is not None else None
        self.encoder_tokenizer = (
            load_tokenizer(config.encoder) if config.encoder is not None else self.decoder_tokenizer
        )
        path_cls = latent_path_class(config.path, config.plugin)
        self.latent_layers = self._layer_range(config, path_cls.layerwise)
        if not (isinstance(config.latent_size, int) and config.latent_size >= 1):
            raise ValueError(f"latent_size must be a positive integer, got {config.latent_size!r}")
        if config.kl_layers not in KL_LAYERS:
            raise ValueError(f"kl_layers must be one of {sorted(KL_LAYERS)}, got {config.kl_layers!r}")
        if not path_cls.has_latent:
            self.n_groups = 0
            if config.bow_weight or config.bn_vae_gamma is not None:
                raise ValueError(f"model path {config.path!r} has no latent: bow_weight and bn_vae_gamma do not apply")
        elif path_cls.layerwise:
            if self.encoder.n_layers != self.decoder.n_layers:
                raise ValueError(
                    f"model path {config.path!r} pairs encoder layer l with decoder layer l, but the encoder has "
                    f"{self.encoder.n_layers} layers and the decoder {self.decoder.n_layers}"
                )
            self.n_groups = len(self.latent_layers) if config.layerwise else 1
        else:
            self.n_groups = 1
        self.latent_size = config.latent_size
        if config.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {config.pooling!r}")
        if config.pooling == POOL_BERT_POOLER and getattr(getattr(self.encoder, "model", None), "pooler", None) is None:
            raise ValueError(
                f"pooling {POOL_BERT_POOLER!r} needs a BERT encoder with its pooler (encoder_backbone: bert)"
            )
        backbone_config = self.decoder.model.config
        self.pools = nn.ModuleList(
            AttentionPooling(
                self.encoder.hidden_size,
                getattr(backbone_config, "activation_function", "gelu_new"),
                backbone_config.initializer_range
                if hasattr(backbone_config, "initializer_range")
                else backbone_config.init_std,
            )
            for _ in range(self.n_groups if config.pooling == POOL_ATTENTION else 0)
        )
        layers = {"layers": self.latent_layers} if path_cls.layerwise else {}
        self.path = path_cls(self.decoder, config.latent_size, self.n_groups, **layers, **config.path_settings)
        self.chain = GaussianChain(
            self.n_groups,
            config.latent_size,
            self.encoder.hidden_size,
            config.conditional,
            config.first_prior,
            chained=config.chain,
            bn_gamma=config.bn_vae_gamma,
        )
        # BOW loss (as the official DELLA code): z_L -> hidden size -> the decoder's own LM head
        self.bow_head = nn.Linear(config.latent_size, self.decoder.hidden_size) if config.bow_weight else None
        # New modules start as the backbone initialises its own (normal(0, initializer_range), zero
        # bias), as in both official codes, where they live inside a HF model and get init_weights().
        self.path.initialise(self.decoder.model._init_weights)
        self.chain.apply(self.decoder.model._init_weights)
        if self.bow_head is not None:
            self.bow_head.apply(self.decoder.model._init_weights)
        self._z: torch.Tensor | None = None  # the latent the value hooks fuse, while decoding
        if self.path.fuses_values:
            for layer, (module, span) in enumerate(self.decoder.value_projections()):
                if layer in self.path.layers:  # layers outside latent_layers run as the plain backbone
                    module.register_forward_hook(self._value_hook(layer, span))
        start = (
            getattr(self.decoder.model.config, "decoder_start_token_id", None)
            if config.decoder_kind == SEQ2SEQ
            else None
        )
        self.collator = Collator(
            self.decoder_tokenizer,
            self.encoder_tokenizer,
            config.decoder_kind,
            config.conditional,
            config.max_source_tokens,
            config.max_target_tokens,
            decoder_start=start,
            decoder_positions=self.decoder.max_positions,
            encoder_positions=self.encoder.max_positions,
        )
        self.bos, self.eos, self.pad = special_ids(self.decoder_tokenizer)

    def _layer_range(self, config: VAEConfig, layerwise_path: bool) -> range:
        """`latent_layers` {start, end} (1-based, inclusive) as 0-based decoder layer indices."""
        n_layers = self.decoder.n_layers
        start, end = config.latent_layers["start"], config.latent_layers.get("end")
        end = n_layers if end is None else end
        if not 1 <= start <= end <= n_layers:
            raise ValueError(
                f"latent_layers {config.latent_layers} is not a range within the decoder's {n_layers} layers"
            )
        layers = range(start - 1, end)
        if not layerwise_path and layers != range(n_layers):
            raise ValueError(
                f"latent_layers {config.latent_layers} needs a layer-wise path; {config.path!r} is not one"
            )
        return layers

    @property
    def device(self) -> torch.device:
        """Where the parameters are: batches, latents and generators go there."""
        return next(self.parameters()).device

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A collated batch (the collator builds CPU tensors) on the model's device."""
        device = self.device
        return {name: tensor.to(device) for name, tensor in batch.items()}

    @property
    def encoder(self):
        """The posterior network's encoder: Optimus' BERT, BART's encoder, or GPT-2 itself."""
        if self.separate_encoder is not None:
            return self.separate_encoder
        return self.decoder.encoder if self.config.decoder_kind == SEQ2SEQ else self.decoder

    # ---------------------------------------------------------------------------------------
    # Saving and loading
    # ---------------------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), directory / "weights.pt")
        (directory / "config.json").write_text(json.dumps(asdict(self.config), indent=2))

    @classmethod
    def load(cls, directory: Path) -> TransformerVAE:
        config = VAEConfig(**json.loads((directory / "config.json").read_text()))
        model = cls(config)
        model.load_state_dict(torch.load(directory / "weights.pt", map_location="cpu", weights_only=True))
        return model.eval()

    # ---------------------------------------------------------------------------------------
    # Encoder side
    # ---------------------------------------------------------------------------------------
    def _representations(self, ids, mask) -> torch.Tensor:
        """Per-group sentence representations [B, G, H] from the encoder's layer states."""
        states = self.encoder.layer_states(ids, mask)
        layers = self.latent_layers
        chosen = states[layers.start : layers.stop] if self.path.layerwise and self.config.layerwise else states[-1:]
        if self.config.pooling == POOL_FIRST_TOKEN:
            pooled = [s[:, 0] for s in chosen]
        elif self.config.pooling == POOL_MEAN:
            weights = mask[..., None].to(states[0].dtype)
            pooled = [(s * weights).sum(1) / weights.sum(1) for s in chosen]
        elif self.config.pooling == POOL_BERT_POOLER:
            pooled = [self.encoder.model.pooler(s) for s in chosen]
        else:
            pooled = [pool(s, mask) for pool, s in zip(self.pools, chosen, strict=True)]
        return torch.stack(pooled, 1)

    def _condition(self, batch) -> torch.Tensor | None:
        if not self.config.conditional or not self.n_groups:
            return None
        return self._representations(batch["c_ids"], batch["c_mask"])

    def encode(self, batch) -> Encoding:
        if not self.n_groups:
            return Encoding(batch["x_ids"].new_zeros(batch["x_ids"].shape[0], 0, 0, dtype=torch.float), None)
        return Encoding(self._representations(batch["x_ids"], batch["x_mask"]), self._condition(batch))

    @staticmethod
    def _repeat(t: torch.Tensor | None, k: int) -> torch.Tensor | None:
        return None if t is None else t.repeat_interleave(k, 0)

    def _flat(self, z: torch.Tensor) -> torch.Tensor:
        """[N, G, P] -> [N, G * P]"""
        return z.reshape(z.shape[0], -1)

    def _groups(self, z: torch.Tensor) -> torch.Tensor:
        """[..., G * P] -> [N, G, P]"""
        return z.reshape(-1, self.n_groups, self.latent_size)

    # ---------------------------------------------------------------------------------------
    # The estimator interface (docs/interfaces.md); z is flat: [B, K, D], D = G * P
    # ---------------------------------------------------------------------------------------
    def sample_posterior(self, enc: Encoding, k: int):
        b = enc.xs.shape[0]
        if not self.n_groups:
            zeros = enc.xs.new_zeros(b, k)
            return enc.xs.new_zeros(b, k, 0), zeros
        result = self.chain(b * k, self._repeat(enc.xs, k), self._repeat(enc.cs, k))
        return self._flat(result.z).view(b, k, -1), result.log_q.sum(-1).view(b, k)

    def log_posterior(self, enc: Encoding, z: torch.Tensor) -> torch.Tensor:
        b, k = z.shape[:2]
        if not self.n_groups:
            return z.new_zeros(b, k)
        result = self.chain(b * k, self._repeat(enc.xs, k), self._repeat(enc.cs, k), z=self._groups(z))
        return result.log_q.sum(-1).view(b, k)

    def log_posterior_groups(self, enc: Encoding, z: torch.Tensor) -> torch.Tensor:
        """log q(z_g | z_<g, x) per group, [B, K, G]; summed over g it is `log_posterior` (per-layer MI)."""
        b, k = z.shape[:2]
        result = self.chain(b * k, self._repeat(enc.xs, k), self._repeat(enc.cs, k), z=self._groups(z))
        return result.log_q.view(b, k, -1)

    def log_prior(self, batch, z: torch.Tensor) -> torch.Tensor:
        b, k = z.shape[:2]
        if not self.n_groups:
            return z.new_zeros(b, k)
        result = self.chain(b * k, None, self._repeat(self._condition(batch), k), z=self._groups(z))
        return result.log_p.sum(-1).view(b, k)

    def kl(self, enc: Encoding, batch=None) -> torch.Tensor:
        """Closed-form KL per group [B, G], each given a reparameterised sample of z_<g (Eq. 6)."""
        return self.chain(enc.xs.shape[0], enc.xs, enc.cs).kl

    def posterior_mean(self, enc: Encoding) -> torch.Tensor:
        return self._flat(self.chain(enc.xs.shape[0], enc.xs, enc.cs, sample=False).z)

    def log_likelihood(self, batch, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over target tokens, [B, K]."""
        b, k = z.shape[:2]
        repeated = {name: t.repeat_interleave(k, 0) for name, t in batch.items()}
        token_logp = self._token_log_probs(repeated, self._groups(z) if self.n_groups else None)
        return token_logp.sum(-1).view(b, k)

    @staticmethod
    def num_target_tokens(batch) -> torch.Tensor:
        """Tokens PPL is normalised by: target tokens plus the closing </s>, per sentence."""
        return (batch["labels"] != IGNORE_INDEX).sum(-1)

    # ---------------------------------------------------------------------------------------
    # Decoder side
    # ---------------------------------------------------------------------------------------
    def _value_hook(self, layer: int, span: slice):
        def hook(module, inputs, output):
            if self._z is None:  # encoding with shared weights, or a model without latent
                return output
            # Keep for backward only what it needs: the values alone (a view would keep the whole
            # q/k/v projection alive) and one output tensor (clone + in-place assignment kept two).
            start, stop, _ = span.indices(output.shape[-1])
            fused = self.path.fuse_value(layer, output[..., start:stop].contiguous(), self._z)
            if stop - start == output.shape[-1]:  # the module outputs the values only (BART)
                return fused
            return torch.cat([output[..., :start], fused, output[..., stop:]], -1)

        return hook

    @contextlib.contextmanager
    def _injecting(self, z: torch.Tensor | None):
        self._z = z
        try:
            yield
        finally:
            self._z = None

    def _source(self, batch):
        if self.config.decoder_kind != SEQ2SEQ:
            return None
        return self.decoder.encode_source(batch["src_ids"], batch["src_mask"]), batch["src_mask"]

    def _decode(self, ids, mask, z, cache, source, positions, keep: int = 0) -> torch.Tensor:
        """One decoder pass over `ids` continuing `cache`; returns logits [N, T, V] (of the last
        `keep` positions only if keep > 0: generation needs the last one)."""
        embeds = self.decoder.embed(ids)
        if z is not None:
            embeds = self.path.embed(embeds, z)
        with self._injecting(z):
            hidden = self.decoder.step(embeds, mask, positions, cache, source)
        if keep:
            hidden = hidden[:, -keep:]
        if z is not None:
            hidden = self.path.final_hidden(hidden, z)
        return self.decoder.logits(hidden)

    def _start(self, z: torch.Tensor | None, n: int, device):
        """A fresh cache (holding the Memory/Optimus key/values) and the attention-mask prefix."""
        memory = self.path.memory(z) if z is not None else None
        prefix = torch.ones(n, 1 if memory is not None else 0, dtype=torch.long, device=device)
        return self.decoder.new_cache(memory), prefix

    def _token_log_probs(self, batch, z: torch.Tensor | None) -> torch.Tensor:
        """log p(x_t | x_<t, z) at every labelled position, 0 elsewhere; [N, T]."""
        ids, mask = batch["dec_ids"], batch["dec_mask"]
        cache, prefix = self._start(z, ids.shape[0], ids.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = self._decode(ids, torch.cat([prefix, mask], -1), z, cache, self._source(batch), positions)
        labels = batch["labels"]
        logp = -F.cross_entropy(logits.transpose(1, 2), labels.clamp(min=0), reduction="none")
        return logp * (labels != IGNORE_INDEX)

    # ---------------------------------------------------------------------------------------
    # Training objective
    # ---------------------------------------------------------------------------------------
    def bow_loss(self, batch, z: torch.Tensor) -> torch.Tensor:
        """Bag-of-words loss [B]: -sum over target tokens of log softmax(LM head(W z_L)), the
        order-free prediction of every target token from the last group's latent (official DELLA)."""
        logp = self.decoder.logits(self.bow_head(z[:, -1])).log_softmax(-1)  # [B, V]
        labels = batch["labels"]
        return -(logp.gather(-1, labels.clamp(min=0)) * (labels != IGNORE_INDEX)).sum(-1)

    def loss(
        self,
        batch,
        beta: float,
        kl_threshold: float,
        kl_reduction: str,
        kl_threshold_scope: str = KL_THRESHOLD_DIMENSION,
    ) -> dict[str, torch.Tensor]:
        """Negative ELBO with a weighted KL (beta), free bits (kl_threshold, per dimension or per
        group: `kl_threshold_scope`), the KL of the groups `kl_layers` names, and the BOW loss
        weighted by `bow_weight`."""
        if kl_reduction not in (KL_SUM, KL_MEAN):
            raise ValueError(f"kl_reduction must be {KL_SUM!r} or {KL_MEAN!r}, got {kl_reduction!r}")
        if kl_threshold_scope not in (KL_THRESHOLD_DIMENSION, KL_THRESHOLD_GROUP):
            raise ValueError(
                f"kl_threshold_scope must be {KL_THRESHOLD_DIMENSION!r} or {KL_THRESHOLD_GROUP!r}, "
                f"got {kl_threshold_scope!r}"
            )
        b = batch["dec_ids"].shape[0]
        if self.n_groups:
            enc = self.encode(batch)
            result = self.chain(b, enc.xs, enc.cs)
            z, kl_groups, kl_dims = result.z, result.kl, result.kl_per_dimension
        else:
            z, kl_groups = None, batch["dec_ids"].new_zeros(b, 1, dtype=torch.float)
            kl_dims = kl_groups[..., None]
        reconstruction = -self._token_log_probs(batch, z).sum(-1)  # [B] nats per sentence
        counted = KL_LAYERS[self.config.kl_layers]
        if kl_threshold_scope == KL_THRESHOLD_DIMENSION:
            dims = kl_dims[:, counted]  # [B, G', P]
            thresholded = (dims * (dims > kl_threshold)).sum(-1)
        else:
            thresholded = kl_groups[:, counted].clamp(min=kl_threshold)  # [B, G']
        kl_for_loss = thresholded.sum(-1) if kl_reduction == KL_SUM else thresholded.mean(-1)
        loss = (reconstruction + beta * kl_for_loss).mean()
        terms = {}
        if self.bow_head is not None:
            terms["bow"] = self.bow_loss(batch, z).mean()
            loss = loss + self.config.bow_weight * terms["bow"]
        return {
            "loss": loss,
            "reconstruction": reconstruction.mean(),
            "kl": kl_groups.sum(-1).mean(),
            "kl_per_group": kl_groups.mean(0).detach(),
            "tokens": self.num_target_tokens(batch).sum(),
            **terms,
        }

    # ---------------------------------------------------------------------------------------
    # Generation
    # ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self, sources: list[str | None], decoding: dict, generator: torch.Generator, token_budget: int | None = None
    ) -> list[str]:
        """One output per entry of `sources` (None for unconditional), z drawn from the prior
        (p(z) or p(z|c)), then decoded greedily, by sampling, or by beam search given that z."""
        cs = self._condition(self._source_batch(sources)) if self.config.conditional else None
        z = self.chain(len(sources), None, cs, generator=generator).z if self.n_groups else None
        return self.decode(z, sources, decoding, generator, token_budget)

    def _source_batch(self, sources: list[str | None]):
        return self.to_device(self.collator([{"source": s, "target": ""} for s in sources]))

    @torch.no_grad()
    def posterior_latents(
        self,
        texts: list[str],
        sources: list[str | None] | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Latents [N, G, P] from each text's posterior (given its source, for a CVAE): a draw,
        or the mean chain (each z_l the mean of q(z_l | z_<l, x) at the means of z_<l). What
        reconstruction and interpolation (Fig. 3, App. A.6) decode."""
        if self.config.conditional:
            records = [{"source": s, "target": t} for s, t in zip(sources, texts, strict=True)]
        else:
            records = [{"text": t} for t in texts]
        enc = self.encode(self.to_device(self.collator(records)))
        return self.chain(len(texts), enc.xs, enc.cs, sample=sample, generator=generator).z

    def generation_inputs(self, z: torch.Tensor | None, sources: list[str | None]) -> dict[str, torch.Tensor]:
        """The inputs of `LatentConditionedLM.generate` for one text per row of the latents z
        [N, G, P] (None: a model without latent): the decoder prompts (left-padded) and their
        mask, the latent, and for a seq2seq decoder the encoded source (della/models/decoding.py)."""
        prompts, prompt_mask = pad([self.collator.prompt(s) for s in sources], self.pad, left=True)
        inputs = {"input_ids": prompts.to(self.device), "attention_mask": prompt_mask.to(self.device)}
        if z is not None:
            inputs["latent"] = z
        if self.config.conditional and self.config.decoder_kind == SEQ2SEQ:
            inputs["source_states"], inputs["source_mask"] = self._source(self._source_batch(sources))
        return inputs

    @torch.no_grad()
    def decode_tokens(
        self,
        z: torch.Tensor | None,
        sources: list[str | None],
        decoding: dict,
        generator: torch.Generator,
        token_budget: int | None = None,
    ) -> list[list[int]]:
        """Token ids of one text per row of the latents z [N, G, P] (None: a model without latent),
        each up to and including its </s>, decoded by transformers' generate() as `decoding`
        says; sampling draws from a stream seeded by `generator` (della/models/decoding.py). Greedy and
        beam search decode at most `token_budget` tokens (rows x beams x (prompt + new tokens))
        per generate() call (della/run/memory.py); sampling is never cut (its random stream is the
        whole batch's)."""
        seqs = self.collator.sequences(decoding["max_new_tokens"])
        check_lengths("generation", seqs, {"decoder": (self.decoder.max_positions, "the decoder")})
        if token_budget is not None and decoding["strategy"] != SAMPLE:
            beams = decoding.get("num_beams", 1) if decoding["strategy"] == BEAM else 1
            longest = next(s.length for s in seqs if s.role == "generation")
            rows = max(1, token_budget // (beams * longest))
            if rows < len(sources):
                return [
                    row
                    for start in range(0, len(sources), rows)
                    for row in self.decode_tokens(
                        None if z is None else z[start : start + rows],
                        sources[start : start + rows],
                        decoding,
                        generator,
                    )
                ]
        inputs = self.generation_inputs(z, sources)
        config = generation_config(decoding, self.bos, self.eos, self.pad)
        with sampling_seeded_by(generator):
            sequences = LatentConditionedLM(self).generate(**inputs, generation_config=config)
        generated = sequences[:, inputs["input_ids"].shape[1] :].tolist()  # after the prompt
        return [row[: row.index(self.eos) + 1] if self.eos in row else row for row in generated]

    def decode(
        self,
        z: torch.Tensor | None,
        sources: list[str | None],
        decoding: dict,
        generator: torch.Generator,
        token_budget: int | None = None,
    ) -> list[str]:
        """Decode one text per row of the latents z [N, G, P] (None: a model without latent)."""
        return [
            self.decoder_tokenizer.decode(_until(row, self.eos), skip_special_tokens=True).strip()
            for row in self.decode_tokens(z, sources, decoding, generator, token_budget)
        ]


def weighted_parameters(model: nn.Module) -> list[tuple[nn.Parameter, int]]:
    """Every parameter of `model` (once) with its multiplicity: how many parameters of the paper's
    parameterisation it stands for. 1 unless the module holding it lists it in its
    `parameter_multiplicity` ({attribute name: m}): one stored tensor standing for m parameters
    that always receive the same gradient (DELLA's `factor_storage: summed`, the sum of r factors).
    Training treats it as those m (della/run/train.py: `adamw`, `clip_gradients`)."""
    multiplicity = {}
    for module in model.modules():
        for name, m in getattr(module, "parameter_multiplicity", {}).items():
            multiplicity[id(getattr(module, name))] = m
    return [(p, multiplicity.get(id(p), 1)) for p in model.parameters()]


def count_parameters(model: TransformerVAE) -> dict[str, int]:
    """Stored parameters of the backbone(s) and of what the VAE adds (chain, latent path, pooling,
    BOW head), their total, and `paper_total`: the parameters of the paper's parameterisation they
    stand for (more than `total` with DELLA's `factor_storage: summed`)."""
    backbone = {id(p): p for p in model.decoder.parameters()}
    if model.separate_encoder is not None:
        backbone.update({id(p): p for p in model.separate_encoder.parameters()})
    everything = {id(p): p for p in model.parameters()}
    counts = {
        name: sum(p.numel() for p in module.parameters())
        for name, module in (
            ("chain", model.chain),
            ("latent_path", model.path),
            ("pooling", model.pools),
        )
    }
    counts["bow_head"] = sum(p.numel() for p in model.bow_head.parameters()) if model.bow_head is not None else 0
    counts["backbone"] = sum(p.numel() for p in backbone.values())
    counts["total"] = sum(p.numel() for p in everything.values())
    counts["paper_total"] = sum(p.numel() * m for p, m in weighted_parameters(model))
    return counts


def _until(tokens: list[int], eos: int) -> list[int]:
    return tokens[: tokens.index(eos)] if eos in tokens else tokens
