# della-bench: the paper's evidence from one command.
#   snakemake --cores 2                                        sample scale (config/config.yaml)
#   snakemake --profile slurm --configfile config/paper.yaml   paper scale on a SLURM cluster
#   snakemake table4 [--configfile ...]                        one table (or figure) and its runs
# Stages, one file each under workflow/rules/: data -> backbones -> train -> generate -> evaluate -> tables.
# docs/workflow.md: targets, which settings rerun what; docs/cluster.md: SLURM.


# The sample scale is the default; a --configfile REPLACES it (no deep merge), so that e.g.
# `--configfile config/paper.yaml` never inherits a sample-scale setting such as `create:`.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbones.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/human_eval.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        all_table_outputs(),
        FIGURE_OUTPUTS,
        rules.tidy_metrics.output,


# One target per table and figure (`snakemake table4`, `snakemake fig2`): its runs and, where
# config/tables.yaml defines it, its rendered files.
for _target in target_names():

    rule:
        name:
            _target
        input:
            target_outputs(_target),


# `snakemake prefetch_models`: every pinned hub model the config uses, and nothing else
# (della/pipeline/prefetch.py; docs/cluster.md, Models).
rule prefetch_models:
    input:
        della_targets.prefetched_models(config, PINNED_BACKBONES),
    localrule: True
