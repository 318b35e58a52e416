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

from della.models.vae import TransformerVAE, VAEConfig
from della.pipeline import overlays
from della.report.tables import load_spec

from conftest import tiny_corpus
from helpers import ROOT
from helpers.tables import render_files, write_run_metrics

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
    ((name, entry),) = yaml.safe_load(guide_blocks("yaml")[0])["models"].items()
    return name, {**entry, "plugin": str(plugin)}


def build(dirs, path, kind="causal", conditional=False, latent_size=8, **extra) -> TransformerVAE:
    torch.manual_seed(0)
    config = VAEConfig(
        path=path, decoder=str(dirs[kind]), decoder_kind=kind, conditional=conditional, latent_size=latent_size, **extra
    )
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


def test_guide_forward_pass_check_runs(tiny_backbones, guide_plugin, capsys):
    """Step 4 of the guide, as printed there (paths pointed at the test's plug-in and backbone)."""
    snippet = guide_blocks("python")[1]
    snippet = snippet.replace("plugins/gated_softmax.py", str(guide_plugin))
    exec(snippet.replace("models/backbones/gpt2", str(tiny_backbones["causal"])), {})
    assert "'loss': tensor(" in capsys.readouterr().out


def test_plugin_as_module_name(tiny_backbones, tmp_path, monkeypatch):
    (tmp_path / "user_memory_gate.py").write_text(
        "from della.models.latent import register_latent_path\n"
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
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(config_file),
    ]
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
    config = overlays.load("config/config.yaml")
    config["models"][name] = entry
    config["experiments"] = {"gated": {"datasets": ["yelp"], "models": ["finetune", name]}}
    config["data_tables"] = []
    spec = load_spec(ROOT / config["tables_spec"])
    # the new model has no row in the spec: its row comes from its results
    spec["tables"] = {
        "gated": {
            **spec["tables"]["table1"],
            "title": "Gated Softmax on Yelp",
            "datasets": ["yelp"],
            "rows": [{"name": "GPT-2", "not_applicable": ["ELBO", "KL", "MI", "AU"]}],
        }
    }
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


def test_the_readme_steps_put_the_new_baseline_into_table1(guide_plugin, tmp_path):
    """README "Adding a baseline", to the letter: the module, its `models:` entry and its id in
    `table1`'s experiment; config/tables.yaml untouched. Table 1 rendered from metrics.json files
    of every run of that experiment has the new model's row, ours = the mean over its seeds."""
    name, entry = guide_model_entry(guide_plugin)
    config = overlays.load("config/config.yaml")
    config["models"][name] = entry
    config["experiments"]["table1"]["models"].append(name)
    spec = load_spec(ROOT / config["tables_spec"])
    table = spec["tables"]["table1"]
    directions = spec["metric_directions"]
    assert entry["label"] not in str(table["rows"])  # no row written by hand
    latent_free = {"ELBO", "KL", "MI", "AU"}
    rng = torch.Generator().manual_seed(0)
    files, expected = [], {}
    experiment = config["experiments"]["table1"]
    for dataset in experiment["datasets"]:
        backbone_label = config["backbones"][config["datasets"][dataset]["backbone"]]["label"]
        for model in experiment["models"]:
            label = config["models"][model]["label"] or backbone_label
            for seed in (0, 1):
                values = {
                    m: float(torch.rand(1, generator=rng)) * 10
                    for m in table["columns"]
                    if not (model == "finetune" and m in latent_free)
                }
                for metric, value in values.items():
                    expected.setdefault((dataset, label, metric), []).append(value)
                files.append(write_run_metrics(tmp_path / "runs", dataset, model, label, seed, values, directions))
    render_files("table1", spec, ROOT / config["paper_tables"], tmp_path / "tables", metrics=files)
    with open(tmp_path / "tables" / "table1.csv", newline="") as handle:
        rows = {(r["dataset"], r["model"], r["metric"]): r for r in csv.DictReader(handle)}
    label = entry["label"]
    for dataset in experiment["datasets"]:
        for metric in table["columns"]:
            mean = sum(expected[dataset, label, metric]) / 2
            assert float(rows[dataset, label, metric]["ours_mean"]) == pytest.approx(mean, abs=1e-2)
            assert rows[dataset, label, metric]["paper"] == ""  # the paper has no such row
    markdown = (tmp_path / "tables" / "table1.md").read_text()
    # the new row follows the paper's rows in each dataset's block, and the footer names it
    blocks = markdown.split("\n### ")[1:]
    assert len(blocks) == len(experiment["datasets"])
    for block in blocks:
        shown = re.findall(r"^\| ([^|]+?) +\| ours +\|", block, re.M)
        spec_rows = [r if isinstance(r, str) else r["name"] for r in table["rows"]]
        # rows from the data follow in the experiment's order: the config's own (DELLA (sampled)), then the new one
        from_data = [
            config["models"][m]["label"]
            for m in experiment["models"]
            if config["models"][m]["label"] not in (None, *spec_rows)
        ]
        assert shown[-1] == label and shown == spec_rows + from_data
    assert "rows from the data" in markdown and f"yelp/{label}" in markdown


def test_every_module_of_a_builtin_package_is_registered_without_an_import(tmp_path, monkeypatch):
    """A module dropped into a built-in package (as a new one in baselines/) is found by listing."""
    from della.models import plugins
    from della.models.latent import LATENT_PATHS

    package = tmp_path / "more_baselines"
    package.mkdir()
    (package / "__init__.py").write_text('"""No imports here."""\n')
    (package / "doubled_softmax.py").write_text(
        "from baselines.softmax import SoftmaxPath\n"
        "from della.models.latent import register_latent_path\n\n\n"
        "@register_latent_path('doubled_softmax_test')\n"
        "class Doubled(SoftmaxPath):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "BUILTIN_PATH_PACKAGES", (*plugins.BUILTIN_PATH_PACKAGES, "more_baselines"))
    monkeypatch.delitem(LATENT_PATHS, "doubled_softmax_test", raising=False)
    try:
        assert plugins.latent_path_class("doubled_softmax_test").__name__ == "Doubled"
        # and the paper's own: every module of baselines/ registered its path
        assert {"none", "embedding", "memory", "softmax", "optimus", "della"} <= set(LATENT_PATHS)
    finally:
        LATENT_PATHS.pop("doubled_softmax_test", None)


# --------------------------------------------------------------------------------------------
# Per paradigm: where z enters the decoder, and only there
# --------------------------------------------------------------------------------------------
def decoder_layers(model: TransformerVAE):
    hf = model.decoder.model
    return hf.model.decoder.layers if model.config.decoder_kind == "seq2seq" else hf.transformer.h


def trace(model: TransformerVAE, batch, z: torch.Tensor | None) -> dict:
    """What the decoder computes given z: the embeddings entering the first layer, every layer's
    output, the backbone's final states (before any Softmax-paradigm change) and the logits."""
    seen = {"layers": []}
    decoder = model.decoder
    step, head = decoder.step, decoder.logits

    def traced_step(embeds, *args, **kwargs):
        seen["embeds"] = embeds
        seen["backbone"] = step(embeds, *args, **kwargs)
        return seen["backbone"]

    def traced_head(hidden):
        seen["logits"] = head(hidden)
        return seen["logits"]

    hooks = [
        layer.register_forward_hook(lambda m, i, o: seen["layers"].append(o[0] if isinstance(o, tuple) else o))
        for layer in decoder_layers(model)
    ]
    decoder.step, decoder.logits = traced_step, traced_head
    try:
        with torch.no_grad():
            model._token_log_probs(batch, z)
    finally:
        del decoder.step, decoder.logits
        for hook in hooks:
            hook.remove()
    return seen


def same(a, b) -> bool:
    return torch.allclose(a, b, atol=1e-6)


# (path, decoder kind, conditional, separate BERT encoder): GPT-2 unconditional (Table 1), BART
# CVAE (Table 2 CNN/DM, Table 9 Quora), Optimus with its BERT encoder.
PARADIGM_CASES = [
    ("embedding", "causal", False, False),
    ("memory", "causal", False, False),
    ("softmax", "causal", False, False),
    ("optimus", "causal", False, True),
    ("embedding", "seq2seq", True, False),
    ("memory", "seq2seq", True, False),
    ("softmax", "seq2seq", True, False),
]


def case_id(case) -> str:
    return f"{case[0]}-{case[1]}"


def build_case(dirs, case, **extra) -> TransformerVAE:
    path, kind, conditional, separate_encoder = case
    encoder = str(dirs["encoder"]) if separate_encoder else None
    return build(dirs, path, kind, conditional, encoder=encoder, **extra)


@pytest.mark.parametrize("case", PARADIGM_CASES, ids=case_id)
def test_z_changes_the_decoder_where_its_paradigm_says_and_only_there(tiny_backbones, case):
    model = build_case(tiny_backbones, case)
    batch = model.collator(tiny_corpus(3, conditional=case[2]))
    z1, z2 = torch.randn(2, 3, 1, model.latent_size, generator=torch.Generator().manual_seed(1))
    a, b = trace(model, batch, z1), trace(model, batch, z2)
    assert not same(a["logits"], b["logits"]), "z does not reach the logits"
    path = case[0]
    embeds_change = path in ("embedding", "optimus")
    layers_change = path in ("embedding", "memory", "optimus")
    assert same(a["embeds"], b["embeds"]) != embeds_change
    assert len(a["layers"]) == model.decoder.n_layers
    for layer, (la, lb) in enumerate(zip(a["layers"], b["layers"], strict=True)):
        assert same(la, lb) != layers_change, f"layer {layer}"
    assert same(a["backbone"], b["backbone"]) != layers_change
    if embeds_change:  # W z is added to every token's embedding, the same vector at every position
        shift = model.path.to_embedding.proj(z1.flatten(1)) - model.path.to_embedding.proj(z2.flatten(1))
        assert torch.allclose(a["embeds"] - b["embeds"], shift[:, None, :].expand_as(a["embeds"]), atol=1e-6)
    memory = model.path.memory(z1)
    assert (memory is not None) == (path in ("memory", "optimus"))
    if memory is not None:  # one key/value per decoder layer, one slot each
        assert len(memory) == model.decoder.n_layers
        assert all(k.shape == v.shape == (3, model.decoder.n_heads, 1, model.decoder.head_dim) for k, v in memory)


def test_optimus_is_embedding_plus_memory_with_a_bert_encoder(tiny_backbones):
    from baselines.embedding import LatentToEmbedding
    from baselines.memory import LatentToMemory
    from della.models.backbone import BertBackbone

    model = build_case(tiny_backbones, PARADIGM_CASES[3])
    assert isinstance(model.encoder, BertBackbone) and model.encoder is not model.decoder
    assert isinstance(model.path.to_embedding, LatentToEmbedding) and isinstance(model.path.to_memory, LatentToMemory)
    batch = model.collator(tiny_corpus(3))
    z1, z2 = torch.randn(2, 3, 1, model.latent_size, generator=torch.Generator().manual_seed(2))
    # either injection alone still carries z: without the embedding one it behaves as Memory ...
    with torch.no_grad():
        model.path.to_embedding.proj.weight.zero_()
    a, b = trace(model, batch, z1), trace(model, batch, z2)
    assert same(a["embeds"], b["embeds"]) and not same(a["layers"][0], b["layers"][0])
    # ... and without the memory one, the memory slot no longer depends on z (Embedding)
    torch.manual_seed(0)
    model = build_case(tiny_backbones, PARADIGM_CASES[3])
    with torch.no_grad():
        model.path.to_memory.proj.weight.zero_()
    a, b = trace(model, batch, z1), trace(model, batch, z2)
    assert not same(a["embeds"], b["embeds"])
    assert all(same(k1, k2) for (k1, _), (k2, _) in zip(model.path.memory(z1), model.path.memory(z2), strict=True))


def zero_latent_path(model: TransformerVAE) -> None:
    with torch.no_grad():
        for parameter in model.path.parameters():
            parameter.zero_()


@pytest.mark.parametrize("case", [c for c in PARADIGM_CASES if c[0] in ("embedding", "softmax")], ids=case_id)
def test_zeroed_latent_path_is_the_plain_backbone(tiny_backbones, case):
    """Embedding and Softmax add W z: with W = 0 the model is the fine-tuned GPT-2 / BART exactly."""
    model = build_case(tiny_backbones, case)
    plain = build(tiny_backbones, "none", case[1], case[2])
    zero_latent_path(model)
    batch = model.collator(tiny_corpus(3, conditional=case[2]))
    z = torch.randn(3, 1, model.latent_size)
    with torch.no_grad():
        assert torch.allclose(model._token_log_probs(batch, z), plain._token_log_probs(batch, None), atol=1e-5)


@pytest.mark.parametrize("case", [c for c in PARADIGM_CASES if c[0] in ("memory", "optimus")], ids=case_id)
def test_zeroed_memory_path_ignores_z(tiny_backbones, case):
    """Memory and Optimus: with the projections zeroed, z has no effect. (The zero key/value slot
    still takes attention weight, exp(q . 0) = 1, as in Optimus, so this is not the plain
    backbone; Memory reduces to it only if the slot were masked, which is not the paradigm.)"""
    model = build_case(tiny_backbones, case)
    zero_latent_path(model)
    batch = model.collator(tiny_corpus(3, conditional=case[2]))
    z1, z2 = torch.randn(2, 3, 1, model.latent_size)
    assert same(trace(model, batch, z1)["logits"], trace(model, batch, z2)["logits"])
    # without the slot (no z: the path switched off) the decoder is the plain GPT-2 / BART exactly
    plain = build(tiny_backbones, "none", case[1], case[2])
    plain.decoder.load_state_dict(model.decoder.state_dict())
    with torch.no_grad():
        assert torch.allclose(model._token_log_probs(batch, None), plain._token_log_probs(batch, None), atol=1e-5)


@pytest.mark.parametrize("path", ["embedding", "memory", "softmax"])
def test_cvae_form_on_bart_uses_the_condition(tiny_backbones, path):
    """Table 2 (CNN/DM) and Table 9 (Quora): p(z|c) and q(z|x, c) depend on the source c."""
    model = build(tiny_backbones, path, "seq2seq", True)
    records = tiny_corpus(3, conditional=True)
    swapped = [{"source": records[(i + 1) % 3]["source"], "target": r["target"]} for i, r in enumerate(records)]
    batch, other = model.collator(records), model.collator(swapped)
    prior_mean = model.chain(3, None, model._condition(batch), sample=False).z
    assert not same(prior_mean, model.chain(3, None, model._condition(other), sample=False).z)
    assert not same(model.posterior_mean(model.encode(batch)), model.posterior_mean(model.encode(other)))
    z = torch.randn(3, 2, model.latent_size)
    assert not same(model.log_prior(batch, z), model.log_prior(other, z))
    decoding = {"strategy": "beam", "num_beams": 2, "length_penalty": 1.0, "max_new_tokens": 5}
    outputs = model.generate([r["source"] for r in records], decoding, torch.Generator().manual_seed(0))
    assert len(outputs) == 3 and all(isinstance(o, str) for o in outputs)


LATENT_384_CASES = [
    ("embedding", "causal", False, False),
    ("memory", "causal", False, False),
    ("softmax", "causal", False, False),
    ("optimus", "causal", False, True),
    ("memory", "seq2seq", True, False),
]


@pytest.mark.parametrize("case", LATENT_384_CASES, ids=case_id)
def test_latent_size_384(tiny_backbones, case):
    """Table 4 uses a 384-dimensional latent for the three paradigms: larger than the hidden size."""
    model = build_case(tiny_backbones, case, latent_size=384).train()
    batch = model.collator(tiny_corpus(4, conditional=case[2]))
    z, _ = model.sample_posterior(model.encode(batch), 1)
    assert z.shape == (4, 1, 384)
    out = model.loss(batch, beta=1.0, kl_threshold=0.0, kl_reduction="sum")
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.path.parameters())


@pytest.mark.parametrize("path", ["embedding", "optimus"])
def test_embedding_scale_token_starts_z_at_the_token_embeddings_scale(tiny_backbones, path):
    """embedding_scale: token -> for z ~ N(0, I), the added vector's coordinates spread like the
    token embeddings' (at any latent size); none (Optimus) -> W z with W ~ N(0, 0.02)."""
    encoder = str(tiny_backbones["encoder"]) if path == "optimus" else None
    for latent_size in (8, 384):
        scaled = build(
            tiny_backbones, path, latent_size=latent_size, encoder=encoder, path_settings={"embedding_scale": "token"}
        )
        plain = build(tiny_backbones, path, latent_size=latent_size, encoder=encoder)
        tokens = scaled.decoder.model.transformer.wte.weight
        z = torch.randn(4000, 1, latent_size, generator=torch.Generator().manual_seed(0))
        zeros = torch.zeros(4000, 1, scaled.decoder.hidden_size)
        with torch.no_grad():
            added = scaled.path.to_embedding(zeros, z)
            added_plain = plain.path.to_embedding(zeros, z)
        assert added.std().item() == pytest.approx(tokens.std().item(), rel=0.2)
        expected_plain = plain.decoder.model.config.initializer_range * latent_size**0.5
        assert added_plain.std().item() == pytest.approx(expected_plain, rel=0.2)
    with pytest.raises(ValueError, match="embedding_scale"):
        build(tiny_backbones, path, encoder=encoder, path_settings={"embedding_scale": "huge"})


# --------------------------------------------------------------------------------------------
# Optimus: starting from a pre-trained Optimus VAE checkpoint (the official code's format)
# --------------------------------------------------------------------------------------------
def write_optimus_checkpoint(dirs, directory: Path, latent_size: int, step: int = 7) -> dict:
    """A checkpoint as Optimus' save_checkpoint writes it, from fresh random weights (seeded apart
    from the backbones on disk, so that loaded values are told from initial ones)."""
    from transformers import AutoConfig, BertModel, GPT2LMHeadModel

    torch.manual_seed(123)
    bert = BertModel(AutoConfig.from_pretrained(dirs["encoder"])).eval()
    gpt2 = GPT2LMHeadModel(AutoConfig.from_pretrained(dirs["causal"])).eval()
    h, n_layers = gpt2.config.n_embd, gpt2.config.n_layer
    parts = {
        "linear": torch.randn(2 * latent_size, bert.config.hidden_size),  # BertForLatentConnector.linear
        "memory": torch.randn(n_layers * h, latent_size),  # GPT2ForLatentConnector.transformer.linear
        "embedding": torch.randn(h, latent_size),  # .transformer.linear_emb
    }
    encoder_state = {**bert.state_dict(), "linear.weight": parts["linear"]}
    decoder_state = {
        **gpt2.state_dict(),
        "transformer.linear.weight": parts["memory"],
        "transformer.linear_emb.weight": parts["embedding"],
    }
    n_ctx = gpt2.config.n_positions  # the causal-mask buffer pytorch_transformers' GPT-2 saves
    decoder_state |= {f"transformer.h.{i}.attn.bias": torch.ones(1, 1, n_ctx, n_ctx).tril() for i in range(n_layers)}
    for part, state, model in (("encoder", encoder_state, bert), ("decoder", decoder_state, gpt2)):
        folder = directory / f"checkpoint-{part}-{step}"
        folder.mkdir(parents=True)
        torch.save(state, folder / "pytorch_model.bin")
        model.config.to_json_file(folder / "config.json")
    return {"bert": bert, "gpt2": gpt2, **parts}


def test_optimus_checkpoint_lands_in_the_right_parameters(tiny_backbones, tmp_path):
    from della.run.train import TrainSettings, train

    p = 8
    source = write_optimus_checkpoint(tiny_backbones, tmp_path / "optimus", p)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tiny_corpus(8)))
    config = VAEConfig(
        path="optimus",
        decoder=str(tiny_backbones["causal"]),
        decoder_kind="causal",
        conditional=False,
        latent_size=p,
        encoder=str(tiny_backbones["encoder"]),
        pooling="bert_pooler",
        init_from=str(tmp_path / "optimus"),
    )
    # one step at learning rate 0: the trained model holds exactly what was loaded
    train(
        config,
        TrainSettings(batch_size=4, learning_rate=0.0, max_steps=1),
        tmp_path / "train.jsonl",
        tmp_path / "run",
        0,
    )
    model = TransformerVAE.load(tmp_path / "run" / "model")
    for ours, theirs in ((model.separate_encoder.model, source["bert"]), (model.decoder.model, source["gpt2"])):
        for name, parameter in theirs.named_parameters():
            assert torch.equal(ours.get_parameter(name), parameter), name
    assert torch.equal(model.path.to_embedding.proj.weight, source["embedding"])
    # Memory: Optimus' vector for layer l, split into heads, is that layer's key and its value
    z = torch.randn(3, 1, p)
    expected = (z.flatten(1) @ source["memory"].T).view(3, model.decoder.n_layers, model.decoder.n_heads, 1, -1)
    for layer, (key, value) in enumerate(model.path.memory(z)):
        assert torch.allclose(key, expected[:, layer]) and torch.allclose(value, expected[:, layer])
    # posterior: Optimus' mean = linear(BERT pooled output)[:P], from its own BERT
    batch = model.collator(tiny_corpus(3))
    with torch.no_grad():
        pooled = source["bert"](input_ids=batch["x_ids"], attention_mask=batch["x_mask"]).pooler_output
        mean, _ = (pooled @ source["linear"].T).chunk(2, -1)
        assert torch.allclose(model.posterior_mean(model.encode(batch)), mean, atol=1e-5)


def test_optimus_checkpoint_adds_its_own_vector_whatever_the_embedding_scale(tiny_backbones, tmp_path):
    from baselines.optimus import load_optimus_checkpoint

    source = write_optimus_checkpoint(tiny_backbones, tmp_path / "optimus", latent_size=8)
    model = build(
        tiny_backbones,
        "optimus",
        latent_size=8,
        encoder=str(tiny_backbones["encoder"]),
        pooling="bert_pooler",
        path_settings={"embedding_scale": "token"},
    )
    assert model.path.to_embedding.scale != 1.0
    load_optimus_checkpoint(model, tmp_path / "optimus")
    z = torch.randn(5, 1, 8)
    with torch.no_grad():
        added = model.path.to_embedding(torch.zeros(5, 1, model.decoder.hidden_size), z)
    assert torch.allclose(added[:, 0], z.flatten(1) @ source["embedding"].T, atol=1e-5)


def test_optimus_checkpoint_that_does_not_fit_is_an_error(tiny_backbones, tmp_path):
    from baselines.optimus import load_optimus_checkpoint

    write_optimus_checkpoint(tiny_backbones, tmp_path / "optimus", latent_size=8)
    wrong_size = build(
        tiny_backbones, "optimus", latent_size=4, encoder=str(tiny_backbones["encoder"]), pooling="bert_pooler"
    )
    with pytest.raises(ValueError, match="checkpoint-decoder-7"):
        load_optimus_checkpoint(wrong_size, tmp_path / "optimus")
    cls_pooling = build(tiny_backbones, "optimus", latent_size=8, encoder=str(tiny_backbones["encoder"]))
    with pytest.raises(ValueError, match="bert_pooler"):
        load_optimus_checkpoint(cls_pooling, tmp_path / "optimus")
    fits = build(
        tiny_backbones, "optimus", latent_size=8, encoder=str(tiny_backbones["encoder"]), pooling="bert_pooler"
    )
    with pytest.raises(FileNotFoundError, match="checkpoint-encoder"):
        load_optimus_checkpoint(fits, tmp_path)
