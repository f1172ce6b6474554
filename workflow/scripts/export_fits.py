# Snakemake script: the work is in src/deepsky/stages/data.py
from deepsky.stages.data import export_fits

export_fits(snakemake)  # noqa: F821 (injected by Snakemake)
