# Snakemake script: the work is in src/deepsky/stages/photoz.py
from deepsky.stages.photoz import simulate

simulate(snakemake)  # noqa: F821 (injected by Snakemake)
