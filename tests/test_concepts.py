"""Concept figures: the numbers they draw must match the lecture slides and torch's own operators."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deepsky.figures import concepts
from deepsky.figures.concepts import CONCEPT_FIGURES
from deepsky.figures.concepts_activations import ELU_ALPHA, PRELU_ALPHA, loss_gradients
from deepsky.figures.concepts_conv import (
    CONV_OUTPUT_SLIDE,
    CONVOLUTION_MATRIX_SLIDE,
    OUTPUT_SIZE_EXAMPLES,
    TRANSPOSED_KERNEL,
    convolution_matrix,
)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Draw every registered figure once; return {stem: (png_path, numbers)}."""
    outdir = tmp_path_factory.mktemp("concepts")
    out = {}
    for stem, fn in CONCEPT_FIGURES.items():
        png = outdir / f"{stem}.png"
        out[stem] = (png, fn(png))
    return out


def test_registry_stems():
    assert set(CONCEPT_FIGURES) == {
        "002-convolution-arithmetic", "003-output-size-formula", "002-1d-convolution",
        "002-multichannel-convolution", "002-pooling-types", "002-strides-dilation",
        "002-transposed-convolution-matrix", "004-activation-functions", "004-sigmoid-cross-entropy",
        "002-fully-connected-parameters",
    }
    assert set(concepts.SLIDE_TITLES) == set(CONCEPT_FIGURES)


@pytest.mark.parametrize("stem", list(CONCEPT_FIGURES))
def test_every_figure_writes_png_and_pdf(rendered, stem):
    png, numbers = rendered[stem]
    assert isinstance(numbers, dict) and numbers
    assert png.exists() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = png.with_suffix(".pdf")
    assert pdf.exists() and pdf.stat().st_size > 1_000
    assert pdf.read_bytes()[:5] == b"%PDF-"


# --- 002 2-D convolution -------------------------------------------------------------------------

def test_convolution_matches_slide(rendered):
    r = rendered["002-convolution-arithmetic"][1]
    assert np.array_equal(np.round(r["output"], 1), np.array(CONV_OUTPUT_SLIDE))
    assert r["output_size"] == r["output_size_formula"] == 5 - 3 + 1
    # independent recomputation: plain mean of each 3x3 window
    img = r["image"]
    means = np.array([[img[i : i + 3, j : j + 3].mean() for j in range(3)] for i in range(3)])
    np.testing.assert_allclose(r["output"], means, atol=1e-12)


# --- 003 output-size formula ---------------------------------------------------------------------

def test_output_size_rows_equal_real_conv_shapes(rendered):
    rows = rendered["003-output-size-formula"][1]["rows"]
    assert len(rows) == len(OUTPUT_SIZE_EXAMPLES)
    for row in rows:
        w, f, p, s = row["W"], row["F"], row["P"], row["S"]
        assert row["formula"] == pytest.approx((w - f + 2 * p) / s + 1)
        x = torch.zeros(2, 3, w, w)
        if row["op"] == "conv":
            y = torch.nn.Conv2d(3, 4, f, stride=s, padding=p)(x)
        else:
            y = torch.nn.MaxPool2d(f, stride=s, padding=p)(x)
        assert y.shape[-2:] == (row["formula_floor"], row["formula_floor"]) == (row["torch"], row["torch"])


# --- 002 1-D and multi-channel convolution -------------------------------------------------------

def test_1d_convolution_feature_maps(rendered):
    r = rendered["002-1d-convolution"][1]
    assert r["n_feature_maps"] == 3
    assert r["conv1d_vs_single_max_abs_diff"] < 1e-12
    n_in, k = len(r["flux"]), len(next(iter(r["kernels"].values())))
    assert r["feature_maps"].shape == (3, n_in - k + 1)
    # the derivative kernel is (x[i+1] - x[i-1]) / 2 in torch's cross-correlation convention
    flux = r["flux"]
    deriv = r["feature_maps"][list(r["kernels"]).index("edge / derivative")]
    half = k // 2
    np.testing.assert_allclose(deriv, (flux[half + 1 : n_in - half + 1] - flux[half - 1 : n_in - half - 1]) / 2,
                               atol=1e-12)
    # the line-matched filter peaks on the emission lines (within 2 pixels)
    dlam = r["wavelength"][1] - r["wavelength"][0]
    for name, (centre, _) in {"Hβ": (4861.3, 0), "[OIII]": (5006.8, 0), "Hα": (6562.8, 0)}.items():
        assert abs(r["matched_filter_peaks"][name] - centre) <= 2 * dlam


def test_multichannel_is_sum_of_channels(rendered):
    r = rendered["002-multichannel-convolution"][1]
    x = torch.tensor(r["image"])[None]
    w = torch.tensor(r["kernel"])[None]
    expected = F.conv2d(x, w, bias=torch.tensor([r["bias"]], dtype=torch.float64))[0, 0].numpy()
    np.testing.assert_allclose(r["sum_plus_bias"], expected)
    np.testing.assert_allclose(r["per_channel"].sum(axis=0) + r["bias"], expected)


# --- 002 pooling ---------------------------------------------------------------------------------

def test_pooling_matches_torch(rendered):
    r = rendered["002-pooling-types"][1]
    x = torch.tensor(r["input"])[None, None]
    np.testing.assert_allclose(r["max"], F.max_pool2d(x, 2)[0, 0].numpy())
    np.testing.assert_allclose(r["average"], F.avg_pool2d(x, 2)[0, 0].numpy())
    np.testing.assert_allclose(r["sum"], 4 * F.avg_pool2d(x, 2)[0, 0].numpy())
    np.testing.assert_allclose(r["square_sum"], F.lp_pool2d(x, 2, 2)[0, 0].numpy(), rtol=1e-12)
    assert r["max"].tolist() == [[6, 8], [3, 4]]
    assert r["sum"].tolist() == [[13, 21], [8, 8]]
    assert np.round(r["square_sum"], 2).tolist() == [[7.94, 11.53], [4.24, 5.10]]
    x1 = torch.tensor(r["max_1d_input"])[None, None]
    np.testing.assert_array_equal(r["max_1d_output"], F.max_pool1d(x1, 2)[0, 0].numpy())


# --- 002 strides and dilation --------------------------------------------------------------------

def test_strides_dilation_sizes_and_receptive_fields(rendered):
    r = rendered["002-strides-dilation"][1]
    w, f = r["input_size"], r["kernel_size"]
    expected = {(1, 1): (5, 3), (2, 1): (3, 3), (1, 2): (3, 5), (2, 2): (2, 5)}
    for case in r["cases"]:
        s, d = case["stride"], case["dilation"]
        y = torch.nn.Conv2d(1, 1, f, stride=s, dilation=d)(torch.zeros(1, 1, w, w))
        assert case["output_size_formula"] == case["output_size_torch"] == y.shape[-1] == expected[(s, d)][0]
        assert case["receptive_field"] == expected[(s, d)][1]
        taps = {(d * i, d * j) for i in range(f) for j in range(f)}
        assert set(case["taps_first"]) == taps
        assert set(case["taps_next"]) == {(a, b + s) for a, b in taps}


# --- 002 transposed convolution as a matrix ------------------------------------------------------

def test_convolution_matrix_equals_slide(rendered):
    r = rendered["002-transposed-convolution-matrix"][1]
    expected = np.array(CONVOLUTION_MATRIX_SLIDE, dtype=float)
    assert r["C"].shape == (4, 16)
    for i in range(4):
        for j in range(16):
            assert r["C"][i, j] == expected[i, j], (i, j)
    assert r["C"][0].tolist() == [1, 4, 1, 0, 1, 4, 3, 0, 3, 3, 1, 0, 0, 0, 0, 0]
    np.testing.assert_array_equal(r["C_from_conv2d_basis"], expected)


def test_convolution_matrix_products_match_torch():
    k = torch.tensor(TRANSPOSED_KERNEL, dtype=torch.float64)
    c = torch.tensor(convolution_matrix(k.numpy(), 4))
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x = torch.randn(4, 4, generator=gen, dtype=torch.float64)
        y = torch.randn(2, 2, generator=gen, dtype=torch.float64)
        torch.testing.assert_close((c @ x.flatten()).reshape(2, 2), F.conv2d(x[None, None], k[None, None])[0, 0])
        torch.testing.assert_close((c.T @ y.flatten()).reshape(4, 4),
                                   F.conv_transpose2d(y[None, None], k[None, None])[0, 0])


def test_transposed_example_numbers(rendered):
    r = rendered["002-transposed-convolution-matrix"][1]
    np.testing.assert_array_equal(r["Cx"], [[122, 148], [126, 134]])
    np.testing.assert_array_equal(r["Cx"], r["conv2d"])
    np.testing.assert_array_equal(r["CTy"], r["conv_transpose2d"])


# --- 004 activation functions and sigmoid / cross-entropy ----------------------------------------

def test_activation_derivatives_match_closed_forms(rendered):
    r = rendered["004-activation-functions"][1]
    x, f, df = r["x"], r["f"], r["df"]
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(df["Logistic (soft step)"], s * (1 - s), atol=1e-12)
    np.testing.assert_allclose(df["TanH"], 1 - np.tanh(x) ** 2, atol=1e-12)
    elu = f[f"ELU (α={ELU_ALPHA:g})"]
    np.testing.assert_allclose(elu, np.where(x < 0, ELU_ALPHA * (np.exp(x) - 1), x), atol=1e-12)
    np.testing.assert_allclose(df[f"ELU (α={ELU_ALPHA:g})"], np.where(x < 0, elu + ELU_ALPHA, 1.0), atol=1e-12)
    np.testing.assert_allclose(df["SoftPlus"], s, atol=1e-12)
    np.testing.assert_allclose(df["ArcTan"], 1 / (x**2 + 1), atol=1e-12)
    np.testing.assert_allclose(df["Identity"], 1.0)
    nz = x != 0
    np.testing.assert_allclose(df[f"PReLU (α={PRELU_ALPHA:g})"][nz], np.where(x[nz] < 0, PRELU_ALPHA, 1.0))
    np.testing.assert_allclose(df["ReLU"][nz], np.where(x[nz] < 0, 0.0, 1.0))
    step = df["Binary step"]
    assert np.all(step[nz] == 0) and np.isnan(step[~nz]).all() and (~nz).sum() == 1


def test_cross_entropy_vs_l2_gradients(rendered):
    r = rendered["004-sigmoid-cross-entropy"][1]
    p = r["p"]
    np.testing.assert_allclose(r["grad_ce"], p - 1, atol=1e-9)
    np.testing.assert_allclose(r["grad_l2"], 2 * (p - 1) * p * (1 - p), atol=1e-9)
    np.testing.assert_allclose(r["sigmoid"] + r["sigmoid_neg"], 1.0)
    g = loss_gradients([0.01])
    assert g["grad_ce"][0] == pytest.approx(-0.99)
    assert g["grad_l2"][0] == pytest.approx(-2 * 0.99**2 * 0.01)
    assert abs(g["grad_l2"][0]) < 0.03 * abs(g["grad_ce"][0])  # L2 vanishes when confidently wrong
    assert r["l2_grad_max_p"] == pytest.approx(1 / 3, abs=0.01)
    assert r["l2_grad_max"] == pytest.approx(8 / 27, abs=1e-3)


# --- 002 fully-connected parameter count ---------------------------------------------------------

def test_fully_connected_count(rendered):
    r = rendered["002-fully-connected-parameters"][1]
    assert r["dense_weights"] == r["dense_formula"] == 68719476736
    assert f"{r['dense_weights']:.0e}" == "7e+10"  # the slide's rounding
    assert r["conv_params"] == sum(p.numel() for p in torch.nn.Conv2d(1, 64, 3).parameters()) == 640


# --- command line --------------------------------------------------------------------------------

def test_cli_single_figure(tmp_path):
    out = tmp_path / "fc.png"
    assert concepts.main(["002-fully-connected-parameters", str(out)]) == 0
    assert out.stat().st_size > 0 and out.with_suffix(".pdf").stat().st_size > 0


def test_cli_rejects_unknown_stem(tmp_path):
    with pytest.raises(SystemExit):
        concepts.main(["no-such-figure", str(tmp_path / "x.png")])
