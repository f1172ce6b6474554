# Stage 2: held-out test set, then stratified K folds of the rest (fold k validates model k).


rule split_dataset:
    priority: 20
    input:
        catalog="results/data/{dataset}/catalog.parquet",
    output:
        split="results/data/{dataset}/split.parquet",
    log:
        "logs/data/{dataset}/split.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/split.py"
