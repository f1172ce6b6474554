# Snakemake script: the work is in src/deepsky/stages/deblend.py
from deepsky.stages.deblend import figure

figure(snakemake)  # noqa: F821 (injected by Snakemake)
