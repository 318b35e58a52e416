"""The whole DAG on a tiny config in a temporary directory: every table of that config is
rendered with finite numbers for every (dataset, model), and a second run has nothing to do.

The tiny config is derived from config/config.yaml (so it cannot drift from the real one): the
same datasets, models and metrics, with fewer examples and steps. It covers both backbone
families (GPT-2: Table 1 with every latent path incl. Optimus' BERT encoder; BART: Table 9) and
the data table (Table 7).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from della.pipeline import overlays

from helpers import ROOT
from helpers.workflow import TINY_TABLES, job_stats, one_run_config, snakemake, tiny_config, write_config

TABLES = yaml.safe_load((ROOT / "config" / "tables.yaml").read_text())


@pytest.fixture(scope="module")
def finished_workflow(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    config = tiny_config()
    config_file = write_config(workdir / "tiny.yaml", config)
    result = snakemake(workdir, config_file)
    logs = "\n".join(
        f"--- {p}\n{p.read_text()[-2000:]}"
        for p in sorted((workdir / "logs").rglob("*.log"))
        if "rror" in p.read_text()
    )
    assert result.returncode == 0, f"{result.stderr[-4000:]}\n{logs}"
    return workdir, config, config_file


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def expected_rows(config: dict, table: str) -> set[tuple[str, str]]:
    spec = config["experiments"][table]
    labels = {}
    for model in spec["models"]:
        labels[model] = config["models"][model]["label"]
    rows = set()
    for dataset in spec["datasets"]:
        backbone_label = config["backbones"][config["datasets"][dataset]["backbone"]]["label"]
        rows |= {(dataset, label or backbone_label) for label in labels.values()}
    return rows


@pytest.mark.parametrize("table", TINY_TABLES)
def test_every_metric_table_has_finite_numbers_for_every_run(finished_workflow, table):
    workdir, config, _ = finished_workflow
    tables = workdir / config["results_dir"] / "tables"
    for ext in ("md", "csv", "tex"):
        assert (tables / f"{table}.{ext}").stat().st_size > 0
    rows = read_csv(tables / f"{table}.csv")
    seen = set()
    for row in rows:
        if row["ours_mean"] not in ("", "n/a"):
            assert math.isfinite(float(row["ours_mean"])), row
            seen.add((row["dataset"], row["model"]))
    assert seen == expected_rows(config, table)
    # every model with a latent reports the representation metrics; every model the generation ones
    metrics_per_row = {}
    for row in rows:
        if row["ours_mean"] not in ("", "n/a"):
            metrics_per_row.setdefault((row["dataset"], row["model"]), set()).add(row["metric"])
    for (dataset, model), names in metrics_per_row.items():
        assert {"PPL", "BLEU", "MAUVE", "Self-BLEU", "Dist", "JS", "CND"} <= names or {
            "BLEU",
            "ROUGE-1",
            "BERTScore",
        } <= names, (dataset, model, names)
        if model not in ("GPT-2", "BART"):
            assert "KL" in names, (dataset, model)


def test_a_configfile_replaces_the_default_config(finished_workflow):
    """--configfile must not be deep-merged into config/config.yaml (a paper config would inherit
    sample-scale settings): only the tiny config's tables (and their companions) exist."""
    workdir, config, _ = finished_workflow
    rendered = {p.stem for p in (workdir / config["results_dir"] / "tables").glob("*.md")}
    companions = {t for t, spec in TABLES["tables"].items() if spec.get("runs_from") in TINY_TABLES}
    assert rendered == set(TINY_TABLES) | companions | set(config["data_tables"])


def test_probe_table_and_figure_show_every_label_of_the_data(finished_workflow):
    """The latent probe's companion of Table 1 and its figure: a column per label of each dataset
    whose records carry `labels`, none for the others (named in the footer)."""
    workdir, config, _ = finished_workflow
    results = workdir / config["results_dir"]
    rows = read_csv(results / "tables" / "table1_probe.csv")
    md = (results / "tables" / "table1_probe.md").read_text()
    for dataset in config["experiments"]["table1"]["datasets"]:
        first = json.loads((workdir / "data" / dataset / "train.jsonl").read_text().splitlines()[0])
        della = {
            row["metric"]: row["ours_mean"] for row in rows if (row["dataset"], row["model"]) == (dataset, "DELLA")
        }
        expected = {
            f"{m}[{label}]"
            for label in first.get("labels", {})
            for m in ("Probe", "Probe-F1", "Probe-sample", "Probe-untrained", "Majority")
        }
        assert set(della) == expected, dataset
        assert all(0 <= float(value) <= 100 for value in della.values()), della
        assert (f"{dataset}: no metric of its files matches" in md) == (not expected), dataset
    for ext in ("png", "pdf", "csv"):
        assert (results / "figures" / f"probe.{ext}").stat().st_size > 0


def test_data_table_lists_every_dataset(finished_workflow):
    workdir, config, _ = finished_workflow
    rows = read_csv(workdir / config["results_dir"] / "tables" / "table7.csv")
    counted = {row["dataset"] for row in rows if row["metric"] == "train" and float(row["ours_mean"]) > 0}
    assert counted == set(config["datasets"])


def test_table7_says_how_many_texts_each_split_cuts(finished_workflow):
    """data/{dataset}/lengths.json counts the texts longer than the dataset's token limits in its
    backbone's tokenizer (recounted here one by one), and Table 7's footer shows the counts."""
    import json

    from della.models.backbone import load_tokenizer
    from della.run.batches import load_records, target_of

    workdir, config, _ = finished_workflow
    footer = (workdir / config["results_dir"] / "tables" / "table7.md").read_text()
    for dataset, entry in config["datasets"].items():
        lengths = json.loads((workdir / "data" / dataset / "lengths.json").read_text())
        tokenizer = load_tokenizer(str(workdir / config["backbones"][entry["backbone"]]["name_or_path"]))
        for split, counted in lengths["splits"].items():
            records = load_records(workdir / "data" / dataset / f"{split}.jsonl")

            def longer(text, limit, tokenizer=tokenizer):
                return len(tokenizer(text, add_special_tokens=False)["input_ids"]) > limit

            assert counted["targets_cut"] == sum(longer(target_of(r), entry["max_target_tokens"]) for r in records)
            if "source" in records[0]:
                assert counted["sources_cut"] == sum(longer(r["source"], entry["max_source_tokens"]) for r in records)
            cut = f"{counted.get('sources_cut', 0)}/{counted['targets_cut']} of {counted['examples']}"
            assert f'"{split}":"{cut}"' in footer, (dataset, split, cut)
    assert '"sources/targets cut"' in footer


def test_metrics_record_their_settings_and_provenance(finished_workflow):
    import json

    workdir, _, _ = finished_workflow
    document = json.loads(next((workdir / "runs" / "yelp" / "della").glob("seed*/metrics.json")).read_text())
    assert document["metrics"]["PPL"]["settings"]["iw_samples"] == 4
    assert document["settings"]["generation"]["generation"]["decoding"]["strategy"]
    assert document["versions"]["torch"] and document["seed"] == 0


def test_second_run_has_nothing_to_do(finished_workflow):
    workdir, _, config_file = finished_workflow
    result = snakemake(workdir, config_file, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def test_every_run_stage_has_a_benchmark_record(finished_workflow):
    """`benchmark:` files (Table 6): wall time and memory of each stage of each run; a decoding
    entry (`decodes:`) has no train stage."""
    workdir, config, _ = finished_workflow
    runs = {(d, m) for spec in config["experiments"].values() for d in spec["datasets"] for m in spec["models"]}
    for stage in ("train", "generate", "evaluate"):
        for dataset, model in runs:
            path = workdir / config["results_dir"] / "benchmarks" / stage / dataset / model / "seed0.tsv"
            if stage == "train" and "decodes" in config["models"][model]:
                assert not path.exists(), path
                continue
            rows = list(csv.DictReader(path.open(encoding="utf-8"), delimiter="\t"))
            assert len(rows) == 1 and float(rows[0]["s"]) > 0, path


def decoding_entries(config: dict) -> dict[str, str]:
    """model -> the model it decodes, for every `decodes:` entry an experiment runs."""
    run = {m for spec in config["experiments"].values() for m in spec["models"]}
    return {m: e["decodes"] for m, e in config["models"].items() if "decodes" in e and m in run}


# Metrics computed from the samples; every other metric of a run comes from its model and the test set.
FROM_SAMPLES = ("BLEU", "CND", "MAUVE", "Self-BLEU", "Dist", "JS", "ROUGE", "BERTScore")


def from_samples(metric: str) -> bool:
    return any(metric == name or metric.startswith((f"{name}-", f"{name}@")) for name in FROM_SAMPLES)


def test_a_decoding_entry_decodes_and_evaluates_its_base_model_with_its_own_decoding(finished_workflow):
    """della_sampled (`decodes: della`) trains nothing: its runs hold no model and no training
    curves; its samples come from della's model with the generation section's decoding, so its
    generations differ from della's beam search while every number computed from the model alone
    (PPL, ELBO, KL, MI, AU, the probe) is della's, to the last digit."""
    workdir, config, _ = finished_workflow
    entries = decoding_entries(config)
    assert entries, "the sample config should exercise a decoding entry"
    for model, base in entries.items():
        datasets = [d for spec in config["experiments"].values() if model in spec["models"] for d in spec["datasets"]]
        for dataset in datasets:
            own, theirs = (workdir / "runs" / dataset / m / "seed0" for m in (model, base))
            assert not (own / "model").exists() and not (own / "train_done.json").exists()
            assert not (workdir / config["results_dir"] / "figures" / "training" / dataset / model).exists()
            decoding = json.loads((own / "samples.settings.json").read_text())["generation"]["decoding"]
            base_decoding = json.loads((theirs / "samples.settings.json").read_text())["generation"]["decoding"]
            assert decoding == config["generation"]["decoding"] != base_decoding
            assert (own / "samples.jsonl").read_bytes() != (theirs / "samples.jsonl").read_bytes()
            metrics = json.loads((own / "metrics.json").read_text())
            base_metrics = json.loads((theirs / "metrics.json").read_text())
            assert metrics["model"] == model and metrics["label"] == config["models"][model]["label"]
            assert metrics["metrics"].keys() == base_metrics["metrics"].keys()
            model_only = [name for name in base_metrics["metrics"] if not from_samples(name)]
            assert {"PPL", "KL", "MI", "AU"} <= set(model_only) and "MAUVE" not in model_only
            for name in model_only:
                assert metrics["metrics"][name]["value"] == base_metrics["metrics"][name]["value"], name


def rerun_rules(workdir: Path, config: dict, change) -> dict[str, int]:
    """Rules (and job counts) a dry run schedules after `change` edits a copy of the config."""
    import copy

    changed = copy.deepcopy(config)
    change(changed)
    result = snakemake(workdir, write_config(workdir / "changed.yaml", changed), "-n", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-3000:]
    return {rule: n for rule, n in job_stats(result.stdout).items() if rule != "all"}


def n_runs(config: dict, model: str | None = None) -> int:
    return len(
        {
            (d, m)
            for spec in config["experiments"].values()
            for d in spec["datasets"]
            for m in spec["models"]
            if model in (None, m)
        }
    )


def metric_tables(config: dict, model: str | None = None) -> int:
    """Metrics tables the config renders (that read runs of `model`), companions included."""
    from della.pipeline.targets import of_kind
    from della.report.table_spec import table_spec

    experiments = config["experiments"]
    return sum(
        model in (None, *experiments[table_spec(TABLES, t).experiment]["models"])
        for t in of_kind(config, TABLES, "metrics")
    )


def probe_figure(config: dict, model: str | None = None) -> dict[str, int]:
    """The probe figure's job, where its experiment's part of metrics.csv holds runs of `model`
    (all models: None)."""
    figure = yaml.safe_load((ROOT / "config" / "figures.yaml").read_text())["figures"]["probe"]
    experiment = config["experiments"].get(figure["experiment"])
    drawn = experiment is not None and model in (None, *experiment["models"])
    return {"figure_probe": 1} if drawn else {}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"latent_size": 16}, "'della' trains differently on yahoo (model.latent_size)"),
        ({"train": {"learning_rate": 0.5}}, "'della' trains differently on yahoo (training.learning_rate)"),
        ({"decodes": "della_large"}, "'della_large' is not in `models`"),
        ({"decodes": "della_sampled"}, "an entry cannot decode itself"),
        ({"decodes": "della_twice"}, "'della_twice' decodes 'della' itself"),
    ],
)
def test_a_decoding_entry_that_would_not_describe_its_model_is_refused(change, message):
    """A `decodes:` entry may change only its label and decoding; anything else would evaluate
    a model the entry does not describe."""
    from della.pipeline.targets import check_decoding_entries

    config = tiny_config()
    config["models"]["della_twice"] = {**config["models"]["della_sampled"]}
    config["models"]["della_sampled"].update(change)
    experiments = {"table1": {"datasets": ["yelp", "yahoo"], "models": ["della", "della_sampled"]}}
    with pytest.raises(ValueError) as error:
        check_decoding_entries(config, experiments)
    assert str(error.value).startswith("models.della_sampled.decodes: ") and message in str(error.value)


def test_a_decoding_entry_error_stops_the_workflow_before_any_job(tmp_path):
    config = one_run_config()
    config["experiments"]["fig3"]["models"].append("della_sampled")
    config["models"]["della_sampled"]["latent_size"] = 16
    result = snakemake(tmp_path, write_config(tmp_path / "bad.yaml", config), "-n")
    assert result.returncode != 0
    assert "models.della_sampled.decodes: 'della' trains differently on yelp (model.latent_size)" in result.stdout


def test_a_setting_reruns_only_the_rules_that_use_it(finished_workflow):
    """Each rule's params hold only its own config section (docs/workflow.md)."""
    workdir, config, _ = finished_workflow
    tables = metric_tables(config)
    evaluation = rerun_rules(workdir, config, lambda c: c["evaluation"]["representation"].update(iw_samples=3))
    # FINDINGS.md and metrics.csv read every run's numbers, so they follow any change to them; each
    # experiment's part of metrics.csv (rule tidy_experiment) follows its own runs only
    experiments = len(config["experiments"])
    assert evaluation == {
        "evaluate": n_runs(config),
        "render_metrics_table": tables,
        "findings": 1,
        "tidy_experiment": experiments,
        "tidy_metrics": 1,
        **probe_figure(config),
    }
    generation = rerun_rules(workdir, config, lambda c: c["generation"].update(num_unconditional=15))
    assert generation == {
        "generate": n_runs(config),
        "evaluate": n_runs(config),
        "render_metrics_table": tables,
        "findings": 1,
        "tidy_experiment": experiments,
        "tidy_metrics": 1,
        **probe_figure(config),
    }
    # a model's decoding is a generation setting: that model is re-sampled, not retrained
    decoding = rerun_rules(workdir, config, lambda c: c["models"]["della"]["decoding"].update(num_beams=2))
    with_della = sum("della" in spec["models"] for spec in config["experiments"].values())
    assert decoding == {
        "generate": n_runs(config, "della"),
        "evaluate": n_runs(config, "della"),
        "render_metrics_table": metric_tables(config, "della"),
        "findings": 1,
        "tidy_experiment": with_della,
        "tidy_metrics": 1,
        **probe_figure(config, "della"),
    }
    resources = rerun_rules(workdir, config, lambda c: c["resources"].update(mem_mb=1234, runtime_factor=7))
    assert resources == {}
    training = rerun_rules(workdir, config, lambda c: c["training"].update(learning_rate=0.001))
    trained = n_runs(config) - sum(n_runs(config, m) for m in decoding_entries(config))
    assert training["train"] == trained and training["evaluate"] == n_runs(config)
    assert "preprocess" not in training


def test_per_seed_backbones_vary_the_initialisation_with_the_run_seed(finished_workflow):
    """`backbone_init: per_seed`: each run seed trains on its own random-init backbones (seed
    backbone_seed + run seed), seed 0's the shared backbone's weights."""
    import copy

    from safetensors.torch import load_file

    workdir, config, _ = finished_workflow
    changed = copy.deepcopy(config)
    changed.update(seeds=[0, 1], backbone_init="per_seed")
    config_file = write_config(workdir / "per_seed.yaml", changed)
    dry = snakemake(workdir, config_file, "-n", "--printshellcmds")
    assert dry.returncode == 0, dry.stderr[-3000:]
    created = job_stats(dry.stdout)["create_backbone"]
    assert created >= 2 and created % 2 == 0  # every backbone the runs read, once per seed
    train_lines = [line for line in dry.stdout.splitlines() if " train --" in line]
    for seed in (0, 1):
        seed_runs = [line for line in train_lines if f"--seed {seed} " in line or line.endswith(f"--seed {seed}")]
        assert seed_runs and all(f"models/backbones/gpt2-seed{seed}" in line for line in seed_runs if "/gpt2" in line)
    result = snakemake(workdir, config_file, targets=["models/backbones/gpt2-seed0", "models/backbones/gpt2-seed1"])
    assert result.returncode == 0, result.stderr[-3000:]
    weights = {
        name: load_file(workdir / "models" / "backbones" / name / "model.safetensors")
        for name in ("gpt2", "gpt2-seed0", "gpt2-seed1")
    }
    assert weights["gpt2"].keys() == weights["gpt2-seed1"].keys()
    assert all(torch.equal(weights["gpt2"][k], weights["gpt2-seed0"][k]) for k in weights["gpt2"])
    assert not all(torch.equal(weights["gpt2"][k], weights["gpt2-seed1"][k]) for k in weights["gpt2"])


def test_every_table_cell_is_a_mean_of_rows_of_metrics_csv(finished_workflow):
    """results/{scale}/metrics.csv holds every number of every rendered table (issue 20)."""
    import pandas as pd

    from della.report.table_spec import table_spec

    from helpers.tables import assert_table_cells_come_from_tidy

    workdir, config, _ = finished_workflow
    results = workdir / config["results_dir"]
    tidy = pd.read_csv(results / "metrics.csv")
    assert set(json.loads((results / "run_settings.json").read_text())) == set(tidy.run_settings_hash.dropna())
    # metrics.csv is its parts joined, and the parts are what the tables read
    parts = pd.concat([pd.read_csv(path) for path in sorted((results / "metrics").glob("*.csv"))])
    assert len(parts) == len(tidy) and set(parts.experiment) == set(tidy.experiment)
    rendered = sorted(p.stem for p in (results / "tables").glob("*.csv"))
    assert {"table1", "table1_probe", "table9", *config["data_tables"]} <= set(rendered)
    checked = 0
    for table in rendered:
        spec = table_spec(TABLES, table)
        checked += assert_table_cells_come_from_tidy(results / "tables" / f"{table}.csv", tidy, spec.experiment, spec)
    assert checked > 100


# Files the report must hold: the tables (Markdown, CSV), the figures (PNG; Markdown for the
# text figures), FINDINGS.md and metrics.csv. PDF and LaTeX copies are for papers, not the report.
REPORT_PATTERNS = ("tables/*.md", "tables/*.csv", "figures/**/*.png", "figures/**/*.md", "FINDINGS.md", "metrics.csv")
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium package (.ci/run installs it)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        CHROMIUM,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--virtual-time-budget=15000",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_report_has_every_table_and_figure_and_chromium_draws_it(finished_workflow, tmp_path):
    from PIL import Image

    workdir, config, config_file = finished_workflow
    report = workdir / "report.html"
    result = snakemake(workdir, config_file, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    html = report.read_text(encoding="utf-8")
    results = workdir / config["results_dir"]
    expected = sorted({p.relative_to(workdir).as_posix() for pattern in REPORT_PATTERNS for p in results.glob(pattern)})
    assert any(name.endswith(".png") and "/training/" in name for name in expected)  # the figures are there
    missing = [name for name in expected if f'"{name}": {{' not in html]
    assert not missing, f"not in the report: {missing}"
    # a real browser renders it: the page's own script draws its navigation, and the screenshot
    # is not a blank page
    dom = chromium(report, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    # what the page shows, not the data its scripts carry (which hold every name anyway)
    shown = re.sub(r"<(script|style)\b.*?</\1>", " ", dom.stdout, flags=re.S)
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", shown))
    for text in ("Tables", "Figures", "della-bench regenerates the tables and figures"):
        assert text in shown, (text, shown[:2000])
    shot = tmp_path / "report.png"
    drawn = chromium(report, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1280,900")
    assert drawn.returncode == 0 and shot.exists(), drawn.stderr[-2000:]
    colours = Image.open(shot).convert("L").getextrema()
    assert colours[1] - colours[0] > 64, f"blank page: grey levels {colours}"


def test_workflow_is_lint_and_snakefmt_clean():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    lint = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, env=env
    )
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]
    files = [str(ROOT / "Snakefile"), str(ROOT / "workflow")]
    fmt = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True, env=env)
    assert fmt.returncode == 0, fmt.stderr[-3000:]


def test_quora_split_ids_are_inputs_relative_to_the_repository_root(tmp_path):
    """The preprocess rule gets Quora's id files as absolute paths and waits for them."""
    config = overlays.load("config/config.yaml")
    quora = config["datasets"]["quora"]["preprocess"]
    del quora["split_sizes"]
    ids = {split: tmp_path / f"{split}_ids.txt" for split in ("valid", "test")}
    quora["split_ids"] = {split: os.path.relpath(path, ROOT) for split, path in ids.items()}
    ids["valid"].write_text("1\n")
    config_file = write_config(tmp_path / "config.yaml", config)
    (tmp_path / "work").mkdir()
    result = snakemake(tmp_path / "work", config_file, "-n", "-p", targets=["data/quora/stats.json"])
    assert result.returncode != 0 and "Missing input files for rule preprocess" in result.stdout + result.stderr
    assert str(ids["test"]) in result.stdout + result.stderr
    ids["test"].write_text("2\n")
    result = snakemake(tmp_path / "work", config_file, "-n", "-p", targets=["data/quora/stats.json"])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert json.dumps({"test": str(ids["test"]), "valid": str(ids["valid"])}) in result.stdout
