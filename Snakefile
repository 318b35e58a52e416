# della-bench: the paper's evidence from one command.
#   snakemake --cores 2                                   sample scale (config/config.yaml)
#   snakemake --profile slurm --configfile config/paper.yaml   paper scale on a SLURM cluster
# Stages, one file each under workflow/rules/: data -> backbones -> train -> generate -> evaluate -> tables.


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbones.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"


rule all:
    input:
        all_table_outputs(),
    default_target: True
