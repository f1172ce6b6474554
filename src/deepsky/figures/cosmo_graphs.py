"""Figures of the galaxy-graph experiment (lecture 002, "A brief incursion into GNNs")."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import cm, colors, ticker
from matplotlib import pyplot as plt

from deepsky.figures.style import save_figure

LABELS = {"Omega_m": r"$\Omega_m$", "sigma_8": r"$\sigma_8$"}
ARCH_LABELS = {"cosmo_gnn": "GNN (galaxy graph)", "pk_mlp": "MLP on P(k)"}


def catalogue_graph(positions: np.ndarray, box: float, radius: float, png_path, max_zoom_nodes: int = 12) -> None:
    """One catalogue as a graph: a slab with its edges, one galaxy's neighbourhood, an adjacency matrix."""
    from deepsky.data.cosmo_graphs_graph import periodic_edges, wrap

    edge_index, _ = periodic_edges(positions, box, radius)
    source, target = edge_index
    degree = np.bincount(target, minlength=len(positions))
    slab = positions[:, 2] < 2 * radius
    fig, axes = plt.subplots(1, 3, figsize=(19, 6.6), gridspec_kw={"width_ratios": [1.15, 1, 0.9]}, layout="constrained")

    ax = axes[0]
    drawn = slab[source] & slab[target] & (source < target)
    for j, i in zip(source[drawn], target[drawn]):
        if np.all(np.abs(positions[j, :2] - positions[i, :2]) < box / 2):  # edges through the boundary are not drawn
            ax.plot(*positions[[j, i], :2].T, color="0.6", lw=0.6, zorder=1)
    points = ax.scatter(*positions[slab, :2].T, c=degree[slab], s=14, cmap="viridis", zorder=2)
    fig.colorbar(points, ax=ax, label="degree (neighbours within r)")
    ax.set(xlim=(0, box), ylim=(0, box), aspect="equal", xlabel="x [Mpc/h]", ylabel="y [Mpc/h]",
           title=f"Nodes and edges (slab z < {2 * radius:.0f} Mpc/h)")

    ax = axes[1]
    centre = int(np.argmax(np.where(slab, degree, -1)))
    offsets = wrap(positions - positions[centre], box)
    near = np.flatnonzero((np.abs(offsets[:, :2]) < 2 * radius).all(axis=1) & (np.abs(offsets[:, 2]) < radius))
    near = near[np.argsort(np.linalg.norm(offsets[near], axis=1))][:max_zoom_nodes]
    neighbours = set(source[target == centre].tolist())
    for j, i in zip(source, target):
        if i in near and j in near and j < i:
            ax.plot(*offsets[[j, i], :2].T, color="tab:orange" if centre in (i, j) else "0.6", lw=1.5 if centre in (i, j) else 0.8)
    ax.scatter(*offsets[near, :2].T, s=80, c=["tab:red" if k == centre else "tab:orange" if k in neighbours else "0.4" for k in near], zorder=3)
    for rank, k in enumerate(near):
        ax.annotate(str(rank), offsets[k, :2], textcoords="offset points", xytext=(5, 5), fontsize=11)
    ax.add_patch(plt.Circle((0, 0), radius, fill=False, ls="--", color="tab:red"))
    ax.set(xlim=(-2 * radius, 2 * radius), ylim=(-2 * radius, 2 * radius), aspect="equal", xlabel=r"$\Delta x$ [Mpc/h]",
           ylabel=r"$\Delta y$ [Mpc/h]", title=r"Neighbourhood $\mathcal{N}_u$ of u (red), radius r")

    ax = axes[2]
    adjacency = np.zeros((len(near), len(near)), dtype=int)
    lookup = {k: a for a, k in enumerate(near)}
    for j, i in zip(source, target):
        if i in lookup and j in lookup:
            adjacency[lookup[i], lookup[j]] = 1
    ax.imshow(adjacency, cmap="Greys", vmin=0, vmax=1.4)
    ax.set(xticks=range(len(near)), yticks=range(len(near)), title="Adjacency matrix A", xlabel="node", ylabel="node")
    ax.grid(False)
    fig.suptitle("What makes up a graph? A galaxy catalogue: galaxies are nodes, neighbours closer than r share an edge")
    save_figure(fig, png_path)


def power_spectra(spectra: list[dict], catalog: pd.DataFrame, inputs: list[np.ndarray] | None, png_path) -> None:
    """Measured galaxy P(k) of boxes across the hypercube, coloured by each parameter."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.8), sharey=True, layout="constrained")
    for ax, parameter in zip(axes, ("Omega_m", "sigma_8")):
        values = catalog[parameter].to_numpy()
        norm = colors.Normalize(values.min(), values.max())
        for k, spectrum in enumerate(spectra):
            colour = cm.viridis(norm(values[k]))
            good = spectrum["power"] > 0
            ax.plot(spectrum["k"][good], spectrum["power"][good], color=colour, alpha=0.8, lw=1.4)
            if inputs is not None and parameter == "Omega_m":
                ax.plot(inputs[k][0], inputs[k][1], color=colour, lw=0.7, ls="--", alpha=0.6)
        ax.axhline(1 / spectra[0]["nbar"], color="0.3", ls=":", label=r"shot noise $1/\bar n$")
        ax.set(xscale="log", yscale="log", xlabel="k [h/Mpc]", title=f"coloured by {LABELS[parameter]}")
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.set_xticks([0.03, 0.05, 0.1, 0.2, 0.5])
        fig.colorbar(cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label=LABELS[parameter])
        ax.legend(loc="lower left")
    axes[0].set_ylabel(r"$P_g(k) - 1/\bar n$  [(Mpc/h)$^3$]")
    fig.suptitle("Galaxy power spectra across cosmologies (dashed: camb input $b^2 P(k)$)")
    save_figure(fig, png_path)


def _fold_summary(per_fold: pd.DataFrame, metric: str) -> str:
    values = per_fold[metric].to_numpy(dtype=float)
    return f"{values.mean():.3f} ± {values.std():.3f}"


def predicted_vs_true(predictions: pd.DataFrame, per_fold: pd.DataFrame, targets: list[str], png_path, fold: int = 0) -> None:
    """Rows: architectures; columns: parameters; fold `fold`'s test boxes with their predicted sigmas."""
    archs = list(dict.fromkeys(predictions["architecture"]))
    fig, axes = plt.subplots(len(archs), len(targets), figsize=(5.6 * len(targets), 5.2 * len(archs)), squeeze=False,
                             layout="constrained")
    for row, arch in zip(axes, archs):
        part = predictions[(predictions["architecture"] == arch) & (predictions["fold"] == fold)]
        scores = per_fold[per_fold["architecture"] == arch]
        for ax, name in zip(row, targets):
            truth = part[name].to_numpy()
            lo, hi = truth.min(), truth.max()
            ax.plot([lo, hi], [lo, hi], color="0.3", ls="--", lw=1.2)
            ax.errorbar(truth, part[f"{name}_pred"], yerr=part.get(f"{name}_sigma"), fmt="o", ms=4, alpha=0.7,
                        elinewidth=1, color="tab:blue" if arch == "cosmo_gnn" else "tab:green")
            text = (f"rel. error {_fold_summary(scores, f'{name}_rel_error')}\n$R^2$ {_fold_summary(scores, f'{name}_r2')}\n"
                    f"68% coverage {_fold_summary(scores, f'{name}_coverage68')}")
            ax.text(0.03, 0.97, text, transform=ax.transAxes, va="top", fontsize=11,
                    bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
            ax.set(xlabel=f"true {LABELS.get(name, name)}", ylabel=f"predicted {LABELS.get(name, name)}",
                   title=f"{ARCH_LABELS.get(arch, arch)}")
    fig.suptitle(f"Cosmology from galaxy catalogues: test boxes of fold {fold} (metrics: mean ± std over folds)")
    save_figure(fig, png_path)


def robustness(per_fold: pd.DataFrame, targets: list[str], png_path) -> None:
    """Per parameter: relative error, bias and 68 % coverage on each test set, bars per architecture."""
    metrics = [("rel_error", "mean relative error"), ("bias", "bias (pred - true)"), ("coverage68", "68 % coverage")]
    sets = list(dict.fromkeys(per_fold["test_set"]))
    archs = list(dict.fromkeys(per_fold["architecture"]))
    fig, axes = plt.subplots(len(metrics), len(targets), figsize=(6.5 * len(targets), 3.6 * len(metrics)), squeeze=False,
                             sharex=True, layout="constrained")
    models = per_fold.drop_duplicates("test_set").set_index("test_set")
    names = [f"{s.replace('_', ' ')}\nb = {models.loc[s, 'bias_b']:g}, N = {models.loc[s, 'n_galaxies']:g}" if "bias_b" in models else s
             for s in sets]
    width = 0.8 / len(archs)
    for r, (metric, label) in enumerate(metrics):
        for c, name in enumerate(targets):
            ax = axes[r][c]
            for a, arch in enumerate(archs):
                grouped = per_fold[per_fold["architecture"] == arch].groupby("test_set", sort=False)[f"{name}_{metric}"]
                mean, std = grouped.mean().reindex(sets), grouped.std(ddof=0).reindex(sets)
                ax.bar(np.arange(len(sets)) + (a - (len(archs) - 1) / 2) * width, mean, width, yerr=std, capsize=3,
                       label=ARCH_LABELS.get(arch, arch), color="tab:blue" if arch == "cosmo_gnn" else "tab:green", alpha=0.85 - 0.2 * a)
            if metric == "coverage68":
                ax.axhline(0.68, color="0.3", ls="--", lw=1)
            if metric == "bias":
                ax.axhline(0, color="0.3", lw=1)
            ax.set(ylabel=label, title=LABELS.get(name, name) if r == 0 else None)
            ax.set_xticks(range(len(sets)), names, fontsize=10)
    axes[0][0].legend()
    fig.suptitle("Robustness: trained on the nominal galaxy model, tested on others (mean ± std over folds)")
    save_figure(fig, png_path)
