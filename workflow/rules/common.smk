# Shared helpers: config validation, paths, and the one place each rule's settings are built.
import json
from pathlib import Path

from snakemake.utils import validate

validate(config, "../../config/schema.yaml")

REPO = Path(workflow.basedir)
RESULTS = config["results_dir"]
RUN = "runs/{dataset}/{model}/seed{seed}"
# Outputs depend on the package too: bumping its version reruns the jobs whose params name it.
PACKAGE_VERSION = __import__("della").__version__


def repo_path(path):
    """Relative config paths (raw data, table specs) are relative to the repository root."""
    path = Path(path)
    return path if path.is_absolute() else REPO / path


def parent(path):
    """The directory a rule's file lives in (derived from its input/output, never hard-coded)."""
    return str(Path(path).parent)


def as_json(section):
    return json.dumps(section, sort_keys=True)


def experiment_runs(table=None):
    """(dataset, model, seed) of every run, or of one table's runs."""
    tables = [table] if table else list(config["experiments"])
    runs = []
    for name in tables:
        spec = config["experiments"][name]
        for dataset in spec["datasets"]:
            for model in spec["models"]:
                for seed in config["seeds"]:
                    if (dataset, model, seed) not in runs:
                        runs.append((dataset, model, seed))
    return runs


def used_datasets():
    names = [d for spec in config["experiments"].values() for d in spec["datasets"]]
    if config.get("data_tables"):
        names += list(config["datasets"])
    return sorted(set(names))


def backbone_of(dataset):
    return config["backbones"][config["datasets"][dataset]["backbone"]]


def encoder_backbone_of(model):
    name = config["models"][model].get("encoder_backbone")
    return config["backbones"][name] if name else None


def created_backbone_dirs(wildcards):
    """Backbone directories to wait for: those that create_backbone writes (sample scale)."""
    entries = [backbone_of(wildcards.dataset), encoder_backbone_of(wildcards.model)]
    return [e["name_or_path"] for e in entries if e is not None and "create" in e]


def model_entry(model):
    """A model's config entry with its files (a plug-in .py, an Optimus checkpoint to start
    from) as absolute paths, so that a job finds them whatever its working directory."""
    entry = dict(config["models"][model])
    files = {
        "plugin": entry.get("plugin", "").endswith(".py"),
        "init_from": "init_from" in entry,
    }
    for key in (key for key, is_path in files.items() if is_path):
        path = repo_path(entry[key])
        if not path.exists():
            raise ValueError(
                f"models.{model}.{key}: {entry[key]!r} does not exist "
                f"(a relative path is relative to {REPO})"
            )
        entry[key] = str(path)
    return entry


# A missing plug-in file or checkpoint is an error before any job runs.
for _model in config["models"]:
    model_entry(_model)


def train_settings(wildcards):
    dataset = config["datasets"][wildcards.dataset]
    model = model_entry(wildcards.model)
    return as_json(
        {
            "model": model,
            "decoder": backbone_of(wildcards.dataset),
            "encoder": encoder_backbone_of(wildcards.model),
            "conditional": dataset["preprocess"]["task"] == "conditional",
            "max_source_tokens": dataset["max_source_tokens"],
            "max_target_tokens": dataset["max_target_tokens"],
            "training": {**config["training"], **model.get("train", {})},
            "package_version": PACKAGE_VERSION,
        }
    )


def generation_settings(wildcards):
    """generation, with decoding overridden by the dataset's, then the model's `decoding`
    (App. A.1: beam search for DELLA, and for every model on CNN/DM and Quora)."""
    decoding = {
        **config["generation"]["decoding"],
        **config["datasets"][wildcards.dataset].get("decoding", {}),
        **config["models"][wildcards.model].get("decoding", {}),
    }
    return as_json({**config["generation"], "decoding": decoding})


def model_label(wildcards):
    label = config["models"][wildcards.model]["label"]
    return label if label is not None else backbone_of(wildcards.dataset)["label"]


def evaluation_settings(wildcards):
    return as_json(
        {
            "evaluation": config["evaluation"],
            "dataset": wildcards.dataset,
            "model": wildcards.model,
            "label": model_label(wildcards),
            "package_version": PACKAGE_VERSION,
        }
    )


def table_metrics_files(wildcards):
    return [
        f"runs/{d}/{m}/seed{s}/metrics.json"
        for d, m, s in experiment_runs(wildcards.table)
    ]


def all_table_outputs():
    """The tables the config asks for (della/targets.py; human tables: their forms)."""
    from della.targets import workflow_targets

    return workflow_targets(config, TABLES, RESULTS)
