# Human evaluation (Table 3, App. A.4): blinded forms for the annotators and the key that
# un-blinds them; the filled forms come back by hand (docs/tables.md) and render_human_table
# (tables.smk) turns them into the table.
from della.pipeline.targets import human_eval_inputs_flag, human_runs
from della.report.table_spec import table_spec


rule human_eval_export:
    """n_inputs random test inputs, every rated model's output, blinded and shuffled per annotator."""
    input:
        metrics=lambda w: human_runs(
            config, table_spec(TABLES, w.table), w.dataset, "metrics.json"
        ),
        samples=lambda w: human_runs(
            config, table_spec(TABLES, w.table), w.dataset, "samples.jsonl"
        ),
        spec=repo_path(config["tables_spec"]),
    output:
        forms=directory(f"{RESULTS}/human_eval/{{table}}/{{dataset}}/forms"),
        key=f"{RESULTS}/human_eval/{{table}}/keys/{{dataset}}.json",
    log:
        "logs/human_eval/{table}/{dataset}.log",
    wildcard_constraints:
        table="|".join(of_kind(config, TABLES, "human")) or "^$",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        version=PACKAGE_VERSION,
        n_inputs=human_eval_inputs_flag(config),
    shell:
        '"$DELLA_PYTHON" -m della '
        "human-eval-export --table {wildcards.table} --spec {input.spec} "
        "--dataset {wildcards.dataset} --metrics {input.metrics} --forms {output.forms} "
        "--key {output.key} {params.n_inputs} > {log} 2>&1"
