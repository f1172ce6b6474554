"""Strong-lens / contaminant cutout simulator (ground-based, KiDS/LSST-like by default;
:mod:`deepsky.data.lens_regression` holds HST-like settings).

Public API
----------
``LENS_KINDS``, ``NONLENS_KINDS``, ``DEFAULT_LENS_SIMULATION``,
``merge_simulation_config(user)`` and
``render_lens_cutout(kind, rng, cfg) -> (image, params)``.

Model
-----
Every cutout is a sum of *components*; each component has one unit-flux shape
(evaluated once with lenstronomy on a supersampled :class:`RegularGrid`, then
averaged to pixels) and per-band magnitudes, so colours cost nothing extra:

* ``galaxy`` (all kinds): elliptical Sersic, red colours; left out of the image
  (its parameters still drawn, so the lens mass stays centred on it) when
  ``lens_light`` is false, as in lens-light-subtracted data.
* ``source`` (kind ``lens``): SIE + SHEAR (``LensModel``) ray-shot Sersic plus
  Gaussian clumps (``LightModel``), blue colours.
* ``contaminant``: ``ring`` (elliptical Gaussian annulus or tangential arc,
  plus knots, unlensed), ``spiral`` (exponential disc with logarithmic spiral
  arms plus knots; the galaxy becomes its bulge), ``companion`` (second red
  Sersic), ``blue_neighbour`` (unlensed source-like blue galaxy).

Each band: ``sum_c counts_c,b * shape_c`` convolved with that band's PSF
(lenstronomy ``MultiGaussianConvolution`` for Gaussian, ``PixelKernelConvolution``
with ``kernel_moffat`` for Moffat), then Poisson noise on model + sky,
Gaussian read noise and (by default) sky subtraction.  Images are float32
``(n_bands, image_size, image_size)`` in counts per pixel; row index = y.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from lenstronomy.ImSim.Numerics.convolution import MultiGaussianConvolution, PixelKernelConvolution
from lenstronomy.ImSim.Numerics.grid import RegularGrid
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LightModel.light_model import LightModel
from lenstronomy.Util import kernel_util, param_util, util

from .lens_params import (
    ALL_KINDS,
    DEFAULT_LENS_SIMULATION,
    LENS_KINDS,
    NONLENS_KINDS,
    draw_mags,
    empty_params,
    in_disc,
    integer,
    mag_to_counts,
    merge_simulation_config,
    polar,
    sky_counts,
    uniform,
)

__all__ = ["LENS_KINDS", "NONLENS_KINDS", "DEFAULT_LENS_SIMULATION",
           "merge_simulation_config", "render_lens_cutout", "render_components"]


# ------------------------------------------------------------ cached objects
@functools.lru_cache(maxsize=32)
def _grid(image_size: int, pixel_scale: float, supersampling: int) -> RegularGrid:
    _, _, ra0, dec0, _, _, pix2angle, _ = util.make_grid_with_coordtransform(
        image_size, pixel_scale, inverse=False)
    return RegularGrid(image_size, image_size, pix2angle, ra0, dec0, supersampling)


@functools.lru_cache(maxsize=None)
def _lens_model() -> LensModel:
    return LensModel(["SIE", "SHEAR"])


@functools.lru_cache(maxsize=None)
def _light_model(profile: str, n: int = 1) -> LightModel:
    return LightModel([profile] * n)


# ------------------------------------------------------------------- shapes
class _Scene:
    """Coordinates of one cutout plus the list of (group, unit shape, mags)."""

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.pixel_scale = cfg["pixel_scale"]
        self.grid = _grid(cfg["image_size"], cfg["pixel_scale"], cfg["supersampling_factor"])
        self.x, self.y = self.grid.coordinates_evaluate
        self.dsub = self.pixel_scale / cfg["supersampling_factor"]
        self.components: list[tuple[str, np.ndarray | None, dict]] = []  # None: drawn, not shown

    def to_pixels(self, flux: np.ndarray, normalise: bool = False) -> np.ndarray:
        """Surface brightness on the subgrid -> flux per pixel."""
        img = self.grid.flux_array2image_low_high(flux)[0] * self.pixel_scale**2
        return img / max(img.sum(), 1e-30) if normalise else img

    def add(self, group: str, shape: np.ndarray | None, mags: dict) -> None:
        self.components.append((group, shape, mags))

    def sersic(self, x, y, R, n, q, phi, cx, cy) -> np.ndarray:
        e1, e2 = param_util.phi_q2_ellipticity(phi, q)
        kw = [{"amp": 1.0, "R_sersic": R, "n_sersic": n, "e1": e1, "e2": e2,
               "center_x": cx, "center_y": cy}]
        model = _light_model("SERSIC_ELLIPSE")
        return self.to_pixels(model.surface_brightness(x, y, kw) / model.total_flux(kw, norm=True)[0])

    def gaussians(self, x, y, xs, ys, sigmas, weights) -> np.ndarray:
        """Sum of round Gaussians with total flux ``weights`` (sigma floored to
        half a sub-pixel so the subgrid samples them without aliasing)."""
        sig = np.sqrt(np.asarray(sigmas) ** 2 + (0.5 * self.dsub) ** 2)
        kw = [{"amp": float(w), "sigma": float(s), "center_x": float(a), "center_y": float(b)}
              for a, b, s, w in zip(xs, ys, sig, weights)]
        return self.to_pixels(_light_model("GAUSSIAN", len(kw)).surface_brightness(x, y, kw))

    def ring(self, cx, cy, R, w, q, phi, theta0, arc_sigma, lopsided) -> np.ndarray:
        """Elliptical Gaussian annulus; arc if ``arc_sigma`` (rad) is finite."""
        xr, yr = _rotate(self.x - cx, self.y - cy, phi)
        r_ell = np.sqrt(q * xr**2 + yr**2 / q)
        theta = np.arctan2(yr / q, xr)
        light = np.exp(-0.5 * ((r_ell - R) / w) ** 2)
        if math.isfinite(arc_sigma):
            dtheta = np.angle(np.exp(1j * (theta - theta0)))
            light *= np.exp(-0.5 * (dtheta / arc_sigma) ** 2)
        else:
            light *= 1.0 + lopsided * np.cos(theta - theta0)
        return self.to_pixels(light, normalise=True)

    def spiral(self, cx, cy, h, m, pitch, sharp, frac, q, phi, theta0) -> np.ndarray:
        """Inclined exponential disc modulated by ``m`` logarithmic spiral arms."""
        xr, yr = _rotate(self.x - cx, self.y - cy, phi)
        yr = yr / q
        r = np.hypot(xr, yr) + 1e-3
        psi = np.arctan2(yr, xr) - np.log(r / h) / math.tan(pitch)
        arms = ((1.0 + np.cos(m * (psi - theta0))) / 2.0) ** sharp
        arms /= math.gamma(sharp + 0.5) / (math.sqrt(math.pi) * math.gamma(sharp + 1.0))
        taper = 1.0 - np.exp(-((r / (0.7 * h)) ** 2))
        light = np.exp(-r / h) * ((1.0 - frac) + frac * arms * taper)
        return self.to_pixels(light, normalise=True)


def _rotate(dx, dy, phi):
    c, s = math.cos(phi), math.sin(phi)
    return c * dx + s * dy, -s * dx + c * dy


def _shift_mags(mags: dict, dm) -> dict:
    return {b: m + (dm[b] if isinstance(dm, dict) else dm) for b, m in mags.items()}


def _flux_split(mags: dict, fraction: float) -> tuple[dict, dict]:
    """Split a total magnitude into (1 - fraction, fraction) parts."""
    return (_shift_mags(mags, -2.5 * math.log10(1.0 - fraction)),
            _shift_mags(mags, -2.5 * math.log10(fraction)))


# ------------------------------------------------------------ kind builders
def _galaxy(scene: _Scene, rng, p: dict) -> None:
    pop = scene.cfg["galaxy"]
    p["galaxy_x"], p["galaxy_y"] = in_disc(rng, pop["center_offset_max"])
    mags = draw_mags(rng, pop, scene.cfg)
    p["galaxy_R_sersic"] = uniform(rng, pop["R_sersic_range"])
    p["galaxy_n_sersic"] = uniform(rng, pop["n_sersic_range"])
    p["galaxy_q"] = uniform(rng, pop["q_range"])
    p["galaxy_phi"] = float(rng.uniform(0.0, math.pi))
    shape = None  # with lens_light false the draws above still place the mass, but no light is added
    if scene.cfg["lens_light"]:
        shape = scene.sersic(scene.x, scene.y, p["galaxy_R_sersic"], p["galaxy_n_sersic"],
                             p["galaxy_q"], p["galaxy_phi"], p["galaxy_x"], p["galaxy_y"])
    scene.add("galaxy", shape, mags)
    _set_mags(p, "galaxy_mag", mags)


def _set_mags(p: dict, prefix: str, mags: dict) -> None:
    for band, mag in mags.items():
        p[f"{prefix}_{band}"] = float(mag)


def _clumpy_galaxy(scene, rng, x, y, cx, cy, mags, group) -> dict:
    """Source-like blue Sersic + clumps evaluated at (x, y) (ray-shot or not)."""
    pop, cfg = scene.cfg["source"], scene.cfg
    d = {"R": uniform(rng, pop["R_sersic_range"]), "n": uniform(rng, pop["n_sersic_range"]),
         "q": uniform(rng, pop["q_range"]), "phi": float(rng.uniform(0.0, math.pi)),
         "n_clumps": integer(rng, pop["n_clumps_range"]), "frac": 0.0}
    main_mags = mags
    if d["n_clumps"] > 0:
        d["frac"] = uniform(rng, pop["clump_flux_fraction_range"])
        spread = pop["clump_spread"] * d["R"]
        pos = np.array([in_disc(rng, spread) for _ in range(d["n_clumps"])]).reshape(-1, 2)
        sigmas = rng.uniform(*pop["clump_sigma_range"], size=d["n_clumps"])
        weights = rng.dirichlet(np.ones(d["n_clumps"]))
        names = [b["name"] for b in cfg["bands"]]
        iref, bluer = names.index(cfg["reference_band"]), uniform(rng, pop["clump_bluer_range"])
        dist = {b: abs(i - iref) / max(len(names) - 1, 1) for i, b in enumerate(names)}
        main_mags, clump_mags = _flux_split(mags, d["frac"])
        clump_mags = _shift_mags(clump_mags, {b: -bluer * dist[b] for b in names})
        shape = scene.gaussians(x, y, cx + pos[:, 0], cy + pos[:, 1], sigmas, weights)
        scene.add(group, shape, clump_mags)
    shape = scene.sersic(x, y, d["R"], d["n"], d["q"], d["phi"], cx, cy)
    scene.add(group, shape, main_mags)
    d["main_shape"] = shape
    return d


def _lens(scene: _Scene, rng, p: dict) -> None:
    cfg, mass, src = scene.cfg, scene.cfg["lens_mass"], scene.cfg["source"]
    gx, gy = p["galaxy_x"], p["galaxy_y"]
    p["theta_E"] = uniform(rng, mass["theta_E_range"])
    p["lens_q"] = uniform(rng, mass["q_range"])
    p["lens_phi"] = float((p["galaxy_phi"] + math.radians(
        rng.normal(0.0, mass["misalignment_deg"]))) % math.pi)
    p["lens_e1"], p["lens_e2"] = (float(e) for e in param_util.phi_q2_ellipticity(p["lens_phi"], p["lens_q"]))
    gamma, gphi = uniform(rng, [0.0, mass["shear_max"]]), float(rng.uniform(0.0, math.pi))
    p["gamma1"], p["gamma2"] = gamma * math.cos(2 * gphi), gamma * math.sin(2 * gphi)
    kw_lens = [{"theta_E": p["theta_E"], "e1": p["lens_e1"], "e2": p["lens_e2"],
                "center_x": gx, "center_y": gy},
               {"gamma1": p["gamma1"], "gamma2": p["gamma2"], "ra_0": gx, "dec_0": gy}]
    bx, by = _lens_model().ray_shooting(scene.x, scene.y, kw_lens)
    dx, dy = in_disc(rng, src["offset_max"] * p["theta_E"])
    p["source_x"], p["source_y"] = gx + dx, gy + dy
    p["source_beta_frac"] = math.hypot(dx, dy) / p["theta_E"]
    mags = draw_mags(rng, src, cfg)
    d = _clumpy_galaxy(scene, rng, bx, by, p["source_x"], p["source_y"], mags, "source")
    p.update(source_R_sersic=d["R"], source_n_sersic=d["n"], source_q=d["q"],
             source_phi=d["phi"], n_clumps=float(d["n_clumps"]), clump_flux_fraction=d["frac"],
             source_magnification=float(d["main_shape"].sum()))
    _set_mags(p, "source_mag", mags)


def _ring(scene: _Scene, rng, p: dict) -> None:
    pop = scene.cfg["ring"]
    cx, cy = in_disc(rng, pop["center_offset_max"])
    cx, cy = cx + p["galaxy_x"], cy + p["galaxy_y"]
    mags = draw_mags(rng, pop, scene.cfg)
    R, w = uniform(rng, pop["radius_range"]), uniform(rng, pop["width_range"])
    q, phi, theta0 = uniform(rng, pop["q_range"]), rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)
    is_arc = rng.uniform() < pop["arc_probability"]
    arc_sigma = math.radians(uniform(rng, pop["arc_extent_deg_range"])) / 2.355 if is_arc else math.inf
    shape = scene.ring(cx, cy, R, w, q, phi, theta0, arc_sigma, uniform(rng, pop["lopsidedness_range"]))
    n_knots = integer(rng, pop["n_knots_range"])
    if n_knots:
        spread = arc_sigma if is_arc else math.pi
        ang = theta0 + rng.uniform(-spread, spread, n_knots)
        shape = _add_knots(scene, rng, pop, shape, (cx, cy, phi),
                           R / math.sqrt(q) * np.cos(ang), R * math.sqrt(q) * np.sin(ang))
    scene.add("contaminant", shape, mags)
    p.update(contaminant_type="arc" if is_arc else "ring", contaminant_x=cx, contaminant_y=cy,
             contaminant_radius=R, contaminant_size=w, contaminant_q=q,
             contaminant_n_knots=float(n_knots))
    _set_mags(p, "contaminant_mag", mags)


def _add_knots(scene: _Scene, rng, pop: dict, shape, frame, kx, ky) -> np.ndarray:
    """Mix Gaussian knots at (kx, ky) of the rotated frame (cx, cy, phi) into ``shape``."""
    cx, cy, phi = frame
    c, s, n = math.cos(phi), math.sin(phi), len(kx)
    knots = scene.gaussians(scene.x, scene.y, cx + c * kx - s * ky, cy + s * kx + c * ky,
                            rng.uniform(*pop["knot_sigma_range"], n), rng.dirichlet(np.ones(n)))
    f = uniform(rng, pop["knot_flux_fraction_range"])
    return (1.0 - f) * shape + f * knots


def _spiral(scene: _Scene, rng, p: dict) -> None:
    pop = scene.cfg["spiral"]
    # the central red galaxy becomes a fainter bulge
    group, shape, mags = scene.components.pop()
    mags = _shift_mags(mags, uniform(rng, pop["bulge_mag_offset_range"]))
    scene.add(group, shape, mags)
    _set_mags(p, "galaxy_mag", mags)
    disc_mags = draw_mags(rng, pop, scene.cfg)
    h, m = uniform(rng, pop["scale_length_range"]), integer(rng, pop["n_arms_range"])
    pitch = math.radians(uniform(rng, pop["pitch_deg_range"]))
    q, phi, theta0 = uniform(rng, pop["q_range"]), rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)
    cx, cy = p["galaxy_x"], p["galaxy_y"]
    shape = scene.spiral(cx, cy, h, m, pitch, uniform(rng, pop["arm_sharpness_range"]),
                         uniform(rng, pop["arm_fraction_range"]), q, phi, theta0)
    n_knots = integer(rng, pop["n_knots_range"])
    if n_knots:  # HII regions on the arm crests
        r = rng.uniform(0.8 * h, 2.5 * h, n_knots)
        ang = theta0 + 2 * math.pi * rng.integers(0, m, n_knots) / m + np.log(r / h) / math.tan(pitch)
        shape = _add_knots(scene, rng, pop, shape, (cx, cy, phi), r * np.cos(ang), q * r * np.sin(ang))
    scene.add("contaminant", shape, disc_mags)
    p.update(contaminant_type="spiral", contaminant_x=cx, contaminant_y=cy,
             contaminant_size=h, contaminant_q=q, contaminant_n_knots=float(n_knots))
    _set_mags(p, "contaminant_mag", disc_mags)


def _companion(scene: _Scene, rng, p: dict) -> None:
    pop, ref = scene.cfg["companion"], scene.cfg["reference_band"]
    dx, dy = polar(rng, pop["separation_range"])
    cx, cy = p["galaxy_x"] + dx, p["galaxy_y"] + dy
    m_ref = p[f"galaxy_mag_{ref}"] + uniform(rng, pop["mag_offset_range"])
    mags = draw_mags(rng, pop, scene.cfg, m_ref=m_ref)
    R, n = uniform(rng, pop["R_sersic_range"]), uniform(rng, pop["n_sersic_range"])
    q, phi = uniform(rng, pop["q_range"]), float(rng.uniform(0, math.pi))
    scene.add("contaminant", scene.sersic(scene.x, scene.y, R, n, q, phi, cx, cy), mags)
    p.update(contaminant_type="companion", contaminant_x=cx, contaminant_y=cy,
             contaminant_radius=math.hypot(dx, dy), contaminant_size=R, contaminant_q=q)
    _set_mags(p, "contaminant_mag", mags)


def _blue_neighbour(scene: _Scene, rng, p: dict) -> None:
    pop = scene.cfg["blue_neighbour"]
    dx, dy = polar(rng, pop["separation_range"])
    cx, cy = p["galaxy_x"] + dx, p["galaxy_y"] + dy
    mags = draw_mags(rng, pop, scene.cfg)
    d = _clumpy_galaxy(scene, rng, scene.x, scene.y, cx, cy, mags, "contaminant")
    p.update(contaminant_type="blue_neighbour", contaminant_x=cx, contaminant_y=cy,
             contaminant_radius=math.hypot(dx, dy), contaminant_size=d["R"],
             contaminant_q=d["q"], contaminant_n_knots=float(d["n_clumps"]))
    _set_mags(p, "contaminant_mag", mags)


_FULL_KEYS = frozenset(DEFAULT_LENS_SIMULATION)
_BUILDERS = {"lens": _lens, "galaxy": lambda *a: None, "ring": _ring, "spiral": _spiral,
             "companion": _companion, "blue_neighbour": _blue_neighbour}


# ------------------------------------------------------------------- render
def _convolver(band_psf_fwhm: float, cfg: dict):
    if cfg["psf_model"] == "gaussian":
        return MultiGaussianConvolution([util.fwhm2sigma(band_psf_fwhm)], [1.0],
                                        cfg["pixel_scale"], truncation=5)
    size = min(2 * math.ceil(2.5 * band_psf_fwhm / cfg["pixel_scale"]) + 1,
               cfg["image_size"] - 1 + cfg["image_size"] % 2)
    kernel = kernel_util.kernel_moffat(size, cfg["pixel_scale"], band_psf_fwhm, cfg["moffat_beta"])
    return PixelKernelConvolution(kernel / kernel.sum(), convolution_type="fft")


def render_components(kind: str, rng: np.random.Generator, cfg: dict):
    """Draw one cutout.  Returns ``(image, params, components)`` where
    ``components`` maps 'galaxy'/'source'/'contaminant' to the noiseless,
    PSF-convolved (n_bands, N, N) float64 count images of that group (no
    'galaxy' entry when ``lens_light`` is false)."""
    if kind not in ALL_KINDS:
        raise ValueError(f"unknown lens-cutout kind {kind!r}; allowed: {', '.join(ALL_KINDS)}")
    if cfg is None or not _FULL_KEYS.issubset(cfg):  # a partial (user) config: merge it first
        cfg = merge_simulation_config(cfg)
    scene, params = _Scene(cfg), empty_params(cfg)
    params["kind"], params["label"] = kind, int(kind in LENS_KINDS)
    bands = cfg["bands"]
    for band in bands:
        params[f"seeing_{band['name']}"] = uniform(rng, band["seeing_range"])
    _galaxy(scene, rng, params)
    _BUILDERS[kind](scene, rng, params)

    n, nb = cfg["image_size"], len(bands)
    groups = {}
    for group, shape, mags in scene.components:
        if shape is None:  # the galaxy (or spiral bulge) with lens_light false
            continue
        img = groups.setdefault(group, np.zeros((nb, n, n)))
        for ib, band in enumerate(bands):
            img[ib] += mag_to_counts(mags[band["name"]], band) * shape
    for img in groups.values():
        for ib, band in enumerate(bands):
            img[ib] = _convolver(params[f"seeing_{band['name']}"], cfg).convolution2d(img[ib])
    model = np.clip(sum(groups.values()) if groups else np.zeros((nb, n, n)), 0.0, None)
    sky = np.array([sky_counts(b, cfg["pixel_scale"]) for b in bands])[:, None, None]
    read = np.array([b["read_noise"] for b in bands])[:, None, None]
    var = model + sky + read**2
    for ib, band in enumerate(bands):
        params[f"sky_rms_{band['name']}"] = float(np.sqrt(sky[ib, 0, 0] + read[ib, 0, 0] ** 2))
    for group, key in (("source", "source_snr"), ("contaminant", "contaminant_snr")):
        if group in groups:
            params[key] = float(np.sqrt(np.sum(groups[group] ** 2 / var)))
    if cfg["noise"]:
        image = rng.poisson(model + sky).astype(np.float64) + rng.normal(0.0, 1.0, model.shape) * read
        if cfg["subtract_sky"]:
            image -= sky
    else:
        image = model + (0.0 if cfg["subtract_sky"] else sky)
    params = {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in params.items()}
    return image.astype(np.float32), params, groups


def render_lens_cutout(kind: str, rng: np.random.Generator, cfg: dict) -> tuple[np.ndarray, dict]:
    """Render one cutout of ``kind`` (see module docstring) with all randomness
    from ``rng``; ``cfg`` is a merged config (``merge_simulation_config``; a
    partial dict or None is merged on each call, which costs time).
    Returns float32 ``(n_bands, image_size, image_size)`` counts per pixel
    (sky-subtracted unless ``subtract_sky`` is false) and a flat params dict
    whose keys do not depend on ``kind`` (NaN / 'none' where not applicable)."""
    image, params, _ = render_components(kind, rng, cfg)
    return image, params
