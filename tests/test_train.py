"""The shared training loop: learns, anneals, resumes exactly, refuses non-finite losses."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from della.models.vae import TransformerVAE, VAEConfig
from della.run.train import EpochSampler, TrainSettings, beta_at, train

from conftest import tiny_corpus

SETTINGS = TrainSettings(
    batch_size=8, learning_rate=3e-3, max_steps=40, warmup_steps=2, log_every=5, checkpoint_every=10, beta_cycles=2
)


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(64)))
    return path


def config(dirs, path="della"):
    return VAEConfig(path=path, decoder=str(dirs["causal"]), decoder_kind="causal", conditional=False, latent_size=8)


def test_cyclical_beta_schedule():
    s = TrainSettings(
        batch_size=1,
        learning_rate=1.0,
        max_steps=100,
        beta_cycles=2,
        beta_ratio_zero=0.2,
        beta_ratio_increase=0.4,
        beta_max=1.0,
    )
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


@pytest.mark.parametrize("length_grouped_batches", [None, 2])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    tiny_backbones, train_file, tmp_path, length_grouped_batches
):
    settings = replace(SETTINGS, length_grouped_batches=length_grouped_batches)
    straight = train(config(tiny_backbones), settings, train_file, tmp_path / "a", seed=0)
    # stop half way through an epoch (as if preempted after a checkpoint), then rerun to the end
    assert train(config(tiny_backbones), settings, train_file, tmp_path / "b", seed=0, stop_after_steps=13) is None
    state = torch.load(tmp_path / "b" / "checkpoints" / "last.pt", weights_only=False)
    assert state["step"] == 13
    resumed = train(config(tiny_backbones), settings, train_file, tmp_path / "b", seed=0)
    a, b = TransformerVAE.load(straight).state_dict(), TransformerVAE.load(resumed).state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def _epoch_batches(sampler: EpochSampler, n_batches: int) -> list[list[int]]:
    return [sampler.next_indices() for _ in range(n_batches)]


def test_length_grouped_batches_cover_each_epoch_once_with_less_padding():
    import random

    n, batch = 1003, 10  # a short last batch, dropped in both modes
    lengths = [random.Random(i).randint(1, 200) for i in range(n)]
    plain = EpochSampler(n, batch, seed=3)
    grouped = EpochSampler(n, batch, seed=3, lengths=lengths, group_batches=5)
    epoch_plain, epoch_grouped = _epoch_batches(plain, n // batch), _epoch_batches(grouped, n // batch)
    for epoch in (epoch_plain, epoch_grouped):
        seen = [i for b in epoch for i in b]
        assert len(seen) == len(set(seen)) == n - n % batch and all(len(b) == batch for b in epoch)

    def padded(epoch):  # tokens a batch padded to its longest text holds
        return sum(batch * max(lengths[i] for i in b) for b in epoch)

    assert padded(epoch_grouped) < 0.8 * padded(epoch_plain)
    # the grouped order is not sorted overall: the batches are shuffled
    maxima = [max(lengths[i] for i in b) for b in epoch_grouped]
    assert maxima != sorted(maxima) and maxima != sorted(maxima, reverse=True)
    assert _epoch_batches(grouped, 1) != _epoch_batches(
        EpochSampler(n, batch, seed=3, lengths=lengths, group_batches=5), 1
    )  # a new epoch, a new order
    with pytest.raises(ValueError, match="length_grouped_batches"):
        TrainSettings(batch_size=1, learning_rate=1.0, max_steps=1, length_grouped_batches=0)


def test_non_finite_loss_stops_with_the_step_named(tiny_backbones, train_file, tmp_path):
    bad = replace(SETTINGS, learning_rate=float("inf"), max_steps=5)
    with pytest.raises(FloatingPointError, match=r"step \d"):
        train(config(tiny_backbones), bad, train_file, tmp_path / "run", seed=0)
    assert not (tmp_path / "run" / "model").exists()


def _log(run_dir):
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_validation_is_logged_and_leaves_the_trained_weights_unchanged(tiny_backbones, train_file, tmp_path):
    valid = tmp_path / "valid.jsonl"
    valid.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(20, seed=1)))
    validating = replace(
        SETTINGS,
        valid_every=15,
        max_valid_examples=12,
        convergence={"last_fraction": 0.25, "min_relative_improvement": 0.005},
    )
    plain = train(config(tiny_backbones), SETTINGS, train_file, tmp_path / "plain", seed=0)
    checked = train(config(tiny_backbones), validating, train_file, tmp_path / "valid", seed=0, valid_file=valid)
    a, b = TransformerVAE.load(plain).state_dict(), TransformerVAE.load(checked).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)  # validation draws on a stream of its own
    validated = [e for e in _log(tmp_path / "valid") if "valid_loss" in e]
    assert [e["step"] for e in validated] == [15, 30, 40]  # every valid_every steps and at the end
    for entry in validated:
        assert entry["valid_loss"] == pytest.approx(entry["valid_reconstruction"] + entry["valid_kl"])
        assert len(entry["valid_kl_per_group"]) == 2 and entry["valid_token_nll"] > 0
    assert validated[-1]["valid_loss"] < validated[0]["valid_loss"]  # it learns, on held-out text too
    done = json.loads((tmp_path / "valid" / "train_done.json").read_text())
    rule = done["convergence"]
    assert rule["to_step"] == 40 and rule["from_step"] in (15, 30)  # points at beta = beta_max only
    assert rule["points"] == "beta = beta_max"
    improvement = (rule["from"] - rule["to"]) / abs(rule["from"])
    assert rule["relative_improvement"] == pytest.approx(improvement)
    assert rule["met"] == (improvement < 0.005)
    assert json.loads((tmp_path / "plain" / "train_done.json").read_text())["convergence"] is None


@pytest.mark.parametrize(
    ("losses", "met"),
    [
        ([5.0, 3.0, 2.0, 1.992], True),  # 0.4 % better over the last quarter: below 0.5 %
        ([5.0, 3.0, 2.0, 1.98], False),  # 1 % better: still improving
        ([5.0, 3.0, 1.9, 1.895], True),  # compared with step 75 (0.26 %), not with step 50 (37 %)
        ([5.0, 3.0, 2.0, 2.5], False),  # worse: not converged
        ([5.0, 3.0, 2.0, 2.0], True),  # no change at all
    ],
)
def test_convergence_rule_on_a_known_curve(tmp_path, losses, met):
    from della.run.train import convergence_check

    log = tmp_path / "train_log.jsonl"
    log.write_text(
        "".join(json.dumps({"step": 25 * (i + 1), "beta": 1.0, "valid_loss": v}) + "\n" for i, v in enumerate(losses))
    )
    settings = replace(
        SETTINGS,
        max_steps=100,
        valid_every=25,
        beta_max=1.0,
        convergence={"last_fraction": 0.25, "min_relative_improvement": 0.005},
    )
    result = convergence_check(log, settings)
    assert (result["from_step"], result["to_step"]) == (75, 100)
    assert result["met"] is met
    assert ("reason" in result) == (losses[-1] > losses[-2])


def test_convergence_rule_compares_beta_max_points_only(tmp_path):
    """Under the cyclical schedule the loss while beta is held low is not comparable: the rule
    skips those points (here step 75) and compares the ends of the two beta = 1 plateaus, for
    every model (one window: a model without latents logs the same schedule)."""
    from della.run.train import convergence_check

    points = [(25, 0.5, 60.0), (50, 1.0, 30.0), (75, 1e-5, 150.0), (100, 1.0, 29.9)]
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"step": s, "beta": b, "valid_loss": v}) + "\n" for s, b, v in points))
    settings = replace(
        SETTINGS,
        max_steps=100,
        valid_every=25,
        beta_max=1.0,
        convergence={"last_fraction": 0.25, "min_relative_improvement": 0.005},
    )
    result = convergence_check(log, settings)
    assert (result["from_step"], result["to_step"], result["met"]) == (50, 100, True)


def test_convergence_rule_needs_validation():
    with pytest.raises(ValueError, match="needs training.valid_every"):
        replace(SETTINGS, convergence={"last_fraction": 0.25, "min_relative_improvement": 0.005})


def test_app_a1_schedule_resolves_per_dataset():
    """An annealing period is two epochs of the run's own data (App. A.1): Yelp's 100,000 texts at
    batch 16 are 6,250 steps an epoch, 20 periods 250,000 steps; PTB's 42,068 at batch 16 with 2
    accumulated batches per step are 1,314 steps an epoch."""
    from della.run.train import resolve_schedule, steps_per_epoch

    schedule = TrainSettings(batch_size=16, learning_rate=5e-5, epochs_per_period=2, periods=20)
    yelp = resolve_schedule(schedule, 100_000)
    assert (yelp.max_steps, yelp.beta_cycles) == (250_000, 20)
    assert steps_per_epoch(42_068, replace(schedule, grad_accumulation_steps=2)) == 1_314
    ptb = resolve_schedule(replace(schedule, grad_accumulation_steps=2), 42_068)
    assert (ptb.max_steps, ptb.beta_cycles) == (20 * 2 * 1_314, 20)
    # the beta curve over one period of Yelp: 1e-5 for the first epoch, rising over half an epoch
    curve = replace(yelp, beta_min=1e-5, beta_ratio_zero=0.5, beta_ratio_increase=0.25)
    assert beta_at(6_249, curve) == 1e-5 and beta_at(6_250 + 3_125, curve) == pytest.approx(1.0)
    assert beta_at(12_500, curve) == 1e-5  # the next period starts over
    assert resolve_schedule(SETTINGS, 100_000) is SETTINGS  # max_steps as given
    with pytest.raises(ValueError, match="set training.max_steps"):
        TrainSettings(batch_size=16, learning_rate=5e-5)
    with pytest.raises(ValueError, match="go together"):
        TrainSettings(batch_size=16, learning_rate=5e-5, epochs_per_period=2)


def test_a_run_trains_its_datasets_periods(tiny_backbones, train_file, tmp_path):
    """The resolved length is what the run trains and records (64 texts at batch 8: 8 steps an
    epoch, 2 periods of 1 epoch)."""
    settings = replace(SETTINGS, max_steps=None, epochs_per_period=1, periods=2)
    train(config(tiny_backbones), settings, train_file, tmp_path / "run", seed=0)
    done = json.loads((tmp_path / "run" / "train_done.json").read_text())
    assert done["steps"] == 16 and done["settings"]["max_steps"] == 16 and done["settings"]["beta_cycles"] == 2


def test_every_attempt_is_counted(tiny_backbones, train_file, tmp_path):
    """A run stopped after step 13 and resumed to the end was trained by two attempts: both are
    in attempts/train.json and train_done.json sums them (Table 6 counts every attempt)."""
    run = tmp_path / "run"
    assert train(config(tiny_backbones), SETTINGS, train_file, run, seed=0, stop_after_steps=13) is None
    first = json.loads((run / "attempts" / "train.json").read_text())["attempts"]
    assert [(a["from_step"], a["to_step"], a["ended"]) for a in first] == [(0, 13, "stopped")]
    train(config(tiny_backbones), SETTINGS, train_file, run, seed=0)
    attempts = json.loads((run / "attempts" / "train.json").read_text())["attempts"]
    assert [(a["from_step"], a["to_step"], a["ended"]) for a in attempts] == [
        (0, 13, "stopped"),
        (13, SETTINGS.max_steps, "finished"),
    ]
    done = json.loads((run / "train_done.json").read_text())["attempts"]
    assert done["attempts"] == 2 and done["seconds"] == round(sum(a["seconds"] for a in attempts), 2)
    assert done["device_seconds"] == pytest.approx(done["seconds"], abs=0.02)  # one device
