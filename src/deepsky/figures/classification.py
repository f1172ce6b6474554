"""Figures of multi-class experiments (galaxy morphology): confusion matrices and one-vs-rest ROC."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepsky.figures.style import save_figure


def probability_columns(predictions: pd.DataFrame, class_names: list[str]) -> np.ndarray:
    return predictions[[f"p_{name}" for name in class_names]].to_numpy()


def confusion_matrices(predictions: pd.DataFrame, class_names: list[str], png_path) -> dict:
    """Counts (summed over folds) and row-normalised matrices, one panel per architecture."""
    from sklearn.metrics import confusion_matrix  # lazy: figure jobs that do not need scikit-learn skip its import
    archs = list(dict.fromkeys(predictions["architecture"]))
    fig, axes = plt.subplots(2, len(archs), figsize=(4.6 * len(archs), 8.6), squeeze=False)
    out = {}
    for col, arch in enumerate(archs):
        part = predictions[predictions["architecture"] == arch]
        counts = confusion_matrix(part["label"], part["predicted"], labels=range(len(class_names)))
        normalised = counts / counts.sum(axis=1, keepdims=True).clip(min=1)
        out[arch] = counts.tolist()
        for row, (matrix, fmt) in enumerate([(counts, "d"), (normalised, ".2f")]):
            ax = axes[row][col]
            ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
            for i in range(len(class_names)):
                for j in range(len(class_names)):
                    ax.text(j, i, format(matrix[i, j], fmt), ha="center", va="center", fontsize=14,
                            color="white" if normalised[i, j] > 0.6 else "black")
            ax.set_xticks(range(len(class_names)), class_names, rotation=30)
            ax.set_yticks(range(len(class_names)), class_names)
            ax.grid(False)
            ax.set_xlabel("predicted")
            if col == 0:
                ax.set_ylabel("true")
        accuracy = np.trace(counts) / counts.sum()
        axes[0][col].set_title(f"{arch}\naccuracy {accuracy:.3f}")
    fig.suptitle("Confusion matrix on the test set (counts summed over folds; below, normalised by true class)")
    save_figure(fig, png_path)
    return out


def one_vs_rest_roc(predictions: pd.DataFrame, class_names: list[str], png_path) -> dict:
    """One panel per architecture, one ROC per class (one vs rest), mean over folds with a band."""
    from sklearn.metrics import roc_auc_score, roc_curve  # lazy: figure jobs that do not need scikit-learn skip its import
    grid = np.linspace(0, 1, 201)
    archs = list(dict.fromkeys(predictions["architecture"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(5.6 * len(archs), 5.2), squeeze=False)
    out = {}
    for ax, arch in zip(axes[0], archs):
        part = predictions[predictions["architecture"] == arch]
        for k, name in enumerate(class_names):
            curves, aucs = [], []
            for _, fold in part.groupby("fold"):
                truth = fold["label"].to_numpy() == k
                fpr, tpr, _ = roc_curve(truth, fold[f"p_{name}"])
                curves.append(np.interp(grid, fpr, tpr))
                aucs.append(roc_auc_score(truth, fold[f"p_{name}"]))
            mean, std = np.mean(curves, 0), np.std(curves, 0)
            line, = ax.plot(grid, mean, label=f"{name} (AUROC {np.mean(aucs):.3f})")
            ax.fill_between(grid, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color=line.get_color(), alpha=0.2)
            out[f"{arch}/{name}"] = float(np.mean(aucs))
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set(title=arch, xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower right", fontsize=11)
    fig.suptitle("One-vs-rest ROC per class (mean over folds, band ±1σ)")
    save_figure(fig, png_path)
    return out
