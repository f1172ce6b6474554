# Snakemake script: the work is in src/deepsky/stages/data.py
from deepsky.stages.data import artefact

artefact(snakemake)  # noqa: F821 (injected by Snakemake)
