"""Domain randomisation for the lens simulator (source `simulate_lenses_randomised`).

The lens cutouts of `deepsky.data.lenses`, with the nuisance choices that one simulation fixes
drawn again for every image: the PSF profile (Gaussian or Moffat, and Moffat's beta), the depth
(exposure time), the sky brightness and the read noise. The other ranges (seeing, magnitudes,
colours, source morphology) are ordinary lens-simulation keys, widened in the config. A network
trained on such a mixture has seen many "surveys" and depends less on any one of them (Tobin et
al. 2017, domain randomisation).

Config: every `simulation` key of `simulate_lenses`, plus `randomise` (RANDOMISE_DEFAULTS).
"""

from __future__ import annotations

import copy

import numpy as np

from deepsky.data.lens_params import DEFAULT_LENS_SIMULATION, merge_simulation_config
from deepsky.data.lenses import render_lens_cutout

RANDOMISE_DEFAULTS = {
    "psf_models": ["gaussian", "moffat"],  # one drawn per image, equally likely
    "moffat_beta_range": [2.0, 5.0],
    "exposure_scale_range": [0.4, 1.6],  # multiplies every band's exposure time
    "sky_mag_offset_range": [-0.5, 0.5],  # added to every band's sky magnitude
    "read_noise_range": [3.0, 10.0],  # counts, the same in every band of one image
}


def merge_randomised_config(user: dict | None) -> dict:
    """The lens simulation config (defaults merged, checked) with a checked `randomise` block."""
    user = dict(user or {})
    randomise = {**RANDOMISE_DEFAULTS, **user.pop("randomise", {})}
    unknown = sorted(set(user) - set(DEFAULT_LENS_SIMULATION))
    if unknown:
        raise ValueError(f"unknown lens simulation keys {unknown} (allowed: {sorted(DEFAULT_LENS_SIMULATION)})")
    extra = sorted(set(randomise) - set(RANDOMISE_DEFAULTS))
    if extra:
        raise ValueError(f"unknown randomise keys {extra} (allowed: {sorted(RANDOMISE_DEFAULTS)})")
    for key, value in randomise.items():
        if key.endswith("_range") and value[0] > value[1]:
            raise ValueError(f"randomise.{key}: lower bound {value[0]} > upper {value[1]}")
    bad = sorted(set(randomise["psf_models"]) - {"gaussian", "moffat"})
    if bad or not randomise["psf_models"]:
        raise ValueError(f"randomise.psf_models must list gaussian and/or moffat, got {randomise['psf_models']}")
    cfg = merge_simulation_config(user)
    cfg["randomise"] = randomise
    return cfg


def draw_nuisance(rng: np.random.Generator, cfg: dict) -> tuple[dict, dict]:
    """(lens simulation config of this image, the drawn nuisance values)."""
    r = cfg["randomise"]
    drawn = {
        "psf_model": str(r["psf_models"][int(rng.integers(len(r["psf_models"])))]),
        "moffat_beta": float(rng.uniform(*r["moffat_beta_range"])),
        "exposure_scale": float(rng.uniform(*r["exposure_scale_range"])),
        "sky_mag_offset": float(rng.uniform(*r["sky_mag_offset_range"])),
        "read_noise": float(rng.uniform(*r["read_noise_range"])),
    }
    image_cfg = {k: v for k, v in cfg.items() if k != "randomise"}
    image_cfg["psf_model"], image_cfg["moffat_beta"] = drawn["psf_model"], drawn["moffat_beta"]
    image_cfg["bands"] = [
        {**copy.deepcopy(band), "exposure_time": band["exposure_time"] * drawn["exposure_scale"],
         "sky_mag": band["sky_mag"] + drawn["sky_mag_offset"], "read_noise": drawn["read_noise"]}
        for band in cfg["bands"]
    ]
    return image_cfg, drawn


def render_randomised_cutout(kind: str, rng: np.random.Generator, cfg: dict) -> tuple[np.ndarray, dict]:
    """One lens-simulator cutout of `kind` with its own PSF profile, depth and noise."""
    image_cfg, drawn = draw_nuisance(rng, cfg)
    image, params = render_lens_cutout(kind, rng, image_cfg)
    params.update(drawn)
    return image, params
