"""Load and validate the workflow config; errors name the offending key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The config does not describe a runnable workflow."""


def _inline_refs(node: Any, base: Path) -> Any:
    """Replace {"$ref": "file.yaml"} with that file's schema, recursively (relative to `base`)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            path = (base / ref).resolve()
            return _inline_refs(yaml.safe_load(path.read_text()), path.parent)
        return {key: _inline_refs(value, base) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, base) for item in node]
    return node


def load_schema(path: Path = SCHEMA_PATH) -> dict:
    return _inline_refs(yaml.safe_load(Path(path).read_text()), Path(path).parent)


def _key_path(error) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "<top level>"


def _describe(error) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = _key_path(error)
        prefix = "" if where == "<top level>" else where + "."
        return "; ".join(
            f"config key '{prefix}{key}': unknown key (allowed here: {', '.join(allowed)})" for key in extra
        )
    return f"config key '{_key_path(error)}': {error.message}"


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate against the JSON schema and cross-field rules; raise ConfigError naming keys."""
    schema = schema if schema is not None else load_schema()
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError("invalid config:\n  " + "\n  ".join(_describe(e) for e in errors))
    _check_cross_references(config)
    return config


def _check_cross_references(config: dict) -> None:
    from deepsky.models import list_models

    known = set(list_models())
    problems = []
    datasets = config.get("datasets", {})
    for name, experiment in config.get("experiments", {}).items():
        if experiment["dataset"] not in datasets:
            problems.append(
                f"config key 'experiments.{name}.dataset': unknown dataset '{experiment['dataset']}' "
                f"(defined: {', '.join(sorted(datasets))})"
            )
        for i, arch in enumerate(experiment.get("architectures", [])):
            if arch not in known:
                problems.append(
                    f"config key 'experiments.{name}.architectures[{i}]': unknown architecture '{arch}' "
                    f"(known: {', '.join(sorted(known))})"
                )
        for variant, spec in experiment.get("variants", {}).items():
            if spec.get("dataset", experiment["dataset"]) not in datasets:
                problems.append(f"config key 'experiments.{name}.variants.{variant}.dataset': unknown dataset '{spec.get('dataset', experiment['dataset'])}'")
            if spec["architecture"] not in known:
                problems.append(
                    f"config key 'experiments.{name}.variants.{variant}.architecture': unknown architecture "
                    f"'{spec['architecture']}' (known: {', '.join(sorted(known))})"
                )
            if variant in experiment.get("architectures", []):
                problems.append(f"config key 'experiments.{name}.variants.{variant}': also listed in architectures")
        if not experiment.get("architectures") and not experiment.get("variants"):
            problems.append(f"config key 'experiments.{name}': needs architectures or variants")
        folds = experiment.get("folds")
        k = datasets.get(experiment["dataset"], {}).get("split", {}).get("k_folds")
        if isinstance(folds, list) and k is not None:
            for fold in folds:
                if fold >= k:
                    problems.append(f"config key 'experiments.{name}.folds': fold {fold} >= k_folds {k}")
    for name, dataset in datasets.items():
        if dataset["source"] == "artefact":
            base = datasets.get(dataset.get("base"))
            if base is None or base["source"] not in LENS_SOURCES - {"artefact"}:
                problems.append(f"config key 'datasets.{name}.base': must name a lens dataset")
            elif dataset["artefact"]["on_class"] not in dataset_class_names(base):
                problems.append(f"config key 'datasets.{name}.artefact.on_class': not a class of '{dataset['base']}'")
            elif dataset["split"] != base["split"]:
                problems.append(f"config key 'datasets.{name}.split': must equal the split of '{dataset['base']}'")
    for name, experiment in config.get("experiments", {}).items():
        problems += _check_task(name, experiment, datasets)
        for stem, members in figure_specs(experiment).items():
            unknown = sorted(set(members) - set(experiment_members(experiment)))
            if unknown:
                problems.append(f"config key 'experiments.{name}.figures' ({stem}): unknown members {unknown}")
        pitfall = experiment.get("pitfall")
        for role in ("clean", "spurious") if pitfall else ():
            if pitfall[role] not in experiment_members(experiment):
                problems.append(f"config key 'experiments.{name}.pitfall.{role}': not a member of the experiment")
    inside = config.get("inside")
    for i, name in enumerate(inside["experiments"] if inside else []):
        if name not in config.get("experiments", {}):
            problems.append(f"config key 'inside.experiments[{i}]': unknown experiment '{name}'")
        elif inside["architecture"] not in experiment_members(config["experiments"][name]):
            problems.append(f"config key 'inside.architecture': '{inside['architecture']}' is not trained in '{name}'")
    gradients = config.get("gradients")
    if gradients and gradients["dataset"] not in datasets:
        problems.append(f"config key 'gradients.dataset': unknown dataset '{gradients['dataset']}'")
    comparison = config.get("photoz_comparison")  # inactive when a cut-down config drops its dataset
    if comparison and datasets.get(comparison["dataset"], {}).get("source", "simulate_photoz") != "simulate_photoz":
        problems.append("config key 'photoz_comparison.dataset': must name a simulate_photoz dataset")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


TASK_NAMES = ("binary", "multiclass", "regression")


def experiment_task(experiment: dict, datasets: dict) -> str:
    """The experiment's `task`, or the classification its dataset's classes imply."""
    if "task" in experiment:
        return experiment["task"]
    dataset = datasets[experiment["dataset"]]
    return "binary" if len(dataset_class_names(dataset, datasets)) == 2 else "multiclass"


def task_spec(experiment: dict, datasets: dict, class_names: list[str] | None = None) -> dict:
    """The spec deepsky.tasks.make_task builds the experiment's task from (saved with each model)."""
    name = experiment_task(experiment, datasets)
    if name == "regression":
        return {"name": name, "targets": dict(experiment["targets"]), "uncertainty": experiment.get("uncertainty", "none"),
                "mc_dropout": int(experiment.get("mc_dropout", 0))}
    if name == "graph_regression":
        return {"name": name, "targets": dict(experiment["targets"]), "graph": dict(experiment.get("graph", {}))}
    if class_names is None:
        class_names = dataset_class_names(datasets[experiment["dataset"]], datasets)
    if name == "gan":  # CMB patches with a GAN (deepsky.tasks.cmb); options under `gan`
        return {"name": name, **experiment.get("gan", {})}
    if name == "photoz":  # photometric redshifts (deepsky.tasks.photoz); options under `photoz`
        return {"name": name, **experiment.get("photoz", {})}
    if name == "detection":  # Mask R-CNN on fields (deepsky.tasks.detection); options under `detection`
        return {"name": name, **experiment.get("detection", {})}
    if name == "sequence_classification":  # light curves (deepsky.tasks.lightcurves); options under `sequence`
        return {"name": name, "class_names": list(class_names), **experiment.get("sequence", {})}
    if name == "domain_adaptation":  # source -> target (deepsky.tasks.domains); options under `adaptation`
        return {"name": name, "class_names": list(class_names), "source": experiment["dataset"], **experiment["adaptation"]}
    if name in ("deblend", "segmentation"):  # artificial blends (deepsky.tasks.deblend); options under `deblend`
        bands = datasets[experiment["dataset"]].get("simulation", {}).get("bands", ["g", "r", "i"])
        return {"name": name, "bands": list(bands), **experiment.get("deblend", {})}
    return {"name": name, "class_names": list(class_names)}


def _check_task(name: str, experiment: dict, datasets: dict) -> list[str]:
    if experiment["dataset"] not in datasets:
        return []
    task = experiment_task(experiment, datasets)
    options = [k for k in ("targets", "uncertainty", "mc_dropout", "combine") if k in experiment]
    if task == "graph_regression":  # galaxy catalogues (deepsky.tasks.cosmo_graphs)
        catalogues = [experiment["dataset"]] + list(experiment.get("shift_datasets", []))
        wrong = [d for d in catalogues if datasets.get(d, {}).get("source") != "simulate_cosmo_galaxies"]
        if wrong or "targets" not in experiment:
            return [f"config key 'experiments.{name}': graph_regression needs targets and simulate_cosmo_galaxies datasets (not {wrong})"]
        return []
    if task == "domain_adaptation" or "adaptation" in experiment or "transfer" in experiment:  # deepsky.tasks.domains
        return _check_domains(name, experiment, datasets, task)
    if task == "gan" or "gan" in experiment:  # deepsky.tasks.cmb
        if task != "gan" or datasets[experiment["dataset"]]["source"] != "simulate_cmb":
            return [f"config key 'experiments.{name}': task gan (and its `gan` options) goes with a simulate_cmb dataset"]
        if experiment["training"].get("augment", False):
            return [f"config key 'experiments.{name}.training.augment': the gan task trains on the patches as cut; set it to false"]
        return []
    if task == "photoz" or "photoz" in experiment:  # photometric redshifts (deepsky.tasks.photoz)
        if task != "photoz" or datasets[experiment["dataset"]]["source"] != "simulate_photoz":
            return [f"config key 'experiments.{name}': `photoz` options go with task photoz on a simulate_photoz dataset"]
        if experiment["training"].get("augment", False):
            return [f"config key 'experiments.{name}.training.augment': the photoz task flips image batches itself; set it to false"]
        return []
    if (task == "sequence_classification") != (datasets[experiment["dataset"]]["source"] == "simulate_lightcurves"):
        return [f"config key 'experiments.{name}.task': light-curve datasets (simulate_lightcurves) go with task "
                f"sequence_classification and only with it (task is {task})"]
    if task == "sequence_classification" and experiment["training"].get("augment", False):
        return [f"config key 'experiments.{name}.training.augment': image augmentation does not apply to light curves"]
    if task == "regression":
        if "targets" not in experiment:
            return [f"config key 'experiments.{name}.targets': a regression experiment needs targets (name: catalog column)"]
        if experiment["training"].get("augment", False):
            return [f"config key 'experiments.{name}.training.augment': flips and rotations would change the "
                    "regression targets; set it to false"]
        return []
    if options:
        return [f"config key 'experiments.{name}.{options[0]}': only regression experiments take it (task is {task})"]
    classes = dataset_class_names(datasets[experiment["dataset"]], datasets)
    if task == "binary" and len(classes) != 2:
        return [f"config key 'experiments.{name}.task': binary needs 2 classes, dataset has {len(classes)}"]
    return []


def figure_specs(experiment: dict) -> dict[str, list[str]]:
    """Practice figure stem -> the members it compares (all of them unless listed)."""
    specs = {}
    for entry in experiment.get("figures", []):
        name, members = (entry, None) if isinstance(entry, str) else (entry["figure"], entry["members"])
        specs[PRACTICE_STEMS[name]] = members or experiment_members(experiment)
    return specs


def member_dataset(experiment: dict, name: str) -> str:
    """The dataset a member trains on: its variant's own, or the experiment's."""
    return experiment.get("variants", {}).get(name, {}).get("dataset", experiment["dataset"])


def experiment_members(experiment: dict) -> list[str]:
    """Names trained in an experiment: plain architectures, then named variants."""
    return list(experiment.get("architectures", [])) + list(experiment.get("variants", {}))


def resolve_member(experiment: dict, name: str) -> tuple[str, dict, dict]:
    """(registry architecture, model kwargs, training settings) of an experiment member."""
    variant = experiment.get("variants", {}).get(name)
    if variant is None:
        if name not in experiment.get("architectures", []):
            raise ConfigError(f"'{name}' is neither an architecture nor a variant of this experiment")
        return name, dict(experiment.get("model_kwargs", {}).get(name, {})), dict(experiment["training"])
    return variant["architecture"], dict(variant.get("model_kwargs", {})), {**experiment["training"], **variant.get("training", {})}


# Experiment `figures:` entries -> the lecture slide each reproduces.
PRACTICE_STEMS = {
    "overfitting": "001-overfitting",
    "dropout_batchnorm": "002-dropout-batchnorm",
    "plain_vs_residual": "002-plain-vs-residual",
    "batch_size": "004-batch-size",
    "activations": "004-activation-functions-training",
    "architecture_comparison": "001-architecture-accuracy",
}

FIXED_CLASSES = {
    "simulate_lenses": ["non-lens", "lens"],
    "simulate_lens_parameters": ["lens"],
    "bologna": ["non-lens", "lens"],
    "simulate_galaxies": ["round", "edge_on", "spiral"],
    "simulate_lenses_randomised": ["non-lens", "lens"],  # deepsky.data.domains
    "simulate_lightcurves": ["SNIa", "SNCC", "RRLyr", "EB", "AGN", "star"],  # deepsky.data.lightcurves_physics
    "simulate_cosmo_galaxies": ["box"],
    "simulate_photoz": ["red", "blue"],  # deepsky.data.photoz: labels only stratify the split
    "simulate_cmb": ["cmb"],  # deepsky.data.cmb: one class, label 0
    "cats_dogs": ["cat", "dog"],
    "simulate_fields": ["field"],  # deepsky.data.detection_fields: one row per field; objects are star/galaxy
    "simulate_blends": ["close", "mid", "wide"],  # deepsky.data.deblend: separation bins stratify the split
}
LENS_SOURCES = {"simulate_lenses", "bologna", "artefact", "simulate_lenses_randomised"}


def _check_domains(name: str, experiment: dict, datasets: dict, task: str) -> list[str]:
    """A domain_adaptation experiment: datasets with the source's classes; baseline and oracle among its members."""
    if task != "domain_adaptation" or "adaptation" not in experiment:
        return [f"config key 'experiments.{name}': `adaptation` and `transfer` go with task domain_adaptation, which needs `adaptation`"]
    classes = dataset_class_names(datasets[experiment["dataset"]], datasets)
    target = experiment["adaptation"]["target"]
    members = experiment_members(experiment)
    for where, dataset in [("adaptation.target", target)] + [(f"variants.{m}.dataset", member_dataset(experiment, m)) for m in members]:
        if dataset not in datasets or dataset_class_names(datasets[dataset], datasets) != classes:
            return [f"config key 'experiments.{name}.{where}': '{dataset}' must be a dataset with the classes {classes}"]
    for role in ("baseline", "oracle"):
        if experiment["adaptation"].get(role, members[0]) not in members:
            return [f"config key 'experiments.{name}.adaptation.{role}': not a member of the experiment ({', '.join(members)})"]
    return []


def dataset_class_names(dataset: dict, datasets: dict | None = None) -> list[str]:
    """Class names in label order, known before any data exist (targets depend on them)."""
    if dataset["source"] == "artefact":
        return dataset_class_names(datasets[dataset["base"]], datasets)
    if dataset["source"] == "galaxy10":
        if "class_map" not in dataset:
            raise ConfigError("a galaxy10 dataset needs 'class_map' (our class -> Galaxy10 label ids)")
        return list(dataset["class_map"])
    return list(FIXED_CLASSES[dataset["source"]])


def load_config(path: str | Path) -> dict:
    """Read and validate a config file; YAML syntax errors name the line and column."""
    try:
        with open(path) as handle:
            config = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the config must be a mapping of keys, not {type(config).__name__}")
    return validate_config(config)


def config_hash(config: dict) -> str:
    """Short, order-independent hash of a config (or a slice of one), for run tags."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
