import shlex

# DATA_ROOT (common.smk): null, or the checked folder the raw files are read from.


# Downloads run where the workflow is started (a cluster's login node has the internet access
# its compute nodes often lack); they need no GPU and little CPU.
localrules:
    download,


rule download:
    """The raw files of one dataset from the `source:` of its config (docs/data.md): resumed,
    retried, SHA-256 verified; with data_root set, the files there are only verified."""
    output:
        report="raw/{dataset}/download.json",
    log:
        "logs/download/{dataset}.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        source=lambda w: as_json(config["datasets"][w.dataset]["source"]),
        out=lambda w, output: parent(output.report),
        base=REPO,
        data_root=f"--data-root {shlex.quote(str(DATA_ROOT))}" if DATA_ROOT else "",
        # files the config does not pin are checked against their first download's SHA-256
        lock=lambda w: f"{config['checksum_locks']}/{w.dataset}.json",
    shell:
        '"$DELLA_PYTHON" -m della '
        "download --dataset {wildcards.dataset} --source {params.source:q} "
        "--out {params.out} --report {output.report} --base-dir {params.base:q} "
        "--lock {params.lock:q} {params.data_root} > {log} 2>&1"


rule preprocess:
    """Raw dataset (as downloaded) -> data/{dataset}/{split}.jsonl + stats (Table 7)."""
    input:
        report="raw/{dataset}/download.json",
        split_ids=lambda w: split_id_files(w.dataset).values(),
    output:
        train="data/{dataset}/train.jsonl",
        valid="data/{dataset}/valid.jsonl",
        test="data/{dataset}/test.jsonl",
        stats="data/{dataset}/stats.json",
    log:
        "logs/preprocess/{dataset}.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        settings=lambda w: as_json(preprocess_settings(w.dataset)),
        version=PACKAGE_VERSION,
        raw=lambda w, input: (
            DATA_ROOT / w.dataset if DATA_ROOT else parent(input.report)
        ),
        out=lambda w, output: parent(output.stats),
    shell:
        '"$DELLA_PYTHON" -m della '
        "preprocess --dataset {wildcards.dataset} --raw {params.raw:q} "
        "--download-report {input.report} --out {params.out} "
        "--settings {params.settings:q} > {log} 2>&1"


rule count_lengths:
    """How many sources and targets of each split are longer than the dataset's token limits in
    its backbone's tokenizer (the collator cuts them): data/{dataset}/lengths.json, in Table 7's
    footer. A rule of its own: the sample scale's tokenizer is trained on the preprocessed data.
    """
    input:
        splits=expand(
            "data/{{dataset}}/{split}.jsonl", split=("train", "valid", "test")
        ),
        backbone=backbone_inputs,
    output:
        "data/{dataset}/lengths.json",
    log:
        "logs/count_lengths/{dataset}.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        settings=lambda w: as_json(
            {
                "tokenizer": della_targets.as_loaded(
                    config, della_targets.backbone_key(config, w.dataset)
                )["name_or_path"],
                "max_source_tokens": config["datasets"][w.dataset][
                    "max_source_tokens"
                ],
                "max_target_tokens": config["datasets"][w.dataset][
                    "max_target_tokens"
                ],
            }
        ),
        data=lambda w, input: parent(input.splits[0]),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "count-lengths --data {params.data} --out {output} "
        "--settings {params.settings:q} > {log} 2>&1"
