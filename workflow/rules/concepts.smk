# Worked examples of the lecture slides (convolution arithmetic, pooling, transposed
# convolution, activations...), computed with torch: no data, no training.


rule concept_figure:
    input:
        tracking="results/tracking/ready.json",
    output:
        figure=report(
            "results/concepts/figures/{stem}.png",
            caption="../report/concepts.rst",
            category="Concepts",
            subcategory="{stem}",
        ),
        numbers="results/concepts/figures/{stem}.json",
    log:
        "logs/concepts/{stem}.log",
    wildcard_constraints:
        stem=wildcard_choice(CONCEPT_STEMS),
    conda:
        CONDA_ENV
    script:
        "../scripts/concept_figure.py"
