# Snakemake script: the work is in src/deepsky/stages/domains.py
from deepsky.stages.domains import transfer_figure_main

transfer_figure_main(snakemake)  # noqa: F821 (injected by Snakemake)
