"""Stages after evaluation: the K-fold summary table and the experiment's figures."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from deepsky.data import storage
from deepsky.figures import lens_finding
from deepsky.stages.common import experiment_tags, logged
from deepsky.tracking import Run

SUMMARY_METRICS = ("accuracy", "auroc", "tpr0", "tpr10", "auroc_macro_ovr")
FOLD_DIR = re.compile(r"/(?P<arch>[^/]+)/fold(?P<fold>\d+)/[^/]+$")


def arch_fold(path) -> tuple[str, int]:
    match = FOLD_DIR.search(str(path))
    return match["arch"], int(match["fold"])


def summarize(metric_files, history_files) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    histories = {arch_fold(p): pd.read_csv(p) for p in history_files}
    for path in metric_files:
        metrics = json.loads(Path(path).read_text())
        history = histories[(metrics["architecture"], metrics["fold"])]
        rows.append(
            {
                **{k: v for k, v in metrics.items() if k != "confusion"},
                "epochs_run": len(history),
                "train_seconds": float(history["epoch_seconds"].sum()),
                "train_images_per_second": float(history["images_per_second"].median()),
            }
        )
    per_fold = pd.DataFrame(rows).sort_values(["architecture", "fold"])
    present = [m for m in SUMMARY_METRICS if m in per_fold]
    grouped = per_fold.groupby("architecture", sort=False)
    summary = grouped[present + ["train_seconds", "train_images_per_second"]].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary.insert(0, "n_folds", grouped.size())
    order = list(dict.fromkeys(per_fold["architecture"]))
    return per_fold, summary.reindex(order).reset_index()


def summary_main(smk) -> None:
    with logged(smk.log[0]):
        per_fold, summary = summarize(smk.input.metrics, smk.input.histories)
        per_fold.to_csv(smk.output.per_fold, index=False)
        summary.to_csv(smk.output.summary, index=False, float_format="%.4f")
        print(summary.to_string())


def figures_main(smk) -> None:
    experiment = smk.wildcards.experiment
    with logged(smk.log[0]):
        summary = pd.read_csv(smk.input.summary)
        predictions = pd.concat([pd.read_parquet(p) for p in smk.input.predictions])
        histories = {arch_fold(p): pd.read_csv(p) for p in smk.input.histories}
        lens_finding.roc_band(predictions, smk.output.roc)
        lens_finding.loss_curves(histories, smk.output.loss)
        lens_finding.metcalf_table(summary, smk.output.table)

        card = storage.read_card(Path(smk.input.card).parent)
        tags = experiment_tags(smk.config, experiment, card, stage="figures")
        with Run(smk.config["tracking"], experiment, f"figures/{experiment}", tags) as run:
            run.log_metrics({f"{r.architecture}.auroc_mean": r.auroc_mean for r in summary.itertuples()})
            for path in [smk.input.summary, smk.output.roc, smk.output.loss, smk.output.table]:
                run.log_artifact(path, "figures")


def dataset_figures(smk) -> None:
    name = smk.wildcards.dataset
    with logged(smk.log[0]):
        images = storage.load_images(smk.input.images)
        catalog = pd.read_parquet(smk.input.catalog)
        lens_finding.examples(images, catalog, smk.output.examples)
        settings = smk.config["datasets"][name].get("augmentation", {}) or {"dihedral": True, "max_shift": 2}
        first_lens = int(catalog.loc[catalog["label"] == 1, "index"].iloc[0])
        lens_finding.augmentation_examples(
            images[first_lens], settings, smk.config["seed"], smk.output.augmentation
        )
