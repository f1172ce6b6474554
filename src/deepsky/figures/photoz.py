"""Figures of photometric redshifts (lecture 002, "Photometric Redshifts: deep learning vs classical
approach" and "Uncertainty quantification through Mixture Density Networks"): z_phot against
z_true per method, PIT histograms, example p(z), scores against magnitude, stacked n(z), the method
table beside Pasquet+2019, and the simulated survey itself."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.colors import LogNorm
import numpy as np
import pandas as pd

from deepsky.figures.images import to_rgb
from deepsky.figures.style import save_figure
from deepsky.tasks.photoz_metrics import GaussianMixture, point_metrics

OURS_COLOUR = "#e8f1fb"
PUBLISHED_GREY = "#6b6b6b"
TYPE_COLOURS = {"red": "#c0392b", "blue": "#2e6fd8"}


def _grid(n: int, ncols: int = 3, width: float = 4.6, height: float = 4.4):
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows + 0.6), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _fold_scores(table: pd.DataFrame) -> dict[str, tuple[float, float]]:
    per_fold = pd.DataFrame([point_metrics(g["z"], g["z_pred"]) for _, g in table.groupby("fold")])
    return {k: (per_fold[k].mean(), per_fold[k].std(ddof=0)) for k in per_fold}


def scatter_panels(tables: dict[str, pd.DataFrame], catalog: pd.DataFrame, png_path) -> None:
    """z_phot against z_true (all folds' predictions of the test set), with |dz| = 0.05 and 0.15 lines."""
    top = float(max(t["z"].max() for t in tables.values())) * 1.05
    fig, axes = _grid(len(tables))
    edges = np.linspace(0, top, 70)
    line = np.array([0, top])
    for ax, (label, table) in zip(axes, tables.items()):
        ax.hist2d(table["z"], np.clip(table["z_pred"], 0, top), bins=[edges, edges], norm=LogNorm(), cmap="magma_r")
        ax.plot(line, line, color="k", lw=1)
        for t, style in ((0.05, ":"), (0.15, "--")):
            ax.plot(line, line + t * (1 + line), "k", ls=style, lw=1)
            ax.plot(line, line - t * (1 + line), "k", ls=style, lw=1)
        scores = _fold_scores(table)
        ax.set_title(label)
        ax.text(0.04, 0.96, f"$\\sigma_{{NMAD}}$ = {scores['sigma_nmad'][0]:.4f}\n"
                f"$\\eta_{{0.05}}$ = {100 * scores['outlier_frac_005'][0]:.2f} %\nN = {table['index'].nunique()}",
                transform=ax.transAxes, va="top", fontsize=12)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("$z_{true}$")
        ax.set_ylabel("$z_{phot}$")
    fig.suptitle("Photometric redshifts: classical methods and networks on the same survey (dotted |dz| = 0.05, dashed 0.15)")
    save_figure(fig, png_path)


def _densities(tables):
    return {label: (table, GaussianMixture.from_table(table)) for label, table in tables.items()
            if GaussianMixture.from_table(table) is not None}


def pit_histograms(tables: dict[str, pd.DataFrame], catalog: pd.DataFrame, png_path) -> None:
    """PIT = CDF(z_true): flat if the densities are calibrated, U-shaped if too narrow, domed if too wide."""
    from scipy import stats

    densities = _densities(tables)
    fig, axes = _grid(len(densities))
    for ax, (label, (table, mixture)) in zip(axes, densities.items()):
        pit = mixture.pit(table["z"].to_numpy())
        ax.hist(pit, bins=20, range=(0, 1), density=True, color="#4a7fb5", alpha=0.85)
        ax.axhline(1.0, color="k", lw=1.5)
        ax.set_title(label)
        ax.text(0.5, 0.04, f"KS distance {stats.kstest(pit, 'uniform').statistic:.3f}", transform=ax.transAxes,
                ha="center", fontsize=12)
        ax.set_xlabel("PIT")
        ax.set_ylabel("density")
    fig.suptitle("Probability integral transform of the predicted p(z) (uniform = calibrated)")
    save_figure(fig, png_path)


def pdf_examples(tables: dict[str, pd.DataFrame], catalog: pd.DataFrame, png_path, n: int = 6) -> None:
    """p(z) of a few test galaxies that every method predicts (fold 0), with the true redshift."""
    densities = _densities(tables)
    common = set.intersection(*(set(t.loc[t["fold"] == t["fold"].min(), "index"]) for t, _ in densities.values()))
    shared = catalog[catalog["index"].isin(common)].sort_values("z")
    picks = shared.iloc[(np.linspace(0.05, 0.97, n) * (len(shared) - 1)).astype(int)].reset_index(drop=True)
    fig, axes = _grid(len(picks), ncols=3, width=5.0, height=3.6)
    colours = plt.cm.tab10(np.arange(len(densities)))
    for ax, (_, galaxy) in zip(axes, picks.iterrows()):
        grid = np.linspace(max(0.0, galaxy["z"] - 0.12), galaxy["z"] + 0.12, 600)
        for colour, (label, (table, mixture)) in zip(colours, densities.items()):
            rows = np.flatnonzero(((table["fold"] == table["fold"].min()) & (table["index"] == galaxy["index"])).to_numpy())
            density = mixture[rows[:1]].pdf(grid[None])[0]
            ax.plot(grid, density, color=colour, label=label, lw=2)
        ax.axvline(galaxy["z"], color="k", ls="--", lw=1.5, label="true z")
        ax.set_title(f"z = {galaxy['z']:.3f}, r = {galaxy['mag_r']:.2f}, {galaxy['class_name']}", fontsize=13)
        ax.set_xlabel("z")
        ax.set_ylabel("p(z)")
    axes[0].legend(fontsize=10, loc="upper left")
    fig.suptitle("Predicted redshift densities: mixtures of 1D Gaussians (dashed: the true redshift)")
    save_figure(fig, png_path)


def versus_magnitude(tables: dict[str, pd.DataFrame], catalog: pd.DataFrame, png_path, band: str = "r") -> None:
    """sigma_NMAD and the outlier fraction (|dz| > 0.05) in bins of magnitude, all folds pooled."""
    mags = catalog.set_index("index")[f"mag_{band}"]
    edges = np.quantile(mags, np.linspace(0, 1, 9))
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    for label, table in tables.items():
        m = mags.loc[table["index"]].to_numpy()
        which = np.clip(np.digitize(m, edges[1:-1]), 0, len(edges) - 2)
        centres, sigma, eta = [], [], []
        for k in range(len(edges) - 1):
            part = table[which == k]
            if len(part) >= 20:
                scores = point_metrics(part["z"], part["z_pred"])
                centres.append(np.median(m[which == k]))
                sigma.append(scores["sigma_nmad"])
                eta.append(100 * scores["outlier_frac_005"])
        left.plot(centres, sigma, "o-", label=label)
        right.plot(centres, eta, "o-", label=label)
    left.set_ylabel(r"$\sigma_{NMAD}$")
    right.set_ylabel(r"outliers |dz| > 0.05 [%]")
    for ax in (left, right):
        ax.set_xlabel(f"{band} magnitude")
    left.legend(fontsize=11)
    fig.suptitle("Photo-z quality against magnitude: fainter galaxies have noisier colours")
    save_figure(fig, png_path)


def stacked_nz(tables: dict[str, pd.DataFrame], catalog: pd.DataFrame, png_path) -> None:
    """Sum of the p(z) of the test galaxies (fold 0) against the histogram of their true redshifts;
    a point estimate stacks as the histogram of z_pred."""
    top = float(max(t["z"].max() for t in tables.values())) * 1.05
    grid = np.linspace(0, top, 300)
    edges = np.linspace(0, top, 40)
    fig, axes = _grid(len(tables))
    for ax, (label, table) in zip(axes, tables.items()):
        part = table[table["fold"] == table["fold"].min()]
        ax.hist(part["z"], bins=edges, density=True, color="#bbbbbb", label="true z")
        mixture = GaussianMixture.from_table(part)
        if mixture is None:
            ax.hist(part["z_pred"], bins=edges, density=True, histtype="step", color="#c0392b", lw=2, label="z_phot")
        else:
            ax.plot(grid, mixture.stacked(grid), color="#c0392b", lw=2, label="stacked p(z)")
        ax.set_title(label)
        ax.set_xlabel("z")
        ax.set_ylabel("n(z)")
    axes[0].legend(fontsize=11)
    fig.suptitle("Redshift distribution of the test set: stacked densities against the truth")
    save_figure(fig, png_path)


def _cell(row, metric, scale=1.0, digits=4) -> str:
    mean = row.get(f"{metric}_mean", np.nan)
    std = row.get(f"{metric}_std", np.nan)
    if mean is None or not np.isfinite(mean):
        return "–"
    if std is None or not np.isfinite(std):
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def methods_table(summary: pd.DataFrame, published: dict, png_path) -> None:
    """The method comparison (fold mean ± std) with Pasquet+2019's SDSS numbers in grey."""
    columns = ["method", "test set", "N train", "σ_NMAD", "η>0.15 [%]", "η>0.05 [%]", "bias", "CRPS", "PIT KS",
               "HDR 68 %", "HDR 95 %"]
    rows = []
    for _, r in summary.iterrows():
        rows.append([r["method"], r["test_set"], f"{int(r['n_train'])}", _cell(r, "sigma_nmad"),
                     _cell(r, "outlier_frac_015", 100, 2), _cell(r, "outlier_frac_005", 100, 2), _cell(r, "bias"),
                     _cell(r, "crps"), _cell(r, "pit_ks", digits=3), _cell(r, "hdr_coverage68", digits=3),
                     _cell(r, "hdr_coverage95", digits=3)])
    rows.append([published["method"], published["test_set"], str(published["n_train"]), _cell(published, "sigma_nmad"),
                 "–", _cell(published, "outlier_frac_005", 100, 2), "–", "–", "–", "–", "–"])
    inches = [3.9, 2.6, 1.2, 2.2, 1.9, 1.9, 2.3, 2.2, 1.7, 1.7, 1.7]
    total = sum(inches)
    fig, ax = plt.subplots(figsize=(total, 0.42 * len(rows) + 1.4))
    ax.axis("off")
    cells = ax.table(cellText=rows, colLabels=columns, loc="center", cellLoc="center", colWidths=[w / total for w in inches])
    cells.auto_set_font_size(False)
    cells.set_fontsize(11)
    cells.scale(1, 1.6)
    for (row, _), cell in cells.get_celld().items():
        if row == 0:
            cell.set_text_props(weight="bold")
        elif row <= len(summary):
            cell.set_facecolor(OURS_COLOUR)
        else:
            cell.set_text_props(color=PUBLISHED_GREY)
    folds = int(summary["n_folds"].max()) if len(summary) else 0
    ax.set_title(f"Photometric redshifts on the simulated SDSS-like survey (mean ± std over {folds} folds)\n"
                 "'cutouts' = the test galaxies that have images, the same for every method; grey: Pasquet et al. 2019",
                 fontsize=14)
    save_figure(fig, png_path)


def survey(catalog: pd.DataFrame, images, card: dict, png_path) -> None:
    """The simulated survey: n(z) of red and blue galaxies, magnitudes, and colours against redshift."""
    fig, axes = plt.subplots(1, 4, figsize=(21, 4.8))
    edges = np.linspace(0, catalog["z"].max() * 1.02, 40)
    for name, part in catalog.groupby("class_name"):
        colour = TYPE_COLOURS.get(name, None)
        axes[0].hist(part["z"], bins=edges, histtype="step", lw=2, color=colour, label=f"{name} ({len(part)})")
        # Rasterised points: 20k vector dots would make a 600 kB PDF.
        axes[2].scatter(part["z"], part["mag_g"] - part["mag_r"], s=2, alpha=0.3, color=colour, rasterized=True)
        axes[3].scatter(part["mag_g"] - part["mag_r"], part["mag_u"] - part["mag_g"], s=2, alpha=0.3, color=colour,
                        rasterized=True)
    axes[0].set_xlabel("z")
    axes[0].set_ylabel("N")
    axes[0].legend()
    for band in card["bands"]:
        axes[1].hist(catalog[f"mag_{band}"], bins=40, histtype="step", lw=1.8, label=band)
    limit = card.get("survey", {}).get("selection", {})
    if limit:
        axes[1].axvline(limit["mag_limit"], color="k", ls="--", lw=1)
    axes[1].set_xlabel("magnitude (AB)")
    axes[1].legend(ncol=2, fontsize=10)
    axes[2].set_xlabel("z")
    axes[2].set_ylabel("g - r")
    axes[3].set_xlabel("g - r")
    axes[3].set_ylabel("u - g")
    fig.suptitle(f"Simulated SDSS-like survey: {len(catalog)} galaxies to r < {limit.get('mag_limit', '?')}; "
                 "g - r reddens with z as the 4000 Å break moves through g")
    save_figure(fig, png_path)


def cutout_examples(catalog: pd.DataFrame, images, card: dict, png_path, per_row: int = 8) -> None:
    """gri composites of red and blue galaxies with cutouts, in order of redshift."""
    with_image = catalog[catalog["has_image"]]
    fig, axes = plt.subplots(2, per_row, figsize=(2.1 * per_row, 5.2))
    for row, name in zip(axes, ("red", "blue")):
        part = with_image[with_image["class_name"] == name].sort_values("z")
        # 5-95 % of the redshifts: the very nearest galaxies overfill the stamp.
        picks = part.iloc[(np.linspace(0.05, 0.95, per_row) * (len(part) - 1)).astype(int)] if len(part) else part
        for ax in row:
            ax.axis("off")
        for ax, (_, galaxy) in zip(row, picks.iterrows()):
            ax.imshow(to_rgb(images[int(galaxy["image_row"])][1:4]), origin="lower", interpolation="nearest")
            ax.set_title(f"z = {galaxy['z']:.3f}\nr = {galaxy['mag_r']:.1f}", fontsize=11)
        row[0].text(-0.1, 0.5, name, transform=row[0].transAxes, rotation=90, ha="right", va="center", fontsize=13)
    fig.suptitle("Survey cutouts (g, r, i) in order of redshift: galaxies get smaller, fainter and redder")
    save_figure(fig, png_path)
