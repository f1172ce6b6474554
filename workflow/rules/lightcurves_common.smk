# Targets and inputs of the light-curve rules (lightcurves.smk); uses the helpers of common.smk.

LIGHTCURVE_SOURCE = "simulate_lightcurves"
LIGHTCURVE_TASK = "sequence_classification"
LIGHTCURVE_BASELINE = "random_forest"


def lightcurve_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == LIGHTCURVE_SOURCE]


def lightcurve_experiments():
    return [e for e, exp in config["experiments"].items() if exp.get("task") == LIGHTCURVE_TASK]


def lightcurve_transformer(experiment):
    """The first member that is a transformer (its attention is drawn), or None."""
    exp = config["experiments"][experiment]
    found = [m for m in experiment_members(exp) if resolve_member(exp, m)[0] == "lc_transformer"]
    return found[0] if found else None


def lightcurve_targets():
    targets = []
    for e in lightcurve_experiments():
        stems = [
            "002-sequence-model-comparison",
            "004-confusion-matrix",
            "004-roc-one-vs-rest",
            "002-vanishing-gradients-through-time",
            "002-early-classification",
        ]
        if lightcurve_transformer(e):
            stems.append("002-attention-maps")
        targets += [f"results/{e}/comparison.csv"]
        targets += [f"results/{e}/figures/{stem}.png" for stem in stems]
    return targets


def lightcurve_data(wildcards):
    d = dataset_of(wildcards.experiment)
    return {
        "card": f"results/data/{d}/card.json",
        "split": f"results/data/{d}/split.parquet",
        "observations": f"results/data/{d}/observations.parquet",
    }


def lightcurve_folds(wildcards):
    return experiment_folds(wildcards.experiment)


def lightcurve_all_predictions(wildcards):
    e = wildcards.experiment
    paths = member_paths(e, "results/{experiment}/{arch}/predictions.parquet", combined=False)
    return paths + [f"results/{e}/{LIGHTCURVE_BASELINE}/predictions.parquet"]


def lightcurve_figure_inputs(wildcards):
    return {
        "predictions": lightcurve_all_predictions(wildcards),
        "card": f"results/data/{dataset_of(wildcards.experiment)}/card.json",
    }


def lightcurve_comparison_inputs(wildcards):
    e = wildcards.experiment
    metrics = member_paths(e, "results/{experiment}/{arch}/metrics.json", combined=False)
    return {
        "metrics": metrics + [f"results/{e}/{LIGHTCURVE_BASELINE}/metrics.json"],
        "histories": fold_paths(e, "results/{experiment}/{arch}/fold{fold}/history.csv"),
        "card": f"results/data/{dataset_of(e)}/card.json",
    }


def lightcurve_models(first_fold_only):
    def paths(wildcards):
        e = wildcards.experiment
        folds = experiment_folds(e)[:1] if first_fold_only else experiment_folds(e)
        return [
            f"results/{e}/{arch}/fold{fold}/model.pt"
            for arch in experiment_members(config["experiments"][e])
            for fold in folds
        ]

    return paths


def lightcurve_transformer_model(wildcards):
    e = wildcards.experiment
    return f"results/{e}/{lightcurve_transformer(e)}/fold{experiment_folds(e)[0]}/model.pt"
