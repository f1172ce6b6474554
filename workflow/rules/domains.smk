# Domain shift (lecture 002, "Dealing with a lack of labelled data"): experiments with
# `task: domain_adaptation`. Their members train and evaluate with the ordinary train / evaluate
# scripts; the two rules below only add the source and target datasets as inputs (the task reads
# unlabelled target images in training and scores both test sets). Then the few-labels transfer
# sweep per fold, the domain-gap table and the latent space.

DOMAINS_TASK = "domain_adaptation"


ruleorder: domains_train > train
ruleorder: domains_evaluate > evaluate


rule domains_train:
    priority: 10
    input:
        unpack(domains_train_inputs),
    output:
        model="results/{experiment}/{arch}/fold{fold}/model.pt",
        history="results/{experiment}/{arch}/fold{fold}/history.csv",
    log:
        "logs/{experiment}/{arch}/fold{fold}/train.log",
    benchmark:
        "results/benchmarks/{experiment}/{arch}/fold{fold}/train.tsv"
    wildcard_constraints:
        experiment=wildcard_choice(domains_experiments()),
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    script:
        "../scripts/train.py"


rule domains_evaluate:
    input:
        unpack(domains_evaluate_inputs),
    output:
        predictions="results/{experiment}/{arch}/predictions.parquet",
        metrics="results/{experiment}/{arch}/metrics.json",
    log:
        "logs/{experiment}/{arch}/evaluate.log",
    benchmark:
        "results/benchmarks/{experiment}/{arch}/evaluate.tsv"
    wildcard_constraints:
        experiment=wildcard_choice(domains_experiments()),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/evaluate.py"


rule domains_transfer:
    priority: 10
    input:
        unpack(domains_transfer_inputs),
    output:
        metrics="results/{experiment}/transfer/fold{fold}/metrics.csv",
        predictions="results/{experiment}/transfer/fold{fold}/predictions.parquet",
    log:
        "logs/{experiment}/transfer/fold{fold}.log",
    benchmark:
        "results/benchmarks/{experiment}/transfer/fold{fold}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        CONDA_ENV
    script:
        "../scripts/domains_transfer.py"


rule domains_gap_table:
    input:
        unpack(domains_figure_inputs),
    output:
        table="results/{experiment}/domain_gap.csv",
        figure=report(
            "results/{experiment}/figures/002-domain-gap-table.png",
            caption="../report/domains/gap_table.rst",
            category="{experiment}",
            subcategory="Domain shift",
        ),
    log:
        "logs/{experiment}/figures/002-domain-gap-table.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/domains_gap.py"


rule domains_transfer_figure:
    input:
        unpack(domains_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/002-transfer-learning-labels.png",
            caption="../report/domains/transfer.rst",
            category="{experiment}",
            subcategory="Domain shift",
        ),
    log:
        "logs/{experiment}/figures/002-transfer-learning-labels.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/domains_transfer_figure.py"


rule domains_latent_space:
    input:
        unpack(domains_latent_inputs),
    output:
        report(
            "results/{experiment}/figures/002-domain-adaptation-latent-space.png",
            caption="../report/domains/latent_space.rst",
            category="{experiment}",
            subcategory="Domain shift",
        ),
    log:
        "logs/{experiment}/figures/002-domain-adaptation-latent-space.log",
    benchmark:
        "results/benchmarks/{experiment}/latent_space.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/domains_latent.py"
