"""CMB patches from camb + healpy: the dataset files and card, and the patches' spectrum against camb's."""

import json

import numpy as np
import pandas as pd
import pytest

from deepsky.data import cmb
from deepsky.data.cmb_compare import estimator_for, resolved_bins
from deepsky.data.cmb_spectrum import expected_binned

# A coarse sky that still resolves the first acoustic peaks: 8.5 degree patches of 16 arcmin.
SMALL = {"nside": 512, "pixel_arcmin": 16.0, "beam_fwhm_arcmin": 30.0, "patch_pixels": 32, "n_maps": 1}


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmb")
    card = cmb.write_cmb_dataset(out, "cmb_small", {"n_per_class": 600, "simulation": SMALL}, seed=3)
    return out, card


def test_files_catalog_and_card(small_dataset):
    out = small_dataset[0]
    images = np.load(out / "images.npy")
    catalog = pd.read_parquet(out / "catalog.parquet")
    assert images.shape == (600, 1, 32, 32) and images.dtype == np.float32
    assert list(catalog["index"]) == list(range(600)) and set(catalog["label"]) == {0}
    assert {"lon_deg", "lat_deg", "psi_deg", "map_id"} <= set(catalog.columns)
    assert catalog["lat_deg"].between(-90, 90).all()
    stored = json.loads((out / "card.json").read_text())
    simulation, theory = cmb.card_settings(stored)
    assert simulation["cosmology"] == cmb.PLANCK2018 and simulation["nside"] == 512
    assert simulation["pixel_arcmin"] == 16.0 and simulation["beam_fwhm_arcmin"] == 30.0
    assert len(theory["cl_tt"]) == len(theory["beam_window"]) == simulation["lmax"] + 1
    assert stored["class_names"] == ["cmb"] and stored["bands"] == ["T"]
    # CMB temperature: rms of order 100 muK at this resolution, mean near zero.
    assert 50 < images.std() < 150 and abs(images.mean()) < 20


def test_camb_first_acoustic_peak(small_dataset):
    cl = np.asarray(cmb.card_settings(small_dataset[1])[1]["cl_tt"])
    ell = np.arange(len(cl))
    dl = ell * (ell + 1) * cl / (2 * np.pi)
    assert 200 < np.argmax(dl) < 240 and 5000 < dl.max() < 6500  # Planck: ~5700 muK^2 at ell ~ 220


def test_patches_recover_camb_times_the_beam(small_dataset):
    """The mean spectrum of the patches is camb's C_ell B_ell^2 seen through the estimator, over the
    multipoles the patches resolve, within a few per cent."""
    out, card = small_dataset
    simulation, theory = cmb.card_settings(card)
    patches = np.load(out / "images.npy")[:, 0]
    estimator = estimator_for(32, simulation["pixel_arcmin"])
    resolved = resolved_bins(estimator, (theory["ell_min_resolved"], theory["ell_max_resolved"]))
    assert resolved.sum() >= 3
    cl = np.asarray(theory["cl_tt"]) * np.asarray(theory["beam_window"]) ** 2
    expected = expected_binned(estimator, np.arange(len(cl)), cl, np.random.default_rng(0))
    ratio = estimator(patches).mean(0) / expected
    np.testing.assert_allclose(ratio[resolved], 1, atol=0.06)


def test_noise_adds_its_white_spectrum():
    cfg = cmb.settings({**SMALL, "noise_uk_arcmin": 400.0})
    rng = np.random.default_rng(1)
    cl = np.zeros(cfg["lmax"] + 1)
    sky = cmb.sky_map(cl, cfg, rng)
    patches, _ = cmb.cut_patches(sky, 200, cfg, rng)
    level = estimator_for(32, cfg["pixel_arcmin"])(patches).mean(0)[1:]
    np.testing.assert_allclose(level, cmb.noise_cl(cfg), rtol=0.1)


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="power of two"):
        cmb.settings({"nside": 500})
    with pytest.raises(ValueError, match="too coarse"):
        cmb.settings({"nside": 64, "pixel_arcmin": 8.0})
    with pytest.raises(ValueError, match="not CMB settings"):
        cmb.settings({"image_size": 32})
    with pytest.raises(ValueError, match="not a CMB card"):
        cmb.card_settings({"name": "lenses", "provenance": {}})
