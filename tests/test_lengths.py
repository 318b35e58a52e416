"""Every sequence fits its model's positions (della/run/lengths.py): the lengths it computes are the
ones the collator builds, a config that cannot fit is refused in one line at start-up and by the
collator, and the paper config fits the published architectures."""

from __future__ import annotations

import copy

import pytest
from transformers import AutoConfig, BartConfig, BertConfig, GPT2Config, RobertaConfig

from della.models.architectures import PUBLISHED, usable_positions
from della.models.backbone import load_tokenizer
from della.models.vae import TransformerVAE, VAEConfig
from della.pipeline import overlays
from della.run.batches import Collator
from della.run.lengths import SequenceTooLong, check_run_lengths, position_limit, sequence_lengths

from helpers import ROOT
from helpers.workflow import snakemake, write_config

PAPER = overlays.load("config/paper.yaml")
SAMPLE = overlays.load("config/config.yaml")
LONG_TEXT = " ".join(["the food was great and the staff friendly"] * 40)  # far past every limit below


def all_runs(config: dict) -> list[tuple[str, str]]:
    return sorted(
        {
            (d, m)
            for spec in config["experiments"].values()
            for d in spec["datasets"]
            for m in spec["models"]
            if m in config["models"]
        }
    )


@pytest.mark.parametrize("kind,conditional", [("causal", False), ("causal", True), ("seq2seq", True)])
def test_the_computed_lengths_are_the_collated_widths_of_the_longest_inputs(tiny_backbones, kind, conditional):
    """The formula and the collator agree: texts longer than every limit give tensors exactly as
    wide as `sequence_lengths` says (so a limit that passes the check cannot be exceeded)."""
    tokenizer = load_tokenizer(str(tiny_backbones["tokenizer"]))
    collator = Collator(tokenizer, tokenizer, kind, conditional, max_source_tokens=21, max_target_tokens=37)
    records = [{"source": LONG_TEXT, "target": LONG_TEXT} if conditional else {"text": LONG_TEXT}] * 2
    batch = collator(records)
    widths = {"posterior": batch["x_ids"].shape[1], "decoder": batch["dec_ids"].shape[1]}
    if conditional:
        widths["condition"] = batch["c_ids"].shape[1]
    if kind == "seq2seq":
        widths["source"] = batch["src_ids"].shape[1]
    seqs = {s.role: s.length for s in collator.sequences(max_new_tokens=5)}
    assert {role: seqs[role] for role in widths} == widths
    prompt = len(collator.prompt(LONG_TEXT if conditional else None))
    assert seqs["generation"] == prompt + 5


def test_a_collator_whose_sequences_exceed_the_positions_is_refused():
    seqs = sequence_lengths("seq2seq", True, 1024, 256)
    assert max(s.length for s in seqs) == 1026
    with pytest.raises(SequenceTooLong, match=r"max_source_tokens .* 1026 tokens, 2 more than the 1024 positions"):
        Collator.__post_init__(
            type(
                "C",
                (),
                {  # the check alone, without tokenizers
                    "decoder_kind": "seq2seq",
                    "decoder_positions": 1024,
                    "encoder_positions": 1024,
                    "sequences": lambda self: seqs,
                    "decoder_tokenizer": None,
                    "encoder_tokenizer": None,
                    "decoder_start": None,
                },
            )()
        )


def test_the_loaded_models_positions_are_checked(tiny_backbones):
    """A target of the positions minus one (+ <s> </s> for the encoder) is refused when the model
    is built, naming the key; one token less is accepted."""
    positions = AutoConfig.from_pretrained(tiny_backbones["causal"]).n_positions
    config = VAEConfig(
        path="della",
        decoder=str(tiny_backbones["causal"]),
        decoder_kind="causal",
        conditional=False,
        latent_size=8,
        max_target_tokens=positions - 1,
    )
    with pytest.raises(
        SequenceTooLong,
        match=rf"max_target_tokens .* {positions + 1} tokens, 1 more than the "
        rf"{positions} positions",
    ):
        TransformerVAE(config)
    TransformerVAE(VAEConfig(**{**config.__dict__, "max_target_tokens": positions - 2}))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_positions_are_what_transformers_reads_from_their_configs(name):
    arch = PUBLISHED[name]
    classes = {"gpt2": GPT2Config, "bart": BartConfig, "bert": BertConfig, "roberta": RobertaConfig}
    built = classes[arch.model_type](**arch.settings)
    assert usable_positions(built.to_dict()) == arch.max_positions
    assert arch.max_positions == {"roberta": 512, "bert": 512}.get(arch.model_type, 1024)


def test_a_local_backbone_directory_tells_its_positions(tiny_backbones):
    written = AutoConfig.from_pretrained(tiny_backbones["seq2seq"]).max_position_embeddings
    assert position_limit({"name_or_path": str(tiny_backbones["seq2seq"])}) == written
    assert position_limit({"name_or_path": "some-org/unknown-model"}) is None


@pytest.mark.parametrize("config", [PAPER, SAMPLE], ids=["paper", "sample"])
def test_the_shipped_configs_fit(config):
    check_run_lengths(config, all_runs(config), ROOT)


@pytest.mark.parametrize(
    "dataset,key,value,named",
    [
        ("cnn_dailymail", "max_source_tokens", 1024, "1026 tokens, 2 more than the 1024 positions"),
        ("writingprompts", "max_target_tokens", 960, "1026 tokens, 2 more than the 1024 positions"),
    ],
)
def test_the_paper_lengths_that_overran_are_refused(dataset, key, value, named):
    config = copy.deepcopy(PAPER)
    config["datasets"][dataset][key] = value
    with pytest.raises(SequenceTooLong, match=rf"^datasets\.{dataset} \(model \w+\): .*{named}"):
        check_run_lengths(config, all_runs(config), ROOT)


def test_optimus_bert_encoder_limit_is_checked():
    config = copy.deepcopy(PAPER)
    config["datasets"]["yelp"]["max_target_tokens"] = 600  # fits GPT-2's 1,024, not BERT's 512
    with pytest.raises(
        SequenceTooLong,
        match=r"model optimus.*602 tokens, 90 more than the 512 positions of "
        r"encoder bert-base-cased",
    ):
        check_run_lengths(config, all_runs(config), ROOT)


def test_the_workflow_refuses_a_length_past_the_positions_in_one_line(tmp_path):
    config = copy.deepcopy(SAMPLE)
    config["datasets"]["cnn_dailymail"]["max_source_tokens"] = 255  # the sample BART has 256 positions
    result = snakemake(tmp_path, write_config(tmp_path / "long.yaml", config), "-n")
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert lines[1].startswith("datasets.cnn_dailymail (model ") and "lower max_source_tokens by 1" in lines[1], lines[
        :3
    ]
