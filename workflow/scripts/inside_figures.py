# Snakemake script: the work is in src/deepsky/stages/inside.py
from deepsky.stages.inside import main

main(snakemake)  # noqa: F821 (injected by Snakemake)
