# Snakemake script: the work is in src/deepsky/stages/photoz.py
from deepsky.stages.photoz import classical

classical(snakemake)  # noqa: F821 (injected by Snakemake)
