"""Default configuration and random draws for the strong-lens cutout simulator.

All distributions used by :mod:`deepsky.data.lenses` live here, in
``DEFAULT_LENS_SIMULATION``; the JSON schema
``workflow/schemas/fragments/lens_simulation.yaml`` documents every key.

Conventions
-----------
* Angles on the sky in arcsec, position angles in radians (drawn uniformly
  unless stated otherwise).
* ``[lo, hi]`` pairs are uniform ranges (integer ranges are inclusive).
* Magnitudes are AB-like total magnitudes in the ``reference_band``; the other
  bands follow from per-population colours ``m_band - m_ref`` given as ranges.
  One "redness" ``t ~ U(0, 1)`` per object interpolates every colour range
  (so g-i and r-i stay correlated), plus Gaussian ``colour_scatter``.
* Counts: a magnitude ``m`` gives ``exposure_time * 10**(-0.4 (m - zero_point))``
  counts (zero point = magnitude of 1 count/s), the sky gives
  ``exposure_time * 10**(-0.4 (sky_mag - zero_point)) * pixel_scale**2``
  counts per pixel.  Noise = Poisson(model + sky) + Normal(0, read_noise).
"""

from __future__ import annotations

import copy
import math

import numpy as np

LENS_KINDS = ("lens",)
NONLENS_KINDS = ("galaxy", "ring", "spiral", "companion", "blue_neighbour")
ALL_KINDS = LENS_KINDS + NONLENS_KINDS

_RED = {"g": [1.3, 2.1], "r": [0.4, 0.8]}  # luminous red galaxy colours, m - m_i
_BLUE = {"g": [-0.1, 0.7], "r": [-0.05, 0.35]}  # star-forming source colours

DEFAULT_LENS_SIMULATION: dict = {
    "image_size": 48,
    "pixel_scale": 0.2,
    "supersampling_factor": 2,
    "noise": True,
    "subtract_sky": True,
    "lens_light": True,  # false: the central galaxy's light is left out (lens-light-subtracted data)
    "psf_model": "gaussian",
    "moffat_beta": 3.5,
    "reference_band": "i",
    # KiDS-like depths: 5 sigma (2" aperture) ~ 25.0 (g), 24.7 (r), 24.1 (i)
    "bands": [
        {"name": "g", "zero_point": 25.0, "exposure_time": 900.0, "sky_mag": 22.3,
         "read_noise": 5.0, "seeing_range": [0.75, 1.10]},
        {"name": "r", "zero_point": 25.0, "exposure_time": 1800.0, "sky_mag": 21.0,
         "read_noise": 5.0, "seeing_range": [0.55, 0.85]},
        {"name": "i", "zero_point": 25.0, "exposure_time": 1200.0, "sky_mag": 20.3,
         "read_noise": 5.0, "seeing_range": [0.65, 1.05]},
    ],
    "galaxy": {  # the central (lens or non-lens) galaxy, elliptical Sersic
        "mag_range": [18.0, 20.5],
        "colours": copy.deepcopy(_RED),
        "colour_scatter": 0.05,
        "R_sersic_range": [0.5, 1.6],
        "n_sersic_range": [3.0, 5.0],
        "q_range": [0.6, 1.0],
        "center_offset_max": 0.1,
    },
    "lens_mass": {  # SIE + external shear, centred on the galaxy
        "theta_E_range": [0.8, 2.5],
        "q_range": [0.5, 1.0],
        "misalignment_deg": 10.0,
        "shear_max": 0.08,
    },
    "source": {  # lensed Sersic + compact star-forming clumps
        "mag_range": [21.5, 24.5],
        "colours": copy.deepcopy(_BLUE),
        "colour_scatter": 0.05,
        "R_sersic_range": [0.1, 0.5],
        "n_sersic_range": [0.5, 2.0],
        "q_range": [0.4, 1.0],
        "offset_max": 0.7,
        "n_clumps_range": [0, 4],
        "clump_flux_fraction_range": [0.1, 0.5],
        "clump_sigma_range": [0.02, 0.08],
        "clump_spread": 1.5,
        "clump_bluer_range": [0.0, 0.4],
    },
    "ring": {  # unlensed blue (collisional) ring or tangential arc around the galaxy
        "mag_range": [19.5, 22.0],
        "colours": copy.deepcopy(_BLUE),
        "colour_scatter": 0.05,
        "radius_range": [0.8, 2.5],
        "width_range": [0.08, 0.3],
        "q_range": [0.6, 1.0],
        "center_offset_max": 0.15,
        "arc_probability": 0.5,
        "arc_extent_deg_range": [50.0, 180.0],
        "lopsidedness_range": [0.0, 0.8],
        "n_knots_range": [0, 5],
        "knot_flux_fraction_range": [0.1, 0.4],
        "knot_sigma_range": [0.03, 0.1],
    },
    "spiral": {  # blue exponential disc with logarithmic spiral arms around the galaxy
        "mag_range": [19.0, 21.5],
        "colours": {"g": [0.3, 1.0], "r": [0.1, 0.45]},
        "colour_scatter": 0.05,
        "bulge_mag_offset_range": [0.5, 2.0],
        "scale_length_range": [0.6, 1.5],
        "n_arms_range": [2, 3],
        "pitch_deg_range": [12.0, 30.0],
        "arm_sharpness_range": [2.0, 6.0],
        "arm_fraction_range": [0.5, 0.9],
        "q_range": [0.6, 1.0],
        "n_knots_range": [0, 6],
        "knot_flux_fraction_range": [0.05, 0.2],
        "knot_sigma_range": [0.03, 0.1],
    },
    "companion": {  # second red galaxy close to the central one
        "mag_offset_range": [0.0, 2.0],
        "colours": copy.deepcopy(_RED),
        "colour_scatter": 0.05,
        "separation_range": [1.0, 3.5],
        "R_sersic_range": [0.3, 1.0],
        "n_sersic_range": [2.0, 5.0],
        "q_range": [0.5, 1.0],
    },
    "blue_neighbour": {  # unlensed, undistorted blue galaxy (source-like morphology)
        "mag_range": [20.5, 23.0],
        "colours": copy.deepcopy(_BLUE),
        "colour_scatter": 0.05,
        "separation_range": [1.0, 3.5],
    },
}


def _deep_merge(base: dict, user: dict) -> dict:
    out = copy.deepcopy(base)
    for key, val in user.items():
        if isinstance(val, dict) and isinstance(out.get(key), dict) and key != "colours":
            out[key] = _deep_merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def merge_simulation_config(user: dict | None = None) -> dict:
    """User values over ``DEFAULT_LENS_SIMULATION`` (nested dicts merged, lists and
    ``colours`` mappings replaced), followed by consistency checks."""
    cfg = _deep_merge(DEFAULT_LENS_SIMULATION, user or {})
    check_simulation_config(cfg)
    return cfg


def check_simulation_config(cfg: dict) -> None:
    """Semantic checks the schema cannot express; raises ``ValueError``."""
    names = [b["name"] for b in cfg["bands"]]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate band names in {names}")
    ref = cfg["reference_band"]
    if ref not in names:
        raise ValueError(f"reference_band {ref!r} not among bands {names}")
    for section, sub in cfg.items():
        if not isinstance(sub, dict):
            continue
        for key, val in sub.items():
            if key.endswith("_range") and val[0] > val[1]:
                raise ValueError(f"{section}.{key}: lower bound {val[0]} > upper {val[1]}")
        for band in sub.get("colours", {}):
            if band not in names:
                raise ValueError(f"{section}.colours: unknown band {band!r} (bands: {names})")
        colours = sub.get("colours")
        missing = [b for b in names if colours is not None and b != ref and b not in colours]
        if missing:
            raise ValueError(f"{section}.colours: no colour range for bands {missing}")
    if not 32 <= cfg["image_size"] <= 128:
        raise ValueError(f"image_size must be in [32, 128], got {cfg['image_size']}")


# ----------------------------------------------------------------- random draws
def uniform(rng: np.random.Generator, lohi) -> float:
    return float(rng.uniform(lohi[0], lohi[1]))


def integer(rng: np.random.Generator, lohi) -> int:
    return int(rng.integers(lohi[0], lohi[1] + 1))


def draw_mags(rng: np.random.Generator, pop: dict, cfg: dict, m_ref: float | None = None) -> dict:
    """Per-band magnitudes: reference-band magnitude plus correlated colours."""
    if m_ref is None:
        m_ref = uniform(rng, pop["mag_range"])
    t = rng.uniform()
    mags = {}
    for band in cfg["bands"]:
        name = band["name"]
        if name == cfg["reference_band"]:
            mags[name] = m_ref
        else:
            lo, hi = pop["colours"][name]
            scatter = rng.normal(0.0, pop["colour_scatter"])
            mags[name] = m_ref + lo + t * (hi - lo) + float(scatter)
    return mags


def mag_to_counts(mag: float, band: dict) -> float:
    return band["exposure_time"] * 10.0 ** (-0.4 * (mag - band["zero_point"]))


def sky_counts(band: dict, pixel_scale: float) -> float:
    return mag_to_counts(band["sky_mag"], band) * pixel_scale**2


def polar(rng: np.random.Generator, r_range) -> tuple[float, float]:
    """Point at radius ~ U(r_range) and uniform angle."""
    r, ang = uniform(rng, r_range), rng.uniform(0.0, 2 * math.pi)
    return r * math.cos(ang), r * math.sin(ang)


def in_disc(rng: np.random.Generator, radius: float) -> tuple[float, float]:
    """Point uniform in area within ``radius``."""
    r, ang = radius * math.sqrt(rng.uniform()), rng.uniform(0.0, 2 * math.pi)
    return r * math.cos(ang), r * math.sin(ang)


def empty_params(cfg: dict) -> dict:
    """Template with every parameter key (NaN / 'none'), identical for all kinds."""
    bands = [b["name"] for b in cfg["bands"]]
    keys = ["galaxy_x", "galaxy_y", "galaxy_R_sersic", "galaxy_n_sersic", "galaxy_q",
            "galaxy_phi", "theta_E", "lens_q", "lens_phi", "lens_e1", "lens_e2",
            "gamma1", "gamma2", "source_x", "source_y", "source_beta_frac",
            "source_R_sersic", "source_n_sersic", "source_q", "source_phi", "n_clumps",
            "clump_flux_fraction", "source_magnification", "source_snr",
            "contaminant_x", "contaminant_y", "contaminant_radius", "contaminant_size",
            "contaminant_q", "contaminant_n_knots", "contaminant_snr"]
    params: dict = {"kind": "", "label": 0, "contaminant_type": "none"}
    params.update({k: math.nan for k in keys})
    for prefix in ("seeing", "sky_rms", "galaxy_mag", "source_mag", "contaminant_mag"):
        params.update({f"{prefix}_{b}": math.nan for b in bands})
    return params
