"""A simulated multi-band galaxy survey for photometric redshifts (lecture 002, Pasquet+2019 on SDSS).

Redshift sets the colours physically: galaxies are drawn from red and blue Schechter luminosity
functions (SkyPy, Herbel+2017 parameters as in SkyPy's SDSS photometry example), their spectra are
Dirichlet mixtures of the five kcorrect templates (Blanton & Roweis 2007, shipped with SkyPy),
redshifted and integrated through the SDSS ugriz filter curves (shipped with speclite). Fluxes get
the survey's sky noise and a calibration floor; the sample is cut at the SDSS main-sample limit
r < 17.77 on the observed magnitude. Sizes follow Shen+2003 and shrink with the angular diameter
distance. Both packages work offline (templates and filter curves are package data).

SkyPy samples with NumPy's global generator; `legacy_seed` sets and restores it so that a dataset
depends only on the config seed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import warnings
from functools import cached_property

import numpy as np
import pandas as pd

BANDS = ("u", "g", "r", "i", "z")
Z_GRID_STEP = 0.002  # template magnitudes are tabulated on this grid and interpolated (< 1 mmag error)

DEFAULTS = {
    "n_objects": 20000,
    "n_images": 2000,
    "image_size": 32,
    "bands": list(BANDS),
    "filters": "sdss2010",
    "pixel_scale": 0.396,  # arcsec, SDSS
    # Median SDSS seeing per band (arcsec FWHM) and 5-sigma point-source depth (AB).
    "psf_fwhm": {"u": 1.53, "g": 1.44, "r": 1.32, "i": 1.26, "z": 1.29},
    "depth_5sigma": {"u": 22.0, "g": 22.2, "r": 22.2, "i": 21.3, "z": 20.5},
    # Photometric calibration error (mag), added to every flux as a per-object draw.
    "calibration_floor": {"u": 0.02, "g": 0.01, "r": 0.01, "i": 0.01, "z": 0.02},
    "selection": {"band": "r", "mag_limit": 17.77, "z_max": 0.4},
    "population": {
        # M*(z) = slope z + intercept (B band), phi*(z) = amplitude exp(z / tau) [Mpc^-3]; SkyPy's
        # SDSS photometry example (Herbel+2017). Dirichlet SED coefficients alpha(z) of Herbel+2017.
        "blue": {
            "M_star": [-0.9408582, -20.40492365], "phi_star": [0.00370253, -9.73858], "alpha": -1.3,
            "alpha0": [2.079, 3.524, 1.917, 1.992, 2.536], "alpha1": [2.265, 3.862, 1.921, 1.685, 2.480],
            "weight": [3.47e9, 3.31e6, 2.13e9, 1.64e10, 1.01e9],
        },
        "red": {
            "M_star": [-0.70798041, -20.37196157], "phi_star": [0.0035097, -1.41649], "alpha": -0.5,
            "alpha0": [2.461, 2.358, 2.568, 2.268, 2.402], "alpha1": [2.410, 2.340, 2.200, 2.540, 2.464],
            "weight": [3.84e9, 1.57e6, 3.91e8, 4.66e10, 3.03e7],
        },
    },
    # Shen+2003 half-light radius vs absolute r magnitude (late: exponential disks, early: de Vaucouleurs).
    "sizes": {
        "late": {"alpha": 0.21, "beta": 0.53, "gamma": -1.31, "M0": -20.52, "sigma1": 0.48, "sigma2": 0.25},
        "early": {"a": 0.6, "b": -4.63, "M0": -20.52, "sigma1": 0.48, "sigma2": 0.25},
        "min_arcsec": 0.2,
        "max_arcsec": 8.0,
    },
    "ellipticity": {"e_ratio": 0.45, "e_sum": 3.5},  # Kacprzak+2019 beta distribution (SkyPy)
}
CLASS_NAMES = ["red", "blue"]  # label 0 red (early type), 1 blue (late type)
# Apparent B magnitude (no K-correction) drawn beyond the selection limit, so that the r-band cut
# on the observed magnitude, not the draw, decides who is in the sample.
B_MARGIN = 2.5


def merge_simulation_config(simulation: dict | None) -> dict:
    """Defaults with the config's values on top (nested dicts merged); unknown keys are errors."""
    merged = copy.deepcopy(DEFAULTS)

    def merge(base, update, where):
        for key, value in update.items():
            if key not in base:
                raise KeyError(f"simulation key '{where}{key}' is not a photo-z survey setting (known: {', '.join(base)})")
            if isinstance(base[key], dict) and isinstance(value, dict):
                merge(base[key], value, f"{where}{key}.")
            else:
                base[key] = value

    merge(merged, simulation or {}, "")
    for key in ("psf_fwhm", "depth_5sigma", "calibration_floor"):
        missing = [b for b in merged["bands"] if b not in merged[key]]
        if missing:
            raise KeyError(f"simulation key '{key}' has no value for bands {missing}")
    if merged["n_images"] > merged["n_objects"]:
        raise ValueError("simulation key 'n_images' must not exceed 'n_objects' (cutouts are drawn for catalogue rows)")
    return merged


@contextlib.contextmanager
def legacy_seed(seed: int):
    """Seed NumPy's global generator (SkyPy draws from it) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        np.random.set_state(state)


@functools.lru_cache(maxsize=1)
def cosmology():
    """Planck 2018 H0 and Omega_m, flat LCDM without radiation: astropy's fast analytic distances
    (Planck18 itself integrates numerically per object; distances agree to < 0.05 % below z = 1)."""
    from astropy.cosmology import FlatLambdaCDM, Planck18

    return FlatLambdaCDM(H0=Planck18.H0, Om0=Planck18.Om0)


class SurveyPhotometry:
    """AB magnitudes of kcorrect template mixtures at redshift z through a survey's filters.

    The rest-frame template f_lambda (at 10 pc, per unit stellar mass) is moved to the observer
    frame, f_obs(lambda) = f(lambda / (1+z)) / (1+z), and integrated through each filter by
    speclite (photon-counting AB maggies); the distance modulus is added for apparent magnitudes.
    Template maggies are tabulated on a redshift grid and mixtures combine them linearly.
    """

    def __init__(self, filters: str = "sdss2010", bands=BANDS, z_max: float = 1.0):
        self.filter_names = [f"{filters}-{b}" for b in bands]
        self.bands = list(bands)
        self.z_grid = np.arange(0.0, z_max + Z_GRID_STEP, Z_GRID_STEP)

    @cached_property
    def filters(self):
        import speclite.filters

        return speclite.filters.load_filters(*self.filter_names)

    @cached_property
    def templates(self) -> tuple[np.ndarray, np.ndarray]:
        """(wavelength in Angstrom, (5, n_wavelength) f_lambda in erg/s/cm^2/A)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from skypy.galaxies.spectrum import kcorrect
        return np.asarray(kcorrect.wavelength.to_value("Angstrom")), np.asarray(kcorrect.templates.value)

    def observed_maggies(self, spectra: np.ndarray, z: float) -> np.ndarray:
        """(n_spectra, n_bands) AB maggies of rest-frame spectra seen at redshift z (at 10 pc)."""
        wavelength, _ = self.templates
        table = self.filters.get_ab_maggies(np.atleast_2d(spectra) / (1 + z), wavelength * (1 + z))
        return np.stack([np.asarray(table[name]) for name in self.filters.names], axis=-1)

    @cached_property
    def template_grid(self) -> np.ndarray:
        """(n_z, n_templates, n_bands) maggies of each template on the redshift grid."""
        _, spectra = self.templates
        return np.stack([self.observed_maggies(spectra, z) for z in self.z_grid])

    def template_maggies(self, z: np.ndarray) -> np.ndarray:
        """(n, n_templates, n_bands) linear interpolation of the grid at redshifts z."""
        z = np.asarray(z, dtype=float)
        if z.min() < 0 or z.max() > self.z_grid[-1]:
            raise ValueError(f"redshifts must lie in [0, {self.z_grid[-1]}]")
        position = z / Z_GRID_STEP
        lower = np.minimum(position.astype(int), len(self.z_grid) - 2)
        frac = (position - lower)[:, None, None]
        return self.template_grid[lower] * (1 - frac) + self.template_grid[lower + 1] * frac

    def absolute_magnitudes(self, coefficients: np.ndarray, stellar_mass: np.ndarray) -> np.ndarray:
        """(n, n_bands) rest-frame absolute magnitudes (z = 0 bandpasses)."""
        maggies = np.einsum("nt,tb->nb", coefficients * stellar_mass[:, None], self.template_grid[0])
        return -2.5 * np.log10(maggies)

    def apparent_magnitudes(self, coefficients: np.ndarray, stellar_mass: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(n, n_bands) observed AB magnitudes of template mixtures at redshifts z."""
        maggies = np.einsum("nt,ntb->nb", coefficients * stellar_mass[:, None], self.template_maggies(z))
        return -2.5 * np.log10(maggies) + cosmology().distmod(np.asarray(z)).value[:, None]


def band_reference_mass(photometry: SurveyPhotometry, coefficients: np.ndarray, absolute_b: np.ndarray) -> np.ndarray:
    """Stellar mass (template units) giving each SED its drawn absolute B magnitude."""
    import speclite.filters

    wavelength, spectra = photometry.templates
    bessell_b = speclite.filters.load_filters("bessell-B")
    per_template = np.asarray(bessell_b.get_ab_maggies(spectra, wavelength)["bessell-B"])
    return 10 ** (-0.4 * absolute_b) / (coefficients @ per_template)


def draw_population(cfg: dict, sky_area_deg2: float, seed: int) -> pd.DataFrame:
    """Red and blue galaxies (z, absolute B mag, SED coefficients) in a sky area, B-limited."""
    import astropy.units as u

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skypy.galaxies import schechter_lf
        from skypy.galaxies.spectrum import dirichlet_coefficients

    sel = cfg["selection"]
    z_grid = np.linspace(0.002, min(1.0, sel["z_max"] + 0.1), 200)
    parts = []
    with legacy_seed(seed):
        for label, name in enumerate(CLASS_NAMES):
            pop = cfg["population"][name]
            slope, intercept = pop["M_star"]
            amplitude, tau = pop["phi_star"]
            z, absolute_b = schechter_lf(
                z_grid, lambda zz, s=slope, c=intercept: s * zz + c, lambda zz, a=amplitude, t=tau: a * np.exp(zz / t),
                pop["alpha"], sel["mag_limit"] + B_MARGIN, sky_area_deg2 * u.deg**2, cosmology(),
            )
            coefficients = dirichlet_coefficients(z, pop["alpha0"], pop["alpha1"], weight=pop["weight"])
            part = pd.DataFrame({"z": z, "M_B": absolute_b, "label": label, "class_name": name})
            for k in range(coefficients.shape[1]):
                part[f"sed_c{k}"] = coefficients[:, k]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def draw_sizes(cfg: dict, catalog: pd.DataFrame, absolute_r: np.ndarray, seed: int) -> pd.DataFrame:
    """Half-light radii (kpc, arcsec), Sersic index and ellipticity (shear g) of each galaxy."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skypy.galaxies import morphology

    sizes = cfg["sizes"]
    red = catalog["label"].to_numpy() == 0
    r_kpc = np.empty(len(catalog))
    with legacy_seed(seed):
        r_kpc[red] = morphology.early_type_lognormal_size(absolute_r[red], **sizes["early"]).to_value("kpc")
        r_kpc[~red] = morphology.late_type_lognormal_size(absolute_r[~red], **sizes["late"]).to_value("kpc")
        g = morphology.beta_ellipticity(cfg["ellipticity"]["e_ratio"], cfg["ellipticity"]["e_sum"], size=len(catalog))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    angle = rng.uniform(0, np.pi, len(catalog))
    kpc_per_arcsec = cosmology().kpc_proper_per_arcmin(catalog["z"].to_numpy()).to_value("kpc/arcmin") / 60.0
    r_arcsec = np.clip(r_kpc / kpc_per_arcsec, sizes["min_arcsec"], sizes["max_arcsec"])
    g = np.clip(g, 0.0, 0.8)  # very flat ellipses are edge-on disks, thinner than any de Vaucouleurs
    return pd.DataFrame({
        "r_half_kpc": r_kpc, "r_half_arcsec": r_arcsec, "sersic_n": np.where(red, 4.0, 1.0),
        "g1": g * np.cos(2 * angle), "g2": g * np.sin(2 * angle),
    })


def pixel_noise(cfg: dict) -> dict[str, float]:
    """Sky noise per pixel (nanomaggies) giving each band's 5-sigma point-source depth.

    A Gaussian PSF of width s has an optimal (PSF-weighted) noise area 4 pi s^2, so the 5-sigma
    flux f5 = 5 sigma_pix sqrt(4 pi s^2) / pixel.
    """
    noise = {}
    for band in cfg["bands"]:
        s = cfg["psf_fwhm"][band] / 2.3548
        f5 = 10 ** (-0.4 * (cfg["depth_5sigma"][band] - 22.5))
        noise[band] = f5 / (5 * np.sqrt(4 * np.pi * s**2) / cfg["pixel_scale"])
    return noise


def observe(cfg: dict, true_mags: np.ndarray, r_half_arcsec: np.ndarray, seed: int):
    """Observed magnitudes and 1-sigma errors: sky noise over the galaxy's noise area plus calibration.

    Returns (mags, errors, calibration factors, flux noise sigmas in nanomaggies), all (n, bands).
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    bands = cfg["bands"]
    sigma_pix = pixel_noise(cfg)
    flux = 10 ** (-0.4 * (true_mags - 22.5))
    gal = r_half_arcsec / 1.1774  # Gaussian sigma with the same half-light radius
    sigma_flux = np.stack([
        sigma_pix[b] * np.sqrt(4 * np.pi * ((cfg["psf_fwhm"][b] / 2.3548) ** 2 + gal**2)) / cfg["pixel_scale"] for b in bands
    ], axis=1)
    floor = np.array([cfg["calibration_floor"][b] for b in bands]) / 1.0857
    calibration = 1 + floor * rng.standard_normal(flux.shape)
    observed = flux * calibration + sigma_flux * rng.standard_normal(flux.shape)
    # A negative flux (never in the default r < 17.77 sample) is reported at the 1-sigma level.
    observed = np.maximum(observed, sigma_flux)
    mags = 22.5 - 2.5 * np.log10(observed)
    errors = 1.0857 * np.hypot(sigma_flux, floor * observed) / observed
    return mags, errors, calibration, sigma_flux


def simulate_catalog(cfg: dict, seed: int, photometry: SurveyPhotometry | None = None) -> pd.DataFrame:
    """n_objects galaxies of the selected sample, in random order, with `index`, `label`, `z`,
    `mag_<band>`, `magerr_<band>`, true magnitudes, sizes and shapes."""
    sel = cfg["selection"]
    bands = cfg["bands"]
    if sel["band"] not in bands:
        raise KeyError(f"simulation key 'selection.band': {sel['band']!r} is not one of the bands {bands}")
    photometry = photometry or SurveyPhotometry(cfg["filters"], bands, z_max=min(1.0, sel["z_max"] + 0.1))
    # ~100 galaxies per square degree at SDSS's limit; draw more sky until the sample is complete.
    area = 1.3 * cfg["n_objects"] / 100.0
    chunks, n_selected, draw = [], 0, 0
    while n_selected < cfg["n_objects"]:
        drawn = draw_population(cfg, area, seed + 1000 * draw)
        coefficients = drawn[[c for c in drawn if c.startswith("sed_c")]].to_numpy()
        mass = band_reference_mass(photometry, coefficients, drawn["M_B"].to_numpy())
        absolute = photometry.absolute_magnitudes(coefficients, mass)
        true_mags = photometry.apparent_magnitudes(coefficients, mass, drawn["z"].to_numpy())
        shapes = draw_sizes(cfg, drawn, absolute[:, bands.index("r")] if "r" in bands else drawn["M_B"].to_numpy(), seed + 1000 * draw + 1)
        mags, errors, calibration, sigma_flux = observe(cfg, true_mags, shapes["r_half_arcsec"].to_numpy(), seed + 1000 * draw + 2)
        table = pd.concat([drawn, shapes], axis=1)
        table["stellar_mass"] = mass
        for k, band in enumerate(bands):
            table[f"mag_{band}"] = mags[:, k]
            table[f"magerr_{band}"] = errors[:, k]
            table[f"mag_true_{band}"] = true_mags[:, k]
            table[f"calibration_{band}"] = calibration[:, k]
            table[f"flux_sigma_{band}"] = sigma_flux[:, k]
        keep = (table[f"mag_{sel['band']}"] < sel["mag_limit"]) & (table["z"] < sel["z_max"])
        chunks.append(table[keep])
        n_selected += int(keep.sum())
        draw += 1
        area = max(area * 0.5, 1.3 * (cfg["n_objects"] - n_selected) / 100.0)
    catalog = pd.concat(chunks, ignore_index=True)
    order = np.random.default_rng(np.random.SeedSequence([seed, 3])).permutation(len(catalog))[: cfg["n_objects"]]
    catalog = catalog.iloc[order].reset_index(drop=True)
    catalog.insert(0, "index", np.arange(len(catalog)))
    catalog["has_image"] = catalog["index"] < cfg["n_images"]
    catalog["image_row"] = np.where(catalog["has_image"], catalog["index"], -1)  # row of images.npy
    return catalog


def survey_summary(cfg: dict, catalog: pd.DataFrame) -> dict:
    """What the dataset card says about the survey: depth, noise, n(z), magnitudes and colours."""
    bands = cfg["bands"]
    z_edges = np.round(np.arange(0.0, cfg["selection"]["z_max"] + 0.02, 0.02), 3)
    mag_edges = np.arange(10.0, 24.01, 0.5)
    summary = {
        "n_objects": int(len(catalog)),
        "n_images": int(catalog["has_image"].sum()),
        "selection": cfg["selection"],
        "depth_5sigma": cfg["depth_5sigma"],
        "psf_fwhm_arcsec": cfg["psf_fwhm"],
        "pixel_scale_arcsec": cfg["pixel_scale"],
        "pixel_noise_nanomaggies": {b: round(v, 5) for b, v in pixel_noise(cfg).items()},
        "calibration_floor_mag": cfg["calibration_floor"],
        "n_of_z": {"edges": z_edges.tolist(), "counts": {
            name: np.histogram(part["z"], z_edges)[0].tolist() for name, part in catalog.groupby("class_name")}},
        "z_percentiles": dict(zip(("5", "50", "95"), np.percentile(catalog["z"], [5, 50, 95]).round(4).tolist())),
        "magnitudes": {"edges": mag_edges.tolist(), "counts": {
            b: np.histogram(catalog[f"mag_{b}"], mag_edges)[0].tolist() for b in bands}},
        "median_magerr": {b: round(float(catalog[f"magerr_{b}"].median()), 4) for b in bands},
        "colour_percentiles": {
            f"{a}-{b}": np.percentile(catalog[f"mag_{a}"] - catalog[f"mag_{b}"], [5, 50, 95]).round(3).tolist()
            for a, b in zip(bands[:-1], bands[1:])
        },
        "red_fraction": round(float((catalog["label"] == 0).mean()), 4),
    }
    return summary


def card_markdown_extra(summary: dict) -> str:
    lines = ["", "## Survey", "",
             f"- {summary['n_objects']} catalogue rows, cutouts for the first {summary['n_images']} (`has_image`)",
             f"- selection: {summary['selection']}",
             f"- redshift 5/50/95 %: {summary['z_percentiles']}; red fraction {summary['red_fraction']}", "",
             "| band | 5σ depth | PSF FWHM (\") | pixel noise (nmgy) | median error (mag) | colour 5/50/95 % |",
             "|---|---:|---:|---:|---:|---|"]
    colours = list(summary["colour_percentiles"].items())
    for k, band in enumerate(summary["depth_5sigma"]):
        colour = f"{colours[k][0]}: {colours[k][1]}" if k < len(colours) else ""
        lines.append(f"| {band} | {summary['depth_5sigma'][band]} | {summary['psf_fwhm_arcsec'][band]} | "
                     f"{summary['pixel_noise_nanomaggies'][band]} | {summary['median_magerr'][band]} | {colour} |")
    return "\n".join(lines) + "\n"


def write_photoz_dataset(out_dir, name: str, dataset_cfg: dict, seed: int, workers: int = 1) -> dict:
    """catalog.parquet (all rows), images.npy (cutouts of the first n_images rows), card.json/.md."""
    from pathlib import Path

    from deepsky.data import storage
    from deepsky.data.cards import write_card
    from deepsky.data.photoz_images import render_cutouts

    out_dir = Path(out_dir)
    cfg = merge_simulation_config(dataset_cfg.get("simulation", {}))
    catalog = simulate_catalog(cfg, seed)
    images = render_cutouts(catalog[catalog["has_image"]], cfg, seed, workers)
    if not np.isfinite(images).all():
        raise FloatingPointError(f"simulation of dataset '{name}' produced non-finite pixels")
    storage.save_images(out_dir / storage.IMAGES, images)
    # The per-object calibration draws and noise levels only feed the renderer; float32 halves the file.
    catalog = catalog.drop(columns=[c for c in catalog if c.startswith(("calibration_", "flux_sigma_"))])
    catalog = catalog.astype({c: np.float32 for c in catalog if catalog[c].dtype == np.float64 and c != "z"})
    storage.save_table(out_dir / storage.CATALOG, catalog)
    summary = survey_summary(cfg, catalog)
    card = write_card(
        out_dir, name=name, source=dataset_cfg["source"],
        description=dataset_cfg.get("description", "simulated SDSS-like galaxies for photometric redshifts"),
        class_names=CLASS_NAMES, catalog=catalog, images_shape=images.shape, bands=list(cfg["bands"]),
        provenance={
            "simulation": cfg, "seed": seed, "licence": "CC-BY-4.0 (simulated here)",
            "citation": "Herbel et al. 2017 (population), Blanton & Roweis 2007 (kcorrect templates), SkyPy "
                        "(Amara et al. 2021), speclite SDSS filters, Shen et al. 2003 (sizes), GalSim (Rowe et al. 2015)",
            "survey": summary,
        },
    )
    card.update({"n_objects": summary["n_objects"], "survey": summary})
    storage.write_json(out_dir / storage.CARD, card)
    with open(out_dir / "card.md", "a") as handle:
        handle.write(card_markdown_extra(summary))
    return card


TABLE_SUFFIXES = (".parquet", ".csv", ".fits", ".fit", ".fits.gz")


def read_table(path) -> pd.DataFrame:
    """A catalogue table from Parquet, CSV or FITS (binary table)."""
    from pathlib import Path

    name = Path(path).name.lower()
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith(".csv"):
        return pd.read_csv(path)
    from astropy.table import Table

    return Table.read(path).to_pandas()


def read_catalogue_rows(inputs, to_inputs):
    """(row labels "file#id", model inputs of the usable rows, errors of (file, message)) of tables.

    `to_inputs(table)` turns a table into a (rows, features) tensor (KeyError for a missing column);
    a row whose features are not finite is reported by its id and skipped.
    """
    from pathlib import Path

    import torch

    labels, chunks, errors = [], [], []
    for item in map(Path, inputs):
        paths = sorted(p for p in item.rglob("*") if p.name.lower().endswith(TABLE_SUFFIXES)) if item.is_dir() else [item]
        for path in paths:
            try:
                table = read_table(path)
                x = to_inputs(table)
            except (OSError, ValueError, KeyError) as exc:
                errors.append((str(path), f"{path}: not a usable catalogue table ({exc})"))
                continue
            ids = table["index"] if "index" in table else table["id"] if "id" in table else pd.Series(range(len(table)))
            finite = torch.isfinite(x).all(dim=1).numpy()
            errors += [(str(path), f"{path}#{i}: magnitudes are not finite") for i in ids[~finite]]
            labels += [f"{path}#{i}" for i in ids[finite]]
            chunks.append(x[torch.from_numpy(finite)])
    inputs = torch.cat(chunks) if chunks else None
    return labels, inputs, errors
