# One renderer (della/tables.py) for every table; which tables, and what each reads, comes from
# config/tables.yaml (the table's `kind`) and the run config (della/targets.py).
from della.tables import load_spec
from della.targets import (
    benchmark_files,
    filled_forms,
    human_datasets,
    human_runs,
    key_file,
    of_kind,
)

TABLES = load_spec(repo_path(config["tables_spec"]))


rule render_metrics_table:
    """Tables 1, 2, 4, 5, 8, 9 and the latent probe's companion of Table 1: the runs' metrics.json."""
    input:
        metrics=table_metrics_files,
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        md=report(f"{RESULTS}/tables/{{table}}.md", category="Tables"),
        csv=report(f"{RESULTS}/tables/{{table}}.csv", category="Tables"),
        tex=f"{RESULTS}/tables/{{table}}.tex",
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
        "della-bench render-table --table {wildcards.table} --spec {input.spec} "
        "--metrics {input.metrics} --paper {input.paper} --out {params.out} > {log} 2>&1"


rule render_data_table:
    """Table 7: dataset statistics from the preprocessing reports."""
    input:
        stats=expand("data/{dataset}/stats.json", dataset=sorted(config["datasets"])),
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        md=report(f"{RESULTS}/tables/{{table}}.md", category="Tables"),
        csv=report(f"{RESULTS}/tables/{{table}}.csv", category="Tables"),
        tex=f"{RESULTS}/tables/{{table}}.tex",
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "data")) or "^$",
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
        "della-bench render-table --table {wildcards.table} --spec {input.spec} "
        "--stats {input.stats} --paper {input.paper} --out {params.out} > {log} 2>&1"


rule render_benchmark_table:
    """Table 6: hours per run from the snakemake benchmark files, the device from the same
    run's metrics.json."""
    input:
        benchmarks=lambda w: benchmark_files(
            RESULTS, TABLES["tables"][w.table], table_runs(w.table)
        ),
        metrics=table_metrics_files,
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        multiext(f"{RESULTS}/tables/{{table}}", ".md", ".csv", ".tex"),
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "benchmark")) or "^$",
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
        "della-bench render-table --table {wildcards.table} --spec {input.spec} "
        "--benchmarks {input.benchmarks} --metrics {input.metrics} "
        "--paper {input.paper} --out {params.out} > {log} 2>&1"


rule render_human_table:
    """Table 3: the annotators' filled forms, un-blinded with the keys (docs/tables.md)."""
    input:
        key_files=lambda w: [
            key_file(RESULTS, w.table, d)
            for d in human_datasets(config, TABLES["tables"][w.table])
        ],
        annotations=lambda w: filled_forms(
            config, RESULTS, w.table, TABLES["tables"][w.table]
        ),
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        multiext(f"{RESULTS}/tables/{{table}}", ".md", ".csv", ".tex"),
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
        "della-bench render-table --table {wildcards.table} --spec {input.spec} "
        "--keys {input.key_files} --annotations {input.annotations} "
        "--paper {input.paper} --out {params.out} > {log} 2>&1"


rule tidy_metrics:
    """Every number of this scale in one long table (della/tidy.py): each run's metrics under
    every experiment it belongs to, its stage timings, and the datasets' statistics."""
    input:
        runs=[f for d, m, s in experiment_runs() for f in run_outputs(d, m, s)],
        stats=expand("data/{dataset}/stats.json", dataset=used_datasets()),
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
        experiments=lambda w: as_json(
            {name: experiment_runs(name) for name in config["experiments"]}
        ),
        version=PACKAGE_VERSION,
    shell:
        "della-bench tidy --experiments {params.experiments:q} --runs {input.runs} "
        "--stats {input.stats} --out {output.csv} "
        "--run-settings {output.run_settings} > {log} 2>&1"
