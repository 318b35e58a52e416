"""Faults injected into training: kill -9, SIGTERM/SIGUSR1, NaN losses, a corrupted checkpoint,
a full disk. Each must lose nothing and end in the weights and log of an uninterrupted run, or in
an error that names what went wrong. docs/reliability.md lists them.

Determinism on CPU: `training.deterministic` (torch.use_deterministic_algorithms), the same torch
thread count in every process (`--threads`), and the RNG states saved in each checkpoint.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import threading
import time
from dataclasses import asdict, replace

import pytest
import torch

import della.io
from della.cli import main
from della.models.vae import TransformerVAE
from della.pipeline import overlays
from della.run.train import EX_TEMPFAIL, CheckpointError, TrainSettings, train

from helpers import ROOT
from helpers.training import (
    SETTINGS,
    assert_same_run,
    cli_args,
    config,
    dropout_free_backbone,
    logged_metrics,
    start_training,
    wait_for_checkpoint,
    weights,
)

# Long enough that a subprocess is still training when the test kills it: the first checkpoint
# comes at step 7 and the kill at most KILL_WITHIN_S later (10-100 steps/s on 2-16 CPU cores).
KILL_WITHIN_S = 0.3
SHORT = replace(SETTINGS, max_steps=20, checkpoint_every=5)


def test_kill_9_at_a_random_step_then_rerun_equals_an_uninterrupted_run(
    tiny_backbones, train_file, tmp_path, uninterrupted
):
    run = tmp_path / "run"
    process = start_training(tiny_backbones, train_file, run)
    wait_for_checkpoint(process, run)
    time.sleep(random.uniform(0, KILL_WITHIN_S))  # somewhere between two checkpoints, mid-step or mid-write
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not (run / "train_done.json").exists()
    killed_at = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["step"]
    assert 0 < killed_at < SETTINGS.max_steps
    main(cli_args(tiny_backbones, SETTINGS, train_file, run))  # the rule, rerun
    assert_same_run(uninterrupted, run)


def test_sigterm_saves_exits_75_and_the_rerun_resumes(tiny_backbones, train_file, tmp_path, uninterrupted):
    run = tmp_path / "run"
    process = start_training(tiny_backbones, train_file, run)
    wait_for_checkpoint(process, run)
    process.send_signal(signal.SIGTERM)
    assert process.wait() == EX_TEMPFAIL
    log = process.stderr.read()
    stopped_at = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["step"]
    assert f"SIGTERM received: stopped {run} after step {stopped_at} " in log and "rerun to resume" in log
    assert "step/s" in log and "ETA" in log  # progress lines in the rule's log
    assert not (run / "model").exists() and not (run / "train_done.json").exists()
    main(cli_args(tiny_backbones, SETTINGS, train_file, run))
    assert_same_run(uninterrupted, run)


def test_sigusr1_stops_at_a_step_boundary_and_resumes(tiny_backbones, train_file, tmp_path, uninterrupted, capsys):
    """SIGUSR1 (sbatch --signal=USR1@<seconds>: a walltime warning), sent to this process mid-run."""
    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / "last.pt"

    def signal_after_the_first_checkpoint():
        while not checkpoint.exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR1)

    threading.Thread(target=signal_after_the_first_checkpoint, daemon=True).start()
    with pytest.raises(SystemExit) as stop:
        main(cli_args(tiny_backbones, SETTINGS, train_file, run))
    assert stop.value.code == EX_TEMPFAIL
    stopped_at = torch.load(checkpoint, weights_only=False)["step"]
    assert f"SIGUSR1 received: stopped {run} after step {stopped_at} " in capsys.readouterr().err
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # the loop's handler is gone again
    main(cli_args(tiny_backbones, SETTINGS, train_file, run))
    assert_same_run(uninterrupted, run)


def test_same_config_and_seed_twice_is_identical_and_another_seed_is_not(tiny_backbones, train_file, tmp_path):
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        train(config(tiny_backbones), SHORT, train_file, tmp_path / name, seed=seed)
    assert_same_run(tmp_path / "a", tmp_path / "b")
    a, c = weights(tmp_path / "a" / "model"), weights(tmp_path / "c" / "model")
    assert not all(torch.equal(a[name], c[name]) for name in a)
    done = json.loads((tmp_path / "c" / "train_done.json").read_text())
    assert done["seed"] == 1 and done["settings"] == asdict(SHORT)


def nan_at(monkeypatch, calls: set[int], where: str = "loss") -> None:
    """Fault injection: the loss (or, where="gradient", only its gradient) of the given 0-based
    forward calls becomes NaN."""
    real, count = TransformerVAE.loss, [0]

    def loss(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        if count[0] in calls and where == "loss":
            out["loss"] = out["loss"] * float("nan")
        elif count[0] in calls:  # adds 0 to the loss; d/dx sqrt(x) at 0 is inf, and 0 * inf is NaN
            out["loss"] = out["loss"] + torch.sqrt(0 * next(self.parameters()).sum())
        count[0] += 1
        return out

    monkeypatch.setattr(TransformerVAE, "loss", loss)


def test_a_nan_loss_stops_naming_the_step_the_terms_and_the_last_good_checkpoint(
    tiny_backbones, train_file, tmp_path, monkeypatch
):
    nan_at(monkeypatch, {12})
    run = tmp_path / "run"
    with pytest.raises(FloatingPointError) as error:
        train(config(tiny_backbones), SHORT, train_file, run, seed=0)
    message = str(error.value)
    assert "non-finite loss at step 12" in message and "'reconstruction':" in message and "'kl':" in message
    assert f"last good checkpoint: {run / 'checkpoints' / 'last.pt'}" in message
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["step"] == 10
    assert not (run / "model").exists()


def test_a_nan_gradient_of_a_finite_loss_stops_too(tiny_backbones, train_file, tmp_path, monkeypatch):
    nan_at(monkeypatch, {2}, where="gradient")
    with pytest.raises(FloatingPointError, match=r"non-finite gradient at step 2 .*'loss': \d"):
        train(config(tiny_backbones), SHORT, train_file, tmp_path / "run", seed=0)


def test_non_finite_weights_are_never_saved(tiny_backbones, train_file, tmp_path):
    # lr = inf: the first update makes the weights infinite while its loss and gradient were finite
    diverging = replace(SHORT, learning_rate=float("inf"), checkpoint_every=1)
    with pytest.raises(FloatingPointError, match=r"non-finite weights after step 1 .* \(none\)"):
        train(config(tiny_backbones), diverging, train_file, tmp_path / "run", seed=0)
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_unusable_training_data_is_named(tiny_backbones, train_file, tmp_path):
    bad = tmp_path / "train.jsonl"
    bad.write_text(train_file.read_text() + '{"text": "cut off\n')
    with pytest.raises(ValueError, match=f"{bad}:65: not a JSON object"):
        train(config(tiny_backbones), SHORT, bad, tmp_path / "run", seed=0)
    bad.write_text(json.dumps({"text": "one line"}) + "\n")
    with pytest.raises(ValueError, match=f"{bad}: 1 examples, fewer than one batch of 4"):
        train(config(tiny_backbones), SHORT, bad, tmp_path / "run", seed=0)


def test_nonfinite_skip_skips_and_counts_the_batches_up_to_the_maximum(
    tiny_backbones, train_file, tmp_path, monkeypatch
):
    skip = replace(SHORT, nonfinite="skip", max_nonfinite_skips=2)
    nan_at(monkeypatch, {3, 9})
    train(config(tiny_backbones), skip, train_file, tmp_path / "run", seed=0)
    log = logged_metrics(tmp_path / "run")
    assert log[-1]["step"] == SHORT.max_steps and log[-1]["nonfinite_skipped"] == 2
    # batches 0-2 make steps 1-3 (logged), batch 3 is skipped, batches 4-8 make steps 4-8, 9 is skipped
    assert [row["nonfinite_skipped"] for row in log[:3]] == [0, 1, 2]
    assert json.loads((tmp_path / "run" / "train_done.json").read_text())["nonfinite_skipped"] == 2
    assert all(torch.isfinite(w).all() for w in weights(tmp_path / "run" / "model").values())

    nan_at(monkeypatch, {1, 2, 3})
    with pytest.raises(FloatingPointError, match="more than training.max_nonfinite_skips = 2 steps skipped"):
        train(config(tiny_backbones), skip, train_file, tmp_path / "again", seed=0)


def test_a_truncated_checkpoint_is_named_and_the_previous_one_resumes(tiny_backbones, train_file, tmp_path):
    run, checkpoints = tmp_path / "run", tmp_path / "run" / "checkpoints"
    train(config(tiny_backbones), SHORT, train_file, run, seed=0, stop_after_steps=12)
    last = checkpoints / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    with pytest.raises(CheckpointError) as error:
        train(config(tiny_backbones), SHORT, train_file, run, seed=0)
    assert f"checkpoint {last} is unreadable" in str(error.value)
    assert f"the previous checkpoint {checkpoints / 'prev.pt'} is intact: move it to {last}" in str(error.value)
    assert torch.load(checkpoints / "prev.pt", weights_only=False)["step"] == 10
    # following the advice resumes from step 10 and still ends where an uninterrupted run does
    (checkpoints / "prev.pt").replace(last)
    train(config(tiny_backbones), SHORT, train_file, run, seed=0)
    train(config(tiny_backbones), SHORT, train_file, tmp_path / "straight", seed=0)
    assert_same_run(tmp_path / "straight", run)


def test_a_checkpoint_of_other_settings_is_kept_aside_and_training_starts_over(tiny_backbones, train_file, tmp_path):
    """A changed config reruns training (Snakemake): the old checkpoint must not be resumed, nor lost."""
    run, other = tmp_path / "run", replace(SHORT, learning_rate=1e-3)
    train(config(tiny_backbones), SHORT, train_file, run, seed=0, stop_after_steps=5)
    old_checkpoint = (run / "checkpoints" / "last.pt").read_bytes()
    train(config(tiny_backbones), other, train_file, run, seed=0)
    (aside,) = run.glob("superseded-*")
    assert (aside / "checkpoints" / "last.pt").read_bytes() == old_checkpoint
    assert (aside / "train_log.jsonl").exists()
    train(config(tiny_backbones), other, train_file, tmp_path / "fresh", seed=0)
    assert_same_run(tmp_path / "fresh", run)


class FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written (some bytes do land)."""

    def __init__(self, handle, room: int):
        self.handle, self.room = handle, room

    def write(self, data) -> int:
        if len(data) > self.room:
            self.handle.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()


def test_a_full_disk_while_checkpointing_keeps_the_old_checkpoint_and_no_partial_file(
    tiny_backbones, train_file, tmp_path, monkeypatch
):
    run, checkpoints = tmp_path / "run", tmp_path / "run" / "checkpoints"
    train(config(tiny_backbones), SHORT, train_file, run, seed=0, stop_after_steps=10)
    real_fdopen = os.fdopen
    monkeypatch.setattr(della.io.os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k), room=4096))
    with pytest.raises(OSError) as error:
        train(config(tiny_backbones), SHORT, train_file, run, seed=0, stop_after_steps=15)
    assert error.value.errno == errno.ENOSPC
    assert f"disk full while writing {checkpoints / 'last.pt'}" in str(error.value)
    assert "the previous last.pt is intact" in str(error.value)
    assert torch.load(checkpoints / "last.pt", weights_only=False)["step"] == 10
    assert sorted(p.name for p in checkpoints.iterdir()) == ["last.pt", "prev.pt"]  # no partial file left


def test_two_accumulated_batches_of_b_equal_one_batch_of_2b(tiny_backbones, train_file, tmp_path):
    # the plain fine-tune ("none"): no latent noise, whose draws depend on the batch shape
    model = config(tiny_backbones, path="none", decoder=dropout_free_backbone(tiny_backbones, tmp_path / "backbone"))
    steps = replace(SHORT, max_steps=4, log_every=1)
    train(model, replace(steps, batch_size=4, grad_accumulation_steps=2), train_file, tmp_path / "accumulated", seed=0)
    train(model, replace(steps, batch_size=8), train_file, tmp_path / "large", seed=0)
    train(model, replace(steps, batch_size=4), train_file, tmp_path / "small", seed=0)
    accumulated, large, small = (weights(tmp_path / name / "model") for name in ("accumulated", "large", "small"))
    name = "decoder.model.transformer.h.0.mlp.c_fc.weight"
    assert name in accumulated
    for key in accumulated:
        assert torch.allclose(accumulated[key], large[key], atol=1e-5), key
    assert not torch.allclose(accumulated[name], small[name], atol=1e-5)  # the comparison can tell batches apart
    log_a, log_l = logged_metrics(tmp_path / "accumulated"), logged_metrics(tmp_path / "large")
    assert [row["loss"] for row in log_a] == pytest.approx([row["loss"] for row in log_l], rel=1e-5)
    done = json.loads((tmp_path / "accumulated" / "train_done.json").read_text())
    assert done["effective_batch_size"] == 8 and done["settings"]["grad_accumulation_steps"] == 2


def test_bf16_autocast_trains_on_cpu_and_is_recorded(tiny_backbones, train_file, tmp_path):
    train(config(tiny_backbones), SHORT, train_file, tmp_path / "fp32", seed=0)
    train(config(tiny_backbones), replace(SHORT, precision="bf16"), train_file, tmp_path / "bf16", seed=0)
    fp32, bf16 = logged_metrics(tmp_path / "fp32"), logged_metrics(tmp_path / "bf16")
    # same weights and batch at step 1: bf16 rounding moves the loss a little, not a lot
    assert bf16[0]["loss"] != fp32[0]["loss"] and bf16[0]["loss"] == pytest.approx(fp32[0]["loss"], rel=0.05)
    assert bf16[-1]["reconstruction"] < bf16[0]["reconstruction"]
    assert json.loads((tmp_path / "bf16" / "train_done.json").read_text())["settings"]["precision"] == "bf16"


def test_fp16_on_cpu_is_a_clear_error(tiny_backbones, train_file, tmp_path):
    with pytest.raises(ValueError, match="'fp16' needs a CUDA device .* on CPU use 'bf16' or 'fp32'"):
        train(
            config(tiny_backbones), replace(SHORT, precision="fp16", device="cpu"), train_file, tmp_path / "r", seed=0
        )
    with pytest.raises(ValueError, match=r"training.precision must be one of \['fp32', 'bf16', 'fp16'\], got 'fp8'"):
        replace(SHORT, precision="fp8")


@pytest.mark.parametrize("configfile", ["config/config.yaml", "config/paper.yaml"])
def test_the_schema_takes_the_training_options_and_rejects_bad_ones(configfile):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    cfg = overlays.load(configfile)
    training = cfg["training"]
    assert {"precision", "grad_accumulation_steps", "compile", "nonfinite", "max_nonfinite_skips"} <= training.keys()
    TrainSettings(**training)  # every configured key is a setting
    validate(
        {**cfg, "training": {**training, "precision": "bf16", "compile": True, "nonfinite": "skip"}},
        str(ROOT / "config" / "schema.yaml"),
    )
    for bad, named in (
        ({"precision": "fp8"}, "'fp8'"),
        ({"grad_accumulation_steps": 0}, "0 is less than"),
        ({"compile": "yes"}, "'yes' is not of type"),
        ({"learning_rat": 0.1}, "'learning_rat'"),
    ):
        with pytest.raises(WorkflowError, match=named):
            validate({**cfg, "training": {**training, **bad}}, str(ROOT / "config" / "schema.yaml"))


def test_same_seed_twice_gives_identical_samples_and_metrics_files(tiny_backbones, train_file, tmp_path):
    """Generation and evaluation are as deterministic as training: the same model, settings and
    seed write byte-identical samples.jsonl and metrics.json; another seed other samples."""
    from della.run import evaluate, generate

    model_dir = train(config(tiny_backbones), SHORT, train_file, tmp_path / "run", seed=0)
    sample_config = overlays.load("config/config.yaml")
    generation = {**sample_config["generation"], "num_unconditional": 12, "batch_size": 6}
    generation["decoding"] = {**generation["decoding"], "max_new_tokens": 8}
    evaluation = {**sample_config["evaluation"], "max_test_examples": 12, "batch_size": 6}
    evaluation["representation"] = {**evaluation["representation"], "iw_samples": 3, "iw_chunk": 3}
    settings = {"dataset": "toy", "model": "della", "label": "DELLA", "evaluation": evaluation}
    written = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        samples, metrics = tmp_path / name / "samples.jsonl", tmp_path / name / "metrics.json"
        generate.run(model_dir, train_file, generation, seed, samples)
        evaluate.run(model_dir, train_file, samples, settings, seed, metrics)
        written[name] = samples.read_bytes(), metrics.read_bytes()
    assert written["a"] == written["b"]
    assert written["a"][0] != written["c"][0] and json.loads(written["c"][1])["seed"] == 1
