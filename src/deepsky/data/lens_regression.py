"""Lens-parameter regression data as in Hezaveh, Perreault Levasseur & Marshall 2017 (Nature 548, 555).

Source ``simulate_lens_parameters``: lenses only, HST-like single-band (F814W) imaging with
fine pixels and the lens galaxy's light left out (the paper removed it from the real images with
ICA), rendered by :func:`deepsky.data.lenses.render_lens_cutout`.  The catalog carries the
paper's five targets of the SIE mass model:

* ``theta_E`` (arcsec): Einstein radius.
* ``epsilon_x``, ``epsilon_y``: complex ellipticity ``(1 - q) / (1 + q) * (cos 2 phi, sin 2 phi)``
  of the mass (lenstronomy's ``e1, e2``; ``phi`` the position angle from +x, ``q`` the axis ratio).
* ``x``, ``y`` (arcsec): lens centre relative to the cutout centre (the SIE sits on ``galaxy_x``,
  ``galaxy_y``; +x along columns, +y along rows).

The external shear and the source are nuisance parameters (in the catalog, not targets).
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from .lens_params import _deep_merge, merge_simulation_config
from .lenses import render_lens_cutout

__all__ = ["HST_LIKE_SIMULATION", "REGRESSION_TARGETS", "add_regression_targets",
           "merge_regression_config", "render_lens_cutout", "target_summary"]

_NO_COLOURS = {"colours": {}}  # one band: no colours (check_simulation_config wants none)

# Merged over DEFAULT_LENS_SIMULATION; a dataset's `simulation:` is merged over this.
HST_LIKE_SIMULATION: dict = {
    "image_size": 48,  # 3.84" field, as the paper's 96 x 0.04"
    "pixel_scale": 0.08,  # arcsec; ACS drizzled 0.04-0.05, coarsened 2x so a laptop can train on it
    "supersampling_factor": 2,
    "lens_light": False,  # lens light removed (the paper: ICA on the HST data)
    "psf_model": "gaussian",
    "reference_band": "F814W",
    "bands": [
        # ACS/WFC F814W: AB zero point 25.9 (1 e-/s), a ~2-orbit stack, the sky of a dark field
        {"name": "F814W", "zero_point": 25.9, "exposure_time": 2000.0, "sky_mag": 22.0,
         "read_noise": 5.0, "seeing_range": [0.08, 0.12]},
    ],
    "galaxy": {**_NO_COLOURS, "center_offset_max": 0.4},  # lens centre within 0.4" (a target)
    "lens_mass": {"theta_E_range": [0.5, 1.8], "q_range": [0.5, 1.0]},
    # compact high-z sources (R_e 0.05-0.3") inside half the Einstein radius, so most arcs fit the
    # field; integrated arc SNR ~ 50-1000 at this depth (catalog column source_snr)
    "source": {**_NO_COLOURS, "mag_range": [22.0, 25.0], "R_sersic_range": [0.05, 0.3], "offset_max": 0.5},
    "ring": copy.deepcopy(_NO_COLOURS),
    "spiral": copy.deepcopy(_NO_COLOURS),
    "companion": copy.deepcopy(_NO_COLOURS),
    "blue_neighbour": copy.deepcopy(_NO_COLOURS),
}

# target -> (catalog column it copies, unit); order as the paper's output vector
REGRESSION_TARGETS = {
    "theta_E": ("theta_E", "arcsec"),
    "epsilon_x": ("lens_e1", ""),
    "epsilon_y": ("lens_e2", ""),
    "x": ("galaxy_x", "arcsec"),
    "y": ("galaxy_y", "arcsec"),
}


def merge_regression_config(user: dict | None = None) -> dict:
    """``user`` over ``HST_LIKE_SIMULATION`` over ``DEFAULT_LENS_SIMULATION``, checked."""
    return merge_simulation_config(_deep_merge(HST_LIKE_SIMULATION, user or {}))


def add_regression_targets(catalog: pd.DataFrame) -> pd.DataFrame:
    """The catalog with the paper's target columns added (``theta_E`` is already there)."""
    out = catalog.copy()
    for name, (column, _) in REGRESSION_TARGETS.items():
        if name != column:
            out[name] = out[column].astype(float)
    return out


def target_bounds(cfg: dict) -> dict:
    """The range each target is drawn from, given a merged simulation config."""
    theta = cfg["lens_mass"]["theta_E_range"]
    q_min = cfg["lens_mass"]["q_range"][0]
    e_max = (1.0 - q_min) / (1.0 + q_min)
    r = cfg["galaxy"]["center_offset_max"]
    return {"theta_E": list(theta), "epsilon_x": [-e_max, e_max], "epsilon_y": [-e_max, e_max],
            "x": [-r, r], "y": [-r, r]}


def target_summary(catalog: pd.DataFrame, cfg: dict) -> dict:
    """For the dataset card: per target its catalog min/max, unit, source column and the
    range it is drawn from (``bound``)."""
    bounds = target_bounds(cfg)
    summary = {}
    for name, (column, unit) in REGRESSION_TARGETS.items():
        values = catalog[name].to_numpy(dtype=float)
        summary[name] = {"min": float(np.nanmin(values)), "max": float(np.nanmax(values)),
                         "unit": unit, "column": column, "bound": [float(b) for b in bounds[name]]}
    return summary
