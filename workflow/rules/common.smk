import os
import sys
import uuid
from pathlib import Path

# Run from a checkout even where the package is not installed.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

import csv

from deepsky.config import (
    LENS_SOURCES,
    PRACTICE_STEMS,
    dataset_class_names,
    experiment_members,
    experiment_task,
    figure_specs,
    member_dataset,
    resolve_member,
    validate_config,
)

validate_config(config)

# Groups the MLflow runs of one workflow invocation (jobs are separate processes).
os.environ.setdefault("DEEPSKY_WORKFLOW_RUN", uuid.uuid4().hex[:12])


wildcard_constraints:
    dataset="[A-Za-z0-9_]+",
    experiment="[A-Za-z0-9_]+",
    arch="[A-Za-z0-9_]+",
    fold="[0-9]+",


# One environment for every rule (relative to the rule files); used with `--sdm conda`.
CONDA_ENV = "../../envs/deepsky.yaml"

# Every figure of the project, with the lecture slide it reproduces and the rule that makes it.
FIGURE_CATALOGUE = list(csv.DictReader(open(Path(workflow.basedir) / "workflow/report/figures.csv")))
CONCEPT_STEMS = [Path(row["file"]).stem for row in FIGURE_CATALOGUE if row["rule"] == "concept_figure"]

SIMULATED_SOURCES = {"simulate_lenses", "simulate_galaxies", "simulate_lens_parameters", "simulate_lightcurves", "simulate_lenses_randomised", "simulate_photoz", "simulate_cmb", "simulate_cosmo_galaxies", "simulate_blends", "simulate_fields"}


def wildcard_choice(names):
    """A wildcard regex matching exactly these names (nothing if there are none)."""
    return "|".join(names) if names else "(?!x)x"


def simulated_datasets():
    # Light curves are simulated by lightcurves.smk (no images.npy).
    # The photo-z survey too (photoz.smk): a catalogue with cutouts for some of its rows.
    return [n for n, d in config["datasets"].items() if d["source"] in SIMULATED_SOURCES - {"simulate_lightcurves", "simulate_photoz", "simulate_cmb", "simulate_cosmo_galaxies", "simulate_blends", "simulate_fields"}]


def real_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] not in SIMULATED_SOURCES | {"artefact"}]


def artefact_datasets():
    return [n for n, d in config["datasets"].items() if d["source"] == "artefact"]


def artefact_base_file(filename):
    def path(wildcards):
        return f"results/data/{config['datasets'][wildcards.dataset]['base']}/{filename}"

    return path


def pitfall_models(role):
    def paths(wildcards):
        e = wildcards.experiment
        member = config["experiments"][e]["pitfall"][role]
        return [f"results/{e}/{member}/fold{fold}/model.pt" for fold in experiment_folds(e)]

    return paths


def pitfall_base_file(filename):
    def path(wildcards):
        dataset = config["datasets"][dataset_of(wildcards.experiment)]
        return f"results/data/{dataset.get('base', dataset_of(wildcards.experiment))}/{filename}"

    return path


def real_archive_path(name):
    from deepsky.stages.real_data import archive_path

    return str(archive_path(name, config["datasets"][name]))


def real_archive(wildcards):
    return real_archive_path(wildcards.dataset)


SKIPPED_EXPERIMENTS = set()  # said once per invocation


def experiment_datasets(experiment):
    """Every dataset an experiment reads: its own, a domain-adaptation target, its variants'."""
    exp = config["experiments"][experiment]
    names = [exp["dataset"], exp.get("adaptation", {}).get("target")]
    names += [v.get("dataset") for v in exp.get("variants", {}).values()]
    return list(dict.fromkeys(n for n in names if n))


def runnable(experiment):
    """Real-data experiments run when their archives are here or downloads are allowed."""
    missing = [
        name for name in experiment_datasets(experiment)
        if name in real_datasets() and not config.get("download", False) and not os.path.exists(real_archive_path(name))
    ]
    if not missing:
        return True
    if experiment in SKIPPED_EXPERIMENTS:
        return False
    SKIPPED_EXPERIMENTS.add(experiment)
    print(
        f"deepsky: skipping experiment '{experiment}': "
        + ", ".join(real_archive_path(name) for name in missing)
        + " not here. Fetch with `snakemake download_all --cores 1` (needs network) or set "
        + " / ".join(f"datasets.{name}.path" for name in missing) + " to a local copy.",
        file=sys.stderr,
    )
    return False


def dataset_of(experiment):
    return config["experiments"][experiment]["dataset"]


def experiment_folds(experiment):
    folds = config["experiments"][experiment].get("folds", "all")
    if folds == "all":
        return list(range(config["datasets"][dataset_of(experiment)]["split"]["k_folds"]))
    return list(folds)


def fold_paths(experiment, pattern):
    """pattern formatted for every (architecture, fold) of an experiment."""
    return [
        pattern.format(experiment=experiment, arch=arch, fold=fold)
        for arch in experiment_members(config["experiments"][experiment])
        for fold in experiment_folds(experiment)
    ]


def dataset_figure_stems(name):
    source = config["datasets"][name]["source"]
    if source == "simulate_lightcurves":
        return ["002-lightcurve-examples"]
    if source == "simulate_blends":  # deblend.smk shows the blends beside the U-Net outputs
        return []
    if source == "simulate_fields":  # detection.smk shows the fields with their masks and detections
        return []
    if source == "simulate_cmb":  # cmb.smk
        return ["003-cmb-maps"]
    if source == "simulate_photoz":
        return ["002-photoz-survey", "002-photoz-cutouts"]
    if source == "simulate_cosmo_galaxies":  # cosmo_graphs.smk
        return ["002-galaxy-graph", "002-power-spectra"]
    if source == "simulate_lens_parameters":
        stems = ["004-hezaveh17-examples"]
    else:
        stems = ["002-lens-nonlens-examples" if source in LENS_SOURCES else "003-class-examples"]
    if config["datasets"][name].get("augmentation", {}).get("copies", 0) > 0:
        stems.append("002-data-augmentation")
    return stems


def member_paths(experiment, pattern, combined=True):
    """pattern formatted for every architecture or variant of an experiment (and the combined
    network of a regression experiment that asks for one)."""
    members = experiment_members(config["experiments"][experiment])
    if combined and config["experiments"][experiment].get("combine", False):
        members = members + ["combined"]
    return [pattern.format(experiment=experiment, arch=arch) for arch in members]


def combined_inputs(wildcards):
    e = wildcards.experiment
    return {
        "predictions": member_paths(e, "results/{experiment}/{arch}/predictions.parquet", combined=False),
        "card": f"results/data/{dataset_of(e)}/card.json",
    }


def dataset_targets(name):
    targets = [f"results/data/{name}/card.json"]
    targets += [f"results/data/{name}/figures/{stem}.png" for stem in dataset_figure_stems(name)]
    if config["datasets"][name].get("export_fits", False):
        targets.append(f"results/data/{name}/fits")
    return targets


def experiment_figure_stems(experiment):
    dataset = config["datasets"][dataset_of(experiment)]
    stems = ["001-train-validation-loss"]
    if config["experiments"][experiment].get("variants"):
        return stems  # training-practice experiments: their comparison figures say it all
    task = experiment_task(config["experiments"][experiment], config["datasets"])
    if task == "binary":
        stems += ["004-roc-curves", "004-reliability-diagram"]
        if dataset["source"] in LENS_SOURCES:
            stems.append("002-metcalf19-table")
    elif task == "multiclass":
        stems += ["004-confusion-matrix", "004-roc-one-vs-rest"]
    elif task == "regression":
        stems += ["004-hezaveh17-table", "004-hezaveh17-parameters"]
        if config["experiments"][experiment].get("uncertainty", "none") != "none" or config["experiments"][experiment].get("mc_dropout", 0):
            stems.append("004-parameter-calibration")
    return stems


def experiment_targets(experiment):
    if experiment_task(config["experiments"][experiment], config["datasets"]) == "gan":
        return gan_targets(experiment)  # cmb.smk: its own evaluation, no generic evaluate/summarize
    targets = [f"results/{experiment}/summary.csv"]
    stems = experiment_figure_stems(experiment)
    stems += list(figure_specs(config["experiments"][experiment]))
    if config["experiments"][experiment].get("pitfall"):
        stems += ["000-spurious-accuracy", "000-spurious-attribution"]
    targets += [f"results/{experiment}/figures/{stem}.png" for stem in stems]
    return targets


INSIDE_STEMS = [
    "002-first-layer-filters",
    "002-feature-maps",
    "002-top9-activations",
    "002-occlusion",
    "002-saliency-gradcam",
    "002-class-maximisation",
    "002-batchnorm-activations",
    "002-dropout-ensemble",
]


def inside_dataset_file(filename):
    def path(wildcards):
        return f"results/data/{dataset_of(wildcards.experiment)}/{filename}"

    return path


def inside_targets():
    spec = config.get("inside")
    if not spec:
        return []
    return [
        f"results/{experiment}/inside/{spec['architecture']}-fold{spec['fold']}/{stem}.png"
        for experiment in spec["experiments"]
        if experiment in config["experiments"] and runnable(experiment)
        for stem in INSIDE_STEMS
    ]


def gradient_input(filename):
    return f"results/data/{config['gradients']['dataset']}/{filename}" if "gradients" in config else []


def gradient_settings(wildcards):
    return config["gradients"]


def all_targets():
    experiments = [e for e in config["experiments"] if runnable(e)]
    used = {member_dataset(config["experiments"][e], m) for e in experiments for m in experiment_members(config["experiments"][e])}
    targets = [t for name in sorted(used) for t in dataset_targets(name)]
    for experiment in experiments:
        targets += experiment_targets(experiment)
    if "gradients" in config:
        targets.append("results/vanishing_gradients/figures/002-vanishing-gradients.png")
    targets += inside_targets()
    if config.get("concept_figures", True):
        targets += [f"results/concepts/figures/{stem}.png" for stem in CONCEPT_STEMS]
    targets += lightcurve_targets()
    targets += photoz_targets()
    targets += domains_targets()
    targets += cosmo_graphs_targets()
    targets += deblend_targets()
    targets += detection_targets()
    return targets


def train_inputs(wildcards):
    dataset = member_dataset(config["experiments"][wildcards.experiment], wildcards.arch)
    inputs = {
        "card": f"results/data/{dataset}/card.json",
        "split": f"results/data/{dataset}/split.parquet",
        "tracking": "results/tracking/ready.json",
    }
    _, _, training = resolve_member(config["experiments"][wildcards.experiment], wildcards.arch)
    if training.get("augment", False):
        inputs["augmented"] = f"results/data/{dataset}/augmented/images.npy"
    return inputs


def evaluate_inputs(wildcards):
    dataset = member_dataset(config["experiments"][wildcards.experiment], wildcards.arch)
    e, arch = wildcards.experiment, wildcards.arch
    return {
        "models": [f"results/{e}/{arch}/fold{fold}/model.pt" for fold in experiment_folds(e)],
        "card": f"results/data/{dataset}/card.json",
        "split": f"results/data/{dataset}/split.parquet",
    }


def summary_inputs(wildcards):
    e = wildcards.experiment
    return {
        "metrics": member_paths(e, "results/{experiment}/{arch}/metrics.json"),
        "histories": fold_paths(e, "results/{experiment}/{arch}/fold{fold}/history.csv"),
    }


def figure_inputs(wildcards):
    e = wildcards.experiment
    return {
        "summary": f"results/{e}/summary.csv",
        "predictions": member_paths(e, "results/{experiment}/{arch}/predictions.parquet"),
        "histories": fold_paths(e, "results/{experiment}/{arch}/fold{fold}/history.csv"),
        "card": f"results/data/{dataset_of(e)}/card.json",
    }


def train_gpus(wildcards):
    """GPUs (processes) of one training job: more than one trains with DDP under torchrun."""
    _, _, training = resolve_member(config["experiments"][wildcards.experiment], wildcards.arch)
    return training.get("gpus", 1)
