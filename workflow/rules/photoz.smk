# Photometric redshifts (lecture 002: deep learning vs the classical approach, mixture density
# networks). The networks are ordinary `train` / `evaluate` jobs of experiments with `task: photoz`;
# these rules simulate the survey, run the classical methods (kNN, random forest) on the same
# folds, and compare every method on the same test galaxies.

PHOTOZ_SOURCE = "simulate_photoz"
PHOTOZ_DIR = "results/photoz"
# Figure stem -> function of deepsky.figures.photoz.
PHOTOZ_FIGURES = {
    "002-photoz-scatter": "scatter_panels",
    "002-photoz-pit": "pit_histograms",
    "002-photoz-pdf-examples": "pdf_examples",
    "002-photoz-vs-magnitude": "versus_magnitude",
    "002-photoz-nz": "stacked_nz",
}
PHOTOZ_DATASET_FIGURES = {"002-photoz-survey": "survey", "002-photoz-cutouts": "cutout_examples"}


rule photoz_simulate:
    priority: 20
    output:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    wildcard_constraints:
        dataset=wildcard_choice(photoz_datasets()),
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    script:
        "../scripts/photoz_simulate.py"


rule photoz_dataset_figure:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        tracking="results/tracking/ready.json",  # logs to MLflow: the store must exist first
    output:
        report(
            "results/data/{dataset}/figures/{stem}.png",
            caption="../report/photoz/dataset.rst",
            category="Datasets",
            subcategory="{dataset}",
        ),
    log:
        "logs/data/{dataset}/figures/{stem}.log",
    wildcard_constraints:
        dataset=wildcard_choice(photoz_datasets()),
        stem="|".join(PHOTOZ_DATASET_FIGURES),
    params:
        figure=photoz_figure_name,
    conda:
        CONDA_ENV
    script:
        "../scripts/photoz_dataset_figure.py"


rule photoz_classical:
    input:
        card=photoz_dataset_file("card.json"),
        catalog=photoz_dataset_file("catalog.parquet"),
        split=photoz_dataset_file("split.parquet"),
        tracking="results/tracking/ready.json",
    output:
        predictions=f"{PHOTOZ_DIR}/classical/{{method}}/predictions.parquet",
        metrics=f"{PHOTOZ_DIR}/classical/{{method}}/metrics.json",
    log:
        "logs/photoz/classical/{method}.log",
    benchmark:
        "results/benchmarks/photoz/classical/{method}.tsv"
    wildcard_constraints:
        method="knn|random_forest",
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/photoz_classical.py"


rule photoz_table:
    input:
        predictions=photoz_predictions,
        card=photoz_dataset_file("card.json"),
        catalog=photoz_dataset_file("catalog.parquet"),
        split=photoz_dataset_file("split.parquet"),
    output:
        table=f"{PHOTOZ_DIR}/comparison.csv",
        figure=report(
            f"{PHOTOZ_DIR}/figures/002-photoz-methods-table.png",
            caption="../report/photoz/table.rst",
            category="photoz",
            subcategory="Results",
        ),
    log:
        "logs/photoz/table.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/photoz_table.py"


rule photoz_figure:
    input:
        predictions=photoz_predictions,
        card=photoz_dataset_file("card.json"),
        catalog=photoz_dataset_file("catalog.parquet"),
    output:
        report(
            f"{PHOTOZ_DIR}/figures/{{stem}}.png",
            caption="../report/photoz/figures.rst",
            category="photoz",
            subcategory="Results",
        ),
    log:
        "logs/photoz/figures/{stem}.log",
    wildcard_constraints:
        stem="|".join(PHOTOZ_FIGURES),
    params:
        figure=photoz_figure_name,
    conda:
        CONDA_ENV
    script:
        "../scripts/photoz_figure.py"
