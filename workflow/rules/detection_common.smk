# Helper functions of detection.smk (Snakemake's lint wants rules and functions apart).

FIELDS_SOURCE = "simulate_fields"
DETECTION_FIGURES = ["002-mask-rcnn-detections", "002-mask-rcnn-precision-recall", "002-mask-rcnn-completeness"]


def fields_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == FIELDS_SOURCE]


def detection_experiments():
    return [e for e, x in config["experiments"].items() if x.get("task") == "detection"]


def detection_targets():
    return [f"results/{e}/figures/{stem}.png" for e in detection_experiments() for stem in DETECTION_FIGURES]


def detection_figure_inputs(wildcards):
    e = wildcards.experiment
    member = experiment_members(config["experiments"][e])[0]
    return {
        "predictions": f"results/{e}/{member}/predictions.parquet",
        "card": f"results/data/{dataset_of(e)}/card.json",
        "tracking": "results/tracking/ready.json",  # logs to MLflow: the store must exist first
    }
