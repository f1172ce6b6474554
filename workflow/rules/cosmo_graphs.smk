# Cosmology from galaxy catalogues with graph neural networks (lecture 002, "A brief incursion
# into GNNs"; CosmoGraphNet, de Santi+2023). The networks are ordinary `train` / `evaluate` jobs
# of experiments with `task: graph_regression`; these rules simulate the catalogues, test the
# trained networks on other galaxy models (robustness) and draw the figures.

COSMO_SOURCE = "simulate_cosmo_galaxies"
# Figure stem -> function of deepsky.figures.cosmo_graphs.
COSMO_DATASET_FIGURES = {"002-galaxy-graph": "catalogue_graph", "002-power-spectra": "power_spectra"}
COSMO_EXPERIMENT_FIGURES = {"002-cosmographnet-predictions": "predicted_vs_true", "002-desanti-robustness": "robustness"}


rule cosmo_graphs_simulate:
    priority: 20
    output:
        galaxies="results/data/{dataset}/galaxies.parquet",
        catalog="results/data/{dataset}/catalog.parquet",
        power_grid="results/data/{dataset}/power_grid.npz",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    wildcard_constraints:
        dataset=wildcard_choice(cosmo_datasets()),
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/cosmo_graphs_simulate.py"


rule cosmo_graphs_dataset_figure:
    input:
        galaxies="results/data/{dataset}/galaxies.parquet",
        catalog="results/data/{dataset}/catalog.parquet",
        power_grid="results/data/{dataset}/power_grid.npz",
        card="results/data/{dataset}/card.json",
    output:
        report(
            "results/data/{dataset}/figures/{stem}.png",
            caption="../report/cosmo_graphs/dataset.rst",
            category="Datasets",
            subcategory="{dataset}",
        ),
    log:
        "logs/data/{dataset}/figures/{stem}.log",
    wildcard_constraints:
        dataset=wildcard_choice(cosmo_datasets()),
        stem="|".join(COSMO_DATASET_FIGURES),
    params:
        figure=cosmo_figure_name,
    conda:
        CONDA_ENV
    script:
        "../scripts/cosmo_graphs_figure.py"


rule cosmo_graphs_robustness:
    input:
        unpack(cosmo_robustness_inputs),
    output:
        predictions="results/{experiment}/robustness/predictions.parquet",
        per_fold="results/{experiment}/robustness/per_fold.csv",
        summary=report(
            "results/{experiment}/robustness/summary.csv",
            caption="../report/cosmo_graphs/robustness_table.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/robustness.log",
    benchmark:
        "results/benchmarks/{experiment}/robustness.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/cosmo_graphs_robustness.py"


rule cosmo_graphs_figure:
    input:
        unpack(cosmo_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/{stem}.png",
            caption="../report/cosmo_graphs/figures.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/{stem}.log",
    wildcard_constraints:
        stem="|".join(COSMO_EXPERIMENT_FIGURES),
    params:
        figure=cosmo_figure_name,
    conda:
        CONDA_ENV
    script:
        "../scripts/cosmo_graphs_figure.py"
