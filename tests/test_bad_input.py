"""Bad input a user can give the pipeline, each met with an error that names what is wrong, before
any work is lost: config keys and types (the JSON schema), a latent layer range or latent size the
backbone cannot take, and an empty dataset. (Other faults: docs/reliability.md.)"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
from jsonschema.exceptions import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from della.data import preprocess as pp
from della.data import raw
from della.data.download import DownloadError, check_data_root
from della.models.vae import TransformerVAE, VAEConfig
from della.pipeline import overlays
from della.pipeline.config_errors import schema_error_message

from helpers import ROOT
from helpers.data import SAMPLE, extracted_sample, tar_gz
from helpers.workflow import snakemake, write_config

SCHEMA = str(ROOT / "config" / "schema.yaml")
SAMPLE_CONFIG = overlays.load("config/config.yaml")


@pytest.mark.parametrize(
    "where, change, named",
    [
        ("top level", lambda c: c.update(seed=[0]), "'seed'"),
        ("model key", lambda c: c["models"]["della"].update(latnet_size=32), "'latnet_size'"),
        ("model type", lambda c: c["models"]["della"].update(latent_size="32"), "'32' is not of type 'integer'"),
        ("latent size 0", lambda c: c["models"]["della"].update(latent_size=0), "0 is less than the minimum of 1"),
        (
            "layer range",
            lambda c: c["models"]["della"].update(latent_layers={"start": 0, "end": None}),
            "0 is less than the minimum of 1",
        ),
        ("decoding", lambda c: c["generation"]["decoding"].update(strategy="nucleus"), "'nucleus' is not one of"),
        (
            "bad_labels",
            lambda c: c["datasets"]["yelp"]["preprocess"].update(bad_labels="ignore"),
            "'ignore' is not one of",
        ),
    ],
)
def test_the_schema_names_a_wrong_key_or_type(where, change, named):
    config = copy.deepcopy(SAMPLE_CONFIG)
    validate(copy.deepcopy(config), SCHEMA)  # the shipped config itself is valid
    change(config)
    with pytest.raises(WorkflowError, match=named):
        validate(config, SCHEMA)


def schema_message(change) -> str:
    """What the workflow says of the sample config after ``change``: Snakemake's validation
    failing, then della.pipeline.config_errors, as workflow/rules/common.smk does."""
    config = copy.deepcopy(SAMPLE_CONFIG)
    change(config)
    with pytest.raises(WorkflowError) as failed:
        validate(config, SCHEMA)
    assert isinstance(failed.value.__context__, ValidationError)
    return schema_error_message(failed.value.__context__)


@pytest.mark.parametrize(
    "change, first_line",
    [
        (
            lambda c: c["datasets"]["yelp"].update(colour=1),
            "config datasets.yelp: unknown key 'colour' (allowed there: backbone, decoding, max_source_tokens, "
            "max_target_tokens, preprocess, source)",
        ),
        (
            lambda c: c.update(seed=[0], zz=1),
            "config (top level): unknown keys 'seed', 'zz' (allowed there: backbone_init, backbone_seed,",
        ),
        (
            lambda c: c["datasets"]["snli"]["source"]["files"][0].update(sha=None),
            "config datasets.snli.source.files[0]: "
            "unknown key 'sha' (allowed there: archive, extract, members, name, sha256, url)",
        ),
        (
            lambda c: c["models"]["della"].update(latent_size="32"),
            "config models.della.latent_size: '32' is not of type",
        ),
        (
            lambda c: c["datasets"]["writingprompts"]["preprocess"].update(max_length={"training": 9}),
            "config datasets.writingprompts.preprocess.max_length: unknown key 'training' "
            "(allowed there: test, train, valid)",
        ),
    ],
)
def test_a_schema_error_names_the_key_path_and_key_first(change, first_line):
    message = schema_message(change)
    assert message.splitlines()[0].startswith(first_line), message
    assert len(message.splitlines()) == 2 and message.splitlines()[1].startswith("(config/schema.yaml rule ")


def test_the_workflow_reports_a_schema_error_key_first(tmp_path):
    config = copy.deepcopy(SAMPLE_CONFIG)
    config["datasets"]["yelp"]["colour"] = 1
    result = snakemake(tmp_path, write_config(tmp_path / "bad.yaml", config), "-n")
    lines = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode != 0
    assert lines[0].startswith("WorkflowError in file") and "common.smk" in lines[0], lines[:3]  # Snakemake's
    assert lines[1].startswith("config datasets.yelp: unknown key 'colour'"), lines[:3]
    assert len(lines) < 10, lines  # not jsonschema's dump of the schema and the config


def vae(tiny_backbones, **overrides) -> TransformerVAE:
    config = VAEConfig(
        path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=8
    )
    return TransformerVAE(VAEConfig(**{**config.__dict__, **overrides}))


@pytest.mark.parametrize("latent_layers", [{"start": 1, "end": 3}, {"start": 3, "end": None}, {"start": 2, "end": 1}])
def test_a_layer_range_the_backbone_cannot_take_is_named(tiny_backbones, latent_layers):
    # the tiny backbone has 2 layers
    with pytest.raises(ValueError, match=r"latent_layers .* is not a range within the decoder's 2 layers"):
        vae(tiny_backbones, latent_layers=latent_layers)


def test_a_latent_size_the_model_cannot_take_is_named(tiny_backbones):
    with pytest.raises(ValueError, match="latent_size must be a positive integer, got 0"):
        vae(tiny_backbones, latent_size=0)


def test_an_empty_dataset_is_an_error_and_writes_nothing(tmp_path):
    members = {
        f"./simple-examples/data/ptb.{split}.txt": b"" if split == "train" else b" a b c \n"
        for split in ("train", "valid", "test")
    }
    tar_gz(tmp_path / "raw" / raw.PTB_ARCHIVE, members)
    with pytest.raises(ValueError, match="ptb: split train is empty after preprocessing"):
        pp.preprocess_dataset(
            "ptb", tmp_path / "raw", tmp_path / "out", {"format": "ptb_mikolov", "task": "unconditional"}
        )
    assert not (tmp_path / "out" / "stats.json").exists()


# --- data_root, checked when the workflow starts ------------------------------------------------------


def dry_run_with_data_root(tmp_path: Path, data_root: Path, *targets: str) -> str:
    """``snakemake -n`` of the sample config reading ``data_root``: its output if it failed."""
    config = {**copy.deepcopy(SAMPLE_CONFIG), "data_root": str(data_root)}
    (tmp_path / "work").mkdir(exist_ok=True)
    result = snakemake(
        tmp_path / "work", write_config(tmp_path / "config.yaml", config), "-n", "--quiet", "rules", targets=targets
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def test_the_dry_run_checks_data_root(tmp_path):
    """Wired into the workflow's start-up: a missing data_root stops `snakemake -n` with one line,
    an extracted one resolves (the messages of every case: the test below)."""
    missing = tmp_path / "no-such-folder"
    output = dry_run_with_data_root(tmp_path, missing, "data/snli/stats.json")
    assert any(line.strip().startswith(f"data_root {missing} is not a directory") for line in output.splitlines()), (
        output
    )
    root = extracted_sample(tmp_path / "root")
    assert dry_run_with_data_root(tmp_path, root, "data/snli/stats.json") == ""


def test_data_root_needs_only_the_datasets_the_targets_need(tmp_path):
    """With SNLI alone under data_root, SNLI's own targets run (the others are named in a
    warning); the default target, which needs every dataset, stops naming a missing one."""
    root = extracted_sample(tmp_path / "root")
    for other in {p.name for p in root.iterdir()} - {"snli"}:
        shutil.rmtree(root / other)
    config = {**copy.deepcopy(SAMPLE_CONFIG), "data_root": str(root)}
    (tmp_path / "work").mkdir()
    config_file = write_config(tmp_path / "config.yaml", config)
    for targets in (["data/snli/stats.json"], ["runs/snli/della/seed0/metrics.json", "raw/snli/download.json"]):
        result = snakemake(tmp_path / "work", config_file, "-n", "--quiet", "rules", targets=targets)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        output = result.stdout + result.stderr
        assert "not needed by the requested targets, so not stopping: data_root " in output, output[-2000:]
        assert "has no folder yelp/" in output
    output = dry_run_with_data_root(tmp_path, root)
    assert f"data_root {root} has no folder " in output and "not needed" not in output


def test_a_dataset_or_file_missing_from_data_root_is_named_in_one_line(tmp_path):
    root = extracted_sample(tmp_path / "root")
    sources = {name: section["source"] for name, section in SAMPLE_CONFIG["datasets"].items()}
    check_data_root(root, sources)
    check_data_root(SAMPLE, sources)  # the archives
    valid = root / "ptb" / "simple-examples" / "data" / "ptb.valid.txt"
    valid.rename(root / "ptb" / "elsewhere.txt")
    with pytest.raises(
        DownloadError,
        match=rf"^data_root, dataset ptb: {valid}: not found, and no "
        rf"{root / 'ptb' / raw.PTB_ARCHIVE}: the other members",
    ):
        check_data_root(root, sources)
    shutil.rmtree(root / "ptb")
    with pytest.raises(
        DownloadError,
        match=rf"^data_root {root} has no folder ptb/ for dataset ptb \(it must hold "
        rf"{raw.PTB_ARCHIVE}, or their extracted files",
    ):
        check_data_root(root, sources)
    with pytest.raises(DownloadError, match=rf"^data_root {root / 'nope'} is not a directory"):
        check_data_root(root / "nope", sources)
