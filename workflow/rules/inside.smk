# Inside trained networks (lecture 002 "Visualizing CNNs"): one job per chosen model draws
# every figure from the model's held-out test images.


rule inside_figures:
    input:
        model="results/{experiment}/{arch}/fold{fold}/model.pt",
        card=inside_dataset_file("card.json"),
        split=inside_dataset_file("split.parquet"),
    output:
        first_layer_filters=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-first-layer-filters.png",
            caption="../report/inside/002-first-layer-filters.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        feature_maps=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-feature-maps.png",
            caption="../report/inside/002-feature-maps.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        top9_activations=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-top9-activations.png",
            caption="../report/inside/002-top9-activations.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        occlusion=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-occlusion.png",
            caption="../report/inside/002-occlusion.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        saliency_gradcam=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-saliency-gradcam.png",
            caption="../report/inside/002-saliency-gradcam.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        class_maximisation=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-class-maximisation.png",
            caption="../report/inside/002-class-maximisation.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        batchnorm_activations=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-batchnorm-activations.png",
            caption="../report/inside/002-batchnorm-activations.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        dropout_ensemble=report(
            "results/{experiment}/inside/{arch}-fold{fold}/002-dropout-ensemble.png",
            caption="../report/inside/002-dropout-ensemble.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
    log:
        "logs/{experiment}/inside/{arch}-fold{fold}.log",
    params:
        max_images=1000,
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/inside_figures.py"


rule pitfall:
    input:
        clean=pitfall_models("clean"),
        spurious=pitfall_models("spurious"),
        base_card=pitfall_base_file("card.json"),
        base_split=pitfall_base_file("split.parquet"),
        card=inside_dataset_file("card.json"),
    output:
        table="results/{experiment}/pitfall_accuracy.csv",
        accuracy=report(
            "results/{experiment}/figures/000-spurious-accuracy.png",
            caption="../report/inside/000-spurious-accuracy.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
        attribution=report(
            "results/{experiment}/figures/000-spurious-attribution.png",
            caption="../report/inside/000-spurious-attribution.rst",
            category="Inside the networks",
            subcategory="{experiment}",
        ),
    log:
        "logs/{experiment}/pitfall.log",
    threads: 1
    conda:
        CONDA_ENV
    script:
        "../scripts/pitfall.py"
