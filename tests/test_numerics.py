"""TF32 matmuls as a named setting: `tf32` in the config reaches every GPU job as `--tf32`, which
sets PyTorch's float32 precision of CUDA matmuls and convolutions, and what was in effect is
recorded beside the numbers (della/run/numerics.py)."""

from __future__ import annotations

import copy
import re

import pytest
import torch

from della.cli import build_parser
from della.pipeline import overlays
from della.run.numerics import set_tf32, tf32_in_effect

from helpers.workflow import GPU_RULES, snakemake, write_config


@pytest.fixture
def restore_precision():
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision)
    yield
    torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision = before


def test_the_setting_sets_pytorchs_float32_precision_of_cuda_matmuls_and_convolutions(restore_precision):
    set_tf32(True)
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == ("tf32", "tf32")
    set_tf32(False)
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == ("ieee", "ieee")
    # on the CPU it does not apply, and the record says so rather than "on"
    assert tf32_in_effect(torch.device("cpu")) == "does not apply (cpu)"
    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        major, _ = torch.cuda.get_device_capability(device)
        assert tf32_in_effect(device) == ("off" if major >= 8 else tf32_in_effect(device))
        assert major >= 8 or tf32_in_effect(device).startswith("does not apply")


def test_train_generate_and_evaluate_take_it_and_default_to_on():
    parser = build_parser()
    common = ["--data", "d", "--run", "r", "--seed", "0", "--settings", "{}"]
    extra = {"train": [], "generate": ["--out", "o"], "evaluate": ["--samples", "s", "--out", "o"]}
    for command in GPU_RULES:
        assert parser.parse_args([command, *common, *extra[command]]).tf32 == "on"
        assert parser.parse_args([command, *common, *extra[command], "--tf32", "off"]).tf32 == "off"


def test_every_gpu_job_gets_the_configs_setting(tmp_path):
    """A dry run of one run with `tf32: false`: train, generate and evaluate are called with
    `--tf32 off` (a param of each, so changing it reruns them)."""
    config = copy.deepcopy(overlays.load("config/config.yaml"))
    config["tf32"] = False
    config_file = write_config(tmp_path / "config.yaml", config)
    result = snakemake(tmp_path, config_file, "-n", "-p", targets=["runs/yelp/della/seed0/metrics.json"])
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    calls = re.findall(r"-m della (train|generate|evaluate) [^\n]*?--tf32 (on|off)", output)
    assert sorted(calls) == [(rule, "off") for rule in sorted(GPU_RULES)], calls
