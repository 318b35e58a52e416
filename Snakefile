# della-bench: the paper's evidence from one command.
#   snakemake --cores 2                                   sample scale (config/config.yaml)
#   snakemake --profile slurm --configfile config/paper.yaml   paper scale on a SLURM cluster
# Stages, one file each under workflow/rules/: data -> backbones -> train -> generate -> evaluate -> tables.


# The sample scale is the default; a --configfile REPLACES it (no deep merge), so that e.g.
# `--configfile config/paper.yaml` never inherits a sample-scale setting such as `create:`.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


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
