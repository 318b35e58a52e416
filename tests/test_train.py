"""The shared training loop: learns, anneals, resumes exactly, refuses non-finite losses."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from conftest import tiny_corpus
from della.train import TrainSettings, beta_at, train
from della.vae import TransformerVAE, VAEConfig

SETTINGS = TrainSettings(batch_size=8, learning_rate=3e-3, max_steps=40, warmup_steps=2, log_every=5,
                         checkpoint_every=10, beta_cycles=2)


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(64)))
    return path


def config(dirs, path="della"):
    return VAEConfig(path=path, decoder=str(dirs["causal"]), decoder_kind="causal", conditional=False, latent_size=8)


def test_cyclical_beta_schedule():
    s = TrainSettings(batch_size=1, learning_rate=1.0, max_steps=100, beta_cycles=2, beta_ratio_zero=0.2,
                      beta_ratio_increase=0.4, beta_max=1.0)
    cycle = 50
    assert beta_at(0, s) == 0.0 and beta_at(int(0.2 * cycle) - 1, s) == 0.0
    assert beta_at(int(0.4 * cycle), s) == pytest.approx(0.5)  # half way up the ramp
    assert beta_at(int(0.6 * cycle), s) == pytest.approx(1.0) and beta_at(cycle - 1, s) == 1.0
    assert beta_at(cycle, s) == 0.0  # the next cycle starts over
    assert beta_at(7, replace(s, beta_schedule="constant", beta_max=0.3)) == 0.3


def test_training_reduces_the_loss(tiny_backbones, train_file, tmp_path):
    train(config(tiny_backbones), replace(SETTINGS, beta_schedule="constant"), train_file, tmp_path / "run", seed=0)
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == SETTINGS.max_steps
    assert log[-1]["reconstruction"] < log[0]["reconstruction"]
    assert len(log[-1]["kl_per_group"]) == 2  # one KL term per layer for DELLA


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_backbones, train_file, tmp_path):
    straight = train(config(tiny_backbones), SETTINGS, train_file, tmp_path / "a", seed=0)
    # stop half way through an epoch (as if preempted after a checkpoint), then rerun to the end
    assert train(config(tiny_backbones), SETTINGS, train_file, tmp_path / "b", seed=0, stop_after_steps=13) is None
    state = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == 13
    resumed = train(config(tiny_backbones), SETTINGS, train_file, tmp_path / "b", seed=0)
    a, b = TransformerVAE.load(straight).state_dict(), TransformerVAE.load(resumed).state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_non_finite_loss_stops_with_the_step_named(tiny_backbones, train_file, tmp_path):
    bad = replace(SETTINGS, learning_rate=float("inf"), max_steps=5)
    with pytest.raises(FloatingPointError, match=r"step \d"):
        train(config(tiny_backbones), bad, train_file, tmp_path / "run", seed=0)
    assert not (tmp_path / "run" / "model").exists()
