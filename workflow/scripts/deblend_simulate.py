# Snakemake script: the work is in src/deepsky/stages/deblend.py
from deepsky.stages.deblend import simulate

simulate(snakemake)  # noqa: F821 (injected by Snakemake)
