"""Figures of lens-parameter regression (Hezaveh, Perreault Levasseur & Marshall 2017): the
68 % error table beside the paper's Table 1, predicted vs true (their Figure 1), calibration of
predicted uncertainties, and a reliability diagram for binary classifiers (lecture 004)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FormatStrFormatter, NullFormatter
import numpy as np
import pandas as pd

from deepsky.figures.style import save_figure
from deepsky.metrics import error_quantile, expected_calibration_error, gaussian_interval_coverage, reliability_curve

# Hezaveh+17 Table 1: 68 % errors on the test set (arcsec for theta_E, x, y), for comparison only.
HEZAVEH17_TABLE1 = pd.DataFrame(
    [[0.03, 0.04, 0.05, 0.06, 0.06],
     [0.03, 0.04, 0.04, 0.05, 0.06],
     [0.04, 0.05, 0.05, 0.06, 0.06],
     [0.03, 0.05, 0.06, 0.05, 0.05],
     [0.02, 0.04, 0.04, 0.04, 0.04]],
    index=["Network 1 (Inception)", "Network 2 (AlexNet)", "Network 3 (Overfeat)", "Network 4", "Combined Network"],
    columns=["theta_E", "epsilon_x", "epsilon_y", "x", "y"],
)

TARGET_LABELS = {
    "theta_E": r"$\theta_E$ [arcsec]",
    "epsilon_x": r"$\epsilon_x$",
    "epsilon_y": r"$\epsilon_y$",
    "x": r"$x$ [arcsec]",
    "y": r"$y$ [arcsec]",
}

OURS_COLOUR = "#e8f1fb"  # the same light blue as metcalf_table's rows
PUBLISHED_GREY = "#6b6b6b"


def target_label(name: str) -> str:
    return TARGET_LABELS.get(name, name)


def architectures(predictions: pd.DataFrame) -> list[str]:
    """In order of appearance, with the combined network last (it is built from the others)."""
    archs = list(dict.fromkeys(predictions["architecture"]))
    return [a for a in archs if a != "combined"] + [a for a in archs if a == "combined"]


def _panel_grid(n: int, width: float = 4.6, height: float = 4.4, ncols: int = 3):
    # At most three panels a row: five targets on one row would be too small on a 16:9 slide.
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.6), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def hezaveh_table(predictions: pd.DataFrame, targets: list[str], png_path) -> pd.DataFrame:
    """68 % error per architecture and target, mean ± std over folds, above Hezaveh+17's Table 1.

    Writes the numbers as CSV beside the PNG (same stem) and returns them.
    """
    records = []
    for arch in architectures(predictions):
        part = predictions[predictions["architecture"] == arch]
        for target in targets:
            per_fold = [error_quantile(f[target], f[f"{target}_pred"], 0.68) for _, f in part.groupby("fold")]
            records.append({"architecture": arch, "target": target, "err68_mean": float(np.mean(per_fold)),
                            "err68_std": float(np.std(per_fold))})
    table = pd.DataFrame.from_records(records)

    wide = table.set_index(["architecture", "target"])
    ours = [[arch, "this work (simulated)"]
            + [f"{wide.loc[(arch, t), 'err68_mean']:.3f} ± {wide.loc[(arch, t), 'err68_std']:.3f}" for t in targets]
            for arch in architectures(predictions)]
    shared = [t for t in targets if t in HEZAVEH17_TABLE1.columns]
    published = [[name, "Hezaveh+17"] + [f"{row[t]:.2f}" if t in shared else "–" for t in targets]
                 for name, row in HEZAVEH17_TABLE1.iterrows()] if shared else []
    rows = ours + published

    inches = [3.0, 2.7] + [2.0] * len(targets)  # fixed inches per column: text never spills over
    fig, ax = plt.subplots(figsize=(max(sum(inches), 10.5), 0.4 * len(rows) + 1.0))
    ax.axis("off")
    widths = [w / max(sum(inches), 10.5) for w in inches]
    cells = ax.table(cellText=rows, colLabels=["Network", "data"] + [target_label(t) for t in targets],
                     loc="center", cellLoc="center", colWidths=widths)
    cells.auto_set_font_size(False)
    cells.set_fontsize(13)
    cells.scale(1, 1.7)
    for (row, _), cell in cells.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
        elif row <= len(ours):
            cell.set_facecolor(OURS_COLOUR)
        else:
            cell.set_text_props(color=PUBLISHED_GREY)
    n_folds = predictions["fold"].nunique()
    note = "\nin grey, Hezaveh et al. 2017 Table 1 (their simulated HST images)" if published else ""
    ax.set_title(f"Lens-parameter regression: 68 % error on the test set (mean ± std over {n_folds} folds){note}",
                 fontsize=15)
    save_figure(fig, png_path)  # creates the folder
    table.to_csv(Path(png_path).with_suffix(".csv"), index=False)
    return table


def binned_quantiles(truth: np.ndarray, pred: np.ndarray, n_bins: int = 12, min_count: int = 5):
    """Bin centres and the 2.5, 16, 50, 84, 97.5 % quantiles of pred in bins of truth.

    Bins with fewer than `min_count` points get NaN: a 95 % interval from three points is noise.
    """
    edges = np.linspace(np.min(truth), np.max(truth), n_bins + 1)
    which = np.clip(np.digitize(truth, edges[1:-1]), 0, n_bins - 1)
    levels = [0.025, 0.16, 0.5, 0.84, 0.975]
    quantiles = np.full((n_bins, len(levels)), np.nan)
    for k in range(n_bins):
        inside = pred[which == k]
        if len(inside) >= min_count:
            quantiles[k] = np.quantile(inside, levels)
    return 0.5 * (edges[1:] + edges[:-1]), quantiles


def predicted_vs_true(predictions: pd.DataFrame, targets: list[str], png_path, architecture: str | None = None) -> str:
    """Hezaveh+17 Figure 1: predicted against true parameter, with 68 % and 95 % bands of the
    predictions in bins of the truth. Returns the architecture drawn."""
    archs = architectures(predictions)
    architecture = architecture or ("combined" if "combined" in archs else archs[0])
    part = predictions[predictions["architecture"] == architecture]
    fig, axes = _panel_grid(len(targets))
    for ax, target in zip(axes, targets):
        truth, pred = part[target].to_numpy(float), part[f"{target}_pred"].to_numpy(float)
        ax.scatter(truth, pred, s=6, color="grey", alpha=0.35, lw=0, label="test predictions")
        centres, q = binned_quantiles(truth, pred)
        ax.fill_between(centres, q[:, 0], q[:, 4], color="tab:blue", alpha=0.2, label="95 % of predictions")
        ax.fill_between(centres, q[:, 1], q[:, 3], color="tab:blue", alpha=0.45, label="68 % of predictions")
        low, high = min(truth.min(), pred.min()), max(truth.max(), pred.max())
        low, high = low - 0.03 * (high - low), high + 0.03 * (high - low)
        ax.plot([low, high], [low, high], color="black", lw=1.3, ls="--", label="predicted = true")
        ax.set(xlabel=f"true {target_label(target)}", ylabel=f"predicted {target_label(target)}",
               xlim=(low, high), ylim=(low, high))
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"68 % error {error_quantile(truth, pred):.3f}", fontsize=14)
    axes[0].legend(loc="upper left", fontsize=10, markerscale=2)
    fig.suptitle(f"Predicted vs true lens parameters: {architecture} "
                 f"({part['fold'].nunique()} folds, {len(part)} test predictions)")
    fig.tight_layout()
    save_figure(fig, png_path)
    return architecture


def _sigma_targets(part: pd.DataFrame, targets: list[str]) -> list[str]:
    # One table holds all architectures, so a sigma column can exist but be empty for some.
    return [t for t in targets if f"{t}_sigma" in part and part[f"{t}_sigma"].notna().all()]


def coverage_curve(truth, mean, sigma, levels) -> np.ndarray:
    """Observed fraction of truths inside mean ± z(level) sigma, for each nominal level."""
    return np.array([gaussian_interval_coverage(truth, mean, sigma, level) for level in levels])


def uncertainty_calibration(predictions: pd.DataFrame, targets: list[str], png_path) -> pd.DataFrame:
    """Coverage of the predicted Gaussian intervals against their nominal level, one panel per
    architecture that predicts sigma, one line per target. On the diagonal, the sigmas mean what
    they say; below it, the network is over-confident. Returns coverage68/95 per (arch, target)."""
    levels = np.linspace(0.05, 0.99, 48)
    with_sigma = [(a, ts) for a in architectures(predictions)
                  if (ts := _sigma_targets(predictions[predictions["architecture"] == a], targets))]
    records = []
    if not with_sigma:
        fig, ax = plt.subplots(figsize=(7.5, 4))
        ax.axis("off")
        ax.text(0.5, 0.5, "No architecture predicts an uncertainty\n(no *_sigma columns): nothing to calibrate.",
                ha="center", va="center", fontsize=16, transform=ax.transAxes)
        save_figure(fig, png_path)
        return pd.DataFrame(columns=["architecture", "target", "coverage68", "coverage95"])
    fig, axes = _panel_grid(len(with_sigma), width=5.6, height=5.4)
    for ax, (arch, arch_targets) in zip(axes, with_sigma):
        part = predictions[predictions["architecture"] == arch]
        ax.plot([0, 1], [0, 1], color="black", lw=1.2, ls="--")
        for target in arch_targets:
            args = part[target], part[f"{target}_pred"], part[f"{target}_sigma"]
            c68, c95 = coverage_curve(*args, [0.68, 0.95])
            line, = ax.plot(levels, coverage_curve(*args, levels),
                            label=f"{target_label(target).split(' [')[0]}: {c68:.2f} / {c95:.2f}")
            ax.plot([0.68, 0.95], [c68, c95], "o", ms=7, color=line.get_color())
            records.append({"architecture": arch, "target": target, "coverage68": float(c68), "coverage95": float(c95)})
        for level in (0.68, 0.95):
            ax.axvline(level, color="grey", lw=0.8, ls=":")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="nominal level of mean ± z σ", ylabel="fraction of truths inside",
               title=arch)
        ax.set_aspect("equal")
        ax.legend(loc="upper left", fontsize=10, title="coverage at 68 % / 95 %", title_fontsize=10)
    fig.suptitle(f"Are the predicted σ calibrated? (test set, {predictions['fold'].nunique()} folds pooled)")
    fig.tight_layout()
    save_figure(fig, png_path)
    return pd.DataFrame.from_records(records)


def reliability_diagram(predictions: pd.DataFrame, png_path, n_bins: int = 10) -> dict:
    """Fraction of positives against mean sigmoid score in uniform bins (folds pooled), with the
    score histogram underneath: is the sigmoid output of a cross-entropy network a probability?
    Returns the expected calibration error per architecture."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1.2]})
    top.plot([0, 1], [0, 1], color="grey", ls="--", lw=1.2, label="perfectly calibrated")
    eces = {}
    for arch in architectures(predictions):
        part = predictions[predictions["architecture"] == arch]
        mean_predicted, fraction_positive, _ = reliability_curve(part["label"], part["score"], n_bins)
        eces[arch] = expected_calibration_error(part["label"], part["score"], n_bins)
        line, = top.plot(mean_predicted, fraction_positive, "o-", ms=6, label=f"{arch}  ECE {eces[arch]:.3f}")
        bottom.hist(part["score"], bins=np.linspace(0, 1, n_bins + 1), histtype="step", lw=2, color=line.get_color())
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="fraction of positives",
            title=f"Reliability of the sigmoid score\n(test set, {n_bins} bins, {predictions['fold'].nunique()} folds pooled)")
    top.legend(loc="upper left")
    # Scores of a trained classifier pile up near 0 and 1; a log axis keeps the middle bins visible.
    bottom.set_yscale("log")
    bottom.set_ylim(bottom=0.8)  # whole decades from 1 up, so the axis always has labelled ticks
    bottom.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    bottom.yaxis.set_minor_formatter(NullFormatter())
    bottom.set(xlabel="predicted score P(class 1)", ylabel="count")
    save_figure(fig, png_path)
    return eces


def lens_parameter_examples(images: np.ndarray, catalog: pd.DataFrame, png_path, per_row: int = 6, rows: int = 3) -> None:
    """Lenses of the regression set ordered by Einstein radius, each titled with its targets."""
    from deepsky.figures.images import image_grid

    n = min(per_row * rows, len(catalog))
    picks = catalog.iloc[np.linspace(0, len(catalog) - 1, n).astype(int)] if n else catalog
    picks = catalog.loc[catalog["index"].isin(picks["index"])].sort_values("theta_E")
    titles = [f"θE {r.theta_E:.2f}″\nε ({r.epsilon_x:+.2f}, {r.epsilon_y:+.2f})" for r in picks.itertuples()]
    fig, axes = plt.subplots(rows, per_row, figsize=(2.2 * per_row, 2.6 * rows))
    image_grid(axes, [images[i] for i in picks["index"]], titles)
    fig.suptitle("Lenses to measure: Einstein radius and complex ellipticity of the lens mass (lens light removed)")
    save_figure(fig, png_path)
