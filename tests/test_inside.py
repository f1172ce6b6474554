"""Looking inside CNNs (lecture 002) and the "solving the wrong problem" pitfall (lectures 000/001):
attribution maps checked against analytic answers on tiny hand-made models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deepsky.data.artefacts import add_artefact, noise_level
from deepsky.data.tensors import asinh_stretch
from deepsky.figures import inside
from deepsky.figures.inside import (
    INSIDE_FIGURES,
    artefact_attention_fraction,
    class_score,
    grad_cam,
    maximise_class,
    occlusion_map,
    occlusion_pixel_map,
    occlusion_positions,
    saliency,
    top_activations,
)
from deepsky.models import create_model

SIZE = 32
BLOB = (9, 22)  # (row, col): off-centre and asymmetric, so a transposed or flipped map fails


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batch-1 passes on tiny models: a second intra-op thread only costs (10x on a busy 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blob_image(centre=BLOB, n: int = 1, seed: int = 0, amplitude: float = 6.0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    blob = amplitude * np.exp(-0.5 * ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / 1.5**2)
    x = rng.normal(0, 0.3, (n, 3, SIZE, SIZE)) + blob
    return torch.tensor(x, dtype=torch.float32)


def blob_detector() -> nn.Module:
    """conv (matched Gaussian filter, thresholded) -> pool -> 1x1 conv -> max -> logit: its last
    conv responds only where a bright blob is."""
    yy, xx = np.mgrid[-3:4, -3:4]
    kernel = np.exp(-0.5 * (yy**2 + xx**2) / 1.5**2)
    kernel /= kernel.sum()
    conv1 = nn.Conv2d(3, 2, 7, padding=3)
    conv2 = nn.Conv2d(2, 1, 1)
    with torch.no_grad():
        conv1.weight.zero_()
        conv1.weight[0] = torch.tensor(kernel, dtype=torch.float32) / 3  # channel 0: the blob
        conv1.weight[1] = -torch.tensor(kernel, dtype=torch.float32) / 3  # channel 1: dark spots
        conv1.bias.fill_(-1.0)
        conv2.weight.zero_()
        conv2.weight[0, 0] = 1.0
        conv2.bias.zero_()
    head = nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(5.0)
        head.bias.fill_(-1.0)
    return nn.Sequential(conv1, nn.ReLU(inplace=True), nn.MaxPool2d(2), conv2, nn.ReLU(inplace=True),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), head).eval()


class Crop(nn.Module):
    def __init__(self, rows, cols):
        super().__init__()
        self.rows, self.cols = rows, cols

    def forward(self, x):
        return x[:, :, self.rows, self.cols]


# --------------------------------------------------------------------------- scores
def test_class_score_binary_and_multiclass():
    logits = torch.tensor([[2.0], [-1.0]])
    assert torch.equal(class_score(logits, 1), torch.tensor([2.0, -1.0]))
    assert torch.equal(class_score(logits, 0), torch.tensor([-2.0, 1.0]))
    assert torch.equal(class_score(logits, [1, 0]), torch.tensor([2.0, 1.0]))
    multi = torch.tensor([[1.0, 5.0, 3.0]])
    assert float(class_score(multi, 2)[0]) == 3.0
    with pytest.raises(ValueError):
        class_score(logits, 2)


# --------------------------------------------------------------------------- saliency
@pytest.mark.parametrize("outputs,target", [(1, 1), (1, 0), (3, 2)])
def test_saliency_of_linear_model_is_its_weights(outputs, target):
    torch.manual_seed(0)
    linear = nn.Linear(3 * 8 * 8, outputs)
    model = nn.Sequential(nn.Flatten(), linear)
    x = torch.randn(4, 3, 8, 8)
    sal = saliency(model, x, target)
    w = linear.weight.detach()[0 if outputs == 1 else target].reshape(3, 8, 8)
    expected = w.abs().amax(0).numpy()
    assert sal.shape == (4, 8, 8)
    np.testing.assert_allclose(sal, np.broadcast_to(expected, sal.shape), rtol=1e-5, atol=1e-7)
    # and it is autograd's own answer
    xr = x.clone().requires_grad_(True)
    score = model(xr)[:, 0 if outputs == 1 else target].sum() * (-1 if (outputs, target) == (1, 0) else 1)
    (g,) = torch.autograd.grad(score, xr)
    np.testing.assert_allclose(sal, g.abs().amax(1).numpy(), rtol=1e-5, atol=1e-7)


def test_saliency_is_zero_outside_the_patch_the_model_sees():
    torch.manual_seed(1)
    rows, cols = slice(4, 10), slice(6, 13)
    model = nn.Sequential(Crop(rows, cols), nn.Flatten(), nn.Linear(3 * 6 * 7, 16), nn.Tanh(), nn.Linear(16, 1))
    sal = saliency(model, torch.randn(3, 3, 16, 16), 1)
    inside_patch = np.zeros((16, 16), bool)
    inside_patch[rows, cols] = True
    assert np.all(sal[:, ~inside_patch] == 0)
    assert np.all(sal[:, inside_patch].max(axis=1) > 0)
    assert (sal[:, inside_patch] > 0).mean() > 0.9


# --------------------------------------------------------------------------- Grad-CAM
@pytest.mark.parametrize("centre", [BLOB, (24, 7)])
def test_grad_cam_localises_the_blob(centre):
    model = blob_detector()
    cam = grad_cam(model, blob_image(centre, n=2), 1)
    assert cam.shape == (2, SIZE, SIZE)
    for m in cam:
        peak = np.unravel_index(np.argmax(m), m.shape)
        assert np.hypot(peak[0] - centre[0], peak[1] - centre[1]) <= 3, (peak, centre)
        # and the map is concentrated there: little weight far from the blob
        yy, xx = np.mgrid[:SIZE, :SIZE]
        far = np.hypot(yy - centre[0], xx - centre[1]) > 8
        assert m[far].sum() < 0.1 * m.sum()


def test_grad_cam_of_other_class_and_layer_choice():
    model = blob_detector()
    x = blob_image()
    # the "non-lens" score is -logit: its gradient is negative everywhere, so the ReLU kills the map
    assert np.allclose(grad_cam(model, x, 0), 0)
    first = grad_cam(model, x, 1, layer=0)
    assert first.shape == (1, SIZE, SIZE)
    assert np.hypot(*(np.array(np.unravel_index(first[0].argmax(), (SIZE, SIZE))) - BLOB)) <= 3


# --------------------------------------------------------------------------- occlusion
def test_occlusion_is_lowest_where_the_blob_is_covered():
    model = blob_detector()
    x = blob_image()
    size, stride = 6, 2
    omap = occlusion_map(model, x, 1, size, stride)
    ys, xs = occlusion_positions(SIZE, size, stride), occlusion_positions(SIZE, size, stride)
    assert omap.shape == (1, len(ys), len(xs))
    i, j = np.unravel_index(np.argmin(omap[0]), omap[0].shape)
    centre = (ys[i] + (size - 1) / 2, xs[j] + (size - 1) / 2)
    assert np.hypot(centre[0] - BLOB[0], centre[1] - BLOB[1]) <= 2
    p0 = inside.predict_probability(model, x, 1)[0]
    assert p0 > 0.9 and omap.min() < 0.5 * p0  # covering the blob kills the detection...
    assert np.median(omap) > 0.95 * p0  # ...covering empty sky does not
    pixel = occlusion_pixel_map(omap, (SIZE, SIZE), size, stride)
    assert pixel.shape == (1, SIZE, SIZE)
    peak = np.unravel_index(np.argmin(pixel[0]), (SIZE, SIZE))
    assert np.hypot(peak[0] - BLOB[0], peak[1] - BLOB[1]) <= 3


def test_occlusion_positions_cover_the_edge():
    assert occlusion_positions(10, 4, 3).tolist() == [0, 3, 6]
    assert occlusion_positions(11, 4, 3).tolist() == [0, 3, 6, 7]
    with pytest.raises(ValueError):
        occlusion_positions(5, 6, 1)


# --------------------------------------------------------------------------- inceptionism
def small_cnn(seed=0, outputs=1):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 6, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 5 * 5, outputs)).eval()


@pytest.mark.parametrize("target", [1, 0])
def test_class_maximisation_raises_the_score_and_l2_shrinks_the_image(target):
    model = small_cnn()
    before = [p.detach().clone() for p in model.parameters()]
    img, scores = maximise_class(model, target, (3, 16, 16), steps=60, l2=0.0, lr=0.05, seed=3)
    img_l2, scores_l2 = maximise_class(model, target, (3, 16, 16), steps=60, l2=0.5, lr=0.05, seed=3)
    assert img.shape == (3, 16, 16) and len(scores) == 61
    assert scores[-1] > scores[0] + 1.0
    assert scores_l2[-1] > scores_l2[0]
    assert np.linalg.norm(img_l2) < 0.7 * np.linalg.norm(img)
    # the score reported is the model's score of the returned image
    with torch.no_grad():
        logit = model(torch.tensor(img)[None])
    assert float(class_score(logit, target)[0]) == pytest.approx(scores[-1], rel=1e-4, abs=1e-4)
    # weights frozen and left untouched, gradients flags restored
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(p.requires_grad for p in model.parameters())


def test_class_maximisation_of_linear_model_reaches_the_analytic_optimum():
    """S = w.x, maximising S - l ||x||^2 gives x* = w / (2 l)."""
    torch.manual_seed(0)
    linear = nn.Linear(3 * 4 * 4, 1, bias=False)
    model = nn.Sequential(nn.Flatten(), linear)
    img, _ = maximise_class(model, 1, (3, 4, 4), steps=400, l2=2.0, lr=0.01, seed=0)
    expected = linear.weight.detach().numpy().reshape(3, 4, 4) / 4.0
    np.testing.assert_allclose(img, expected, atol=2e-3)


# --------------------------------------------------------------------------- top-9
def test_top_activations_match_brute_force_and_boxes_fit():
    model = small_cnn(seed=2)
    x = torch.rand(40, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    channel = 3
    res = top_activations(model, 1, channel, x, k=9)  # conv layer 1 = the second Conv2d ("layer 2")
    with torch.no_grad():
        brute = model[:4](x)[:, channel].amax(dim=(1, 2)).numpy()
    order = np.argsort(-brute)[:9]
    assert res["index"].tolist() == order.tolist()
    np.testing.assert_allclose(res["value"], brute[order], rtol=1e-6)
    np.testing.assert_allclose(res["all_max"], brute, rtol=1e-6)
    boxes = res["box"]
    assert boxes.shape == (9, 4)
    assert np.all((boxes[:, 0] >= 0) & (boxes[:, 0] < boxes[:, 1]) & (boxes[:, 1] <= 16))
    assert np.all((boxes[:, 2] >= 0) & (boxes[:, 2] < boxes[:, 3]) & (boxes[:, 3] <= 16))
    # receptive field of conv3 -> pool2 -> conv3 is 8 px: the region responsible is no larger,
    # and it sits where the activation is (input pixels 2*loc ... 2*loc + 7)
    assert np.all(boxes[:, 1] - boxes[:, 0] <= 8) and np.all(boxes[:, 3] - boxes[:, 2] <= 8)
    loc = res["location"]
    assert np.all(boxes[:, 0] >= 2 * loc[:, 0]) and np.all(boxes[:, 1] <= 2 * loc[:, 0] + 8)
    assert np.all(boxes[:, 2] >= 2 * loc[:, 1]) and np.all(boxes[:, 3] <= 2 * loc[:, 1] + 8)


# --------------------------------------------------------------------------- artefacts
def noisy_images(n=6, seed=0):
    rng = np.random.default_rng(seed)
    scales = 10.0 ** np.arange(n)[:, None, None, None]  # flux scales from 1 to 1e5: strength is per image
    return (rng.normal(100, 1, (n, 3, SIZE, SIZE)) * scales).astype(np.float32)


@pytest.mark.parametrize("kind", ["hot_pixel_column", "corner_stamp"])
def test_add_artefact_marks_only_chosen_images_and_survives_the_stretch(kind):
    images = noisy_images()
    original = images.copy()
    mark = np.array([True, False, True, False, True, True])
    out, masks = add_artefact(images, mark, np.random.default_rng(7), kind=kind, strength=10, return_mask=True)
    assert np.array_equal(images, original)  # a new array; the input is left alone
    assert np.array_equal(out[~mark], images[~mark])
    assert not masks[~mark].any() and all(masks[mark].reshape(mark.sum(), -1).any(1))
    changed = (out != images).any(axis=1)
    assert np.array_equal(changed, masks)
    # seeded
    again = add_artefact(images, mark, np.random.default_rng(7), kind=kind, strength=10)
    assert np.array_equal(out, again)
    # amplitude: strength x each image's own noise, whatever its flux scale
    sigma = noise_level(images)
    for i in np.flatnonzero(mark):
        step = (out[i] - images[i])[:, masks[i]]
        np.testing.assert_allclose(step, 10 * sigma[i][:, None] * np.ones_like(step), rtol=1e-3)
    # visible after the asinh normalisation the models see: many stretched noise sigmas
    before, after = asinh_stretch(images), asinh_stretch(out)
    for i in np.flatnonzero(mark):
        noise = 1.4826 * np.median(np.abs(before[i] - np.median(before[i])))
        assert (after[i] - before[i]).max() > 2.5 and (after[i] - before[i]).max() > 2.5 * noise


def test_hot_column_avoids_the_centre_and_differs_between_seeds():
    images = noisy_images(n=6)
    mark = np.ones(6, bool)
    _, m1 = add_artefact(images, mark, np.random.default_rng(1), return_mask=True)
    _, m2 = add_artefact(images, mark, np.random.default_rng(2), return_mask=True)
    cols = [np.flatnonzero(m.any(0)) for m in m1]
    assert all(len(c) == 1 and (c[0] < SIZE / 3 or c[0] >= 2 * SIZE / 3) for c in cols)
    assert all(m.all(0).sum() == 1 for m in m1)  # whole column
    assert not np.array_equal(m1, m2)
    with pytest.raises(ValueError):
        add_artefact(images, mark[:3], np.random.default_rng(0))


def test_artefact_attention_fraction():
    images = noisy_images(n=2)
    _, masks = add_artefact(images, np.array([True, True]), np.random.default_rng(0), return_mask=True)
    mask = masks[0]
    # a hand-set linear model that only looks at the artefact pixels
    linear = nn.Linear(3 * SIZE * SIZE, 1, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(np.broadcast_to(mask, (3, SIZE, SIZE)).reshape(1, -1), dtype=torch.float32))
    model = nn.Sequential(nn.Flatten(), linear)
    sal = saliency(model, asinh_stretch(images[:1]), 1)[0]
    assert artefact_attention_fraction(sal, mask) > 0.99
    # one that looks everywhere: the fraction is the artefact's share of the area
    assert artefact_attention_fraction(np.ones((SIZE, SIZE)), mask) == pytest.approx(mask.mean())
    # batched, dilated
    both = artefact_attention_fraction(np.stack([sal, np.ones((SIZE, SIZE))]), np.stack([mask, mask]))
    assert both == pytest.approx((1 + mask.mean()) / 2, rel=1e-6)
    assert artefact_attention_fraction(np.ones((SIZE, SIZE)), mask, dilate=1) == pytest.approx(3 * mask.mean())
    assert np.isnan(artefact_attention_fraction(np.zeros((SIZE, SIZE)), mask))


# --------------------------------------------------------------------------- figures
FAST = {
    "002-first-layer-filters": {"max_filters": 16},
    "002-class-maximisation": {"steps": 8},
    "002-top9-activations": {"max_images": 16},
    "002-occlusion": {"n": 2, "size": 8, "stride": 4},
    "002-saliency-gradcam": {"n_per_class": 1},
}


@pytest.fixture(scope="module")
def tiny_setup():
    torch.manual_seed(0)
    model = create_model("winning_cnn", 3, 1, image_size=SIZE).eval()
    meta = {"architecture": "winning_cnn", "in_channels": 3, "image_size": SIZE, "num_outputs": 1,
            "class_names": ["non-lens", "lens"], "bands": ["g", "r", "i"]}
    rng = np.random.default_rng(0)
    images = rng.gamma(2.0, 10.0, (16, 3, SIZE, SIZE)).astype(np.float32)
    labels = np.arange(16) % 2
    return model, meta, images, labels


def test_registry_stems():
    assert set(INSIDE_FIGURES) == {"002-first-layer-filters", "002-feature-maps", "002-top9-activations",
                                   "002-occlusion", "002-saliency-gradcam", "002-class-maximisation",
                                   "002-batchnorm-activations", "002-dropout-ensemble"}
    assert set(INSIDE_FIGURES) <= set(inside.SLIDE_TITLES)


def _written(png):
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000
    pdf = png.with_suffix(".pdf")
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize("stem", list(INSIDE_FIGURES))
def test_every_inside_figure_writes_png_and_pdf(tiny_setup, tmp_path, stem):
    model, meta, images, labels = tiny_setup
    png = tmp_path / f"{stem}.png"
    numbers = INSIDE_FIGURES[stem](model, meta, images, labels, png, **FAST.get(stem, {}))
    assert isinstance(numbers, dict) and numbers
    _written(png)
    assert not model.training


def test_spurious_figures(tiny_setup, tmp_path):
    model, meta, images, labels = tiny_setup
    other = create_model("winning_cnn", 3, 1, image_size=SIZE).eval()
    numbers = inside.fig_spurious_attribution(model, other, meta, images, labels, tmp_path / "attr.png",
                                              artefact_kind="corner_stamp", n=2)
    _written(tmp_path / "attr.png")
    assert 0 < numbers["artefact_area_fraction"] < 0.2
    assert 0 <= numbers["spurious_saliency_fraction"] <= 1
    table = pd.DataFrame({
        "model": ["clean", "clean", "artefact", "artefact", "artefact", "artefact"],
        "test_condition": ["artefact in lenses", "artefact in non-lenses"] + ["artefact in lenses"] * 2
        + ["artefact in non-lenses"] * 2,
        "accuracy": [0.9, 0.88, 1.0, 0.98, 0.1, 0.2],
    })
    bars = inside.fig_spurious_accuracy(table, tmp_path / "acc.png")
    _written(tmp_path / "acc.png")
    assert bars["artefact|artefact in non-lenses"] == pytest.approx(0.15)
    with pytest.raises(ValueError):
        inside.fig_spurious_accuracy(table.drop(columns="accuracy"), tmp_path / "bad.png")



def test_batchnorm_normalises_a_real_batch(tiny_setup):
    from deepsky.figures.inside_training import batchnorm_activations

    model, _, images, _ = tiny_setup
    x = torch.from_numpy(asinh_stretch(images))
    before, after = batchnorm_activations(model, x)
    # Per channel over the batch: zero mean, unit variance (times gamma=1, plus beta=0 at init).
    assert np.abs(after.mean(axis=(0, 2, 3))).max() < 1e-4
    assert np.abs(after.std(axis=(0, 2, 3)) - 1).max() < 1e-2
    assert np.abs(before.mean(axis=(0, 2, 3))).max() > 1e-3
    assert not model.training  # the caller's model is untouched


def test_dropout_ensemble_converges_to_the_average():
    from deepsky.figures.inside_training import dropout_ensemble

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8, 64), torch.nn.ReLU(),
                                torch.nn.Dropout(0.5), torch.nn.Linear(64, 1))
    x = torch.randn(400, 8)
    labels = (x[:, 0] > 0).long().numpy()
    result = dropout_ensemble(model, x, labels, n_masks=30)
    assert len(result["ensemble"]) == 30 and len(result["single_mask"]) == 30
    # Single masks disagree with each other; their average is steadier than any one mask.
    assert np.std(result["single_mask"]) > np.std(result["ensemble"][-10:])
    with pytest.raises(ValueError, match="no dropout"):
        dropout_ensemble(torch.nn.Linear(8, 1), x, labels, 2)
