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
            if "architecture" in created_backbone_settings(w)["create"]
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
        settings=lambda w: as_json(created_backbone_settings(w)),
        version=PACKAGE_VERSION,
        tokenizer=lambda w, input: input.tokenizer or "none",
    shell:
        '"$DELLA_PYTHON" -m della '
        "create-backbone --tokenizer {params.tokenizer} --out {output} "
        "--settings {params.settings:q} > {log} 2>&1"


# Pinned hub models (a `revision` in their `backbones` entry: the paper config), fetched once
# where snakemake runs (a cluster's login node) into the model cache; every job reads them from
# there with the hub offline (della/pipeline/prefetch.py, docs/cluster.md "Models").
localrules:
    prefetch_model,


rule prefetch_model:
    """One pinned hub model at its revision into {model_cache}/{backbone}/, prefetched.json last."""
    output:
        f"{MODEL_CACHE}/{{backbone}}/{PREFETCH_DONE}",
    log:
        "logs/prefetch/{backbone}.log",
    wildcard_constraints:
        backbone="|".join(PINNED_BACKBONES) or "^$",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        name=lambda w: config["backbones"][w.backbone]["name_or_path"],
        revision=lambda w: config["backbones"][w.backbone]["revision"],
        out=lambda w, output: parent(output[0]),
        mirror=(
            f"--mirror {shlex.quote(str(repo_path(config['model_hub_mirror'])))}"
            if config.get("model_hub_mirror")
            else ""
        ),
    shell:
        # the jobs' environment is offline (della/pipeline/jobenv.py); this rule is the one that is not
        "HF_HUB_OFFLINE=0 TRANSFORMERS_OFFLINE=0 "
        '"$DELLA_PYTHON" -m della '
        "prefetch --name {params.name:q} --revision {params.revision} --out {params.out} "
        "{params.mirror} > {log} 2>&1"
