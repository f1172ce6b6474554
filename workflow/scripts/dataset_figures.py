# Snakemake script: the work is in src/deepsky/stages/report.py
from deepsky.stages.report import dataset_figures

dataset_figures(snakemake)  # noqa: F821 (injected by Snakemake)
