# Snakemake script: the work is in src/deepsky/stages/report.py
from deepsky.stages.report import example_grid

example_grid(snakemake)  # noqa: F821 (injected by Snakemake)
