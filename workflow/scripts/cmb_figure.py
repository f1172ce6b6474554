# Snakemake script: the work is in src/deepsky/stages/cmb.py
from deepsky.stages.cmb import figure_main

figure_main(snakemake)  # noqa: F821 (injected by Snakemake)
