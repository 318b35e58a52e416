"""What the workflow renders: which tables a run config asks for, and the files each one reads
and writes. Kept out of the rule files (Snakemake's linter wants rules and functions apart) and
kept in one place, so the rules, the default target and the docs agree on every path.

A table is rendered when the run config asks for its inputs: a `metrics` or `benchmark` table
when the experiment whose runs it reads runs (`experiments.<table>`, or for a companion table the
experiment its `runs_from` names: the latent probe's table reads Table 1's runs), a `data` table
when it is in `data_tables`, a `human` table when the experiment it rates (`human_eval.runs_from`)
runs. A human table's forms are always exported then; the table itself is only a default target
once every annotator's filled form is in place (`filled_form`), since those come from people, not
from a rule.
"""

from __future__ import annotations

import sys
from pathlib import Path

from della import REPO
from della.io import run_dir
from della.report.table_spec import TableSpec, table_spec
from della.report.tidy import DATA_EXPERIMENT

TABLE_EXTENSIONS = ("md", "csv", "tex")


# ------------------------------------------------------------------------------ a run's settings

# Model entry keys that are not the model's (the train rule passes the rest to the VAE config).
NOT_TRAINING_KEYS = ("label", "decoding", "train", "backbone", "decodes")


def backbone_key(config: dict, dataset: str, model: str | None = None) -> str:
    """The `backbones` key of the dataset's backbone, unless the model names its own (`backbone:`,
    Table 5)."""
    name = config["datasets"][dataset]["backbone"]
    if model is not None:
        name = config["models"][model].get("backbone", name)
    return name


def backbone_of(config: dict, dataset: str, model: str | None = None) -> dict:
    return config["backbones"][backbone_key(config, dataset, model)]


def encoder_backbone_of(config: dict, model: str) -> dict | None:
    name = config["models"][model].get("encoder_backbone")
    return config["backbones"][name] if name else None


# How a created (random-init) backbone relates to the run seed (`backbone_init`): "shared", one
# backbone for every seed (as a pretrained checkpoint is); "per_seed", one per run seed, created with
# seed backbone_seed + run seed, so that the spread over seeds includes the backbone's
# initialisation (the small scale). Run seed 0 gets the shared backbone's weights either way.
SHARED, PER_SEED = "shared", "per_seed"


def per_seed_backbones(config: dict) -> bool:
    return config.get("backbone_init", SHARED) == PER_SEED


def backbone_folder(config: dict, key: str, seed: int | None = None) -> str:
    """Where backbone `key`'s files are: its `name_or_path`, or under `per_seed` a created
    backbone's folder for run `seed` (None: the first configured seed's; the tokenizer, the same
    for every seed, is all a job without a seed reads)."""
    entry = config["backbones"][key]
    if "create" not in entry or not per_seed_backbones(config):
        return entry["name_or_path"]
    return f"{entry['name_or_path']}-seed{config['seeds'][0] if seed is None else int(seed)}"


def created_backbone(config: dict, folder: str) -> tuple[str, int]:
    """(key, the seed to create it with) of the created backbone whose folder is `folder`
    (backbone_folder's inverse, for the create_backbone rule)."""
    for key, entry in config["backbones"].items():
        if "create" not in entry:
            continue
        if not per_seed_backbones(config) and folder == entry["name_or_path"]:
            return key, config["backbone_seed"]
        prefix = f"{entry['name_or_path']}-seed"
        if per_seed_backbones(config) and folder.startswith(prefix) and folder[len(prefix) :].isdigit():
            return key, config["backbone_seed"] + int(folder[len(prefix) :])
    raise ValueError(
        f"{folder}: no created backbone in config backbones is written there "
        f"(backbone_init: {config.get('backbone_init', SHARED)})"
    )


def as_loaded(config: dict, key: str | None, seed: int | None = None) -> dict | None:
    """Backbone `key` as a job of run `seed` loads it: a pinned hub model from its prefetched
    folder (della/pipeline/prefetch.py), with its hub name and revision kept beside; a created one from
    its folder (backbone_folder); anything else as it is."""
    from della.pipeline.prefetch import cache_dir, is_pinned_hub_model

    if key is None:
        return None
    entry = config["backbones"][key]
    if not is_pinned_hub_model(entry):
        return {**entry, "name_or_path": backbone_folder(config, key, seed)}
    return {**entry, "name_or_path": cache_dir(config, key), "hub_name": entry["name_or_path"]}


def prefetched_models(config: dict, keys) -> list[str]:
    """The prefetch rule's completion files of the pinned hub models among backbone `keys`."""
    from della.pipeline.prefetch import DONE_FILE, cache_dir, is_pinned_hub_model

    return sorted(
        {
            f"{cache_dir(config, key)}/{DONE_FILE}"
            for key in keys
            if key is not None and is_pinned_hub_model(config["backbones"][key])
        }
    )


def feature_model_keys(config: dict) -> list[str]:
    """The backbone entries the MAUVE / BERTScore feature models name (by their `name_or_path`)."""
    evaluation = config["evaluation"]
    named = {evaluation.get("mauve", {}).get("feature_model"), evaluation.get("bertscore", {}).get("model")}
    return sorted(key for key, entry in config["backbones"].items() if entry["name_or_path"] in named)


def evaluation_as_loaded(config: dict) -> dict:
    """The evaluation section with each feature model that is a pinned backbone's name replaced
    by its prefetched folder."""
    evaluation = {
        section: dict(value) if isinstance(value, dict) else value for section, value in config["evaluation"].items()
    }
    for key in feature_model_keys(config):
        loaded = as_loaded(config, key)
        for section, field in (("mauve", "feature_model"), ("bertscore", "model")):
            if evaluation.get(section, {}).get(field) == config["backbones"][key]["name_or_path"]:
                evaluation[section][field] = loaded["name_or_path"]
    return evaluation


def train_settings(config: dict, dataset: str, model: str, entry: dict | None = None, seed: int | None = None) -> dict:
    """What the train rule passes to `della-bench train --settings` for (dataset, model): the
    model entry (`entry`: the workflow's copy with absolute file paths), its backbones, the
    dataset's task and lengths, and the training section with the model's `train:` overrides.
    `seed`: the run's (its backbones' folders under `backbone_init: per_seed`)."""
    entry = config["models"][model] if entry is None else entry
    data = config["datasets"][dataset]
    return {
        "model": {k: v for k, v in entry.items() if k not in NOT_TRAINING_KEYS},
        "decoder": as_loaded(config, backbone_key(config, dataset, model), seed),
        "encoder": as_loaded(config, entry.get("encoder_backbone"), seed),
        "conditional": data["preprocess"]["task"] == "conditional",
        "max_source_tokens": data["max_source_tokens"],
        "max_target_tokens": data["max_target_tokens"],
        "training": {**config["training"], **entry.get("train", {})},
    }


def generation_decoding(config: dict, dataset: str, model: str) -> dict:
    """`generation.decoding`, overridden by the dataset's, then the model's `decoding` (App. A.1:
    beam search for DELLA, and for every model on CNN/DM and Quora)."""
    return {
        **config["generation"]["decoding"],
        **config["datasets"][dataset].get("decoding", {}),
        **config["models"][model].get("decoding", {}),
    }


def trained_model(config: dict, model: str) -> str:
    """The model entry whose training run holds `model`'s trained model: itself, or for a
    decoding entry (`decodes:`) the entry it decodes."""
    return config["models"][model].get("decodes", model)


def trains(config: dict, model: str) -> bool:
    return trained_model(config, model) == model


def check_decoding_entries(config: dict, experiments: dict[str, dict]) -> None:
    """Each `decodes:` entry names a model that trains, with the same training on every dataset
    the entry runs on (else it would evaluate a model it does not describe)."""
    for model, entry in config["models"].items():
        if "decodes" not in entry:
            continue
        where = f"models.{model}.decodes"
        base = entry["decodes"]
        if base not in config["models"]:
            raise ValueError(f"{where}: {base!r} is not in `models`")
        if base == model:
            raise ValueError(f"{where}: an entry cannot decode itself; name the model that trains")
        if not trains(config, base):
            raise ValueError(
                f"{where}: {base!r} decodes {config['models'][base]['decodes']!r} itself; name the model that trains"
            )
        datasets = sorted({d for spec in experiments.values() if model in spec["models"] for d in spec["datasets"]})
        for dataset in datasets:
            own, theirs = train_settings(config, dataset, model), train_settings(config, dataset, base)
            differing = _differing(own, theirs)
            if differing:
                raise ValueError(
                    f"{where}: {base!r} trains differently on {dataset} ({', '.join(differing)}); "
                    "a decoding entry may differ only in label and decoding"
                )


def _differing(own: dict, theirs: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the values two settings documents disagree on."""
    paths = []
    for key in sorted(set(own) | set(theirs)):
        mine, other = own.get(key), theirs.get(key)
        if isinstance(mine, dict) and isinstance(other, dict):
            paths += _differing(mine, other, f"{prefix}{key}.")
        elif mine != other:
            paths.append(f"{prefix}{key}")
    return paths


def table_experiment(spec: TableSpec) -> str:
    """The experiment whose rows of the long table (della/report/tidy.py) a table shows: its runs'
    (`TableSpec.experiment`), or for a data table the datasets' statistics."""
    return DATA_EXPERIMENT if spec.kind == "data" else spec.experiment


def tidy_files(results_dir: str, experiment: str) -> list[str]:
    """An experiment's part of `metrics.csv` and its run settings: what the experiment's tables,
    figures and findings read, so that they wait for (and follow) its runs only."""
    return [f"{results_dir}/metrics/{experiment}.csv", f"{results_dir}/metrics/{experiment}_run_settings.json"]


def table_specs(tables: dict) -> list[TableSpec]:
    """Every table of config/tables.yaml (as `load_spec` read it), checked."""
    return [table_spec(tables, table_id) for table_id in tables["tables"]]


def tables_to_render(config: dict, tables: dict) -> dict[str, str]:
    """table id -> kind, for the tables of config/tables.yaml that the run config asks for."""
    experiments, data_tables = config["experiments"], config.get("data_tables", [])
    chosen = {}
    for spec in table_specs(tables):
        if spec.kind == "data":
            wanted = spec.id in data_tables
        elif spec.kind == "human":
            wanted = spec.human_eval["runs_from"] in experiments
        else:
            wanted = spec.experiment in experiments
        if wanted:
            chosen[spec.id] = spec.kind
    return chosen


def of_kind(config: dict, tables: dict, kind: str) -> list[str]:
    return [t for t, k in tables_to_render(config, tables).items() if k == kind]


def table_outputs(results_dir: str, table_id: str) -> dict[str, str]:
    """A table's files as {output name: path}: the render rules' outputs and the targets' list."""
    return {ext: f"{results_dir}/tables/{table_id}.{ext}" for ext in TABLE_EXTENSIONS}


# ----------------------------------------------------------------------------- human evaluation


def human_datasets(config: dict, spec: TableSpec) -> list[str]:
    """The table's datasets that its rated experiment runs."""
    ran = config["experiments"][spec.human_eval["runs_from"]]["datasets"]
    return [d for d in spec.dataset_names if d in ran]


def human_runs(config: dict, spec: TableSpec, dataset: str, filename: str) -> list[str]:
    """`filename` of every rated run of a dataset: the experiment's models, first seed."""
    models = config["experiments"][spec.human_eval["runs_from"]]["models"]
    return [f"{run_dir(dataset, model, config['seeds'][0])}/{filename}" for model in models]


def human_eval_inputs_flag(config: dict) -> str:
    """The export's `--n-inputs` when the config overrides the protocol's number (the rehearsal), else nothing."""
    n_inputs = config.get("human_eval", {}).get("n_inputs")
    return "" if n_inputs is None else f"--n-inputs {int(n_inputs)}"


def forms_dir(results_dir: str, table_id: str, dataset: str) -> str:
    """What annotators get (and only that): one CSV and one HTML form each."""
    return f"{results_dir}/human_eval/{table_id}/{dataset}/forms"


def key_file(results_dir: str, table_id: str, dataset: str) -> str:
    """The un-blinding key, in a folder of its own so that sending the forms never sends it."""
    return f"{results_dir}/human_eval/{table_id}/keys/{dataset}.json"


def filled_form(results_dir: str, table_id: str, dataset: str, annotator: str) -> str:
    """Where an annotator's returned form goes."""
    return f"{results_dir}/human_eval/{table_id}/{dataset}/filled/{annotator}.csv"


def filled_forms(config: dict, results_dir: str, spec: TableSpec) -> list[str]:
    return [
        filled_form(results_dir, spec.id, dataset, annotator)
        for dataset in human_datasets(config, spec)
        for annotator in spec.human_eval["annotators"]
    ]


def human_exports(config: dict, results_dir: str, spec: TableSpec) -> list[str]:
    datasets = human_datasets(config, spec)
    return [forms_dir(results_dir, spec.id, d) for d in datasets] + [
        key_file(results_dir, spec.id, d) for d in datasets
    ]


SNAKEFILE = REPO / "Snakefile"


def snakemake_command(
    workdir: Path, config_files: Path | list[Path], *extra: str, targets=(), python: Path | str = sys.executable
) -> list[str]:
    """`python -m snakemake` on this repository's Snakefile in `workdir`, with `config_files`
    merged in order; the targets come first, since `--configfile` takes every word after it."""
    files = [config_files] if isinstance(config_files, str | Path) else list(config_files)
    return [
        str(python),
        "-m",
        "snakemake",
        *targets,
        "--snakefile",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--configfile",
        *map(str, files),
        *extra,
    ]


# Top folders whose second path component is a dataset (raw/yelp/..., data/yelp/..., runs/yelp/...).
DATASET_FOLDERS = ("raw", "data", "runs")


def command_line_targets(argv: list[str]) -> list[str] | None:
    """The targets of the `snakemake` command line `argv` (parsed by Snakemake's own argument
    parser, so `--configfile a b target` reads as Snakemake reads it); None if it is not one.
    Snakemake hands its targets to the workflow only after parsing it, too late for a start-up
    check."""
    from snakemake.cli import get_argument_parser

    try:
        args, _ = get_argument_parser().parse_known_args(argv)
    except SystemExit:  # not a Snakemake command line (the workflow is run through the API)
        return None
    return list(args.targets or [])


def datasets_asked(config: dict, targets) -> list[str] | None:
    """The datasets the requested `targets` need (Snakemake's target rules and files), or None
    for all of them: no target (the default, `all`), a data table (Table 7 reads every dataset),
    or a target this cannot map (a results file, another rule)."""
    asked: set[str] = set()
    for target in targets or ():
        parts = Path(target).parts
        if target in config["experiments"]:
            asked |= set(config["experiments"][target]["datasets"])
        elif len(parts) >= 2 and parts[0] in DATASET_FOLDERS and parts[1] in config["datasets"]:
            asked.add(parts[1])
        else:
            return None
    return sorted(asked) if asked else None


def workflow_targets(
    config: dict, tables: dict, results_dir: str, workdir: Path = Path("."), only: str | None = None
) -> list[str]:
    """Every asked-for table (or only the table `only` and its companions, which read its runs),
    and for human tables the forms (plus the table once every filled form exists under `workdir`)."""
    targets = []
    for table_id, kind in tables_to_render(config, tables).items():
        spec = table_spec(tables, table_id)
        if only is not None and only not in (table_id, spec.runs_from):
            continue
        if kind != "human":
            targets += table_outputs(results_dir, table_id).values()
            continue
        targets += human_exports(config, results_dir, spec)
        if all((workdir / path).exists() for path in filled_forms(config, results_dir, spec)):
            targets += table_outputs(results_dir, table_id).values()
    return targets
