# Stage 3: augmented copies of train+validation images only; training keeps its own folds' copies.


rule augment_dataset:
    priority: 20
    input:
        images="results/data/{dataset}/images.npy",
        split="results/data/{dataset}/split.parquet",
    output:
        images="results/data/{dataset}/augmented/images.npy",
        catalog="results/data/{dataset}/augmented/catalog.parquet",
    log:
        "logs/data/{dataset}/augment.log",
    benchmark:
        "results/benchmarks/data/{dataset}/augment.tsv"
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/augment.py"
