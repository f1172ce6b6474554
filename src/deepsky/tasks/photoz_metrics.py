"""Photo-z scores and Gaussian-mixture redshift densities.

Point scores follow Pasquet+2019: dz = (z_phot - z_true) / (1 + z_true), sigma_NMAD =
1.4826 median(|dz - median(dz)|), outlier fractions |dz| > 0.15 and > 0.05 (Pasquet's), bias =
mean(dz). Densities are mixtures of 1D Gaussians (an MDN head, or a kernel density of kNN
neighbours / random-forest trees), scored as D'Isanto & Polsterer 2018 do: CRPS (closed form for a
Gaussian mixture, Grimit+2006), the PIT histogram (its Kolmogorov-Smirnov distance from uniform),
plus the coverage of the 68 % and 95 % highest-density regions.

Prediction-table columns of a mixture: mdn_weight_<k>, mdn_mean_<k>, mdn_sigma_<k> (k = 0..K-1).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import special, stats

OUTLIER_THRESHOLDS = {"outlier_frac_015": 0.15, "outlier_frac_005": 0.05}
# Pasquet et al. 2019 (A&A 621, A26), CNN on SDSS ugriz cutouts, r < 17.8, z < 0.4 (their outliers: |dz| > 0.05).
PASQUET19_SDSS = {"sigma_nmad": 0.0091, "outlier_frac_005": 0.0031}
MIXTURE_COLUMN = re.compile(r"mdn_(weight|mean|sigma)_(\d+)$")
GRID_POINTS = 1024
SQRT_TWO_PI = np.sqrt(2 * np.pi)
CHUNK = 512


def delta_z(z_pred, z_true) -> np.ndarray:
    z_true = np.asarray(z_true, dtype=float)
    return (np.asarray(z_pred, dtype=float) - z_true) / (1 + z_true)


def sigma_nmad(dz) -> float:
    dz = np.asarray(dz, dtype=float)
    return float(1.4826 * np.median(np.abs(dz - np.median(dz))))


def point_metrics(z_true, z_pred) -> dict[str, float]:
    dz = delta_z(z_pred, z_true)
    scores = {"sigma_nmad": sigma_nmad(dz), "bias": float(dz.mean())}
    scores.update({name: float(np.mean(np.abs(dz) > t)) for name, t in OUTLIER_THRESHOLDS.items()})
    return scores


class GaussianMixture:
    """Per-object mixtures of K 1D Gaussians: weights, means and sigmas of shape (N, K)."""

    def __init__(self, weights, means, sigmas):
        self.weights = np.atleast_2d(np.asarray(weights, dtype=float))
        self.means = np.atleast_2d(np.asarray(means, dtype=float))
        self.sigmas = np.atleast_2d(np.asarray(sigmas, dtype=float))
        if not (self.weights.shape == self.means.shape == self.sigmas.shape):
            raise ValueError("mixture weights, means and sigmas must have the same (N, K) shape")
        if (self.sigmas <= 0).any():
            raise ValueError("mixture sigmas must be positive")
        self.weights = self.weights / self.weights.sum(axis=1, keepdims=True)

    def __len__(self) -> int:
        return len(self.weights)

    def __getitem__(self, rows) -> "GaussianMixture":
        return GaussianMixture(self.weights[rows], self.means[rows], self.sigmas[rows])

    # ---- table columns
    def columns(self) -> dict[str, np.ndarray]:
        out = {}
        for k in range(self.weights.shape[1]):
            out[f"mdn_weight_{k}"] = self.weights[:, k]
            out[f"mdn_mean_{k}"] = self.means[:, k]
            out[f"mdn_sigma_{k}"] = self.sigmas[:, k]
        return out

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> "GaussianMixture | None":
        """The mixture stored in a prediction table, or None if it has no mdn_* columns."""
        found = {}
        for column in table.columns:
            match = MIXTURE_COLUMN.match(column)
            if match:
                found.setdefault(match[1], {})[int(match[2])] = column
        if not found:
            return None
        n = len(found["weight"])
        if any(set(found.get(p, {})) != set(range(n)) for p in ("weight", "mean", "sigma")):
            raise ValueError("prediction table has an incomplete set of mdn_weight/mean/sigma_<k> columns")
        pick = lambda part: table[[found[part][k] for k in range(n)]].to_numpy(dtype=float)  # noqa: E731
        return cls(pick("weight"), pick("mean"), pick("sigma"))

    # ---- densities
    def _expand(self, x):
        x = np.asarray(x, dtype=float)
        return x[..., None], (x.ndim == 2)

    def _standardised(self, x):
        x = np.asarray(x, dtype=float)
        shape = (slice(None), None, slice(None)) if x.ndim == 2 else (slice(None), slice(None))
        w, m, s = self.weights[shape], self.means[shape], self.sigmas[shape]
        return w, (x[..., None] - m) / s, s

    def pdf(self, x) -> np.ndarray:
        """Density at x of shape (N,) (one value per object) or (N, G) (a grid per object)."""
        w, t, s = self._standardised(x)
        return (w / (s * SQRT_TWO_PI) * np.exp(-0.5 * t * t)).sum(-1)

    def cdf(self, x) -> np.ndarray:
        w, t, _ = self._standardised(x)
        return (w * special.ndtr(t)).sum(-1)

    def support(self, n: int = GRID_POINTS) -> np.ndarray:
        """(N, n) grid per object covering, to 6 sigma, every component that carries weight."""
        matters = self.weights >= 1e-4 * self.weights.max(axis=1, keepdims=True)
        lo = np.where(matters, self.means - 6 * self.sigmas, np.inf).min(axis=1)
        hi = np.where(matters, self.means + 6 * self.sigmas, -np.inf).max(axis=1)
        return lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, n)[None]

    def _chunks(self):
        for start in range(0, len(self), CHUNK):
            yield slice(start, start + CHUNK)

    def mode(self) -> np.ndarray:
        """Highest-density redshift: grid maximum refined by a parabola through its neighbours."""
        out = np.empty(len(self))
        for rows in self._chunks():
            part = self[rows]
            grid = part.support()
            density = part.pdf(grid)
            best = np.clip(density.argmax(axis=1), 1, grid.shape[1] - 2)
            at = np.arange(len(part))
            y0, y1, y2 = density[at, best - 1], density[at, best], density[at, best + 1]
            step = grid[:, 1] - grid[:, 0]
            curvature = y0 - 2 * y1 + y2
            shift = np.where(curvature < 0, 0.5 * (y0 - y2) / np.where(curvature < 0, curvature, -1), 0.0)
            out[rows] = grid[at, best] + np.clip(shift, -1, 1) * step
        return out

    def quantile(self, q: float, iterations: int = 60) -> np.ndarray:
        """Redshift below which a fraction q of the density lies (bisection on the CDF)."""
        lo = (self.means - 10 * self.sigmas).min(axis=1)
        hi = (self.means + 10 * self.sigmas).max(axis=1)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            below = self.cdf(mid) < q
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    # ---- scores against the truth
    def pit(self, z_true) -> np.ndarray:
        """Probability integral transform: CDF at the true redshift (uniform if calibrated)."""
        return self.cdf(np.asarray(z_true, dtype=float))

    def crps(self, z_true) -> np.ndarray:
        """Continuous ranked probability score per object (closed form, Grimit+2006)."""
        y = np.asarray(z_true, dtype=float)[:, None]
        w, m, s = self.weights, self.means, self.sigmas
        first = (w * _a(y - m, s**2)).sum(1)
        pair = _a(m[:, :, None] - m[:, None, :], s[:, :, None] ** 2 + s[:, None, :] ** 2)
        second = np.einsum("nk,nkl,nl->n", w, pair, w)
        return first - 0.5 * second

    def hdr_mass(self, z_true) -> np.ndarray:
        """Probability inside the highest-density region whose edge passes through z_true:
        z_true lies in the p % HDR exactly when this is <= p."""
        z_true = np.asarray(z_true, dtype=float)
        out = np.empty(len(self))
        for rows in self._chunks():
            part = self[rows]
            grid = part.support()
            density = part.pdf(grid)
            level = part.pdf(z_true[rows])
            step = grid[:, 1] - grid[:, 0]
            out[rows] = np.where(density >= level[:, None], density, 0.0).sum(1) * step
        return np.clip(out, 0.0, 1.0)

    def stacked(self, grid: np.ndarray) -> np.ndarray:
        """Mean density of all objects on one common grid (the stacked n(z))."""
        total = np.zeros(len(grid))
        for rows in self._chunks():
            part = self[rows]
            total += part.pdf(np.broadcast_to(grid, (len(part), len(grid)))).sum(0)
        return total / max(1, len(self))


def _a(mu, var):
    sigma = np.sqrt(var)
    ratio = mu / sigma
    return 2 * sigma * stats.norm.pdf(ratio) + mu * (2 * stats.norm.cdf(ratio) - 1)


def density_metrics(z_true, mixture: GaussianMixture) -> dict[str, float]:
    pit = mixture.pit(z_true)
    mass = mixture.hdr_mass(z_true)
    return {
        "crps": float(mixture.crps(z_true).mean()),
        "pit_ks": float(stats.kstest(pit, "uniform").statistic),
        "hdr_coverage68": float(np.mean(mass <= 0.68)),
        "hdr_coverage95": float(np.mean(mass <= 0.95)),
    }


def photoz_metrics(table: pd.DataFrame) -> dict[str, float]:
    """Scores of one prediction table (columns z, z_pred and, for densities, mdn_*).

    A point estimate is a density concentrated on z_pred: its CRPS is the mean |z_pred - z|, and
    it has no PIT or interval coverage (NaN).
    """
    z, z_pred = table["z"].to_numpy(dtype=float), table["z_pred"].to_numpy(dtype=float)
    scores = point_metrics(z, z_pred)
    mixture = GaussianMixture.from_table(table)
    if mixture is None:
        scores.update({"crps": float(np.abs(z_pred - z).mean()), "pit_ks": float("nan"),
                       "hdr_coverage68": float("nan"), "hdr_coverage95": float("nan")})
    else:
        scores.update(density_metrics(z, mixture))
    return scores


def interval_columns(mixture: GaussianMixture) -> dict[str, np.ndarray]:
    """The table's point estimate (the mode) and the central 68 % interval (16th-84th percentiles)."""
    return {"z_pred": mixture.mode(), "z_lo68": mixture.quantile(0.16), "z_hi68": mixture.quantile(0.84)}


def kernel_mixture(samples: np.ndarray, min_sigma: float = 0.002) -> GaussianMixture:
    """Equal-weight Gaussian kernels on per-object redshift samples (kNN neighbours, forest trees),
    each as wide as Silverman's rule for that object's samples (at least `min_sigma` x (1 + z))."""
    samples = np.asarray(samples, dtype=float)
    n, k = samples.shape
    spread = np.minimum(samples.std(axis=1, ddof=1), stats.iqr(samples, axis=1) / 1.349)
    spread = np.where(spread > 0, spread, samples.std(axis=1, ddof=1))
    bandwidth = 0.9 * spread * k ** (-0.2)
    bandwidth = np.maximum(bandwidth, min_sigma * (1 + np.median(samples, axis=1)))
    return GaussianMixture(np.ones((n, k)), samples, np.repeat(bandwidth[:, None], k, axis=1))
