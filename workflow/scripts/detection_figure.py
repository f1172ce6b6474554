# Snakemake script: the work is in src/deepsky/stages/detection.py
from deepsky.stages.detection import figure

figure(snakemake)  # noqa: F821 (injected by Snakemake)
