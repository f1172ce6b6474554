"""Stages of the Mask R-CNN experiment: simulate the fields, draw the figures (lecture 002)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deepsky.data import storage
from deepsky.stages.common import logged, set_threads, simulate_dataset


def simulate(smk) -> None:
    from deepsky.data.detection_fields import write_fields_dataset

    with logged(smk.log[0]):
        name, card = simulate_dataset(smk, write_fields_dataset)
        print(f"dataset {name}: {card['n_images']} fields {card['image_shape']}, "
              f"{card['provenance']['n_objects']} objects, sha256 {card['images_sha256']}")


def figure(smk) -> None:
    """One figure (smk.params.figure) from the predictions table, logged to MLflow."""
    from deepsky.figures import detection
    from deepsky.stages.report import log_figure

    experiment, name = smk.wildcards.experiment, smk.params.figure
    with logged(smk.log[0]):
        set_threads(smk.threads)
        table = pd.read_parquet(smk.input.predictions)
        table = table[table["fold"] == table["fold"].min()]  # fold 0's model on the test fields
        png = smk.output[0]
        if name == "detections":
            fields = sorted(table["index"].unique())[:4]
            images = storage.load_images(Path(smk.input.card).parent / storage.IMAGES)[fields]
            detection.detections_figure(images, table[table["index"].isin(fields)], png, n_fields=len(fields))
        elif name == "precision_recall":
            detection.precision_recall_figure(table, png)
        else:
            detection.completeness_figure(table, png)
        log_figure(smk.config, experiment, storage.read_card(Path(smk.input.card).parent), png)
