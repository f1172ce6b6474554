# Snakemake script: the work is in src/deepsky/stages/report.py
from deepsky.stages.report import figures_main

figures_main(snakemake)  # noqa: F821 (injected by Snakemake)
