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


rule reliability_diagram:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-reliability-diagram.png",
            caption="../report/reliability.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-reliability-diagram.log",
    params:
        figure="reliability_diagram",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule hezaveh_table:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-hezaveh17-table.png",
            caption="../report/hezaveh_table.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-hezaveh17-table.log",
    params:
        figure="hezaveh_table",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule parameters_predicted_vs_true:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-hezaveh17-parameters.png",
            caption="../report/hezaveh_parameters.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-hezaveh17-parameters.log",
    params:
        figure="predicted_vs_true",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"


rule parameter_calibration:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/004-parameter-calibration.png",
            caption="../report/parameter_calibration.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures/004-parameter-calibration.log",
    params:
        figure="uncertainty_calibration",
    conda:
        CONDA_ENV
    script:
        "../scripts/experiment_figure.py"
