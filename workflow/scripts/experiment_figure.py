# Snakemake script: the work is in src/deepsky/stages/report.py
from deepsky.stages.report import figure_main

figure_main(snakemake)  # noqa: F821 (injected by Snakemake)
