"""CMB temperature patches: camb spectra, healpy skies, gnomonic cut-outs (lecture 003, Tutorial 3).

1. camb computes the lensed TT spectrum C_ell (muK^2) of a flat LCDM cosmology (Planck 2018 by
   default, Planck Collaboration 2020, A&A 641, A6, TT,TE,EE+lowE+lensing).
2. healpy draws full-sky maps from it (synalm + alm2map at nside), smoothed by a Gaussian beam;
   white noise (muK arcmin), if asked, is added per HEALPix pixel.
3. Square patches are cut at random positions and orientations by gnomonic projection with
   nearest-pixel sampling (healpy's GnomonicProj, what gnomview shows).

Nearest-pixel sampling jitters every patch pixel by up to half a HEALPix pixel; that moves a
little power from the beam scale into white noise. HEALPix pixels several times smaller than
the patch pixels keep it below the beam scale, which is why `nside` must resolve the patch
pixels (checked) and why the "resolved" range stops where the beam falls to B^2 = 0.1.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import storage
from deepsky.data.cards import write_card
from deepsky.data.cmb_spectrum import ARCMIN, fundamental_ell, nyquist_ell

PLANCK2018 = {"H0": 67.36, "ombh2": 0.02237, "omch2": 0.1200, "tau": 0.0544, "ns": 0.9649, "ln10As": 3.044, "mnu": 0.06}
DEFAULTS = {
    "cosmology": PLANCK2018,
    "nside": 2048,
    "lmax": None,  # where the beam has fallen to B^2 = 1e-3 (at most 3 nside - 1)
    "beam_fwhm_arcmin": 12.0,
    "noise_uk_arcmin": 0.0,
    "patch_pixels": 32,
    "pixel_arcmin": 8.0,
    "n_maps": 1,
}
CLASSES = ("cmb",)
CITATION = ("Planck Collaboration 2020, A&A 641, A6 (cosmology); Lewis, Challinor & Lasenby 2000, ApJ 538, 473 (camb); "
            "Gorski et al. 2005, ApJ 622, 759 (HEALPix); Zonca et al. 2019, JOSS 4, 1298 (healpy)")
BEAM_RESOLVED = 0.1  # B_ell^2 above which a multipole counts as resolved by the beam


def settings(simulation: dict) -> dict:
    """The dataset's `simulation` block over the defaults, checked; errors name the key."""
    cfg = {**DEFAULTS, **simulation, "cosmology": {**PLANCK2018, **simulation.get("cosmology", {})}}
    unknown = sorted(set(simulation) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"simulation keys {unknown} are not CMB settings (known: {', '.join(DEFAULTS)})")
    nside = int(cfg["nside"])
    if nside < 1 or nside & (nside - 1):
        raise ValueError(f"simulation.nside must be a power of two, got {nside}")
    healpix_arcmin = np.degrees(np.sqrt(4 * np.pi / (12 * nside**2))) * 60
    if healpix_arcmin > cfg["pixel_arcmin"] / 2:
        raise ValueError(
            f"simulation.nside {nside} has {healpix_arcmin:.2f} arcmin pixels: too coarse for patch pixels of "
            f"{cfg['pixel_arcmin']} arcmin (need at most half of them; raise nside or pixel_arcmin)"
        )
    if int(cfg["patch_pixels"]) < 8:
        raise ValueError("simulation.patch_pixels must be at least 8")
    sigma_beam = cfg["beam_fwhm_arcmin"] * ARCMIN / np.sqrt(8 * np.log(2))
    beam_lmax = int(np.ceil(np.sqrt(2 * np.log(1e3)) / sigma_beam)) if sigma_beam > 0 else 3 * nside - 1
    cfg["lmax"] = int(cfg["lmax"] or min(3 * nside - 1, beam_lmax))
    cfg["healpix_arcmin"] = float(healpix_arcmin)
    return cfg


def theory_cl(cosmology: dict, lmax: int) -> np.ndarray:
    """Lensed TT C_ell in muK^2 for ell = 0..lmax (camb; runs offline)."""
    import camb

    pars = camb.CAMBparams()
    pars.set_cosmology(H0=cosmology["H0"], ombh2=cosmology["ombh2"], omch2=cosmology["omch2"],
                       mnu=cosmology["mnu"], omk=0, tau=cosmology["tau"])
    pars.InitPower.set_params(As=np.exp(cosmology["ln10As"]) * 1e-10, ns=cosmology["ns"])
    pars.set_for_lmax(lmax, lens_potential_accuracy=1)
    results = camb.get_results(pars)
    cl = results.get_cmb_power_spectra(pars, CMB_unit="muK", raw_cl=True, lmax=lmax)["total"][:, 0]
    return np.asarray(cl[: lmax + 1], dtype=np.float64)


def beam_window(fwhm_arcmin: float, lmax: int) -> np.ndarray:
    import healpy as hp

    return hp.gauss_beam(fwhm_arcmin * ARCMIN, lmax=lmax)


def noise_cl(cfg: dict) -> float:
    """White-noise level of the patches (muK^2 sr): each patch pixel samples its own HEALPix
    pixel, whose noise sigma is noise_uk_arcmin / (HEALPix pixel side), over the patch pixel area."""
    sigma = cfg["noise_uk_arcmin"] / cfg["healpix_arcmin"]
    return float(sigma**2 * (cfg["pixel_arcmin"] * ARCMIN) ** 2)


def resolved_range(cfg: dict, cl: np.ndarray) -> tuple[float, float]:
    """(lowest, highest) multipole the patches resolve: above twice the fundamental (the taper
    leaks the largest scales), below the Nyquist multipole, where the beam keeps B^2 >= 0.1 and
    the beamed signal is above the noise."""
    n, pixel = int(cfg["patch_pixels"]), float(cfg["pixel_arcmin"])
    sigma_beam = cfg["beam_fwhm_arcmin"] * ARCMIN / np.sqrt(8 * np.log(2))
    top = min(nyquist_ell(pixel), np.sqrt(-np.log(BEAM_RESOLVED)) / sigma_beam if sigma_beam > 0 else np.inf)
    noise = noise_cl(cfg)
    if noise > 0:
        ell = np.arange(2, cfg["lmax"] + 1)
        signal = cl[2:] * beam_window(cfg["beam_fwhm_arcmin"], cfg["lmax"])[2:] ** 2
        below = ell[signal < noise]
        if below.size:
            top = min(top, float(below[0]))
    return 2 * fundamental_ell(n, pixel), float(top)


def sky_map(cl: np.ndarray, cfg: dict, rng: np.random.Generator) -> np.ndarray:
    """One full-sky temperature map (muK, RING order): Gaussian a_lm of C_ell, beam, noise."""
    import healpy as hp

    lmax = cfg["lmax"]
    # healpy draws a_lm from NumPy's global generator: seed it from ours, once per map.
    np.random.seed(int(rng.integers(2**31)))
    alm = hp.synalm(cl[: lmax + 1], lmax=lmax, new=True)
    alm = hp.almxfl(alm, beam_window(cfg["beam_fwhm_arcmin"], lmax))
    sky = hp.alm2map(alm, cfg["nside"], lmax=lmax)
    if cfg["noise_uk_arcmin"] > 0:
        sky += rng.normal(0.0, cfg["noise_uk_arcmin"] / cfg["healpix_arcmin"], sky.size)
    return sky


def cut_patches(sky: np.ndarray, n_patches: int, cfg: dict, rng: np.random.Generator) -> tuple[np.ndarray, pd.DataFrame]:
    """Gnomonic patches (n_patches, n, n) at isotropic random centres and orientations."""
    import healpy as hp

    n, nside = int(cfg["patch_pixels"]), int(cfg["nside"])
    lon = rng.uniform(0.0, 360.0, n_patches)
    lat = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n_patches)))
    psi = rng.uniform(0.0, 360.0, n_patches)
    vec2pix = partial(hp.vec2pix, nside)
    patches = np.empty((n_patches, n, n), dtype=np.float32)
    for i in range(n_patches):
        projector = hp.projector.GnomonicProj(rot=(lon[i], lat[i], psi[i]), xsize=n, ysize=n, reso=cfg["pixel_arcmin"])
        patches[i] = projector.projmap(sky, vec2pix)
    return patches, pd.DataFrame({"lon_deg": lon, "lat_deg": lat, "psi_deg": psi})


def simulate_patches(n_patches: int, simulation: dict, seed: int) -> tuple[np.ndarray, pd.DataFrame, dict, dict]:
    """(images (N, 1, n, n) muK, catalog, settings, theory) for `n_patches` spread over n_maps skies."""
    cfg = settings(simulation)
    rng = np.random.default_rng(seed)
    cl = theory_cl(cfg["cosmology"], cfg["lmax"])
    per_map = np.diff(np.linspace(0, n_patches, cfg["n_maps"] + 1).round().astype(int))
    images, rows = [], []
    for map_id, count in enumerate(per_map):
        sky = sky_map(cl, cfg, rng)
        patches, table = cut_patches(sky, int(count), cfg, rng)
        del sky
        table["map_id"] = map_id
        images.append(patches)
        rows.append(table)
    images = np.concatenate(images)[:, None]
    catalog = pd.concat(rows, ignore_index=True)
    catalog.insert(0, "index", np.arange(len(catalog)))
    catalog.insert(1, "label", 0)
    catalog.insert(2, "class_name", CLASSES[0])
    catalog["pixel_std_uk"] = images.reshape(len(images), -1).std(axis=1)
    ell_lo, ell_hi = resolved_range(cfg, cl)
    theory = {
        "ell_min_resolved": ell_lo,
        "ell_max_resolved": ell_hi,
        "noise_cl": noise_cl(cfg),
        "cl_tt": cl.tolist(),
        "beam_window": beam_window(cfg["beam_fwhm_arcmin"], cfg["lmax"]).tolist(),
    }
    return images, catalog, cfg, theory


def write_cmb_dataset(out_dir, name: str, dataset_cfg: dict, seed: int) -> dict:
    """images.npy (N, 1, n, n) in muK, catalog.parquet (patch centres), card.json (cosmology, theory)."""
    out_dir = Path(out_dir)
    images, catalog, cfg, theory = simulate_patches(int(dataset_cfg["n_per_class"]), dataset_cfg.get("simulation", {}), seed)
    if not np.isfinite(images).all():
        raise FloatingPointError(f"simulation of dataset '{name}' produced non-finite pixels")
    storage.save_images(out_dir / storage.IMAGES, images)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    return write_card(
        out_dir, name=name, source="simulate_cmb",
        description=dataset_cfg.get("description", "CMB temperature patches (camb + healpy, gnomonic projection)"),
        class_names=list(CLASSES), catalog=catalog, images_shape=images.shape, bands=["T"],
        provenance={"simulation": cfg, "units": "muK (thermodynamic CMB temperature)", "seed": seed,
                    "theory": theory, "citation": CITATION, "licence": "CC-BY-4.0 (simulated here)"},
    )


def card_settings(card: dict) -> tuple[dict, dict]:
    """(simulation settings, theory) stored in a CMB dataset card."""
    provenance = card.get("provenance", {})
    if "theory" not in provenance or "simulation" not in provenance:
        raise ValueError(f"dataset card of '{card.get('name')}' is not a CMB card (no provenance.theory/simulation)")
    return provenance["simulation"], provenance["theory"]
