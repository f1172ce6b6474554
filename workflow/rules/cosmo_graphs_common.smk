# Helper functions of cosmo_graphs.smk (Snakemake's lint wants rules and functions apart).


def cosmo_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == COSMO_SOURCE]


def cosmo_experiments():
    return [e for e, exp in config["experiments"].items() if exp.get("task") == "graph_regression" and runnable(e)]


def cosmo_graphs_targets():
    targets = []
    for e in cosmo_experiments():
        targets.append(f"results/{e}/figures/002-cosmographnet-predictions.png")
        if config["experiments"][e].get("shift_datasets"):
            targets += [f"results/{e}/robustness/summary.csv", f"results/{e}/figures/002-desanti-robustness.png"]
    return targets


def cosmo_robustness_inputs(wildcards):
    e = wildcards.experiment
    return {
        "models": fold_paths(e, "results/{experiment}/{arch}/fold{fold}/model.pt"),
        "predictions": member_paths(e, "results/{experiment}/{arch}/predictions.parquet", combined=False),
        "card": f"results/data/{dataset_of(e)}/card.json",
        "shifted": [f"results/data/{d}/card.json" for d in config["experiments"][e]["shift_datasets"]],
    }


def cosmo_figure_inputs(wildcards):
    e = wildcards.experiment
    inputs = {
        "predictions": member_paths(e, "results/{experiment}/{arch}/predictions.parquet", combined=False),
        "card": f"results/data/{dataset_of(e)}/card.json",
    }
    if wildcards.stem == "002-desanti-robustness":
        inputs["robustness"] = f"results/{e}/robustness/per_fold.csv"
    return inputs


def cosmo_figure_name(wildcards):
    return {**COSMO_DATASET_FIGURES, **COSMO_EXPERIMENT_FIGURES}[wildcards.stem]
