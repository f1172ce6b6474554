# Snakemake script: the work is in src/deepsky/stages/cmb.py
from deepsky.stages.cmb import evaluate_main

evaluate_main(snakemake)  # noqa: F821 (injected by Snakemake)
