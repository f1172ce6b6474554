"""Photo-z scores and Gaussian-mixture densities against hand computations and scipy."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate, special, stats

from deepsky.tasks.photoz import mdn_nll
from deepsky.tasks.photoz_metrics import (
    GaussianMixture,
    density_metrics,
    kernel_mixture,
    photoz_metrics,
    point_metrics,
    sigma_nmad,
)


def test_point_scores_by_hand():
    z = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    z_pred = np.array([0.111, 0.2, 0.3 - 0.026, 0.4 + 0.28, 0.5 + 0.03])
    dz = (z_pred - z) / (1 + z)  # 0.01, 0, -0.02, 0.2, 0.02
    assert np.allclose(dz, [0.01, 0.0, -0.02, 0.2, 0.02])
    # median dz = 0.01; |dz - 0.01| = 0, 0.01, 0.03, 0.19, 0.01 -> median 0.01
    assert sigma_nmad(dz) == pytest.approx(1.4826 * 0.01)
    scores = point_metrics(z, z_pred)
    assert scores["sigma_nmad"] == pytest.approx(0.014826)
    assert scores["outlier_frac_015"] == pytest.approx(1 / 5)
    assert scores["outlier_frac_005"] == pytest.approx(1 / 5)
    assert scores["bias"] == pytest.approx(np.mean([0.01, 0, -0.02, 0.2, 0.02]))


WEIGHTS = np.array([0.2, 0.5, 0.3])
MEANS = np.array([0.10, 0.25, 0.40])
SIGMAS = np.array([0.02, 0.05, 0.01])


def scipy_mixture_logpdf(y):
    return special.logsumexp(stats.norm.logpdf(y, MEANS, SIGMAS), b=WEIGHTS)


@pytest.mark.parametrize("y", [0.1, 0.23, 0.405, 0.9, -2.0])
def test_mdn_loss_is_the_mixture_negative_log_likelihood(y):
    # Outputs in the task's layout: logits, means, log-sigmas (the targets here are unscaled).
    outputs = torch.tensor(np.concatenate([np.log(WEIGHTS) + 3.0, MEANS, np.log(SIGMAS)])[None], dtype=torch.float32)
    loss = mdn_nll(outputs, torch.tensor([[y]]), 3).item()
    assert np.isfinite(loss)
    assert loss == pytest.approx(-scipy_mixture_logpdf(y), rel=1e-5, abs=1e-4)
    naive = np.sum(WEIGHTS * stats.norm.pdf(y, MEANS, SIGMAS))
    if naive > 1e-30:  # the naive form agrees where it does not underflow (y = -2 is 46 sigma away)
        assert loss == pytest.approx(-np.log(naive), rel=1e-5)


def test_mdn_loss_has_finite_gradients_far_from_every_component():
    outputs = torch.tensor([[0.0, 0.0, 0.0, 1.0, 0.0, -5.0]], requires_grad=True)  # two components
    loss = mdn_nll(outputs, torch.tensor([[200.0]]), 2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(outputs.grad).all()


def mixture(n=1):
    return GaussianMixture(np.tile(WEIGHTS, (n, 1)), np.tile(MEANS, (n, 1)), np.tile(SIGMAS, (n, 1)))


def test_pdf_and_cdf_against_scipy():
    x = np.array([0.05, 0.25, 0.41])
    mix = mixture(3)
    assert np.allclose(mix.pdf(x), [np.sum(WEIGHTS * stats.norm.pdf(v, MEANS, SIGMAS)) for v in x])
    assert np.allclose(mix.cdf(x), [np.sum(WEIGHTS * stats.norm.cdf(v, MEANS, SIGMAS)) for v in x])
    assert np.allclose(mix.pit(x), mix.cdf(x))
    total = integrate.quad(lambda t: mixture().pdf(np.array([t]))[0], -1, 2, points=list(MEANS), limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-6)


def test_crps_of_one_gaussian_is_the_closed_form():
    mu, sigma, y = 0.3, 0.04, np.array([0.25, 0.3, 0.42])
    d = (y - mu) / sigma
    closed = sigma * (d * (2 * stats.norm.cdf(d) - 1) + 2 * stats.norm.pdf(d) - 1 / np.sqrt(np.pi))  # Gneiting & Raftery
    ours = GaussianMixture(np.ones((3, 1)), np.full((3, 1), mu), np.full((3, 1), sigma)).crps(y)
    assert np.allclose(ours, closed, rtol=1e-10)


@pytest.mark.parametrize("y", [0.12, 0.3, 0.5])
def test_crps_of_a_mixture_against_numerical_integration(y):
    cdf = lambda t: np.sum(WEIGHTS * stats.norm.cdf(t, MEANS, SIGMAS))  # noqa: E731
    below = integrate.quad(lambda t: cdf(t) ** 2, -1.0, y, limit=200, points=[m for m in MEANS if m < y])[0]
    above = integrate.quad(lambda t: (1 - cdf(t)) ** 2, y, 2.0, limit=200, points=[m for m in MEANS if m > y])[0]
    assert mixture().crps(np.array([y]))[0] == pytest.approx(below + above, rel=1e-6)


def test_highest_density_region_of_a_gaussian():
    mu, sigma = 0.2, 0.03
    z = np.array([0.2, 0.2 + 0.9945 * sigma, 0.2 - 1.96 * sigma, 0.2 + 3 * sigma])
    mix = GaussianMixture(np.ones((4, 1)), np.full((4, 1), mu), np.full((4, 1), sigma))
    expected = 2 * stats.norm.cdf(np.abs(z - mu) / sigma) - 1  # the central interval is the HDR
    assert np.allclose(mix.hdr_mass(z), expected, atol=3e-3)


def test_calibrated_densities_score_as_calibrated():
    rng = np.random.default_rng(0)
    n = 2500
    mix = GaussianMixture(np.tile(WEIGHTS, (n, 1)), np.tile(MEANS, (n, 1)), np.tile(SIGMAS, (n, 1)))
    component = rng.choice(3, size=n, p=WEIGHTS)
    z = rng.normal(MEANS[component], SIGMAS[component])
    scores = density_metrics(z, mix)
    assert scores["hdr_coverage68"] == pytest.approx(0.68, abs=0.025)
    assert scores["hdr_coverage95"] == pytest.approx(0.95, abs=0.015)
    assert scores["pit_ks"] < 0.03
    too_narrow = GaussianMixture(mix.weights, mix.means, mix.sigmas / 3)
    assert density_metrics(z, too_narrow)["hdr_coverage68"] < 0.5


def test_mode_and_quantiles():
    mix = mixture()
    assert mix.mode()[0] == pytest.approx(0.40, abs=1e-4)  # the tallest peak: 0.3 / 0.01 beats 0.5 / 0.05
    for q in (0.16, 0.5, 0.84):
        assert mix.cdf(mix.quantile(q))[0] == pytest.approx(q, abs=1e-9)
    one = GaussianMixture([[1.0]], [[0.3]], [[0.05]])
    assert one.quantile(0.84)[0] == pytest.approx(0.3 + 0.05 * stats.norm.ppf(0.84), abs=1e-9)


def test_table_round_trip_and_point_estimate_crps():
    mix = mixture(2)
    table = pd.DataFrame({"z": [0.1, 0.4], "z_pred": mix.mode(), **mix.columns()})
    back = GaussianMixture.from_table(table)
    assert np.allclose(back.means, mix.means) and np.allclose(back.sigmas, mix.sigmas)
    scores = photoz_metrics(table)
    assert scores["crps"] == pytest.approx(mix.crps(np.array([0.1, 0.4])).mean())
    point = pd.DataFrame({"z": [0.1, 0.4], "z_pred": [0.12, 0.37]})
    scores = photoz_metrics(point)
    assert scores["crps"] == pytest.approx(0.025)  # a point estimate: the mean |z_pred - z|
    assert math.isnan(scores["pit_ks"])
    with pytest.raises(ValueError, match="incomplete"):
        GaussianMixture.from_table(table.drop(columns=["mdn_sigma_1"]))


def test_kernel_mixture_of_samples():
    samples = np.array([[0.10, 0.11, 0.12, 0.13], [0.3, 0.3, 0.3, 0.3]])
    mix = kernel_mixture(samples, min_sigma=0.002)
    assert np.allclose(mix.weights, 0.25) and np.allclose(mix.means, samples)
    assert mix.sigmas[1, 0] == pytest.approx(0.002 * 1.3)  # identical samples: the floor
    assert mix.sigmas[0, 0] > 0.002 * 1.115
