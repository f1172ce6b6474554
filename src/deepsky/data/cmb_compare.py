"""Generated against real CMB patches: binned power-spectrum ratio, pixel histogram (KS distance),
Minkowski functionals and diversity (mode collapse). Patches in muK, (N, n, n)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import pdist
from scipy.stats import ks_2samp

from deepsky.data.cmb_minkowski import FUNCTIONALS, gaussian_expectation, gradient_ratio, minkowski_functionals
from deepsky.data.cmb_spectrum import SpectrumEstimator, bin_edges

THRESHOLDS = np.linspace(-3.0, 3.0, 25)  # in units of the real patches' pixel sigma
MAX_PAIRS_PATCHES = 500  # pairwise distances on at most this many patches per set


def estimator_for(n_pixels: int, pixel_arcmin: float, bin_width: float = 2.0, apodisation: float = 0.5) -> SpectrumEstimator:
    return SpectrumEstimator(n_pixels, pixel_arcmin, bin_edges(n_pixels, pixel_arcmin, bin_width), apodisation)


def resolved_bins(estimator: SpectrumEstimator, ell_range) -> np.ndarray:
    """Bins lying entirely inside [ell_min, ell_max] (a little tolerance for rounding)."""
    lo, hi = ell_range
    edges = estimator.edges
    return (edges[:-1] >= lo * (1 - 1e-6)) & (edges[1:] <= hi * (1 + 1e-6))


def spectra_table(estimator: SpectrumEstimator, generated: np.ndarray, real: np.ndarray, resolved: np.ndarray) -> pd.DataFrame:
    """Per bin: mean and scatter of both sets' C_ell, their ratio and its sampling error."""
    c_gen, c_real = estimator(generated), estimator(real)
    mean_g, mean_r = c_gen.mean(0), c_real.mean(0)
    std_g, std_r = c_gen.std(0, ddof=1), c_real.std(0, ddof=1)
    ratio = mean_g / mean_r
    ratio_err = ratio * np.hypot(std_g / np.sqrt(len(c_gen)) / mean_g, std_r / np.sqrt(len(c_real)) / mean_r)
    return pd.DataFrame({
        "bin": np.arange(len(mean_r)),
        "ell": estimator.ell,
        "ell_lo": estimator.edges[:-1],
        "ell_hi": estimator.edges[1:],
        "n_modes": estimator.n_modes,
        "resolved": resolved,
        "cl_real_mean": mean_r, "cl_real_std": std_r,
        "cl_real_p16": np.percentile(c_real, 16, axis=0), "cl_real_p84": np.percentile(c_real, 84, axis=0),
        "cl_gen_mean": mean_g, "cl_gen_std": std_g,
        "cl_gen_p16": np.percentile(c_gen, 16, axis=0), "cl_gen_p84": np.percentile(c_gen, 84, axis=0),
        "ratio": ratio, "ratio_err": ratio_err,
    })


def minkowski_table(generated: np.ndarray, real: np.ndarray, pixel_arcmin: float) -> pd.DataFrame:
    """Per threshold and functional: mean and scatter over patches of both sets, and the Gaussian
    expectation for the real patches' sigma and gradient ratio. Lengths in degrees."""
    pixel_deg = pixel_arcmin / 60
    centre, sigma = float(real.mean()), float(real.std())
    mf_real = minkowski_functionals((real - centre) / sigma, THRESHOLDS, pixel_deg)
    mf_gen = minkowski_functionals((generated - centre) / sigma, THRESHOLDS, pixel_deg)
    gauss = gaussian_expectation(THRESHOLDS, gradient_ratio(real, pixel_deg))
    rows = []
    for name in FUNCTIONALS:
        rows.append(pd.DataFrame({
            "functional": name, "threshold": THRESHOLDS,
            "real_mean": mf_real[name].mean(0), "real_std": mf_real[name].std(0, ddof=1),
            "gen_mean": mf_gen[name].mean(0), "gen_std": mf_gen[name].std(0, ddof=1),
            "gaussian": gauss[name],
        }))
    return pd.concat(rows, ignore_index=True)


def mean_pairwise_distance(patches: np.ndarray, rng: np.random.Generator) -> float:
    """Mean Euclidean distance between patches (rms per pixel): low for a collapsed generator."""
    flat = patches.reshape(len(patches), -1).astype(np.float64)
    if len(flat) > MAX_PAIRS_PATCHES:
        flat = flat[rng.choice(len(flat), MAX_PAIRS_PATCHES, replace=False)]
    return float(pdist(flat).mean() / np.sqrt(flat.shape[1]))


def compare(generated: np.ndarray, real: np.ndarray, estimator: SpectrumEstimator, resolved: np.ndarray,
            seed: int = 0) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """(metrics, spectra table, Minkowski table) of generated against real patches.

    ps_ratio_worst / ps_ratio_median: largest and median |<C_gen> / <C_real> - 1| over resolved bins;
    ks_distance: two-sample Kolmogorov-Smirnov statistic of all pixel values (scipy; pixels are
    correlated, so no p-value is reported); mf_*_max_dev: largest |mean difference| of a Minkowski
    functional over thresholds in units of its patch-to-patch scatter; diversity_ratio: mean pairwise
    distance among generated over that among real patches (1 = as diverse, << 1 = mode collapse).
    """
    if generated.shape[1:] != real.shape[1:]:
        raise ValueError(f"generated patches are {generated.shape[1:]}, real ones {real.shape[1:]}")
    spectra = spectra_table(estimator, generated, real, resolved)
    minkowski = minkowski_table(generated, real, estimator.pixel_arcmin)
    inside = spectra[spectra["resolved"]]
    if inside.empty:
        raise ValueError("no power-spectrum bin lies inside the resolved multipole range; check bin_width")
    deviation = (inside["ratio"] - 1).abs()
    rng = np.random.default_rng(seed)
    metrics = {
        "ps_ratio_worst": float(deviation.max()),
        "ps_ratio_median": float(deviation.median()),
        "ps_ratio_worst_ell": float(inside.loc[deviation.idxmax(), "ell"]),
        "ps_ratio_min": float(inside["ratio"].min()),
        "ps_ratio_max": float(inside["ratio"].max()),
        "ps_ratio_err_median": float(inside["ratio_err"].median()),
        "ps_bins_within_10pct": float((deviation <= 0.10).mean()),
        "ps_real_scatter_median": float((inside["cl_real_std"] / inside["cl_real_mean"]).median()),
        "ps_resolved_bins": len(inside),
        "ks_distance": float(ks_2samp(generated.ravel(), real.ravel()).statistic),
        "pixel_std_real": float(real.std()),
        "pixel_std_gen": float(generated.std()),
        "diversity_real": mean_pairwise_distance(real, rng),
        "diversity_gen": mean_pairwise_distance(generated, rng),
    }
    metrics["diversity_ratio"] = metrics["diversity_gen"] / metrics["diversity_real"]
    for name in FUNCTIONALS:
        part = minkowski[minkowski["functional"] == name]
        scatter = part["real_std"].where(part["real_std"] > 0)
        metrics[f"mf_{name}_max_dev"] = float(((part["gen_mean"] - part["real_mean"]).abs() / scatter).max())
    return metrics, spectra, minkowski
