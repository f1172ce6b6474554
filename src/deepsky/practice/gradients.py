"""Vanishing / exploding gradients in a deep MLP (lecture 002 "VANISHING / EXPLODING GRADIENT
PROBLEM", "BATCH NORMALIZATION", "RESIDUAL NETWORKS"; lecture 004 "Common issues").

:func:`gradient_norms` trains a few variants of ``mlp_deep`` on the same batches and records,
for every weight layer from the input (layer 0) to the output, the L2 norm of the weight
gradient.  Step 0 is the gradient of the first batch at initialisation, before any update.

With sigmoid units the gradient shrinks by roughly ``max sigma' * |w| ~ 0.1`` per layer on the way
back to the input (``y = sigma(... sigma(w0 x))``), so the first layer of a 10-hidden-layer
sigmoid MLP gets a gradient ~1e-7 of the last layer's; batch normalisation and identity skips
keep the ratio near 1.  :func:`fig_gradient_norms` draws the per-layer profile at initialisation
and after training, and the first-layer gradient and the loss against the step.

Stage entry point: :func:`main` (Snakemake ``script:``), see its docstring for the rule's names.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn

from deepsky.figures.style import save_figure
from deepsky.models import create_model
from deepsky.train import job_seed, loss_function, targets_for

__all__ = [
    "DEFAULT_VARIANTS",
    "DEFAULT_LABELS",
    "EXTRA_VARIANTS",
    "COLUMNS",
    "STEM",
    "gradient_norms",
    "init_ratios",
    "fig_gradient_norms",
    "main",
]

#: Figure stem (lecture 002, vanishing / exploding gradient slides).
STEM = "002-vanishing-gradients"

#: Columns of the table returned by :func:`gradient_norms`.
COLUMNS = ["variant", "step", "layer", "grad_norm", "weight_norm", "loss"]

#: The lecture's four networks: 10 hidden layers of 64 units, PyTorch's default initialisation.
DEFAULT_VARIANTS: dict[str, dict] = {
    "sigmoid": {"depth": 10, "width": 64, "activation": "sigmoid"},
    "relu": {"depth": 10, "width": 64, "activation": "relu"},
    "relu_batchnorm": {"depth": 10, "width": 64, "activation": "relu", "batch_norm": True},
    "relu_residual": {"depth": 10, "width": 64, "activation": "relu", "residual": True},
}

#: Optional extras (not run by default): He initialisation for ReLU, and an exploding net
#: (weights N(0, 0.4^2): per-layer gain sqrt(64 * 0.16 / 2) ~ 2.3).
EXTRA_VARIANTS: dict[str, dict] = {
    "relu_he_init": {"depth": 10, "width": 64, "activation": "relu", "init": "kaiming"},
    "relu_large_init": {"depth": 10, "width": 64, "activation": "relu", "init": "normal", "init_std": 0.4},
}

DEFAULT_LABELS: dict[str, str] = {
    "sigmoid": "sigmoid",
    "relu": "ReLU",
    "relu_batchnorm": "ReLU + batch norm",
    "relu_residual": "ReLU + residual",
    "relu_he_init": "ReLU, He init",
    "relu_large_init": "ReLU, large init",
}


def _weight_layers(model: nn.Module) -> list[nn.Module]:
    """Linear (and Conv2d) layers in forward order: input side first, output layer last."""
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _make_optimizer(name: str, params, lr: float, momentum: float):
    name = name.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


def gradient_norms(
    x: torch.Tensor,
    y: torch.Tensor,
    variants: dict[str, dict] | None = None,
    steps: int = 200,
    batch_size: int = 64,
    lr: float = 0.01,
    seed: int = 0,
    record_every: int = 10,
    optimizer: str = "sgd",
    momentum: float = 0.9,
) -> pd.DataFrame:
    """Per-layer weight-gradient norms of each variant at initialisation and during training.

    ``x``: (N, C, H, W) float tensor, already normalised; ``y``: (N,) integer labels (two
    classes -> one logit + BCEWithLogits, more -> cross-entropy).  ``variants``: name -> kwargs
    of ``create_model("mlp_deep", ...)`` (a kwarg ``architecture`` picks another registered
    model).  Every variant sees the same sequence of ``batch_size`` batches (reshuffled each
    pass over the data).  The row of step ``s`` holds the gradient of batch ``s`` after ``s``
    updates; rows are written for step 0, every ``record_every`` steps and the last step.
    A variant whose loss becomes non-finite (exploding) is recorded at that step and stopped.

    Returns a DataFrame with :data:`COLUMNS`: variant, step, layer (0 = first weight layer from
    the input, the last index is the output layer), grad_norm, weight_norm, loss (of that batch).
    Deterministic on the CPU for a given ``seed``; the global torch RNG is left untouched.
    """
    variants = DEFAULT_VARIANTS if variants is None else variants
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got shape {tuple(x.shape)}")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length ({len(x)} vs {len(y)})")
    if steps < 0 or record_every < 1 or batch_size < 1:
        raise ValueError("need steps >= 0, record_every >= 1 and batch_size >= 1")
    x = x.float()
    y = y.long()
    n = len(x)
    batch_size = min(int(batch_size), n)
    n_classes = int(y.max()) + 1 if n else 2
    num_outputs = 1 if n_classes <= 2 else n_classes
    loss_fn = loss_function(num_outputs)
    in_channels, image_size = x.shape[1], x.shape[-1]

    rows = []
    for name, kwargs in variants.items():
        kwargs = dict(kwargs)
        architecture = kwargs.pop("architecture", "mlp_deep")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(job_seed(seed, "gradients", "init", name))
            model = create_model(architecture, in_channels, num_outputs, image_size=image_size, **kwargs)
        layers = _weight_layers(model)
        opt = _make_optimizer(optimizer, model.parameters(), lr, momentum)
        # The same batches for every variant: the order depends on the seed only.
        order_gen = torch.Generator().manual_seed(job_seed(seed, "gradients", "order"))
        order, cursor = torch.randperm(n, generator=order_gen), 0
        model.train()
        for step in range(steps + 1):
            if cursor + batch_size > n:
                order, cursor = torch.randperm(n, generator=order_gen), 0
            idx = order[cursor : cursor + batch_size]
            cursor += batch_size
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), targets_for(loss_fn, y[idx]))
            loss.backward()
            loss_value = loss.item()
            finite = math.isfinite(loss_value)
            if step % record_every == 0 or step == steps or not finite:
                for i, layer in enumerate(layers):
                    grad = layer.weight.grad
                    rows.append({
                        "variant": name,
                        "step": step,
                        "layer": i,
                        "grad_norm": float(grad.norm()) if grad is not None else 0.0,
                        "weight_norm": float(layer.weight.detach().norm()),
                        "loss": loss_value,
                    })
            if not finite:
                print(f"gradient_norms: {name} loss became {loss_value} at step {step}; stopped", flush=True)
                break
            if step < steps:
                opt.step()
    return pd.DataFrame(rows, columns=COLUMNS)


def init_ratios(table: pd.DataFrame, step: int = 0) -> dict[str, float]:
    """Per variant: grad norm of the first weight layer / that of the output layer at ``step``."""
    out = {}
    for name, part in table[table["step"] == step].groupby("variant", sort=False):
        part = part.sort_values("layer")
        last = part["grad_norm"].iloc[-1]
        out[name] = float(part["grad_norm"].iloc[0] / last) if last > 0 else float("nan")
    return out


def _label(name: str, labels: dict | None) -> str:
    return (labels or {}).get(name) or DEFAULT_LABELS.get(name, name)


def _ratio(profile: pd.DataFrame) -> float:
    last = profile["grad_norm"].iloc[-1]
    return float(profile["grad_norm"].iloc[0] / last) if last > 0 else float("nan")


def fig_gradient_norms(table: pd.DataFrame, png_path, labels: dict[str, str] | None = None) -> dict:
    """Four panels (log y): gradient norm per layer at initialisation (top left) and after
    training (top right, same y range); the first layer's gradient norm (bottom left) and the
    batch loss (bottom right) against the training step.

    Returns ``{variant: {"init": [...], "trained": [...], "ratio_init": first/last at step 0,
    "ratio_trained": first/last at the last recorded step, "last_step", "final_loss"}}``.
    """
    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(2, 2, figsize=(15, 10.5))
    (ax_init, ax_trained), (ax_first, ax_loss) = axes
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    last = int(table["step"].max())
    out = {}
    for k, name in enumerate(variants):
        part = table[table["variant"] == name]
        colour = colours[k % len(colours)]
        last_step = int(part["step"].max())
        init = part[part["step"] == 0].sort_values("layer")
        trained = part[part["step"] == last_step].sort_values("layer")
        label = _label(name, labels)
        if last_step < last:
            label += f" (diverged, step {last_step})"
        for ax, prof in ((ax_init, init), (ax_trained, trained)):
            ax.plot(prof["layer"], prof["grad_norm"].clip(lower=1e-30), "o-", color=colour, label=label)
        first = part[part["layer"] == 0].sort_values("step")
        ax_first.plot(first["step"], first["grad_norm"].clip(lower=1e-30), "-", color=colour, label=label)
        # dashed every other line: nets that do not learn sit on the same ln 2 plateau
        ax_loss.plot(first["step"], first["loss"], "--" if k % 2 else "-", color=colour, label=label)
        out[name] = {"init": init["grad_norm"].tolist(), "trained": trained["grad_norm"].tolist(),
                     "ratio_init": _ratio(init), "ratio_trained": _ratio(trained), "last_step": last_step,
                     "final_loss": float(first["loss"].iloc[-1])}
    n_layers = int(table["layer"].max()) + 1
    ticks = list(range(0, n_layers, 2 if n_layers > 8 else 1))
    for ax, title in ((ax_init, "at initialisation (step 0)"), (ax_trained, f"after training (step {last})")):
        ax.set_yscale("log")
        ax.set(title=title, xlabel="layer (0 = input side → output)", xticks=ticks)
    ax_init.set_ylabel("‖∂L/∂W‖ of the layer")
    # One y range for both profiles, so the two panels compare directly.
    lo = min(ax_init.get_ylim()[0], ax_trained.get_ylim()[0])
    hi = max(ax_init.get_ylim()[1], ax_trained.get_ylim()[1])
    ax_init.set_ylim(lo, hi)
    ax_trained.set_ylim(lo, hi)
    ax_first.set_yscale("log")
    ax_first.set(title="first layer during training", xlabel="training step", ylabel="‖∂L/∂W₀‖")
    finite = table["loss"][np.isfinite(table["loss"])]
    if len(finite) and finite.min() > 0:
        ax_loss.set_yscale("log")
    ax_loss.set(title="training loss (batch)", xlabel="training step", ylabel="cross-entropy")
    depth = n_layers - 1
    fig.suptitle(f"Vanishing gradients in a deep MLP ({depth} hidden layers): "
                 "gradient norm per layer, from the input to the output", fontsize=17)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    handles, texts = ax_init.get_legend_handles_labels()
    fig.legend(handles, texts, loc="lower center", ncol=min(len(texts), 4), fontsize=14,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    save_figure(fig, png_path)
    return out


# --------------------------------------------------------------------------- stage
def main(smk) -> None:
    """Snakemake stage: gradient norms of the deep-MLP variants on fold 0's training images.

    ``smk.input``: ``images`` (images.npy), ``catalog`` (parquet with index, label), ``split``
    (split.parquet).  ``smk.output``: ``table`` (CSV), ``figure`` (PNG; a PDF is written beside
    it).  ``smk.params.settings``: dict with ``steps``, ``batch_size``, ``learning_rate``,
    ``record_every`` and optionally ``variants`` (name -> mlp_deep kwargs, replaces
    :data:`DEFAULT_VARIANTS`), ``labels`` (name -> legend text), ``optimizer`` ('sgd' | 'adam',
    default 'sgd'), ``momentum`` (0.9), ``max_images`` (cap on the training images used).
    ``smk.log[0]``: log file; ``smk.wildcards.experiment``: MLflow experiment;
    ``smk.config["tracking"]`` and ``smk.config["seed"]`` (default 0).
    """
    from deepsky.data import storage
    from deepsky.data.split import fold_indices
    from deepsky.data.tensors import to_tensors
    from deepsky.stages.common import logged, set_threads
    from deepsky.tracking import Run

    experiment = smk.wildcards.experiment
    with logged(smk.log[0]):
        if getattr(smk, "threads", None):
            set_threads(smk.threads)
        settings = dict(smk.params.settings)
        variants = settings.get("variants") or DEFAULT_VARIANTS
        seed = job_seed(smk.config.get("seed", 0), "gradients", experiment)
        images = storage.load_images(smk.input.images)
        catalog = pd.read_parquet(smk.input.catalog, columns=["index", "label"]).set_index("index")
        split = pd.read_parquet(smk.input.split)
        idx = np.sort(fold_indices(split, 0)["train"])
        if settings.get("max_images"):
            idx = idx[: int(settings["max_images"])]
        x, y = to_tensors(images[idx], catalog.loc[idx, "label"].to_numpy())
        print(f"gradients/{experiment}: {len(idx)} training images {tuple(x.shape[1:])}, "
              f"variants {list(variants)}", flush=True)
        kwargs = {
            "steps": int(settings["steps"]),
            "batch_size": int(settings["batch_size"]),
            "lr": float(settings["learning_rate"]),
            "record_every": int(settings.get("record_every", 10)),
            "optimizer": settings.get("optimizer", "sgd"),
            "momentum": float(settings.get("momentum", 0.9)),
        }
        table = gradient_norms(x, y, variants, seed=seed, **kwargs)
        Path(smk.output.table).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(smk.output.table, index=False)
        drawn = fig_gradient_norms(table, smk.output.figure, labels=settings.get("labels"))
        for name, d in drawn.items():
            print(f"{name}: first/last layer gradient ratio {d['ratio_init']:.3g} at init, "
                  f"{d['ratio_trained']:.3g} at step {d['last_step']}", flush=True)

        tags = {"stage": "gradients", "n_train": len(idx)}
        with Run(smk.config["tracking"], experiment, f"gradients/{experiment}", tags) as run:
            run.log_params({"seed": seed, "n_train": len(idx), "variants": variants, **kwargs})
            last_layer = table.groupby("variant")["layer"].max()
            for step, part in table.groupby("step"):
                metrics = {}
                for name, rows in part.groupby("variant"):
                    norms = rows.set_index("layer")["grad_norm"]
                    metrics[f"{name}.grad_norm_first"] = norms.get(0, float("nan"))
                    metrics[f"{name}.grad_norm_last"] = norms.get(last_layer[name], float("nan"))
                    metrics[f"{name}.loss"] = rows["loss"].iloc[0]
                run.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)}, step=int(step))
            run.log_metrics({f"{name}.ratio_init": d["ratio_init"] for name, d in drawn.items()
                             if math.isfinite(d["ratio_init"])})
            run.log_artifact(smk.output.table, "gradients")
            run.log_artifact(smk.output.figure, "gradients")
            pdf = Path(smk.output.figure).with_suffix(".pdf")
            if pdf.exists():
                run.log_artifact(pdf, "gradients")
