"""Figures of the deblending and segmentation U-Nets (lecture 002: "Encoding-decoding to extract
image features: the U-Net")."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from deepsky.figures.style import save_figure  # noqa: E402

SEGMENT_COLOURS = matplotlib.colors.ListedColormap(["#000000", "#e69f00", "#56b4e9"])


def pick_examples(separation: np.ndarray, n: int) -> np.ndarray:
    """Positions of n test blends spread over the separation range (closest to its quantiles)."""
    targets = np.quantile(separation, np.linspace(0.05, 0.95, n))
    return np.array([int(np.argmin(np.abs(separation - t))) for t in targets])


def _show(ax, image, title=None, cmap="gray_r", vmin=None, vmax=None):
    ax.imshow(image, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def deblending_examples(blends, truth, mean, sigma, separation, out_png) -> None:
    """Rows of blend, true central, U-Net output, residual and predicted sigma (reference band, nJy)."""
    n = len(blends)
    fig, axes = plt.subplots(n, 5, figsize=(12.5, 2.6 * n), squeeze=False)
    for k in range(n):
        top = float(np.percentile(blends[k], 99.5))
        stretch = dict(vmin=-0.05 * top, vmax=top)
        residual = mean[k] - truth[k]
        r = float(np.abs(residual).max()) or 1.0
        titles = ("blend", "true central", "U-Net deblended", "residual", "predicted sigma") if k == 0 else (None,) * 5
        _show(axes[k, 0], blends[k], titles[0], **stretch)
        _show(axes[k, 1], truth[k], titles[1], **stretch)
        _show(axes[k, 2], mean[k], titles[2], **stretch)
        _show(axes[k, 3], residual, titles[3], cmap="RdBu_r", vmin=-r, vmax=r)
        _show(axes[k, 4], sigma[k], titles[4], cmap="viridis")
        axes[k, 0].set_ylabel(f'sep {separation[k]:.1f}"')
    fig.suptitle("U-Net deblending of artificial blends (i band)")
    save_figure(fig, out_png)


def _binned(x, r, edges):
    centres, median, low, high = [], [], [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        keep = (x >= lo) & (x < hi) & np.isfinite(r)
        if keep.sum() < 5:
            continue
        p16, p50, p84 = np.percentile(r[keep], [16, 50, 84])
        centres.append(0.5 * (lo + hi))
        median.append(p50)
        low.append(p16)
        high.append(p84)
    return np.array(centres), np.array(median), np.array(low), np.array(high)


def flux_error(table: pd.DataFrame, out_png) -> None:
    """Relative flux error (median and 16-84 % band) of the U-Net and the SEP baseline against
    separation and against flux ratio."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    truth = table["true_flux"].to_numpy()
    for column, label, colour in (("flux_unet", "U-Net", "C0"), ("flux_baseline", "SEP (SExtractor) baseline", "C3")):
        r = (table[column].to_numpy() - truth) / truth
        for ax, x, edges in ((axes[0], table["separation_arcsec"].to_numpy(), np.linspace(0.2, 2.4, 9)),
                             (axes[1], table["flux_ratio"].to_numpy(), np.geomspace(0.1, 2.5, 8))):
            c, m, lo, hi = _binned(x, r, edges)
            ax.plot(c, m, "o-", color=colour, label=label)
            ax.fill_between(c, lo, hi, color=colour, alpha=0.2)
    for ax, xlabel in ((axes[0], "separation [arcsec]"), (axes[1], "flux ratio (companion / central)")):
        ax.axhline(0, color="k", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("(F - F_true) / F_true")
        ax.set_ylim(-1, 1.5)
    axes[1].set_xscale("log")
    axes[1].xaxis.set_major_locator(FixedLocator([0.1, 0.2, 0.5, 1, 2, 5]))
    axes[1].xaxis.set_major_formatter(ScalarFormatter())
    axes[1].xaxis.set_minor_formatter(NullFormatter())
    axes[0].legend()
    fig.suptitle("Central-galaxy flux error: median and 68 % band")
    save_figure(fig, out_png)


def segmentation_maps(blends, truth, predicted, separation, out_png) -> None:
    n = len(blends)
    fig, axes = plt.subplots(n, 3, figsize=(8, 2.6 * n), squeeze=False)
    for k in range(n):
        top = float(np.percentile(blends[k], 99.5))
        titles = ("blend", "true segmentation", "U-Net segmentation") if k == 0 else (None,) * 3
        _show(axes[k, 0], blends[k], titles[0], vmin=-0.05 * top, vmax=top)
        _show(axes[k, 1], truth[k], titles[1], cmap=SEGMENT_COLOURS, vmin=0, vmax=2)
        _show(axes[k, 2], predicted[k], titles[2], cmap=SEGMENT_COLOURS, vmin=0, vmax=2)
        axes[k, 0].set_ylabel(f'sep {separation[k]:.1f}"')
    fig.suptitle("Segmentation: background (black), central (orange), companion (blue)")
    save_figure(fig, out_png)


def calibration(table: pd.DataFrame, out_png) -> None:
    """Flux z-scores against N(0, 1) and the coverage of the 1 and 2 sigma intervals (flux and pixels)."""
    from scipy import stats

    z = ((table["flux_unet"] - table["true_flux"]) / table["flux_unet_sigma"]).to_numpy()
    z = z[np.isfinite(z)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    grid = np.linspace(-5, 5, 200)
    axes[0].hist(np.clip(z, -5, 5), bins=40, range=(-5, 5), density=True, color="C0", alpha=0.6, label="U-Net flux z-scores")
    axes[0].plot(grid, stats.norm.pdf(grid), "k-", label="N(0, 1)")
    axes[0].set_xlabel("(F_unet - F_true) / sigma_F")
    axes[0].legend()
    nominal = np.array([0.6827, 0.9545])
    observed = {"flux": [np.mean(np.abs(z) < 1), np.mean(np.abs(z) < 2)],
                "pixels": [table["pixel_coverage68"].mean(), table["pixel_coverage95"].mean()]}
    width = 0.35
    for k, (name, values) in enumerate(observed.items()):
        axes[1].bar(np.arange(2) + (k - 0.5) * width, values, width, label=name)
    axes[1].scatter(np.arange(2), nominal, color="k", marker="_", s=800, label="nominal", zorder=3)
    axes[1].set_xticks([0, 1], ["1 sigma", "2 sigma"])
    axes[1].set_ylabel("fraction within the interval")
    axes[1].set_ylim(0, 1)
    axes[1].legend()
    fig.suptitle("Calibration of the U-Net uncertainties (aleatoric + MC dropout)")
    save_figure(fig, out_png)
