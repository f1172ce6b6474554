# Light curves (lecture 002: RNN, LSTM, self-attention). The sequence models are ordinary
# `train` / `evaluate` jobs of an experiment with `task: sequence_classification`; these rules
# simulate the light curves, run the random-forest baseline and draw the comparisons.



rule lightcurves_simulate:
    priority: 20
    output:
        observations="results/data/{dataset}/observations.parquet",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    wildcard_constraints:
        dataset=wildcard_choice(lightcurve_datasets()),
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_simulate.py"


rule lightcurves_examples:
    input:
        observations="results/data/{dataset}/observations.parquet",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
    output:
        report(
            "results/data/{dataset}/figures/002-lightcurve-examples.png",
            caption="../report/lightcurves/examples.rst",
            category="Datasets",
            subcategory="{dataset}",
        ),
    log:
        "logs/data/{dataset}/figures/002-lightcurve-examples.log",
    wildcard_constraints:
        dataset=wildcard_choice(lightcurve_datasets()),
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_examples.py"


# The baseline writes the same files as a trained member's `evaluate` job.
ruleorder: lightcurves_baseline > evaluate


rule lightcurves_baseline:
    input:
        unpack(lightcurve_data),
        tracking="results/tracking/ready.json",
    output:
        predictions="results/{experiment}/random_forest/predictions.parquet",
        metrics="results/{experiment}/random_forest/metrics.json",
        early="results/{experiment}/random_forest/early_classification.csv",
        features="results/{experiment}/random_forest/features.parquet",
    log:
        "logs/{experiment}/random_forest/baseline.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    benchmark:
        "results/benchmarks/{experiment}/random_forest/baseline.tsv"
    params:
        folds=lightcurve_folds,
    threads: 1
    resources:
        mem_mb=3000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_baseline.py"


rule lightcurves_comparison:
    input:
        unpack(lightcurve_comparison_inputs),
    output:
        table="results/{experiment}/comparison.csv",
        figure=report(
            "results/{experiment}/figures/002-sequence-model-comparison.png",
            caption="../report/lightcurves/comparison.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/002-sequence-model-comparison.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_comparison.py"


# The generic multi-class figures, with the baseline beside the sequence models.
ruleorder: lightcurves_confusion_matrix > confusion_matrix
ruleorder: lightcurves_roc_one_vs_rest > roc_one_vs_rest


rule lightcurves_confusion_matrix:
    input:
        unpack(lightcurve_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-confusion-matrix.png",
            caption="../report/confusion.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-confusion-matrix.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    params:
        figure="confusion_matrices",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule lightcurves_roc_one_vs_rest:
    input:
        unpack(lightcurve_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-roc-one-vs-rest.png",
            caption="../report/roc_ovr.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-roc-one-vs-rest.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    params:
        figure="one_vs_rest_roc",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule lightcurves_sequence_length:
    input:
        unpack(lightcurve_data),
        models=lightcurve_models(first_fold_only=True),
        predictions=lightcurve_all_predictions,
    output:
        profile="results/{experiment}/gradient_profile.csv",
        ratios="results/{experiment}/gradient_vs_length.csv",
        accuracy="results/{experiment}/accuracy_vs_length.csv",
        figure=report(
            "results/{experiment}/figures/002-vanishing-gradients-through-time.png",
            caption="../report/lightcurves/sequence_length.rst",
            category="{experiment}",
            subcategory="Sequences",
        ),
    log:
        "logs/{experiment}/figures/002-vanishing-gradients-through-time.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    benchmark:
        "results/benchmarks/{experiment}/sequence_length.tsv"
    threads: 1
    resources:
        mem_mb=3000,
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_sequence_length.py"


rule lightcurves_early:
    input:
        unpack(lightcurve_data),
        models=lightcurve_models(first_fold_only=False),
        baseline="results/{experiment}/random_forest/early_classification.csv",
    output:
        table="results/{experiment}/early_classification.csv",
        figure=report(
            "results/{experiment}/figures/002-early-classification.png",
            caption="../report/lightcurves/early.rst",
            category="{experiment}",
            subcategory="Sequences",
        ),
    log:
        "logs/{experiment}/figures/002-early-classification.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    benchmark:
        "results/benchmarks/{experiment}/early_classification.tsv"
    threads: 1
    resources:
        mem_mb=3000,
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_early.py"


rule lightcurves_attention:
    input:
        unpack(lightcurve_data),
        model=lightcurve_transformer_model,
    output:
        table="results/{experiment}/attention.csv",
        figure=report(
            "results/{experiment}/figures/002-attention-maps.png",
            caption="../report/lightcurves/attention.rst",
            category="{experiment}",
            subcategory="Sequences",
        ),
    log:
        "logs/{experiment}/figures/002-attention-maps.log",
    wildcard_constraints:
        experiment=wildcard_choice(lightcurve_experiments()),
    conda:
        CONDA_ENV
    script:
        "../scripts/lightcurves_attention.py"
