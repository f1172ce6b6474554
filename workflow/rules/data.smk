# Stage 1: the data. Simulated datasets are rendered in parallel across the rule's threads.


rule simulate_dataset:
    output:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: workflow.cores
    resources:
        mem_mb=4000,
        runtime=60,
    script:
        "../scripts/simulate.py"


rule export_fits:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
    output:
        directory("results/data/{dataset}/fits"),
    log:
        "logs/data/{dataset}/export_fits.log",
    script:
        "../scripts/export_fits.py"


rule dataset_figures:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
    output:
        examples=report(
            "results/data/{dataset}/figures/002-lens-nonlens-examples.png",
            caption="../report/examples.rst",
            category="Lens finding",
            subcategory="Data",
        ),
        augmentation=report(
            "results/data/{dataset}/figures/002-data-augmentation.png",
            caption="../report/augmentation.rst",
            category="Lens finding",
            subcategory="Data",
        ),
    log:
        "logs/data/{dataset}/figures.log",
    script:
        "../scripts/dataset_figures.py"
