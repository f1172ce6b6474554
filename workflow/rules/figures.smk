# Stage 6: the figures of an experiment, each named after the lecture slide it reproduces.


rule experiment_figures:
    input:
        unpack(figure_inputs),
    output:
        roc=report(
            "results/{experiment}/figures/004-roc-curves.png",
            caption="../report/roc.rst",
            category="Lens finding",
            subcategory="Results",
        ),
        loss=report(
            "results/{experiment}/figures/001-train-validation-loss.png",
            caption="../report/loss.rst",
            category="Lens finding",
            subcategory="Training",
        ),
        table=report(
            "results/{experiment}/figures/002-metcalf19-table.png",
            caption="../report/metcalf_table.rst",
            category="Lens finding",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/figures.log",
    script:
        "../scripts/experiment_figures.py"
