# Stage 5: K-fold evaluation: every fold's best model of an architecture on the held-out
# test set (one job, one MLflow run, a metric step per fold), then the summary across folds.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        predictions="results/{experiment}/{arch}/predictions.parquet",
        metrics="results/{experiment}/{arch}/metrics.json",
    log:
        "logs/{experiment}/{arch}/evaluate.log",
    benchmark:
        "results/benchmarks/{experiment}/{arch}/evaluate.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/evaluate.py"


# A member may not be called "combined": that name is the regression experiments' average.
ruleorder: evaluate_combined > evaluate


rule evaluate_combined:
    input:
        unpack(combined_inputs),
    output:
        predictions="results/{experiment}/combined/predictions.parquet",
        metrics="results/{experiment}/combined/metrics.json",
    log:
        "logs/{experiment}/combined/evaluate.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/evaluate_combined.py"


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
