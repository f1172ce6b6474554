"""Tests for the strong-lens cutout simulator (deepsky.data.lenses)."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml

from deepsky.data.lens_params import mag_to_counts, sky_counts
from deepsky.data.lenses import (
    DEFAULT_LENS_SIMULATION,
    LENS_KINDS,
    NONLENS_KINDS,
    merge_simulation_config,
    render_components,
    render_lens_cutout,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow/schemas/fragments/lens_simulation.yaml"
KINDS = LENS_KINDS + NONLENS_KINDS
CFG = merge_simulation_config({})
NOISELESS = merge_simulation_config({"noise": False})


def _render(kind, seed, cfg=CFG):
    return render_lens_cutout(kind, np.random.default_rng(seed), cfg)


def test_kinds_contract():
    assert LENS_KINDS == ("lens",)
    assert NONLENS_KINDS == ("galaxy", "ring", "spiral", "companion", "blue_neighbour")


@pytest.mark.parametrize("size", [32, 48, 101])
def test_shapes_dtype_finite_every_kind(size):
    cfg = merge_simulation_config({"image_size": size})
    for i, kind in enumerate(KINDS):
        img, params = _render(kind, i, cfg)
        assert img.shape == (3, size, size) and img.dtype == np.float32
        assert np.isfinite(img).all()
        assert params["kind"] == kind and params["label"] == int(kind == "lens")


def test_determinism():
    for kind in KINDS:
        a, pa = _render(kind, 7)
        b, pb = _render(kind, 7)
        c, _ = _render(kind, 8)
        assert np.array_equal(a, b)
        assert pa.keys() == pb.keys() and all(
            pa[k] == pb[k] or (isinstance(pa[k], float) and math.isnan(pa[k]) and math.isnan(pb[k]))
            for k in pa)
        assert not np.array_equal(a, c)


def test_params_same_keys_and_types_across_kinds():
    params = [_render(kind, 3)[1] for kind in KINDS]
    keys = list(params[0])
    for p in params:
        assert list(p) == keys
        for k in keys:
            assert type(p[k]) is type(params[0][k]), k
            assert isinstance(p[k], (int, float, str))
    lens, galaxy = params[0], params[1]
    assert math.isnan(galaxy["theta_E"]) and galaxy["contaminant_type"] == "none"
    assert {p["contaminant_type"] for p in params[2:]} <= {"ring", "arc", "spiral", "companion", "blue_neighbour"}
    for band in ("g", "r", "i"):
        assert math.isfinite(lens[f"seeing_{band}"]) and math.isfinite(lens[f"source_mag_{band}"])


def test_parameters_within_configured_ranges():
    mass, src = CFG["lens_mass"], CFG["source"]
    mu = []
    for seed in range(30):
        p = render_components("lens", np.random.default_rng(seed), NOISELESS)[1]
        assert mass["theta_E_range"][0] <= p["theta_E"] <= mass["theta_E_range"][1]
        assert mass["q_range"][0] <= p["lens_q"] <= mass["q_range"][1]
        assert math.hypot(p["gamma1"], p["gamma2"]) <= mass["shear_max"] + 1e-12
        assert p["source_beta_frac"] <= src["offset_max"] + 1e-12
        assert src["n_clumps_range"][0] <= p["n_clumps"] <= src["n_clumps_range"][1]
        for band in CFG["bands"]:
            lo, hi = band["seeing_range"]
            assert lo <= p[f"seeing_{band['name']}"] <= hi
        mu.append(p["source_magnification"])
    # most sources sit well inside the caustics: strongly magnified, multiply imaged
    assert np.median(mu) > 3 and min(mu) > 1


def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="quasar") as info:
        _render("quasar", 0)
    assert "blue_neighbour" in str(info.value)


def test_lens_adds_blue_source_flux_to_the_same_galaxy():
    for seed in range(5):
        lens, pl = render_lens_cutout("lens", np.random.default_rng(seed), NOISELESS)
        gal, pg = render_lens_cutout("galaxy", np.random.default_rng(seed), NOISELESS)
        assert pl["galaxy_mag_i"] == pg["galaxy_mag_i"]  # same draws up to the lens
        src = lens.astype(float) - gal
        assert src.min() > -1e-3 * lens.max() and src.sum() > 0
        g, i = 0, 2
        assert src[g].sum() / src[i].sum() > gal[g].sum() / gal[i].sum()
        assert gal[i].sum() > gal[g].sum()  # red lens galaxy: brighter in i than in g
        assert lens.sum() > 0


def test_galaxy_flux_matches_magnitude():
    cfg = merge_simulation_config({"noise": False, "image_size": 128})
    img, p = render_lens_cutout("galaxy", np.random.default_rng(1), cfg)
    for ib, band in enumerate(cfg["bands"]):
        expected = mag_to_counts(p[f"galaxy_mag_{band['name']}"], band)
        assert img[ib].sum() == pytest.approx(expected, rel=0.05)


def test_matches_lenstronomy_image_model():
    """The fast per-component renderer equals lenstronomy's ImageModel for the
    same parameters (clump-free source, Gaussian PSF, same supersampling)."""
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.Util import param_util, util

    cfg = merge_simulation_config({"noise": False, "source": {"n_clumps_range": [0, 0]}})
    img, p = render_lens_cutout("lens", np.random.default_rng(11), cfg)
    n, ss = cfg["image_size"], cfg["supersampling_factor"]
    _, _, ra0, dec0, _, _, pix2angle, _ = util.make_grid_with_coordtransform(n, cfg["pixel_scale"], inverse=False)
    data = ImageData(np.zeros((n, n)), ra_at_xy_0=ra0, dec_at_xy_0=dec0, transform_pix2angle=pix2angle)
    sersic = LightModel(["SERSIC_ELLIPSE"])
    kw_lens = [{"theta_E": p["theta_E"], "e1": p["lens_e1"], "e2": p["lens_e2"],
                "center_x": p["galaxy_x"], "center_y": p["galaxy_y"]},
               {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": p["galaxy_x"], "dec_0": p["galaxy_y"]}]

    def light(prefix, x, y, band):
        e1, e2 = param_util.phi_q2_ellipticity(p[f"{prefix}_phi"], p[f"{prefix}_q"])
        kw = {"R_sersic": p[f"{prefix}_R_sersic"], "n_sersic": p[f"{prefix}_n_sersic"],
              "e1": e1, "e2": e2, "center_x": x, "center_y": y}
        kw["amp"] = mag_to_counts(p[f"{prefix}_mag_{band['name']}"], band) / sersic.total_flux([kw], norm=True)[0]
        return [kw]

    for ib, band in enumerate(cfg["bands"]):
        psf = PSF("GAUSSIAN", fwhm=p[f"seeing_{band['name']}"], truncation=5)
        model = ImageModel(data, psf, LensModel(["SIE", "SHEAR"]), sersic, LightModel(["SERSIC_ELLIPSE"]),
                           kwargs_numerics={"supersampling_factor": ss})
        ref = model.image(kw_lens, light("source", p["source_x"], p["source_y"], band),
                          light("galaxy", p["galaxy_x"], p["galaxy_y"], band))
        np.testing.assert_allclose(img[ib], ref, rtol=1e-4, atol=1e-4 * ref.max())


def test_einstein_ring_radius():
    """A compact source behind a round SIS forms a ring at theta_E."""
    cfg = merge_simulation_config({
        "noise": False, "image_size": 64,
        "lens_mass": {"theta_E_range": [1.6, 1.6], "q_range": [1.0, 1.0], "shear_max": 0.0},
        "source": {"offset_max": 0.0, "R_sersic_range": [0.05, 0.05], "n_clumps_range": [0, 0]},
        "galaxy": {"center_offset_max": 0.0}})
    _, p, groups = render_components("lens", np.random.default_rng(2), cfg)
    src = groups["source"].sum(0)
    yy, xx = (np.indices(src.shape) - (64 - 1) / 2) * cfg["pixel_scale"]
    radius = (np.hypot(xx, yy) * src).sum() / src.sum()
    assert radius == pytest.approx(1.6, rel=0.08)
    assert p["source_magnification"] > 10


def test_noise_matches_sky_model():
    _, p, groups = render_components("galaxy", np.random.default_rng(0), CFG)
    img = _render("galaxy", 0)[0]
    model = sum(groups.values())
    for ib, band in enumerate(CFG["bands"]):
        sky_rms = math.sqrt(sky_counts(band, CFG["pixel_scale"]) + band["read_noise"] ** 2)
        assert p[f"sky_rms_{band['name']}"] == pytest.approx(sky_rms)
        edge = np.concatenate([img[ib, :3].ravel(), img[ib, -3:].ravel(), img[ib, 3:-3, :3].ravel(),
                               img[ib, 3:-3, -3:].ravel()])
        assert edge.std() == pytest.approx(sky_rms, rel=0.2)
        assert abs(edge.mean()) < 0.5 * sky_rms  # sky subtracted
        resid = (img[ib] - model[ib]) / np.sqrt(model[ib] + sky_rms**2)
        assert resid.std() == pytest.approx(1.0, rel=0.1)


def test_sky_not_subtracted_and_moffat():
    cfg = merge_simulation_config({"subtract_sky": False, "psf_model": "moffat"})
    img, _ = _render("ring", 4, cfg)
    assert img[2, :3].mean() == pytest.approx(sky_counts(cfg["bands"][2], cfg["pixel_scale"]), rel=0.1)


def test_snr_reported_for_features():
    for kind in KINDS:
        p = _render(kind, 5)[1]
        key = "source_snr" if kind == "lens" else "contaminant_snr"
        if kind != "galaxy":
            assert p[key] > 0
        else:
            assert math.isnan(p["source_snr"]) and math.isnan(p["contaminant_snr"])


def test_default_config_validates_against_schema():
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(DEFAULT_LENS_SIMULATION)
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    for key, sub in schema["properties"].items():
        assert "description" in sub, key
        for name, leaf in sub.get("properties", {}).items():
            assert "description" in leaf, f"{key}.{name}"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"lens_mass": {"shear_max": -0.1}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"source": {"unknown_key": 1}}, schema)


def test_merge_checks():
    default = DEFAULT_LENS_SIMULATION["source"]["offset_max"]
    cfg = merge_simulation_config({"source": {"offset_max": default / 2}})
    assert cfg["source"]["offset_max"] == default / 2
    assert cfg["source"]["n_clumps_range"] == DEFAULT_LENS_SIMULATION["source"]["n_clumps_range"]
    assert DEFAULT_LENS_SIMULATION["source"]["offset_max"] == default  # defaults untouched
    with pytest.raises(ValueError, match="reference_band"):
        merge_simulation_config({"reference_band": "z"})
    with pytest.raises(ValueError, match="theta_E_range"):
        merge_simulation_config({"lens_mass": {"theta_E_range": [2.0, 1.0]}})
    # a partial config is merged by the renderer itself
    assert _render("lens", 1, {"image_size": 32})[0].shape == (3, 32, 32)
