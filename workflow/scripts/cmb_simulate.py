# Snakemake script: the work is in src/deepsky/stages/cmb.py
from deepsky.stages.cmb import simulate

simulate(snakemake)  # noqa: F821 (injected by Snakemake)
