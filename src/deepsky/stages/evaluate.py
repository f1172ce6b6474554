"""K-fold evaluation of one architecture: each fold's best model on the held-out test set ->
predictions (one Parquet table, a `fold` column), metrics per fold, one MLflow run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.data.tensors import load_test_set, to_tensors
from deepsky.metrics import binary_metrics, multiclass_metrics
from deepsky.models_io import load_model
from deepsky.stages.common import experiment_tags, logged, set_threads
from deepsky.tracking import Run
from deepsky.train import pick_device, predict

FOLD = re.compile(r"fold(\d+)")


def fold_of(model_path) -> int:
    return int(FOLD.findall(str(model_path))[-1])


def evaluate_model(model_path, x, y, test_index, arch, device):
    """Predictions table and metrics of one fold's model on the test tensors."""
    fold = fold_of(model_path)
    model, meta = load_model(model_path, device)
    scores = predict(model, x, device)[1].numpy()
    predictions = pd.DataFrame({"index": test_index, "label": y.numpy(), "fold": fold, "architecture": arch})
    if scores.ndim == 1:
        predictions["score"] = scores
        metrics = binary_metrics(predictions["label"], scores)
    else:
        for k, name in enumerate(meta["class_names"]):
            predictions[f"p_{name}"] = scores[:, k]
        predictions["predicted"] = scores.argmax(1)
        metrics = multiclass_metrics(predictions["label"], scores, meta["class_names"])
    metrics.update({"fold": fold, "architecture": arch, "n_test": int(len(test_index)),
                    "train_run_id": meta.get("train_run_id", "")})
    return predictions, metrics


def evaluate_architecture(config, experiment, arch, model_paths, data_dir, split_path, out_predictions, out_metrics):
    device = pick_device(config.get("device", "auto"))
    card = storage.read_card(data_dir)
    test_index, images, labels = load_test_set(data_dir, split_path)
    x, y = to_tensors(images, labels)

    tables, per_fold = [], []
    for path in sorted(model_paths, key=fold_of):
        predictions, metrics = evaluate_model(path, x, y, test_index, arch, device)
        tables.append(predictions)
        per_fold.append(metrics)
        print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}))
    storage.save_table(out_predictions, pd.concat(tables, ignore_index=True))
    storage.write_json(out_metrics, per_fold)

    numeric = [k for k, v in per_fold[0].items() if isinstance(v, float)]
    tags = experiment_tags(config, experiment, card, architecture=arch, stage="evaluate",
                           folds=",".join(str(m["fold"]) for m in per_fold))
    with Run(config["tracking"], experiment, f"evaluate/{experiment}/{arch}", tags) as run:
        run.log_params({"architecture": arch, "n_test": len(test_index), "folds": [m["fold"] for m in per_fold],
                        "train_run_ids": [m["train_run_id"] for m in per_fold]})
        for metrics in per_fold:  # one step per fold
            run.log_metrics({f"test_{k}": metrics[k] for k in numeric}, step=metrics["fold"])
        run.log_metrics({f"test_{k}_{stat}": fn([m[k] for m in per_fold]) for k in numeric
                         for stat, fn in (("mean", np.mean), ("std", np.std))})
        run.log_artifact(out_predictions)
        run.log_artifact(out_metrics)
    return per_fold


def main(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        evaluate_architecture(
            smk.config, smk.wildcards.experiment, smk.wildcards.arch, list(smk.input.models),
            Path(smk.input.card).parent, smk.input.split, smk.output.predictions, smk.output.metrics,
        )
