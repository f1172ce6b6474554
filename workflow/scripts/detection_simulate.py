# Snakemake script: the work is in src/deepsky/stages/detection.py
from deepsky.stages.detection import simulate

simulate(snakemake)  # noqa: F821 (injected by Snakemake)
