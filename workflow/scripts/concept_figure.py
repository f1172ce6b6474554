# Snakemake script: the work is in src/deepsky/stages/report.py
from deepsky.stages.report import concept_figure

concept_figure(snakemake)  # noqa: F821 (injected by Snakemake)
