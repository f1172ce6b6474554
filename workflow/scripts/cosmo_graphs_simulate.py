# Snakemake script: the work is in src/deepsky/stages/cosmo_graphs.py
from deepsky.stages.cosmo_graphs import simulate

simulate(snakemake)  # noqa: F821 (injected by Snakemake)
