rule render_metrics_table:
    """One renderer for every table; its layout comes from config/tables.yaml."""
    input:
        metrics=table_metrics_files,
        spec=repo_path(config["tables_spec"]),
        paper=repo_path(config["paper_tables"]),
    output:
        multiext(f"{RESULTS}/tables/{{table}}", ".md", ".csv", ".tex"),
    wildcard_constraints:
        table="|".join(config["experiments"]) or "^$",
    params:
        out=f"{RESULTS}/tables",
        version=PACKAGE_VERSION,
    log:
        "logs/tables/{table}.log",
    conda:
        "../../environment.yml"
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
        multiext(f"{RESULTS}/tables/{{table}}", ".md", ".csv", ".tex"),
    wildcard_constraints:
        table="|".join(config.get("data_tables", [])) or "^$",
    params:
        out=f"{RESULTS}/tables",
        version=PACKAGE_VERSION,
    log:
        "logs/tables/{table}.log",
    conda:
        "../../environment.yml"
    shell:
        "della-bench render-table --table {wildcards.table} --spec {input.spec} "
        "--stats {input.stats} --paper {input.paper} --out {params.out} > {log} 2>&1"
