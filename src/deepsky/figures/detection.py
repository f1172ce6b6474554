"""Figures of the Mask R-CNN experiment (lecture 002; He+2017, Burke+2019): detections on test
fields, precision-recall curves per class, completeness and purity against blend separation."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from deepsky.figures.style import apply_style, save_figure

CLASS_COLOURS = {1: "#f4d03f", 2: "#5dade2"}  # star yellow, galaxy blue
CLASS_LABELS = {1: "star", 2: "galaxy"}


def _outline(ax, table: pd.DataFrame, masks: list[np.ndarray]) -> None:
    for (_, row), mask in zip(table.iterrows(), masks):
        colour = CLASS_COLOURS[int(row["class"])]
        ax.add_patch(Rectangle((row["x0"] - 0.5, row["y0"] - 0.5), row["x1"] - row["x0"], row["y1"] - row["y0"],
                               fill=False, lw=1.2, ec=colour))
        if mask.any():
            ax.contour(mask.astype(float), levels=[0.5], colors=[colour], linewidths=0.7)


def detections_figure(images: np.ndarray, table: pd.DataFrame, png, n_fields: int = 4) -> None:
    """Top: test fields with the true masks and boxes; bottom: the detections (score >= threshold)."""
    from deepsky.tasks.detection import rle_decode

    apply_style()
    fields = sorted(table["index"].unique())[:n_fields]
    fig, axes = plt.subplots(2, len(fields), figsize=(3.4 * len(fields), 8.2), squeeze=False, layout="constrained")
    for col, field in enumerate(fields):
        rows = table[table["index"] == field]
        image = images[col]
        band = image[min(1, len(image) - 1)]
        lo, hi = np.percentile(band, [1, 99.5])
        for r, (kind, title) in enumerate((("truth", "truth"), ("detection", "Mask R-CNN"))):
            part = rows[(rows["kind"] == kind) & rows["counted"]]
            ax = axes[r, col]
            ax.imshow(np.arcsinh((band - lo) / max(hi - lo, 1e-6) * 10), cmap="gray", origin="lower")
            _outline(ax, part, [rle_decode(c, h, w) for c, h, w in zip(part["mask_rle"], part["height"], part["width"])])
            n = {c: int((part["class"] == c).sum()) for c in (1, 2)}
            ax.set_title(f"{title}: {n[1]} stars, {n[2]} galaxies", fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
    handles = [Rectangle((0, 0), 1, 1, fill=False, ec=c, label=CLASS_LABELS[k]) for k, c in CLASS_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle("Mask R-CNN on simulated DECam-like fields (test set)")
    save_figure(fig, png)
    plt.close(fig)


def precision_recall_figure(table: pd.DataFrame, png) -> None:
    """COCOeval's interpolated precision against recall at IoU 0.5, per class, boxes and masks."""
    from deepsky.tasks.detection import mean_average_precision

    apply_style()
    result = mean_average_precision(table, extended=True)
    classes = result["classes"].reshape(-1).tolist()
    recall = np.linspace(0, 1, 101)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
    for ax, iou in zip(axes, ("bbox", "segm")):
        precision = result[f"{iou}_precision"][0, :, :, 0, -1].numpy()  # IoU 0.5, all areas, 100 detections
        for k, c in enumerate(classes):
            p = precision[:, k]
            valid = p > -1
            ap = p[valid].mean() if valid.any() else np.nan
            ax.plot(recall[valid], p[valid], color=CLASS_COLOURS[int(c)], lw=2.2, label=f"{CLASS_LABELS[int(c)]} (AP50 {ap:.2f})")
        ax.set_xlabel("recall")
        ax.set_title("boxes" if iou == "bbox" else "masks")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.legend(loc="lower left")
    axes[0].set_ylabel("precision")
    fig.suptitle("Precision-recall at IoU 0.5 per class (COCOeval)")
    fig.tight_layout()
    save_figure(fig, png)
    plt.close(fig)


def completeness_figure(table: pd.DataFrame, png) -> None:
    """Completeness (true objects) and purity (detections) against the true nearest-neighbour distance."""
    from deepsky.tasks.detection import by_separation

    apply_style()
    bins = by_separation(table)
    centres = [f"{lo:.0f}-{hi:.0f}" if np.isfinite(hi) else f">{lo:.0f}" for lo, hi in zip(bins["lo"], bins["hi"])]
    fig, ax = plt.subplots(figsize=(8, 5))
    x = np.arange(len(bins))
    ax.plot(x, bins["completeness"], "o-", lw=2.2, label="completeness (matched true objects)")
    ax.plot(x, bins["purity"], "s--", lw=2.2, label="purity (matched detections)")
    for k, row in bins.iterrows():
        ax.annotate(f"n={int(row['n_truth'])}", (x[k], 1.0), ha="center", fontsize=10, color="0.35")
    ax.set_xticks(x, centres)
    ax.set_xlabel("distance to the nearest true neighbour (pixels)")
    ax.set_ylabel("fraction at mask IoU >= 0.5")
    ax.set_ylim(0, 1.08)
    ax.set_title("Blends: detection gets harder as neighbours get closer (numbers: true objects)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    save_figure(fig, png)
    plt.close(fig)
