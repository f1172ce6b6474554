# Snakemake script: the work is in src/deepsky/stages/lightcurves.py
from deepsky.stages.lightcurves import sequence_length

sequence_length(snakemake)  # noqa: F821 (injected by Snakemake)
