"""Figures of classification experiments (lens finding first): ROC band across folds, loss
curves, example grids, augmentation, and the Metcalf+19-style results table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from deepsky.data.augment import augment_one
from deepsky.figures.images import image_grid
from deepsky.figures.style import save_figure


# Lecture 002, "1. Classification", Metcalf+19 ground-based entries, for comparison only.
METCALF19_GROUND = [
    ("CMU-DeepLens-Resnet-ground3", 0.98, 0.09, 0.45),
    ("LASTRO EPFL", 0.97, 0.07, 0.11),
    ("CAS Swinburne Melb", 0.96, 0.02, 0.08),
    ("Manchester SVM", 0.93, 0.22, 0.35),
    ("YattaLensLite", 0.82, 0.00, 0.00),
]


def roc_band(predictions: pd.DataFrame, png_path) -> dict:
    """Mean ROC per architecture with a +-1 sigma band across folds (TPR interpolated on a grid)."""
    from sklearn.metrics import roc_auc_score  # lazy: figure jobs that do not need scikit-learn skip its import

    from deepsky.metrics import roc_points
    grid = np.linspace(0, 1, 201)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    summary = {}
    for arch, by_arch in predictions.groupby("architecture", sort=False):
        curves = []
        for _, part in by_arch.groupby("fold"):
            fpr, tpr = roc_points(part["label"], part["score"])
            curves.append(np.interp(grid, fpr, tpr))
        curves = np.array(curves)
        mean, std = curves.mean(0), curves.std(0)
        aucs = [roc_auc_score(p["label"], p["score"]) for _, p in by_arch.groupby("fold")]
        label = f"{arch}  AUROC {np.mean(aucs):.3f} ± {np.std(aucs):.3f}"
        line, = ax.plot(grid, mean, label=label)
        ax.fill_between(grid, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=line.get_color(), alpha=0.2)
        summary[arch] = float(np.mean(aucs))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title=f"ROC on the test set ({predictions['fold'].nunique()} folds)")
    ax.legend(loc="lower right")
    save_figure(fig, png_path)
    return summary


def loss_curves(histories: dict[tuple[str, int], pd.DataFrame], png_path) -> None:
    """Training and validation loss per epoch; one panel per architecture, one line per fold."""
    archs = list(dict.fromkeys(arch for arch, _ in histories))
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4.8), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], archs):
        for (a, fold), history in histories.items():
            if a != arch:
                continue
            first = fold == min(f for b, f in histories if b == arch)
            ax.plot(history["epoch"], history["train_loss"], color="tab:blue", alpha=0.7,
                    label="training" if first else None)
            ax.plot(history["epoch"], history["val_loss"], color="tab:orange", alpha=0.9,
                    label="validation" if first else None)
        ax.set(title=arch, xlabel="epoch")
        ax.legend()
    axes[0][0].set_ylabel("cross-entropy loss")
    fig.suptitle("Training vs validation loss (each line a fold)")
    save_figure(fig, png_path)


def examples(images: np.ndarray, catalog: pd.DataFrame, png_path, title: str, per_row: int = 6) -> None:
    """One row per kind of object (lens first, then each contaminant) or per class."""
    column = "kind" if "kind" in catalog else "class_name"
    kinds = list(dict.fromkeys(catalog[column]))
    if "lens" in kinds:
        kinds = ["lens"] + sorted(k for k in kinds if k != "lens")
    fig, axes = plt.subplots(len(kinds), per_row, figsize=(1.9 * per_row, 2.0 * len(kinds)))
    axes = np.atleast_2d(axes)
    for row, kind in zip(axes, kinds):
        picks = catalog.loc[catalog[column] == kind, "index"].to_numpy()[:per_row]
        image_grid(row, [images[i] for i in picks])
        row[0].text(-0.1, 0.5, str(kind).replace("_", " "), transform=row[0].transAxes, rotation=90,
                    ha="right", va="center", fontsize=13)
    fig.suptitle(title)
    save_figure(fig, png_path)


def augmentation_examples(image: np.ndarray, settings: dict, seed: int, png_path, n: int = 11) -> None:
    """One training image and n augmented versions (rotations/flips of the square, shifts, noise)."""
    rng = np.random.default_rng(seed)
    versions, titles = [image], ["original"]
    for _ in range(n):
        out, info = augment_one(image, rng, settings)
        versions.append(out)
        titles.append(f"D4 #{info['dihedral']}, shift ({info['dy']},{info['dx']})")
    cols = 6
    fig, axes = plt.subplots(int(np.ceil(len(versions) / cols)), cols, figsize=(2.3 * cols, 2.5 * np.ceil(len(versions) / cols)))
    image_grid(axes, versions, titles)
    fig.suptitle("Data augmentation: the label does not change under the symmetries of the sky")
    save_figure(fig, png_path)


def metcalf_table(summary: pd.DataFrame, png_path) -> None:
    """Our architectures (mean ± std over folds) beside the lecture's Metcalf+19 ground-based rows."""
    rows = [
        [r.architecture, "this work (simulated)", f"{r.auroc_mean:.3f} ± {r.auroc_std:.3f}",
         f"{r.tpr0_mean:.2f} ± {r.tpr0_std:.2f}", f"{r.tpr10_mean:.2f} ± {r.tpr10_std:.2f}"]
        for r in summary.itertuples()
    ]
    rows += [[name, "Metcalf+19 ground", f"{a:.2f}", f"{t0:.2f}", f"{t10:.2f}"] for name, a, t0, t10 in METCALF19_GROUND]
    fig, ax = plt.subplots(figsize=(14, 0.5 * len(rows) + 1.2))
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["Name", "data", "AUROC", "TPR₀", "TPR₁₀"], loc="center",
                     cellLoc="center", colWidths=[0.33, 0.24, 0.17, 0.13, 0.13])
    table.auto_set_font_size(False)
    table.set_fontsize(13)
    table.scale(1, 1.6)
    for (row, _), cell in table.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
        elif row <= len(summary):
            cell.set_facecolor("#e8f1fb")
    ax.set_title("Lens finding: test-set metrics across folds (Metcalf+19 challenge format)", fontsize=15)
    save_figure(fig, png_path)
