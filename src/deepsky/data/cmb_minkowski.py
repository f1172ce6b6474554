"""Minkowski functionals of 2D fields (area, boundary length, Euler characteristic of the excursion
set u >= nu), by pixel counting, with the analytic expectation for Gaussian fields.

Estimators (per unit area; lengths in the unit of `pixel`):
- area fraction: the share of pixels at or above the threshold;
- boundary length: (pi / 4) x (threshold crossings between horizontal and vertical neighbours per
  neighbour pair) / pixel, the Cauchy-Crofton formula for isotropic curves;
- Euler characteristic: Gray's 2x2-quad counting, (n(one pixel set) - n(three pixels set)) / 4 per
  quad, the mean of the 4- and 8-connected counts (no bias on diagonal saddles).
Only neighbour pairs and quads inside the patch count: no edge effects, unbiased for stationary fields.

Gaussian field with variance s0^2 and gradient variance s1^2 = <|grad u|^2>, nu in units of s0,
lambda = s1^2 / (2 s0^2) (Tomita 1986; Schmalzing & Gorski 1998):
  area = erfc(nu / sqrt 2) / 2,  length = sqrt(lambda) / 2 exp(-nu^2 / 2),
  euler = lambda / (2 pi)^(3/2) nu exp(-nu^2 / 2).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

FUNCTIONALS = ("area", "boundary", "euler")


def minkowski_functionals(fields: np.ndarray, thresholds: np.ndarray, pixel: float = 1.0) -> dict[str, np.ndarray]:
    """{"area", "boundary", "euler"}: arrays (N, T) for fields (N, H, W) (or (T,) for one (H, W) field)."""
    fields = np.asarray(fields, dtype=np.float64)
    single = fields.ndim == 2
    fields = fields[None] if single else fields
    thresholds = np.asarray(thresholds, dtype=np.float64)
    above = fields[:, None] >= thresholds[None, :, None, None]  # (N, T, H, W)
    area = above.mean(axis=(-2, -1))
    cross_x = (above[..., :, 1:] != above[..., :, :-1]).mean(axis=(-2, -1))
    cross_y = (above[..., 1:, :] != above[..., :-1, :]).mean(axis=(-2, -1))
    boundary = np.pi / 4 * (cross_x + cross_y) / pixel
    count = (above[..., :-1, :-1].astype(np.int8) + above[..., 1:, :-1] + above[..., :-1, 1:] + above[..., 1:, 1:])
    euler = ((count == 1).mean(axis=(-2, -1)) - (count == 3).mean(axis=(-2, -1))) / 4 / pixel**2
    out = {"area": area, "boundary": boundary, "euler": euler}
    return {k: v[0] for k, v in out.items()} if single else out


def gradient_ratio(fields: np.ndarray, pixel: float = 1.0) -> float:
    """lambda = <|grad u|^2> / (2 <u^2>) of fields (N, H, W), means removed; five-point differences
    (fourth order: central differences would underestimate it by ~5 % on fields smoothed over 3 pixels)."""
    fields = np.asarray(fields, dtype=np.float64)
    fields = fields - fields.mean(axis=(-2, -1), keepdims=True)
    f = fields
    gx = (-f[..., 2:-2, 4:] + 8 * f[..., 2:-2, 3:-1] - 8 * f[..., 2:-2, 1:-3] + f[..., 2:-2, :-4]) / (12 * pixel)
    gy = (-f[..., 4:, 2:-2] + 8 * f[..., 3:-1, 2:-2] - 8 * f[..., 1:-3, 2:-2] + f[..., :-4, 2:-2]) / (12 * pixel)
    return float(np.mean(gx**2 + gy**2) / (2 * np.mean(fields**2)))


def gaussian_expectation(thresholds: np.ndarray, lam: float) -> dict[str, np.ndarray]:
    """The three functionals per unit area of a Gaussian field at thresholds nu (units of its sigma)."""
    nu = np.asarray(thresholds, dtype=np.float64)
    gauss = np.exp(-(nu**2) / 2)
    return {
        "area": 0.5 * erfc(nu / np.sqrt(2)),
        "boundary": np.sqrt(lam) / 2 * gauss,
        "euler": lam / (2 * np.pi) ** 1.5 * nu * gauss,
    }
