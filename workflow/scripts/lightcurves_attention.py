# Snakemake script: the work is in src/deepsky/stages/lightcurves.py
from deepsky.stages.lightcurves import attention

attention(snakemake)  # noqa: F821 (injected by Snakemake)
