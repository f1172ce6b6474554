"""Flat-sky angular power spectra of square patches: FFT of the apodised patch, binned in ell.

For a patch of N x N pixels of side `pixel` (radians) the Fourier mode k (cycles per radian)
is the multipole ell = 2 pi |k|; the fundamental is ell_f = 2 pi / (N pixel) and the Nyquist
ell_N = pi / pixel. The estimator

    C(ell) = |FFT(w T) pixel^2|^2 / (N^2 pixel^2 <w^2>)

is unbiased for a periodic field with w = 1; on cut-out patches the window w (a separable Tukey
taper) stops the edges from leaking large-scale power into small scales, and <w^2> restores the
amplitude. `gaussian_field` draws periodic flat fields of a known spectrum to test it.
"""

from __future__ import annotations

import numpy as np
from scipy.signal.windows import tukey

ARCMIN = np.pi / (180 * 60)


def fundamental_ell(n_pixels: int, pixel_arcmin: float) -> float:
    return 2 * np.pi / (n_pixels * pixel_arcmin * ARCMIN)


def nyquist_ell(pixel_arcmin: float) -> float:
    return np.pi / (pixel_arcmin * ARCMIN)


def ell_grid(n_pixels: int, pixel_arcmin: float) -> np.ndarray:
    """The multipole of every FFT mode of an n x n patch, shaped like np.fft.fft2's output."""
    k = np.fft.fftfreq(n_pixels, d=pixel_arcmin * ARCMIN)
    return 2 * np.pi * np.hypot(k[:, None], k[None, :])


def bin_edges(n_pixels: int, pixel_arcmin: float, width: float = 2.0) -> np.ndarray:
    """Linear bins of `width` fundamentals from 0 to the Nyquist multipole (the last bin ends there)."""
    step = width * fundamental_ell(n_pixels, pixel_arcmin)
    top = nyquist_ell(pixel_arcmin)
    edges = np.arange(0.0, top, step)
    return np.append(edges, top) if top - edges[-1] > 0.5 * step else np.append(edges[:-1], top)


def apodisation(n_pixels: int, alpha: float = 0.5) -> np.ndarray:
    """Separable Tukey window (cosine taper over a fraction alpha of each side); alpha 0 = none."""
    w = tukey(n_pixels, alpha) if alpha > 0 else np.ones(n_pixels)
    return np.outer(w, w)


class SpectrumEstimator:
    """Binned flat-sky C_ell of many patches at once (one matrix product for all of them)."""

    def __init__(self, n_pixels: int, pixel_arcmin: float, edges: np.ndarray | None = None, alpha: float = 0.5):
        self.n, self.pixel_arcmin, self.alpha = int(n_pixels), float(pixel_arcmin), float(alpha)
        self.edges = bin_edges(self.n, self.pixel_arcmin) if edges is None else np.asarray(edges, float)
        self.window = apodisation(self.n, self.alpha)
        ell = ell_grid(self.n, self.pixel_arcmin).ravel()
        which = np.digitize(ell, self.edges) - 1
        which[(ell == 0) | (ell >= self.edges[-1])] = -1  # the mean and the corners beyond the last edge
        self.n_modes = np.bincount(which[which >= 0], minlength=len(self.edges) - 1)
        if (self.n_modes == 0).any():
            raise ValueError(f"power-spectrum bins {np.flatnonzero(self.n_modes == 0).tolist()} hold no Fourier mode: widen them")
        self._average = np.zeros((ell.size, len(self.n_modes)))
        keep = which >= 0
        self._average[np.flatnonzero(keep), which[keep]] = 1.0 / self.n_modes[which[keep]]
        self.ell = ell @ self._average  # mean multipole of the modes in each bin
        pixel = self.pixel_arcmin * ARCMIN
        self._norm = pixel**2 / (self.n**2 * np.mean(self.window**2))

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        """(N, n, n) or (n, n) patches -> (N, bins) or (bins,) binned C_ell, in the patches' units squared."""
        patches = np.asarray(patches, dtype=np.float64)
        single = patches.ndim == 2
        patches = patches[None] if single else patches
        if patches.shape[-2:] != (self.n, self.n):
            raise ValueError(f"patches are {patches.shape[-2:]}, the estimator was built for {self.n} x {self.n}")
        centred = patches - patches.mean(axis=(-2, -1), keepdims=True)
        power = np.abs(np.fft.fft2(centred * self.window)) ** 2 * self._norm
        cl = power.reshape(len(patches), -1) @ self._average
        return cl[0] if single else cl

    def binned_theory(self, ell: np.ndarray, cl: np.ndarray) -> np.ndarray:
        """A spectrum C(ell) averaged over the Fourier modes of each bin (what the estimator expects)."""
        modes = ell_grid(self.n, self.pixel_arcmin).ravel()
        return np.interp(modes, ell, cl) @ self._average

    def expected_scatter(self, cl_binned: np.ndarray) -> np.ndarray:
        """Standard deviation of one patch's binned C_ell for a Gaussian field (w = 1: 2 C^2 / n_modes;
        the taper lowers the effective number of modes by <w^2>^2 / <w^4>)."""
        w2 = self.window**2
        efficiency = np.mean(w2) ** 2 / np.mean(w2**2)
        return np.asarray(cl_binned) * np.sqrt(2.0 / (self.n_modes * efficiency))


def gaussian_field(ell: np.ndarray, cl: np.ndarray, n_pixels: int, pixel_arcmin: float, rng: np.random.Generator,
                   n_fields: int = 1) -> np.ndarray:
    """Periodic Gaussian flat fields (n_fields, n, n) with power spectrum C(ell) (interpolated, C(0) = 0).

    White noise of unit variance has C = pixel area; its Fourier modes scaled by sqrt(C / pixel area)
    have spectrum C, and the field stays real.
    """
    pixel = pixel_arcmin * ARCMIN
    modes = ell_grid(n_pixels, pixel_arcmin)
    amplitude = np.sqrt(np.clip(np.interp(modes, ell, cl), 0, None) / pixel**2)
    amplitude[0, 0] = 0.0
    white = rng.standard_normal((n_fields, n_pixels, n_pixels))
    return np.fft.ifft2(np.fft.fft2(white) * amplitude).real


def expected_binned(estimator: SpectrumEstimator, ell: np.ndarray, cl: np.ndarray, rng: np.random.Generator,
                    n_patches: int = 2048, oversample: int = 2, margin: int = 8) -> np.ndarray:
    """What the estimator returns on average for cut-out patches of a field with spectrum C(ell).

    Monte Carlo over Gaussian flat fields `margin` times larger than a patch (so that scales
    beyond the patch exist), drawn `oversample` times finer and point-sampled (so that power above
    the Nyquist multipole aliases as it does on the sky), then cut into patches: the taper's
    mode coupling, the mean subtraction and aliasing are all included. The Monte Carlo error is
    about expected_scatter / sqrt(n_patches).
    """
    n, s = estimator.n, int(oversample)
    per_field = margin * margin
    sums, count = np.zeros(len(estimator.n_modes)), 0
    while count < n_patches:
        field = gaussian_field(ell, cl, n * margin * s, estimator.pixel_arcmin / s, rng)[0][::s, ::s]
        patches = field.reshape(margin, n, margin, n).swapaxes(1, 2).reshape(per_field, n, n)
        sums += estimator(patches).sum(axis=0)
        count += per_field
    return sums / count


def dl_from_cl(ell: np.ndarray, cl: np.ndarray) -> np.ndarray:
    """D_ell = ell (ell + 1) C_ell / 2 pi, the way CMB spectra are plotted."""
    ell = np.asarray(ell, float)
    return ell * (ell + 1) * np.asarray(cl) / (2 * np.pi)
