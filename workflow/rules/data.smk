rule preprocess:
    """Raw dataset (as downloaded, or the shipped sample) -> data/{dataset}/{split}.jsonl + stats."""
    input:
        raw=lambda w: repo_path(config["datasets"][w.dataset]["raw"]),
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
        settings=lambda w: as_json(config["datasets"][w.dataset]["preprocess"]),
        version=PACKAGE_VERSION,
        out=lambda w, output: parent(output.stats),
    shell:
        "della-bench preprocess --dataset {wildcards.dataset} --raw {input.raw} "
        "--out {params.out} --settings {params.settings:q} > {log} 2>&1"
