"""Lens-parameter regression data (source simulate_lens_parameters, Hezaveh et al. 2017)."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from deepsky.config import ConfigError, dataset_class_names, validate_config
from deepsky.data import storage
from deepsky.data.lens_params import DEFAULT_LENS_SIMULATION, merge_simulation_config
from deepsky.data.lens_regression import (
    HST_LIKE_SIMULATION,
    REGRESSION_TARGETS,
    merge_regression_config,
    target_bounds,
)
from deepsky.data.lenses import ALL_KINDS, render_components
from deepsky.data.simulate import simulate_dataset, write_simulated_dataset

FRAGMENT = Path(__file__).resolve().parents[1] / "workflow/schemas/fragments/lens_simulation.yaml"
HST = merge_regression_config({})
HST_NOISELESS = merge_regression_config({"noise": False})


def _same_params(a: dict, b: dict, skip=()) -> bool:
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
        for k in a if k not in skip)


def _arc_radius(image: np.ndarray, cx: float, cy: float, pixel_scale: float) -> float:
    """Flux-weighted distance (arcsec) of the light from (cx, cy); row index = y."""
    n = image.shape[-1]
    yy, xx = (np.indices((n, n)) - (n - 1) / 2) * pixel_scale
    light = np.clip(image, 0.0, None)
    return float((np.hypot(xx - cx, yy - cy) * light).sum() / light.sum())


# ------------------------------------------------------------------ lens_light option
def test_default_render_unchanged_by_lens_light_option():
    assert DEFAULT_LENS_SIMULATION["lens_light"] is True
    default, explicit = merge_simulation_config({}), merge_simulation_config({"lens_light": True})
    for seed, kind in enumerate(ALL_KINDS):
        a, pa, ga = render_components(kind, np.random.default_rng(seed), default)
        b, pb, gb = render_components(kind, np.random.default_rng(seed), explicit)
        assert np.array_equal(a, b) and _same_params(pa, pb)
        assert ga.keys() == gb.keys() and "galaxy" in ga


def test_without_lens_light_the_lens_is_its_source_group():
    with_light = merge_simulation_config({"noise": False})
    without = merge_simulation_config({"noise": False, "lens_light": False})
    for seed in range(4):
        full, p_full, groups = render_components("lens", np.random.default_rng(seed), with_light)
        bare, p_bare, bare_groups = render_components("lens", np.random.default_rng(seed), without)
        # the galaxy is still drawn (same draws, the mass centred on it), only its light is gone
        assert _same_params(p_full, p_bare, skip={"source_snr"})
        assert "galaxy" not in bare_groups
        expected = np.clip(groups["source"], 0.0, None).astype(np.float32)
        np.testing.assert_array_equal(bare, expected)
        assert full.sum() > bare.sum() > 0
        assert p_bare["source_snr"] > p_full["source_snr"]  # no lens-light photon noise


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_renders_without_lens_light(kind):
    cfg = merge_simulation_config({"noise": False, "lens_light": False})
    image, params, groups = render_components(kind, np.random.default_rng(3), cfg)
    assert image.shape == (3, 48, 48) and np.isfinite(image).all()
    assert "galaxy" not in groups and math.isfinite(params["galaxy_x"])
    if kind == "galaxy":
        assert not image.any()


# ------------------------------------------------------------------ HST-like settings
def test_hst_like_settings_validate_and_merge():
    schema = yaml.safe_load(FRAGMENT.read_text())
    jsonschema.Draft202012Validator(schema).validate(HST_LIKE_SIMULATION)
    jsonschema.Draft202012Validator(schema).validate(HST)
    assert [b["name"] for b in HST["bands"]] == ["F814W"] and HST["reference_band"] == "F814W"
    assert HST["pixel_scale"] == 0.08 and HST["image_size"] == 48 and HST["lens_light"] is False
    assert all(HST[s]["colours"] == {} for s in ("galaxy", "source", "ring", "spiral", "companion"))
    # a dataset's settings merge over the HST-like ones, which merge over the ground-based defaults
    cfg = merge_regression_config({"galaxy": {"center_offset_max": 0.5}, "lens_mass": {"shear_max": 0.0}})
    assert cfg["galaxy"]["center_offset_max"] == 0.5 and cfg["lens_mass"]["shear_max"] == 0.0
    assert cfg["lens_mass"]["theta_E_range"] == [0.5, 1.8]
    assert cfg["galaxy"]["R_sersic_range"] == DEFAULT_LENS_SIMULATION["galaxy"]["R_sersic_range"]
    with pytest.raises(ValueError, match="colour"):  # a colour for a band that does not exist
        merge_regression_config({"source": {"colours": {"g": [0.0, 0.5]}}})


def test_simulated_regression_dataset_has_targets_in_range():
    images, catalog, cfg = simulate_dataset("simulate_lens_parameters", 8, {}, seed=5)
    n = cfg["image_size"]
    assert images.shape == (8, 1, n, n) and images.dtype == np.float32 and np.isfinite(images).all()
    assert set(catalog["class_name"]) == {"lens"} and set(catalog["label"]) == {0}
    bounds = target_bounds(cfg)
    for name in REGRESSION_TARGETS:
        lo, hi = bounds[name]
        assert catalog[name].between(lo, hi).all(), name
    r = cfg["galaxy"]["center_offset_max"]
    assert (np.hypot(catalog["x"], catalog["y"]) <= r + 1e-12).all()
    np.testing.assert_array_equal(catalog["x"], catalog["galaxy_x"])
    np.testing.assert_array_equal(catalog["y"], catalog["galaxy_y"])
    q, phi = catalog["lens_q"].to_numpy(), catalog["lens_phi"].to_numpy()
    e = (1 - q) / (1 + q)
    np.testing.assert_allclose(catalog["epsilon_x"], e * np.cos(2 * phi), atol=1e-12)
    np.testing.assert_allclose(catalog["epsilon_y"], e * np.sin(2 * phi), atol=1e-12)
    assert (catalog["source_snr"] > 20).all()  # arcs well detected at HST depth


def test_arc_radius_grows_with_einstein_radius():
    """The target is in the pixels: the lensed light sits at ~theta_E from the lens centre."""
    theta, radius = [], []
    for seed in range(16):
        image, p, _ = render_components("lens", np.random.default_rng(seed), HST_NOISELESS)
        theta.append(p["theta_E"])
        radius.append(_arc_radius(image[0], p["galaxy_x"], p["galaxy_y"], HST["pixel_scale"]))
    assert np.corrcoef(theta, radius)[0, 1] > 0.6


def test_written_card_describes_targets(tmp_path):
    card = write_simulated_dataset(tmp_path, "lens_parameters", {"source": "simulate_lens_parameters",
                                                                 "n_per_class": 6}, seed=2)
    assert card["class_names"] == ["lens"] and card["n_images"] == 6 and card["bands"] == ["F814W"]
    sim, targets = card["provenance"]["simulation"], card["provenance"]["targets"]
    assert storage.read_card(tmp_path)["provenance"]["targets"] == targets
    assert sim["pixel_scale"] == 0.08 and sim["bands"][0]["seeing_range"] == [0.08, 0.12]
    assert list(targets) == ["theta_E", "epsilon_x", "epsilon_y", "x", "y"]
    assert targets["theta_E"]["unit"] == targets["x"]["unit"] == "arcsec" and targets["epsilon_x"]["unit"] == ""
    for t in targets.values():
        assert t["bound"][0] <= t["min"] <= t["max"] <= t["bound"][1]
    markdown = (tmp_path / "card.md").read_text()
    assert all(f"| {name} |" in markdown for name in targets)


# ------------------------------------------------------------------ workflow config
def _config(dataset: dict) -> dict:
    return {
        "seed": 0,
        "tracking": {"uri": "sqlite:///mlflow.db"},
        "datasets": {"lens_parameters": {"split": {"test_fraction": 0.2, "k_folds": 5}, **dataset}},
        "experiments": {"regression": {"dataset": "lens_parameters", "architectures": ["alexnet"],
                                       "training": {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3}}},
    }


def test_schema_accepts_the_source_and_checks_its_simulation():
    dataset = {"source": "simulate_lens_parameters", "n_per_class": 400,
               "simulation": {"galaxy": {"center_offset_max": 0.5}, "lens_light": False}}
    validate_config(_config(dataset))
    assert dataset_class_names(dataset) == ["lens"]
    with pytest.raises(ConfigError, match=r"datasets\.lens_parameters\.simulation\.not_a_setting"):
        validate_config(_config({**dataset, "simulation": {"not_a_setting": 1}}))
    with pytest.raises(ConfigError, match="n_per_class"):
        validate_config(_config({"source": "simulate_lens_parameters"}))
