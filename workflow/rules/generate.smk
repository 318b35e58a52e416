rule generate:
    """Sample from the prior (and the condition) with the configured decoding."""
    input:
        model=trained_model_dir,
        test="data/{dataset}/test.jsonl",
        backbones=backbone_inputs,
    output:
        samples=f"{RUN}/samples.jsonl",
        settings=f"{RUN}/samples.settings.json",
    log:
        f"logs/{RUN}/generate.log",
    benchmark:
        benchmark_file("generate")
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    threads: config["job_threads"]
    resources:
        **gpu_resources("generate"),
    params:
        tf32=TF32,
        settings=generation_settings,
        run=lambda w, input: parent(input.model),
        data=lambda w, input: parent(input.test),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "generate --threads {threads} --nproc {resources.gpu} --tf32 {params.tf32} --data {params.data} --run {params.run} "
        "--out {output.samples} --seed {wildcards.seed} --settings {params.settings:q} > {log} 2>&1"
