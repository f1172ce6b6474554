"""Stages after evaluation: the K-fold summary table and the experiment's figures."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from deepsky.data import storage
from deepsky.figures import classification, lens_finding, regression
from deepsky.stages.common import experiment_tags, logged
from deepsky.tracking import Run

SUMMARY_METRICS = ("accuracy", "auroc", "tpr0", "tpr10", "auroc_macro_ovr", "coverage68_mean", "coverage95_mean")
# Per-target regression metrics (deepsky.tasks.regression): <target><suffix>.
SUMMARY_SUFFIXES = ("_err68", "_rmse", "_r2", "_bias", "_coverage68", "_coverage95", "_rel_error", "_chi2")
REGRESSION_FIGURES = {
    "hezaveh_table": regression.hezaveh_table,
    "predicted_vs_true": regression.predicted_vs_true,
    "uncertainty_calibration": regression.uncertainty_calibration,
}
FOLD_DIR = re.compile(r"/(?P<arch>[^/]+)/fold(?P<fold>\d+)/[^/]+$")


def arch_fold(path) -> tuple[str, int]:
    match = FOLD_DIR.search(str(path))
    return match["arch"], int(match["fold"])


def summarize(metric_files, history_files, summary_metrics=()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-fold rows and the mean and std over folds of the task's summary metrics (plus the
    generic classification and regression ones found in the metrics files) per architecture."""
    rows = []
    histories = {arch_fold(p): pd.read_csv(p) for p in history_files}
    for metrics in (m for path in metric_files for m in json.loads(Path(path).read_text())):
        # The combined network of a regression experiment has no training history of its own.
        history = histories.get((metrics["architecture"], metrics["fold"]))
        rows.append(
            {
                **{k: v for k, v in metrics.items() if k not in ("confusion", "train_run_id")},
                "epochs_run": len(history) if history is not None else 0,
                "train_seconds": float(history["epoch_seconds"].sum()) if history is not None else 0.0,
                "train_images_per_second": float(history["images_per_second"].median()) if history is not None else float("nan"),
            }
        )
    per_fold = pd.DataFrame(rows)
    order = list(dict.fromkeys(per_fold["architecture"]))
    per_fold = per_fold.sort_values(["architecture", "fold"])
    wanted = [m for m in summary_metrics if m in per_fold]
    present = wanted + [m for m in per_fold if m not in wanted and (m in SUMMARY_METRICS or m.endswith(SUMMARY_SUFFIXES))]
    grouped = per_fold.groupby("architecture", sort=False)
    summary = grouped[present + ["train_seconds", "train_images_per_second"]].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary.insert(0, "n_folds", grouped.size())
    return per_fold, summary.reindex(order).reset_index()


def summary_main(smk) -> None:
    with logged(smk.log[0]):
        from deepsky.config import task_spec
        from deepsky.tasks import make_task

        task = make_task(task_spec(smk.config["experiments"][smk.wildcards.experiment], smk.config["datasets"]))
        per_fold, summary = summarize(smk.input.metrics, smk.input.histories, tuple(task.summary_metrics))
        per_fold.to_csv(smk.output.per_fold, index=False)
        summary.to_csv(smk.output.summary, index=False, float_format="%.4f")
        print(summary.to_string())


def figure_main(smk) -> None:
    """Draw one experiment figure (smk.params.figure) and log it to the experiment's MLflow run."""
    experiment, name = smk.wildcards.experiment, smk.params.figure
    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        png = smk.output[0]
        if name == "loss_curves":
            lens_finding.loss_curves({arch_fold(p): pd.read_csv(p) for p in smk.input.histories}, png)
        elif name == "metcalf_table":
            lens_finding.metcalf_table(pd.read_csv(smk.input.summary), png)
        else:
            predictions = pd.concat([pd.read_parquet(p) for p in smk.input.predictions])
            if name == "roc_band":
                lens_finding.roc_band(predictions, png)
            elif name == "confusion_matrices":
                classification.confusion_matrices(predictions, card["class_names"], png)
            elif name == "one_vs_rest_roc":
                classification.one_vs_rest_roc(predictions, card["class_names"], png)
            elif name == "reliability_diagram":
                regression.reliability_diagram(predictions, png)
            elif name in REGRESSION_FIGURES:
                targets = list(smk.config["experiments"][experiment]["targets"])
                REGRESSION_FIGURES[name](predictions, targets, png)
            else:
                raise ValueError(f"unknown experiment figure '{name}'")
        log_figure(smk.config, experiment, card, png)


def log_figure(config: dict, experiment: str, card: dict, png) -> None:
    stem = Path(png).stem
    tags = experiment_tags(config, experiment, card, stage="figure", figure=stem)
    with Run(config["tracking"], experiment, f"figure/{experiment}/{stem}", tags) as run:
        run.log_artifact(png, "figures")
        run.log_artifact(Path(png).with_suffix(".pdf"), "figures")


EXAMPLE_TITLES = {
    "002-lens-nonlens-examples": "LENS (top row) and NON-LENS contaminants",
    "003-class-examples": "Examples of each class",
}


def example_grid(smk) -> None:
    with logged(smk.log[0]):
        stem = Path(smk.output[0]).stem
        images = storage.load_images(smk.input.images)
        catalog = pd.read_parquet(smk.input.catalog)
        if stem == "004-hezaveh17-examples":
            regression.lens_parameter_examples(images, catalog, smk.output[0])
        else:
            lens_finding.examples(images, catalog, smk.output[0], EXAMPLE_TITLES[stem])


def augmentation_figure(smk) -> None:
    name = smk.wildcards.dataset
    with logged(smk.log[0]):
        images = storage.load_images(smk.input.images)
        catalog = pd.read_parquet(smk.input.catalog)
        settings = smk.config["datasets"][name]["augmentation"]
        # A lens (label 1) shows the symmetry best; any image does for other datasets.
        index = int(catalog.loc[catalog["label"] == catalog["label"].max(), "index"].iloc[0])
        lens_finding.augmentation_examples(images[index], settings, smk.config["seed"], smk.output[0])


def member_labels(experiment: dict) -> dict[str, str]:
    from deepsky.config import experiment_members

    variants = experiment.get("variants", {})
    return {m: variants.get(m, {}).get("label", m) for m in experiment_members(experiment)}


def member_parameters(experiment: dict, members, in_channels: int, num_outputs: int, image_size: int) -> dict[str, int]:
    from deepsky.config import resolve_member
    from deepsky.models import count_parameters, create_model

    counts = {}
    for member in members:
        arch, kwargs, _ = resolve_member(experiment, member)
        counts[member] = count_parameters(create_model(arch, in_channels, num_outputs, image_size=image_size, **kwargs))
    return counts


def practice_figure(smk) -> None:
    """A training-practice comparison figure from the histories and summary of an experiment."""
    from deepsky.config import figure_specs, resolve_member
    from deepsky.figures.practice import PRACTICE_FIGURES

    experiment, stem = smk.wildcards.experiment, smk.wildcards.stem
    exp = smk.config["experiments"][experiment]
    members = figure_specs(exp)[stem]
    with logged(smk.log[0]):
        card = storage.read_card(Path(smk.input.card).parent)
        summary = pd.read_csv(smk.input.summary)
        summary = summary[summary["architecture"].isin(members)].set_index("architecture").loc[members].reset_index()
        labels = {m: label for m, label in member_labels(exp).items() if m in members}
        histories = {key: h for key, h in ((arch_fold(p), p) for p in smk.input.histories) if key[0] in members}
        params = {}
        if stem == "001-architecture-accuracy":
            outputs = 1 if len(card["class_names"]) == 2 else len(card["class_names"])
            params = member_parameters(exp, members, card["image_shape"][0], outputs, card["image_shape"][-1])
            summary.assign(n_parameters=summary["architecture"].map(params)).to_csv(
                Path(smk.output[0]).with_suffix(".csv"), index=False
            )
        PRACTICE_FIGURES[stem](
            smk.output[0],
            histories={key: pd.read_csv(path) for key, path in histories.items()},
            labels=labels,
            summary=summary,
            params=params,
            batch_sizes={m: resolve_member(exp, m)[2]["batch_size"] for m in labels},
        )
        log_figure(smk.config, experiment, card, smk.output[0])


def concept_figure(smk) -> None:
    """A worked example of a lecture slide, computed with torch; its numbers go beside it."""
    from deepsky.figures.concepts import make_figure

    stem = smk.wildcards.stem
    with logged(smk.log[0]):
        numbers = make_figure(stem, smk.output.figure)
        storage.write_json(smk.output.numbers, numbers)
        tags = {"stage": "figure", "figure": stem, "workflow_run": os.environ.get("DEEPSKY_WORKFLOW_RUN", "manual")}
        with Run(smk.config["tracking"], "concepts", f"figure/concepts/{stem}", tags) as run:
            run.log_artifact(smk.output.figure, "figures")
            run.log_artifact(Path(smk.output.figure).with_suffix(".pdf"), "figures")
            run.log_artifact(smk.output.numbers, "figures")
