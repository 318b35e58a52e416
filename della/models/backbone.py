"""Backbones: one adapter per architecture family, loaded by name or path with `from_pretrained`.

The VAE never touches a HuggingFace model directly; it talks to these adapters, which answer the
few questions the latent paths need (per-layer encoder states, token embeddings, the value
projection of each decoder layer, a decoder step with a key/value cache, the LM head).

Paper scale passes hub names (`gpt2`, `facebook/bart-base`, `bert-base-cased`); sample scale
passes the directories that `create_backbone` wrote with `save_pretrained`. Both go through the
same `from_pretrained` call.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    AutoTokenizer,
    BartConfig,
    BartForConditionalGeneration,
    BertConfig,
    BertModel,
    DynamicCache,
    EncoderDecoderCache,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerBase,
)
from transformers.activations import ACT2FN

from della.models.architectures import CAUSAL, ENCODER, SEQ2SEQ, usable_positions  # noqa: F401 (kinds re-exported)

# GPT-2's `gelu_new` is the tanh approximation of GELU written out as five element-wise ops, each
# saving a [B, T, 4H] tensor for backward; `gelu_pytorch_tanh` is the same function as one fused
# torch op (outputs agree to ~5e-7). Swapped in at load: less activation memory, a faster step.
UNFUSED_GELU, FUSED_GELU = "gelu_new", "gelu_pytorch_tanh"


def special_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, int, int]:
    """(begin, end, pad) ids, whatever the tokenizer family calls them.

    GPT-2 has one `<|endoftext|>` for all three and no pad token; BERT says [CLS]/[SEP]/[PAD].
    """
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if bos is None or eos is None:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} defines no begin/end token")
    return bos, eos, pad


def check_source(name_or_path: str) -> str:
    """A local-looking path that does not exist is an error here, not a confusing hub lookup."""
    looks_local = name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1
    if looks_local and not Path(name_or_path).expanduser().exists():
        from della.pipeline.prefetch import missing_model_message

        raise FileNotFoundError(
            f"{missing_model_message(name_or_path)}; a sample-scale backbone is written by the create_backbone rule"
        )
    return name_or_path


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(check_source(name_or_path))


# --------------------------------------------------------------------------------------------
# Creating small random-init backbones (sample scale), and the published architectures at their
# real sizes (the paper-scale dress rehearsal)
# --------------------------------------------------------------------------------------------
@dataclass
class BackboneSize:
    """The few sizes a small random-init backbone needs (`backbones.<name>.create` in config)."""

    layers: int
    hidden: int
    heads: int
    max_positions: int


def backbone_spec(create: dict) -> BackboneSize | str:
    """A config entry's `create`: a small size, or the name of a published architecture
    (`{architecture: gpt2}`, della/models/architectures.py)."""
    if "architecture" in create:
        return create["architecture"]
    return BackboneSize(**create)


def create_backbone(kind: str, size: BackboneSize | str, tokenizer_dir: Path | None, out_dir: Path, seed: int) -> None:
    """Initialise a backbone of `kind` at random and write it, with its tokenizer, to `out_dir`.

    `size` is a BackboneSize (sample scale: a small model over the tokenizer in `tokenizer_dir`)
    or the hub name of a published architecture (`create_published_backbone`; `tokenizer_dir`
    is not used then)."""
    if isinstance(size, str):
        create_published_backbone(kind, size, out_dir, seed)
        return
    torch.manual_seed(seed)
    tokenizer = load_tokenizer(str(tokenizer_dir))
    bos, eos, pad = special_ids(tokenizer)
    vocab = len(tokenizer)
    ffn = 4 * size.hidden
    if kind == CAUSAL:
        config = GPT2Config(
            vocab_size=vocab,
            n_positions=size.max_positions,
            n_embd=size.hidden,
            n_layer=size.layers,
            n_head=size.heads,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
        )
        model = GPT2LMHeadModel(config)
    elif kind == SEQ2SEQ:
        config = BartConfig(
            vocab_size=vocab,
            max_position_embeddings=size.max_positions,
            d_model=size.hidden,
            encoder_layers=size.layers,
            decoder_layers=size.layers,
            encoder_attention_heads=size.heads,
            decoder_attention_heads=size.heads,
            encoder_ffn_dim=ffn,
            decoder_ffn_dim=ffn,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
            decoder_start_token_id=bos,
            forced_bos_token_id=None,
        )
        model = BartForConditionalGeneration(config)
    elif kind == ENCODER:
        config = BertConfig(
            vocab_size=vocab,
            max_position_embeddings=size.max_positions,
            hidden_size=size.hidden,
            num_hidden_layers=size.layers,
            num_attention_heads=size.heads,
            intermediate_size=ffn,
            pad_token_id=pad,
        )
        model = BertModel(config)
    else:
        raise ValueError(f"unknown backbone kind {kind!r}; expected {CAUSAL}, {SEQ2SEQ} or {ENCODER}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


# The published architectures at their real sizes, random-init (the paper-scale dress rehearsal):
# model_type -> (config class, the model class written, the backbone kinds it can be). RoBERTa
# (roberta-large) is BERTScore's feature model, read by AutoModel; BERT keeps its pooler (Optimus).
def published_classes(model_type: str) -> tuple[type, type, tuple[str, ...]]:
    from transformers import RobertaConfig, RobertaModel

    return {
        "gpt2": (GPT2Config, GPT2LMHeadModel, (CAUSAL,)),
        "bart": (BartConfig, BartForConditionalGeneration, (SEQ2SEQ,)),
        "bert": (BertConfig, BertModel, (ENCODER,)),
        "roberta": (RobertaConfig, RobertaModel, (ENCODER,)),
    }[model_type]


def published_model(name: str, kind: str | None = None) -> nn.Module:
    """A random-init model of the published architecture `name` (della.models.architectures.PUBLISHED),
    the class its hub weights load into, built from that config.json's values. Under
    `with torch.device("meta"):` it allocates nothing (parameter counts, tests). `kind`, when
    given, must be one the architecture can serve as."""
    from della.models.architectures import PUBLISHED

    if name not in PUBLISHED:
        raise ValueError(f"unknown published architecture {name!r}; expected one of {', '.join(PUBLISHED)}")
    architecture = PUBLISHED[name]
    config_class, model_class, kinds = published_classes(architecture.model_type)
    if kind is not None and kind not in kinds:
        raise ValueError(
            f"architecture {name!r} ({architecture.model_type}) cannot be a {kind!r} backbone; "
            f"give kind {' or '.join(kinds)}"
        )
    return model_class(config_class(**architecture.settings))


def create_published_backbone(kind: str, name: str, out_dir: Path, seed: int) -> PreTrainedTokenizerBase:
    """Write a random-init (seeded) model of the published architecture `name` with
    `save_pretrained` (safetensors), and its tokenizer (della.run.tokenizer.published_tokenizer: GPT-2's
    real BPE, stand-ins of the real size and special ids for the others), so that the directory
    loads through the same `from_pretrained` calls as the hub weights. Returns the tokenizer."""
    from della.run.tokenizer import published_tokenizer

    tokenizer = published_tokenizer(name)  # before the weights: a missing BPE file fails fast
    torch.manual_seed(seed)
    model = published_model(name, kind)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    del model
    tokenizer.save_pretrained(out_dir)
    return tokenizer


# --------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------
def _positions(model) -> int:
    return usable_positions(model.config.to_dict())


class Encoder(nn.Module, metaclass=ABCMeta):
    """Anything that turns token ids into one hidden-state tensor per layer."""

    n_layers: int
    hidden_size: int
    max_positions: int  # the longest input its positional embedding takes (della/run/lengths.py)

    @abstractmethod
    def layer_states(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Hidden states after each of the `n_layers` layers, each [B, T, H]."""


class Decoder(nn.Module, metaclass=ABCMeta):
    """A causal decoder (GPT-2, or BART's decoder with cross-attention to a source)."""

    n_layers: int
    hidden_size: int
    n_heads: int
    max_positions: int

    @abstractmethod
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings [B, T, H] as the decoder's first layer receives them."""

    @abstractmethod
    def value_projections(self) -> list[tuple[nn.Module, slice]]:
        """Per decoder layer: the module whose output holds the value vectors, and their slice."""

    @abstractmethod
    def new_cache(self, memory: list[tuple[torch.Tensor, torch.Tensor]] | None):
        """An empty key/value cache, or one holding a memory key/value per layer in front."""

    @abstractmethod
    def step(self, embeds, attention_mask, position_ids, cache, source=None) -> torch.Tensor:
        """Run the decoder over `embeds` [B, T, H] continuing `cache`; returns final states."""

    @abstractmethod
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits [B, T, V] from final hidden states."""

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.n_heads


def _filled_cache(cache, memory):
    """Put one memory key/value per layer (Memory/Optimus injection) at the front of a cache."""
    if memory is not None:
        for layer, (key, value) in enumerate(memory):
            cache.update(key, value, layer)
    return cache


class GPT2Backbone(Decoder, Encoder):
    """GPT-2: the decoder, and with `is_causal=False` the (shared-weight) encoder (paper Sec. 5.2)."""

    def __init__(self, model: GPT2LMHeadModel):
        super().__init__()
        self.model = model
        config = model.config
        self.n_layers, self.hidden_size, self.n_heads = config.n_layer, config.n_embd, config.n_head
        self.max_positions = _positions(model)
        if config.activation_function == UNFUSED_GELU:
            config.activation_function = FUSED_GELU
            for block in model.transformer.h:
                block.mlp.act = ACT2FN[FUSED_GELU]

    def layer_states(self, ids, mask):
        out = self.model.transformer(input_ids=ids, attention_mask=mask, is_causal=False, output_hidden_states=True)
        return list(out.hidden_states[1:])

    def embed(self, ids):
        return self.model.transformer.wte(ids)

    def value_projections(self):
        # GPT-2 computes q, k, v in one Conv1D (c_attn); the values are its last third.
        h = self.hidden_size
        return [(block.attn.c_attn, slice(2 * h, 3 * h)) for block in self.model.transformer.h]

    def new_cache(self, memory):
        return _filled_cache(DynamicCache(config=self.model.config), memory)

    def step(self, embeds, attention_mask, position_ids, cache, source=None):
        out = self.model.transformer(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, cache=cache, use_cache=True
        )
        return out.last_hidden_state

    def logits(self, hidden):
        return self.model.lm_head(hidden)


class BartEncoderView(Encoder):
    def __init__(self, bart: BartForConditionalGeneration):
        super().__init__()
        self.encoder = bart.model.encoder
        self.n_layers, self.hidden_size = bart.config.encoder_layers, bart.config.d_model
        self.max_positions = _positions(bart)

    def layer_states(self, ids, mask):
        out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return list(out.hidden_states[1:])


class BartBackbone(Decoder):
    """BART: its decoder (with cross-attention to the encoded source) as the VAE decoder."""

    def __init__(self, model: BartForConditionalGeneration):
        super().__init__()
        self.model = model
        config = model.config
        self.n_layers, self.hidden_size, self.n_heads = (
            config.decoder_layers,
            config.d_model,
            config.decoder_attention_heads,
        )
        self.max_positions = _positions(model)

    @property
    def encoder(self) -> BartEncoderView:
        """BART's encoder as a VAE encoder (a view: its weights stay registered once, in `model`)."""
        return BartEncoderView(self.model)

    def encode_source(self, ids, mask) -> torch.Tensor:
        return self.model.model.encoder(input_ids=ids, attention_mask=mask).last_hidden_state

    def embed(self, ids):
        return self.model.model.decoder.embed_tokens(ids)  # BART scales by sqrt(d) inside

    def value_projections(self):
        return [(layer.self_attn.v_proj, slice(None)) for layer in self.model.model.decoder.layers]

    def new_cache(self, memory):
        config = self.model.config
        return EncoderDecoderCache(_filled_cache(DynamicCache(config=config), memory), DynamicCache(config=config))

    def step(self, embeds, attention_mask, position_ids, cache, source=None):
        states, source_mask = source
        out = self.model.model.decoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            encoder_hidden_states=states,
            encoder_attention_mask=source_mask,
            cache=cache,
            use_cache=True,
        )
        return out.last_hidden_state

    def logits(self, hidden):
        return self.model.lm_head(hidden) + self.model.final_logits_bias


class BertBackbone(Encoder):
    """A BERT encoder (Optimus' separate posterior network)."""

    def __init__(self, model: BertModel):
        super().__init__()
        self.model = model
        self.n_layers, self.hidden_size = model.config.num_hidden_layers, model.config.hidden_size
        self.max_positions = _positions(model)

    def layer_states(self, ids, mask):
        out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        return list(out.hidden_states[1:])


def load_decoder(name_or_path: str, kind: str) -> Decoder:
    """Load a decoder backbone by hub name or local directory."""
    if kind == CAUSAL:
        return GPT2Backbone(AutoModelForCausalLM.from_pretrained(check_source(name_or_path)))
    if kind == SEQ2SEQ:
        return BartBackbone(AutoModelForSeq2SeqLM.from_pretrained(check_source(name_or_path)))
    raise ValueError(f"backbone {name_or_path!r}: kind {kind!r} cannot decode; use {CAUSAL} or {SEQ2SEQ}")


def load_encoder(name_or_path: str) -> Encoder:
    """Load a separate encoder (BERT) by hub name or local directory."""
    config = AutoConfig.from_pretrained(check_source(name_or_path))
    if config.model_type != "bert":
        raise ValueError(f"encoder backbone {name_or_path!r} is {config.model_type!r}; only BERT is supported")
    return BertBackbone(AutoModel.from_pretrained(name_or_path))
