# Snakemake script: the work is in src/deepsky/stages/cmb.py
from deepsky.stages.cmb import dataset_figure_main

dataset_figure_main(snakemake)  # noqa: F821 (injected by Snakemake)
