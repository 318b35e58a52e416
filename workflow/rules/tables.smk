# One renderer (della/report/tables.py) for every table, from the long table of numbers (della/report/tidy.py:
# one part per experiment, joined into metrics.csv); which tables, and what each reads, comes from
# config/tables.yaml (the table's `kind`) and the run config (della/pipeline/targets.py).
from della.report.table_spec import load_spec, table_spec
from della.pipeline.targets import (
    filled_forms,
    human_datasets,
    human_runs,
    key_file,
    of_kind,
    table_experiment,
    table_outputs,
    tidy_files,
)
from della.report.tidy import DATA_EXPERIMENT

TABLES = load_spec(repo_path(config["tables_spec"]))


rule render_metrics_table:
    """Tables 1, 2, 4, 5, 8, 9 and the latent probe's companion of Table 1: the rows of
    metrics.csv of the experiment whose runs they show."""
    input:
        tidy=lambda w: tidy_files(
            RESULTS, table_experiment(table_spec(TABLES, w.table))
        )[0],
        run_settings=lambda w: tidy_files(
            RESULTS, table_experiment(table_spec(TABLES, w.table))
        )[1],
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        **reported(table_outputs(RESULTS, "{table}"), ["md", "csv"], category="Tables"),
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "metrics")) or "^$",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        out=lambda w, output: parent(output[0]),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "render-table --table {wildcards.table} --spec {input.spec} "
        "--tidy {input.tidy} --run-settings {input.run_settings} "
        "--paper {input.paper} --out {params.out} > {log} 2>&1"


# Table 7: the datasets' statistics (metrics.csv's experiment `data`), rendered the same way.
use rule render_metrics_table as render_data_table with:
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "data")) or "^$",


# Table 6: the stages' wall-clock seconds of the runs (rows of metrics.csv), with their device.
use rule render_metrics_table as render_benchmark_table with:
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "benchmark")) or "^$",


rule render_human_table:
    """Table 3: the annotators' filled forms, un-blinded with the keys (docs/tables.md)."""
    input:
        key_files=lambda w: [
            key_file(RESULTS, w.table, d)
            for d in human_datasets(config, table_spec(TABLES, w.table))
        ],
        annotations=lambda w: filled_forms(config, RESULTS, table_spec(TABLES, w.table)),
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        **table_outputs(RESULTS, "{table}"),
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "human")) or "^$",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        out=lambda w, output: parent(output[0]),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "render-table --table {wildcards.table} --spec {input.spec} "
        "--keys {input.key_files} --annotations {input.annotations} "
        "--paper {input.paper} --out {params.out} > {log} 2>&1"


rule tidy_experiment:
    """One experiment's numbers in the long table (della/report/tidy.py): each run's metrics and stage
    timings; as experiment `data`, the datasets' statistics. Its tables, figures and findings
    read this part, so they wait for, and follow, that experiment's runs only."""
    input:
        runs=lambda w: (
            [f for run in experiment_runs(w.experiment) for f in run_outputs(*run)]
            if w.experiment in config["experiments"]
            else []
        ),
        stats=lambda w: (
            expand("data/{dataset}/stats.json", dataset=used_datasets())
            if w.experiment == DATA_EXPERIMENT
            else []
        ),
        lengths=lambda w: (
            expand("data/{dataset}/lengths.json", dataset=used_datasets())
            if w.experiment == DATA_EXPERIMENT
            else []
        ),
    output:
        csv=tidy_files(RESULTS, "{experiment}")[0],
        run_settings=tidy_files(RESULTS, "{experiment}")[1],
    log:
        "logs/tables/metrics_{experiment}.log",
    wildcard_constraints:
        experiment="|".join([*config["experiments"], DATA_EXPERIMENT]),
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        experiments=lambda w: as_json(
            {w.experiment: experiment_runs(w.experiment)}
            if w.experiment in config["experiments"]
            else {}
        ),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "tidy --experiments {params.experiments:q} --runs {input.runs} "
        "--stats {input.stats} --lengths {input.lengths} --out {output.csv} "
        "--run-settings {output.run_settings} > {log} 2>&1"


rule tidy_metrics:
    """Every number of this scale in one long table: the experiments' parts joined."""
    input:
        parts=[
            tidy_files(RESULTS, e)[0]
            for e in [*config["experiments"], DATA_EXPERIMENT]
        ],
        run_settings=[
            tidy_files(RESULTS, e)[1]
            for e in [*config["experiments"], DATA_EXPERIMENT]
        ],
    output:
        csv=report(f"{RESULTS}/metrics.csv", category="Data"),
        run_settings=f"{RESULTS}/run_settings.json",
    log:
        "logs/tables/metrics.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "tidy --concat {input.parts} --concat-settings {input.run_settings} "
        "--out {output.csv} --run-settings {output.run_settings} > {log} 2>&1"
