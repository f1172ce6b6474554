"""Tests for the simulated galaxy-morphology cutouts (deepsky.data.galaxies)."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from deepsky.data.galaxies import (
    DEFAULT_GALAXY_SIMULATION,
    GALAXY_CLASSES,
    merge_simulation_config,
    render_galaxy_cutout,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow/schemas/fragments/galaxy_simulation.yaml"
# noiseless, isolated, well-resolved renders for the morphology checks
CLEAN = {"noise": False, "contaminant_rate": 0, "center_offset_pix": 0,
         "half_light_radius_frac": [0.14, 0.18], "seeing_fwhm_arcsec": [0.9, 1.0]}


def _render(kind, seed, cfg=None):
    return render_galaxy_cutout(kind, np.random.default_rng(seed), cfg or {})


def _moment_axis_ratio(img: np.ndarray) -> float:
    im = img.sum(0).astype(float)
    im = np.where(im > 0.02 * im.max(), im, 0.0)
    yy, xx = np.indices(im.shape)
    f = im.sum()
    mx, my = (im * xx).sum() / f, (im * yy).sum() / f
    cxx = (im * (xx - mx) ** 2).sum() / f
    cyy = (im * (yy - my) ** 2).sum() / f
    cxy = (im * (xx - mx) * (yy - my)).sum() / f
    lo, hi = np.linalg.eigvalsh([[cxx, cxy], [cxy, cyy]])
    return math.sqrt(lo / hi)


def _azimuthal_residual(img: np.ndarray) -> float:
    """|image - azimuthally averaged profile| / flux, about the stamp centre."""
    im = img.sum(0).astype(float)
    n = im.shape[0]
    yy, xx = np.indices(im.shape)
    r = np.hypot(xx - (n - 1) / 2, yy - (n - 1) / 2)
    b = np.round(2 * r).astype(int).ravel()
    cnt = np.bincount(b)
    ok = cnt > 0
    prof = np.bincount(b, im.ravel())[ok] / cnt[ok]
    rc = np.bincount(b, r.ravel())[ok] / cnt[ok]
    return float(np.abs(im - np.interp(r, rc, prof)).sum() / im.sum())


@pytest.mark.parametrize("size", [32, 64, 69])
@pytest.mark.parametrize("kind", GALAXY_CLASSES)
def test_shape_dtype_finite(kind, size):
    img, params = _render(kind, 3, {"image_size": size})
    assert img.shape == (3, size, size)
    assert img.dtype == np.float32
    assert np.all(np.isfinite(img))
    assert params["kind"] == kind and params["label"] == GALAXY_CLASSES.index(kind)
    assert img.sum() > 0


def test_band_selection_and_large_stamp():
    img, p = _render("spiral", 1, {"image_size": 128, "bands": ["u", "g", "r", "i", "z"]})
    assert img.shape == (5, 128, 128)
    assert {f"mag_{b}" for b in "ugriz"} <= set(p)
    img, p = _render("round", 1, {"bands": ["r"]})
    assert img.shape == (1, 64, 64) and "mag_g" not in p


@pytest.mark.parametrize("kind", GALAXY_CLASSES)
def test_deterministic_per_seed(kind):
    a, pa = _render(kind, 42)
    b, pb = _render(kind, 42)
    c, _ = _render(kind, 43)
    assert np.array_equal(a, b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k] == pb[k] or (isinstance(pa[k], float) and math.isnan(pa[k]) and math.isnan(pb[k]))
    assert not np.array_equal(a, c)


def test_same_param_keys_and_scalar_values():
    keysets = []
    for kind in GALAXY_CLASSES:
        for seed in range(3):
            _, p = _render(kind, seed, {"noise": False})
            keysets.append(tuple(sorted(p)))
            for k, v in p.items():
                assert isinstance(v, (int, float, str)) and not isinstance(v, bool), (k, v)
    assert len(set(keysets)) == 1
    for key in ("half_light_radius_arcsec", "sersic_n", "axis_ratio", "position_angle_deg", "inclination_deg",
                "bulge_fraction", "n_arms", "pitch_angle_deg", "magnitude", "seeing_fwhm_arcsec"):
        assert key in keysets[0]
    _, p_round = _render("round", 0)
    _, p_spiral = _render("spiral", 0)
    assert math.isnan(p_round["n_arms"]) and math.isnan(p_round["inclination_deg"])
    assert 2 <= p_spiral["n_arms"] <= 4 and 10 <= p_spiral["pitch_angle_deg"] <= 30


def test_edge_on_much_flatter_than_round():
    cfg = {"noise": False, "contaminant_rate": 0}
    q_round = [_moment_axis_ratio(_render("round", s, cfg)[0]) for s in range(6)]
    q_edge = [_moment_axis_ratio(_render("edge_on", s, cfg)[0]) for s in range(6)]
    assert max(q_edge) < min(q_round)
    assert np.mean(q_edge) < 0.5 * np.mean(q_round)
    assert min(q_round) > 0.75


def test_spirals_have_azimuthal_structure():
    cfg = dict(CLEAN, round={"axis_ratio": [1.0, 1.0]}, spiral={"inclination_deg": [0.0, 0.0]})
    res_round = [_azimuthal_residual(_render("round", s, cfg)[0]) for s in range(5)]
    res_spiral = [_azimuthal_residual(_render("spiral", s, cfg)[0]) for s in range(5)]
    assert min(res_spiral) > 5 * max(res_round)


def test_total_counts_match_magnitude_and_colours():
    cfg = {"noise": False, "contaminant_rate": 0, "half_light_radius_frac": [0.04, 0.05]}
    zp = DEFAULT_GALAXY_SIMULATION["zeropoint_mag"]
    gr = {}
    for kind in ("round", "spiral"):
        gr[kind] = []
        for seed in range(3):
            img, p = _render(kind, seed, cfg)
            for bi, band in enumerate("gri"):
                expected = 10 ** (-0.4 * (p[f"mag_{band}"] - zp[band]))
                assert 0.9 < img[bi].sum() / expected < 1.01, (kind, band)
            gr[kind].append(p["mag_g"] - p["mag_r"])
    assert np.mean(gr["round"]) > np.mean(gr["spiral"]) + 0.1  # ellipticals are redder


def test_noise_is_sky_subtracted_poisson():
    img, _ = _render("round", 5, {"half_light_radius_frac": [0.04, 0.04], "contaminant_rate": 0,
                                  "magnitude_range": [18.0, 18.0]})
    c = DEFAULT_GALAXY_SIMULATION
    corner = img[1, :12, :12]
    sky = 10 ** (-0.4 * (c["sky_mag_per_arcsec2"]["r"] - c["zeropoint_mag"]["r"])) * c["pixel_scale_arcsec"] ** 2
    assert abs(corner.mean()) < 0.3 * math.sqrt(sky)
    assert 0.7 < corner.std() / math.sqrt(sky) < 1.3
    clean, _ = _render("round", 5, {"noise": False, "contaminant_rate": 0})
    assert clean[:, :4, :4].std() < 1e-3 * clean.max()


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match=r"barred.*round.*edge_on.*spiral"):
        _render("barred", 0)


def test_merge_config():
    cfg = merge_simulation_config({"image_size": 69, "spiral": {"n_arms": [2, 2]}})
    assert cfg["image_size"] == 69 and cfg["spiral"]["n_arms"] == [2, 2]
    assert cfg["spiral"]["pitch_angle_deg"] == DEFAULT_GALAXY_SIMULATION["spiral"]["pitch_angle_deg"]
    assert DEFAULT_GALAXY_SIMULATION["image_size"] == 64  # defaults untouched
    for bad in ({"imagesize": 64}, {"spiral": {"arms": 2}}, {"magnitude_range": [18, 15]},
                {"reference_band": "z"}):
        with pytest.raises(ValueError):
            merge_simulation_config(bad)


def _walk_properties(schema):
    for key, sub in schema.get("properties", {}).items():
        yield key, sub
        yield from _walk_properties(sub)


def test_default_config_validates_against_schema():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(DEFAULT_GALAXY_SIMULATION, schema)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(DEFAULT_GALAXY_SIMULATION)
    for kind in GALAXY_CLASSES:
        assert set(schema["properties"][kind]["properties"]) == set(DEFAULT_GALAXY_SIMULATION[kind])
    for key, sub in _walk_properties(schema):
        assert sub.get("description"), key
    for bad in ({"image_size": 8}, {"bands": ["q"]}, {"extra": 1}, {"spiral": {"n_arms": [2.5, 3]}},
                {"edge_on": {"axis_ratio": [0.1, 1.5]}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(dict(DEFAULT_GALAXY_SIMULATION, **bad), schema)
