"""Stages of the galaxy-graph experiment: simulate the catalogues, test the trained networks on
other galaxy models (robustness, de Santi+2023), draw the figures. Training and the nominal
evaluation are the generic `train` / `evaluate` stages with the `graph_regression` task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.stages.common import experiment_tags, logged, set_threads, simulate_dataset

SUMMARY_METRICS = ("rel_error", "rmse", "r2", "bias", "coverage68", "chi2")


def simulate(smk) -> None:
    from deepsky.data.cosmo_graphs import write_cosmo_dataset

    with logged(smk.log[0]):
        name, card = simulate_dataset(smk, write_cosmo_dataset, folder_of="catalog", parallel=False)
        print(f"dataset {name}: {card['n_boxes']} boxes, {card['n_galaxies']} galaxies, sha256 {card['images_sha256']}")


# ---------------------------------------------------------------- robustness
def shifted_predictions(model_paths, dataset_dir, test_set: str, device) -> list[pd.DataFrame]:
    """Every fold model's predictions on all boxes of another dataset (the regression table contract)."""
    from deepsky.models_io import load_model
    from deepsky.stages.report import arch_fold
    from deepsky.tasks import task_from_meta

    tables, loaded = [], {}
    for path in sorted(map(str, model_paths)):
        arch, fold = arch_fold(path)
        model, meta = load_model(path, device)
        task = task_from_meta(meta)
        key = repr(task.spec["graph"])
        if key not in loaded:  # the graphs depend on the graph settings only, not on the fold
            loaded[key] = task.load_boxes(dataset_dir)
        index, graphs, raw = loaded[key]
        table = task.prediction_table(index, raw, task.predict(model, graphs, device), fold, arch)
        table["test_set"] = test_set
        tables.append(table)
    return tables


def robustness_metrics(predictions: pd.DataFrame, task) -> pd.DataFrame:
    """One row per (architecture, test set, fold) with the task's metrics."""
    rows = []
    for (arch, test_set, fold), part in predictions.groupby(["architecture", "test_set", "fold"], sort=False):
        rows.append({"architecture": arch, "test_set": test_set, "fold": int(fold), "n_boxes": len(part), **task.metrics(part)})
    return pd.DataFrame(rows)


def robustness_summary(per_fold: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Mean and std over folds of the headline metrics, per architecture and test set."""
    columns = [f"{n}_{m}" for n in names for m in SUMMARY_METRICS if f"{n}_{m}" in per_fold]
    grouped = per_fold.groupby(["architecture", "test_set"], sort=False)[columns]
    summary = grouped.agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    return summary.reset_index()


def evaluate_robustness(config: dict, experiment: str, model_paths, nominal_files, dataset_dirs: dict, out_predictions, out_per_fold,
                        out_summary):
    """`dataset_dirs`: dataset name -> folder, for the experiment's dataset and its shift_datasets."""
    from deepsky.config import task_spec
    from deepsky.tasks import make_task
    from deepsky.tracking import Run
    from deepsky.train import pick_device

    exp = config["experiments"][experiment]
    task = make_task(task_spec(exp, config["datasets"]))
    device = pick_device(config.get("device", "auto"))
    tables = [pd.read_parquet(p).assign(test_set=exp["dataset"]) for p in nominal_files]
    for name in exp["shift_datasets"]:
        tables += shifted_predictions(model_paths, dataset_dirs[name], name, device)
    predictions = pd.concat(tables, ignore_index=True)
    per_fold = robustness_metrics(predictions, task)
    summary = robustness_summary(per_fold, task.names)
    galaxy_models = {name: storage.read_card(dataset_dirs[name])["simulation"] for name in [exp["dataset"], *exp["shift_datasets"]]}
    for frame in (per_fold, summary):
        frame.insert(2, "bias_b", frame["test_set"].map(lambda s: galaxy_models[s]["bias"]))
        frame.insert(3, "n_galaxies", frame["test_set"].map(lambda s: galaxy_models[s]["n_galaxies"]))
    storage.save_table(out_predictions, predictions)
    per_fold.to_csv(out_per_fold, index=False)
    summary.to_csv(out_summary, index=False, float_format="%.4f")
    print(summary.to_string())

    card = storage.read_card(dataset_dirs[exp["dataset"]])
    tags = experiment_tags(config, experiment, card, stage="robustness", shift_datasets=",".join(exp["shift_datasets"]))
    with Run(config["tracking"], experiment, f"robustness/{experiment}", tags) as run:
        run.log_params({"shift_datasets": exp["shift_datasets"], "galaxy_models": galaxy_models})
        metrics = {}
        for row in summary.to_dict("records"):
            for key, value in row.items():
                if key.endswith(("_mean", "_std")) and np.isfinite(value):
                    metrics[f"{row['test_set']}.{row['architecture']}.{key}"] = float(value)
        run.log_metrics(metrics)
        for path in (out_predictions, out_per_fold, out_summary):
            run.log_artifact(path)
    return summary


def robustness(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        dirs = {Path(card).parent.name: Path(card).parent for card in [smk.input.card, *smk.input.shifted]}
        evaluate_robustness(smk.config, smk.wildcards.experiment, list(smk.input.models), list(smk.input.predictions), dirs,
                            smk.output.predictions, smk.output.per_fold, smk.output.summary)


# ---------------------------------------------------------------- figures
def graph_settings(config: dict, dataset: str) -> dict:
    """The graph settings of the first graph_regression experiment on this dataset (else defaults)."""
    from deepsky.tasks.cosmo_graphs import DEFAULT_GRAPH

    for exp in config["experiments"].values():
        if exp.get("task") == "graph_regression" and dataset in [exp["dataset"], *exp.get("shift_datasets", [])]:
            return {**DEFAULT_GRAPH, **exp.get("graph", {})}
    return dict(DEFAULT_GRAPH)


def dataset_figure(name: str, config: dict, dataset_dir: Path, png, n_boxes: int = 40) -> None:
    from deepsky.data.cosmo_graphs import PowerEmulator, load_catalogues, load_power_grid, measure_power
    from deepsky.figures import cosmo_graphs as figures

    card = storage.read_card(dataset_dir)
    sim, graph = card["simulation"], graph_settings(config, dataset_dir.name)
    boxes = load_catalogues(dataset_dir)
    catalog = pd.read_parquet(dataset_dir / storage.CATALOG)
    if name == "catalogue_graph":
        middle = catalog.iloc[(catalog["Omega_m"] - catalog["Omega_m"].median()).abs().argmin()]
        figures.catalogue_graph(boxes[int(middle["index"])], sim["box_size"], graph["linking_radius"], png)
        return
    shown = catalog.iloc[:: max(1, len(catalog) // n_boxes)]
    spectra = [measure_power(boxes[int(i)], sim["box_size"], graph["pk_grid"], graph["pk_bins"] * 2) for i in shown["index"]]
    emulator = PowerEmulator(load_power_grid(dataset_dir / "power_grid.npz"))
    k = np.geomspace(spectra[0]["k"][0], spectra[0]["k"][-1], 60)
    inputs = [(k, sim["bias"] ** 2 * emulator(row.Omega_m, row.sigma_8, k)) for row in shown.itertuples()]
    figures.power_spectra(spectra, shown.reset_index(drop=True), inputs, png)


def experiment_figure(name: str, config: dict, experiment: str, smk_input, png) -> None:
    from deepsky.config import task_spec
    from deepsky.figures import cosmo_graphs as figures
    from deepsky.tasks import make_task

    exp = config["experiments"][experiment]
    task = make_task(task_spec(exp, config["datasets"]))
    if name == "robustness":
        figures.robustness(pd.read_csv(smk_input.robustness), task.names, png)
        return
    predictions = pd.concat([pd.read_parquet(p) for p in smk_input.predictions], ignore_index=True)
    per_fold = robustness_metrics(predictions.assign(test_set=exp["dataset"]), task)
    figures.predicted_vs_true(predictions, per_fold, task.names, png)


def figure(smk) -> None:
    from deepsky.stages.report import log_figure

    with logged(smk.log[0]):
        png = Path(smk.output[0])
        card_dir = Path(smk.input.card).parent
        if "experiment" in smk.wildcards.keys():
            experiment = smk.wildcards.experiment
            experiment_figure(smk.params.figure, smk.config, experiment, smk.input, png)
        else:
            dataset_figure(smk.params.figure, smk.config, card_dir, png)
            experiment = next((e for e, x in smk.config["experiments"].items() if x["dataset"] == card_dir.name), None)
        if experiment is not None:
            log_figure(smk.config, experiment, storage.read_card(card_dir), png)
