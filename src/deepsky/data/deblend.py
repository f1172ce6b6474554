"""Artificial blends of isolated galaxies (lecture 002: U-Net deblending; Boucaud+2020).

Each galaxy is a de Vaucouleurs bulge plus an exponential disk (GalSim), sheared, with a redder
bulge than disk in g, r, i, convolved with one Kolmogorov PSF per blend (the same in every band:
a simplification), on LSST-like 0.2" pixels. A blend is a central galaxy at the stamp centre plus
a companion at a controlled separation and flux ratio (a second companion in a fraction of the
blends), plus Gaussian sky noise of the configured depth. Fluxes are in nJy (AB zero point 31.4).

Truth kept per blend: every galaxy's noiseless image (the central's is saved as ``central.npy``, float16),
the segmentation map (0 background, 1 central, 2 companion: the brighter noiseless light where
both pass the threshold), the central's flux and HSM ellipticity, and the classical baseline (SEP,
a SExtractor clone: background, detection, multi-threshold deblending) computed on the blend.
``blend == central + companions + noise`` holds exactly for the returned parts.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

AB_ZERO_POINT_NJY = 31.4
CHUNK = 64

DEFAULT_BLENDS: dict = {
    "n_blends": 2000,
    "image_size": 32,
    "pixel_scale": 0.2,  # arcsec, LSST
    "bands": ["g", "r", "i"],
    "reference_band": "i",  # detection, fluxes, ellipticities and the baseline
    "depth_m5": {"g": 26.0, "r": 26.0, "i": 25.5},  # 5-sigma point-source depth (a few years of LSST)
    "seeing_range": [0.6, 0.8],  # Kolmogorov FWHM, arcsec
    "central_mag_range": [20.5, 23.5],  # reference band
    "delta_mag_range": [-1.0, 2.5],  # companion minus central: flux ratio 2.5 ... 0.1
    "separation_px_range": [1.0, 12.0],
    "second_companion_fraction": 0.2,
    "hlr_range": [0.3, 1.0],  # disk half-light radius, arcsec
    "bulge_fraction_range": [0.0, 0.6],
    "shear_max": 0.5,
    "segmentation_threshold": 1.0,  # summed per-band S/N of a noiseless pixel
    "separation_bins": [1.0, 2.0],  # arcsec: labels close / mid / wide (stratify the split)
}
CLASS_NAMES = ["close", "mid", "wide"]
# Colours relative to the reference band (mag): a red bulge, a blue disk.
BULGE_COLOUR = {"g": 1.2, "r": 0.45, "i": 0.0}
DISK_COLOUR = {"g": 0.55, "r": 0.2, "i": 0.0}


def merge_blend_config(user: dict | None = None) -> dict:
    cfg = {**DEFAULT_BLENDS, **(user or {})}
    if cfg["reference_band"] not in cfg["bands"]:
        raise ValueError(f"blends reference_band {cfg['reference_band']!r} is not one of bands {cfg['bands']}")
    missing = [b for b in cfg["bands"] if b not in cfg["depth_m5"] or b not in BULGE_COLOUR]
    if missing:
        raise ValueError(f"blends: no depth_m5 or colour for bands {missing}")
    return cfg


def flux_njy(mag) -> np.ndarray:
    return 10 ** (-0.4 * (np.asarray(mag, dtype=float) - AB_ZERO_POINT_NJY))


def noise_sigma(cfg: dict) -> dict[str, float]:
    """Sky noise per pixel (nJy) giving a 5-sigma point source at depth_m5 for the median seeing."""
    fwhm_px = np.mean(cfg["seeing_range"]) / cfg["pixel_scale"]
    n_eff = 4 * np.pi * (fwhm_px / 2.355) ** 2  # effective PSF area of a Gaussian, pixels
    return {b: float(flux_njy(cfg["depth_m5"][b]) / (5 * np.sqrt(n_eff))) for b in cfg["bands"]}


def draw_galaxy(params: dict, psf, cfg: dict, offset_px) -> np.ndarray:
    """(bands, size, size) noiseless image of one bulge+disk galaxy."""
    import galsim

    gsparams = galsim.GSParams(folding_threshold=1e-2, maxk_threshold=3e-3)
    hlr = params["hlr"]
    bulge = galsim.DeVaucouleurs(half_light_radius=0.5 * hlr, trunc=8 * 0.5 * hlr, gsparams=gsparams)
    disk = galsim.Exponential(half_light_radius=hlr, gsparams=gsparams)
    size, scale = cfg["image_size"], cfg["pixel_scale"]
    unit = []
    for profile in (bulge, disk):
        profile = profile.shear(g1=params["g1"], g2=params["g2"]).withFlux(1.0)
        image = galsim.Convolve(profile, psf).drawImage(nx=size, ny=size, scale=scale,
                                                        offset=galsim.PositionD(*offset_px))
        unit.append(image.array.astype(np.float64))
    total = flux_njy(params["mag"])
    bands = []
    for band in cfg["bands"]:
        f_bulge = params["bulge_fraction"] * total * 10 ** (-0.4 * BULGE_COLOUR[band])
        f_disk = (1 - params["bulge_fraction"]) * total * 10 ** (-0.4 * DISK_COLOUR[band])
        bands.append(f_bulge * unit[0] + f_disk * unit[1])
    return np.stack(bands).astype(np.float32)


def _galaxy_params(rng, cfg, mag) -> dict:
    g = rng.uniform(0, cfg["shear_max"])
    angle = rng.uniform(0, np.pi)
    # brighter galaxies are larger (a loose size-magnitude relation)
    lo, hi = cfg["hlr_range"]
    hlr = float(np.clip(rng.uniform(lo, hi) * 10 ** (-0.1 * (mag - 22.0)), 0.15, 1.5))
    return {"mag": float(mag), "hlr": hlr, "bulge_fraction": float(rng.uniform(*cfg["bulge_fraction_range"])),
            "g1": float(g * np.cos(2 * angle)), "g2": float(g * np.sin(2 * angle))}


def make_blend(index: int, cfg: dict, seed: int) -> dict:
    """One blend and its truth: {"blend", "galaxies" (list, central first), "noise", "row"}."""
    import galsim

    rng = np.random.default_rng(np.random.SeedSequence([seed, 13, index]))
    psf = galsim.Kolmogorov(fwhm=float(rng.uniform(*cfg["seeing_range"])))
    central_mag = rng.uniform(*cfg["central_mag_range"])
    central = _galaxy_params(rng, cfg, central_mag)
    centre_offset = rng.uniform(-0.5, 0.5, 2)
    n_companions = 2 if rng.uniform() < cfg["second_companion_fraction"] else 1
    companions, offsets = [], []
    for k in range(n_companions):
        lo, hi = cfg["separation_px_range"]
        separation = rng.uniform(lo, hi) if k == 0 else rng.uniform(0.5 * (lo + hi), hi)
        angle = rng.uniform(0, 2 * np.pi)
        offsets.append(centre_offset + separation * np.array([np.cos(angle), np.sin(angle)]))
        companions.append(_galaxy_params(rng, cfg, central_mag + rng.uniform(*cfg["delta_mag_range"])))
    galaxies = [draw_galaxy(central, psf, cfg, centre_offset)]
    galaxies += [draw_galaxy(p, psf, cfg, o) for p, o in zip(companions, offsets)]
    sigma = noise_sigma(cfg)
    size = cfg["image_size"]
    noise = np.stack([sigma[b] * rng.standard_normal((size, size)) for b in cfg["bands"]]).astype(np.float32)
    blend = np.sum(galaxies, axis=0, dtype=np.float32) + noise
    ref = cfg["bands"].index(cfg["reference_band"])
    e1, e2 = hsm_ellipticity(galaxies[0][ref])
    separation_px = float(np.hypot(*(offsets[0] - centre_offset)))
    row = {
        "index": index, "n_companions": n_companions, "seeing_arcsec": float(psf.fwhm),
        "central_mag": central["mag"], "central_hlr_arcsec": central["hlr"],
        "central_bulge_fraction": central["bulge_fraction"], "central_g1": central["g1"], "central_g2": central["g2"],
        "companion_mag": companions[0]["mag"], "separation_px": separation_px,
        "separation_arcsec": separation_px * cfg["pixel_scale"],
        "flux_ratio": float(galaxies[1][ref].sum() / galaxies[0][ref].sum()),
        "e1": e1, "e2": e2,
    }
    for b, band in enumerate(cfg["bands"]):
        row[f"flux_{band}"] = float(galaxies[0][b].sum())  # in the stamp
    row["true_flux"] = row[f"flux_{cfg['reference_band']}"]
    row["flux_baseline"], row["baseline_detected"] = sep_central_flux(blend[ref], sigma[cfg["reference_band"]])
    return {"blend": blend, "galaxies": galaxies, "noise": noise, "row": row}


def segmentation_map(galaxies: list[np.ndarray], sigma: list[float], threshold: float) -> np.ndarray:
    """(H, W) uint8: 0 background, 1 central, 2 companion(s); where several galaxies pass the
    threshold (summed per-band S/N of their noiseless light), the brighter one there wins."""
    scale = np.asarray(sigma, dtype=np.float64)[:, None, None]
    snr = np.stack([(galaxies[0] / scale).sum(0), (np.sum(galaxies[1:], axis=0) / scale).sum(0)])
    labels = (np.argmax(snr, axis=0) + 1).astype(np.uint8)
    labels[snr.max(axis=0) < threshold] = 0
    return labels


def hsm_ellipticity(image: np.ndarray) -> tuple[float, float]:
    """(e1, e2) as GalSim HSM adaptive-moment reduced shear g1, g2; NaN when HSM fails."""
    import galsim

    try:
        shape = galsim.hsm.FindAdaptiveMom(galsim.Image(np.ascontiguousarray(image, dtype=np.float64)),
                                           strict=True).observed_shape
        return float(shape.g1), float(shape.g2)
    except (galsim.errors.GalSimHSMError, galsim.errors.GalSimError, ValueError):
        return float("nan"), float("nan")


def sep_central_flux(image: np.ndarray, sigma: float, thresh: float = 1.5) -> tuple[float, bool]:
    """The classical measurement: SEP background, detection at `thresh` sigma and SExtractor's
    multi-threshold deblending; the central's flux is the background-subtracted blend summed over
    the segment holding the centre pixel. No segment there: flux 0 (a missed galaxy counts as a
    -100 % error) and detected False."""
    import sep

    data = np.ascontiguousarray(image, dtype=np.float64)
    size = data.shape[0]
    background = sep.Background(data, bw=size, bh=size)
    data = data - background.back()
    _, segments = sep.extract(data, thresh, err=sigma, minarea=5, deblend_nthresh=32, deblend_cont=0.005,
                              segmentation_map=True)
    label = segments[size // 2, size // 2]
    if label == 0:
        return 0.0, False
    return float(data[segments == label].sum()), True


def _chunk(args):
    start, stop, cfg, seed = args
    sigma = list(noise_sigma(cfg).values())
    out = []
    for index in range(start, stop):
        blend = make_blend(index, cfg, seed)
        seg = segmentation_map(blend["galaxies"], sigma, cfg["segmentation_threshold"])
        out.append((blend["blend"], blend["galaxies"][0], seg, blend["row"]))
    return out


def simulate_blends(cfg: dict, seed: int, workers: int = 1):
    """(blends (N,C,H,W) float32, centrals (N,C,H,W) float32, segmentation (N,H,W) uint8, catalog)."""
    n = cfg["n_blends"]
    jobs = [(s, min(s + CHUNK, n), cfg, seed) for s in range(0, n, CHUNK)]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = [r for chunk in pool.map(_chunk, jobs) for r in chunk]
    else:
        parts = [r for job in jobs for r in _chunk(job)]
    blends = np.stack([p[0] for p in parts])
    centrals = np.stack([p[1] for p in parts])
    segmentation = np.stack([p[2] for p in parts]).astype(np.uint8)
    catalog = pd.DataFrame([p[3] for p in parts])
    catalog["label"] = np.digitize(catalog["separation_arcsec"], cfg["separation_bins"]).astype(int)
    catalog["class_name"] = [CLASS_NAMES[k] for k in catalog["label"]]
    return blends, centrals, segmentation, catalog


def write_blend_dataset(out_dir, name: str, user_cfg: dict, seed: int, workers: int = 1) -> dict:
    from pathlib import Path

    from deepsky.data import storage
    from deepsky.data.cards import write_card

    cfg = merge_blend_config(user_cfg.get("simulation", {}))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blends, centrals, segmentation, catalog = simulate_blends(cfg, seed, workers)
    np.save(out_dir / "central.npy", centrals.astype(np.float16))  # half the disk; 1e-3 relative precision
    np.save(out_dir / "segmentation.npy", segmentation)
    storage.save_images(out_dir / storage.IMAGES, blends)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    return write_card(
        out_dir, name=name, source="simulate_blends",
        description="GalSim bulge+disk galaxies artificially blended with a companion (LSST-like g, r, i)",
        class_names=CLASS_NAMES, catalog=catalog, images_shape=blends.shape, bands=list(cfg["bands"]),
        provenance={"simulation": cfg, "noise_sigma_njy": noise_sigma(cfg), "unit": "nJy",
                    "citation": "Boucaud et al. 2020 (MNRAS 491, 2481); Rowe et al. 2015 (GalSim); "
                                "Barbary 2016 (SEP); Bertin & Arnouts 1996 (SExtractor)",
                    "licence": "CC-BY-4.0 (simulated here)"},
    )
