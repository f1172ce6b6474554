import numpy as np
import pandas as pd
import pytest

from deepsky.figures.regression import (
    HEZAVEH17_TABLE1,
    TARGET_LABELS,
    architectures,
    hezaveh_table,
    predicted_vs_true,
    reliability_diagram,
    target_label,
    uncertainty_calibration,
)
from deepsky.metrics import expected_calibration_error, gaussian_interval_coverage

TARGETS = ["theta_E", "epsilon_x", "epsilon_y", "x", "y"]
# Noise per architecture: the combined network (an average) is the most precise, as in the paper.
NOISE = {"combined": 0.04, "alexnet": 0.08, "inception": 0.06}  # combined first: figures must put it last


def regression_table(with_sigma=True, n=150, seed=0) -> pd.DataFrame:
    """Three architectures x three folds; `inception` predicts an over-confident sigma (half the
    true noise), `combined` a calibrated one, `alexnet` none (NaN, as in a pooled table)."""
    rng = np.random.default_rng(seed)
    parts = []
    for fold in range(3):
        truth = {"theta_E": rng.uniform(0.5, 2.0, n), "epsilon_x": rng.uniform(-0.5, 0.5, n),
                 "epsilon_y": rng.uniform(-0.5, 0.5, n), "x": rng.uniform(-0.5, 0.5, n), "y": rng.uniform(-0.5, 0.5, n)}
        for arch, noise in NOISE.items():
            part = pd.DataFrame({"index": np.arange(n), "fold": fold, "architecture": arch, **truth})
            for t in TARGETS:
                part[f"{t}_pred"] = truth[t] + rng.normal(0, noise, n) * (1 + fold * 0.2)
                if with_sigma:
                    part[f"{t}_sigma"] = {"alexnet": np.nan, "inception": noise / 2, "combined": noise * (1 + fold * 0.2)}[arch]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def binary_table(n=400, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for fold in range(3):
        p = rng.uniform(0, 1, n)
        label = (rng.uniform(0, 1, n) < p).astype(int)
        over = np.clip(0.5 + 1.8 * (p - 0.5), 0, 1)  # pushed towards 0 and 1: over-confident
        parts += [pd.DataFrame({"label": label, "score": p, "fold": fold, "architecture": "calibrated"}),
                  pd.DataFrame({"label": label, "score": over, "fold": fold, "architecture": "overconfident"})]
    return pd.concat(parts, ignore_index=True)


def assert_figure(png):
    assert png.exists() and png.stat().st_size > 10_000
    assert png.with_suffix(".pdf").exists() and png.with_suffix(".pdf").stat().st_size > 2_000


def test_published_table_and_labels():
    assert HEZAVEH17_TABLE1.loc["Combined Network", "theta_E"] == 0.02
    assert HEZAVEH17_TABLE1.loc["Network 2 (AlexNet)", "epsilon_y"] == 0.04
    assert HEZAVEH17_TABLE1.shape == (5, 5) and list(HEZAVEH17_TABLE1.columns) == TARGETS
    assert set(TARGET_LABELS) == set(TARGETS)
    assert target_label("theta_E") == r"$\theta_E$ [arcsec]" and target_label("magnification") == "magnification"


def test_combined_is_last():
    assert architectures(regression_table(n=10)) == ["alexnet", "inception", "combined"]


def test_hezaveh_table_values_are_fold_quantiles(tmp_path):
    predictions = regression_table()
    png = tmp_path / "fig" / "hezaveh_table.png"
    table = hezaveh_table(predictions, TARGETS, png)
    assert_figure(png)
    assert list(table.columns) == ["architecture", "target", "err68_mean", "err68_std"]
    assert list(dict.fromkeys(table["architecture"])) == ["alexnet", "inception", "combined"]
    for row in table.itertuples():
        part = predictions[predictions["architecture"] == row.architecture]
        per_fold = [np.quantile(np.abs(f[f"{row.target}_pred"] - f[row.target]), 0.68) for _, f in part.groupby("fold")]
        assert row.err68_mean == pytest.approx(np.mean(per_fold))
        assert row.err68_std == pytest.approx(np.std(per_fold))
        assert row.err68_std > 0
    # The least noisy architecture has the smallest error, as built.
    by_arch = table.groupby("architecture")["err68_mean"].mean()
    assert by_arch["combined"] < by_arch["inception"] < by_arch["alexnet"]
    written = pd.read_csv(png.with_suffix(".csv"))
    pd.testing.assert_frame_equal(written, table)


def test_hezaveh_table_with_unpublished_target(tmp_path):
    predictions = regression_table(n=30).rename(columns={"y": "gamma", "y_pred": "gamma_pred"})
    table = hezaveh_table(predictions, ["theta_E", "gamma"], tmp_path / "t.png")
    assert set(table["target"]) == {"theta_E", "gamma"}
    assert_figure(tmp_path / "t.png")


def test_predicted_vs_true(tmp_path):
    predictions = regression_table(with_sigma=False)
    assert predicted_vs_true(predictions, TARGETS, tmp_path / "pvt.png") == "combined"
    assert_figure(tmp_path / "pvt.png")
    assert predicted_vs_true(predictions, TARGETS[:2], tmp_path / "pvt_a.png", architecture="alexnet") == "alexnet"
    assert_figure(tmp_path / "pvt_a.png")
    no_combined = predictions[predictions["architecture"] != "combined"]
    assert predicted_vs_true(no_combined, ["theta_E"], tmp_path / "pvt_1.png") == "alexnet"


def test_uncertainty_calibration(tmp_path):
    predictions = regression_table(n=400)
    coverage = uncertainty_calibration(predictions, TARGETS, tmp_path / "cal.png")
    assert_figure(tmp_path / "cal.png")
    assert set(coverage["architecture"]) == {"inception", "combined"}  # alexnet has only NaN sigma
    assert len(coverage) == 2 * len(TARGETS)
    combined = coverage[coverage["architecture"] == "combined"]
    inception = coverage[coverage["architecture"] == "inception"]
    assert combined["coverage68"].mean() == pytest.approx(0.68, abs=0.03)
    assert combined["coverage95"].mean() == pytest.approx(0.95, abs=0.02)
    assert inception["coverage68"].max() < 0.5  # sigma half the noise: about 0.38
    part = predictions[predictions["architecture"] == "inception"]
    assert inception.set_index("target").loc["x", "coverage95"] == gaussian_interval_coverage(
        part["x"], part["x_pred"], part["x_sigma"], 0.95)


def test_uncertainty_calibration_without_sigma(tmp_path):
    coverage = uncertainty_calibration(regression_table(with_sigma=False, n=20), TARGETS, tmp_path / "none.png")
    assert coverage.empty
    assert (tmp_path / "none.png").exists() and (tmp_path / "none.pdf").exists()


def test_reliability_diagram(tmp_path):
    predictions = binary_table()
    eces = reliability_diagram(predictions, tmp_path / "rel.png")
    assert_figure(tmp_path / "rel.png")
    for arch, part in predictions.groupby("architecture"):
        assert eces[arch] == pytest.approx(expected_calibration_error(part["label"], part["score"]))
    assert eces["calibrated"] < 0.05 < eces["overconfident"]
