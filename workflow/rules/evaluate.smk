rule evaluate:
    """Every metric of the paper's tables for one run, each with the settings behind it."""
    input:
        model=f"{RUN}/model",
        samples=f"{RUN}/samples.jsonl",
        generation_settings=f"{RUN}/samples.settings.json",
        test="data/{dataset}/test.jsonl",
    output:
        f"{RUN}/metrics.json",
    params:
        settings=evaluation_settings,
        run=RUN,
    threads: config["job_threads"]
    log:
        f"logs/{RUN}/evaluate.log",
    conda:
        "../../environment.yml"
    shell:
        "della-bench evaluate --threads {threads} --data data/{wildcards.dataset} --run {params.run} "
        "--samples {input.samples} --out {output} --seed {wildcards.seed} "
        "--settings {params.settings:q} > {log} 2>&1"
