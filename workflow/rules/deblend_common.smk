# Helper functions of deblend.smk (Snakemake's lint wants rules and functions apart).


BLEND_SOURCE = "simulate_blends"
# Figure stem -> the task of the experiments that draw it.
DEBLEND_FIGURES = {
    "002-unet-deblending-examples": "deblend",
    "002-deblending-flux-error": "deblend",
    "002-deblending-calibration": "deblend",
    "002-segmentation-maps": "segmentation",
}


def blend_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == BLEND_SOURCE]


def blend_experiments(task):
    return [e for e, x in config["experiments"].items() if x.get("task") == task]


def deblend_targets():
    return [f"results/{e}/figures/{stem}.png" for stem, task in DEBLEND_FIGURES.items() for e in blend_experiments(task)]


def deblend_figure_inputs(wildcards):
    e = wildcards.experiment
    member = experiment_members(config["experiments"][e])[0]
    dataset = dataset_of(e)
    return {
        "model": f"results/{e}/{member}/fold{experiment_folds(e)[0]}/model.pt",
        "predictions": f"results/{e}/{member}/predictions.parquet",
        "card": f"results/data/{dataset}/card.json",
        "split": f"results/data/{dataset}/split.parquet",
        "tracking": "results/tracking/ready.json",  # logs to MLflow: the store must exist first
    }
