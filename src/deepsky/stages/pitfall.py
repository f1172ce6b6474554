"""Solving the wrong problem (lectures 000/001, Ribeiro+2016): a model trained with an artefact
in the lens class only scores well while the artefact follows the lenses, and collapses when it
moves to the non-lenses; its attribution maps look at the artefact, not at the arcs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.data import storage
from deepsky.data.artefacts import add_artefact
from deepsky.data.tensors import asinh_stretch, load_test_set
from deepsky.models_io import load_model
from deepsky.stages.common import experiment_tags, logged, set_threads
from deepsky.stages.evaluate import fold_of
from deepsky.tracking import Run
from deepsky.train import job_seed, predict


def test_conditions(images, labels, class_names, spec, seed):
    """The clean test set, and the same images with the artefact on each class in turn."""
    on = class_names.index(spec["on_class"])
    other = 1 - on
    draw = dict(kind=spec["kind"], strength=spec.get("strength", 10.0))
    return {
        "no artefact": images,
        f"artefact on {class_names[on]} images (as in training)": add_artefact(images, labels == on, np.random.default_rng(seed), **draw),
        f"artefact on {class_names[other]} images": add_artefact(images, labels == other, np.random.default_rng(seed + 1), **draw),
    }


def accuracy_table(members: dict[str, list], conditions: dict, labels: np.ndarray) -> pd.DataFrame:
    rows = []
    tensors = {name: torch.from_numpy(asinh_stretch(images)) for name, images in conditions.items()}
    for label, paths in members.items():
        for path in paths:
            model, _ = load_model(path, "cpu")
            for condition, x in tensors.items():
                scores = predict(model, x, torch.device("cpu"))[1].numpy()
                accuracy = float(((scores >= 0.5).astype(int) == labels).mean())
                rows.append({"model": label, "fold": fold_of(path), "test_condition": condition, "accuracy": accuracy})
    return pd.DataFrame(rows)


def main(smk) -> None:
    from deepsky.figures.inside import fig_spurious_accuracy, fig_spurious_attribution

    experiment = smk.wildcards.experiment
    exp = smk.config["experiments"][experiment]
    spec = smk.config["datasets"][exp["dataset"]]["artefact"]
    with logged(smk.log[0]):
        set_threads(smk.threads)
        base_dir = Path(smk.input.base_card).parent
        card = storage.read_card(base_dir)
        _, images, labels = load_test_set(base_dir, smk.input.base_split)
        conditions = test_conditions(images, labels, card["class_names"], spec, job_seed(smk.config["seed"], "pitfall"))
        labels_of = {"clean": "trained on clean data", "spurious": f"trained with the artefact on {spec['on_class']} images"}
        members = {labels_of["clean"]: list(smk.input.clean), labels_of["spurious"]: list(smk.input.spurious)}
        table = accuracy_table(members, conditions, labels)
        table.to_csv(smk.output.table, index=False)
        print(table.groupby(["model", "test_condition"], sort=False)["accuracy"].agg(["mean", "std"]).to_string())
        fig_spurious_accuracy(table, smk.output.accuracy)
        clean, meta = load_model(sorted(smk.input.clean, key=fold_of)[0], "cpu")
        spurious, _ = load_model(sorted(smk.input.spurious, key=fold_of)[0], "cpu")
        attention = fig_spurious_attribution(clean, spurious, meta, images, labels, smk.output.attribution,
                                             artefact_kind=spec["kind"], strength=spec.get("strength", 10.0))
        storage.write_json(Path(smk.output.table).with_suffix(".json"), attention)
        tags = experiment_tags(smk.config, experiment, storage.read_card(Path(smk.input.card).parent), stage="figure")
        with Run(smk.config["tracking"], experiment, f"pitfall/{experiment}", tags) as run:
            means = table.groupby(["model", "test_condition"], sort=False)["accuracy"].mean()
            run.log_metrics({f"accuracy.{m}.{c}".replace(" ", "_").replace("(", "").replace(")", ""): v
                             for (m, c), v in means.items()})
            for path in (smk.output.table, smk.output.accuracy, smk.output.attribution):
                run.log_artifact(path, "figures")
