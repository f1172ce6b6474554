# Snakemake script: the work is in src/deepsky/stages/domains.py
from deepsky.stages.domains import latent_main

latent_main(snakemake)  # noqa: F821 (injected by Snakemake)
