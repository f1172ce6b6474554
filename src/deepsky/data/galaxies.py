"""Simulated galaxy-morphology cutouts (Galaxy Zoo tutorial: round, edge-on, spiral).

Light profiles are lenstronomy Sersic ellipses (Galfit convention: ``R_sersic`` is the
semi-major-axis half-light radius) evaluated on a supersampled arcsec grid, with
total fluxes from lenstronomy's analytic Sersic integral.  Spiral arms (logarithmic
spirals in the de-projected disk plane) and edge-on dust lanes are applied on that grid,
then each band is pixel-averaged, convolved with a Gaussian PSF (seeing ~ lambda^-0.2)
and given sky + Poisson noise.  Images are sky-subtracted counts.

Conventions: pixel (row, col) has x = col, y = row offsets from the stamp centre
((size-1)/2); position angles are degrees counter-clockwise from +x; magnitudes are
intrinsic (before dust) AB-like totals; colours are SDSS-like offsets to r.
"""

from __future__ import annotations

import copy
import math
from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter

GALAXY_CLASSES = ("round", "edge_on", "spiral")
ALL_BANDS = ("u", "g", "r", "i", "z")
_WAVELENGTH_NM = {"u": 355.0, "g": 469.0, "r": 617.0, "i": 748.0, "z": 893.0}
# m_band - m_r of stellar populations (low-z SDSS galaxies, approximate)
_SED = {
    "old": {"u": 2.50, "g": 0.78, "r": 0.0, "i": -0.40, "z": -0.75},    # ellipticals, bulges
    "disk": {"u": 1.60, "g": 0.55, "r": 0.0, "i": -0.30, "z": -0.50},   # smooth disks
    "young": {"u": 0.90, "g": 0.22, "r": 0.0, "i": -0.10, "z": -0.18},  # star-forming arms
}
_DUST_K = {"u": 1.58, "g": 1.21, "r": 0.87, "i": 0.67, "z": 0.48}  # A_lambda / A_V (Cardelli)

DEFAULT_GALAXY_SIMULATION = {
    "image_size": 64,
    "pixel_scale_arcsec": 0.396,
    "bands": ["g", "r", "i"],
    "reference_band": "r",
    "supersampling": 2,
    "noise": True,
    "zeropoint_mag": {"u": 26.7, "g": 28.3, "r": 28.1, "i": 27.7, "z": 26.3},
    "sky_mag_per_arcsec2": {"u": 22.1, "g": 22.2, "r": 21.2, "i": 20.5, "z": 19.6},
    "magnitude_range": [14.5, 18.0],
    "half_light_radius_frac": [0.05, 0.18],
    "seeing_fwhm_arcsec": [0.9, 1.6],
    "center_offset_pix": 1.5,
    "color_scatter": 0.15,
    "contaminant_rate": 0.5,
    "disk_thickness": 0.1,
    "round": {"sersic_n": [3.5, 5.0], "axis_ratio": [0.8, 1.0]},
    "edge_on": {
        "axis_ratio": [0.1, 0.3],
        "bulge_fraction": [0.0, 0.3],
        "dust_lane_probability": 0.6,
        "dust_lane_tau": [0.8, 3.0],
    },
    "spiral": {
        "n_arms": [2, 4],
        "pitch_angle_deg": [10.0, 30.0],
        "inclination_deg": [0.0, 65.0],
        "bulge_fraction": [0.05, 0.4],
        "arm_strength": [0.4, 0.95],
    },
}


def _merge(base: dict, user: dict, where: str) -> dict:
    out = copy.deepcopy(base)
    for key, val in user.items():
        if key not in base:
            raise ValueError(f"unknown galaxy simulation key {where}{key!r}; allowed: {sorted(base)}")
        if isinstance(base[key], dict):
            if not isinstance(val, dict):
                raise ValueError(f"galaxy simulation key {where}{key!r} must be a mapping")
            out[key] = _merge(base[key], val, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(val)
    return out


def merge_simulation_config(user: dict | None) -> dict:
    """Return the defaults overridden by ``user`` (nested dicts merged key by key).

    Unknown keys, reversed ``[min, max]`` ranges and a reference band outside ``bands``
    raise ValueError (the JSON schema fragment checks types and bounds)."""
    cfg = _merge(DEFAULT_GALAXY_SIMULATION, dict(user or {}), "")

    def check_ranges(d: dict, where: str) -> None:
        for key, val in d.items():
            if isinstance(val, dict):
                check_ranges(val, f"{where}{key}.")
            elif isinstance(val, (list, tuple)) and len(val) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in val
            ):
                if val[0] > val[1]:
                    raise ValueError(f"range {where}{key} has min > max: {list(val)}")

    check_ranges(cfg, "")
    bands = list(cfg["bands"])
    if not bands or len(set(bands)) != len(bands) or any(b not in ALL_BANDS for b in bands):
        raise ValueError(f"bands must be distinct values from {ALL_BANDS}, got {bands}")
    if cfg["reference_band"] not in bands:
        raise ValueError(f"reference_band {cfg['reference_band']!r} not in bands {bands}")
    return cfg


@lru_cache(maxsize=1)
def _sersic_model():
    from lenstronomy.LightModel.light_model import LightModel

    return LightModel(["SERSIC_ELLIPSE"], profile_kwargs_list=[{"sersic_major_axis": True}])


@lru_cache(maxsize=16)
def _grid(size: int, scale: float, ss: int) -> tuple[np.ndarray, np.ndarray]:
    """Supersampled sub-pixel centres (arcsec) relative to the stamp centre."""
    sub = ((np.arange(size * ss) + 0.5) / ss - 0.5 - (size - 1) / 2.0) * scale
    x, y = np.meshgrid(sub, sub)  # x along columns, y along rows
    return x, y


def _sersic(x, y, flux, r_half, n, q, pa, cx, cy) -> np.ndarray:
    """Surface brightness (counts/arcsec^2) of a Sersic ellipse with total ``flux``."""
    from lenstronomy.Util.param_util import phi_q2_ellipticity

    e1, e2 = phi_q2_ellipticity(pa, q)
    kw = {"R_sersic": r_half, "n_sersic": n, "e1": e1, "e2": e2, "center_x": cx, "center_y": cy}
    model = _sersic_model()
    norm = model.total_flux([kw], norm=True)[0]
    return model.surface_brightness(x, y, [dict(kw, amp=flux / norm)])


def _uniform(rng, lo_hi) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


def _q_from_inclination(inc_rad: float, q0: float) -> float:
    return math.sqrt(math.cos(inc_rad) ** 2 * (1.0 - q0**2) + q0**2)


def _inclination_from_q(q: float, q0: float) -> float:
    c2 = max(q * q - q0 * q0, 0.0) / (1.0 - q0 * q0)
    return math.degrees(math.acos(min(math.sqrt(c2), 1.0)))


def render_galaxy_cutout(kind: str, rng: np.random.Generator, cfg: dict | None = None):
    """Render one galaxy of class ``kind``.

    Returns ``(image, params)``: float32 array ``(n_bands, size, size)`` of sky-subtracted
    counts (noise-free model when ``cfg["noise"]`` is false) and a flat dict of scalars with
    the same keys for every kind (NaN where a parameter does not apply)."""
    if kind not in GALAXY_CLASSES:
        raise ValueError(f"unknown galaxy kind {kind!r}; allowed: {', '.join(GALAXY_CLASSES)}")
    cfg = merge_simulation_config(cfg)
    size, scale, ss = int(cfg["image_size"]), float(cfg["pixel_scale_arcsec"]), int(cfg["supersampling"])
    bands, ref = list(cfg["bands"]), cfg["reference_band"]
    x, y = _grid(size, scale, ss)
    zp = cfg["zeropoint_mag"]
    q0 = float(cfg["disk_thickness"])

    # global draws (same order for every kind so seeds stay comparable)
    mag = _uniform(rng, cfg["magnitude_range"])
    flux = 10.0 ** (-0.4 * (mag - zp[ref]))  # reference-band counts
    lo, hi = cfg["half_light_radius_frac"]
    r_half = math.exp(rng.uniform(math.log(lo), math.log(hi))) * size * scale  # arcsec
    pa = float(rng.uniform(0.0, math.pi))
    off_r, off_t = cfg["center_offset_pix"] * math.sqrt(rng.uniform()), rng.uniform(0, 2 * math.pi)
    cx, cy = off_r * math.cos(off_t) * scale, off_r * math.sin(off_t) * scale
    seeing = _uniform(rng, cfg["seeing_fwhm_arcsec"])
    redness = float(rng.normal())  # correlated colour scatter of this galaxy

    nan = float("nan")
    p = dict(kind=kind, label=GALAXY_CLASSES.index(kind), magnitude=mag, half_light_radius_arcsec=r_half,
             half_light_radius_pix=r_half / scale, sersic_n=nan, axis_ratio=nan,
             position_angle_deg=math.degrees(pa), inclination_deg=nan, bulge_fraction=nan,
             bulge_sersic_n=nan, bulge_half_light_radius_arcsec=nan, n_arms=nan, pitch_angle_deg=nan,
             arm_strength=nan, dust_lane_tau=nan, seeing_fwhm_arcsec=seeing,
             center_x_pix=cx / scale, center_y_pix=cy / scale)
    comps: list[tuple[np.ndarray, str, float]] = []  # (sb map in ref counts/arcsec^2, SED, ref flux)
    dust = None  # (lane profile in [0,1], tau in reference band)

    if kind == "round":
        c = cfg["round"]
        n, q = _uniform(rng, c["sersic_n"]), _uniform(rng, c["axis_ratio"])
        comps.append((_sersic(x, y, flux, r_half, n, q, pa, cx, cy), "old", flux))
        p.update(sersic_n=n, axis_ratio=q, bulge_fraction=1.0, bulge_sersic_n=n,
                 bulge_half_light_radius_arcsec=r_half)
    else:
        c = cfg[kind]
        fb = _uniform(rng, c["bulge_fraction"])
        nb, rb_frac, qb = float(rng.uniform(2.0, 4.0)), float(rng.uniform(0.12, 0.3)), float(rng.uniform(0.7, 1.0))
        if kind == "edge_on":
            q = _uniform(rng, c["axis_ratio"])
            inc = _inclination_from_q(q, q0)
            has_lane = rng.uniform() < c["dust_lane_probability"]
            tau, lane_off, lane_w = _uniform(rng, c["dust_lane_tau"]), rng.uniform(-0.25, 0.25), rng.uniform(0.25, 0.5)
        else:
            inc = _uniform(rng, c["inclination_deg"])
            q = _q_from_inclination(math.radians(inc), q0)
            n_arms = int(rng.integers(c["n_arms"][0], c["n_arms"][1] + 1))
            pitch = _uniform(rng, c["pitch_angle_deg"])
            amp_arm, phase, chir = _uniform(rng, c["arm_strength"]), rng.uniform(0, 2 * math.pi), rng.choice([-1.0, 1.0])
            sharp = float(rng.uniform(2.0, 5.0))
        disk_flux, bulge_flux = flux * (1.0 - fb), flux * fb
        disk = _sersic(x, y, disk_flux, r_half, 1.0, q, pa, cx, cy)
        if bulge_flux > 0:
            comps.append((_sersic(x, y, bulge_flux, rb_frac * r_half, nb, qb, pa, cx, cy), "old", bulge_flux))
        # disk-plane coordinates: u along the major axis, v along the projected minor axis
        dx, dy = x - cx, y - cy
        u = math.cos(pa) * dx + math.sin(pa) * dy
        v = -math.sin(pa) * dx + math.cos(pa) * dy
        if kind == "edge_on":
            comps.append((disk, "disk", disk_flux))
            if has_lane:
                b_half = q * r_half
                lane = np.exp(-0.5 * ((v - lane_off * b_half) / (lane_w * b_half + 0.05)) ** 2
                              - 0.5 * (u / (1.6 * r_half)) ** 2)
                dust = (lane, tau)
                p.update(dust_lane_tau=tau)
            else:
                p.update(dust_lane_tau=0.0)
        else:
            vd = v / max(math.cos(math.radians(inc)), 0.05)
            r = np.hypot(u, vd) + 1e-6
            theta = chir * np.arctan2(vd, u)
            psi = n_arms * (theta - np.log(r / r_half) / math.tan(math.radians(pitch))) + phase
            arm = ((1.0 + np.cos(psi)) * 0.5) ** sharp
            mean_arm = math.gamma(sharp + 0.5) / (math.sqrt(math.pi) * math.gamma(sharp + 1.0))
            a_eff = amp_arm * (1.0 - np.exp(-((r / (0.45 * r_half)) ** 2)))
            smooth, arms = disk * (1.0 - a_eff), disk * a_eff * (arm / mean_arm)
            tot = max(float(disk.sum()), 1e-30)
            comps.append((smooth, "disk", disk_flux * float(smooth.sum()) / tot))
            comps.append((arms, "young", disk_flux * float(arms.sum()) / tot))
            p.update(n_arms=float(n_arms), pitch_angle_deg=pitch, arm_strength=amp_arm)
        p.update(sersic_n=1.0, axis_ratio=q, inclination_deg=inc, bulge_fraction=fb,
                 bulge_sersic_n=nb if fb > 0 else nan,
                 bulge_half_light_radius_arcsec=rb_frac * r_half if fb > 0 else nan)

    # faint neighbours (stars / compact galaxies), not part of the reported magnitudes
    extra = []
    for _ in range(int(rng.poisson(cfg["contaminant_rate"]))):
        ex, ey = rng.uniform(-0.45, 0.45, size=2) * size * scale
        ef = flux * 10.0 ** (-0.4 * rng.uniform(1.5, 4.5))
        er, eq, ep = rng.uniform(0.15, 0.8), rng.uniform(0.5, 1.0), rng.uniform(0, math.pi)
        extra.append((_sersic(x, y, ef, er, 1.0, eq, ep, ex, ey), str(rng.choice(["old", "disk", "young"]))))

    ref_l, cs = _WAVELENGTH_NM[ref], float(cfg["color_scatter"])
    image = np.empty((len(bands), size, size), dtype=np.float32)
    pix_area = scale * scale
    for bi, band in enumerate(bands):
        def to_band(sed: str) -> float:
            colour = (_SED[sed][band] - _SED[sed][ref]) * (1.0 + cs * redness)
            return 10.0 ** (-0.4 * (colour + zp[ref] - zp[band]))

        sb = np.zeros_like(x)
        for m, sed, _ in comps:
            sb += m * to_band(sed)
        if dust is not None:
            sb *= np.exp(-dust[1] * _DUST_K[band] / _DUST_K[ref] * dust[0])
        for m, sed in extra:
            sb += m * to_band(sed)
        model = sb.reshape(size, ss, size, ss).mean(axis=(1, 3)) * pix_area
        fwhm_b = seeing * (_WAVELENGTH_NM[band] / ref_l) ** -0.2
        model = gaussian_filter(model, fwhm_b / (2.3548 * scale), mode="constant", truncate=4.0)
        if cfg["noise"]:
            sky = 10.0 ** (-0.4 * (cfg["sky_mag_per_arcsec2"][band] - zp[band])) * pix_area
            model = rng.poisson(np.clip(model, 0, None) + sky).astype(np.float64) - sky
        image[bi] = model
        # intrinsic total magnitude in this band (sum over components, reference fluxes)
        f_b = sum(f * to_band(sed) for _, sed, f in comps)
        p[f"mag_{band}"] = float(zp[band] - 2.5 * math.log10(max(f_b, 1e-30)))
    p["n_contaminants"] = len(extra)
    return image, p


def asinh_rgb(image: np.ndarray, q: float = 8.0, stretch: float | None = None,
              weights: tuple[float, float, float] = (0.9, 1.0, 1.35)) -> np.ndarray:
    """Lupton-style asinh RGB composite (H, W, 3) in [0, 1] from a (3, H, W) g,r,i cube
    (i, r, g -> R, G, B, scaled by ``weights`` so old populations look yellow, young blue)."""
    img = np.clip(np.asarray(image, dtype=np.float64)[::-1], 0, None)
    img = img * np.asarray(weights, dtype=np.float64)[:, None, None]
    mean = img.mean(axis=0)
    if stretch is None:
        stretch = max(float(np.percentile(mean, 99.5)), 1e-12)
    f = np.arcsinh(q * mean / stretch) / q
    with np.errstate(invalid="ignore", divide="ignore"):
        rgb = np.where(mean > 0, img * f / np.maximum(mean, 1e-30), 0.0)
    rgb /= max(float(rgb.max()), 1e-12)
    return np.clip(np.moveaxis(rgb, 0, -1), 0, 1)
