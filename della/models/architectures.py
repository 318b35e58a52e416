"""The published architectures the paper scale loads by hub name, as data.

What each hub model's `config.json` says about its shape (the Hugging Face hub files of `gpt2`,
`gpt2-medium`, `gpt2-large`, `facebook/bart-base`, `bert-base-cased`, `roberta-large`), so that
without a network the workflow can
  * check at start-up that every sequence fits the positions of the model that reads it
    (della/run/lengths.py), before any weights are downloaded, and
  * build the same architectures with random weights (`create_backbone` with
    `create: {architecture: gpt2}`) for the paper-scale dress rehearsal (config/rehearsal.yaml),
    loaded afterwards through the same `from_pretrained` call as the pretrained weights.
Plain data, importable without torch (the workflow imports it at start-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Backbone kinds as they appear in the config (`backbones.<name>.kind`); here, without torch, so
# that the workflow's start-up checks (della/run/lengths.py) share them with della/models/backbone.py.
CAUSAL = "causal"  # GPT-2 family: shared encoder/decoder weights (encoder runs bidirectionally)
SEQ2SEQ = "seq2seq"  # BART family: separate encoder and decoder
ENCODER = "encoder"  # BERT family: encoder only (Optimus' posterior network)


@dataclass(frozen=True)
class Architecture:
    model_type: str  # transformers' model_type: which config class `settings` are for
    parameters: int  # as published (unique tensors: tied LM heads once; BERT/RoBERTa with poolers)
    settings: dict = field(default_factory=dict)  # config.json keys that differ from the class defaults

    @property
    def max_positions(self) -> int:
        return usable_positions({"model_type": self.model_type, **self.settings})


def usable_positions(config: dict) -> int | None:
    """Token positions a model of this config.json can read. RoBERTa's position ids start after
    its padding id (padding_idx + 1 = 2 of its 514 embeddings are never used), BART's offset of 2
    is inside its embedding (1,026 rows for 1,024 positions)."""
    limit = config.get("n_positions", config.get("max_position_embeddings"))
    if limit is None:
        return None
    if config.get("model_type") == "roberta":
        limit -= config.get("pad_token_id", 1) + 1
    return limit


_GPT2 = {"vocab_size": 50257, "n_positions": 1024, "bos_token_id": 50256, "eos_token_id": 50256}
_BART_BASE_TOKENS = {"vocab_size": 50265, "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2}

PUBLISHED: dict[str, Architecture] = {
    "gpt2": Architecture("gpt2", 124_439_808, {**_GPT2, "n_embd": 768, "n_layer": 12, "n_head": 12}),
    "gpt2-medium": Architecture("gpt2", 354_823_168, {**_GPT2, "n_embd": 1024, "n_layer": 24, "n_head": 16}),
    "gpt2-large": Architecture("gpt2", 774_030_080, {**_GPT2, "n_embd": 1280, "n_layer": 36, "n_head": 20}),
    "facebook/bart-base": Architecture(
        "bart",
        139_420_416,
        {
            **_BART_BASE_TOKENS,
            "d_model": 768,
            "max_position_embeddings": 1024,
            "encoder_layers": 6,
            "decoder_layers": 6,
            "encoder_attention_heads": 12,
            "decoder_attention_heads": 12,
            "encoder_ffn_dim": 3072,
            "decoder_ffn_dim": 3072,
            "activation_function": "gelu",
            "dropout": 0.1,
            "attention_dropout": 0.1,
            "activation_dropout": 0.1,
            "decoder_start_token_id": 2,
            "forced_bos_token_id": 0,
            "forced_eos_token_id": 2,
            "scale_embedding": False,
            "add_final_layer_norm": False,
            "normalize_before": False,
        },
    ),
    "bert-base-cased": Architecture(
        "bert",
        108_310_272,
        {
            "vocab_size": 28996,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "type_vocab_size": 2,
            "pad_token_id": 0,
        },
    ),
    "roberta-large": Architecture(
        "roberta",
        355_359_744,
        {
            **_BART_BASE_TOKENS,
            "hidden_size": 1024,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
            "intermediate_size": 4096,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "layer_norm_eps": 1e-5,
        },
    ),
}
