# Snakemake script: the work is in src/deepsky/stages/cosmo_graphs.py
from deepsky.stages.cosmo_graphs import figure

figure(snakemake)  # noqa: F821 (injected by Snakemake)
