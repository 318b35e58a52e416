# Shared helpers: config validation, paths, and the one place each rule's settings (params) and
# cluster resources are built. A rule's params hold only the config it uses: a changed param
# reruns that rule and what depends on it (docs/workflow.md), resources rerun nothing.
import json
import os
import sys
from pathlib import Path

from jsonschema.exceptions import ValidationError
from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import DeploymentMethod
from snakemake.logging import logger
from snakemake.utils import validate

import della.cluster.disk as della_disk
import della.pipeline.overlays as della_overlays
import della.pipeline.prefetch as della_prefetch
import della.pipeline.resolved as della_resolved
import della.cluster.resources as della_resources
import della.pipeline.targets as della_targets
from della.pipeline.config_errors import schema_error_message
from della.io import RUN_DIR
from della.data.download import DownloadError, check_data_root
from della.cluster.attempts import retry_for
from della.pipeline.jobenv import (
    export_job_environment,
    ignore_time_limit_warning_in_job_step,
)
from della.cluster.gpu_memory import GpuTooSmall, gpu_model_for
from della.run.lengths import SequenceTooLong, check_run_lengths
from della.pipeline.warm import start_server as start_warm_server
from metrics.embedding import MINILM_ALIAS

# A scale's file names the file it extends and says how it differs (della/pipeline/overlays.py): composed
# here, before validation, so that `--config` and chained config files still override.
try:
    config = della_overlays.compose(config, Path(workflow.basedir))
except ValueError as error:
    raise WorkflowError(f"config: {error}") from None
try:
    validate(config, "../../config/schema.yaml")
except WorkflowError as error:
    # Snakemake raises it while handling jsonschema's error, whose 85-line dump names the key's
    # path near its end: say the path and the key first (della/pipeline/config_errors.py).
    if not isinstance(error.__context__, ValidationError):
        raise
    raise WorkflowError(schema_error_message(error.__context__)) from None

REPO = Path(workflow.basedir)
MODEL_CACHE = config["model_cache"]
PREFETCH_DONE = della_prefetch.DONE_FILE
PINNED_BACKBONES = sorted(
    key
    for key, entry in config["backbones"].items()
    if della_prefetch.is_pinned_hub_model(entry)
)
RESULTS = config["results_dir"]
RUN = RUN_DIR
# TF32 matmuls on Ampere and newer cards (della/run/numerics.py): a param of every GPU rule, since it
# changes their numbers
TF32 = "on" if config["tf32"] else "off"
STAGES = ("train", "generate", "evaluate")
# Outputs depend on the package too: bumping its version reruns the jobs whose params name it.
PACKAGE_VERSION = __import__("della").__version__
# Every rule runs `della-bench` as `"$DELLA_PYTHON" -m della`, from this repository (on
# PYTHONPATH). Not the console script: it exists only where the package is installed, and the
# environment `--sdm conda` builds from environment.yml holds its dependencies only
# (docs/environment.md). The interpreter is the job's environment's under --sdm conda (or
# apptainer, with an image), else the one running Snakemake: the venv's, activated or not. Set
# here, in the environment jobs inherit (SLURM jobs too: --export=ALL), not in the shell text or
# params, which would rerun every job when the venv or the clone moves.
_JOB_ENV = workflow.deployment_settings.deployment_method
_ENV_PYTHON = DeploymentMethod.CONDA in _JOB_ENV or (
    DeploymentMethod.APPTAINER in _JOB_ENV and config.get("container_image")
)
JOB_PYTHON = "python" if _ENV_PYTHON else sys.executable
export_job_environment(REPO, JOB_PYTHON)
ignore_time_limit_warning_in_job_step()

# `warm_start: true`: a local run's model jobs (della.pipeline.warm.WARM_COMMANDS) fork from one server
# process that imported their libraries once (della/pipeline/warm.py). Started once the DAG is built (not in a dry run),
# stopped at the end; a Snakemake killed outright closes the server's pipe, which ends it too.
WARM_SERVERS = []


onstart:
    server = start_warm_server(
        config, workflow.local_exec, JOB_PYTHON, Path("logs/warm_start.log")
    )
    WARM_SERVERS.extend([server] if server else [])


onsuccess:
    for server in WARM_SERVERS:
        server.stop()


onerror:
    for server in WARM_SERVERS:
        server.stop()


def repo_path(path):
    """Relative config paths (raw data, table specs) are relative to the repository root."""
    path = Path(path)
    return path if path.is_absolute() else REPO / path


def parent(path):
    """The directory a rule's file lives in (derived from its input/output, never hard-coded)."""
    return str(Path(path).parent)


def as_json(section):
    return json.dumps(section, sort_keys=True)


# A run's figure files, its wildcards standing for the run
RUN_WILDCARDS = ("{dataset}", "{model}", "{seed}")


def reported(files, shown, **report_settings):
    """A rule's outputs, {name: path} as della/report/figures.py declares them; those named in `shown`
    go into the report (snakemake --report) with `report_settings`."""
    return {
        name: report(path, **report_settings) if name in shown else path
        for name, path in files.items()
    }


# The config resolved by one function (della/pipeline/resolved.py): Fig. 2's sweep models among `models`,
# the experiments' model names expanded, every name checked. The rules read this copy; the
# config as loaded (workflow.config) stays as it was.
RESOLVED = della_resolved.resolve(config)
config = RESOLVED.config
SWEEPS = RESOLVED.sweeps
EXPERIMENTS = RESOLVED.experiments
expand_model_names = RESOLVED.model_names


della_targets.check_decoding_entries(config, EXPERIMENTS)


def trained_model_dir(wildcards):
    """The model a run generates from and evaluates: its own run's, or for a decoding entry
    (`decodes:`) that of the entry it decodes."""
    model = della_targets.trained_model(config, wildcards.model)
    return f"{RUN.format(dataset=wildcards.dataset, model=model, seed=wildcards.seed)}/model"


def trained_runs(runs):
    """The runs among `runs` that train (a decoding entry's run has no training of its own)."""
    return [run for run in runs if della_targets.trains(config, run[1])]


def experiment_runs(table=None):
    """(dataset, model, seed) of every run, or of one table's (or figure's) runs."""
    tables = [table] if table else list(EXPERIMENTS)
    runs = []
    for name in tables:
        spec = EXPERIMENTS[name]
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


# null data_root: raw files are downloaded into raw/{dataset}/; otherwise they are read where they
# are, and each dataset the run uses must be there (its files, its archives extracted, or a Hugging
# Face parquet copy) before any job starts: else one line naming the folder and the dataset
# (docs/data.md).
# Only the datasets the requested targets need must be there (`snakemake data/yelp/stats.json`
# with Yelp alone under data_root); the others are named in a warning.
DATA_ROOT = repo_path(config["data_root"]) if config.get("data_root") else None
if (
    DATA_ROOT and not workflow.remote_exec
):  # a cluster job's own data came from its head node
    _asked = della_targets.datasets_asked(
        config, della_targets.command_line_targets(sys.argv[1:])
    )
    _sources = {name: config["datasets"][name]["source"] for name in used_datasets()}
    check_data_root(
        DATA_ROOT,
        {n: s for n, s in _sources.items() if _asked is None or n in _asked},
    )
    for _name in set(_sources) - set(_asked or _sources):
        try:
            check_data_root(DATA_ROOT, {_name: _sources[_name]})
        except DownloadError as error:
            logger.warning(
                f"not needed by the requested targets, so not stopping: {error}"
            )


def split_id_files(dataset):
    """Quora's split_ids files ({split: absolute path}; relative ones are relative to the
    repository root), or {} for a dataset split otherwise."""
    paths = config["datasets"][dataset]["preprocess"].get("split_ids", {})
    return {split: os.path.normpath(repo_path(path)) for split, path in paths.items()}


def preprocess_settings(dataset):
    """The dataset's preprocess section, with the files it names as absolute paths."""
    settings = dict(config["datasets"][dataset]["preprocess"])
    if "split_ids" in settings:
        settings["split_ids"] = split_id_files(dataset)
    return settings


def backbone_of(dataset, model=None):
    return della_targets.backbone_of(config, dataset, model)


def encoder_backbone_of(model):
    return della_targets.encoder_backbone_of(config, model)


def run_backbone_keys_of(dataset, model=None):
    """The `backbones` keys a job of (dataset[, model]) reads: the decoder, Optimus' encoder."""
    keys = [della_targets.backbone_key(config, dataset, model)]
    if model:
        keys.append(config["models"][model].get("encoder_backbone"))
    return [key for key in keys if key]


def run_backbone_keys(wildcards):
    return run_backbone_keys_of(wildcards.dataset, getattr(wildcards, "model", None))


def backbones_to_wait_for(keys, seed=None):
    """The folders create_backbone writes (sample scale, rehearsal; run `seed`'s under
    `backbone_init: per_seed`) and the prefetched pinned hub models (paper scale) among backbone
    `keys`."""
    created = [
        della_targets.backbone_folder(config, k, seed)
        for k in keys
        if "create" in config["backbones"][k]
    ]
    return created + della_targets.prefetched_models(config, keys)


def created_backbone_settings(wildcards):
    """The `backbones` entry written to models/backbones/{backbone}, with the seed to create it
    with (della.pipeline.targets.created_backbone: one per run seed under `backbone_init: per_seed`).
    """
    key, seed = della_targets.created_backbone(
        config, f"models/backbones/{wildcards.backbone}"
    )
    return {**config["backbones"][key], "seed": seed}


def backbone_inputs(wildcards):
    """What a job reading its run's backbones waits for."""
    return backbones_to_wait_for(
        run_backbone_keys(wildcards), getattr(wildcards, "seed", None)
    )


def feature_model_inputs(wildcards):
    """The MAUVE / BERTScore feature models an evaluate job waits for."""
    return backbones_to_wait_for(della_targets.feature_model_keys(config))


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

# (dataset, model) of every run of the config's experiments
CONFIG_RUNS = sorted({(d, m) for d, m, _ in experiment_runs()})

# Every sequence of every run fits the positions of the model that reads it: else one line
# naming the dataset, the key and the limit, before any job (della/run/lengths.py).
try:
    check_run_lengths(config, CONFIG_RUNS, REPO)
except SequenceTooLong as error:
    raise WorkflowError(str(error)) from None

# What the runs leave under runs/ (della/cluster/disk.py), for configs of published architectures.
_disk = (
    None if workflow.remote_exec else della_disk.total_disk_bytes(config, CONFIG_RUNS)
)
if _disk is not None:
    logger.info(
        f"disk: the runs' final models take about {_disk['model'] / 1e9:.0f} GB under runs/, their "
        f"kept optimiser checkpoints {_disk['checkpoints'] / 1e9:.0f} GB "
        f"(training.keep_checkpoints; docs/cluster.md, Disk)"
    )

# Jobs run offline (della/pipeline/jobenv.py): every hub model a run loads must be pinned, so that the
# prefetch rule fetches it (della/pipeline/prefetch.py).
try:
    della_prefetch.check_pinned(
        config,
        sorted({k for d, m in CONFIG_RUNS for k in run_backbone_keys_of(d, m)}),
        REPO,
        installed={MINILM_ALIAS},
    )
except ValueError as error:
    raise WorkflowError(str(error)) from None

# With `cluster.gpu_models` ({card: GB}), each run's GPU jobs ask for the smallest card its
# estimated peak fits (della/cluster/gpu_memory.py); a run that fits none stops the workflow here.
GPU_MODEL_OF = {}
if config.get("cluster", {}).get("gpu_models"):
    try:
        GPU_MODEL_OF = {(d, m): gpu_model_for(config, d, m) for d, m in CONFIG_RUNS}
    except GpuTooSmall as error:
        raise WorkflowError(str(error)) from None


# Model-entry keys that do not change the trained weights: kept out of the train rule's params
# (`train` enters merged into `training`, `backbone` as `decoder`).
def train_settings(wildcards):
    if not della_targets.trains(config, wildcards.model):
        raise ValueError(
            f"models.{wildcards.model} decodes {config['models'][wildcards.model]['decodes']!r}: "
            f"it has no training run of its own"
        )
    settings = della_targets.train_settings(
        config,
        wildcards.dataset,
        wildcards.model,
        model_entry(wildcards.model),
        int(wildcards.seed),
    )
    return as_json({**settings, "package_version": PACKAGE_VERSION})


def generation_settings(wildcards):
    """generation, with the run's decoding (della.pipeline.targets.generation_decoding)."""
    decoding = della_targets.generation_decoding(
        config, wildcards.dataset, wildcards.model
    )
    return as_json({**config["generation"], "decoding": decoding})


def model_label(wildcards):
    label = config["models"][wildcards.model]["label"]
    if label is not None:
        return label
    return backbone_of(wildcards.dataset, wildcards.model)["label"]


def evaluation_settings(wildcards):
    return as_json(
        {
            "evaluation": della_targets.evaluation_as_loaded(config),
            "dataset": wildcards.dataset,
            "model": wildcards.model,
            "label": model_label(wildcards),
            "package_version": PACKAGE_VERSION,
        }
    )


def run_outputs(dataset, model, seed):
    """A run's final files: its metrics and its benchmark records (Table 6; a decoding entry
    has no train stage)."""
    stages = STAGES if della_targets.trains(config, model) else STAGES[1:]
    stage_files = [
        benchmark_file(stage).format(dataset=dataset, model=model, seed=seed)
        for stage in stages
    ]
    # a trained run's record holds its attempts: Table 6 sums them (della/report/tidy.py)
    trained = [f"{RUN.format(dataset=dataset, model=model, seed=seed)}/train_done.json"]
    return [
        f"{RUN.format(dataset=dataset, model=model, seed=seed)}/metrics.json",
        *stage_files,
        *(trained if della_targets.trains(config, model) else []),
    ]


def target_outputs(name):
    """What `snakemake <name>` builds: the rendered table where config/tables.yaml defines it,
    and every run the table (or figure) needs."""
    from della.pipeline.targets import workflow_targets

    # TABLES: config/tables.yaml, loaded by tables.smk
    files = workflow_targets(config, TABLES, RESULTS, only=name)
    if name in EXPERIMENTS:
        for run in experiment_runs(name):
            files += run_outputs(*run)
        # FIGURES_CONFIG: config/figures.yaml, loaded by figures.smk
        files += experiment_figures(
            FIGURES_CONFIG, name, experiment_runs(name), RESULTS
        )
    return files


def target_names():
    return list(EXPERIMENTS) + list(config.get("data_tables", []))


def all_table_outputs():
    """The default target: every table and figure the config asks for."""
    return [f for name in target_names() for f in target_outputs(name)]


# Cluster resources (docs/cluster.md). Only train/generate/evaluate request GPUs.


def benchmark_file(stage):
    """Wall time, memory and CPU time of one stage of one run (`benchmark:`; Table 6)."""
    return f"{RESULTS}/benchmarks/{stage}/{{dataset}}/{{model}}/seed{{seed}}.tsv"


PAPER_GPU_HOURS = della_resources.paper_gpu_hours(repo_path(config["paper_tables"]))


def run_resources(dataset, model):
    """gpus, mem_mb, gpu_hours, runtime_factor of one (dataset, model) (della/cluster/resources.py)."""
    return della_resources.run_resources(
        config["resources"],
        PAPER_GPU_HOURS,
        dataset,
        model,
        model_names=expand_model_names,
        known_datasets=config["datasets"],
        where_paper=config["paper_tables"],
    )


def retry(stage, wildcards, attempt):
    """What this attempt of a run's stage asks for beyond the first, from how the attempts before
    it ended (della/cluster/attempts.py): walltime after a time limit, host memory after a kill, a larger
    card after GPU out-of-memory."""
    run = RUN.format(
        dataset=wildcards.dataset, model=wildcards.model, seed=wildcards.seed
    )
    return retry_for(Path(run), stage, attempt)


CLUSTER = config.get("cluster", {})


def cpu_resources():
    """CPU rules: the account and CPU partition, if set (else the cluster's defaults)."""
    return della_resources.cluster_resources(CLUSTER, della_resources.CPU_CLUSTER_KEYS)


def gpu_resources(stage):
    """Resources of a train/generate/evaluate job: GPUs (the plugin's `gpu`, with `gpu_model`),
    memory and walltime per (dataset, model) and attempt, the GPU partition and constraint.
    """
    section = config["resources"]
    return {
        "gpu": lambda w: run_resources(w.dataset, w.model).gpus,
        "mem_mb": lambda w, attempt: della_resources.host_memory_mb(
            section,
            run_resources(w.dataset, w.model),
            retry(stage, w, attempt).memory_factor,
        ),
        "runtime": lambda w, attempt: della_resources.runtime_minutes(
            section,
            run_resources(w.dataset, w.model),
            stage,
            retry(stage, w, attempt).time_factor,
        ),
        "gpu_model": lambda w, attempt: della_resources.gpu_model(
            CLUSTER,
            run_resources(w.dataset, w.model),
            GPU_MODEL_OF.get((w.dataset, w.model)),
            retry(stage, w, attempt).gpu_memory_over_gb,
        ),
        **della_resources.cluster_resources(CLUSTER, della_resources.GPU_CLUSTER_KEYS),
        **della_resources.time_limit_signal(CLUSTER, stage),
    }
