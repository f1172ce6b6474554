"""K-fold evaluation of one architecture: each fold's best model on the held-out test set ->
predictions (one Parquet table, a `fold` column, the task's columns), metrics per fold, one
MLflow run. Also the "combined network" of regression experiments (Hezaveh+2017): the average
of the members' predictions, scored the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.config import task_spec
from deepsky.data import storage
from deepsky.data.tensors import load_test_set
from deepsky.models_io import load_model, read_meta
from deepsky.stages.common import experiment_tags, logged, set_threads
from deepsky.tasks import make_task, task_from_meta
from deepsky.tracking import Run
from deepsky.train import pick_device

FOLD = re.compile(r"fold(\d+)")
COMBINED = "combined"


def fold_of(model_path) -> int:
    return int(FOLD.findall(str(model_path))[-1])


@torch.inference_mode()
def evaluate_model(model_path, x, raw_targets, test_index, arch, device):
    """Predictions table and metrics of one fold's model on the test tensors."""
    fold = fold_of(model_path)
    model, meta = load_model(model_path, device)
    task = task_from_meta(meta)
    predictions = task.prediction_table(test_index, raw_targets, task.predict(model, x, device), fold, arch)
    metrics = task.metrics(predictions)
    metrics.update({"fold": fold, "architecture": arch, "n_test": int(len(test_index)),
                    "train_run_id": meta.get("train_run_id", "")})
    return predictions, metrics


def log_evaluation(config, experiment, arch, card, per_fold, n_test, out_predictions, out_metrics) -> None:
    numeric = [k for k, v in per_fold[0].items() if isinstance(v, float)]
    tags = experiment_tags(config, experiment, card, architecture=arch, stage="evaluate",
                           folds=",".join(str(m["fold"]) for m in per_fold))
    with Run(config["tracking"], experiment, f"evaluate/{experiment}/{arch}", tags) as run:
        run.log_params({"architecture": arch, "n_test": n_test, "folds": [m["fold"] for m in per_fold],
                        "train_run_ids": [m.get("train_run_id", "") for m in per_fold]})
        for metrics in per_fold:  # one step per fold
            run.log_metrics({f"test_{k}": metrics[k] for k in numeric}, step=metrics["fold"])
        run.log_metrics({f"test_{k}_{stat}": fn([m[k] for m in per_fold]) for k in numeric
                         for stat, fn in (("mean", np.mean), ("std", np.std))})
        run.log_artifact(out_predictions)
        run.log_artifact(out_metrics)
    return run.run_id


def evaluate_architecture(config, experiment, arch, model_paths, data_dir, split_path, out_predictions, out_metrics):
    device = pick_device(config.get("device", "auto"))
    card = storage.read_card(data_dir)
    paths = sorted(model_paths, key=fold_of)
    task = task_from_meta(read_meta(paths[0]))
    test_index, x, raw_targets = task.load_test(data_dir, split_path)

    tables, per_fold = [], []
    for path in paths:
        predictions, metrics = evaluate_model(path, x, raw_targets, test_index, arch, device)
        tables.append(predictions)
        per_fold.append(metrics)
        print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}))
    storage.save_table(out_predictions, pd.concat(tables, ignore_index=True))
    storage.write_json(out_metrics, per_fold)
    run_id = log_evaluation(config, experiment, arch, card, per_fold, len(test_index), out_predictions, out_metrics)
    best = best_fold(task, per_fold)
    registers = config["tracking"].get("register_models", True) and config["experiments"][experiment].get("register_models", True)
    if registers and task.registers_pyfunc and isinstance(x, torch.Tensor):
        from deepsky.mlflow_model import log_and_register, registered_name
        from deepsky.tracking import resolve_uri

        _, raw_images, _ = load_test_set(data_dir, split_path, limit=4, task=task)
        uri = log_and_register(run_id, resolve_uri(config["tracking"]["uri"]), paths[[fold_of(p) for p in paths].index(best)],
                               raw_images, registered_name(experiment, arch))
        print(f"registered fold {best} as {registered_name(experiment, arch)} ({uri})")
    return per_fold


def best_fold(task, per_fold) -> int:
    """The fold whose model scores best on the task's selection metric (first fold if it has none)."""
    metric, direction = getattr(task, "selection_metric", (None, "max"))
    if metric is None or metric not in per_fold[0]:
        return per_fold[0]["fold"]
    pick = max if direction == "max" else min
    return pick(per_fold, key=lambda m: m[metric])["fold"]


def combine_predictions(tables: list[pd.DataFrame], task) -> pd.DataFrame:
    """Hezaveh's combined network: per test image and fold, the mean of the members' predictions.

    With predicted sigmas the members are treated as a mixture: the combined variance is the mean
    of their variances plus the variance of their means.
    """
    names = task.names
    stacked = pd.concat(tables, ignore_index=True)
    keys = ["index", "fold"]
    grouped = stacked.groupby(keys, sort=True)
    combined = grouped[names].first()
    for name in names:
        combined[f"{name}_pred"] = grouped[f"{name}_pred"].mean()
    if all(f"{n}_sigma" in stacked for n in names):
        for name in names:
            second = (stacked[f"{name}_sigma"] ** 2 + stacked[f"{name}_pred"] ** 2).groupby([stacked[k] for k in keys]).mean()
            combined[f"{name}_sigma"] = np.sqrt(np.clip(second - combined[f"{name}_pred"] ** 2, 0, None))
    counts = grouped.size()
    if counts.nunique() != 1 or counts.iloc[0] != len(tables):
        raise ValueError("members were evaluated on different test images or folds; cannot combine them")
    combined = combined.reset_index()
    combined.insert(combined.columns.get_loc("fold") + 1, "architecture", COMBINED)
    return combined


def evaluate_combined(config, experiment, prediction_files, data_dir, out_predictions, out_metrics):
    card = storage.read_card(data_dir)
    tables = [pd.read_parquet(p) for p in prediction_files]
    task = make_task(task_spec(config["experiments"][experiment], config["datasets"]))
    table = combine_predictions(tables, task)
    per_fold = []
    for fold, part in table.groupby("fold"):
        metrics = task.metrics(part)
        metrics.update({"fold": int(fold), "architecture": COMBINED, "n_test": int(len(part)),
                        "members": ",".join(t["architecture"].iloc[0] for t in tables)})
        per_fold.append(metrics)
        print(json.dumps(metrics))
    storage.save_table(out_predictions, table)
    storage.write_json(out_metrics, per_fold)
    log_evaluation(config, experiment, COMBINED, card, per_fold, int(table["index"].nunique()), out_predictions, out_metrics)
    return per_fold


def main(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        evaluate_architecture(
            smk.config, smk.wildcards.experiment, smk.wildcards.arch, list(smk.input.models),
            Path(smk.input.card).parent, smk.input.split, smk.output.predictions, smk.output.metrics,
        )


def combined_main(smk) -> None:
    with logged(smk.log[0]):
        evaluate_combined(
            smk.config, smk.wildcards.experiment, list(smk.input.predictions),
            Path(smk.input.card).parent, smk.output.predictions, smk.output.metrics,
        )
