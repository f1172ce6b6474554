# Stage 1: the data. Simulated datasets are rendered in parallel across the rule's threads.


rule simulate_dataset:
    # Scheduling: data first, then training, so the short figure jobs fill the cores at the end.
    priority: 20
    output:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    wildcard_constraints:
        dataset=wildcard_choice(simulated_datasets()),
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    script:
        "../scripts/simulate.py"


rule artefact_dataset:
    priority: 20
    input:
        images=artefact_base_file("images.npy"),
        catalog=artefact_base_file("catalog.parquet"),
        card=artefact_base_file("card.json"),
    output:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/artefact.log",
    wildcard_constraints:
        dataset=wildcard_choice(artefact_datasets()),
    conda:
        CONDA_ENV
    script:
        "../scripts/artefact_dataset.py"


rule export_fits:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
    output:
        directory("results/data/{dataset}/fits"),
    log:
        "logs/data/{dataset}/export_fits.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/export_fits.py"


rule example_grid:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
    output:
        report(
            "results/data/{dataset}/figures/{stem}.png",
            caption="../report/examples.rst",
            category="Datasets",
            subcategory="{dataset}",
        ),
    log:
        "logs/data/{dataset}/figures/{stem}.log",
    wildcard_constraints:
        stem="002-lens-nonlens-examples|003-class-examples|004-hezaveh17-examples",
    conda:
        CONDA_ENV
    script:
        "../scripts/example_grid.py"


rule augmentation_figure:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
    output:
        report(
            "results/data/{dataset}/figures/002-data-augmentation.png",
            caption="../report/augmentation.rst",
            category="Datasets",
            subcategory="{dataset}",
        ),
    log:
        "logs/data/{dataset}/figures/002-data-augmentation.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/augmentation_figure.py"
