"""The galaxy-catalogue simulator: its fields have the spectrum they were asked for."""

import numpy as np
import pytest

from deepsky.data import cosmo_graphs as cg

BOX, N = 200.0, 32


def smooth_spectrum(k):
    """A P(k) with a turnover and a small-scale fall (BBKS-like shape), in (Mpc/h)^3."""
    k = np.asarray(k, dtype=float)
    return np.where(k > 0, 2.0e4 * (k / 0.02) / (1 + (k / 0.02) ** 2.6), 0.0)


def binned_target(target_modes):
    """The input spectrum binned exactly as the estimator bins a field (mode-weighted)."""
    field = np.fft.irfftn(np.sqrt(target_modes * N**6 / BOX**3), s=(N, N, N))
    return cg.binned_spectrum(field, BOX, 10)


def test_gaussian_field_has_the_input_spectrum():
    rng = np.random.default_rng(0)
    target = smooth_spectrum(cg.wavenumbers(N, BOX))
    reference = binned_target(target)
    measured = np.array([cg.binned_spectrum(cg.gaussian_field(target, N, BOX, rng), BOX, 10)["power"] for _ in range(20)])
    # Gaussian field: each mode's |delta_k|^2 is exponential, so a bin of n modes scatters by P sqrt(1/n).
    error = reference["power"] / np.sqrt(reference["n_modes"] * len(measured))
    assert np.all(np.abs(measured.mean(0) - reference["power"]) < 4 * error)


def test_lognormal_field_has_the_input_spectrum_within_its_scatter():
    rng = np.random.default_rng(1)
    target = 2.25 * smooth_spectrum(cg.wavenumbers(N, BOX))
    p_gauss, clipped = cg.gaussian_spectrum_for_lognormal(target, N, BOX)
    reference = binned_target(target)["power"]
    fields = [cg.lognormal_field(p_gauss, N, BOX, rng)[0] for _ in range(40)]
    assert all(f.min() >= -1 for f in fields), "a lognormal overdensity never falls below -1"
    assert abs(np.mean([f.mean() for f in fields])) < 0.05
    measured = np.array([cg.binned_spectrum(f, BOX, 10)["power"] for f in fields])
    error = measured.std(0, ddof=1) / np.sqrt(len(measured))
    assert np.all(np.abs(measured.mean(0) - reference) < 3 * error + 0.02 * reference)
    assert np.all(np.abs(measured.mean(0) / reference - 1) < 0.15)


def test_poisson_galaxies_measure_the_field_spectrum_plus_shot_noise():
    """NGP on the generation grid recovers the cell counts: P_gal - 1/nbar estimates P_field."""
    rng = np.random.default_rng(2)
    target = 2.25 * smooth_spectrum(cg.wavenumbers(N, BOX))
    delta, _ = cg.lognormal_field(cg.gaussian_spectrum_for_lognormal(target, N, BOX)[0], N, BOX, rng)
    field = cg.binned_spectrum(delta, BOX, 8)["power"]
    nbar = 20000 / BOX**3
    draws = []
    for _ in range(10):
        positions, _ = cg.poisson_galaxies(delta, BOX, nbar, rng)
        assert positions.min() >= 0 and positions.max() < BOX
        draws.append(cg.measure_power(positions, BOX, N, 8)["power"])
    draws = np.array(draws)
    error = draws.std(0, ddof=1) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(0) - field) < 4 * error + 0.01 * field)


def test_latin_hypercube_fills_each_stratum_once():
    sim = cg.merge_simulation({"omega_m_range": [0.2, 0.4], "sigma_8_range": [0.7, 0.9]})
    table = cg.latin_hypercube(10, sim, seed=3)
    for column, (lo, hi) in (("Omega_m", (0.2, 0.4)), ("sigma_8", (0.7, 0.9))):
        strata = np.floor((table[column] - lo) / (hi - lo) * 10).astype(int)
        assert sorted(strata) == list(range(10))


def test_bad_simulation_settings_name_the_key():
    with pytest.raises(ValueError, match="not_a_key"):
        cg.merge_simulation({"not_a_key": 1})
    with pytest.raises(ValueError, match="omega_m_range"):
        cg.merge_simulation({"omega_m_range": [0.5, 0.2]})


def test_emulator_reproduces_camb_and_scales_exactly_with_sigma_8():
    sim = cg.merge_simulation({"omega_m_range": [0.25, 0.35], "sigma_8_range": [0.7, 0.9], "emulator_grid": [4, 2],
                               "nonlinear": False, "box_size": 200.0})
    k = cg.emulator_k(sim)
    emulator = cg.PowerEmulator(cg.camb_power_grid(sim, k))
    direct = cg.camb_power_grid({**sim, "omega_m_range": [0.2913, 0.30], "sigma_8_range": [0.77, 0.9], "emulator_grid": [2, 2]}, k)
    np.testing.assert_allclose(emulator(0.2913, 0.77, k), direct["power"][0, 0], rtol=0.01)
    # Linear theory: sigma_8 is the amplitude.
    np.testing.assert_allclose(emulator(0.3, 0.88, k) / emulator(0.3, 0.8, k), 1.1**2, rtol=1e-6)


def test_catalogues_are_seeded_and_described(tmp_path):
    settings = {"box_size": 100.0, "grid": 16, "n_galaxies": 200, "emulator_grid": [2, 2]}
    catalog, galaxies, grid = cg.simulate_catalogues(6, settings, seed=11)
    assert list(catalog["index"]) == list(range(6)) and (catalog["label"] == 0).all()
    assert catalog["n_galaxies"].tolist() == galaxies.groupby("box").size().reindex(range(6), fill_value=0).tolist()
    assert galaxies[["x", "y", "z"]].to_numpy().min() >= 0 and galaxies[["x", "y", "z"]].to_numpy().max() < 100
    # The seed alone fixes the draws.
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    emulator = cg.PowerEmulator(grid)
    sim = cg.merge_simulation(settings)
    np.testing.assert_array_equal(cg.simulate_box(emulator, 0.3, 0.8, sim, rng_a), cg.simulate_box(emulator, 0.3, 0.8, sim, rng_b))


def test_redshift_space_moves_galaxies_along_the_line_of_sight_only():
    settings = {"box_size": 100.0, "grid": 16, "n_galaxies": 300}
    grid = {"omega_m": np.array([0.2, 0.4]), "sigma_8": np.array([0.7, 0.9]), "k": np.geomspace(0.01, 2, 40)}
    grid["power"] = np.stack([np.stack([s8**2 * smooth_spectrum(grid["k"]) for s8 in grid["sigma_8"]]) for _ in grid["omega_m"]])
    emulator = cg.PowerEmulator(grid)
    real = cg.simulate_box(emulator, 0.3, 0.8, cg.merge_simulation(settings), np.random.default_rng(4))
    redshift = cg.simulate_box(emulator, 0.3, 0.8, cg.merge_simulation({**settings, "rsd": True}), np.random.default_rng(4))
    np.testing.assert_array_equal(real[:, :2], redshift[:, :2])
    shift = (redshift[:, 2] - real[:, 2] + 50.0) % 100.0 - 50.0
    assert 0.5 < np.std(shift) < 20 and abs(np.mean(shift)) < 1.0
