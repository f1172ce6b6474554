# deepsky: every experiment of the lectures, from raw data to figure, tracked in MLflow.
# Laptop: `snakemake --cores 2`; cluster: `snakemake --profile profiles/slurm`.
from snakemake.utils import min_version

min_version("9.0")


# `--configfile other.yaml` replaces the default rather than merging into it.
if "experiments" not in config:

    configfile: "config/config.yaml"



report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/practice.smk"
include: "workflow/rules/concepts.smk"
include: "workflow/rules/inside.smk"
include: "workflow/rules/lectures.smk"
include: "workflow/rules/lightcurves_common.smk"
include: "workflow/rules/lightcurves.smk"
include: "workflow/rules/photoz_common.smk"
include: "workflow/rules/photoz.smk"
include: "workflow/rules/cmb_common.smk"
include: "workflow/rules/cmb.smk"
include: "workflow/rules/domains_common.smk"
include: "workflow/rules/domains.smk"
include: "workflow/rules/cosmo_graphs_common.smk"
include: "workflow/rules/cosmo_graphs.smk"
include: "workflow/rules/deblend_common.smk"
include: "workflow/rules/deblend.smk"
include: "workflow/rules/detection_common.smk"
include: "workflow/rules/detection.smk"


rule all:
    input:
        all_targets(),
    default_target: True
