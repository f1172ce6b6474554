"""Drawing helpers shared by the concept figures: annotated number grids at slide size."""

from __future__ import annotations

from typing import Sequence

import matplotlib
import matplotlib.colors as mcolors
import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Rectangle

from deepsky.figures import style  # noqa: F401  (applies the slide style on import)

# (row, col, n_rows, n_cols[, colour[, linestyle]])
Box = tuple


def _luminance(rgba) -> float:
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def draw_grid(
    ax: Axes,
    values,
    *,
    labels: Sequence[Sequence[str]] | None = None,
    fmt: str = "{:g}",
    cmap: str = "Blues",
    vmin: float | None = None,
    vmax: float | None = None,
    facecolors: np.ndarray | None = None,
    boxes: Sequence[Box] = (),
    fontsize: float = 17,
    title: str | None = None,
    tick_labels: bool = False,
    zero_color: str | None = None,
) -> None:
    """Draw `values` (2-D) as a grid of cells, each annotated with its number.

    Cells are coloured by value with `cmap`, or by the RGB(A) array `facecolors`
    (shape rows x cols x 3/4). `boxes` outlines windows as (row, col, h, w[, colour[, style]]).
    Text is black or white depending on the cell's brightness; `zero_color` greys out zeros.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    n_rows, n_cols = values.shape
    if facecolors is None:
        finite = values[np.isfinite(values)]
        lo = float(finite.min()) if vmin is None else vmin
        hi = float(finite.max()) if vmax is None else vmax
        if hi <= lo:
            hi = lo + 1.0
        norm = mcolors.Normalize(lo, hi)
        colormap = matplotlib.colormaps[cmap]
        rgba = colormap(norm(values))
    else:
        rgba = np.asarray(facecolors, dtype=float)
        if rgba.shape[-1] == 3:
            rgba = np.concatenate([rgba, np.ones(rgba.shape[:2] + (1,))], axis=-1)
    ax.imshow(rgba, interpolation="nearest")
    for i in range(n_rows):
        for j in range(n_cols):
            text = labels[i][j] if labels is not None else fmt.format(values[i, j])
            colour = "white" if _luminance(rgba[i, j]) < 0.5 else "black"
            if zero_color is not None and labels is None and values[i, j] == 0:
                colour = zero_color
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=colour)
    ax.set_xticks(np.arange(-0.5, n_cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows, 1), minor=True)
    ax.grid(False)
    ax.grid(which="minor", color="0.25", linewidth=1.0, alpha=1.0)
    ax.tick_params(which="minor", length=0)
    if tick_labels:
        ax.set_xticks(np.arange(n_cols))
        ax.set_yticks(np.arange(n_rows))
        ax.tick_params(which="major", length=0, labeltop=True, labelbottom=False)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    for box in boxes:
        r, c, h, w = box[:4]
        colour = box[4] if len(box) > 4 else "tab:red"
        ls = box[5] if len(box) > 5 else "-"
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor=colour, linewidth=4.5, linestyle=ls,
                      zorder=5, clip_on=False)
        )
    if title:
        ax.set_title(title, pad=10)


def symbol_axis(ax: Axes, text: str, fontsize: float = 34) -> None:
    """An empty axis holding a big operator symbol ('*', '=', '->')."""
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=fontsize, transform=ax.transAxes)


def block_colors(n_rows: int, n_cols: int, block: int, palette: Sequence[str]) -> np.ndarray:
    """RGBA array colouring cells by which `block` x `block` window they belong to."""
    out = np.zeros((n_rows, n_cols, 4))
    n_block_cols = n_cols // block
    for i in range(n_rows):
        for j in range(n_cols):
            k = (i // block) * n_block_cols + (j // block)
            out[i, j] = mcolors.to_rgba(palette[k % len(palette)])
    return out


PASTELS = ("#9ecae1", "#fdae6b", "#a1d99b", "#bcbddc", "#fdd0a2", "#c7e9c0")
