rule train:
    """Train one (dataset, model, seed); resumes from the run's last checkpoint."""
    input:
        train="data/{dataset}/train.jsonl",
        valid="data/{dataset}/valid.jsonl",
        backbones=backbone_inputs,
    output:
        model=directory(f"{RUN}/model"),
        done=f"{RUN}/train_done.json",
    log:
        f"logs/{RUN}/train.log",
    benchmark:
        benchmark_file("train")
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    threads: config["job_threads"]
    resources:
        **gpu_resources("train"),
    params:
        tf32=TF32,
        settings=train_settings,
        run=lambda w, output: parent(output.done),
        data=lambda w, input: parent(input.train),
    shell:
        '"$DELLA_PYTHON" -m della '
        "train --threads {threads} --nproc {resources.gpu} --tf32 {params.tf32} --data {params.data} --run {params.run} "
        "--seed {wildcards.seed} --settings {params.settings:q} > {log} 2>&1"
