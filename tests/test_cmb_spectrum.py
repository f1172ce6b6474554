"""The flat-sky power-spectrum estimator on Gaussian fields of known spectrum, and on sky patches."""

import numpy as np
import pytest

from deepsky.data.cmb_spectrum import (
    SpectrumEstimator,
    bin_edges,
    expected_binned,
    fundamental_ell,
    gaussian_field,
    nyquist_ell,
)

PIXEL = 8.0  # arcmin
ELL = np.arange(0, 6000.0)


def smooth_spectrum(ell):
    """A CMB-like red spectrum with a Gaussian beam of 12 arcmin (muK^2 sr)."""
    sigma = 12 * np.pi / (180 * 60) / np.sqrt(8 * np.log(2))
    return 2e3 / (ell + 100.0) ** 2 * np.exp(-(ell**2) * sigma**2)


def test_bins_span_fundamental_to_nyquist():
    edges = bin_edges(32, PIXEL, width=2)
    assert edges[0] == 0 and edges[-1] == pytest.approx(nyquist_ell(PIXEL))
    assert np.diff(edges)[0] == pytest.approx(2 * fundamental_ell(32, PIXEL))
    assert fundamental_ell(32, PIXEL) == pytest.approx(360 * 60 / (32 * PIXEL))


def test_periodic_fields_recover_the_input_within_the_expected_scatter():
    """No taper on periodic fields: the estimator is unbiased and its scatter is 2 C^2 / n_modes."""
    estimator = SpectrumEstimator(32, PIXEL, alpha=0.0)
    fields = gaussian_field(ELL, smooth_spectrum(ELL), 32, PIXEL, np.random.default_rng(1), n_fields=400)
    cl = estimator(fields)
    truth = estimator.binned_theory(ELL, smooth_spectrum(ELL))
    scatter = estimator.expected_scatter(truth)
    z = (cl.mean(0) - truth) / (scatter / np.sqrt(len(cl)))
    assert np.all(np.abs(z) < 4), z
    assert np.mean(z**2) < 3  # chi^2 per bin of a correct estimator is ~1
    np.testing.assert_allclose(cl.std(0, ddof=1), scatter, rtol=0.2)


def test_tapered_cutouts_recover_the_input():
    """Patches cut from larger fields (not periodic): the taper keeps the leakage from other scales to
    a few per cent on a spectrum that falls threefold per bin, and the Monte Carlo expectation of the
    estimator (what the evaluation compares real patches with) includes even that."""
    estimator = SpectrumEstimator(32, PIXEL, alpha=0.5)
    big = gaussian_field(ELL, smooth_spectrum(ELL), 256, PIXEL, np.random.default_rng(2), n_fields=8)
    patches = big.reshape(8, 8, 32, 8, 32).swapaxes(2, 3).reshape(-1, 32, 32)
    cl = estimator(patches)
    truth = estimator.binned_theory(ELL, smooth_spectrum(ELL))
    error = estimator.expected_scatter(truth) / np.sqrt(len(cl))
    inside = estimator.edges[:-1] >= 2 * fundamental_ell(32, PIXEL)
    assert np.all(np.abs(cl.mean(0) - truth)[inside] < 4 * error[inside] + 0.08 * truth[inside])
    # oversample=1: these test fields, like the Monte Carlo ones then, have no power above Nyquist to alias.
    expected = expected_binned(estimator, ELL, smooth_spectrum(ELL), np.random.default_rng(3), n_patches=2048, oversample=1)
    assert np.all(np.abs(cl.mean(0) - expected)[inside] < 4 * np.sqrt(1.5) * error[inside])


def test_white_noise_has_the_pixel_area_as_spectrum():
    rng = np.random.default_rng(4)
    estimator = SpectrumEstimator(64, PIXEL)
    cl = estimator(rng.normal(0, 10.0, (200, 64, 64))).mean(0)
    # The first bin holds the patch mean, which the estimator subtracts.
    np.testing.assert_allclose(cl[1:], 100.0 * (PIXEL * np.pi / (180 * 60)) ** 2, rtol=0.05)


def test_bad_inputs_are_refused():
    estimator = SpectrumEstimator(32, PIXEL)
    with pytest.raises(ValueError, match="built for 32"):
        estimator(np.zeros((2, 16, 16)))
    with pytest.raises(ValueError, match="hold no Fourier mode"):
        SpectrumEstimator(32, PIXEL, edges=np.array([0.0, 1.0, 2.0, nyquist_ell(PIXEL)]))
    assert estimator(np.zeros((32, 32))).shape == (len(estimator.edges) - 1,)
