# Training-practice experiments (over-fitting, dropout, batch norm, residuals, batch size,
# activations, architectures): their models are ordinary `train` jobs of experiment variants;
# these rules draw the comparisons, and measure gradient norms through deep MLPs.


rule practice_figure:
    input:
        unpack(figure_inputs),
    output:
        report(
            "results/{experiment}/figures/{stem}.png",
            caption="../report/practice.rst",
            category="{experiment}",
            subcategory="Comparisons",
        ),
    log:
        "logs/{experiment}/figures/{stem}.log",
    wildcard_constraints:
        stem=wildcard_choice(PRACTICE_STEMS.values()),
    conda:
        CONDA_ENV
    script:
        "../scripts/practice_figure.py"


rule gradient_norms:
    input:
        images=gradient_input("images.npy"),
        catalog=gradient_input("catalog.parquet"),
        split=gradient_input("split.parquet"),
        tracking="results/tracking/ready.json",
    output:
        table="results/{experiment}/gradient_norms.csv",
        figure=report(
            "results/{experiment}/figures/002-vanishing-gradients.png",
            caption="../report/vanishing_gradients.rst",
            category="{experiment}",
            subcategory="Results",
        ),
    log:
        "logs/{experiment}/gradient_norms.log",
    params:
        settings=gradient_settings,
    wildcard_constraints:
        experiment="vanishing_gradients",
    threads: 1
    resources:
        gpu=1,
    conda:
        CONDA_ENV
    script:
        "../scripts/gradient_norms.py"
