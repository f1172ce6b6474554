# Snakemake script: the work is in src/deepsky/stages/report.py
from deepsky.stages.report import summary_main

summary_main(snakemake)  # noqa: F821 (injected by Snakemake)
