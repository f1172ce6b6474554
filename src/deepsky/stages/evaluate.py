"""One evaluation job: a fold's best model on the held-out test set -> predictions, metrics, run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.data.tensors import to_tensors
from deepsky.metrics import binary_metrics, multiclass_metrics
from deepsky.models_io import load_model
from deepsky.stages.common import experiment_tags, logged, set_threads
from deepsky.tracking import Run
from deepsky.train import pick_device, predict


def evaluate_fold(config, experiment, arch, fold, model_path, data_dir, split_path, out_predictions, out_metrics) -> dict:
    device = pick_device(config.get("device", "auto"))
    model, meta = load_model(model_path, device)
    card = storage.read_card(data_dir)
    split = pd.read_parquet(split_path)
    test_index = np.sort(split.loc[split["split"] == "test", "index"].to_numpy())
    images = storage.load_images(Path(data_dir) / storage.IMAGES)
    labels = pd.read_parquet(Path(data_dir) / storage.CATALOG, columns=["index", "label"]).set_index("index")
    x, y = to_tensors(images[test_index], labels.loc[test_index, "label"].to_numpy())
    _, scores = predict(model, x, device)
    scores = scores.numpy()
    class_names = meta["class_names"]

    predictions = pd.DataFrame({"index": test_index, "label": y.numpy(), "fold": fold, "architecture": arch})
    if scores.ndim == 1:
        predictions["score"] = scores
        metrics = binary_metrics(predictions["label"], scores)
    else:
        for k, name in enumerate(class_names):
            predictions[f"p_{name}"] = scores[:, k]
        predictions["predicted"] = scores.argmax(1)
        metrics = multiclass_metrics(predictions["label"], scores, class_names)
    metrics.update({"n_test": int(len(test_index)), "architecture": arch, "fold": int(fold)})
    storage.save_table(out_predictions, predictions)
    storage.write_json(out_metrics, metrics)

    tags = experiment_tags(config, experiment, card, architecture=arch, fold=fold, stage="evaluate",
                           train_run_id=meta.get("train_run_id", ""))
    with Run(config["tracking"], experiment, f"evaluate/{experiment}/{arch}/fold{fold}", tags) as run:
        run.log_params({"architecture": arch, "fold": fold, "model_path": str(model_path), "n_test": len(test_index)})
        run.log_metrics({f"test_{k}": v for k, v in metrics.items() if k not in ("architecture", "fold", "confusion")})
        run.log_artifact(out_predictions)
        run.log_artifact(out_metrics)
    print(json.dumps({k: v for k, v in metrics.items() if k != "confusion"}, indent=1))
    return metrics


def main(smk) -> None:
    with logged(smk.log[0]):
        set_threads(smk.threads)
        w = smk.wildcards
        evaluate_fold(
            smk.config, w.experiment, w.arch, int(w.fold), smk.input.model, Path(smk.input.card).parent,
            smk.input.split, smk.output.predictions, smk.output.metrics,
        )
