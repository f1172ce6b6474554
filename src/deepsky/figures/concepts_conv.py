"""Convolution concept figures (lectures 002 and 003), every number computed with torch.

Each ``fig_*`` function draws one slide-sized figure, saves it as PNG + PDF with
:func:`deepsky.figures.style.save_figure` and returns the numbers it shows so that
tests can check them against the slides.
"""

from __future__ import annotations

from fractions import Fraction

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.patches import Rectangle
from torch import nn

from deepsky.figures.concepts_common import draw_grid, symbol_axis
from deepsky.figures.style import save_figure

# ----------------------------------------------------------------------------------------------
# Lecture 002, "2-D CONVOLUTION": 1/9 kernel on a 5x5 image
# ----------------------------------------------------------------------------------------------

CONV_IMAGE = [
    [3, 3, 2, 1, 0],
    [0, 0, 1, 3, 1],
    [3, 1, 2, 2, 3],
    [2, 0, 0, 2, 2],
    [2, 0, 0, 0, 1],
]
CONV_OUTPUT_SLIDE = [
    [1.7, 1.7, 1.7],
    [1.0, 1.2, 1.8],
    [1.1, 0.8, 1.3],
]


def box_filter_convolution() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, kernel, output) of the lecture-002 example, output from ``F.conv2d``."""
    x = torch.tensor(CONV_IMAGE, dtype=torch.float64)[None, None]
    k = torch.full((1, 1, 3, 3), 1.0 / 9.0, dtype=torch.float64)
    y = F.conv2d(x, k)[0, 0]
    return x[0, 0].numpy(), k[0, 0].numpy(), y.numpy()


def fig_convolution_arithmetic(png_path) -> dict:
    """002 '2-D CONVOLUTION': input 5x5 * kernel (1/9) = output 3x3 with the sliding window."""
    image, kernel, out = box_filter_convolution()
    w_in, f = image.shape[0], kernel.shape[0]
    w_out = out.shape[0]

    fig = plt.figure(figsize=(16, 7.2))
    gs = fig.add_gridspec(1, 5, width_ratios=[5, 0.9, 3, 0.9, 3], wspace=0.05)
    ax_in, ax_star, ax_k, ax_eq, ax_out = (fig.add_subplot(gs[0, i]) for i in range(5))

    first, second = (0, 0), (1, 2)
    draw_grid(
        ax_in, image, fmt="{:.0f}", cmap="Greys", vmin=0, vmax=8,
        boxes=[(*first, f, f, "tab:red"), (*second, f, f, "tab:blue", "--")],
        title=f"INPUT (IMAGE)  {w_in}×{w_in}", fontsize=20,
    )
    draw_grid(
        ax_k, kernel, labels=[["1/9"] * f for _ in range(f)], cmap="Greens", vmin=0, vmax=0.5,
        title=f"KERNEL  {f}×{f}", fontsize=18,
    )
    draw_grid(
        ax_out, out, fmt="{:.1f}", cmap="Oranges", vmin=0, vmax=4,
        boxes=[(*first, 1, 1, "tab:red"), (*second, 1, 1, "tab:blue", "--")],
        title=f"OUTPUT  {w_out}×{w_out}", fontsize=20,
    )
    symbol_axis(ax_star, "∗")
    symbol_axis(ax_eq, "=")

    win = image[: f, : f]
    terms = " + ".join(f"{v:.0f}" for v in win.ravel())
    fig.suptitle("2-D convolution: each 3×3 region generates an output (a neuron with 9 inputs)",
                 fontsize=19, y=0.99)
    fig.text(0.5, 0.085,
             f"red window: ({terms}) / 9 = {win.sum():.0f}/9 = {out[first]:.3f} → {out[first]:.1f}"
             f"      blue window → {out[second]:.1f}",
             ha="center", fontsize=16)
    fig.text(0.5, 0.02,
             r"$\mathrm{Size}_{output} = \mathrm{Size}_{input} - \mathrm{Size}_{kernel} + 1$"
             f"  =  {w_in} − {f} + 1 = {w_out}        (torch.nn.functional.conv2d)",
             ha="center", fontsize=17)
    save_figure(fig, png_path)
    return {
        "image": image,
        "kernel": kernel,
        "output": out,
        "output_rounded": np.round(out, 1),
        "output_size": w_out,
        "output_size_formula": w_in - f + 1,
    }


# ----------------------------------------------------------------------------------------------
# Lecture 003, "CNN: hyperparameters": W_out = (W_in - F + 2P)/S + 1
# ----------------------------------------------------------------------------------------------

# (example, operation, W, F, P, S)
OUTPUT_SIZE_EXAMPLES = [
    ("002: 1/9 kernel, 5×5 image", "conv", 5, 3, 0, 1),
    ("002: transposed-conv example", "conv", 4, 3, 0, 1),
    ("003: 32×32×3 image, 5×5 filter", "conv", 32, 5, 0, 1),
    ("zero padding keeps the size", "conv", 32, 5, 2, 1),
    ("stride 2", "conv", 7, 3, 0, 2),
    ("stride 2 + padding", "conv", 7, 3, 1, 2),
    ("002 DeepMerge: conv 5×5", "conv", 75, 5, 2, 1),
    ("002 DeepMerge: max-pool 2×2", "maxpool", 75, 2, 0, 2),
    ("002 DeepMerge: conv 3×3", "conv", 37, 3, 1, 1),
]


def torch_output_size(op: str, w: int, f: int, p: int, s: int) -> int:
    """Spatial output size of an actual torch layer on a (1, 1, w, w) input."""
    x = torch.zeros(1, 1, w, w)
    if op == "conv":
        y = F.conv2d(x, torch.zeros(1, 1, f, f), stride=s, padding=p)
    elif op == "maxpool":
        y = F.max_pool2d(x, kernel_size=f, stride=s, padding=p)
    else:
        raise ValueError(op)
    assert y.shape[-1] == y.shape[-2]
    return int(y.shape[-1])


def fig_output_size_formula(png_path) -> dict:
    """003 'CNN: hyperparameters': the output-size formula checked against real layer shapes."""
    rows = []
    for name, op, w, f, p, s in OUTPUT_SIZE_EXAMPLES:
        exact = Fraction(w - f + 2 * p, s) + 1
        rows.append({
            "example": name, "op": op, "W": w, "F": f, "P": p, "S": s,
            "formula": float(exact), "formula_floor": int(exact.numerator // exact.denominator),
            "torch": torch_output_size(op, w, f, p, s),
        })

    fig, ax = plt.subplots(figsize=(16, 6.8))
    ax.axis("off")
    header = ["example (lecture)", "layer", "W", "F", "P", "S", "(W−F+2P)/S + 1", "torch shape", ""]
    cells = []
    for r in rows:
        val = r["formula"]
        formula_txt = f"{val:g}" if float(val).is_integer() else f"{val:g} → ⌊·⌋ = {r['formula_floor']}"
        ok = r["formula_floor"] == r["torch"]
        cells.append([r["example"], "conv2d" if r["op"] == "conv" else "max_pool2d", r["W"], r["F"],
                      r["P"], r["S"], formula_txt, f"{r['torch']}×{r['torch']}", "✓" if ok else "✗"])
    table = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center",
                     colWidths=[0.31, 0.13, 0.05, 0.05, 0.05, 0.05, 0.2, 0.12, 0.04])
    table.auto_set_font_size(False)
    table.set_fontsize(15)
    table.scale(1, 2.3)
    for (i, j), cell in table.get_celld().items():
        cell.set_edgecolor("0.6")
        if i == 0:
            cell.set_facecolor("#d9e6f2")
            cell.set_text_props(weight="bold")
        if j == 0 and i > 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.02
        if j == 8 and i > 0:
            cell.set_text_props(color="tab:green", weight="bold", fontsize=18)
    ax.set_title(r"$W^{out} = \dfrac{W^{in} - F + 2P}{S} + 1$"
                 "     (F: receptive field, P: zero padding, S: stride)", fontsize=20, pad=14)
    fig.text(0.5, 0.0,
             "Every row is checked against the shape of an actual torch layer; a non-integer result is "
             "floored by torch.\nThe extracted 003 slide text reads “− 2P”; conv2d shapes confirm + 2P.",
             ha="center", fontsize=13, color="0.3")
    save_figure(fig, png_path)
    return {"rows": rows}


# ----------------------------------------------------------------------------------------------
# Lecture 002, "1-D CONVOLUTION" and "MULTIPLE CONVOLUTIONS WITH DIFFERENT KERNELS"
# ----------------------------------------------------------------------------------------------

EMISSION_LINES = {"Hβ": (4861.3, 0.6), "[OIII]": (5006.8, 1.2), "Hα": (6562.8, 1.6)}
ABSORPTION_LINES = {"Mg b": (5175.0, 0.35), "Na D": (5892.9, 0.35)}
LINE_SIGMA = 8.0  # Gaussian line width, Angstrom


def synthetic_spectrum(n_pix: int = 700, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Continuum + Gaussian emission/absorption lines + Gaussian noise (seeded)."""
    lam = torch.linspace(4500.0, 7000.0, n_pix, dtype=torch.float64)
    t = (lam - 5750.0) / 1250.0
    flux = 1.0 + 0.25 * t - 0.12 * t**2
    sigma = LINE_SIGMA
    for centre, amp in EMISSION_LINES.values():
        flux = flux + amp * torch.exp(-0.5 * ((lam - centre) / sigma) ** 2)
    for centre, depth in ABSORPTION_LINES.values():
        flux = flux - depth * torch.exp(-0.5 * ((lam - centre) / sigma) ** 2)
    gen = torch.Generator().manual_seed(seed)
    flux = flux + 0.05 * torch.randn(n_pix, generator=gen, dtype=torch.float64)
    return lam.numpy(), flux.numpy()


def spectrum_kernels(pix_per_sigma: float, length: int = 21) -> dict[str, np.ndarray]:
    """Smoothing, derivative and line-matched kernels, zero-padded to a common odd length."""
    half = length // 2
    k = np.arange(-half, half + 1, dtype=float)
    smooth = np.exp(-0.5 * (k / 2.0) ** 2)
    smooth /= smooth.sum()
    deriv = np.zeros(length)
    deriv[half - 1], deriv[half + 1] = -0.5, 0.5  # cross-correlation: (x[i+1] - x[i-1]) / 2
    line = np.exp(-0.5 * (k / pix_per_sigma) ** 2)
    line -= line.mean()  # zero mean: no response to a flat continuum
    line /= np.abs(line).sum() / 2
    return {"smoothing (Gaussian)": smooth, "edge / derivative": deriv, "line-matched (zero-mean)": line}


def fig_1d_convolution(png_path) -> dict:
    """002 '1-D CONVOLUTION' on a spectrum: three kernels of one Conv1d -> three feature maps."""
    lam, flux = synthetic_spectrum()
    dlam = lam[1] - lam[0]
    kernels = spectrum_kernels(pix_per_sigma=LINE_SIGMA / dlam)
    names = list(kernels)
    length = len(kernels[names[0]])

    # no padding ('valid'): len(output) = len(input) - len(kernel) + 1, no zero-padding edge artefacts
    conv = nn.Conv1d(1, len(names), kernel_size=length, bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(np.stack([kernels[n] for n in names]))[:, None, :])
        x = torch.tensor(flux)[None, None]
        maps = conv(x)[0].numpy()
        single = np.stack([
            F.conv1d(x, torch.tensor(kernels[n])[None, None])[0, 0].numpy() for n in names
        ])
    max_diff = float(np.abs(maps - single).max())
    lam_out = lam[length // 2 : len(lam) - length // 2]

    fig = plt.figure(figsize=(16, 12))
    gs = fig.add_gridspec(4, 2, width_ratios=[1, 5], hspace=0.45, wspace=0.12)
    ax_sp = fig.add_subplot(gs[0, 1])
    ax_sp.plot(lam, flux, color="k", lw=1.4)
    for name, (c, _) in EMISSION_LINES.items():
        ax_sp.annotate(name, (c, flux[np.argmin(np.abs(lam - c))]), xytext=(0, 6),
                       textcoords="offset points", ha="center", fontsize=14, color="tab:red")
    for name, (c, _) in ABSORPTION_LINES.items():
        ax_sp.annotate(name, (c, flux[np.argmin(np.abs(lam - c))]), xytext=(0, -20),
                       textcoords="offset points", ha="center", fontsize=14, color="tab:blue")
    ax_sp.set_title("INPUT DATA: spectrum (continuum + emission/absorption lines + noise)")
    ax_sp.set_ylabel("flux")
    ax_sp.set_ylim(flux.min() - 0.6, flux.max() + 0.4)
    ax_txt = fig.add_subplot(gs[0, 0])
    ax_txt.axis("off")
    ax_txt.text(0.5, 0.5, "$y_i = \\sum_k w_k\\, x_{i+k}$\n\nsame weights at\nevery position\n\n"
                f"{len(flux)} − {length} + 1\n= {maps.shape[1]} outputs",
                ha="center", va="center", fontsize=15, transform=ax_txt.transAxes)

    colours = ["tab:green", "tab:purple", "tab:red"]
    matched_peaks = {}
    for row, (name, colour) in enumerate(zip(names, colours), start=1):
        ax_k = fig.add_subplot(gs[row, 0])
        kern = kernels[name]
        offs = np.arange(length) - length // 2
        ax_k.stem(offs, kern, linefmt=colour, markerfmt="o", basefmt="k-")
        ax_k.set_title("kernel " + str(row), fontsize=14)
        ax_k.set_xticks([-10, 0, 10])
        ax_k.tick_params(labelsize=11)
        ax_f = fig.add_subplot(gs[row, 1], sharex=ax_sp)
        ax_f.plot(lam_out, maps[row - 1], color=colour, lw=1.6)
        ax_f.set_title(f"feature map {row}: {name}", fontsize=15)
        if "line" in name:
            for lname, (c, _) in EMISSION_LINES.items():
                window = np.abs(lam_out - c) < 25
                i_peak = np.flatnonzero(window)[np.argmax(maps[row - 1][window])]
                matched_peaks[lname] = float(lam_out[i_peak])
                ax_f.annotate(lname, (lam_out[i_peak], maps[row - 1][i_peak]), xytext=(8, -4),
                              textcoords="offset points", fontsize=13, color="tab:red")
    ax_f.set_xlabel("wavelength [Å]")
    fig.suptitle("1-D convolution: several kernels → several feature maps (one nn.Conv1d, 3 output channels)",
                 fontsize=19, y=0.955)
    save_figure(fig, png_path)
    return {
        "wavelength": lam,
        "wavelength_out": lam_out,
        "flux": flux,
        "kernels": kernels,
        "feature_maps": maps,
        "conv1d_vs_single_max_abs_diff": max_diff,
        "matched_filter_peaks": matched_peaks,
        "n_feature_maps": maps.shape[0],
    }


# ----------------------------------------------------------------------------------------------
# Lecture 002, "CONVOLUTIONS CAN ALSO BE COMPUTED ACROSS CHANNELS": 3 channels -> 1 output
# ----------------------------------------------------------------------------------------------


def multichannel_example(seed: int = 7) -> dict:
    """A 3x5x5 'g, r, i' image, a 3x3x3 kernel and bias; per-channel maps, their sum and conv2d."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 4, size=(3, 5, 5)).astype(float)
    kernel = rng.integers(-1, 2, size=(3, 3, 3)).astype(float)
    bias = 1.0
    x = torch.tensor(image)[None]
    w = torch.tensor(kernel)[None]
    per_channel = np.stack([
        F.conv2d(x[:, c : c + 1], w[:, c : c + 1])[0, 0].numpy() for c in range(3)
    ])
    full = F.conv2d(x, w, bias=torch.tensor([bias], dtype=torch.float64))[0, 0].numpy()
    return {"image": image, "kernel": kernel, "bias": bias, "per_channel": per_channel,
            "sum_plus_bias": per_channel.sum(axis=0) + bias, "conv2d": full}


def fig_multichannel_convolution(png_path) -> dict:
    """002 'CONVOLUTIONS CAN ALSO BE COMPUTED ACROSS CHANNELS (OR COLORS)': per-channel sums."""
    ex = multichannel_example()
    bands = ["g", "r", "i"]
    cmaps = ["Greens", "Reds", "Purples"]
    fig = plt.figure(figsize=(17, 12.5))
    gs = fig.add_gridspec(3, 7, width_ratios=[5, 0.7, 3, 0.7, 3, 1.8, 3.6], hspace=0.35, wspace=0.08)
    for c in range(3):
        ax_x = fig.add_subplot(gs[c, 0])
        draw_grid(ax_x, ex["image"][c], fmt="{:.0f}", cmap=cmaps[c], vmin=-1, vmax=6, boxes=[(0, 0, 3, 3)],
                  title=f"input channel {bands[c]}" if c else f"input channel {bands[c]}  (5×5×3)", fontsize=17)
        symbol_axis(fig.add_subplot(gs[c, 1]), "∗", fontsize=30)
        ax_k = fig.add_subplot(gs[c, 2])
        klabels = [["0" if v == 0 else f"{v:+.0f}".replace("-", "−") for v in row] for row in ex["kernel"][c]]
        draw_grid(ax_k, ex["kernel"][c], labels=klabels, cmap="RdBu_r", vmin=-2.5, vmax=2.5,
                  title=f"kernel channel {bands[c]}", fontsize=17)
        symbol_axis(fig.add_subplot(gs[c, 3]), "=", fontsize=30)
        ax_o = fig.add_subplot(gs[c, 4])
        draw_grid(ax_o, ex["per_channel"][c], fmt="{:.0f}", cmap="Greys", vmin=-12, vmax=14,
                  boxes=[(0, 0, 1, 1)], title=f"channel {bands[c]} map", fontsize=17)
    ax_sum = fig.add_subplot(gs[:, 5])
    ax_sum.axis("off")
    ax_sum.text(0.5, 0.5, "Σ over\nchannels\n+ b\n(b = %g)\n\n→" % ex["bias"], ha="center", va="center",
                fontsize=17, transform=ax_sum.transAxes)
    ax_out = fig.add_subplot(gs[1, 6])
    draw_grid(ax_out, ex["sum_plus_bias"], fmt="{:.0f}", cmap="Oranges", vmin=-10, vmax=25,
              boxes=[(0, 0, 1, 1)], title="OUTPUT (1 channel)", fontsize=19)
    pc = ex["per_channel"][:, 0, 0]
    ax_eq = fig.add_subplot(gs[2, 6])
    ax_eq.axis("off")
    ax_eq.text(0.5, 0.75,
               f"top-left:\n{pc[0]:.0f} + {pc[1]:.0f} + {pc[2]:.0f} + {ex['bias']:.0f}\n= {ex['sum_plus_bias'][0, 0]:.0f}",
               ha="center", va="center", fontsize=17, transform=ax_eq.transAxes)
    ok = np.allclose(ex["sum_plus_bias"], ex["conv2d"])
    ax_eq.text(0.5, 0.15, ("✓ equals " if ok else "✗ differs from ") + "conv2d\nwith 3 input channels",
               ha="center", va="center", fontsize=14, color="tab:green" if ok else "tab:red",
               transform=ax_eq.transAxes)
    fig.suptitle("Convolution across channels: the kernel also has 3 channels; per-channel results are summed",
                 fontsize=19, y=0.965)
    save_figure(fig, png_path)
    return ex


# ----------------------------------------------------------------------------------------------
# Lecture 002, "OPTIONS: STRIDES" and "OPTIONS: DILATION"
# ----------------------------------------------------------------------------------------------

STRIDE_DILATION_CASES = [(1, 1), (2, 1), (1, 2), (2, 2)]  # (stride, dilation)


def receptive_positions(w: int, f: int, stride: int, dilation: int, out_index: tuple[int, int]) -> list:
    """Input pixels that output `out_index` depends on, from the autograd gradient of conv2d."""
    x = torch.zeros(1, 1, w, w, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(x, torch.ones(1, 1, f, f, dtype=torch.float64), stride=stride, dilation=dilation)
    (g,) = torch.autograd.grad(y[0, 0][out_index], x)
    return [tuple(int(v) for v in p) for p in torch.nonzero(g[0, 0]).tolist()]


def stride_dilation_numbers(w: int = 7, f: int = 3, padding: int = 0) -> list[dict]:
    cases = []
    for s, d in STRIDE_DILATION_CASES:
        rf = d * (f - 1) + 1
        formula = (w + 2 * padding - rf) // s + 1
        y = F.conv2d(torch.zeros(1, 1, w, w), torch.zeros(1, 1, f, f), stride=s, dilation=d, padding=padding)
        cases.append({
            "stride": s, "dilation": d, "receptive_field": rf, "output_size_formula": formula,
            "output_size_torch": int(y.shape[-1]),
            "taps_first": receptive_positions(w, f, s, d, (0, 0)),
            "taps_next": receptive_positions(w, f, s, d, (0, 1)),
        })
    return cases


def _cells(ax, x0, y0, n, size=1.0, face="white", edge="0.4", lw=1.2):
    for i in range(n):
        for j in range(n):
            ax.add_patch(Rectangle((x0 + j * size, y0 - (i + 1) * size), size, size, facecolor=face,
                                   edgecolor=edge, linewidth=lw))


def fig_strides_dilation(png_path) -> dict:
    """002 'OPTIONS: STRIDES' / 'OPTIONS: DILATION': sampled input positions and output sizes."""
    w, f = 7, 3
    cases = stride_dilation_numbers(w, f)
    fig, axes = plt.subplots(2, 2, figsize=(16, 12))
    for ax, case in zip(axes.ravel(), cases):
        ax.set_aspect("equal")
        ax.axis("off")
        _cells(ax, 0, w, w, face="#f4f4f4")
        rf = case["receptive_field"]
        ax.add_patch(Rectangle((0, w - rf), rf, rf, fill=False, edgecolor="tab:red", lw=3.5, ls="--", zorder=4))
        for (r, c) in case["taps_first"]:
            ax.add_patch(Rectangle((c, w - r - 1), 1, 1, facecolor="#f4a3a3", edgecolor="0.4", lw=1.2))
        for (r, c) in case["taps_next"]:
            ax.plot(c + 0.5, w - r - 0.5, marker="x", color="tab:blue", ms=16, mew=3.5)
        n = case["output_size_torch"]
        ox = w + 1.6
        _cells(ax, ox, w, n, face="#fde0c5")
        ax.add_patch(Rectangle((ox, w - 1), 1, 1, facecolor="#f4a3a3", edgecolor="0.4", lw=1.2))
        if n > 1:
            ax.plot(ox + 1.5, w - 0.5, marker="x", color="tab:blue", ms=16, mew=3.5)
        ax.text(w / 2, -0.45, f"input {w}×{w}", ha="center", va="top", fontsize=15)
        ax.text(ox + n / 2, w - n - 0.3, f"output\n{n}×{n}", ha="center", va="top", fontsize=15)
        ax.set_xlim(-0.3, w + 1.6 + 5.3)
        ax.set_ylim(-1.6, w + 0.3)
        ax.set_title(f"stride S={case['stride']}, dilation D={case['dilation']}\n"
                     f"receptive field {rf}×{rf} → output {n}×{n}", fontsize=17)
    fig.suptitle("Strides and dilation (3×3 kernel, no padding).  Red: input pixels sampled by the first "
                 "output;\nblue ×: those of its right neighbour.  "
                 r"$W_{out} = \lfloor (W_{in} + 2P - D(F-1) - 1)/S \rfloor + 1$ (checked with conv2d)",
                 fontsize=17, y=0.99)
    fig.subplots_adjust(hspace=0.18, wspace=0.08, top=0.86)
    save_figure(fig, png_path)
    return {"input_size": w, "kernel_size": f, "cases": cases}


# ----------------------------------------------------------------------------------------------
# Lecture 002, "TRANSPOSED CONVOLUTION" / "CONVOLUTION MATRIX"
# ----------------------------------------------------------------------------------------------

TRANSPOSED_KERNEL = [[1, 4, 1], [1, 4, 3], [3, 3, 1]]
TRANSPOSED_INPUT = [[4, 5, 8, 7], [1, 8, 8, 8], [3, 6, 6, 4], [6, 5, 7, 8]]
TRANSPOSED_SMALL = [[2, 1], [4, 4]]
CONVOLUTION_MATRIX_SLIDE = [
    [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0],
    [0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0],
    [0, 0, 0, 0, 0, 1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1],
]


def convolution_matrix(kernel: np.ndarray, in_size: int) -> np.ndarray:
    """Matrix C with C @ x.flatten() == conv2d(x, kernel).flatten() (no padding, stride 1).

    Row r is the kernel laid into an in_size x in_size zero image at output position r.
    """
    kernel = np.asarray(kernel, dtype=float)
    f = kernel.shape[0]
    out = in_size - f + 1
    rows = []
    for i in range(out):
        for j in range(out):
            canvas = np.zeros((in_size, in_size))
            canvas[i : i + f, j : j + f] = kernel
            rows.append(canvas.ravel())
    return np.stack(rows)


def transposed_convolution_example() -> dict:
    k = torch.tensor(TRANSPOSED_KERNEL, dtype=torch.float64)
    x = torch.tensor(TRANSPOSED_INPUT, dtype=torch.float64)
    y_small = torch.tensor(TRANSPOSED_SMALL, dtype=torch.float64)
    c = convolution_matrix(k.numpy(), 4)
    c_t = torch.tensor(c)
    cx = (c_t @ x.flatten()).reshape(2, 2)
    conv = F.conv2d(x[None, None], k[None, None])[0, 0]
    cty = (c_t.T @ y_small.flatten()).reshape(4, 4)
    convt = F.conv_transpose2d(y_small[None, None], k[None, None])[0, 0]
    # The same matrix is the Jacobian of conv2d: column j = conv2d of the j-th unit image.
    basis = torch.eye(16, dtype=torch.float64).reshape(16, 1, 4, 4)
    jac = F.conv2d(basis, k[None, None]).reshape(16, 4).T.numpy()
    return {"kernel": k.numpy(), "C": c, "x": x.numpy(), "Cx": cx.numpy(), "conv2d": conv.numpy(),
            "y": y_small.numpy(), "CTy": cty.numpy(), "conv_transpose2d": convt.numpy(),
            "C_from_conv2d_basis": jac}


def fig_transposed_convolution_matrix(png_path) -> dict:
    """002 'CONVOLUTION MATRIX': the 4x16 matrix, C·x = conv2d and Cᵀ·y = conv_transpose2d."""
    ex = transposed_convolution_example()
    fig = plt.figure(figsize=(18, 10))
    gs_top = fig.add_gridspec(1, 2, width_ratios=[3, 16], top=0.87, bottom=0.6, wspace=0.1)
    gs_bot = fig.add_gridspec(1, 7, width_ratios=[4, 1.3, 2, 2.2, 2, 1.3, 4], top=0.5, bottom=0.04,
                              wspace=0.05)
    ax_k = fig.add_subplot(gs_top[0, 0])
    draw_grid(ax_k, ex["kernel"], fmt="{:.0f}", cmap="Greens", vmin=0, vmax=6, tick_labels=True, fontsize=19)
    ax_k.set_title("Kernel (3, 3)", pad=12)
    ax_c = fig.add_subplot(gs_top[0, 1])
    draw_grid(ax_c, ex["C"], fmt="{:.0f}", cmap="Greens", vmin=0, vmax=6, tick_labels=True, zero_color="0.65",
              fontsize=17)
    ax_c.set_title("Convolution Matrix C (4, 16): row = output position, column = input pixel", pad=12)
    for ax in (ax_k, ax_c):
        ax.tick_params(which="major", labelsize=14)

    ok_conv = np.allclose(ex["Cx"], ex["conv2d"])
    ok_t = np.allclose(ex["CTy"], ex["conv_transpose2d"])
    ax_x = fig.add_subplot(gs_bot[0, 0])
    draw_grid(ax_x, ex["x"], fmt="{:.0f}", cmap="Blues", vmin=0, vmax=14, fontsize=19,
              title="x (4×4) → flattened to 16")
    symbol_axis(fig.add_subplot(gs_bot[0, 1]), "C·x\n→", fontsize=24)
    ax_cx = fig.add_subplot(gs_bot[0, 2])
    draw_grid(ax_cx, ex["Cx"], fmt="{:.0f}", cmap="Oranges", vmin=0, vmax=250, fontsize=19,
              title="C·x reshaped\n(2×2)")
    ax_cx.set_xlabel(("✓ = conv2d(x, k)" if ok_conv else "✗ ≠ conv2d"), fontsize=15,
                     color="tab:green" if ok_conv else "tab:red")
    ax_y = fig.add_subplot(gs_bot[0, 4])
    draw_grid(ax_y, ex["y"], fmt="{:.0f}", cmap="Oranges", vmin=0, vmax=10, fontsize=19,
              title="y (2×2)\n→ flattened to 4")
    symbol_axis(fig.add_subplot(gs_bot[0, 5]), "Cᵀ·y\n→", fontsize=24)
    ax_cty = fig.add_subplot(gs_bot[0, 6])
    draw_grid(ax_cty, ex["CTy"], fmt="{:.0f}", cmap="Blues", vmin=0, vmax=40, fontsize=19,
              title="Cᵀ·y reshaped (4×4)")
    ax_cty.set_xlabel(("✓ = conv_transpose2d(y, k)" if ok_t else "✗ ≠ conv_transpose2d"), fontsize=15,
                      color="tab:green" if ok_t else "tab:red")
    fig.suptitle("Transposed convolution as a matrix: convolution = C·x (4×16 @ 16), "
                 "transposed convolution = Cᵀ·y (16×4 @ 4)", fontsize=19, y=0.98)
    save_figure(fig, png_path)
    return ex


# ----------------------------------------------------------------------------------------------
# Lecture 002, "A 512x512 image as input of a fully connected layer ... (512x512)^2 = 7e10"
# ----------------------------------------------------------------------------------------------


def fully_connected_counts() -> dict:
    n = 512 * 512
    dense = nn.Linear(n, n, bias=False, device="meta")  # meta device: shapes only, no 275 GB allocation
    dense_weights = sum(p.numel() for p in dense.parameters())
    conv = nn.Conv2d(1, 64, kernel_size=3)
    conv_params = sum(p.numel() for p in conv.parameters())
    return {"dense_weights": int(dense_weights), "dense_formula": (512 * 512) ** 2,
            "conv_params": int(conv_params), "conv_weights": int(conv.weight.numel()),
            "conv_biases": int(conv.bias.numel()), "ratio": dense_weights / conv_params,
            "dense_float32_bytes": int(dense_weights) * 4}


def _sci(value: float, digits: int = 2) -> str:
    """6.87e10 -> mathtext '6.87×10^10'."""
    mantissa, exponent = f"{value:.{digits}e}".split("e")
    return f"${mantissa}\\times10^{{{int(exponent)}}}$"


def fig_fully_connected_parameters(png_path) -> dict:
    """002 'LARGE DIMENSION SIGNALS ... TREMENDOUSLY LARGE MODELS': dense vs 3x3 conv parameters."""
    c = fully_connected_counts()
    fig, ax = plt.subplots(figsize=(13, 7.5))
    labels = ["fully connected\n512×512 → 512×512", "convolution 3×3,\n64 filters (1 input channel)"]
    values = [c["dense_weights"], c["conv_params"]]
    bars = ax.bar(labels, values, color=["tab:red", "tab:green"], width=0.55)
    ax.set_yscale("log")
    ax.set_ylim(1e1, 1e13)
    ax.set_ylabel("number of learnable parameters")
    texts = [f"(512×512)² = {c['dense_weights']:,}\n≈ {_sci(c['dense_weights'])}"
             f"  ({c['dense_float32_bytes'] / 1e9:.0f} GB in float32)",
             f"64 × (3×3 + 1) = {c['conv_params']:,}\n({c['conv_weights']} weights + {c['conv_biases']} biases)"]
    for bar, text in zip(bars, texts):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height() * 2.5, text, ha="center", va="bottom",
                fontsize=15)
    ax.set_title(f"512×512 image: a dense layer has {_sci(c['ratio'])} × more parameters than a 3×3 conv layer",
                 fontsize=17)
    ax.grid(axis="x", visible=False)
    save_figure(fig, png_path)
    return c


__all__ = [
    "fig_convolution_arithmetic",
    "fig_output_size_formula",
    "fig_1d_convolution",
    "fig_multichannel_convolution",
    "fig_strides_dilation",
    "fig_transposed_convolution_matrix",
    "fig_fully_connected_parameters",
]

