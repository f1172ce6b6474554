# Stage 5: each fold's best model on the held-out test set, then the K-fold summary.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        predictions="results/{experiment}/{arch}/fold{fold}/predictions.parquet",
        metrics="results/{experiment}/{arch}/fold{fold}/metrics.json",
    log:
        "logs/{experiment}/{arch}/fold{fold}/evaluate.log",
    benchmark:
        "results/benchmarks/{experiment}/{arch}/fold{fold}/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/evaluate.py"


rule summarize:
    input:
        unpack(summary_inputs),
    output:
        summary=report(
            "results/{experiment}/summary.csv",
            caption="../report/summary.rst",
            category="{experiment}",
            subcategory="Results",
        ),
        per_fold="results/{experiment}/per_fold.csv",
    log:
        "logs/{experiment}/summarize.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/summarize.py"
