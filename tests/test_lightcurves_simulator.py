"""The light-curve simulator: time scales and periods come back out of noiseless curves, the DRW
has its damping time, the cadence and errors behave like a survey's, and the data are seeded."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import curve_fit

from deepsky.config import FIXED_CLASSES, ConfigError, validate_config
from deepsky.data import lightcurves as lc
from deepsky.data import lightcurves_physics as phys
from deepsky.data.lightcurves_features import best_period
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def cfg():
    return lc.merge_simulation_config({})


@pytest.fixture(scope="module")
def small(cfg):
    return lc.simulate_lightcurves(12, cfg, seed=5)


def test_class_names_match_the_config():
    assert FIXED_CLASSES["simulate_lightcurves"] == phys.CLASS_NAMES


@pytest.mark.parametrize("draw", ["Ia", "Ibc"])
def test_supernova_time_scales_recovered_by_a_bazin_fit(draw):
    rng = np.random.default_rng(1)
    params = phys.draw_sn_ia(rng, 0.3) if draw == "Ia" else {**phys.draw_sn_cc(np.random.default_rng(3), 0.1),
                                                               "subtype": "Ibc", "stretch": 1.1}
    params["t_peak"] = 50.0
    t = np.linspace(0, 200, 400)
    flux = phys.supernova_flux(t, "r", params, distmod=40.0)
    rise, fall = phys.sn_time_scales(params, "r")

    def model(t, a, t0, tau_rise, tau_fall):
        return a * phys.bazin(t, t0, tau_rise, tau_fall)

    (a, t0, fit_rise, fit_fall), _ = curve_fit(model, t, flux, p0=[flux.max(), 45.0, 1.5 * rise, 0.7 * fall])
    assert fit_rise == pytest.approx(rise, rel=1e-3)
    assert fit_fall == pytest.approx(fall, rel=1e-3)
    assert t[np.argmax(flux)] == pytest.approx(50.0, abs=0.6)  # peak (r) where it was put
    # Time dilation: the same supernova at higher redshift is slower by (1 + z).
    assert phys.sn_time_scales({**params, "redshift": 2 * params["redshift"] + 1}, "r")[1] > fall


def test_plateau_supernova_recovered_by_a_villar_fit():
    params = {"subtype": "IIP", "abs_mag": -17.0, "redshift": 0.05, "tau_rise": 3.0, "plateau": 90.0,
              "tau_fall": 12.0, "stretch": 1.0, "t_peak": 30.0}
    t = np.linspace(0, 300, 600)
    flux = phys.supernova_flux(t, "r", params, distmod=37.0)

    def model(t, a, t0, tau_rise, tau_fall, plateau, slope):
        return a * phys.villar(t, t0, tau_rise, tau_fall, plateau, slope)

    p0 = [flux.max(), 20.0, 2.0, 20.0, 80.0, 0.001]
    fit, _ = curve_fit(model, t, flux, p0=p0, bounds=([0, 0, 0.5, 1, 10, 0], [np.inf, 60, 10, 60, 200, 0.01]))
    assert fit[4] == pytest.approx(90.0 * 1.05, rel=1e-2)  # plateau length, observer frame
    assert fit[3] == pytest.approx(12.0 * 1.05, rel=1e-2)


def test_periods_and_amplitudes_recovered_from_noiseless_curves():
    rng = np.random.default_rng(7)
    dense = np.sort(rng.uniform(0, 150, 600))
    for _ in range(5):
        star = phys.draw_rr_lyrae(rng)
        flux = phys.rr_lyrae_flux(dense, "g", star)
        period, _ = best_period(dense, flux, np.ones_like(dense), min_period=0.1, samples_per_peak=10)
        assert period == pytest.approx(star["period"], rel=5e-3), star
        mag = phys.ZERO_POINT - 2.5 * np.log10(flux)
        assert np.ptp(mag) == pytest.approx(star["amplitude"], rel=0.05)  # g-band amplitude
    for _ in range(5):
        binary = phys.draw_eclipsing_binary(rng)
        flux = phys.eclipsing_binary_flux(dense, "r", binary)
        period, _ = best_period(dense, flux, np.ones_like(dense), min_period=0.05, samples_per_peak=10)
        # Two eclipses (or two minima) per orbit: the periodogram may pick half the period.
        assert min(abs(period / binary["period"] - 1), abs(2 * period / binary["period"] - 1)) < 5e-3, binary


def test_damped_random_walk_has_its_time_scale_and_variance():
    rng = np.random.default_rng(0)
    tau, sigma, step = 50.0, 0.2, 5.0
    walk = phys.damped_random_walk(np.arange(0, 400_000, step), tau, sigma, rng)
    lag1 = np.corrcoef(walk[:-1], walk[1:])[0, 1]
    assert lag1 == pytest.approx(np.exp(-step / tau), abs=0.01)
    assert walk.std() == pytest.approx(sigma, rel=0.05)


def test_dataset_is_balanced_detected_and_seeded(small, cfg):
    catalog, observations = small
    assert list(catalog["index"]) == list(range(len(catalog)))
    assert catalog["class_name"].value_counts().to_dict() == {name: 12 for name in phys.CLASS_NAMES}
    assert (catalog["label"] == catalog["class_name"].map(phys.CLASS_NAMES.index)).all()
    assert list(observations.columns) == list(lc.OBSERVATION_COLUMNS)
    detections = (observations["flux"] / observations["flux_err"] > 5).groupby(observations["object"]).sum()
    assert (detections >= cfg["min_detections"]).all()
    assert set(observations["band"]) == set(cfg["bands"])
    periodic = catalog["class_name"].isin(["RRLyr", "EB"])
    assert catalog.loc[periodic, "period"].notna().all() and catalog.loc[~periodic, "period"].isna().all()
    again = lc.simulate_lightcurves(12, cfg, seed=5)
    pd.testing.assert_frame_equal(observations, again[1])


def test_cadence_has_seasons_gaps_and_heteroscedastic_errors(cfg):
    rng = np.random.default_rng(3)
    two = {**cfg, "n_seasons": 2}
    times, bands, depth, field = lc.draw_cadence(two, rng)
    assert times.max() > lc.YEAR and not ((times > cfg["season_days"]) & (times < lc.YEAR)).any()
    nights = np.unique(np.floor(times))
    assert np.diff(nights).max() >= 2  # weather and revisits leave gaps
    clear = lc.clear_nights(100_000, 0.7, 3.0, np.random.default_rng(1))
    assert clear.mean() == pytest.approx(0.7, abs=0.02)
    bright, faint = np.full(50, 1e5), np.full(50, 10.0)
    _, sigma_bright = lc.observe(bright, np.full(50, 24.0), cfg, rng)
    _, sigma_faint = lc.observe(faint, np.full(50, 24.0), cfg, rng)
    assert (sigma_bright > 5 * sigma_faint).all()  # Poisson noise and calibration floor of bright sources
    _, shallow = lc.observe(faint, np.full(50, 22.0), cfg, rng)
    assert np.allclose(shallow / sigma_faint, 10 ** (0.4 * 2), rtol=0.05)  # 2 mag shallower: 6.3x the sky noise


def test_writer_makes_catalog_observations_and_card(tmp_path):
    card = lc.write_lightcurve_dataset(tmp_path, "lc", {"n_per_class": 4, "description": "tiny"}, seed=1)
    written = json.loads((tmp_path / "card.json").read_text())
    assert written["counts"] == {name: 4 for name in phys.CLASS_NAMES} == card["counts"]
    assert written["images_sha256"] == written["observations_sha256"]
    assert written["cadence"]["observations_per_object"]["min"] > 0
    assert (tmp_path / lc.OBSERVATIONS).exists() and (tmp_path / "catalog.parquet").exists()
    assert "nights between visits" in (tmp_path / "card.md").read_text()


def test_bad_simulation_settings_are_named():
    with pytest.raises(ValueError, match="simulation key 'cadence'"):
        lc.merge_simulation_config({"cadence": 3})
    with pytest.raises(ValueError, match="no wavelength or depth"):
        lc.merge_simulation_config({"bands": ["g", "y"]})


def test_config_schema_knows_the_light_curve_dataset_and_task():
    import yaml

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate_config(config)
    bad = {**config, "datasets": {**config["datasets"], "lightcurves": {**config["datasets"]["lightcurves"],
                                                                         "simulation": {"season_days": 2}}}}
    with pytest.raises(ConfigError, match="datasets.lightcurves.simulation.season_days"):
        validate_config(bad)
    experiments = dict(config["experiments"])
    experiments["wrong"] = {**experiments["lightcurve_classification"], "task": "multiclass"}
    with pytest.raises(ConfigError, match=r"experiments\.wrong\.task.*sequence_classification"):
        validate_config({**config, "experiments": experiments})
