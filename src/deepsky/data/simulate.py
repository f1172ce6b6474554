"""Render a simulated dataset in parallel: one independent seed per image, so the data are
identical whatever the number of worker processes."""

from __future__ import annotations

import importlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from deepsky.data import storage
from deepsky.data.cards import write_card

CHUNK = 32


@dataclass(frozen=True)
class Simulator:
    """Where the renderer of a dataset source lives, and its classes."""

    module: str
    render: str
    merge: str
    classes: dict[str, tuple[str, ...]]  # class name -> the render kinds drawn for it
    description: str
    citation: str
    add_targets: str | None = None  # module function: catalog -> catalog with regression-target columns
    describe_targets: str | None = None  # module function: (catalog, cfg) -> {target: {min, max, unit}} for the card


SIMULATORS = {
    "simulate_lenses": Simulator(
        module="deepsky.data.lenses",
        render="render_lens_cutout",
        merge="merge_simulation_config",
        classes={
            "non-lens": ("galaxy", "ring", "spiral", "companion", "blue_neighbour"),
            "lens": ("lens",),
        },
        description="SIE+shear lenses with lensed clumpy Sersic sources and non-lens contaminants",
        citation="Birrer & Amara 2018 (lenstronomy); Metcalf et al. 2019 (challenge design)",
    ),
    "simulate_lens_parameters": Simulator(
        module="deepsky.data.lens_regression",  # the lenses renderer with HST-like defaults
        render="render_lens_cutout",
        merge="merge_regression_config",
        classes={"lens": ("lens",)},
        description="lenses only (lens light removed), for lens-parameter regression (Hezaveh+2017)",
        citation="Hezaveh, Perreault Levasseur & Marshall 2017 (Nature 548, 555); Birrer & Amara 2018 (lenstronomy)",
        add_targets="add_regression_targets",
        describe_targets="target_summary",
    ),
    "simulate_galaxies": Simulator(
        module="deepsky.data.galaxies",
        render="render_galaxy_cutout",
        merge="merge_simulation_config",
        classes={"round": ("round",), "edge_on": ("edge_on",), "spiral": ("spiral",)},
        description="round ellipticals, edge-on disks and face-on spirals (Galaxy Zoo tutorial classes)",
        citation="Birrer & Amara 2018 (lenstronomy light profiles)",
    ),
    "simulate_lenses_randomised": Simulator(  # domain randomisation (deepsky.data.domains)
        module="deepsky.data.domains",
        render="render_randomised_cutout",
        merge="merge_randomised_config",
        classes={
            "non-lens": ("galaxy", "ring", "spiral", "companion", "blue_neighbour"),
            "lens": ("lens",),
        },
        description="lens cutouts with the PSF profile, depth, sky and read noise drawn per image",
        citation="Tobin et al. 2017 (domain randomisation); Birrer & Amara 2018 (lenstronomy)",
    ),
}


def plan_draws(simulator: Simulator, n_per_class: int, seed: int) -> pd.DataFrame:
    """Which kind each image is: balanced classes, sub-kinds cycled within a class."""
    rows = []
    for label, (class_name, kinds) in enumerate(simulator.classes.items()):
        for i in range(n_per_class):
            rows.append({"label": label, "class_name": class_name, "kind": kinds[i % len(kinds)]})
    plan = pd.DataFrame(rows)
    order = np.random.default_rng(np.random.SeedSequence([seed, 1])).permutation(len(plan))
    plan = plan.iloc[order].reset_index(drop=True)
    plan.insert(0, "index", np.arange(len(plan)))
    return plan


def _render_chunk(args):
    module, render_name, cfg, seed, rows = args
    render = getattr(importlib.import_module(module), render_name)
    out = []
    for index, kind in rows:
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2, index]))
        image, params = render(kind, rng, cfg)
        out.append((index, image, params))
    return out


def simulate_dataset(source: str, n_per_class: int, simulation: dict, seed: int, workers: int = 1):
    """Return (images (N,C,H,W) float32, catalog DataFrame (with the regression targets of a simulator
    that has them), merged simulation config)."""
    simulator = SIMULATORS[source]
    module = importlib.import_module(simulator.module)
    cfg = getattr(module, simulator.merge)(simulation or {})
    plan = plan_draws(simulator, n_per_class, seed)
    pairs = list(zip(plan["index"].tolist(), plan["kind"].tolist()))
    jobs = [
        (simulator.module, simulator.render, cfg, seed, pairs[i : i + CHUNK]) for i in range(0, len(pairs), CHUNK)
    ]
    results = [None] * len(plan)
    params = [None] * len(plan)
    bar = tqdm(total=len(plan), desc=f"simulate {source}", unit="img", mininterval=2)
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for chunk in pool.map(_render_chunk, jobs):
                _collect(chunk, results, params, bar)
    else:
        for job in jobs:
            _collect(_render_chunk(job), results, params, bar)
    bar.close()
    images = np.stack(results).astype(np.float32)
    drawn = pd.DataFrame(params)
    # The plan is the authority on index, label and kind; renderers may echo them.
    catalog = pd.concat([plan, drawn.drop(columns=[c for c in plan.columns if c in drawn])], axis=1)
    if simulator.add_targets:
        catalog = getattr(module, simulator.add_targets)(catalog)
    return images, catalog, cfg


def _collect(chunk, results, params, bar):
    for index, image, p in chunk:
        results[index] = image
        params[index] = p
    bar.update(len(chunk))


def band_names(sim_cfg: dict) -> list[str]:
    """Band names whether the simulator lists bands as names or as dicts of settings."""
    return [b["name"] if isinstance(b, dict) else str(b) for b in sim_cfg.get("bands", [])]


def write_simulated_dataset(out_dir: str | Path, name: str, dataset_cfg: dict, seed: int, workers: int = 1) -> dict:
    out_dir = Path(out_dir)
    source = dataset_cfg["source"]
    images, catalog, sim_cfg = simulate_dataset(
        source, dataset_cfg["n_per_class"], dataset_cfg.get("simulation", {}), seed, workers
    )
    if not np.isfinite(images).all():
        raise FloatingPointError(f"simulation of dataset '{name}' produced non-finite pixels")
    storage.save_images(out_dir / storage.IMAGES, images)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    simulator = SIMULATORS[source]
    provenance = {
        "simulation": sim_cfg, "seed": seed, "citation": simulator.citation, "licence": "CC-BY-4.0 (simulated here)",
    }
    if simulator.describe_targets:
        describe = getattr(importlib.import_module(simulator.module), simulator.describe_targets)
        provenance["targets"] = describe(catalog, sim_cfg)
    return write_card(
        out_dir,
        name=name,
        source=source,
        description=dataset_cfg.get("description", simulator.description),
        class_names=list(simulator.classes),
        catalog=catalog,
        images_shape=images.shape,
        bands=band_names(sim_cfg),
        provenance=provenance,
    )
