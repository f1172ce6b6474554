"""Minkowski functionals by pixel counting: exact on simple shapes, and the analytic Gaussian-field
expectation (Tomita 1986; Schmalzing & Gorski 1998) on Gaussian random fields."""

import numpy as np
import pytest

from deepsky.data.cmb_minkowski import gaussian_expectation, gradient_ratio, minkowski_functionals


def disc(size, centre, radius):
    yy, xx = np.mgrid[:size, :size]
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def euler_count(image):
    """The Euler characteristic itself: the per-area estimate times the number of quads."""
    h, w = image.shape
    return minkowski_functionals(image.astype(float), [0.5])["euler"][0] * (h - 1) * (w - 1)


def test_euler_characteristic_of_shapes():
    assert euler_count(disc(64, (32, 32), 10)) == pytest.approx(1)
    assert euler_count(disc(64, (20, 20), 8) | disc(64, (44, 44), 8)) == pytest.approx(2)
    assert euler_count(disc(64, (32, 32), 15) & ~disc(64, (32, 32), 7)) == pytest.approx(0)  # an annulus
    assert euler_count(np.zeros((16, 16))) == 0


def test_area_and_boundary_of_a_disc():
    radius, size = 20, 128
    mf = minkowski_functionals(disc(size, (64, 64), radius).astype(float), [0.5], pixel=0.5)
    assert mf["area"][0] == pytest.approx(np.pi * radius**2 / size**2, rel=0.02)
    # Per unit area (length / image area); a digital disc of radius 20 crosses 41 rows, not 40.
    assert mf["boundary"][0] == pytest.approx(2 * np.pi * radius / (size**2 * 0.5), rel=0.05)


@pytest.fixture(scope="module")
def gaussian_fields():
    """Periodic Gaussian fields smoothed over 3 pixels, unit variance, and their exact lambda."""
    rng = np.random.default_rng(0)
    n, smoothing = 256, 3.0
    k = 2 * np.pi * np.fft.fftfreq(n)
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    power = np.exp(-k2 * smoothing**2)
    fields = np.fft.ifft2(np.fft.fft2(rng.standard_normal((12, n, n))) * np.sqrt(power)).real
    sigma0 = np.sqrt(power.sum()) / n
    lam = (k2 * power).sum() / (2 * power.sum())
    return fields / sigma0, lam


def test_gaussian_field_matches_the_analytic_functionals(gaussian_fields):
    fields, lam = gaussian_fields
    nu = np.linspace(-3, 3, 25)
    measured = {k: v.mean(0) for k, v in minkowski_functionals(fields, nu).items()}
    expected = gaussian_expectation(nu, lam)
    np.testing.assert_allclose(measured["area"], expected["area"], atol=0.01)
    peak_length, peak_euler = expected["boundary"].max(), np.abs(expected["euler"]).max()
    np.testing.assert_allclose(measured["boundary"], expected["boundary"], atol=0.04 * peak_length)
    np.testing.assert_allclose(measured["euler"], expected["euler"], atol=0.08 * peak_euler)
    # The Euler characteristic changes sign at nu = 0: holes below, islands above.
    assert measured["euler"][nu < -0.5].max() < 0 < measured["euler"][nu > 0.5].min()


def test_gradient_ratio_estimates_lambda(gaussian_fields):
    fields, lam = gaussian_fields
    assert gradient_ratio(fields) == pytest.approx(lam, rel=0.02)
    assert gradient_ratio(fields, pixel=2.0) == pytest.approx(lam / 4, rel=0.02)


def test_shapes_of_the_outputs():
    out = minkowski_functionals(np.zeros((3, 8, 8)), [0.0, 1.0])
    assert {k: v.shape for k, v in out.items()} == {"area": (3, 2), "boundary": (3, 2), "euler": (3, 2)}
    np.testing.assert_array_equal(out["area"], [[1, 0]] * 3)
