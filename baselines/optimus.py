"""Optimus (Li et al. 2020a): a separate BERT encoder, and z injected as Embedding + Memory together.

The BERT encoder is a config setting of the model entry (`encoder_backbone: bert`, `pooling:
bert_pooler`), not code here; the KL threshold and cyclical annealing are training settings any
model can use. What is here: the path, and loading a pre-trained Optimus VAE (the paper
fine-tunes those) from a checkpoint in the official code's format (github ChunyuanLI/Optimus,
`run_lm_vae_training.py: save_checkpoint`):

    <init_from>/checkpoint-encoder-<step>/pytorch_model.bin   BertForLatentConnector
        embeddings.*, encoder.*, pooler.*       BERT, as in a BertModel
        linear.weight [2P, H_enc]              pooled output -> (mean, logvar), no bias
    <init_from>/checkpoint-decoder-<step>/pytorch_model.bin   GPT2ForLatentConnector
        transformer.*, lm_head.weight           GPT-2, as in a GPT2LMHeadModel
        transformer.linear.weight [L*H, P]      z -> one memory vector per layer (key = value)
        transformer.linear_emb.weight [H, P]    z -> added to every input embedding
"""

from __future__ import annotations

from pathlib import Path

import torch

from baselines.embedding import SCALE_NONE, LatentToEmbedding
from baselines.memory import LatentToMemory
from della.models.latent import LatentPath, register_latent_path

OPTIMUS_WEIGHTS = "pytorch_model.bin"
# Buffers older GPT-2 implementations save (the causal mask); transformers 5 rebuilds them.
OLD_GPT2_BUFFERS = (".attn.bias", ".attn.masked_bias")


@register_latent_path("optimus")
class OptimusPath(LatentPath):
    def __init__(self, decoder, latent_size: int, n_groups: int, embedding_scale: str = SCALE_NONE):
        super().__init__(decoder, latent_size, n_groups)
        size = latent_size * n_groups
        self.to_embedding = LatentToEmbedding(decoder, size, embedding_scale)
        self.to_memory = LatentToMemory(size, self.n_layers, self.n_heads, self.head_dim)

    def embed(self, embeds, z):
        return self.to_embedding(embeds, z)

    def memory(self, z):
        return self.to_memory(z)


def checkpoint_part(directory: Path, part: str) -> Path:
    """The one `checkpoint-<part>-<step>` (or `<part>`) folder of an Optimus checkpoint."""
    found = sorted(directory.glob(f"checkpoint-{part}-*")) + [p for p in [directory / part] if p.is_dir()]
    if len(found) != 1:
        raise FileNotFoundError(
            f"Optimus checkpoint {directory}: expected one checkpoint-{part}-<step>/ folder, "
            f"found {[p.name for p in found]}"
        )
    weights = found[0] / OPTIMUS_WEIGHTS
    if not weights.is_file():
        raise FileNotFoundError(f"Optimus checkpoint {found[0]}: no {OPTIMUS_WEIGHTS}")
    return weights


def _load_into(module: torch.nn.Module, state: dict, source: Path) -> None:
    """Copy `state` into `module`; every parameter must come from the checkpoint, shapes must match."""
    unexpected = [k for k in state if k not in module.state_dict()]
    if unexpected:
        raise ValueError(f"{source}: parameters the model does not have: {unexpected[:5]}")
    try:
        missing, _ = module.load_state_dict(state, strict=False)
    except RuntimeError as error:  # size mismatches: a different backbone size, vocabulary or latent size
        raise ValueError(f"{source}: does not fit the model's backbone: {error}") from error
    missing_parameters = [k for k in missing if k in dict(module.named_parameters())]
    if missing_parameters:
        raise ValueError(f"{source}: parameters missing from the checkpoint: {missing_parameters[:5]}")


def _take(state: dict, key: str, source: Path) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"{source}: no {key!r}; is this an Optimus checkpoint?")
    return state.pop(key)


@torch.no_grad()
def load_optimus_checkpoint(model, directory: Path) -> None:
    """Initialise an Optimus-path TransformerVAE from an official Optimus checkpoint (see above).

    Mapping: BERT -> the separate encoder; GPT-2 -> the decoder; `linear_emb` -> the Embedding
    projection (divided by its fixed scale s, so that the added vector is Optimus' whatever
    `embedding_scale` is); `linear` -> the Memory projection, its vector for layer l copied to both the
    key and the value of layer l (Optimus uses one vector as both; here they are two parameters
    that start equal); the encoder's `linear` -> the posterior network's columns that read the
    text representation (zero bias; the columns reading h_0 = 0 are zeroed).
    """
    if (
        not isinstance(model.path, OptimusPath)
        or model.separate_encoder is None
        or model.config.pooling != "bert_pooler"
    ):
        raise ValueError(
            "an Optimus checkpoint initialises `path: optimus` with a BERT encoder (encoder_backbone) and "
            f"`pooling: bert_pooler` (Optimus reads BERT's pooled output); got path {model.config.path!r}, "
            f"pooling {model.config.pooling!r}"
        )
    directory = Path(directory)
    encoder_file, decoder_file = checkpoint_part(directory, "encoder"), checkpoint_part(directory, "decoder")
    encoder_state = torch.load(encoder_file, map_location="cpu", weights_only=True)
    decoder_state = torch.load(decoder_file, map_location="cpu", weights_only=True)
    to_posterior = _take(encoder_state, "linear.weight", encoder_file)  # [2P, H_enc]
    memory = _take(decoder_state, "transformer.linear.weight", decoder_file)  # [L*H, P]
    embedding = _take(decoder_state, "transformer.linear_emb.weight", decoder_file)  # [H, P]
    decoder_state = {k: v for k, v in decoder_state.items() if not k.endswith(OLD_GPT2_BUFFERS)}
    _load_into(model.separate_encoder.model, encoder_state, encoder_file)
    _load_into(model.decoder.model, decoder_state, decoder_file)

    path, p, h = model.path, model.latent_size, model.decoder.hidden_size
    n_layers = model.decoder.n_layers
    if embedding.shape != path.to_embedding.proj.weight.shape or memory.shape != (n_layers * h, p):
        raise ValueError(
            f"{decoder_file}: latent connector of shape linear {tuple(memory.shape)}, linear_emb "
            f"{tuple(embedding.shape)}; the model needs {(n_layers * h, p)} and "
            f"{tuple(path.to_embedding.proj.weight.shape)}"
        )
    # Optimus adds linear_emb z; with embedding_scale: token ours adds s W z, so W = linear_emb / s.
    path.to_embedding.proj.weight.copy_(embedding / path.to_embedding.scale)
    per_layer = memory.view(n_layers, 1, h, p).expand(n_layers, 2, h, p)  # [L, key|value, H, P]
    path.to_memory.proj.weight.copy_(per_layer.reshape(n_layers * 2 * h, p))

    posterior = model.chain.posterior_net[0]
    rep_size = model.encoder.hidden_size
    if to_posterior.shape != (2 * p, rep_size):
        raise ValueError(
            f"{encoder_file}: linear.weight is {tuple(to_posterior.shape)}, the model needs {(2 * p, rep_size)}"
        )
    posterior.weight[:, :p] = 0.0  # reads h_0, which is zero for the only group
    posterior.weight[:, p : p + rep_size] = to_posterior
    posterior.bias.zero_()
