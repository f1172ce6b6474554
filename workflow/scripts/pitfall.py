# Snakemake script: the work is in src/deepsky/stages/pitfall.py
from deepsky.stages.pitfall import main

main(snakemake)  # noqa: F821 (injected by Snakemake)
