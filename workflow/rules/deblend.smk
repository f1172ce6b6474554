# Deblending and segmentation of artificial blends with a U-Net (lecture 002; Boucaud+2020,
# Hausen+2020). The networks are ordinary `train` / `evaluate` jobs of experiments with
# `task: deblend` or `task: segmentation`; these rules simulate the blends (GalSim, with the SEP
# baseline measured at data time) and draw the figures from the first fold's model and predictions.

rule deblend_simulate:
    priority: 20
    output:
        images="results/data/{dataset}/images.npy",
        central="results/data/{dataset}/central.npy",
        segmentation="results/data/{dataset}/segmentation.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    wildcard_constraints:
        dataset=wildcard_choice(blend_datasets()),
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/deblend_simulate.py"


rule deblend_figure:
    input:
        unpack(deblend_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/{stem}.png",
            caption="../report/deblend/figures.rst",
            category="{experiment}",
            subcategory="U-Net",
        ),
    log:
        "logs/{experiment}/figures/{stem}.log",
    wildcard_constraints:
        experiment=wildcard_choice(blend_experiments("deblend") + blend_experiments("segmentation")),
        stem="|".join(DEBLEND_FIGURES),
    benchmark:
        "results/benchmarks/{experiment}/figures/{stem}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    script:
        "../scripts/deblend_figure.py"
