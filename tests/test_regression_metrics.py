import numpy as np
import pytest
from scipy.stats import norm
from sklearn.calibration import calibration_curve
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from deepsky.metrics import (
    error_quantile,
    expected_calibration_error,
    gaussian_interval_coverage,
    gaussian_nll,
    regression_metrics,
    reliability_curve,
)


def test_err68_on_errors_1_to_100_is_numpy_quantile():
    truth = np.zeros(100)
    pred = np.arange(1, 101) * np.where(np.arange(100) % 2, 1, -1)  # signs must not matter
    assert error_quantile(truth, pred) == pytest.approx(np.quantile(np.arange(1, 101), 0.68))
    assert error_quantile(truth, pred) == pytest.approx(68.32)
    assert error_quantile(truth, pred, q=0.5) == pytest.approx(50.5)


def test_coverage_hand_made():
    # z(0.68) = 0.9945: errors 0.5 and 0.9 inside, 1.0 and 2.0 outside.
    truth = np.zeros(4)
    mean = np.array([0.5, -0.9, 1.0, 2.0])
    assert gaussian_interval_coverage(truth, mean, np.ones(4), 0.68) == pytest.approx(0.5)
    assert gaussian_interval_coverage(truth, mean, np.ones(4), 0.95) == pytest.approx(0.75)


def test_coverage_is_nominal_for_right_sigma_and_low_for_too_small_sigma():
    rng = np.random.default_rng(0)
    n = 20000
    sigma = rng.uniform(0.05, 0.5, n)  # heteroscedastic: each prediction its own sigma
    truth = rng.normal(0, 1, n)
    mean = truth + rng.normal(0, 1, n) * sigma
    assert gaussian_interval_coverage(truth, mean, sigma, 0.68) == pytest.approx(0.68, abs=0.02)
    assert gaussian_interval_coverage(truth, mean, sigma, 0.95) == pytest.approx(0.95, abs=0.02)
    # Over-confident: half the true sigma. Expected coverage 2*Phi(z/2) - 1 = 0.38 at 68 %.
    assert gaussian_interval_coverage(truth, mean, sigma / 2, 0.68) < 0.45
    assert gaussian_interval_coverage(truth, mean, sigma / 2, 0.95) < 0.75


def test_nll_matches_scipy_logpdf():
    rng = np.random.default_rng(1)
    truth, mean = rng.normal(size=50), rng.normal(size=50)
    sigma = rng.uniform(0.1, 2, 50)
    expected = -np.mean(norm.logpdf(truth, loc=mean, scale=sigma))
    assert gaussian_nll(truth, mean, sigma) == pytest.approx(expected)
    assert gaussian_nll([0.0], [0.0], [1.0]) == pytest.approx(0.5 * np.log(2 * np.pi))


def test_regression_metrics_against_sklearn():
    rng = np.random.default_rng(2)
    names = ["theta_E", "x"]
    truth = rng.normal(size=(200, 2))
    pred = truth + rng.normal(0, [0.1, 0.3], (200, 2)) + [0.05, 0.0]
    m = regression_metrics(truth, pred, names, sigma=None)
    for k, name in enumerate(names):
        assert m[f"{name}_rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth[:, k], pred[:, k])))
        assert m[f"{name}_mae"] == pytest.approx(mean_absolute_error(truth[:, k], pred[:, k]))
        assert m[f"{name}_r2"] == pytest.approx(r2_score(truth[:, k], pred[:, k]))
        assert m[f"{name}_bias"] == pytest.approx(np.mean(pred[:, k] - truth[:, k]))
        assert m[f"{name}_err68"] == pytest.approx(np.quantile(np.abs(pred[:, k] - truth[:, k]), 0.68))
        assert isinstance(m[f"{name}_rmse"], float)
    assert m["theta_E_bias"] == pytest.approx(0.05, abs=0.02)
    assert m["r2_mean"] == pytest.approx(np.mean([m["theta_E_r2"], m["x_r2"]]))
    assert not any("coverage" in key or "nll" in key for key in m)


def test_regression_metrics_with_sigma():
    rng = np.random.default_rng(3)
    names = ["a", "b", "c"]
    truth = rng.normal(size=(300, 3))
    sigma = np.full((300, 3), 0.2)
    pred = truth + rng.normal(size=(300, 3)) * sigma
    m = regression_metrics(truth, pred, names, sigma)
    for k, name in enumerate(names):
        assert m[f"{name}_coverage68"] == gaussian_interval_coverage(truth[:, k], pred[:, k], sigma[:, k], 0.68)
        assert m[f"{name}_coverage95"] == gaussian_interval_coverage(truth[:, k], pred[:, k], sigma[:, k], 0.95)
        assert m[f"{name}_nll"] == pytest.approx(-np.mean(norm.logpdf(truth[:, k], pred[:, k], sigma[:, k])))
    assert m["coverage68_mean"] == pytest.approx(np.mean([m[f"{n}_coverage68"] for n in names]))
    assert m["coverage95_mean"] == pytest.approx(np.mean([m[f"{n}_coverage95"] for n in names]))


def test_reliability_curve_matches_sklearn_and_counts_bins():
    rng = np.random.default_rng(4)
    scores = rng.uniform(0, 1, 500)
    labels = (rng.uniform(0, 1, 500) < scores).astype(int)
    mean_predicted, fraction_positive, counts = reliability_curve(labels, scores, n_bins=10)
    prob_true, prob_pred = calibration_curve(labels, scores, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(mean_predicted, prob_pred)
    np.testing.assert_allclose(fraction_positive, prob_true)
    np.testing.assert_array_equal(counts, np.histogram(scores, bins=np.linspace(0, 1, 11))[0])


def test_reliability_curve_drops_empty_bins():
    labels = [0, 1, 0, 1, 1]
    scores = [0.05, 0.05, 0.95, 0.95, 0.95]
    mean_predicted, fraction_positive, counts = reliability_curve(labels, scores, n_bins=10)
    np.testing.assert_allclose(mean_predicted, [0.05, 0.95])
    np.testing.assert_allclose(fraction_positive, [0.5, 2 / 3])
    np.testing.assert_array_equal(counts, [2, 3])


def test_ece_zero_for_perfectly_calibrated_bins():
    # Bin at 0.25 with 1 positive out of 4, bin at 0.75 with 3 out of 4: calibrated by construction.
    labels = [1, 0, 0, 0, 1, 1, 1, 0]
    scores = [0.25] * 4 + [0.75] * 4
    assert expected_calibration_error(labels, scores) == pytest.approx(0.0)


def test_ece_positive_when_over_confident():
    # Scores of 0.95 and 0.05 but only 60 % / 40 % positives: |0.6 - 0.95| = |0.4 - 0.05| = 0.35.
    labels = [1] * 6 + [0] * 4 + [1] * 4 + [0] * 6
    scores = [0.95] * 10 + [0.05] * 10
    assert expected_calibration_error(labels, scores) == pytest.approx(0.35)


def test_ece_weights_bins_by_count():
    # 8 calibrated samples at 0.5 (4 positives) and 2 at 0.9 that are both negative: ECE = 2*0.9/10.
    labels = [1, 0] * 4 + [0, 0]
    scores = [0.5] * 8 + [0.9] * 2
    assert expected_calibration_error(labels, scores) == pytest.approx(0.18)
