"""The photo-z survey: colours from filter integrals, an SDSS-like sample, cutouts with the catalogue's flux."""

import numpy as np
import pandas as pd
import pytest

from deepsky.data import photoz
from deepsky.data.photoz_images import render_galaxy

C_ANGSTROM = 2.99792458e18  # speed of light in Angstrom / s
AB_ZERO = 3631e-23  # erg / s / cm^2 / Hz


@pytest.fixture(scope="module")
def survey():
    return photoz.SurveyPhotometry("sdss2010", photoz.BANDS, z_max=0.5)


def hand_magnitude(survey, template: int, z: float, band: str) -> float:
    """AB magnitude of one kcorrect template (at 10 pc, redshifted to z, without the distance)
    as the photon-counting filter integral: int f_lambda R lambda dlambda / int f_AB R lambda dlambda."""
    wavelength, spectra = survey.templates
    response = next(f for f in survey.filters if f.name.endswith(band))
    lam = wavelength * (1 + z)  # the template's own (fine) grid: its emission lines are resolved
    f_obs = spectra[template] / (1 + z)
    r = np.interp(lam, np.asarray(response.wavelength, dtype=float), np.asarray(response.response, dtype=float), left=0, right=0)
    f_ab = AB_ZERO * C_ANGSTROM / lam**2
    return -2.5 * np.log10(np.trapezoid(f_obs * r * lam, lam) / np.trapezoid(f_ab * r * lam, lam))


@pytest.mark.parametrize("template", [0, 3])
def test_template_colours_at_two_redshifts_are_the_filter_integrals(survey, template):
    coefficients = np.eye(5)[[template, template]]
    z = np.array([0.1, 0.3])
    mags = survey.apparent_magnitudes(coefficients, np.ones(2), z)
    distance = photoz.cosmology().distmod(z).value
    for k, band in enumerate(photoz.BANDS):
        for row in range(2):
            assert mags[row, k] - distance[row] == pytest.approx(hand_magnitude(survey, template, z[row], band), abs=0.002)
    colours = mags[:, :-1] - mags[:, 1:]
    for row in range(2):
        hand = [hand_magnitude(survey, template, z[row], a) - hand_magnitude(survey, template, z[row], b)
                for a, b in zip(photoz.BANDS[:-1], photoz.BANDS[1:])]
        assert colours[row] == pytest.approx(hand, abs=0.001)
    # The 4000 A break moves from g into r between z = 0.1 and 0.3: g - r reddens.
    assert colours[1, 1] - colours[0, 1] > 0.1


def test_redshifting_dims_by_the_bandwidth_factor(survey):
    # A flat f_nu spectrum has the same AB magnitude in every band at every redshift, except for
    # the (1 + z) of the bandwidth: m(z) - m(0) = -2.5 log10(1 + z) before the distance modulus.
    wavelength, _ = survey.templates
    flat_fnu = AB_ZERO * C_ANGSTROM / wavelength**2
    at_0 = survey.observed_maggies(flat_fnu, 0.0)
    at_z = survey.observed_maggies(flat_fnu, 0.25)
    assert np.allclose(at_0, 1.0, rtol=1e-3)
    assert np.allclose(at_z / at_0, 1.25, rtol=2e-3)


@pytest.fixture(scope="module")
def catalog(survey):
    cfg = photoz.merge_simulation_config({"n_objects": 400, "n_images": 10})
    return cfg, photoz.simulate_catalog(cfg, seed=11, photometry=survey)


def test_catalogue_is_an_sdss_main_sample(catalog):
    cfg, cat = catalog
    assert len(cat) == 400 and list(cat["index"]) == list(range(400))
    assert (cat["mag_r"] < 17.77).all() and (cat["z"] < 0.4).all()
    assert set(cat["label"]) == {0, 1} and set(cat["class_name"]) == {"red", "blue"}
    assert 0.06 < cat["z"].median() < 0.14  # SDSS main sample: median z ~ 0.1
    assert cat["has_image"].sum() == 10 and (cat.loc[cat["has_image"], "image_row"] == np.arange(10)).all()
    red = cat["label"] == 0
    assert (cat.loc[red, "mag_g"] - cat.loc[red, "mag_r"]).median() > (cat.loc[~red, "mag_g"] - cat.loc[~red, "mag_r"]).median() + 0.2
    # Errors: sky noise over the galaxy plus the calibration floor; u and z are the noisiest bands.
    assert (cat["magerr_r"] >= 0.01).all()
    assert cat["magerr_u"].median() > cat["magerr_r"].median() and cat["magerr_z"].median() > cat["magerr_r"].median()
    residual = (cat["mag_r"] - cat["mag_true_r"]) / cat["magerr_r"]
    assert 0.7 < residual.std() < 1.3


def test_angular_sizes_shrink_with_redshift(catalog):
    _, cat = catalog
    kpc_per_arcsec = photoz.cosmology().kpc_proper_per_arcmin(cat["z"].to_numpy()).value / 60
    inside = (cat["r_half_arcsec"] > 0.21) & (cat["r_half_arcsec"] < 7.9)  # not clipped
    assert np.allclose((cat["r_half_arcsec"] * kpc_per_arcsec)[inside], cat["r_half_kpc"][inside], rtol=1e-6)
    near, far = cat["z"] < cat["z"].quantile(0.25), cat["z"] > cat["z"].quantile(0.75)
    assert cat.loc[near, "r_half_arcsec"].median() > 1.3 * cat.loc[far, "r_half_arcsec"].median()


def test_the_same_seed_gives_the_same_catalogue(survey, catalog):
    cfg, cat = catalog
    again = photoz.simulate_catalog(cfg, seed=11, photometry=survey)
    pd.testing.assert_frame_equal(cat, again)
    other = photoz.simulate_catalog(cfg, seed=12, photometry=survey)
    assert not np.allclose(cat["z"], other["z"])


def test_pixel_noise_gives_the_5_sigma_depth():
    import galsim

    cfg = photoz.merge_simulation_config({})
    noise = photoz.pixel_noise(cfg)
    for band in ("g", "z"):
        flux = 10 ** (-0.4 * (cfg["depth_5sigma"][band] - 22.5))
        psf = galsim.Gaussian(fwhm=cfg["psf_fwhm"][band]).withFlux(flux)
        image = psf.drawImage(nx=64, ny=64, scale=cfg["pixel_scale"]).array
        optimal_snr = np.sqrt(np.sum(image**2)) / noise[band]  # matched filter on known PSF
        assert optimal_snr == pytest.approx(5.0, rel=0.03)


def test_a_cutout_carries_the_catalogue_flux_and_noise(catalog):
    cfg, cat = catalog
    cfg = {**cfg, "image_size": 48}
    row = dict(cat.iloc[0])
    row.update({f"calibration_{b}": 1.0 for b in cfg["bands"]})
    row["r_half_arcsec"] = 1.0
    image = render_galaxy(row, cfg, np.random.default_rng(0))
    assert image.shape == (5, 48, 48) and image.dtype == np.float32
    noise = photoz.pixel_noise(cfg)
    for k, band in enumerate(cfg["bands"]):
        true_flux = 10 ** (-0.4 * (row[f"mag_true_{band}"] - 22.5))
        assert image[k].sum() == pytest.approx(true_flux, abs=5 * noise[band] * 48 + 0.03 * true_flux)
        corner = image[k, :8, :8]
        assert corner.std() == pytest.approx(noise[band], rel=0.3)


def test_unknown_simulation_key_is_named():
    with pytest.raises(KeyError, match="selection.limit"):
        photoz.merge_simulation_config({"selection": {"limit": 18}})
    with pytest.raises(ValueError, match="n_images"):
        photoz.merge_simulation_config({"n_objects": 10, "n_images": 20})


def test_dataset_folder_and_card(tmp_path):
    card = photoz.write_photoz_dataset(
        tmp_path, "tiny_photoz", {"source": "simulate_photoz", "simulation": {"n_objects": 60, "n_images": 6, "image_size": 16}}, seed=3,
    )
    images = np.load(tmp_path / "images.npy")
    cat = pd.read_parquet(tmp_path / "catalog.parquet")
    assert images.shape == (6, 5, 16, 16) and len(cat) == 60
    assert {"index", "label", "z", "mag_u", "magerr_z", "has_image", "image_row"} <= set(cat.columns)
    assert card["n_objects"] == 60 and card["n_images"] == 6 and card["class_names"] == ["red", "blue"]
    survey = card["survey"]
    assert sum(sum(c) for c in survey["n_of_z"]["counts"].values()) == 60
    assert survey["depth_5sigma"]["r"] == 22.2 and "g-r" in survey["colour_percentiles"]
    assert "5σ depth" in (tmp_path / "card.md").read_text()
