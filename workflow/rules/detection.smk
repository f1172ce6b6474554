# Mask R-CNN detection, segmentation and star/galaxy classification of fields (lecture 002;
# He+2017, Burke+2019). The network is an ordinary `train` / `evaluate` job of an experiment with
# `task: detection`; these rules simulate the fields (GalSim) and draw the figures from the
# evaluation's prediction table (first fold), one rule per figure.

rule detection_simulate:
    priority: 20
    output:
        images="results/data/{dataset}/images.npy",
        masks="results/data/{dataset}/masks.npy",
        objects="results/data/{dataset}/objects.parquet",
        catalog="results/data/{dataset}/catalog.parquet",
        card="results/data/{dataset}/card.json",
        card_md="results/data/{dataset}/card.md",
    log:
        "logs/data/{dataset}/simulate.log",
    wildcard_constraints:
        dataset=wildcard_choice(fields_datasets()),
    benchmark:
        "results/benchmarks/data/{dataset}/simulate.tsv"
    threads: workflow.cores
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        CONDA_ENV
    script:
        "../scripts/detection_simulate.py"


rule detection_examples_figure:
    input:
        unpack(detection_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/002-mask-rcnn-detections.png",
            caption="../report/detection/detections.rst",
            category="{experiment}",
            subcategory="Mask R-CNN",
        ),
    log:
        "logs/{experiment}/figures/002-mask-rcnn-detections.log",
    wildcard_constraints:
        experiment=wildcard_choice(detection_experiments()),
    params:
        figure="detections",
    benchmark:
        "results/benchmarks/{experiment}/figures/002-mask-rcnn-detections.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    script:
        "../scripts/detection_figure.py"


rule detection_precision_recall_figure:
    input:
        unpack(detection_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/002-mask-rcnn-precision-recall.png",
            caption="../report/detection/precision_recall.rst",
            category="{experiment}",
            subcategory="Mask R-CNN",
        ),
    log:
        "logs/{experiment}/figures/002-mask-rcnn-precision-recall.log",
    wildcard_constraints:
        experiment=wildcard_choice(detection_experiments()),
    params:
        figure="precision_recall",
    benchmark:
        "results/benchmarks/{experiment}/figures/002-mask-rcnn-precision-recall.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    script:
        "../scripts/detection_figure.py"


rule detection_completeness_figure:
    input:
        unpack(detection_figure_inputs),
    output:
        report(
            "results/{experiment}/figures/002-mask-rcnn-completeness.png",
            caption="../report/detection/completeness.rst",
            category="{experiment}",
            subcategory="Mask R-CNN",
        ),
    log:
        "logs/{experiment}/figures/002-mask-rcnn-completeness.log",
    wildcard_constraints:
        experiment=wildcard_choice(detection_experiments()),
    params:
        figure="completeness",
    benchmark:
        "results/benchmarks/{experiment}/figures/002-mask-rcnn-completeness.tsv"
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    script:
        "../scripts/detection_figure.py"
