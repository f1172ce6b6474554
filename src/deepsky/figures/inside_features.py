"""What a trained CNN has learnt (lecture 002, "VISUALIZING CNNs" / "EXPLORING THE FEATURE MAPS"):
first-layer filters, feature maps, top-9 activations per filter, and "inceptionism" images.

Every figure function has the signature
``fig_<name>(model, meta, images_raw, labels, png_path, **opts) -> dict``: ``images_raw`` are
cutouts as stored (N, C, H, W), normalised here with
:func:`~deepsky.data.tensors.asinh_stretch` exactly as in training; ``meta`` is the model file's
meta (``num_outputs``, ``class_names``, ``bands``...). The PNG and a PDF are written; the returned
dict holds the numbers drawn.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from deepsky.data.tensors import asinh_stretch
from deepsky.figures import inside_attribution as attr
from deepsky.figures.images import to_rgb
from deepsky.figures.style import save_figure

FILTER_CMAP = "RdBu_r"
MAP_CMAP = "magma"


# --------------------------------------------------------------------------- shared helpers
def normalise(images_raw) -> torch.Tensor:
    """Raw cutouts -> the model's input (asinh stretch, as in training)."""
    images = np.asarray(images_raw, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    return torch.from_numpy(asinh_stretch(images))


def class_names(meta: dict) -> list[str]:
    names = list(meta.get("class_names") or [])
    k = max(2, int(meta.get("num_outputs", 1)))
    if len(names) < k:
        names = (["non-lens", "lens"] if k == 2 else [f"class {i}" for i in range(k)])
    return names[:k]


def band_names(meta: dict, n: int) -> list[str]:
    bands = list(meta.get("bands") or [])
    return [str(b) for b in bands] if len(bands) == n else [f"band {i}" for i in range(n)]


def rgb_signed(image: np.ndarray, scale: float | None = None) -> np.ndarray:
    """(C, H, W) signed image -> (H, W, 3): grey = 0, reddest band red, bluest blue (linear)."""
    image = np.asarray(image, dtype=np.float32)
    chans = [image[-1], image[image.shape[0] // 2], image[0]] if image.shape[0] >= 3 else [image[0]] * 3
    rgb = np.stack(chans, -1)
    if scale is None:
        scale = float(np.percentile(np.abs(rgb), 99.5))
    return np.clip(0.5 + 0.5 * rgb / max(scale, 1e-12), 0, 1)


def pick_examples(labels, n: int, cls: int | None = None, scores=None) -> np.ndarray:
    """Indices of ``n`` images of class ``cls`` (all classes if None), by decreasing ``scores`` if given."""
    labels = np.asarray(labels)
    idx = np.arange(len(labels)) if cls is None else np.flatnonzero(labels == cls)
    if len(idx) == 0:
        idx = np.arange(len(labels))
    if scores is not None:
        idx = idx[np.argsort(-np.asarray(scores)[idx], kind="stable")]
    return idx[:n]


def blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)


def show(ax, picture, title=None, **kwargs):
    blank(ax)
    kwargs.setdefault("interpolation", "nearest")
    im = ax.imshow(picture, origin="lower", **kwargs)
    if title:
        ax.set_title(title, fontsize=13)
    return im


# --------------------------------------------------------------------------- 1. filters
def fig_first_layer_filters(model, meta, images_raw, labels, png_path, max_filters: int = 32, cols: int = 8) -> dict:
    """002 'VISUALIZE THE LEARNED WEIGHTS': the first conv layer's kernels, per band and as RGB."""
    name, conv = attr.first_conv(model)
    weights = conv.weight.detach().float().cpu().numpy()  # (O, C, k, k)
    n = min(len(weights), max_filters)
    w = weights[:n]
    # Each filter scaled by its own largest |weight|: its pattern, not its norm, is what is shown.
    scale = np.abs(w).reshape(n, -1).max(1)
    wn = w / np.maximum(scale, 1e-12)[:, None, None, None]
    c = w.shape[1]
    bands = band_names(meta, c)
    grids = ([("RGB composite", None)] if c >= 3 else []) + [(f"{b} band", i) for i, b in enumerate(bands[:6])]
    rows = int(np.ceil(n / cols))
    ncol_grids = 2 if len(grids) > 1 else 1
    nrow_grids = int(np.ceil(len(grids) / ncol_grids))
    fig = plt.figure(figsize=(7.2 * ncol_grids, (0.85 * rows + 0.75) * nrow_grids + 0.6))
    subs = np.atleast_1d(fig.subfigures(nrow_grids, ncol_grids, wspace=0.04, hspace=0.06)).ravel()
    im = None
    for sub, (title, band) in zip(subs, grids):
        axes = sub.subplots(rows, cols, squeeze=False, gridspec_kw={"wspace": 0.08, "hspace": 0.08})
        for k, ax in enumerate(axes.ravel()):
            blank(ax)
            if k >= n:
                ax.axis("off")
                continue
            if band is None:
                ax.imshow(rgb_signed(wn[k], scale=1.0), origin="lower", interpolation="nearest")
            else:
                im = ax.imshow(wn[k, band], origin="lower", interpolation="nearest", cmap=FILTER_CMAP, vmin=-1, vmax=1)
        sub.suptitle(title, fontsize=16)
    for sub in subs[len(grids):]:
        sub.set_facecolor("none")
    if im is not None:
        cax = fig.add_axes([0.3, -0.03, 0.4, 0.018])
        bar = fig.colorbar(im, cax=cax, orientation="horizontal")
        bar.set_label("weight / max |weight| of the filter (RGB: grey = 0)")
    k = w.shape[-1]
    fig.suptitle(f"First-layer filters ({name}: {len(weights)} kernels {k}×{k}×{c}"
                 f"{'' if n == len(weights) else f', first {n} shown'})", fontsize=18, y=1.03)
    save_figure(fig, png_path)
    return {"layer": name, "n_filters": int(len(weights)), "kernel_size": int(k), "in_channels": int(c),
            "shown": int(n), "weight_std": float(weights.std()), "max_abs_weight": float(np.abs(weights).max())}


# --------------------------------------------------------------------------- 2. feature maps
def _spread(n_total: int, n: int) -> list[int]:
    return sorted(set(np.linspace(0, n_total - 1, min(n, n_total)).round().astype(int).tolist()))


def fig_feature_maps(model, meta, images_raw, labels, png_path, index: int | None = None, n_layers: int = 4,
                     n_channels: int = 8, layers=None, max_images: int = 1000) -> dict:
    """002 'VISUALIZE THE FEATURE MAPS AT INTERMEDIATE LAYERS': one input (default: the most
    confidently found lens among the first ``max_images``) and, per depth, its most active
    channels (conv output after ReLU, each map on its own colour scale)."""
    if index is None:
        n_img = min(len(images_raw), max_images)
        labels_n = np.asarray(labels[:n_img], dtype=int)
        p_true = attr.predict_probability(model, normalise(np.asarray(images_raw[:n_img])), labels_n)
        index = int(pick_examples(labels_n, 1, cls=1, scores=p_true)[0])
    x = normalise(np.asarray(images_raw[index : index + 1]))
    index_in_x = 0
    convs = attr.conv_layers(model)
    if layers is None:
        layers = [convs[i][0] for i in _spread(len(convs), n_layers)]
    maps = attr.feature_maps(model, x[index_in_x : index_in_x + 1], layers)
    fig = plt.figure(figsize=(2.1 * (n_channels + 1.75), 2.25 * len(layers) + 0.6))
    grid = fig.add_gridspec(len(layers), n_channels + 2, width_ratios=[1.4, 0.35] + [1] * n_channels,
                            wspace=0.06, hspace=0.3)
    ax_in = fig.add_subplot(grid[:, 0])
    label = class_names(meta)[int(labels[index])]
    show(ax_in, to_rgb(np.asarray(images_raw[index])), f"input #{index}\n(label: {label})")
    ax_in.set_anchor("N")
    out = {"index": int(index), "layers": {}}
    for row, name in enumerate(layers):
        a = np.maximum(maps[name][0], 0)  # (K, h, w)
        order = np.argsort(-a.mean((1, 2)), kind="stable")[:n_channels]
        ax_label = fig.add_subplot(grid[row, 1])
        ax_label.axis("off")
        ax_label.text(0.5, 0.5, f"{name}\n{a.shape[0]}×{a.shape[1]}×{a.shape[2]}", rotation=90, ha="center",
                      va="center", fontsize=13, transform=ax_label.transAxes)
        for col, ch in enumerate(order):
            ax = fig.add_subplot(grid[row, col + 2])
            show(ax, a[ch], cmap=MAP_CMAP, vmin=0, vmax=max(float(a[ch].max()), 1e-12))
            ax.set_title(f"ch {ch}", fontsize=11, pad=2)
        out["layers"][name] = {"shape": list(a.shape), "channels": order.tolist(),
                               "mean_activation": float(a.mean()), "active_fraction": float((a > 0).mean())}
    fig.suptitle("Feature maps at increasing depth (most active channels, ReLU of the conv output)",
                 fontsize=18, y=0.99)
    save_figure(fig, png_path)
    return out


# --------------------------------------------------------------------------- 3. top-9
def selective_channel(values: np.ndarray, labels=None, cls: int = 1, k: int = 9) -> int:
    """A filter worth showing, from the (N, K) maximal activations of every image.

    With labels of two classes or more: the filter whose maximal activation best separates class
    ``cls`` from the rest (difference of means over the pooled std, e.g. a filter that fires on
    arcs). Otherwise: the filter whose top-k activations stand out most from its median."""
    values = np.asarray(values, dtype=np.float64)
    if labels is not None:
        labels = np.asarray(labels)
        pos, neg = labels == cls, labels != cls
        if pos.any() and neg.any():
            diff = values[pos].mean(0) - values[neg].mean(0)
            return int(np.argmax(diff / (values.std(0) + 1e-12)))
    top = -np.sort(-values, axis=0)[: min(k, len(values))].mean(0)
    return int(np.argmax((top - np.median(values, 0)) / (values.std(0) + 1e-12)))


def default_top9_layers(model) -> list[str]:
    convs = [n for n, _ in attr.conv_layers(model)]
    picks = [convs[min(1, len(convs) - 1)], convs[-2] if len(convs) >= 3 else convs[-1]]
    return list(dict.fromkeys(picks))


def fig_top9_activations(model, meta, images_raw, labels, png_path, layers=None, channels=None,
                         max_images: int = 2000, k: int = 9) -> dict:
    """002 'EVERY BLOCK OF 9 SHOWS THE 9 STRONGEST RESPONSES TO A GIVEN FILTER OF LAYER 2' (and a
    deeper layer): the images, the region responsible boxed, and that region enlarged."""
    n_img = min(len(images_raw), max_images)
    raw = np.asarray(images_raw[:n_img])
    x = normalise(raw)
    layers = default_top9_layers(model) if layers is None else list(layers)
    channels = [None] * len(layers) if channels is None else list(channels)
    side = int(np.ceil(np.sqrt(k)))
    fig = plt.figure(figsize=(8.6 * len(layers), 4.6 * 1 + 0.6))
    subs = np.atleast_1d(fig.subfigures(1, len(layers), wspace=0.05))
    out = {}
    for sub, layer, channel in zip(subs, layers, channels):
        name, _ = attr.get_layer(model, layer)
        if channel is None:
            values, _ = attr.max_activations(model, layer, x)
            channel = selective_channel(values, np.asarray(labels)[:n_img], k=k)
        res = attr.top_activations(model, layer, channel, x, k=k)
        pair = sub.subfigures(1, 2, wspace=0.02)
        full = pair[0].subplots(side, side, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
        crop = pair[1].subplots(side, side, squeeze=False, gridspec_kw={"wspace": 0.05, "hspace": 0.05})
        for j, (ax_f, ax_c) in enumerate(zip(full.ravel(), crop.ravel())):
            blank(ax_f)
            blank(ax_c)
            if j >= len(res["index"]):
                ax_f.axis("off")
                ax_c.axis("off")
                continue
            i = int(res["index"][j])
            y0, y1, x0, x1 = res["box"][j]
            rgb = to_rgb(raw[i])
            ax_f.imshow(rgb, origin="lower", interpolation="nearest")
            ax_f.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="#00e5ff", lw=1.8))
            edge = "tab:orange" if int(labels[i]) == 1 else "0.6"
            ax_c.imshow(rgb[y0:y1, x0:x1], origin="lower", interpolation="nearest")
            for spine in ax_c.spines.values():
                spine.set_visible(True)
                spine.set_color(edge)
                spine.set_linewidth(2.5)
        pair[0].suptitle("strongest 9 responses", fontsize=14)
        pair[1].suptitle("region responsible", fontsize=14)
        sizes = (res["box"][:, 1] - res["box"][:, 0]) * (res["box"][:, 3] - res["box"][:, 2])
        frac_lens = float(np.mean(np.asarray(labels)[res["index"]] == 1))
        sub.suptitle(f"{name}, filter {channel}: {int(round(100 * frac_lens))}% of its top {k} are lenses "
                     "(orange frame)", fontsize=16, y=1.05)
        out[name] = {"channel": int(channel), "index": res["index"].tolist(), "value": res["value"].tolist(),
                     "box": res["box"].tolist(), "mean_box_area": float(sizes.mean()), "fraction_lenses": frac_lens}
    fig.suptitle(f"Top-{k} activations of a filter of layer 2 and of a deeper layer, among {n_img} images",
                 fontsize=18, y=1.14)
    save_figure(fig, png_path)
    return out


# --------------------------------------------------------------------------- 6. inceptionism
def fig_class_maximisation(model, meta, images_raw, labels, png_path, steps: int = 200, l2: float = 1e-2,
                           lr: float = 0.05, seed: int = 0, init_std: float = 0.01) -> dict:
    """002 '"INCEPTIONISM" TECHNIQUES': per class, the input maximising its score minus
    lambda ||I||^2 (Adam on the pixels, weights frozen), and the score along the way."""
    c, size = int(meta["in_channels"]), int(meta["image_size"])
    names = class_names(meta)
    classes = list(range(min(len(names), 6)))
    results = {cls: attr.maximise_class(model, cls, (c, size, size), steps=steps, l2=l2, lr=lr, seed=seed,
                                        init_std=init_std) for cls in classes}
    scale = max(float(np.percentile(np.abs(img), 99.5)) for img, _ in results.values())
    mean_scale = max(float(np.percentile(np.abs(img.mean(0)), 99.5)) for img, _ in results.values())
    fig = plt.figure(figsize=(3.9 * len(classes) + 6.0, 7.4))
    grid = fig.add_gridspec(2, len(classes) + 1, width_ratios=[1] * len(classes) + [1.7], wspace=0.3, hspace=0.25)
    out = {"l2": float(l2), "steps": int(steps), "lr": float(lr), "classes": {}}
    ax_s = fig.add_subplot(grid[:, -1])
    mean_axes = []
    for cls in classes:
        img, scores = results[cls]
        ax = fig.add_subplot(grid[0, cls])
        show(ax, rgb_signed(img, scale), f"maximise S('{names[cls]}')\nfinal score {scores[-1]:.1f}")
        if cls == 0:
            ax.set_ylabel("colour composite", fontsize=13)
        ax_m = fig.add_subplot(grid[1, cls])
        mean_axes.append(ax_m)
        im = show(ax_m, img.mean(0), cmap=FILTER_CMAP, vmin=-mean_scale, vmax=mean_scale)
        if cls == 0:
            ax_m.set_ylabel("mean over bands", fontsize=13)
        ax_s.plot(np.arange(len(scores)), scores, label=names[cls])
        out["classes"][names[cls]] = {"start_score": float(scores[0]), "final_score": float(scores[-1]),
                                      "l2_norm": float(np.sqrt((img**2).sum())),
                                      "max_abs": float(np.abs(img).max())}
    ax_s.set(xlabel="Adam step", title="class score $S_c$ during the ascent")
    ax_s.legend()
    fig.colorbar(im, ax=mean_axes, orientation="horizontal", fraction=0.05, pad=0.04,
                 label="normalised units (0 = sky)")
    fig.suptitle(f"Inceptionism: $\\arg\\max_I\\, S_c(I) - \\lambda\\|I\\|_2^2$, λ = {l2:g}, {steps} Adam steps, "
                 f"weights frozen (composite: grey = sky, ±{scale:.1f})", fontsize=16, y=1.03)
    save_figure(fig, png_path)
    return out
