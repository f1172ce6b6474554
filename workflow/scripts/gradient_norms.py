# Snakemake script: the work is in src/deepsky/practice/gradients.py
from deepsky.practice.gradients import main

main(snakemake)  # noqa: F821 (injected by Snakemake)
