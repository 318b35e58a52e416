# Figures (della/report/figures.py; what each shows: config/figures.yaml) into {results_dir}/figures/,
# and which of the paper's claims hold on this scale's numbers (della/report/findings.py;
# config/findings.yaml) into {results_dir}/FINDINGS.md. docs/figures.md.
from della.report.figures import (
    FigureSpecs,
    case_study_files,
    convergence_files,
    experiment_figures,
    figure_targets,
    interpolation_files,
    latent_layer_files,
    load_spec as load_figures_spec,
    probe_files,
    run_files,
    seed_runs,
    training_curve_files,
)
from della.report.findings import claim_experiments, findings_files, load_claims
from della.pipeline.targets import tidy_files

FIGURES_SPEC = repo_path(config["figures_spec"])
FINDINGS_SPEC = repo_path(config["findings_spec"])
FIGURES_CONFIG = load_figures_spec(FIGURES_SPEC)
FIGURES = FigureSpecs.of(FIGURES_CONFIG)
# How the report names a run's figure (snakemake --report)
RUN_LABELS = {"dataset": "{dataset}", "model": "{model}", "seed": "{seed}"}
# The long table's parts (della/report/tidy.py) of every experiment a claim reads that the config runs
FINDINGS_TIDY = [
    tidy_files(RESULTS, name)
    for name in claim_experiments(load_claims(FINDINGS_SPEC))
    if name in config["experiments"]
]
# What the default target adds (Snakefile `rule all`).
FIGURE_OUTPUTS = figure_targets(
    FIGURES_CONFIG,
    {name: experiment_runs(name) for name in config["experiments"]},
    RESULTS,
    trains=lambda model: della_targets.trains(config, model),
) + list(findings_files(RESULTS).values())


# Figures that read tables and logs (seconds each) run where snakemake runs; the two that load
# a model (Fig. 3 decodes with beam search; the probe fits classifiers) are cluster CPU jobs.
localrules:
    figure_latent_layers,
    figure_case_study,
    training_curves,
    convergence,
    findings,


rule figure_latent_layers:
    """Fig. 2: PPL, KL and ELBO against the number of latent layers, from the sweep's rows of
    metrics.csv."""
    input:
        tidy=tidy_files(RESULTS, FIGURES.fig2.experiment)[0],
        run_settings=tidy_files(RESULTS, FIGURES.fig2.experiment)[1],
        spec=FIGURES_SPEC,
    output:
        **reported(
            latent_layer_files(RESULTS),
            ["png"],
            caption="../report/fig2.rst",
            category="Figures",
            subcategory="Fig. 2",
        ),
    log:
        "logs/figures/fig2.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        out=lambda w, output: str(Path(output[0]).with_suffix("")),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "figure --spec {input.spec} fig2 --tidy {input.tidy} "
        "--run-settings {input.run_settings} "
        "--out {params.out} > {log} 2>&1"


rule figure_interpolation:
    """Fig. 3: sentences decoded along the interpolation between two test sentences' posteriors,
    with the run's own decoding."""
    input:
        model=trained_model_dir,
        test="data/{dataset}/test.jsonl",
        spec=FIGURES_SPEC,
    output:
        **reported(
            interpolation_files(RESULTS, *RUN_WILDCARDS),
            ["md", "png"],
            caption="../report/fig3.rst",
            category="Figures",
            subcategory="Fig. 3",
            labels=RUN_LABELS,
        ),
    log:
        f"logs/figures/fig3/{RUN}.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        decoding=lambda w: as_json(json.loads(generation_settings(w))["decoding"]),
        run=lambda w, input: parent(input.model),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "figure --spec {input.spec} fig3 --run {params.run} --test {input.test} "
        "--decoding {params.decoding:q} --out {output.md} > {log} 2>&1"


rule figure_case_study:
    """Fig. 4: the experiment's models on the same prompts (first seed), from their samples; their
    labels from metrics.csv."""
    input:
        samples=lambda w: run_files(
            seed_runs(experiment_runs(FIGURES.fig4.experiment), config["seeds"][0]),
            "samples.jsonl",
        ),
        tidy=tidy_files(RESULTS, FIGURES.fig4.experiment)[0],
        spec=FIGURES_SPEC,
    output:
        **reported(
            case_study_files(RESULTS),
            ["md"],
            caption="../report/fig4.rst",
            category="Figures",
            subcategory="Fig. 4",
        ),
    log:
        "logs/figures/fig4.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "figure --spec {input.spec} fig4 --samples {input.samples} --tidy {input.tidy} "
        "--out {output.md} > {log} 2>&1"


rule figure_probe:
    """The latent probe's test accuracy by latent layer, with the majority-class rate, from the
    rows of the figure's models in metrics.csv (docs/figures.md)."""
    input:
        tidy=tidy_files(RESULTS, FIGURES.probe.experiment)[0],
        spec=FIGURES_SPEC,
    output:
        **reported(
            probe_files(RESULTS),
            ["png"],
            caption="../report/probe.rst",
            category="Figures",
            subcategory="Latent probe",
        ),
    log:
        "logs/figures/probe.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    resources:
        **cpu_resources(),
    params:
        out=lambda w, output: str(Path(output[0]).with_suffix("")),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "figure --spec {input.spec} probe --tidy {input.tidy} "
        "--out {params.out} > {log} 2>&1"


rule training_curves:
    """Reconstruction, KL per latent layer and beta against the step, from the run's train log."""
    input:
        done=f"{RUN}/train_done.json",
        spec=FIGURES_SPEC,
    output:
        **reported(
            training_curve_files(RESULTS, *RUN_WILDCARDS),
            ["png"],
            caption="../report/training_curves.rst",
            category="Training curves",
            subcategory="{dataset}",
            labels=RUN_LABELS,
        ),
    log:
        f"logs/figures/training/{RUN}.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        train_log=lambda w, input: str(Path(input.done).with_name("train_log.jsonl")),
        out=lambda w, output: str(Path(output[0]).with_suffix("")),
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "figure --spec {input.spec} training-curves --log {params.train_log} "
        "--title {wildcards.dataset}/{wildcards.model}/seed{wildcards.seed} "
        "--out {params.out} > {log} 2>&1"


rule convergence:
    """Every run's convergence record (the rule training.convergence names) in one table."""
    input:
        done=lambda w: run_files(trained_runs(experiment_runs()), "train_done.json"),
    output:
        **reported(
            convergence_files(RESULTS),
            ["md"],
            caption="../report/convergence.rst",
            category="Training curves",
            subcategory="Convergence",
        ),
    log:
        "logs/figures/convergence.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "figure convergence --done {input.done} --out {output.md} > {log} 2>&1"


rule findings:
    """Which of the paper's claims hold on this scale's numbers (and on the paper's own)."""
    input:
        tidy=[part[0] for part in FINDINGS_TIDY],
        run_settings=[part[1] for part in FINDINGS_TIDY],
        spec=FINDINGS_SPEC,
        paper=repo_path(config["paper_tables"]),
    output:
        **reported(
            findings_files(RESULTS),
            ["md"],
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        "logs/findings.log",
    conda:
        "../../environment.yml"
    container:
        config["container_image"]
    params:
        scale=config["scale"],
        version=PACKAGE_VERSION,
    shell:
        '"$DELLA_PYTHON" -m della '
        "findings --spec {input.spec} --tidy {input.tidy} "
        "--run-settings {input.run_settings} --paper {input.paper} "
        "--scale {params.scale} --out {output.md} > {log} 2>&1"
