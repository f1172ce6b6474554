# Snakemake script: the work is in src/deepsky/stages/real_data.py
from deepsky.stages.real_data import prepare

prepare(snakemake)  # noqa: F821 (injected by Snakemake)
