rule generate:
    """Sample from the prior (and the condition) with the configured decoding."""
    input:
        model=f"{RUN}/model",
        test="data/{dataset}/test.jsonl",
    output:
        samples=f"{RUN}/samples.jsonl",
        settings=f"{RUN}/samples.settings.json",
    params:
        settings=lambda w: as_json(config["generation"]),
        run=RUN,
        version=PACKAGE_VERSION,
    threads: config["job_threads"]
    log:
        f"logs/{RUN}/generate.log",
    conda:
        "../../environment.yml"
    shell:
        "della-bench generate --threads {threads} --data data/{wildcards.dataset} --run {params.run} "
        "--out {output.samples} --seed {wildcards.seed} --settings {params.settings:q} > {log} 2>&1"
