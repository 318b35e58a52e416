rule train:
    """Train one (dataset, model, seed); resumes from the run's last checkpoint."""
    input:
        train="data/{dataset}/train.jsonl",
        backbones=created_backbone_dirs,
    output:
        model=directory(f"{RUN}/model"),
        done=f"{RUN}/train_done.json",
    params:
        settings=train_settings,
        run=RUN,
    threads: config["job_threads"]
    log:
        f"logs/{RUN}/train.log",
    conda:
        "../../environment.yml"
    shell:
        "della-bench train --threads {threads} --data data/{wildcards.dataset} --run {params.run} "
        "--seed {wildcards.seed} --settings {params.settings:q} > {log} 2>&1"
