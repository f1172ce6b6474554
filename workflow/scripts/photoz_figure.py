# Snakemake script: the work is in src/deepsky/stages/photoz.py
from deepsky.stages.photoz import figure_main

figure_main(snakemake)  # noqa: F821 (injected by Snakemake)
