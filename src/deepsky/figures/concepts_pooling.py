"""Pooling concept figure (lecture 002, "TYPES OF POOLING" and "MAX POOLING 1D").

The pooled numbers are computed from explicit 2x2 windows (``Tensor.unfold``) with the slide
formulas; the tests compare them with torch's ``max_pool2d``, ``avg_pool2d`` and ``lp_pool2d``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import FancyArrowPatch, Rectangle

from deepsky.figures.concepts_common import PASTELS, block_colors, draw_grid, symbol_axis
from deepsky.figures.style import save_figure

POOL_INPUT = [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]
POOL_1D_INPUT = [2, 5, 1, 3, 8, 6, 4, 0]


def pooling_numbers(x=POOL_INPUT, size: int = 2) -> dict:
    """Max, sum, average and square-sum (L2) pooling over non-overlapping size x size windows."""
    t = torch.tensor(x, dtype=torch.float64)
    windows = t.unfold(0, size, size).unfold(1, size, size)  # (out, out, size, size)
    flat = windows.reshape(*windows.shape[:2], -1)
    out = {
        "input": t.numpy(),
        "max": flat.max(dim=-1).values.numpy(),
        "sum": flat.sum(dim=-1).numpy(),
        "square_sum": flat.pow(2).sum(dim=-1).sqrt().numpy(),
    }
    out["average"] = out["sum"] / size**2
    return out


def max_pool_1d_steps(x=POOL_1D_INPUT, size: int = 2, stride: int = 2) -> list[dict]:
    """Max pooling of a 1-D signal one window at a time."""
    t = torch.tensor(x, dtype=torch.float64)
    steps = []
    for k, start in enumerate(range(0, len(x) - size + 1, stride)):
        window = t[start : start + size]
        steps.append({"step": k, "start": start, "window": window.numpy(), "max": float(window.max())})
    return steps


def _cell_row(ax, y, values, x0=0.0, faces=None, texts=None, fontsize=18):
    for i, v in enumerate(values):
        face = faces[i] if faces is not None else "white"
        ax.add_patch(Rectangle((x0 + i, y), 1, 1, facecolor=face, edgecolor="0.3", lw=1.3))
        label = texts[i] if texts is not None else ("" if v is None else f"{v:g}")
        ax.text(x0 + i + 0.5, y + 0.5, label, ha="center", va="center", fontsize=fontsize)


def fig_pooling_types(png_path) -> dict:
    """002 'TYPES OF POOLING' (max, sum, square-sum on a 4x4 input) and 'MAX POOLING 1D'."""
    res = pooling_numbers()
    steps = max_pool_1d_steps()
    x = res["input"]
    faces = block_colors(4, 4, 2, PASTELS)
    out_faces = block_colors(2, 2, 1, PASTELS)

    fig = plt.figure(figsize=(16, 12.5))
    top = fig.add_gridspec(1, 8, width_ratios=[4, 0.9, 2, 0.35, 2, 0.35, 2, 0.1], top=0.9, bottom=0.5,
                           wspace=0.12)
    ax_in = fig.add_subplot(top[0, 0])
    draw_grid(ax_in, x, fmt="{:.0f}", facecolors=faces, fontsize=22, title="input 4×4\n(2×2 windows, stride 2)")
    symbol_axis(fig.add_subplot(top[0, 1]), "→", fontsize=40)
    panels = [
        ("MAX POOLING\n$y = \\max(x_{uv})$", [[f"{v:g}" for v in r] for r in res["max"]], 20),
        ("SUM POOLING\n$y = \\sum x_{uv}$\n(average = sum / 4)",
         [[f"{s:g}\n({a:g})" for s, a in zip(rs, ra)] for rs, ra in zip(res["sum"], res["average"])], 16),
        ("SQUARE SUM POOLING\n$y = \\sqrt{\\sum x_{uv}^2}$", [[f"{v:.2f}" for v in r] for r in res["square_sum"]], 18),
    ]
    for col, (title, labels, size) in zip((2, 4, 6), panels):
        ax = fig.add_subplot(top[0, col])
        draw_grid(ax, np.zeros((2, 2)), labels=labels, facecolors=out_faces, fontsize=size, title=title)

    ax1 = fig.add_axes([0.02, 0.02, 0.96, 0.4])
    ax1.set_aspect("equal")
    ax1.axis("off")
    n_in, n_out = len(POOL_1D_INPUT), len(steps)
    x_out = n_in + 2.5
    for k, st in enumerate(steps):
        y = -1.45 * k
        in_faces = ["#f4f4f4"] * n_in
        for j in range(st["start"], st["start"] + len(st["window"])):
            in_faces[j] = "#f4a3a3"
        _cell_row(ax1, y, POOL_1D_INPUT, faces=in_faces)
        ax1.add_patch(Rectangle((st["start"], y), len(st["window"]), 1, fill=False, edgecolor="tab:red", lw=4,
                                zorder=5))
        filled = [s["max"] if s["step"] <= k else None for s in steps]
        o_faces = ["#f4a3a3" if i == k else ("#fde0c5" if i < k else "white") for i in range(n_out)]
        _cell_row(ax1, y, filled, x0=x_out, faces=o_faces)
        ax1.add_patch(FancyArrowPatch((n_in + 0.3, y + 0.5), (x_out - 0.3, y + 0.5), arrowstyle="-|>",
                                      mutation_scale=25, lw=2, color="0.3"))
        w = ", ".join(f"{v:g}" for v in st["window"])
        ax1.text(x_out + n_out + 0.5, y + 0.5, f"step {k + 1}: max({w}) = {st['max']:g}", va="center",
                 fontsize=17)
    ax1.text(n_in / 2, 1.3, "input (8)", ha="center", fontsize=17)
    ax1.text(x_out + n_out / 2, 1.3, "output (4)", ha="center", fontsize=17)
    ax1.set_xlim(-0.5, x_out + n_out + 9.5)
    ax1.set_ylim(-1.45 * (n_out - 1) - 0.3, 2.2)
    fig.text(0.5, 0.44, "MAX POOLING 1D  (window 2, stride 2): only one value out of every 2 is kept",
             ha="center", fontsize=19)
    fig.suptitle("Types of pooling: downsampling 4×4 → 2×2", fontsize=21, y=0.985)
    save_figure(fig, png_path)
    res["max_1d_input"] = np.asarray(POOL_1D_INPUT, dtype=float)
    res["max_1d_output"] = np.array([s["max"] for s in steps])
    res["max_1d_steps"] = steps
    return res
