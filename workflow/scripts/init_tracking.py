# Snakemake script: the work is in src/deepsky/stages/train.py
from deepsky.stages.train import init_tracking

init_tracking(snakemake)  # noqa: F821 (injected by Snakemake)
