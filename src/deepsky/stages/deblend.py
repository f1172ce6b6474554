"""Stages of the blend experiments: simulate the blends, draw the lecture-002 U-Net figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from deepsky.data import storage
from deepsky.stages.common import logged, set_threads, simulate_dataset

N_EXAMPLES = 4


def simulate(smk) -> None:
    from deepsky.data.deblend import write_blend_dataset

    with logged(smk.log[0]):
        name, card = simulate_dataset(smk, write_blend_dataset)
        print(f"dataset {name}: {card['n_images']} blends {card['image_shape']}, sha256 {card['images_sha256']}")


def test_examples(model_path, dataset_dir, split_path, n: int = N_EXAMPLES):
    """(model, task, picked test positions, raw test data, stretched inputs) for the image figures."""
    from deepsky.figures.deblend import pick_examples
    from deepsky.models_io import load_model
    from deepsky.tasks import task_from_meta

    model, meta = load_model(model_path, "cpu")
    task = task_from_meta(meta)
    _, x, raw = task.load_test(dataset_dir, split_path)
    picked = pick_examples(raw["catalog"]["separation_arcsec"].to_numpy(), n)
    return model, task, picked, raw, x[picked]


def figure(smk) -> None:
    """One figure (smk.wildcards.stem) of an experiment, logged to MLflow."""
    from deepsky.figures import deblend as figures
    from deepsky.stages.report import log_figure

    experiment, stem, png = smk.wildcards.experiment, smk.wildcards.stem, smk.output[0]
    dataset_dir = Path(smk.input.card).parent
    with logged(smk.log[0]):
        set_threads(smk.threads)
        card = storage.read_card(dataset_dir)
        if stem == "002-unet-deblending-examples":
            model, task, picked, raw, x = test_examples(smk.input.model, dataset_dir, smk.input.split)
            mean, sigma, _, _ = task.images(model, x, torch.device("cpu"))
            ref = task.reference
            blends = storage.load_images(dataset_dir / storage.IMAGES)[raw["catalog"]["index"].to_numpy()[picked], ref]
            figures.deblending_examples(blends, raw["central"][picked, ref], mean[:, ref], sigma[:, ref],
                                        raw["catalog"]["separation_arcsec"].to_numpy()[picked], png)
        elif stem == "002-segmentation-maps":
            model, task, picked, raw, x = test_examples(smk.input.model, dataset_dir, smk.input.split)
            labels = task.predict(model, x, torch.device("cpu"))["_labels"]
            ref = card["bands"].index(card["provenance"]["simulation"]["reference_band"])
            blends = storage.load_images(dataset_dir / storage.IMAGES)[raw["catalog"]["index"].to_numpy()[picked], ref]
            figures.segmentation_maps(blends, raw["segmentation"][picked], labels,
                                      raw["catalog"]["separation_arcsec"].to_numpy()[picked], png)
        elif stem == "002-deblending-flux-error":
            figures.flux_error(_fold0(smk.input.predictions), png)
        elif stem == "002-deblending-calibration":
            figures.calibration(_fold0(smk.input.predictions), png)
        else:
            raise ValueError(f"unknown deblend figure '{stem}'")
        log_figure(smk.config, experiment, card, png)


def _fold0(path) -> pd.DataFrame:
    table = pd.read_parquet(path)
    return table[table["fold"] == table["fold"].min()]
