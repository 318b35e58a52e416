rule train_tokenizer:
    """Sample scale: a small byte-level BPE trained on every dataset's training split."""
    input:
        expand("data/{dataset}/train.jsonl", dataset=used_datasets()),
    output:
        directory("models/tokenizer"),
    log:
        "logs/tokenizer.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        settings=as_json(config.get("tokenizer", {})),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "train-tokenizer --inputs {input} --out {output} "
        "--settings {params.settings:q} > {log} 2>&1"


rule create_backbone:
    """A random-init backbone written with save_pretrained: small, over the sample-scale
    tokenizer, or a published architecture at its real size with its own tokenizer
    (`create: {architecture: ...}`: the paper-scale dress rehearsal, config/rehearsal.yaml).
    """
    input:
        tokenizer=lambda w: (
            []
            if "architecture" in config["backbones"][w.backbone]["create"]
            else "models/tokenizer"
        ),
    output:
        directory("models/backbones/{backbone}"),
    log:
        "logs/backbones/{backbone}.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        settings=lambda w: as_json(
            {**config["backbones"][w.backbone], "seed": config["backbone_seed"]}
        ),
        version=PACKAGE_VERSION,
        tokenizer=lambda w, input: input.tokenizer or "none",
    shell:
        '"$DELLA_PYTHON" -m della '
        "create-backbone --tokenizer {params.tokenizer} --out {output} "
        "--settings {params.settings:q} > {log} 2>&1"
