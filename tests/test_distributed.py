"""Data parallelism on CPU (gloo, 2 ranks): training follows the one-process trajectory of the same
global batch and its checkpoint resumes on one rank; sharded IW-PPL/ELBO/KL/MI/AU and sharded
generation give exactly the one-process numbers and samples. docs/distributed.md.

The ranks run for real, in subprocesses: training through `della-bench train --nproc 2`
(torchrun's launcher, as the rule runs it), evaluation through `torchrun` running this file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from della.models.vae import TransformerVAE, VAEConfig
from della.run.batches import batches
from della.run.distributed import process_group
from della.run.generate import generate_samples
from della.run.train import EX_TEMPFAIL, TrainSettings, train
from metrics.representation import representation_metrics

from conftest import tiny_corpus
from helpers import ROOT
from helpers.training import dropout_free_backbone, logged_metrics, wait_for_checkpoint, weights

RANKS = 2
# batch_size is the global batch: 8 = 2 ranks x 2 sentences x 2 accumulated micro-batches
SETTINGS = TrainSettings(
    batch_size=4,
    grad_accumulation_steps=2,
    learning_rate=3e-3,
    max_steps=6,
    warmup_steps=1,
    log_every=1,
    checkpoint_every=4,
    beta_schedule="constant",
)
REPRESENTATION = {"iw_samples": 4, "iw_chunk": 3, "mi_samples": 2, "mi_chunk": 3, "seed": 5}
GENERATION = {
    "batch_size": 2,
    "num_unconditional": 7,
    "max_conditional": 0,
    "decoding": {
        "strategy": "sample",
        "temperature": 1.0,
        "top_k": 0,
        "top_p": 0.9,
        "num_beams": 1,
        "length_penalty": 1.0,
        "repetition_penalty": 1.0,
        "max_new_tokens": 8,
    },
}


@pytest.fixture(scope="module")
def train_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(64)))
    return path


def rule_settings(decoder: Path, path: str, settings: TrainSettings) -> dict:
    """The train rule's --settings (VAEConfig.from_settings turns them into the model's config)."""
    return {
        "model": {"path": path, "latent_size": 8, "pooling": "first_token", "first_prior": "standard"},
        "decoder": {"kind": "causal", "name_or_path": str(decoder)},
        "conditional": False,
        "max_source_tokens": 0,
        "max_target_tokens": 64,
        "training": asdict(settings),
    }


def train_command(decoder: Path, path: str, settings: TrainSettings, train_file: Path, run: Path) -> list[str]:
    """`della-bench train --nproc 2`, the train rule's command with the job's GPU count."""
    return [
        sys.executable,
        "-m",
        "della.cli",
        "train",
        "--nproc",
        str(RANKS),
        "--threads",
        str(RANKS * torch.get_num_threads()),
        "--data",
        str(train_file.parent),
        "--run",
        str(run),
        "--seed",
        "0",
        "--settings",
        json.dumps(rule_settings(decoder, path, settings)),
    ]


ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def train_on_ranks(decoder: Path, path: str, settings: TrainSettings, train_file: Path, run: Path) -> None:
    done = subprocess.run(
        train_command(decoder, path, settings, train_file, run), env=ENV, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_two_ranks_follow_the_one_process_trajectory_and_resume_on_one_rank(tiny_backbones, train_file, tmp_path):
    # the plain fine-tune without dropout: no per-rank noise, so ranks and one process must agree
    decoder = dropout_free_backbone(tiny_backbones, tmp_path / "backbone")
    model = VAEConfig.from_settings(rule_settings(decoder, "none", SETTINGS))
    train_on_ranks(decoder, "none", SETTINGS, train_file, tmp_path / "ranks")
    # one process, the same global batch of 8 in one go
    train(model, replace(SETTINGS, batch_size=8, grad_accumulation_steps=1), train_file, tmp_path / "one", seed=0)
    ranks, one = logged_metrics(tmp_path / "ranks"), logged_metrics(tmp_path / "one")
    assert [row["step"] for row in ranks] == list(range(1, SETTINGS.max_steps + 1))
    for name in ("loss", "reconstruction", "token_nll", "lr"):
        assert [row[name] for row in ranks] == pytest.approx([row[name] for row in one], rel=1e-5), name
    w_ranks, w_one = weights(tmp_path / "ranks" / "model"), weights(tmp_path / "one" / "model")
    for name in w_one:
        assert torch.allclose(w_ranks[name], w_one[name], atol=1e-5), name
    done = json.loads((tmp_path / "ranks" / "train_done.json").read_text())
    assert done["world_size"] == RANKS and done["effective_batch_size"] == 8

    # the 2-rank checkpoint of step 4 (prev.pt; last.pt is the final one) resumed on one rank
    state = torch.load(tmp_path / "ranks" / "checkpoints" / "prev.pt", weights_only=False)
    assert state["step"] == 4 and state["world_size"] == RANKS and len(state["rng"]) == RANKS
    assert not torch.equal(state["rng"][0]["torch"], state["rng"][1]["torch"])  # each rank its own stream
    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "ranks" / "checkpoints" / "prev.pt", resumed / "checkpoints" / "last.pt")
    shutil.copy(tmp_path / "ranks" / "train_log.jsonl", resumed / "train_log.jsonl")  # lines after step 4 are redone
    train(model, SETTINGS, train_file, resumed, seed=0)
    assert [row["loss"] for row in logged_metrics(resumed)] == pytest.approx([row["loss"] for row in ranks], rel=1e-5)
    w_resumed = weights(resumed / "model")
    for name in w_one:
        assert torch.allclose(w_resumed[name], w_ranks[name], atol=1e-5), name


def test_della_trains_on_two_ranks_close_to_one_process(tiny_backbones, train_file, tmp_path):
    """With latents (and dropout) each rank draws its own noise: the same batches and weights, so
    the trajectory stays close to one process's, but not equal."""
    settings = replace(SETTINGS, max_steps=3)
    train_on_ranks(tiny_backbones["causal"], "della", settings, train_file, tmp_path / "ranks")
    model = VAEConfig.from_settings(rule_settings(tiny_backbones["causal"], "della", settings))
    train(model, settings, train_file, tmp_path / "one", seed=0)
    ranks, one = logged_metrics(tmp_path / "ranks"), logged_metrics(tmp_path / "one")
    assert [row["reconstruction"] for row in ranks] == pytest.approx([row["reconstruction"] for row in one], rel=0.05)
    assert [row["reconstruction"] for row in ranks] != [row["reconstruction"] for row in one]
    assert len(ranks[-1]["kl_per_group"]) == 2


def test_summed_factor_storage_trains_on_two_ranks_and_its_checkpoint_resumes_on_one(
    tiny_backbones, train_file, tmp_path
):
    """DELLA with `factor_storage: summed` under DDP: the per-multiplicity AdamW groups (4x the
    learning rate, 1/4 of the weight decay on the fusion sums) survive the 2-rank checkpoint, the
    trajectory stays close to one process's, and the checkpoint resumes on one rank."""
    settings = replace(SETTINGS, max_steps=6, weight_decay=0.1, grad_clip=0.05)  # clipping active
    rule = rule_settings(tiny_backbones["causal"], "della", settings)
    rule["model"]["settings"] = {"factor_storage": "summed"}
    done = subprocess.run(
        [
            *train_command(tiny_backbones["causal"], "della", settings, train_file, tmp_path / "ranks")[:-1],
            json.dumps(rule),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(tmp_path / "ranks" / "checkpoints" / "prev.pt", weights_only=False)
    groups = state["optimiser"]["param_groups"]
    ratios = [
        ratio
        for g in groups
        for ratio in (g["initial_lr"] / settings.learning_rate, g["weight_decay"] / settings.weight_decay)
    ]
    assert ratios == pytest.approx([1.0, 1.0, 4.0, 0.25])  # (lr, weight decay) of the m = 1 and m = 4 groups

    model = VAEConfig.from_settings(rule)
    train(model, settings, train_file, tmp_path / "one", seed=0)
    ranks, one = logged_metrics(tmp_path / "ranks"), logged_metrics(tmp_path / "one")
    assert [row["reconstruction"] for row in ranks] == pytest.approx([row["reconstruction"] for row in one], rel=0.05)

    resumed = tmp_path / "resumed"
    (resumed / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "ranks" / "checkpoints" / "prev.pt", resumed / "checkpoints" / "last.pt")
    shutil.copy(tmp_path / "ranks" / "train_log.jsonl", resumed / "train_log.jsonl")
    train(model, settings, train_file, resumed, seed=0)
    assert [row["step"] for row in logged_metrics(resumed)] == [row["step"] for row in ranks]
    fusion_sums = [name for name in weights(resumed / "model") if name.endswith("value_weight")]
    assert fusion_sums and not any("value_factors" in name for name in weights(resumed / "model"))


def test_sigusr1_to_the_launcher_stops_every_rank_with_a_checkpoint_and_exit_75(tiny_backbones, train_file, tmp_path):
    """SLURM's `--signal=USR1@...` warning reaches the job's process, the launcher: it forwards
    the signal, the ranks agree on a step, rank 0 checkpoints, and the job asks for a retry."""
    settings = replace(SETTINGS, max_steps=2000, log_every=10, checkpoint_every=5)
    run = tmp_path / "run"
    launcher = subprocess.Popen(
        train_command(tiny_backbones["causal"], "della", settings, train_file, run),
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_checkpoint(launcher, run)
    launcher.send_signal(signal.SIGUSR1)
    _, stderr = launcher.communicate(timeout=300)
    assert launcher.returncode == EX_TEMPFAIL, stderr[-3000:]
    assert "SIGUSR1 received" in stderr and "rerun to resume" in stderr
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert 0 < state["step"] < settings.max_steps and state["world_size"] == RANKS
    assert not (run / "model").exists()


# -----------------------------------------------------------------------------
# sharded evaluation and generation


def evaluate_on_this_rank(model_dir: Path, test_file: Path) -> dict:
    """One rank's view of the representation metrics and the samples."""
    with process_group() as world:
        model = TransformerVAE.load(model_dir)
        records = [json.loads(line) for line in test_file.read_text().splitlines()]
        metrics = representation_metrics(model, batches(records, model.collator, 3), REPRESENTATION)
        samples = generate_samples(model, test_file, GENERATION, seed=3)
        return {
            "world_size": world.size,
            "rank": world.rank,
            "samples": samples,
            "metrics": {name: value.to_dict() for name, value in metrics.items()},
        }


def test_sharded_iw_ppl_and_generation_equal_one_process(tiny_backbones, tmp_path):
    torch.manual_seed(0)
    model = TransformerVAE(
        VAEConfig(
            path="della", decoder=str(tiny_backbones["causal"]), decoder_kind="causal", conditional=False, latent_size=8
        )
    )
    model.save(tmp_path / "model")
    records = tiny_corpus(11, seed=4)  # 4 batches of 3 (the last of 2): uneven shares for the ranks
    test_file = tmp_path / "test.jsonl"
    test_file.write_text("".join(json.dumps(r) + "\n" for r in records))

    one = evaluate_on_this_rank(tmp_path / "model", test_file)
    # each rank with the thread count of the one-process reference: the same kernels
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={RANKS}",
            __file__,
            str(tmp_path / "model"),
            str(test_file),
            str(torch.get_num_threads()),
            str(tmp_path / "ranks"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / "ranks" / f"{rank}.pt", weights_only=False) for rank in range(RANKS)]
    assert one["world_size"] == 1 and [r["rank"] for r in ranks] == list(range(RANKS))
    assert one["metrics"]["PPL"]["value"] > 1 and one["metrics"]["MI"]["details"]["per_group"]  # a latent model's
    for rank in ranks:
        assert rank["world_size"] == RANKS
        assert rank["metrics"] == one["metrics"]  # every value, setting and detail, exactly
        assert rank["samples"] == one["samples"]
    assert len({row["generated"] for row in one["samples"]}) > 1


if __name__ == "__main__":  # one rank of the test above, started by torchrun
    model_dir, test_file, threads, out = sys.argv[1:]
    torch.set_num_threads(int(threads))
    result = evaluate_on_this_rank(Path(model_dir), Path(test_file))
    Path(out).mkdir(exist_ok=True)
    torch.save(result, Path(out) / f"{result['rank']}.pt")
