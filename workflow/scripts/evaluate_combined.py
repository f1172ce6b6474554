# Snakemake script: the work is in src/deepsky/stages/evaluate.py
from deepsky.stages.evaluate import combined_main

combined_main(snakemake)  # noqa: F821 (injected by Snakemake)
