"""Stages that make a dataset: simulate (or read a real archive), split, augment, FITS export."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from deepsky.data import storage
from deepsky.data.augment import augment_dataset
from deepsky.data.split import make_split
from deepsky.stages.common import logged
from deepsky.train import job_seed


def simulate(smk) -> None:
    from deepsky.data.simulate import write_simulated_dataset

    name = smk.wildcards.dataset
    with logged(smk.log[0]):
        card = write_simulated_dataset(
            Path(smk.output.images).parent, name, smk.config["datasets"][name],
            seed=job_seed(smk.config["seed"], "data", name), workers=smk.threads,
        )
        print(f"dataset {name}: {card['n_images']} images {card['image_shape']}, sha256 {card['images_sha256']}")


def split(smk) -> None:
    name = smk.wildcards.dataset
    settings = smk.config["datasets"][name]["split"]
    with logged(smk.log[0]):
        catalog = pd.read_parquet(smk.input.catalog)
        table = make_split(catalog, settings["test_fraction"], settings["k_folds"], job_seed(smk.config["seed"], "split", name))
        storage.save_table(smk.output.split, table)
        print(table.groupby(["split", "fold", "label"]).size().to_string())


def augment(smk) -> None:
    name = smk.wildcards.dataset
    settings = smk.config["datasets"][name].get("augmentation", {})
    with logged(smk.log[0]):
        images = storage.load_images(smk.input.images)
        table = pd.read_parquet(smk.input.split)
        augmented, catalog = augment_dataset(images, table, settings, job_seed(smk.config["seed"], "augment", name))
        storage.save_images(smk.output.images, augmented)
        storage.save_table(smk.output.catalog, catalog)
        print(f"{len(catalog)} augmented copies of {catalog['source_index'].nunique()} train+validation images")


def export_fits(smk) -> None:
    from deepsky.data.fits_io import export_dataset

    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        n = export_dataset(
            storage.load_images(smk.input.images), pd.read_parquet(smk.input.catalog), card["bands"], smk.output[0]
        )
        print(f"wrote {n} FITS cutouts to {smk.output[0]}")
