"""Photo-z stages: simulate the survey, the classical methods (kNN, random forest) under the same
K folds as the networks, the method comparison table and the lecture 002 figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.stages.common import logged, simulate_dataset
from deepsky.tasks.photoz import photometry_features
from deepsky.tasks.photoz_metrics import PASQUET19_SDSS, interval_columns, kernel_mixture, photoz_metrics
from deepsky.train import job_seed

PHOTOZ_SOURCE = "simulate_photoz"
TRACKING_EXPERIMENT = "photoz"
CLASSICAL_LABELS = {"knn": "kNN", "random_forest": "random forest"}
METRICS = ("sigma_nmad", "outlier_frac_015", "outlier_frac_005", "bias", "crps", "pit_ks", "hdr_coverage68", "hdr_coverage95")


# ---- configuration helpers (also used by workflow/rules/photoz.smk)
def photoz_experiments(config: dict) -> list[str]:
    """Experiments with task photoz on the photoz block's dataset, in config order."""
    block = config.get("photoz_comparison")
    if not block:
        return []
    return [name for name, e in config["experiments"].items()
            if e.get("task") == "photoz" and e["dataset"] == block["dataset"]]


def method_label(config: dict, experiment: str, arch: str) -> str:
    e = config["experiments"][experiment]
    options = e.get("photoz", {})
    label = f"{'CNN' if options.get('inputs', 'photometry') == 'images' else 'MLP'} {'MDN' if options.get('head', 'mdn') == 'mdn' else 'point'}"
    return label if len(e.get("architectures", [])) <= 1 else f"{label} ({arch})"


# ---- simulation
def simulate(smk) -> None:
    from deepsky.data.photoz import write_photoz_dataset

    with logged(smk.log[0]):
        name, card = simulate_dataset(smk, write_photoz_dataset)
        print(f"dataset {name}: {card['n_objects']} catalogue rows, {card['n_images']} cutouts {card['image_shape']}")


# ---- classical methods
def classical_fold(method: str, params: dict, catalog: pd.DataFrame, split: pd.DataFrame, fold: int, bands,
                   seed: int, threads: int = 1) -> pd.DataFrame:
    """Fit on the fold's training rows, predict the test rows: the photo-z table contract."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler

    from deepsky.data.split import fold_indices

    parts = fold_indices(split, fold)
    train, test = catalog.loc[np.sort(parts["train"])], catalog.loc[np.sort(parts["test"])]
    scaler = StandardScaler().fit(photometry_features(train, bands))
    x_train, x_test = scaler.transform(photometry_features(train, bands)), scaler.transform(photometry_features(test, bands))
    z_train = train["z"].to_numpy(dtype=float)
    if method == "knn":
        neighbours = NearestNeighbors(n_neighbors=int(params.get("n_neighbors", 20))).fit(x_train)
        samples = z_train[neighbours.kneighbors(x_test, return_distance=False)]
    elif method == "random_forest":
        forest = RandomForestRegressor(
            n_estimators=int(params.get("n_estimators", 50)), min_samples_leaf=int(params.get("min_samples_leaf", 5)),
            max_features=params.get("max_features", 1.0), random_state=seed % 2**32, n_jobs=threads,
        ).fit(x_train, z_train)
        samples = np.stack([tree.predict(x_test) for tree in forest.estimators_], axis=1)
    else:
        raise ValueError(f"unknown classical photo-z method {method!r} (known: {', '.join(CLASSICAL_LABELS)})")
    mixture = kernel_mixture(samples, float(params.get("min_kernel_sigma", 0.002)))
    columns = {"index": test["index"].to_numpy(), "z": test["z"].to_numpy(dtype=float), "fold": fold, "architecture": method}
    columns.update(interval_columns(mixture))
    columns.update({name: values.astype(np.float32) for name, values in mixture.columns().items()})
    return pd.DataFrame(columns)


def classical(smk) -> None:
    from deepsky.tracking import Run

    method = smk.wildcards.method
    config = smk.config
    block = config["photoz_comparison"]
    params = block["classical"][method]
    with logged(smk.log[0]):
        dataset_dir = Path(smk.input.card).parent
        card = storage.read_card(dataset_dir)
        catalog = pd.read_parquet(smk.input.catalog).set_index("index", drop=False)
        split = pd.read_parquet(smk.input.split)
        folds = sorted(set(split["fold"]) - {-1})
        tables, per_fold = [], []
        for fold in folds:
            seed = job_seed(config["seed"], "photoz", method, fold)
            table = classical_fold(method, params, catalog, split, fold, card["bands"], seed, smk.threads)
            metrics = {**photoz_metrics(table), "fold": fold, "architecture": method, "n_test": len(table)}
            print(json.dumps(metrics))
            tables.append(table)
            per_fold.append(metrics)
        storage.save_table(smk.output.predictions, pd.concat(tables, ignore_index=True))
        storage.write_json(smk.output.metrics, per_fold)
        tags = {"dataset": block["dataset"], "data_sha256": card["images_sha256"], "stage": "classical", "method": method,
                "workflow_run": os.environ.get("DEEPSKY_WORKFLOW_RUN", "manual")}
        with Run(config["tracking"], TRACKING_EXPERIMENT, f"classical/{method}", tags) as run:
            # The prediction table stays in results/ only: its K kernels per object would double its 3 MB.
            run.log_params({"method": method, **params, "folds": folds, "predictions": smk.output.predictions})
            for metrics in per_fold:
                run.log_metrics({f"test_{k}": metrics[k] for k in METRICS}, step=metrics["fold"])
            run.log_artifact(smk.output.metrics)


# ---- comparison
def load_methods(config: dict, prediction_files: list[str]) -> dict[str, pd.DataFrame]:
    """Method label -> prediction table, for the files of the photoz targets (networks, then classical)."""
    tables = {}
    for path in prediction_files:
        parts = Path(path).parts
        if parts[-3] == "classical":
            label = CLASSICAL_LABELS.get(parts[-2], parts[-2])
        else:
            label = method_label(config, parts[-3], parts[-2])
        tables[label] = pd.read_parquet(path)
    return tables


def comparison_table(tables: dict[str, pd.DataFrame], catalog: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Fold mean and std of every metric per method, on each method's whole test set and on the
    test galaxies that have cutouts (the same objects for every method)."""
    with_image = set(catalog.loc[catalog["has_image"], "index"])
    train_rows = split[split["split"] == "trainval"]
    rows = []
    for label, table in tables.items():
        image_only = table["index"].isin(with_image).all()
        for subset, part in (("all", table), ("cutouts", table[table["index"].isin(with_image)])):
            if subset == "all" and image_only:
                continue
            per_fold = pd.DataFrame([photoz_metrics(group) for _, group in part.groupby("fold")])
            pool = train_rows[train_rows["index"].isin(with_image)] if image_only else train_rows
            n_train = int(np.median([(pool["fold"] != f).sum() for f in part["fold"].unique()]))
            row = {"method": label, "test_set": subset, "n_train": n_train, "n_test": int(part["index"].nunique()),
                   "n_folds": int(part["fold"].nunique())}
            for metric in METRICS:
                row[f"{metric}_mean"] = float(per_fold[metric].mean())
                row[f"{metric}_std"] = float(per_fold[metric].std(ddof=0))
            rows.append(row)
    return pd.DataFrame(rows)


def pasquet_row() -> dict:
    return {"method": "Pasquet+2019 CNN (real SDSS)", "test_set": "516,525 SDSS galaxies", "n_train": "–",
            **{f"{k}_mean": v for k, v in PASQUET19_SDSS.items()}}


# ---- figures
def _log_figure(config: dict, card: dict, png) -> None:
    from deepsky.tracking import Run

    stem = Path(png).stem
    tags = {"stage": "figure", "figure": stem, "dataset": card["name"], "data_sha256": card["images_sha256"],
            "workflow_run": os.environ.get("DEEPSKY_WORKFLOW_RUN", "manual")}
    with Run(config["tracking"], TRACKING_EXPERIMENT, f"figure/photoz/{stem}", tags) as run:
        run.log_artifact(png, "figures")
        run.log_artifact(Path(png).with_suffix(".pdf"), "figures")


def table_main(smk) -> None:
    from deepsky.figures.photoz import methods_table

    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        tables = load_methods(smk.config, list(smk.input.predictions))
        summary = comparison_table(tables, pd.read_parquet(smk.input.catalog), pd.read_parquet(smk.input.split))
        summary.to_csv(smk.output.table, index=False, float_format="%.5f")
        print(summary.to_string())
        methods_table(summary, pasquet_row(), smk.output.figure)
        _log_figure(smk.config, card, smk.output.figure)


def figure_main(smk) -> None:
    from deepsky.figures import photoz as figures

    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        tables = load_methods(smk.config, list(smk.input.predictions))
        catalog = pd.read_parquet(smk.input.catalog)
        getattr(figures, smk.params.figure)(tables, catalog, smk.output[0])
        _log_figure(smk.config, card, smk.output[0])


def dataset_figure_main(smk) -> None:
    from deepsky.figures import photoz as figures

    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        catalog = pd.read_parquet(smk.input.catalog)
        images = storage.load_images(smk.input.images) if smk.input.get("images") else None
        getattr(figures, smk.params.figure)(catalog, images, card, smk.output[0])
        _log_figure(smk.config, card, smk.output[0])
