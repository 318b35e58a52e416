"""Training runs in tests: settings, the train command's arguments, checkpoints and weights compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from della.models.vae import TransformerVAE, VAEConfig
from della.run.train import TrainSettings

from helpers import ROOT

SETTINGS = TrainSettings(
    batch_size=4, learning_rate=3e-3, max_steps=60, warmup_steps=5, log_every=3, checkpoint_every=7, beta_cycles=2
)


def config(dirs, path="della", decoder=None) -> VAEConfig:
    return VAEConfig(
        path=path, decoder=str(decoder or dirs["causal"]), decoder_kind="causal", conditional=False, latent_size=8
    )


def cli_args(dirs, settings: TrainSettings, train_file: Path, run: Path, seed: int = 0) -> list[str]:
    """The arguments the workflow's train rule passes (its --settings JSON, see VAEConfig.from_settings)."""
    rule_settings = {
        "model": {"path": "della", "latent_size": 8, "pooling": "first_token", "first_prior": "standard"},
        "decoder": {"kind": "causal", "name_or_path": str(dirs["causal"])},
        "conditional": False,
        "max_source_tokens": 0,
        "max_target_tokens": 64,
        "training": asdict(settings),
    }
    return [
        "train",
        "--data",
        str(train_file.parent),
        "--run",
        str(run),
        "--seed",
        str(seed),
        "--threads",
        str(torch.get_num_threads()),
        "--settings",
        json.dumps(rule_settings),
    ]


def start_training(dirs, train_file: Path, run: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "della.cli", *cli_args(dirs, SETTINGS, train_file, run)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(process: subprocess.Popen, run: Path) -> None:
    checkpoint = run / "checkpoints" / "last.pt"
    while not checkpoint.exists():
        assert process.poll() is None, f"training ended before its first checkpoint:\n{process.stderr.read()}"
        time.sleep(0.02)


def weights(model_dir: Path) -> dict[str, torch.Tensor]:
    return TransformerVAE.load(model_dir).state_dict()


def logged_metrics(run: Path) -> list[dict]:
    """The training log without its wall-clock field."""
    rows = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]


def assert_same_run(a: Path, b: Path) -> None:
    wa, wb = weights(a / "model"), weights(b / "model")
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    assert logged_metrics(a) == logged_metrics(b)


def dropout_free_backbone(dirs, out: Path) -> Path:
    """The tiny causal backbone without dropout, so that a training step is a function of its batch."""
    out.mkdir()
    for file in dirs["causal"].iterdir():
        (out / file.name).write_bytes(file.read_bytes())
    backbone = json.loads((out / "config.json").read_text())
    backbone.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    (out / "config.json").write_text(json.dumps(backbone))
    return out
