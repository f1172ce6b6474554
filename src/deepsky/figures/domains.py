"""Figures of the domain-shift experiments (lecture 002, "Dealing with a lack of labelled data"):
target score against the number of target labels, the latent space of both domains (t-SNE), and
the table of how much of the source -> target drop each remedy recovers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepsky.figures.style import save_figure

METRIC_LABELS = {"auroc": "AUROC", "accuracy": "accuracy"}
METHOD_STYLE = {"frozen": ("frozen features + new head", "tab:blue", "o"),
                "finetune": ("fine-tuned from the source model", "tab:green", "s"),
                "scratch": ("trained from scratch", "tab:grey", "^")}


def transfer_curves(sweep: pd.DataFrame, references: dict, adaptation: dict, labels: dict, source: str, target: str,
                    png_path) -> None:
    """Target-domain score against N labelled target images, mean and std over folds per method,
    with the no-adaptation and target-trained (oracle) members as horizontal bands."""
    metric = "auroc" if "auroc_target" in sweep else "accuracy"
    column = f"{metric}_target"
    fig, ax = plt.subplots(figsize=(13, 6))
    for method, part in sweep.groupby("method", sort=False):
        stats = part.groupby("n_labels")[column].agg(["mean", "std"]).fillna(0.0)
        label, colour, marker = METHOD_STYLE[method]
        ax.errorbar(stats.index, stats["mean"], yerr=stats["std"], label=label, color=colour, marker=marker, capsize=4)
    for role, style in (("baseline", ":"), ("oracle", "--")):
        member = adaptation.get(role)
        if member in references:
            values = references[member][column]
            ax.axhline(values.mean(), color="black", ls=style, lw=1.5,
                       label=f"{labels[member]}: {values.mean():.3f} ± {values.std():.3f}")
    baseline = references[adaptation["baseline"]][f"{metric}_source"]
    ax.axhline(baseline.mean(), color="tab:red", ls="-.", lw=1.2, label=f"{labels[adaptation['baseline']]}, on {source}")
    counts = sorted(sweep["n_labels"].unique())
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xticks(counts, [str(n) for n in counts])
    ax.set_xlim(-0.5, 1.4 * max(counts))
    ax.set(xlabel=f"labelled {target} images used (N)", ylabel=f"{METRIC_LABELS[metric]} on {target} test set",
           title=f"Transfer learning {source} → {target} ({sweep['fold'].nunique()} folds)")
    ax.legend(fontsize=11, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_figure(fig, png_path)


def latent_space(panels: dict, mmd: dict, source: str, target: str, seed: int, png_path) -> None:
    """t-SNE of the latent features of both test sets, one panel per network (lecture 002's
    "before training / noDA" picture of DeepMerge II): aligned domains overlap."""
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.8), squeeze=False)
    for ax, (name, (features, truth)) in zip(axes[0], panels.items()):
        perplexity = min(30.0, (len(features) - 1) / 3)
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed % (2**31)).fit_transform(features)
        for role, dataset, colour in (("source", source, "tab:blue"), ("target", target, "tab:orange")):
            for label, marker in ((0, "o"), (1, "x")):
                keep = (truth["role"].to_numpy() == role) & (truth["label"].to_numpy() == label)
                ax.scatter(xy[keep, 0], xy[keep, 1], s=14, c=colour, marker=marker, alpha=0.7,
                           label=f"{dataset}, class {label}" if name == next(iter(panels)) else None)
            if truth["label"].max() > 1:  # more classes: one marker for the rest
                keep = (truth["role"].to_numpy() == role) & (truth["label"].to_numpy() > 1)
                ax.scatter(xy[keep, 0], xy[keep, 1], s=14, c=colour, marker="^", alpha=0.7)
        ax.set(xticks=[], yticks=[])
        ax.set_title(f"{name}\nfeature MMD² {mmd[name]:.3f}", fontsize=13)
        ax.grid(False)
    fig.legend(loc="lower center", ncol=4, fontsize=11, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"Latent space (t-SNE) of the {source} and {target} test sets", y=1.1)
    save_figure(fig, png_path)


def gap_table_figure(table: pd.DataFrame, source: str, target: str, png_path) -> None:
    """The domain-gap table: each remedy's score on both test sets and the drop it recovers."""
    name = METRIC_LABELS[table["metric"].iloc[0]]
    cells = [[r.remedy, r.target_data, f"{r.source_mean:.3f} ± {r.source_std:.3f}",
              f"{r.target_mean:.3f} ± {r.target_std:.3f}", f"{r.drop:+.3f}",
              "-" if not np.isfinite(r.recovered) else f"{100 * r.recovered:.0f} %"] for r in table.itertuples()]
    fig, ax = plt.subplots(figsize=(15, 0.42 * len(cells) + 0.9))
    ax.axis("off")
    grid = ax.table(cellText=cells, loc="center", cellLoc="center", colWidths=[0.3, 0.17, 0.14, 0.14, 0.11, 0.11],
                    colLabels=["remedy", "target data used", f"{name}, source", f"{name}, target", "drop left",
                               "recovered"])
    grid.auto_set_font_size(False)
    grid.set_fontsize(12)
    grid.scale(1, 1.5)
    for (row, _), cell in grid.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
    ax.set_title(f"Domain shift: source {source} → target {target}\ntest-set {name}, mean ± std over folds", fontsize=15)
    save_figure(fig, png_path)
