# Lecture 003, Tutorial 3: CMB maps with a GAN. camb + healpy patches (cmb_simulate), the shared
# `train` rule with the `gan` task (two optimisers in one step), then this file's evaluation of
# every fold's generator against the held-out patches and the figures. The generic evaluate /
# summarize rules are not asked for: experiment_targets() returns gan_targets() for task gan.

CMB_SOURCE = "simulate_cmb"
# One rule per figure below (params.figure names the function of deepsky.figures.cmb).
CMB_FIGURES = [
    "003-cmb-real-vs-generated",
    "003-cmb-power-spectra",
    "003-cmb-power-ratio",
    "003-cmb-pixel-histogram",
    "003-cmb-minkowski",
    "003-gan-training",
]


rule cmb_simulate:
    priority: 20
    output:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/cmb_simulate.log",
    benchmark:
        "results/benchmarks/data/{dataset}/cmb_simulate.tsv"
    wildcard_constraints:
        dataset=wildcard_choice(cmb_datasets()),
    threads: workflow.cores
    resources:
        mem_mb=6000,
        runtime=60,
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_simulate.py"


rule cmb_dataset_figure:
    input:
        images="results/data/{dataset}/images.npy",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
    output:
        report(
            "results/data/{dataset}/figures/003-cmb-maps.png",
            caption="../report/cmb/dataset.rst",
            category="Datasets",
            subcategory="{dataset}",
        ),
    log:
        "logs/data/{dataset}/figures/003-cmb-maps.log",
    wildcard_constraints:
        dataset=wildcard_choice(cmb_datasets()),
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_dataset_figure.py"


# results/{experiment}/{arch}/metrics.json of a GAN comes from here, not from the generic evaluate.
ruleorder: cmb_evaluate > evaluate


rule cmb_evaluate:
    input:
        unpack(cmb_evaluate_inputs),
    output:
        generated="results/{experiment}/{arch}/generated.npy",
        real="results/{experiment}/{arch}/real.npy",
        metrics="results/{experiment}/{arch}/metrics.json",
        spectra="results/{experiment}/{arch}/spectra.parquet",
        minkowski="results/{experiment}/{arch}/minkowski.parquet",
        card="results/{experiment}/{arch}/card.json",
    log:
        "logs/{experiment}/{arch}/cmb_evaluate.log",
    benchmark:
        "results/benchmarks/{experiment}/{arch}/cmb_evaluate.tsv"
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_evaluate.py"


rule cmb_real_vs_generated:
    input:
        unpack(cmb_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/003-cmb-real-vs-generated.png",
            caption="../report/cmb/real_vs_generated.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/003-cmb-real-vs-generated.log",
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    params:
        figure="real_vs_generated",
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_figure.py"


rule cmb_power_spectra:
    input:
        unpack(cmb_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/003-cmb-power-spectra.png",
            caption="../report/cmb/power_spectra.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/003-cmb-power-spectra.log",
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    params:
        figure="power_spectra",
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_figure.py"


rule cmb_power_ratio:
    input:
        unpack(cmb_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/003-cmb-power-ratio.png",
            caption="../report/cmb/power_ratio.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/003-cmb-power-ratio.log",
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    params:
        figure="power_ratio",
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_figure.py"


rule cmb_pixel_histogram:
    input:
        unpack(cmb_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/003-cmb-pixel-histogram.png",
            caption="../report/cmb/pixel_histogram.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/003-cmb-pixel-histogram.log",
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    params:
        figure="pixel_histogram",
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_figure.py"


rule cmb_minkowski:
    input:
        unpack(cmb_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/003-cmb-minkowski.png",
            caption="../report/cmb/minkowski.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/003-cmb-minkowski.log",
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    params:
        figure="minkowski",
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_figure.py"


rule gan_training:
    input:
        unpack(cmb_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/003-gan-training.png",
            caption="../report/cmb/training.rst",
            category="{experiment}",
            subcategory="Training",
        ),
    log:
        "logs/{experiment}/figures/003-gan-training.log",
    wildcard_constraints:
        experiment=wildcard_choice(gan_experiments()),
    params:
        figure="training",
    conda:
        CONDA_ENV
    script:
        "../scripts/cmb_figure.py"
