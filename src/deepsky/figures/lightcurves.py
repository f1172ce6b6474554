"""Figures of the light-curve experiment (lecture 002: RNN, LSTM, self-attention)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepsky.figures.style import save_figure

BAND_COLOURS = {"u": "#7b2cbf", "g": "#2a9d8f", "r": "#e63946", "i": "#8d3b00", "z": "#333333"}


def describe(row: pd.Series) -> str:
    text = str(row["class_name"])
    if isinstance(row.get("subtype"), str) and not text.endswith(row["subtype"]):
        text += f" {row['subtype']}"
    if np.isfinite(row.get("period", np.nan)):
        text += f", P={row['period']:.2f} d"
    elif np.isfinite(row.get("redshift", np.nan)):
        text += f", z={row['redshift']:.2f}"
    return text


def plot_lightcurve(ax, obs: pd.DataFrame, bands, sizes=None) -> None:
    t0 = obs["time"].min()
    for band in bands:
        sel = (obs["band"] == band).to_numpy()
        if not sel.any():
            continue
        part = obs[sel]
        ax.errorbar(part["time"] - t0, part["flux"], part["flux_err"], fmt="none", ecolor=BAND_COLOURS.get(band, "k"),
                    alpha=0.35, lw=1)
        size = 14 if sizes is None else sizes[sel]
        ax.scatter(part["time"] - t0, part["flux"], s=size, color=BAND_COLOURS.get(band, "k"), label=band, zorder=3)
    ax.axhline(0, color="grey", lw=0.8)


def examples(observations: pd.DataFrame, catalog: pd.DataFrame, class_names, bands, png_path, per_class: int = 2):
    """Light curves of each class: one wide-field and one deep-field object where there are both."""
    fig, axes = plt.subplots(len(class_names), per_class, figsize=(6.0 * per_class, 2.6 * len(class_names)), squeeze=False)
    shown = {}
    for row, name in enumerate(class_names):
        members = catalog[catalog["class_name"] == name]
        # The best-detected object of each field: a supernova caught around its peak.
        members = members.sort_values("n_detections", ascending=False)
        picks = [members[members["field"] == f].head(1) for f in ("wide", "deep")]
        picks = pd.concat(picks + [members.head(per_class)]).drop_duplicates("index").head(per_class)
        for col, (_, obj) in enumerate(picks.iterrows()):
            ax = axes[row][col]
            obs = observations[observations["object"] == obj["index"]]
            plot_lightcurve(ax, obs, bands)
            ax.set_title(f"{describe(obj)} ({obj['field']}, {len(obs)} obs)", fontsize=12)
            ax.set_ylabel("flux")
            shown[int(obj["index"])] = name
        axes[row][0].legend(loc="upper right", fontsize=9, ncol=len(bands))
    for ax in axes[-1]:
        ax.set_xlabel("days since first observation")
    fig.suptitle("Simulated survey light curves: irregular sampling, seasons, weather gaps, several bands", y=1.0)
    fig.tight_layout()
    save_figure(fig, png_path)
    return shown


def comparison(table: pd.DataFrame, png_path) -> None:
    """Test accuracy and macro AUROC per model (mean and std over folds)."""
    table = table.iloc[::-1]
    labels = [f"{a}\n({int(n):,} parameters)" if np.isfinite(n) else f"{a}\n(hand-made features)"
              for a, n in zip(table["architecture"], table["n_parameters"])]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.9 * len(table) + 2), sharey=True)
    for ax, metric, title in zip(axes, ("accuracy", "auroc_macro_ovr"), ("accuracy", "macro AUROC (one vs rest)")):
        mean, std = table[f"{metric}_mean"], table[f"{metric}_std"].fillna(0)
        ax.barh(labels, mean, xerr=std, color="#457b9d", alpha=0.85, capsize=4)
        low = max(0.0, float((mean - std).min()) - 0.1)
        for y, (m, s) in enumerate(zip(mean, std)):
            ax.text(low + 0.01 * (1 - low), y, f"{m:.3f} ± {s:.3f}", va="center", fontsize=12, color="white")
        ax.set(xlim=(low, 1.0), title=title)
    fig.suptitle(f"Light-curve classification on the test set ({int(table['n_folds'].max())} folds)")
    fig.tight_layout()
    save_figure(fig, png_path)


def sequence_length(profile: pd.DataFrame, ratios: pd.DataFrame, accuracy: pd.DataFrame, png_path) -> None:
    """Lecture 002: gradients through time (left, middle) and accuracy against sequence length (right)."""
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.6))
    for arch, part in profile.groupby("architecture", sort=False):
        line, = axes[0].plot(part["steps_before_end"], part["median"], label=arch)
        axes[0].fill_between(part["steps_before_end"], part["q25"], part["q75"], color=line.get_color(), alpha=0.15)
    axes[0].set(yscale="log", xlabel="observations before the last one", ylabel="‖∂L/∂x_t‖ / ‖∂L/∂x_last‖",
                title="Gradient reaching earlier observations")
    for arch, part in ratios.groupby("architecture", sort=False):
        axes[1].errorbar(part["length_mid"], part["median"], yerr=[part["median"] - part["q25"], part["q75"] - part["median"]],
                         marker="o", capsize=3, label=arch)
    axes[1].set(yscale="log", xlabel="sequence length (observations)", ylabel="‖∂L/∂x_first‖ / ‖∂L/∂x_last‖",
                title="Gradient at the first observation")
    for arch, part in accuracy.groupby("architecture", sort=False):
        mid = (part["length_low"] + part["length_high"]) / 2
        axes[2].errorbar(mid, part["accuracy_mean"], yerr=part["accuracy_std"].fillna(0), marker="o", capsize=3, label=arch)
    axes[2].set(xlabel="sequence length (observations)", ylabel="test accuracy", title="Accuracy against length")
    for ax in axes:
        ax.legend(fontsize=10)
    fig.tight_layout()
    save_figure(fig, png_path)


def early_classification(table: pd.DataFrame, png_path) -> None:
    """RAPID's figure: accuracy (and macro AUROC) against the fraction of the light curve seen."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.4))
    for ax, metric, label in zip(axes, ("accuracy", "auroc_macro_ovr"), ("test accuracy", "macro AUROC")):
        for arch, part in table.groupby("architecture", sort=False):
            stats = part.groupby("fraction")[metric].agg(["mean", "std"]).reset_index()
            ax.errorbar(stats["fraction"], stats["mean"], yerr=stats["std"].fillna(0), marker="o", capsize=3, label=arch)
        ax.set(xlabel="fraction of the light curve's time span seen", ylabel=label, xlim=(0, 1.02))
    axes[0].legend(fontsize=10)
    fig.suptitle("Early classification: the same test light curves cut short")
    fig.tight_layout()
    save_figure(fig, png_path)


def attention_maps(examples: list[dict], bands, png_path) -> None:
    """Each panel: a test light curve; marker area is the [CLS] token's attention to that observation."""
    cols = 3
    rows = int(np.ceil(len(examples) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.4 * cols, 4.2 * rows), squeeze=False)
    for ax, example in zip(axes.ravel(), examples):
        obs, weights = example["observations"], np.asarray(example["attention"])
        sizes = 10 + 400 * weights / max(weights.max(), 1e-12)
        plot_lightcurve(ax, obs, bands, sizes=sizes)
        top = np.argsort(weights)[::-1][:3]
        t0 = obs["time"].min()
        ax.scatter(obs["time"].to_numpy()[top] - t0, obs["flux"].to_numpy()[top], s=sizes[top], facecolors="none",
                   edgecolors="k", lw=1.5, zorder=4)
        ax.set_title(f"{example['title']}\nP({example['class_name']}) = {example['probability']:.2f}", fontsize=12)
        ax.set(xlabel="days since first observation", ylabel="flux")
    for ax in axes.ravel()[len(examples):]:
        ax.axis("off")
    axes[0][0].legend(loc="upper right", fontsize=9)
    fig.suptitle("Self-attention: where the transformer's [CLS] token looks (marker area ∝ attention; black rings: top 3)")
    fig.tight_layout()
    save_figure(fig, png_path)
