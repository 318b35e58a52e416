rule render_metrics_table:
    """One renderer for every table; its layout comes from config/tables.yaml."""
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
        table="|".join(config["experiments"]) or "^$",
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
        table="|".join(config.get("data_tables", [])) or "^$",
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
