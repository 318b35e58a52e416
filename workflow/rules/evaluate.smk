rule evaluate:
    """Every metric of the paper's tables for one run, each with the settings behind it, and
    the latent probe, fitted on the training split (`train`, read from --data beside `test`).
    """
    input:
        model=trained_model_dir,
        samples=f"{RUN}/samples.jsonl",
        generation_settings=f"{RUN}/samples.settings.json",
        test="data/{dataset}/test.jsonl",
        train="data/{dataset}/train.jsonl",
        feature_models=feature_model_inputs,
        backbones=backbone_inputs,
    output:
        metrics=f"{RUN}/metrics.json",
        per_sentence=f"{RUN}/per_sentence.csv",
    log:
        f"logs/{RUN}/evaluate.log",
    benchmark:
        benchmark_file("evaluate")
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    threads: config["job_threads"]
    resources:
        **gpu_resources("evaluate"),
    params:
        tf32=TF32,
        settings=evaluation_settings,
        run=lambda w, input: parent(input.model),
        data=lambda w, input: parent(input.test),
    shell:
        '"$DELLA_PYTHON" -m della '
        "evaluate --threads {threads} --nproc {resources.gpu} --tf32 {params.tf32} --data {params.data} --run {params.run} "
        "--samples {input.samples} --out {output.metrics} --seed {wildcards.seed} "
        "--settings {params.settings:q} > {log} 2>&1"
