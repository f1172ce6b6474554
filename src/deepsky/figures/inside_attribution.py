"""Looking inside a CNN: the numbers behind lecture 002's "VISUALIZING CNNs" slides.

Pure functions, no plotting. Inputs ``x`` are what the model eats: already normalised
(:func:`deepsky.data.tensors.asinh_stretch`), ``(N, C, H, W)`` numpy arrays or tensors (a single
``(C, H, W)`` image is accepted too). Outputs are numpy arrays.

"Score" of a class (:func:`class_score`): for a binary single-logit model the score of class 1
("lens") is the logit and that of class 0 ("non-lens") is minus the logit (so that
``sigmoid(score)`` is the probability of that class); for a multi-class model it is the class
logit. ``target`` is a class index, or one per image.

* :func:`saliency` - ``|d score / d input|``, max over bands (Simonyan et al. 2014).
* :func:`grad_cam` - Grad-CAM (Selvaraju et al. 2017) at a conv layer (default: the last).
* :func:`occlusion_map` - probability of the target class while a sky-level square slides over
  the image (Zeiler & Fergus 2014).
* :func:`maximise_class` - "inceptionism": ``argmax_I S_c(I) - lambda ||I||^2`` by Adam, weights
  frozen.
* :func:`top_activations` - the k inputs that excite one filter most, and the input region
  responsible (bounding box of the non-zero input gradient of the maximal activation).
* :func:`feature_maps` - outputs of chosen layers (forward hooks).
* :func:`artefact_attention_fraction` - share of an attribution map inside an artefact mask.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------- plumbing
def model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def as_input(x, model: nn.Module) -> torch.Tensor:
    """float32 (N, C, H, W) tensor on the model's device (a (C, H, W) image gets a batch axis)."""
    t = torch.from_numpy(np.array(x, dtype=np.float32)) if not torch.is_tensor(x) else x.detach().float()
    if t.ndim == 3:
        t = t.unsqueeze(0)
    if t.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W) or (C, H, W), got shape {tuple(t.shape)}")
    return t.to(model_device(model))


@contextmanager
def frozen(model: nn.Module):
    """Eval mode (BatchNorm running statistics, no dropout) and no weight gradients; restored after."""
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def _targets(target, n: int, device) -> torch.Tensor:
    if torch.is_tensor(target):
        t = target.to(device=device, dtype=torch.long)
    else:
        t = torch.as_tensor(np.array(target, dtype=np.int64), device=device)
    if t.ndim == 0:
        t = t.expand(n)
    if t.shape != (n,):
        raise ValueError(f"target must be one class index or one per image ({n}), got shape {tuple(t.shape)}")
    return t


def class_score(logits: torch.Tensor, target) -> torch.Tensor:
    """(N,) score of class ``target``: logit / minus logit for a single-logit model, else the class logit."""
    n, k = logits.shape
    t = _targets(target, n, logits.device)
    if k == 1:
        if bool(((t < 0) | (t > 1)).any()):
            raise ValueError("a single-logit (binary) model has classes 0 and 1 only")
        return logits[:, 0] * (2 * t - 1).to(logits.dtype)
    if bool(((t < 0) | (t >= k)).any()):
        raise ValueError(f"class index out of range for {k} outputs")
    return logits.gather(1, t[:, None])[:, 0]


def class_probability(logits: torch.Tensor, target) -> torch.Tensor:
    """(N,) probability of class ``target`` (sigmoid of the score, or softmax)."""
    if logits.shape[1] == 1:
        return torch.sigmoid(class_score(logits, target))
    t = _targets(target, logits.shape[0], logits.device)
    return torch.softmax(logits, 1).gather(1, t[:, None])[:, 0]


@torch.no_grad()
def predict_probability(model: nn.Module, x, target, batch_size: int = 256) -> np.ndarray:
    """(N,) probability of ``target`` for every image."""
    x = as_input(x, model)
    t = _targets(target, len(x), x.device)
    out = []
    with frozen(model):
        for s in range(0, len(x), batch_size):
            out.append(class_probability(model(x[s : s + batch_size]), t[s : s + batch_size]).float().cpu())
    return torch.cat(out).numpy()


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every Conv2d, in registration order (= depth order for sequential models), with its name."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer")
    return convs[0]


def last_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    convs = conv_layers(model)
    if not convs:
        raise ValueError(f"{type(model).__name__} has no Conv2d layer")
    return convs[-1]


def get_layer(model: nn.Module, layer) -> tuple[str, nn.Module]:
    """(name, module) for a module name, an index into :func:`conv_layers` or a module."""
    if layer is None:
        return last_conv(model)
    if isinstance(layer, nn.Module):
        for name, m in model.named_modules():
            if m is layer:
                return name, m
        raise ValueError("layer is not a submodule of model")
    if isinstance(layer, (int, np.integer)):
        return conv_layers(model)[int(layer)]
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"no layer {layer!r}; conv layers: {[n for n, _ in conv_layers(model)]}")
    return layer, modules[layer]


@contextmanager
def capture(model: nn.Module, layers: Iterable[nn.Module]):
    """Record the output of each module in ``layers`` (dict module -> tensor, in the graph).

    The hook hands a clone downstream, so an in-place activation after the layer (ReLU(inplace))
    cannot overwrite what was recorded, and gradients still flow through the recorded tensor.
    """
    store: dict[nn.Module, torch.Tensor] = {}

    def hook(module, _inputs, output):
        store[module] = output
        return output.clone()

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        yield store
    finally:
        for h in handles:
            h.remove()


def layer_output_shapes(model: nn.Module, image_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Output shape (channels, h, w) of every conv layer for one input of ``image_shape`` (C, H, W)."""
    convs = conv_layers(model)
    x = torch.zeros((1, *image_shape), device=model_device(model))
    with frozen(model), torch.no_grad(), capture(model, [m for _, m in convs]) as store:
        model(x)
    return {name: tuple(store[m].shape[1:]) for name, m in convs if m in store}


# --------------------------------------------------------------------------- attribution
def saliency(model: nn.Module, x, target, batch_size: int = 64) -> np.ndarray:
    """(N, H, W) gradient saliency: |d score(target) / d input|, maximum over bands."""
    x = as_input(x, model)
    t = _targets(target, len(x), x.device)
    out = []
    with frozen(model):
        for s in range(0, len(x), batch_size):
            xb = x[s : s + batch_size].clone().requires_grad_(True)
            score = class_score(model(xb), t[s : s + batch_size]).sum()
            (grad,) = torch.autograd.grad(score, xb)
            out.append(grad.abs().amax(1).cpu())
    return torch.cat(out).numpy()


def grad_cam(model: nn.Module, x, target, layer=None, batch_size: int = 64, upsample: bool = True) -> np.ndarray:
    """(N, H, W) Grad-CAM at ``layer`` (default: the last Conv2d), bilinearly upsampled to the input.

    ``A`` = the layer's output, ``w_k`` = spatial mean of d score / d A_k, map = ReLU(sum_k w_k A_k).
    Not normalised (divide by the max for display). ``upsample=False`` returns the (N, h, w) map.
    """
    x = as_input(x, model)
    t = _targets(target, len(x), x.device)
    _, module = get_layer(model, layer)
    out = []
    with frozen(model):
        for s in range(0, len(x), batch_size):
            # The input needs a graph (weights are frozen) for d score / d A to exist.
            xb = x[s : s + batch_size].clone().requires_grad_(True)
            with capture(model, [module]) as store:
                logits = model(xb)
            acts = store[module]
            score = class_score(logits, t[s : s + batch_size]).sum()
            (grads,) = torch.autograd.grad(score, acts)
            weights = grads.mean(dim=(2, 3), keepdim=True)
            cam = F.relu((weights * acts).sum(1, keepdim=True))
            if upsample:
                cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
            out.append(cam[:, 0].detach().cpu())
    return torch.cat(out).numpy()


def occlusion_positions(length: int, size: int, stride: int) -> np.ndarray:
    """Top/left corners of the occluding square along one axis; the last one touches the edge."""
    if not 1 <= size <= length:
        raise ValueError(f"occluder size must be in [1, {length}], got {size}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    pos = list(range(0, length - size + 1, stride))
    if pos[-1] != length - size:
        pos.append(length - size)
    return np.array(pos)


@torch.no_grad()
def occlusion_map(model: nn.Module, x, target, size: int, stride: int, fill: float = 0.0,
                  batch_size: int = 256) -> np.ndarray:
    """(N, ny, nx) probability of ``target`` with a ``size`` square of value ``fill`` (0 = sky level
    in asinh-normalised units) at top-left corner (ys[i], xs[j]) from :func:`occlusion_positions`."""
    x = as_input(x, model)
    n, _, h, w = x.shape
    ys, xs = occlusion_positions(h, size, stride), occlusion_positions(w, size, stride)
    corners = [(y, x0) for y in ys for x0 in xs]
    t = _targets(target, n, x.device)
    maps = np.empty((n, len(ys), len(xs)), dtype=np.float32)
    with frozen(model):
        for i in range(n):
            probs = []
            for s in range(0, len(corners), batch_size):
                chunk = corners[s : s + batch_size]
                xb = x[i : i + 1].repeat(len(chunk), 1, 1, 1)
                for k, (y, x0) in enumerate(chunk):
                    xb[k, :, y : y + size, x0 : x0 + size] = fill
                probs.append(class_probability(model(xb), t[i].expand(len(chunk))).float().cpu())
            maps[i] = torch.cat(probs).numpy().reshape(len(ys), len(xs))
    return maps


def occlusion_pixel_map(omap: np.ndarray, shape: tuple[int, int], size: int, stride: int) -> np.ndarray:
    """Per pixel: mean of the occlusion map over every square position covering that pixel
    ((ny, nx) -> (H, W), or batched (N, ny, nx) -> (N, H, W))."""
    omap = np.asarray(omap, dtype=np.float64)
    batched = omap.ndim == 3
    omap = omap if batched else omap[None]
    h, w = shape
    ys, xs = occlusion_positions(h, size, stride), occlusion_positions(w, size, stride)
    total = np.zeros((len(omap), h, w))
    count = np.zeros((h, w))
    for i, y in enumerate(ys):
        for j, x0 in enumerate(xs):
            total[:, y : y + size, x0 : x0 + size] += omap[:, i, j, None, None]
            count[y : y + size, x0 : x0 + size] += 1
    out = (total / count).astype(np.float32)
    return out if batched else out[0]


def maximise_class(model: nn.Module, target: int, shape: Sequence[int], steps: int = 200, l2: float = 1e-3,
                   lr: float = 0.05, seed: int = 0, init_std: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Inceptionism (lecture 002): ``argmax_I S_c(I) - l2 * ||I||_2^2`` by Adam, weights frozen.

    Starts from Gaussian noise of std ``init_std`` (seeded). Returns the image ``(C, H, W)`` and
    the score ``S_c`` before each step and after the last (``steps + 1`` values).
    """
    gen = torch.Generator().manual_seed(int(seed))
    x = (init_std * torch.randn((1, *shape), generator=gen)).to(model_device(model)).requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=lr)
    scores = []
    with frozen(model):
        for _ in range(int(steps)):
            score = class_score(model(x), target)[0]
            scores.append(float(score.detach()))
            loss = -(score - l2 * (x**2).sum())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            scores.append(float(class_score(model(x), target)[0]))
    return x.detach()[0].cpu().numpy(), np.array(scores)


# --------------------------------------------------------------------------- features
@torch.no_grad()
def feature_maps(model: nn.Module, x, layers: Sequence, batch_size: int = 256) -> dict[str, np.ndarray]:
    """{layer name: (N, K, h, w) output} for each layer (name, conv index or module)."""
    x = as_input(x, model)
    named = [get_layer(model, layer) for layer in layers]
    out: dict[str, list] = {name: [] for name, _ in named}
    with frozen(model):
        for s in range(0, len(x), batch_size):
            with capture(model, [m for _, m in named]) as store:
                model(x[s : s + batch_size])
            for name, m in named:
                out[name].append(store[m].float().cpu())
    return {name: torch.cat(v).numpy() for name, v in out.items()}


def max_activations(model: nn.Module, layer, x, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per image and channel of ``layer``: maximal activation (N, K) and its location (N, K, 2) (row, col)."""
    x = as_input(x, model)
    _, module = get_layer(model, layer)
    values, locs = [], []
    with frozen(model), torch.no_grad():
        for s in range(0, len(x), batch_size):
            with capture(model, [module]) as store:
                model(x[s : s + batch_size])
            a = store[module].float()
            flat = a.flatten(2)
            v, arg = flat.max(2)
            values.append(v.cpu())
            locs.append(torch.stack([arg // a.shape[3], arg % a.shape[3]], -1).cpu())
    return torch.cat(values).numpy(), torch.cat(locs).numpy()


def gradient_box(model: nn.Module, layer, image, channel: int,
                 location: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1), half-open, bounding the input pixels whose gradient of the activation
    ``layer[channel, row, col]`` is non-zero (the region that produced it); None if all zero."""
    x = as_input(image, model)[:1].clone().requires_grad_(True)
    _, module = get_layer(model, layer)
    with frozen(model):
        with capture(model, [module]) as store:
            model(x)
        act = store[module][0, int(channel), int(location[0]), int(location[1])]
        (grad,) = torch.autograd.grad(act, x)
    support = grad[0].abs().amax(0).cpu().numpy() > 0
    if not support.any():
        return None
    rows, cols = np.flatnonzero(support.any(1)), np.flatnonzero(support.any(0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def top_activations(model: nn.Module, layer, channel: int, x, k: int = 9, batch_size: int = 256) -> dict:
    """The ``k`` images of ``x`` whose maximal activation of filter ``channel`` of ``layer`` is highest.

    Returns a dict of arrays: ``index`` (k,) into x, best first; ``value`` (k,); ``location`` (k, 2)
    row/col of the maximum in the feature map; ``box`` (k, 4) ``(y0, y1, x0, x1)`` half-open input
    region responsible (non-zero gradient support, whole image if the gradient vanishes);
    ``all_max`` (N,) the maximal activation of every image.
    """
    x = as_input(x, model)
    values, locs = max_activations(model, layer, x, batch_size)
    channel_max = values[:, int(channel)]
    order = np.argsort(-channel_max, kind="stable")[: min(k, len(channel_max))]
    h, w = x.shape[-2:]
    boxes = []
    for i in order:
        box = gradient_box(model, layer, x[i], channel, locs[i, int(channel)])
        boxes.append(box if box is not None else (0, h, 0, w))
    return {
        "index": order,
        "value": channel_max[order],
        "location": locs[order, int(channel)],
        "box": np.array(boxes, dtype=int).reshape(-1, 4),
        "all_max": channel_max,
    }


# --------------------------------------------------------------------------- artefacts
def artefact_attention_fraction(saliency_map, artefact_mask, dilate: int = 0) -> float:
    """Share of the (absolute) attribution inside the artefact region.

    ``saliency_map`` and ``artefact_mask`` are (H, W) or (N, H, W); for a batch the per-image
    fractions are averaged. ``dilate`` grows the mask by that many pixels (a 3x3 filter spreads the
    gradient of a one-pixel column onto its neighbours). NaN when the map is zero everywhere.
    """
    sal = np.abs(np.asarray(saliency_map, dtype=np.float64))
    mask = np.asarray(artefact_mask, dtype=bool)
    if sal.shape != mask.shape:
        raise ValueError(f"saliency map {sal.shape} and artefact mask {mask.shape} differ in shape")
    if sal.ndim == 2:
        sal, mask = sal[None], mask[None]
    if dilate > 0:
        mask = dilate_mask(mask, dilate)
    total = sal.sum(axis=(1, 2))
    inside = (sal * mask).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(total > 0, inside / np.where(total > 0, total, 1), np.nan)
    return float(np.nan if np.isnan(fractions).all() else np.nanmean(fractions))


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a boolean (…, H, W) mask by ``pixels`` in every direction (square structuring element)."""
    m = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    shape = m.shape
    m = m.reshape(-1, 1, *shape[-2:])
    m = F.max_pool2d(m, 2 * pixels + 1, stride=1, padding=pixels)
    return m.reshape(shape).numpy() > 0
