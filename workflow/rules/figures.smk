# Stage 6: the figures of an experiment, each named after the lecture slide it reproduces
# (<lecture>-<slide>.png, with a PDF beside it). Each figure job logs its figure to MLflow.


rule loss_curves:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/001-train-validation-loss.png",
            caption="../report/loss.rst",
            category="{experiment}",
            subcategory="Training",
        ),
    log:
        "logs/{experiment}/figures/001-train-validation-loss.log",
    params:
        figure="loss_curves",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule roc_curves:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-roc-curves.png",
            caption="../report/roc.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-roc-curves.log",
    params:
        figure="roc_band",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule metcalf_table:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/002-metcalf19-table.png",
            caption="../report/metcalf_table.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/002-metcalf19-table.log",
    params:
        figure="metcalf_table",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule confusion_matrix:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-confusion-matrix.png",
            caption="../report/confusion.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-confusion-matrix.log",
    params:
        figure="confusion_matrices",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule roc_one_vs_rest:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-roc-one-vs-rest.png",
            caption="../report/roc_ovr.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-roc-one-vs-rest.log",
    params:
        figure="one_vs_rest_roc",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"
