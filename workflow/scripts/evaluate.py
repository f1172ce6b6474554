# Snakemake script: the work is in src/deepsky/stages/evaluate.py
from deepsky.stages.evaluate import main

main(snakemake)  # noqa: F821 (injected by Snakemake)
