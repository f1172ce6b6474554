"""Stages that make a dataset: simulate (or read a real archive), split, augment, FITS export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.data.augment import augment_dataset
from deepsky.data.split import make_split
from deepsky.stages.common import logged, simulate_dataset
from deepsky.train import job_seed


def simulate(smk) -> None:
    from deepsky.data.simulate import write_simulated_dataset

    with logged(smk.log[0]):
        name, card = simulate_dataset(smk, write_simulated_dataset)
        print(f"dataset {name}: {card['n_images']} images {card['image_shape']}, sha256 {card['images_sha256']}")


def split(smk) -> None:
    name = smk.wildcards.dataset
    settings = smk.config["datasets"][name]["split"]
    # A derived dataset (artefact) is split exactly like its base: same test images.
    seed_name = smk.config["datasets"][name].get("base", name)
    with logged(smk.log[0]):
        catalog = pd.read_parquet(smk.input.catalog)
        table = make_split(catalog, settings["test_fraction"], settings["k_folds"], job_seed(smk.config["seed"], "split", seed_name))
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


def artefact(smk) -> None:
    """A copy of a dataset with a detector artefact on every image of one class (the husky's snow)."""
    from deepsky.data.artefacts import add_artefact
    from deepsky.data.cards import write_card

    name = smk.wildcards.dataset
    cfg = smk.config["datasets"][name]
    spec = cfg["artefact"]
    with logged(smk.log[0]):
        base_card = storage.read_card(Path(smk.input.card).parent)
        catalog = pd.read_parquet(smk.input.catalog)
        marked = (catalog["class_name"] == spec["on_class"]).to_numpy()
        rng = np.random.default_rng(job_seed(smk.config["seed"], "artefact", name))
        images = add_artefact(storage.load_images(smk.input.images), marked, rng, kind=spec["kind"],
                              strength=spec.get("strength", 10.0))
        catalog["artefact"] = marked
        out_dir = Path(smk.output.images).parent
        storage.save_images(smk.output.images, images)
        storage.save_table(smk.output.catalog, catalog)
        write_card(
            out_dir, name=name, source="artefact",
            description=f"{cfg['base']} with a {spec['kind']} artefact on every '{spec['on_class']}' image",
            class_names=base_card["class_names"], catalog=catalog, images_shape=images.shape, bands=base_card["bands"],
            provenance={"base": cfg["base"], "base_sha256": base_card["images_sha256"], "artefact": spec,
                        "citation": "Ribeiro et al. 2016 (husky vs wolf)", "licence": "CC-BY-4.0 (simulated here)"},
        )
        print(f"{int(marked.sum())} of {len(marked)} images carry the artefact")
