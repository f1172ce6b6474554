# Helper functions of cmb.smk (Snakemake's lint wants rules and functions apart).


def cmb_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == CMB_SOURCE]


def gan_experiments():
    return [e for e, spec in config["experiments"].items() if experiment_task(spec, config["datasets"]) == "gan"]


def gan_member(experiment):
    """The member whose samples the figures show (the first one listed)."""
    return experiment_members(config["experiments"][experiment])[0]


def gan_targets(experiment):
    evaluation = member_paths(experiment, "results/{experiment}/{arch}/metrics.json", combined=False)
    return evaluation + [f"results/{experiment}/figures/{stem}.png" for stem in CMB_FIGURES]


def cmb_evaluate_inputs(wildcards):
    e = wildcards.experiment
    return {
        "models": [f"results/{e}/{wildcards.arch}/fold{fold}/model.pt" for fold in experiment_folds(e)],
        "histories": [f"results/{e}/{wildcards.arch}/fold{fold}/history.csv" for fold in experiment_folds(e)],
        "card": f"results/data/{dataset_of(e)}/card.json",
        "split": f"results/data/{dataset_of(e)}/split.parquet",
    }


def cmb_figure_inputs(wildcards):
    e = wildcards.experiment
    arch = gan_member(e)
    base = f"results/{e}/{arch}"
    return {
        "generated": f"{base}/generated.npy",
        "real": f"{base}/real.npy",
        "metrics": f"{base}/metrics.json",
        "spectra": f"{base}/spectra.parquet",
        "minkowski": f"{base}/minkowski.parquet",
        "histories": [f"{base}/fold{fold}/history.csv" for fold in experiment_folds(e)],
        "card": f"results/data/{dataset_of(e)}/card.json",
    }
