"""Stages for real datasets: download the archive (checksummed), then read it into the
project's format (images.npy, catalog.parquet, card.json) like a simulated dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deepsky.data import realdata, storage
from deepsky.data.cards import write_card
from deepsky.data.download import download
from deepsky.stages.common import logged
from deepsky.train import job_seed

SOURCES = {
    "galaxy10": {
        "description": "Galaxy10 (Leung & Bovy 2019): SDSS or DECaLS galaxies with Galaxy Zoo morphology labels",
        "citation": "Leung & Bovy 2019, MNRAS 483, 3255 (astroNN); Lintott et al. 2008 (Galaxy Zoo)",
        "licence": "see the Zenodo record of the file",
        "bands": ["g", "r", "z"],
    },
    "cats_dogs": {
        "description": "Kaggle Dogs vs. Cats (Microsoft PetImages release), decoded, centre-cropped and resized",
        "citation": "Elson et al. 2007, Asirra (Microsoft Research); Kaggle Dogs vs. Cats 2013",
        "licence": "Microsoft Kaggle Cats and Dogs Dataset licence (research use)",
        "bands": ["R", "G", "B"],
    },
    "bologna": {
        "description": "Bologna Lens Finding Challenge 1.0, ground-based training set (KiDS-like, 4 bands)",
        "citation": "Metcalf et al. 2019, A&A 625, A119",
        "licence": "see the challenge portal",
        "bands": ["R", "I", "G", "U"],
    },
}


def archive_path(dataset: str, cfg: dict) -> Path:
    """Where the raw archive is read from: `path` if given, else the download location."""
    if cfg.get("path"):
        return Path(cfg["path"])
    filename = cfg["download"].get("filename") or cfg["download"]["url"].rstrip("/").rsplit("/", 1)[-1]
    return Path("results/downloads") / dataset / filename


def fetch(smk) -> None:
    name = smk.wildcards.dataset
    spec = smk.config["datasets"][name]["download"]
    with logged(smk.log[0]):
        download(
            spec["url"], smk.output[0], sha256=spec.get("sha256"), size=spec.get("size"),
            lock_file=smk.params.lock_file, progress=True,
        )


def read_archive(name: str, cfg: dict, path: Path, seed: int):
    source = cfg["source"]
    counts = None
    if source == "galaxy10":
        images, labels, catalog = realdata.read_galaxy10(path, cfg["class_map"], image_size=cfg.get("image_size"),
                                                         crop=cfg.get("crop"))
    elif source == "cats_dogs":
        images, labels, catalog, counts = realdata.read_petimages(
            path, n_train=cfg.get("n_train", 8000), n_test=cfg.get("n_test", 2000),
            image_size=cfg.get("image_size", 64), seed=seed,
        )
    elif source == "bologna":
        images, labels, catalog = realdata.read_bologna_challenge(path)
        catalog["class_name"] = np.where(labels == 1, "lens", "non-lens")
        catalog["kind"] = catalog["class_name"]
    else:
        raise ValueError(f"dataset '{name}': source '{source}' is not a real-data source")
    catalog["label"] = labels
    return images, catalog, counts


def prepare(smk) -> None:
    from deepsky.config import dataset_class_names

    name = smk.wildcards.dataset
    cfg = smk.config["datasets"][name]
    with logged(smk.log[0]):
        path = Path(smk.input.archive)
        images, catalog, counts = read_archive(name, cfg, path, job_seed(smk.config["seed"], "data", name))
        out_dir = Path(smk.output.images).parent
        storage.save_images(smk.output.images, images)
        storage.save_table(smk.output.catalog, catalog)
        info = SOURCES[cfg["source"]]
        card = write_card(
            out_dir, name=name, source=cfg["source"], description=cfg.get("description", info["description"]),
            class_names=dataset_class_names(cfg), catalog=catalog, images_shape=images.shape,
            bands=info["bands"][: images.shape[1]],
            provenance={
                "archive": str(path), "archive_sha256": storage.sha256_file(path),
                "url": cfg.get("download", {}).get("url"), "citation": info["citation"], "licence": info["licence"],
                "reader_counts": counts,
            },
        )
        print(f"dataset {name}: {card['n_images']} images {card['image_shape']}, counts {card['counts']}")
