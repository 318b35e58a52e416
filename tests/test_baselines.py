"""The baselines as plug-ins: a new one from one module + one config entry (the worked example of
docs/adding-a-baseline.md, run as written), and per paradigm, where z enters the decoder."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from conftest import tiny_corpus
from della.tables import load_spec, render_table
from della.vae import TransformerVAE, VAEConfig

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "adding-a-baseline.md"


def guide_blocks(language: str) -> list[str]:
    """The fenced code blocks of the guide in one language, in order."""
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.S)


@pytest.fixture(scope="module")
def guide_plugin(tmp_path_factory) -> Path:
    """The guide's module, written to a directory outside the repository's packages."""
    path = tmp_path_factory.mktemp("user_plugins") / "gated_softmax.py"
    path.write_text(guide_blocks("python")[0])
    return path


def guide_model_entry(plugin: Path) -> tuple[str, dict]:
    """The guide's `models:` entry, its plug-in pointing at the written module."""
    (name, entry), = yaml.safe_load(guide_blocks("yaml")[0])["models"].items()
    return name, {**entry, "plugin": str(plugin)}


def build(dirs, path, kind="causal", conditional=False, latent_size=8, **extra) -> TransformerVAE:
    torch.manual_seed(0)
    config = VAEConfig(path=path, decoder=str(dirs[kind]), decoder_kind=kind, conditional=conditional,
                       latent_size=latent_size, **extra)
    return TransformerVAE(config).eval()


# --------------------------------------------------------------------------------------------
# A new baseline through the config only
# --------------------------------------------------------------------------------------------
def test_plugin_path_trains_saves_and_loads(tiny_backbones, guide_plugin, tmp_path):
    name, entry = guide_model_entry(guide_plugin)
    model = build(tiny_backbones, entry["path"], plugin=entry["plugin"])
    assert type(model.path).__name__ == "GatedSoftmaxPath"
    batch = model.collator(tiny_corpus(4))
    model.train()
    out = model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert model.path.gate.weight.grad.abs().sum() > 0, "the plug-in's parameters are not trained"
    # z reaches the output through the plug-in
    model.eval()
    z = torch.randn(4, 2, model.latent_size)
    ll = model.log_likelihood(batch, z)
    assert not torch.allclose(ll[:, 0], ll[:, 1])
    # generation and evaluation rebuild the model from config.json: the plug-in comes back too
    model.save(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["plugin"] == str(guide_plugin)
    assert torch.allclose(TransformerVAE.load(tmp_path / "model").log_likelihood(batch, z), ll, atol=1e-5)


def test_plugin_as_module_name(tiny_backbones, tmp_path, monkeypatch):
    (tmp_path / "user_memory_gate.py").write_text(
        "from della.latent import register_latent_path\n"
        "from baselines.memory import MemoryPath\n"
        "register_latent_path('user_memory_gate')(type('UserMemory', (MemoryPath,), {}))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build(tiny_backbones, "user_memory_gate", plugin="user_memory_gate")
    assert type(model.path).__name__ == "UserMemory"
    with pytest.raises(ModuleNotFoundError, match="no_such_plugin"):
        build(tiny_backbones, "memory", plugin="no_such_plugin")
    with pytest.raises(FileNotFoundError, match="missing.py"):
        build(tiny_backbones, "memory", plugin=str(tmp_path / "missing.py"))


def snakemake_dry_run(workdir: Path, config: dict) -> subprocess.CompletedProcess:
    config_file = workdir / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(config_file)]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)


def scheduled_jobs(dry_run_output: str) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run lists."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", dry_run_output):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            found = re.search(r"wildcards: (.*)", block)
            wildcards = dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}
            jobs.append((rule.group(1), wildcards))
    return jobs


@pytest.fixture(scope="module")
def guide_workflow(tmp_path_factory, guide_plugin):
    """config/config.yaml plus the guide's model entry, in an experiment and a table of its own."""
    name, entry = guide_model_entry(guide_plugin)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["models"][name] = entry
    config["experiments"] = {"gated": {"datasets": ["yelp"], "models": ["finetune", name]}}
    config["data_tables"] = []
    spec = load_spec(ROOT / config["tables_spec"])
    spec["tables"] = {"gated": {**spec["tables"]["table1"], "title": "Gated Softmax on Yelp", "datasets": ["yelp"],
                                "rows": [{"name": "GPT-2", "not_applicable": ["ELBO", "KL", "MI", "AU"]}, entry["label"]]}}
    workdir = tmp_path_factory.mktemp("guide_workflow")
    config["tables_spec"] = str(workdir / "tables.yaml")
    (workdir / "tables.yaml").write_text(yaml.safe_dump(spec))
    return workdir, config, name


def test_dry_run_schedules_the_new_baseline(guide_workflow):
    workdir, config, name = guide_workflow
    result = snakemake_dry_run(workdir, config)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = scheduled_jobs(result.stdout)
    for stage in ("train", "generate", "evaluate"):
        assert (stage, {"dataset": "yelp", "model": name, "seed": "0"}) in jobs, (stage, jobs)
    assert ("render_metrics_table", {"table": "gated"}) in jobs


def test_missing_plugin_file_stops_the_workflow_at_start(guide_workflow, tmp_path):
    _, config, name = guide_workflow
    broken = {**config, "models": {**config["models"], name: {**config["models"][name], "plugin": "plugins/nope.py"}}}
    result = snakemake_dry_run(tmp_path, broken)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"models.{name}.plugin" in output and "plugins/nope.py" in output


def test_table_renderer_gives_the_new_baseline_a_row(guide_workflow, tmp_path):
    """metrics.json files as evaluate writes them (docs/interfaces.md) -> the new row, ours = their mean."""
    workdir, config, name = guide_workflow
    spec = load_spec(Path(config["tables_spec"]))
    table = spec["tables"]["gated"]
    directions = spec["metric_directions"]
    rng = torch.Generator().manual_seed(0)
    files, expected = [], {}
    for model, label, skip in (("finetune", "GPT-2", {"ELBO", "KL", "MI", "AU"}), (name, config["models"][name]["label"], set())):
        for seed in (0, 1):
            values = {m: float(torch.rand(1, generator=rng)) * 10 for m in table["columns"] if m not in skip}
            for metric, value in values.items():
                expected.setdefault((label, metric), []).append(value)
            document = {
                "dataset": "yelp", "model": model, "label": label, "seed": seed,
                "metrics": {m: {"value": v, "higher_is_better": directions[m] == "higher", "settings": {}} for m, v in values.items()},
                "settings": {}, "versions": {"torch": torch.__version__},
            }
            path = tmp_path / "runs" / "yelp" / model / f"seed{seed}" / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(document))
            files.append(path)
    render_table("gated", spec, files, [], ROOT / config["paper_tables"], tmp_path / "tables")
    with open(tmp_path / "tables" / "gated.csv", newline="") as handle:
        rows = {(r["model"], r["metric"]): r for r in csv.DictReader(handle)}
    label = config["models"][name]["label"]
    for metric in table["columns"]:
        assert float(rows[label, metric]["ours_mean"]) == pytest.approx(sum(expected[label, metric]) / 2, abs=1e-2)
    assert label in (tmp_path / "tables" / "gated.md").read_text()
