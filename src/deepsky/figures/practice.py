"""Training-practice comparison figures (lectures 001, 002, 004) from K-fold training histories.

Inputs shared by every function:

* ``histories``: ``{(member, fold): DataFrame}`` with columns epoch, train_loss, val_loss,
  val_accuracy, epoch_seconds, images_per_second (one per trained model, as written by the
  train stage; ``member`` is an architecture or variant name);
* ``labels``: ``{member: legend text}`` (missing members fall back to their name);
* ``summary``: the workflow's ``summary.csv`` (architecture = member, n_folds, accuracy_mean,
  accuracy_std, auroc_mean, auroc_std, train_seconds_mean, train_images_per_second_mean, ...);
* ``params``: ``{member: parameter count}``.

Folds may stop at different epochs (early stopping): curves are the mean over the folds that
reached each epoch, with a ±1 std band.  Every function writes PNG + PDF through
:func:`deepsky.figures.style.save_figure` and returns the numbers it drew.

:data:`PRACTICE_FIGURES` maps a stem to a callable with one calling convention::

    PRACTICE_FIGURES[stem](png, histories=..., labels=..., summary=..., params=..., batch_sizes=...)

(unused keywords are ignored); :data:`FIGURE_STEMS` maps the config's ``figures:`` names to stems.
"""

from __future__ import annotations

import re
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepsky.config import PRACTICE_STEMS
from deepsky.figures.style import save_figure

__all__ = [
    "fig_overfitting",
    "fig_validation_curves",
    "fig_batch_size",
    "fig_architecture_comparison",
    "fold_mean",
    "parse_batch_size",
    "PRACTICE_FIGURES",
    "FIGURE_STEMS",
    "SLIDE_TITLES",
]

Histories = dict[tuple[str, int], pd.DataFrame]


# --------------------------------------------------------------------------- helpers
def _members(histories: Histories) -> list[str]:
    return list(dict.fromkeys(member for member, _ in histories))


def _label(member: str, labels: dict | None) -> str:
    return (labels or {}).get(member) or member


def _colours() -> list[str]:
    return plt.rcParams["axes.prop_cycle"].by_key()["color"]


def fold_mean(histories: Histories, member: str, column: str, x: str = "epoch") -> pd.DataFrame:
    """Mean, std and fold count of ``column`` per ``x`` over the member's folds.

    ``x="epoch"`` aligns on the epoch number; ``x="wall"`` aligns on the epoch too but reports
    the cumulative training time (mean over folds) as ``x``.  Columns: x, mean, std, n.
    """
    frames = []
    for (m, fold), h in histories.items():
        if m != member:
            continue
        h = h.sort_values("epoch")
        frames.append(pd.DataFrame({"epoch": h["epoch"].to_numpy(), "value": h[column].to_numpy(),
                                    "wall": h["epoch_seconds"].cumsum().to_numpy() if "epoch_seconds" in h else np.nan,
                                    "fold": fold}))
    if not frames:
        raise KeyError(f"no histories for member {member!r}")
    df = pd.concat(frames)
    g = df.groupby("epoch")
    out = pd.DataFrame({"mean": g["value"].mean(), "std": g["value"].std(ddof=0), "n": g.size(),
                        "wall": g["wall"].mean()}).reset_index()
    out["x"] = out["wall"] if x == "wall" else out["epoch"]
    return out[["x", "epoch", "mean", "std", "n"]]


def _band(ax, curve: pd.DataFrame, colour, label=None, ls="-", alpha=0.2):
    line, = ax.plot(curve["x"], curve["mean"], ls=ls, color=colour, label=label)
    ax.fill_between(curve["x"], curve["mean"] - curve["std"], curve["mean"] + curve["std"],
                    color=colour, alpha=alpha, lw=0)
    return line


def parse_batch_size(text: str) -> int:
    """First integer in a label or member name: 'batch 32', 'bs128', 'batch_size_64' -> 32, 128, 64."""
    match = re.search(r"(\d+)", str(text))
    if not match:
        raise ValueError(f"cannot read a batch size from {text!r}; pass batch_sizes={{member: int}}")
    return int(match.group(1))


# --------------------------------------------------------------------------- 001 overfitting
def fig_overfitting(histories: Histories, labels: dict | None, png, title: str | None = None) -> dict:
    """One panel per member: training vs validation loss per epoch (fold mean, ±1 std band),
    with the epoch of minimum mean validation loss marked (where early stopping would stop).

    Returns ``{member: {"best_epoch", "min_val_loss", "final_train_loss", "final_val_loss",
    "val_rise" (final - minimum validation loss), "fold_best_epochs": [...]}}``.
    """
    members = _members(histories)
    fig, axes = plt.subplots(1, len(members), figsize=(max(6.5, 5.8 * len(members)), 5.2),
                             squeeze=False, sharey=True)
    out = {}
    for ax, member in zip(axes[0], members):
        train = fold_mean(histories, member, "train_loss")
        val = fold_mean(histories, member, "val_loss")
        _band(ax, train, "tab:blue", "training")
        _band(ax, val, "tab:orange", "validation")
        best = int(val.loc[val["mean"].idxmin(), "epoch"])
        min_val = float(val["mean"].min())
        ax.axvline(best, color="grey", ls="--", lw=1.5)
        ax.plot([best], [min_val], "o", color="tab:orange", ms=9, mec="black", zorder=5)
        ax.annotate(f"min val loss\nepoch {best}", (best, min_val), xytext=(10, 28),
                    textcoords="offset points", fontsize=13,
                    arrowprops={"arrowstyle": "->", "color": "grey"})
        ax.set(title=_label(member, labels), xlabel="epoch")
        ax.legend(loc="upper right")
        fold_best = [int(h.loc[h["val_loss"].idxmin(), "epoch"]) for (m, _), h in histories.items() if m == member]
        out[member] = {
            "best_epoch": best,
            "min_val_loss": min_val,
            "final_train_loss": float(train["mean"].iloc[-1]),
            "final_val_loss": float(val["mean"].iloc[-1]),
            "val_rise": float(val["mean"].iloc[-1] - min_val),
            "fold_best_epochs": fold_best,
        }
    axes[0][0].set_ylabel("cross-entropy loss")
    fig.suptitle(title or "Overfitting: training loss keeps falling, validation loss turns up "
                          "(dashed: early-stopping epoch)")
    fig.tight_layout()
    save_figure(fig, png)
    return out


# --------------------------------------------------------------------------- generic curves
def fig_validation_curves(histories: Histories, labels: dict | None, png, title: str,
                          show_train: bool = False, wall_time: bool = False) -> dict:
    """Side-by-side panels, one line per member (fold mean, ±1 std band): [training loss,]
    validation loss, validation accuracy.  ``show_train=True`` adds the training-loss panel
    (plain vs residual: degradation is about *training* error).  ``wall_time=True`` puts the
    cumulative training time on the x axis instead of the epoch.

    Returns ``{member: {"final_train_loss", "min_val_loss", "final_val_loss",
    "best_val_accuracy", "final_val_accuracy", "epochs"}}``.
    """
    members = _members(histories)
    panels = (["train_loss"] if show_train else []) + ["val_loss", "val_accuracy"]
    names = {"train_loss": "training loss", "val_loss": "validation loss", "val_accuracy": "validation accuracy"}
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 5.4), squeeze=False)
    axes = axes[0]
    colours = _colours()
    out = {}
    for k, member in enumerate(members):
        colour = colours[k % len(colours)]
        curves = {c: fold_mean(histories, member, c, x="wall" if wall_time else "epoch")
                  for c in ("train_loss", "val_loss", "val_accuracy")}
        for ax, column in zip(axes, panels):
            _band(ax, curves[column], colour, _label(member, labels))
        out[member] = {
            "final_train_loss": float(curves["train_loss"]["mean"].iloc[-1]),
            "min_val_loss": float(curves["val_loss"]["mean"].min()),
            "final_val_loss": float(curves["val_loss"]["mean"].iloc[-1]),
            "best_val_accuracy": float(curves["val_accuracy"]["mean"].max()),
            "final_val_accuracy": float(curves["val_accuracy"]["mean"].iloc[-1]),
            "epochs": int(curves["val_loss"]["epoch"].max()),
        }
    for ax, column in zip(axes, panels):
        ax.set(title=names[column], xlabel="training time [s]" if wall_time else "epoch")
    # Loss panels share a y range so training and validation compare directly.
    loss_axes = [ax for ax, c in zip(axes, panels) if c != "val_accuracy"]
    if len(loss_axes) > 1:
        lo = min(ax.get_ylim()[0] for ax in loss_axes)
        hi = max(ax.get_ylim()[1] for ax in loss_axes)
        for ax in loss_axes:
            ax.set_ylim(lo, hi)
    axes[0].set_ylabel("cross-entropy loss")
    axes[-1].set_ylabel("accuracy")
    n_folds = len({f for _, f in histories})
    fig.suptitle(f"{title} (mean over {n_folds} fold{'s' if n_folds != 1 else ''}, band ±1σ)")
    fig.tight_layout(rect=(0, 0.12 if len(members) > 3 else 0.08, 1, 1))
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=min(len(texts), 4), frameon=False, fontsize=13)
    save_figure(fig, png)
    return out


# --------------------------------------------------------------------------- 004 batch size
def fig_batch_size(histories: Histories, summary: pd.DataFrame | None, labels: dict | None, png,
                   batch_sizes: dict[str, int] | None = None) -> dict:
    """Lecture 004 "Batch Size: computational speed x speed of convergence".

    Left: seconds per epoch against batch size (fold mean ± std, log2 x) with the throughput
    in images/s written at each point; middle: validation loss per epoch; right: validation
    loss against cumulative training time.  One line per batch size.  Batch sizes come from
    ``batch_sizes`` or are parsed from the labels (then the member names).

    Returns ``{member: {"batch_size", "epoch_seconds_mean", "epoch_seconds_std",
    "images_per_second", "min_val_loss", "best_epoch", "seconds_to_best"}}``.
    """
    members = _members(histories)
    sizes = {}
    for m in members:
        if batch_sizes and m in batch_sizes:
            sizes[m] = int(batch_sizes[m])
        else:
            try:
                sizes[m] = parse_batch_size(_label(m, labels))
            except ValueError:
                sizes[m] = parse_batch_size(m)
    members = sorted(members, key=lambda m: sizes[m])
    summary_rows = summary.set_index("architecture") if summary is not None and len(summary) else None
    fig, axes = plt.subplots(1, 3, figsize=(18, 5.6))
    colours = plt.get_cmap("viridis")(np.linspace(0.05, 0.85, len(members)))
    out = {}
    for colour, member in zip(colours, members):
        per_fold = [float(h["epoch_seconds"].mean()) for (m, _), h in histories.items() if m == member]
        ips = [float(h["images_per_second"].median()) for (m, _), h in histories.items() if m == member]
        throughput = float(np.mean(ips))
        if summary_rows is not None and member in summary_rows.index \
                and "train_images_per_second_mean" in summary_rows.columns:
            throughput = float(summary_rows.loc[member, "train_images_per_second_mean"])
        val = fold_mean(histories, member, "val_loss")
        val_wall = fold_mean(histories, member, "val_loss", x="wall")
        best_row = val["mean"].idxmin()
        label = f"batch {sizes[member]}"
        out[member] = {
            "batch_size": sizes[member],
            "epoch_seconds_mean": float(np.mean(per_fold)),
            "epoch_seconds_std": float(np.std(per_fold)),
            "images_per_second": throughput,
            "min_val_loss": float(val["mean"].min()),
            "best_epoch": int(val.loc[best_row, "epoch"]),
            "seconds_to_best": float(val_wall.loc[best_row, "x"]),
        }
        d = out[member]
        axes[0].errorbar([d["batch_size"]], [d["epoch_seconds_mean"]], yerr=[d["epoch_seconds_std"]],
                         fmt="o", ms=10, color=colour, capsize=4)
        axes[0].annotate(f"{throughput:,.0f} img/s", (d["batch_size"], d["epoch_seconds_mean"]),
                         xytext=(8, 6), textcoords="offset points", fontsize=12)
        _band(axes[1], val, colour, label)
        _band(axes[2], val_wall, colour, label)
        axes[2].plot([d["seconds_to_best"]], [d["min_val_loss"]], "o", color=colour, ms=8, mec="black")
    xs = [out[m]["batch_size"] for m in members]
    axes[0].plot(xs, [out[m]["epoch_seconds_mean"] for m in members], color="grey", lw=1.2, zorder=0)
    axes[0].set_xscale("log", base=2)
    axes[0].set_xticks(xs, [str(v) for v in xs])
    axes[0].minorticks_off()
    axes[0].set_xlim(min(xs) / 1.5, max(xs) * 2.2)
    axes[0].set(title="computational speed", xlabel="batch size", ylabel="seconds per epoch")
    axes[0].set_ylim(bottom=0)
    axes[1].set(title="convergence per epoch", xlabel="epoch", ylabel="validation loss")
    axes[2].set(title="convergence per second", xlabel="training time [s]", ylabel="validation loss")
    axes[1].legend(loc="upper right")
    fig.suptitle("Batch size: time per epoch vs speed of convergence (dots: minimum validation loss)")
    fig.tight_layout()
    save_figure(fig, png)
    return out


# --------------------------------------------------------------------------- 001 architectures
def _metric_columns(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """(column stem, legend name) of the score metrics present in the summary."""
    cols = [("accuracy", "accuracy")]
    if "auroc_mean" in summary:
        cols.append(("auroc", "AUROC"))
    elif "auroc_macro_ovr_mean" in summary:
        cols.append(("auroc_macro_ovr", "AUROC (macro, one-vs-rest)"))
    return [(c, n) for c, n in cols if f"{c}_mean" in summary]


def fig_architecture_comparison(summary: pd.DataFrame, params: dict[str, int], png,
                                labels: dict | None = None) -> dict:
    """Lecture 001 "Accuracy for different network architectures".

    Three panels sharing one row per architecture (horizontal bars): accuracy and AUROC
    (fold mean, std as error bar), parameter count (log scale) and training throughput
    (images/s, log scale).  Returns the plotted numbers as lists in row order:
    ``{"architecture", "accuracy_mean", "accuracy_std", "auroc_mean", "auroc_std",
    "params", "images_per_second"}`` (AUROC keys named after the summary column used).
    """
    archs = summary["architecture"].astype(str).tolist()
    metrics = _metric_columns(summary)
    n = len(archs)
    fig, axes = plt.subplots(1, 3, figsize=(18, 1.6 + 0.75 * n), sharey=True,
                             gridspec_kw={"width_ratios": [1.5, 1, 1]})
    rows = np.arange(n)
    out: dict[str, list] = {"architecture": archs}
    height = 0.8 / max(1, len(metrics))
    lows = []
    for k, (metric, name) in enumerate(metrics):
        mean = summary[f"{metric}_mean"].astype(float).to_numpy()
        std = summary[f"{metric}_std"].astype(float).fillna(0).to_numpy() if f"{metric}_std" in summary else np.zeros(n)
        out[f"{metric}_mean"], out[f"{metric}_std"] = mean.tolist(), std.tolist()
        pos = rows - 0.4 + height * (k + 0.5)
        axes[0].barh(pos, mean, height=height * 0.92, xerr=std, capsize=4, label=name,
                     color=["tab:blue", "tab:orange"][k % 2], error_kw={"lw": 1.5})
        for p, m, s in zip(pos, mean, std):
            axes[0].text(m + s + 0.005, p, f"{m:.3f}", va="center", fontsize=12)
        lows.append(np.nanmin(mean - std))
    low = max(0.0, np.floor((min(lows) - 0.05) * 10) / 10) if lows else 0.0
    axes[0].set_xlim(low, 1.07)
    axes[0].set_xticks([t for t in axes[0].get_xticks() if low - 1e-9 <= t <= 1.0 + 1e-9])
    axes[0].set(xlabel="test score (mean ± 1σ over folds)")
    axes[0].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(metrics), frameon=False)

    counts = [float(params.get(a, np.nan)) if params else np.nan for a in archs]
    out["params"] = [int(c) if np.isfinite(c) else None for c in counts]
    axes[1].barh(rows, counts, color="tab:green", height=0.6)
    for r, c in zip(rows, counts):
        if np.isfinite(c):
            axes[1].text(c * 1.15, r, _human(c), va="center", fontsize=12)
    axes[1].set_xscale("log")
    finite = [c for c in counts if np.isfinite(c) and c > 0]
    if finite:
        axes[1].set_xlim(min(finite) / 3, max(finite) * 30)
    axes[1].set(title="parameters", xlabel="count (log)")

    col = "train_images_per_second_mean"
    ips = summary[col].astype(float).to_numpy() if col in summary else np.full(n, np.nan)
    ips_std = summary["train_images_per_second_std"].astype(float).fillna(0).to_numpy() \
        if "train_images_per_second_std" in summary else np.zeros(n)
    out["images_per_second"] = ips.tolist()
    axes[2].barh(rows, ips, xerr=ips_std, color="tab:purple", height=0.6, capsize=4)
    for r, v in zip(rows, ips):
        if np.isfinite(v):
            axes[2].text(v * 1.15, r, f"{v:,.0f}", va="center", fontsize=12)
    axes[2].set_xscale("log")
    finite = [v for v in ips if np.isfinite(v) and v > 0]
    if finite:
        axes[2].set_xlim(min(finite) / 3, max(finite) * 20)
    axes[2].set(title="training throughput", xlabel="images / s (log)")

    axes[0].set_yticks(rows, [_label(a, labels) for a in archs])
    axes[0].invert_yaxis()
    for ax in axes:
        ax.grid(axis="y", visible=False)
    folds = summary["n_folds"].max() if "n_folds" in summary else None
    fig.suptitle("Accuracy for different network architectures"
                 + (f" ({int(folds)}-fold)" if folds else ""))
    fig.tight_layout()
    save_figure(fig, png)
    return out


def _human(count: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= div:
            return f"{count / div:.3g}{unit}"
    return f"{count:.0f}"


# --------------------------------------------------------------------------- registry
def _curves(title: str, show_train: bool = False):
    def make(png, *, histories, labels=None, **_):
        return fig_validation_curves(histories, labels, png, title, show_train=show_train)
    return make


PRACTICE_FIGURES: dict[str, Callable[..., dict]] = {
    "001-overfitting": lambda png, *, histories, labels=None, **_: fig_overfitting(histories, labels, png),
    "002-dropout-batchnorm": _curves("Dropout and batch normalisation"),
    "004-activation-functions-training": _curves("Training with different activation functions"),
    "002-plain-vs-residual": _curves("Plain vs residual network of equal depth", show_train=True),
    "004-batch-size": lambda png, *, histories, labels=None, summary=None, batch_sizes=None, **_:
        fig_batch_size(histories, summary, labels, png, batch_sizes=batch_sizes),
    "001-architecture-accuracy": lambda png, *, summary, params=None, labels=None, **_:
        fig_architecture_comparison(summary, params or {}, png, labels=labels),
}

#: config ``experiments.<name>.figures`` entries (schema enum) -> figure stem.
FIGURE_STEMS = PRACTICE_STEMS

#: stem -> lecture slide(s) it reproduces.
SLIDE_TITLES: dict[str, str] = {
    "001-overfitting": "001 'Difficulties: Overfitting'; 002 'OVER-FITTING' "
                       "(validation loss rises while training loss falls)",
    "002-dropout-batchnorm": "002 'DROPOUT' and 'BATCH NORMALIZATION SPEEDS UP AND STABILIZES TRAINING'",
    "004-activation-functions-training": "004 'Activation Functions' (sigmoid: hard to train, derivative vanishes)",
    "002-plain-vs-residual": "002 'RESIDUAL NETWORKS' (extra layers do not hurt with skips)",
    "004-batch-size": "004 'Batch Size: Computational speed X Speed of convergence'",
    "001-architecture-accuracy": "001 'Accuracy for different network architectures'",
    "002-vanishing-gradients": "002 'VANISHING / EXPLODING GRADIENT PROBLEM'; 004 'Common issues: Vanishing gradients'",
}
