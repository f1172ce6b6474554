# Snakemake script: the work is in src/deepsky/stages/train.py
from deepsky.stages.train import main

main(snakemake)  # noqa: F821 (injected by Snakemake)
