"""Inside a trained lens finder: lecture 002's "VISUALIZING CNNs" slides and the "solving the wrong
problem" pitfall of lectures 000/001 (Ribeiro et al. 2016, husky vs wolf).

Figure functions ``fig_<name>(model, meta, images_raw, labels, png_path, **opts) -> dict`` take
a model from :func:`deepsky.models_io.load_model`, its meta, raw cutouts (N, C, H, W) as stored
(normalised here with ``asinh_stretch`` like in training) and their labels; each writes the PNG
and a PDF beside it and returns the numbers it draws. :data:`INSIDE_FIGURES` maps a stem to its
function; the numbers are computed by the pure functions of
:mod:`deepsky.figures.inside_attribution` (re-exported here).

The pitfall: :func:`fig_spurious_attribution` compares the saliency / Grad-CAM maps of a model
trained on clean data and of one trained with an artefact (:mod:`deepsky.data.artefacts`) in the
lens class only; :func:`fig_spurious_accuracy` draws the accuracy of such models when the test
artefacts sit in the lens class vs in the non-lens class.

Command line (every figure of one saved model on the first images of a dataset)::

    python -m deepsky.figures.inside MODEL.pt DATASET_DIR OUTDIR [--max-images 2000] [--stems ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from deepsky.data.artefacts import add_artefact
from deepsky.figures import inside_attribution as attr
from deepsky.figures.images import to_rgb
from deepsky.figures.inside_attribution import (  # noqa: F401  (re-exported API)
    artefact_attention_fraction,
    class_probability,
    class_score,
    conv_layers,
    feature_maps,
    first_conv,
    grad_cam,
    last_conv,
    maximise_class,
    occlusion_map,
    occlusion_pixel_map,
    occlusion_positions,
    predict_probability,
    saliency,
    top_activations,
)
from deepsky.figures.inside_training import fig_batchnorm_activations, fig_dropout_ensemble
from deepsky.figures.inside_features import (
    blank,
    class_names,
    fig_class_maximisation,
    fig_feature_maps,
    fig_first_layer_filters,
    fig_top9_activations,
    normalise,
    pick_examples,
    show,
)
from deepsky.figures.style import save_figure

__all__ = [
    "INSIDE_FIGURES", "SLIDE_TITLES", "render_inside_figures",
    "fig_first_layer_filters", "fig_feature_maps", "fig_top9_activations", "fig_occlusion",
    "fig_saliency_gradcam", "fig_class_maximisation", "fig_spurious_attribution", "fig_spurious_accuracy",
    "saliency", "grad_cam", "occlusion_map", "occlusion_pixel_map", "occlusion_positions", "maximise_class",
    "top_activations", "feature_maps", "artefact_attention_fraction", "class_score", "class_probability",
    "predict_probability", "conv_layers", "first_conv", "last_conv", "pick_cam_layer",
]

CAM_CMAP = "inferno"
SALIENCY_CMAP = "viridis"


def _true_class_probability(model, x, labels) -> np.ndarray:
    return attr.predict_probability(model, x, np.asarray(labels, dtype=int))


def pick_cam_layer(model, image_shape, min_size: int = 6) -> str:
    """The deepest conv layer whose output is still at least ``min_size`` pixels on a side
    (Grad-CAM at a 2x2 last layer says little on small cutouts); the last conv if none."""
    shapes = attr.layer_output_shapes(model, image_shape)
    good = [name for name, s in shapes.items() if min(s[-2:]) >= min_size]
    return good[-1] if good else attr.last_conv(model)[0]


def _overlay(ax, rgb, heat, cmap=CAM_CMAP, alpha_max=0.65):
    """RGB image with a heat map on top, transparent where the map is low."""
    blank(ax)
    ax.imshow(rgb, origin="lower", interpolation="nearest")
    h = np.asarray(heat, dtype=np.float64)
    h = (h - h.min()) / max(h.max() - h.min(), 1e-12)
    colours = plt.get_cmap(cmap)(h)
    colours[..., 3] = alpha_max * h
    ax.imshow(colours, origin="lower", interpolation="bilinear")


def _row_label(ax, text):
    ax.set_ylabel(text, fontsize=13)


# --------------------------------------------------------------------------- 4. occlusion
def fig_occlusion(model, meta, images_raw, labels, png_path, n: int = 3, size: int | None = None,
                  stride: int | None = None, cls: int = 1, fill: float = 0.0, confidence: float = 0.85,
                  max_images: int = 1000) -> dict:
    """002 'OCCLUSION SENSITIVITY': probability of the true class as a sky-level square slides over
    the image, for ``n`` images of class ``cls`` (among the first ``max_images``) found with a
    probability closest to ``confidence``: at P ~ 1 the sigmoid is saturated and hides the effect."""
    images_raw, labels = images_raw[:max_images], np.asarray(labels)[:max_images]
    x = normalise(images_raw)
    h, w = x.shape[-2:]
    size = max(3, int(round(min(h, w) / 7))) if size is None else int(size)
    stride = max(1, size // 3) if stride is None else int(stride)
    p_true = _true_class_probability(model, x, labels)
    picks = pick_examples(labels, n, cls=cls, scores=-np.abs(p_true - confidence))
    targets = np.asarray(labels, dtype=int)[picks]
    omap = attr.occlusion_map(model, x[picks], targets, size, stride, fill=fill)
    pixel = attr.occlusion_pixel_map(omap, (h, w), size, stride)
    names = class_names(meta)
    fig, axes = plt.subplots(len(picks), 3, figsize=(12.5, 3.6 * len(picks) + 0.6), squeeze=False,
                             layout="constrained")
    out = {"size": size, "stride": stride, "fill": float(fill), "examples": []}
    for row, (i, target) in enumerate(zip(picks, targets)):
        rgb = to_rgb(np.asarray(images_raw[i]))
        ax_img, ax_map, ax_ov = axes[row]
        show(ax_img, rgb, f"#{i}: P({names[target]}) = {p_true[i]:.2f}" if row == 0 else f"#{i}: {p_true[i]:.2f}")
        if row == 0:
            ax_img.add_patch(plt.Rectangle((1 - 0.5, 1 - 0.5), size, size, fc="0.5", ec="white", lw=1.5))
            ax_img.text(size + 2, 1 + size / 2, f"occluder {size}×{size}, stride {stride}", color="white",
                        fontsize=11, va="center")
        # Own colour range per image: the occluded probability often moves by a few per cent only.
        lo, hi = float(min(pixel[row].min(), p_true[i])), float(max(pixel[row].max(), p_true[i]))
        im = show(ax_map, pixel[row], "P(true class) with the square here" if row == 0 else None, cmap="RdYlBu",
                  vmin=lo, vmax=max(hi, lo + 1e-3))
        drop = np.clip(p_true[i] - pixel[row], 0, None)
        _overlay(ax_ov, rgb, drop, cmap="Reds", alpha_max=0.75)
        ax_ov.set_title(("largest drop on the image\n" if row == 0 else "") + f"max drop {drop.max():.2f}", fontsize=13)
        bar = fig.colorbar(im, ax=ax_map, fraction=0.046, pad=0.03)
        bar.ax.axhline(p_true[i], color="black", lw=2)
        j = np.unravel_index(np.argmin(omap[row]), omap[row].shape)
        ys, xs = attr.occlusion_positions(h, size, stride), attr.occlusion_positions(w, size, stride)
        out["examples"].append({"index": int(i), "p_unoccluded": float(p_true[i]), "p_min": float(omap[row].min()),
                                "p_max": float(omap[row].max()),
                                "argmin_centre": [float(ys[j[0]] + (size - 1) / 2), float(xs[j[1]] + (size - 1) / 2)]})
    fig.suptitle("Occlusion sensitivity: which region does the decision depend on?\n"
                 "(sky-level square slid over the image; black tick = unoccluded probability)", fontsize=16)
    save_figure(fig, png_path)
    return out


# --------------------------------------------------------------------------- 5. saliency / Grad-CAM
def fig_saliency_gradcam(model, meta, images_raw, labels, png_path, n_per_class: int = 2, cam_layer=None,
                         max_images: int = 1000) -> dict:
    """Attribution maps for the true class: gradient saliency |dS/dx| (max over bands) and
    Grad-CAM, for the most confident images of each class among the first ``max_images``."""
    images_raw = images_raw[:max_images]
    x = normalise(images_raw)
    labels = np.asarray(labels, dtype=int)[:max_images]
    p_true = _true_class_probability(model, x, labels)
    picks = np.concatenate([pick_examples(labels, n_per_class, cls=c, scores=p_true)
                            for c in sorted(set(labels.tolist()), reverse=True)])
    picks = np.array(list(dict.fromkeys(picks.tolist())))
    layer = pick_cam_layer(model, tuple(x.shape[1:])) if cam_layer is None else attr.get_layer(model, cam_layer)[0]
    sal = attr.saliency(model, x[picks], labels[picks])
    cam = attr.grad_cam(model, x[picks], labels[picks], layer=layer)
    names = class_names(meta)
    fig, axes = plt.subplots(len(picks), 4, figsize=(14, 3.4 * len(picks) + 0.6), squeeze=False,
                             layout="constrained")
    titles = ["image", "saliency |∂S/∂x|", f"Grad-CAM ({layer})", "Grad-CAM on the image"]
    out = {"cam_layer": layer, "examples": []}
    for row, i in enumerate(picks):
        rgb = to_rgb(np.asarray(images_raw[i]))
        show(axes[row, 0], rgb)
        _row_label(axes[row, 0], f"{names[labels[i]]}\nP = {p_true[i]:.2f}")
        show(axes[row, 1], sal[row], cmap=SALIENCY_CMAP, vmin=0, vmax=np.percentile(sal[row], 99.5) + 1e-12)
        show(axes[row, 2], cam[row], cmap=CAM_CMAP, vmin=0, vmax=cam[row].max() + 1e-12)
        _overlay(axes[row, 3], rgb, cam[row])
        if row == 0:
            for ax, t in zip(axes[0], titles):
                ax.set_title(t, fontsize=14)
        out["examples"].append({"index": int(i), "label": int(labels[i]), "p_true": float(p_true[i]),
                                "saliency_peak": np.unravel_index(np.argmax(sal[row]), sal[row].shape),
                                "cam_peak": np.unravel_index(np.argmax(cam[row]), cam[row].shape)})
    for e in out["examples"]:
        e["saliency_peak"] = [int(v) for v in e["saliency_peak"]]
        e["cam_peak"] = [int(v) for v in e["cam_peak"]]
    fig.suptitle("Where does the network look? Saliency and Grad-CAM for the true class", fontsize=18)
    save_figure(fig, png_path)
    return out


# --------------------------------------------------------------------------- 7. solving the wrong problem
def fig_spurious_attribution(model_clean, model_spurious, meta, images_raw, labels, png_path,
                             artefact_masks=None, artefact_kind: str | None = None, strength: float = 10.0,
                             seed: int = 0, n: int = 3, cls: int = 1, cam_layer=None, dilate: int = 1) -> dict:
    """The husky-vs-wolf pitfall on lenses: saliency and Grad-CAM of a model trained on clean data
    vs one trained with an artefact in the lens class only, on the same test lenses.

    ``images_raw`` must already carry the artefact with its (N, H, W) ``artefact_masks``, or give
    ``artefact_kind`` ("hot_pixel_column" / "corner_stamp") to paint one on the shown images here
    (``strength`` sigma, seeded). The share of each map inside the artefact (mask grown by
    ``dilate`` px) is in the titles and the returned dict.
    """
    labels = np.asarray(labels, dtype=int)
    picks = pick_examples(labels, n, cls=cls)
    raw = np.asarray(np.asarray(images_raw)[picks], dtype=np.float32)
    if artefact_masks is None:
        if artefact_kind is None:
            raise ValueError("give artefact_masks for images that carry the artefact, or artefact_kind to add one")
        raw, masks = add_artefact(raw, np.ones(len(raw), bool), np.random.default_rng(seed), kind=artefact_kind,
                                  strength=strength, return_mask=True)
    else:
        masks = np.asarray(artefact_masks, dtype=bool)[picks]
    x = normalise(raw)
    targets = labels[picks]
    shape = tuple(x.shape[1:])
    maps, fractions, probs = {}, {}, {}
    for tag, model in (("clean", model_clean), ("spurious", model_spurious)):
        layer = pick_cam_layer(model, shape) if cam_layer is None else attr.get_layer(model, cam_layer)[0]
        maps[tag] = {"saliency": attr.saliency(model, x, targets),
                     "Grad-CAM": attr.grad_cam(model, x, targets, layer=layer)}
        probs[tag] = attr.predict_probability(model, x, targets)
        for method, m in maps[tag].items():
            fractions[(tag, method)] = [attr.artefact_attention_fraction(m[r], masks[r], dilate=dilate)
                                        for r in range(len(picks))]
    area = float(attr.dilate_mask(masks, dilate).mean()) if dilate > 0 else float(masks.mean())
    columns = [("clean", "saliency"), ("spurious", "saliency"), ("clean", "Grad-CAM"), ("spurious", "Grad-CAM")]
    head = {"clean": "trained on clean data", "spurious": "trained with artefact\nin lenses only"}
    names = class_names(meta)
    fig, axes = plt.subplots(len(picks), 5, figsize=(18, 3.7 * len(picks) + 1.0), squeeze=False,
                             layout="constrained")
    for row in range(len(picks)):
        rgb = to_rgb(raw[row])
        show(axes[row, 0], rgb, "test lens + artefact" if row == 0 else None)
        _row_label(axes[row, 0], f"#{picks[row]}\nP({names[targets[row]]}):\nclean {probs['clean'][row]:.2f}\n"
                                 f"spurious {probs['spurious'][row]:.2f}")
        for col, (tag, method) in enumerate(columns, start=1):
            m = maps[tag][method][row]
            ax = axes[row, col]
            cmap = SALIENCY_CMAP if method == "saliency" else CAM_CMAP
            vmax = (np.percentile(m, 99.5) if method == "saliency" else m.max()) + 1e-12
            show(ax, m, cmap=cmap, vmin=0, vmax=vmax)
            outline = attr.dilate_mask(masks[row], max(dilate, 1))  # drawn around, not over, the artefact
            ax.contour(outline.astype(float), levels=[0.5], colors="#00e5ff", linewidths=1.0, linestyles="--")
            frac = fractions[(tag, method)][row]
            title = f"{method}, {head[tag]}\n" if row == 0 else ""
            ax.set_title(f"{title}share in artefact {frac:.0%}", fontsize=12)
    fig.suptitle("Solving the wrong problem: a detector artefact present only in training lenses "
                 f"(cyan outline, {area:.0%} of the pixels)", fontsize=17)
    save_figure(fig, png_path)
    out = {"artefact_area_fraction": area, "indices": picks.tolist()}
    for (tag, method), vals in fractions.items():
        out[f"{tag}_{method.lower().replace('-', '')}_fraction"] = float(np.nanmean(vals))
    for tag in probs:
        out[f"{tag}_p_true_mean"] = float(probs[tag].mean())
    return out


def fig_spurious_accuracy(table: pd.DataFrame, png_path, chance: float = 0.5) -> dict:
    """Bar chart of test accuracy per model and test condition (mean over rows, e.g. folds, with
    the individual values as dots and the std as an error bar)."""
    missing = {"model", "test_condition", "accuracy"} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    models = list(dict.fromkeys(table["model"]))
    conditions = list(dict.fromkeys(table["test_condition"]))
    stats = table.groupby(["model", "test_condition"], sort=False)["accuracy"].agg(["mean", "std", "count"])
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(max(8.0, 2.6 * len(conditions) + 3), 5.8))
    colours = plt.get_cmap("tab10")
    out = {}
    for m_i, model in enumerate(models):
        xs, means, errs = [], [], []
        for c_i, cond in enumerate(conditions):
            if (model, cond) not in stats.index:
                continue
            row = stats.loc[(model, cond)]
            xs.append(c_i + (m_i - (len(models) - 1) / 2) * width)
            means.append(row["mean"])
            errs.append(0.0 if row["count"] < 2 or np.isnan(row["std"]) else row["std"])
            vals = table.loc[(table["model"] == model) & (table["test_condition"] == cond), "accuracy"].to_numpy()
            if len(vals) > 1:
                ax.plot(np.full(len(vals), xs[-1]), vals, "o", color="black", ms=3.5, alpha=0.6, zorder=3)
            out[f"{model}|{cond}"] = float(row["mean"])
        bars = ax.bar(xs, means, width * 0.92, yerr=errs if any(e > 0 for e in errs) else None, capsize=4,
                      color=colours(m_i), label=model, zorder=2)
        ax.bar_label(bars, labels=[f"{v:.2f}" for v in means], padding=3, fontsize=12)
    ax.axhline(chance, ls="--", color="grey", lw=1.2, label=f"chance ({chance:g})")
    ax.set_xticks(range(len(conditions)), [str(c).replace("_", " ") for c in conditions])
    ax.set(ylabel="test accuracy", ylim=(0, 1.12), title="Solving the wrong problem: accuracy follows the artefact")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), fontsize=12, ncol=min(4, len(models) + 1),
              frameon=False)
    save_figure(fig, png_path)
    return out


# --------------------------------------------------------------------------- registry and CLI
INSIDE_FIGURES: dict[str, Callable[..., dict]] = {
    "002-first-layer-filters": fig_first_layer_filters,
    "002-feature-maps": fig_feature_maps,
    "002-top9-activations": fig_top9_activations,
    "002-occlusion": fig_occlusion,
    "002-saliency-gradcam": fig_saliency_gradcam,
    "002-class-maximisation": fig_class_maximisation,
    "002-batchnorm-activations": fig_batchnorm_activations,
    "002-dropout-ensemble": fig_dropout_ensemble,
}

# stem -> slide title(s) it reproduces (as printed in the lecture text)
SLIDE_TITLES: dict[str, str] = {
    "002-batchnorm-activations": "002 'BATCH NORMALIZATION PREVENTS LOW OR LARGE VALUES BY RE-NORMALIZING THE VALUES BEFORE ACTIVATION'",
    "002-dropout-ensemble": "002 'DROPOUT' (an ensemble of thinned networks)",
    "002-first-layer-filters": "002 'EXPLORING THE FEATURE MAPS' / "
    "'VISUALIZE THE LEARNED WEIGHTS AT INTERMEDIATE LAYERS'",
    "002-feature-maps": "002 'USING THE SAME IDEA, ONE CAN ALSO VISUALIZE THE FEATURE MAPS AT INTERMEDIATE LAYERS'",
    "002-top9-activations": "002 'EVERY BLOCK OF 9 SHOWS THE 9 STRONGEST RESPONSES TO A GIVEN FILTER OF LAYER2' / "
    "'CAN BE REPEATED FOR DEEPER LAYERS'",
    "002-occlusion": "002 'OCCLUSION SENSITIVITY'",
    "002-saliency-gradcam": "002 'VISUALIZING CNNs [interpreting CNN decisions] Attribution techniques'",
    "002-class-maximisation": "002 '\"INCEPTIONISM\" TECHNIQUES' (arg max_I S_c(I) - lambda ||I||_2^2)",
    "000-spurious-attribution": "000/001 'Possible pitfalls: Solving the wrong problem' (husky vs wolf, Ribeiro+16)",
    "000-spurious-accuracy": "000/001 'Possible pitfalls: Solving the wrong problem' (accuracy collapse)",
}


def render_inside_figures(model, meta, images_raw, labels, outdir, stems=None, options: dict | None = None) -> dict:
    """Write OUTDIR/<stem>.png/.pdf for every stem (default: all of :data:`INSIDE_FIGURES`);
    ``options`` maps a stem to extra keyword arguments. Returns {stem: numbers}."""
    outdir = Path(outdir)
    options = options or {}
    return {stem: INSIDE_FIGURES[stem](model, meta, images_raw, labels, outdir / f"{stem}.png", **options.get(stem, {}))
            for stem in (stems or list(INSIDE_FIGURES))}


def main(argv: list[str] | None = None) -> int:
    from deepsky.data import storage
    from deepsky.models_io import load_model

    parser = argparse.ArgumentParser(prog="python -m deepsky.figures.inside", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="model.pt written by the train stage")
    parser.add_argument("dataset", help="dataset directory (images.npy, catalog.parquet)")
    parser.add_argument("outdir")
    parser.add_argument("--max-images", type=int, default=2000, help="use the first N images")
    parser.add_argument("--stems", nargs="*", choices=list(INSIDE_FIGURES), default=None)
    args = parser.parse_args(argv)
    model, meta = load_model(args.model, "cpu")
    images = storage.load_images(Path(args.dataset) / storage.IMAGES)
    catalog = pd.read_parquet(Path(args.dataset) / storage.CATALOG, columns=["index", "label"]).sort_values("index")
    n = min(args.max_images, len(images))
    numbers = render_inside_figures(model, meta, np.asarray(images[:n]), catalog["label"].to_numpy()[:n],
                                    args.outdir, args.stems)
    for stem in numbers:
        print(Path(args.outdir) / f"{stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
