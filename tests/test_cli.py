"""The console entry point: bad input gives one clear line naming what is wrong, exit code 1."""

import json
import os

import pytest

from della.cli import main


def test_a_missing_backbone_directory_is_named(tmp_path, capsys):
    (tmp_path / "train.jsonl").write_text(json.dumps({"text": "a b c"}) + "\n")
    settings = {
        "model": {"path": "della", "latent_size": 8, "pooling": "first_token", "first_prior": "standard"},
        "decoder": {"kind": "causal", "name_or_path": str(tmp_path / "no" / "such" / "backbone")},
        "conditional": False,
        "max_source_tokens": 0,
        "max_target_tokens": 8,
        "training": {"batch_size": 1, "learning_rate": 0.1, "max_steps": 1},
    }
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "train",
                "--data",
                str(tmp_path),
                "--run",
                str(tmp_path / "run"),
                "--seed",
                "0",
                "--settings",
                json.dumps(settings),
            ]
        )
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert "model folder" in error and "no/such/backbone" in error and "snakemake prefetch_models" in error
    assert "create_backbone" in error


def test_settings_must_be_json(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "--data", "d", "--run", "r", "--out", "o", "--seed", "0", "--settings", "{not json"])
    assert exit_info.value.code == 2
    assert "--settings is not valid JSON" in capsys.readouterr().err


def test_device_settings_resolve_to_this_machine_or_name_the_setting():
    """`device` of training, generation and evaluation: auto follows CUDA's availability, cpu is
    the CPU, an unknown value or cuda on a machine without CUDA is an error naming the setting."""
    import torch

    from della.run.distributed import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match=r"generation\.device must be one of \['auto', 'cpu', 'cuda'\], got 'gpu'"):
        resolve_device("gpu", "generation.device")
    if torch.cuda.is_available():
        assert resolve_device("cuda", "evaluation.device") == torch.device("cuda", torch.cuda.current_device())
    else:
        with pytest.raises(ValueError, match=r"evaluation\.device is 'cuda' but no CUDA device is available"):
            resolve_device("cuda", "evaluation.device")


def test_threads_size_every_native_thread_pool(monkeypatch, tmp_path):
    """`--threads N` reaches OpenMP, OpenBLAS, MKL and Rayon as well as torch, per rank: a
    one-thread job must not spin a BLAS pool of every core (the sample DAG runs two at once)."""
    import torch

    from della import cli

    for variable in cli.THREAD_POOL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    seen = {}
    monkeypatch.setattr(
        cli, "cmd_generate", lambda args: seen.update({v: os.environ.get(v) for v in cli.THREAD_POOL_VARIABLES})
    )
    threads = torch.get_num_threads()  # the test process's own count: main also sets torch's
    monkeypatch.chdir(tmp_path)  # the job records its attempt under its run folder, "r"
    cli.main(
        [
            "generate",
            "--threads",
            str(threads),
            "--nproc",
            "1",
            "--data",
            "d",
            "--run",
            "r",
            "--out",
            "o",
            "--seed",
            "0",
            "--settings",
            "{}",
        ]
    )
    assert seen == {variable: str(threads) for variable in cli.THREAD_POOL_VARIABLES}


def test_limited_pools_are_what_the_libraries_run_with():
    """The variables are read when numpy / scikit-learn load their pools: checked in a fresh
    process by threadpoolctl, against this 2-or-more-core machine's default of every core."""
    import subprocess
    import sys

    from della import cli

    script = (
        "from della.cli import limit_thread_pools; limit_thread_pools(1); import numpy, sklearn.linear_model, "
        "threadpoolctl, json; print(json.dumps([p['num_threads'] for p in threadpoolctl.threadpool_info()]))"
    )
    pools = json.loads(
        subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    )
    assert pools and set(pools) == {1}
    if (os.cpu_count() or 1) > 1:  # the check can fail: without the limit the pools take every core
        default = subprocess.run(
            [sys.executable, "-c", script.replace("limit_thread_pools(1); ", "")],
            check=True,
            capture_output=True,
            text=True,
            env={k: v for k, v in os.environ.items() if k not in cli.THREAD_POOL_VARIABLES},
        )
        assert max(json.loads(default.stdout)) > 1
