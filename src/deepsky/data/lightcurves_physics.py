"""What each class of variable sky looks like, band by band: true flux against time.

No spectral templates are used (sncosmo's SALT2 and core-collapse models are downloaded at first
use, which this project does not allow): supernovae follow the parametric light curves fitted to
survey photometry (Bazin et al. 2009; Villar et al. 2019) with class-typical time scales, peak
luminosities and colours, time dilation and a crude blue-band fading with redshift (a stand-in for
K-corrections). RR Lyrae and eclipsing binaries are periodic with their textbook shapes; AGN vary
as a damped random walk (Kelly et al. 2009; MacLeod et al. 2010); quiet stars are constant.

Fluxes are in the PLAsTiCC convention: zero point 27.5 AB mag, so m = 27.5 - 2.5 log10(flux).
"""

from __future__ import annotations

import numpy as np

ZERO_POINT = 27.5
CLASS_NAMES = ["SNIa", "SNCC", "RRLyr", "EB", "AGN", "star"]
#: Effective wavelengths (Angstrom) of the bands the simulator knows (LSST-like).
WAVELENGTH = {"u": 3670.0, "g": 4830.0, "r": 6220.0, "i": 7550.0, "z": 8690.0}


def mag_to_flux(mag):
    return 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - ZERO_POINT))


# ---------------------------------------------------------------------------- parametric forms
def bazin(t, t0, tau_rise, tau_fall):
    """Bazin et al. (2009) shape, scaled to a maximum of 1: exp(-x/tau_fall) / (1 + exp(-x/tau_rise))."""
    x = np.asarray(t, dtype=float) - t0
    peak_x = tau_rise * np.log(tau_fall / tau_rise - 1.0)
    peak = np.exp(-peak_x / tau_fall) * (tau_fall - tau_rise) / tau_fall
    # exp(-x/tau_fall) / (1 + exp(-x/tau_rise)) written to avoid overflow far before t0.
    return np.exp(-x / tau_fall - np.logaddexp(0.0, -x / tau_rise)) / peak


def bazin_peak_time(t0, tau_rise, tau_fall):
    return t0 + tau_rise * np.log(tau_fall / tau_rise - 1.0)


def villar(t, t0, tau_rise, tau_fall, plateau, slope):
    """Villar et al. (2019): a sigmoid rise, a linear plateau decline `slope` (fraction per day)
    lasting `plateau` days, then an exponential fall. Amplitude 1 at the start of the plateau."""
    x = np.asarray(t, dtype=float) - t0
    rise = np.exp(-np.logaddexp(0.0, -x / tau_rise))
    on_plateau = 1.0 - slope * np.clip(x, 0.0, None)
    after = (1.0 - slope * plateau) * np.exp(-np.clip(x - plateau, 0.0, None) / tau_fall)
    return rise * np.where(x < plateau, on_plateau, after)


# ---------------------------------------------------------------------------- supernovae
# Rest-frame Bazin time scales (days) per band and peak colours relative to r (mag).
SN_IA = {"tau_rise": {"g": 1.8, "r": 2.0, "i": 2.3}, "tau_fall": {"g": 15.0, "r": 22.0, "i": 28.0},
         "colour": {"u": 0.3, "g": -0.1, "r": 0.0, "i": 0.5, "z": 0.5}, "peak_delay": {"g": -1.0, "r": 0.0, "i": 1.0}}
SN_IBC = {"tau_rise": {"g": 2.5, "r": 3.0, "i": 3.3}, "tau_fall": {"g": 14.0, "r": 20.0, "i": 24.0},
          "colour": {"u": 1.0, "g": 0.4, "r": 0.0, "i": -0.1, "z": -0.1}}
SN_IIP = {"colour": {"u": 0.5, "g": 0.1, "r": 0.0, "i": 0.0, "z": 0.0},
          "slope": {"u": 0.012, "g": 0.008, "r": 0.003, "i": 0.002, "z": 0.002}}
# Blue bands see the rest-frame UV at higher redshift, where supernovae are faint (mag per unit z).
UV_FADING = {"u": 3.0, "g": 2.0, "r": 0.6, "i": 0.0, "z": 0.0}


def _band_value(table: dict, band: str):
    if band in table:
        return table[band]
    # Bands outside the table take the nearest tabulated one in wavelength.
    nearest = min(table, key=lambda b: abs(WAVELENGTH[b] - WAVELENGTH[band]))
    return table[nearest]


def draw_sn_ia(rng, z: float) -> dict:
    stretch = rng.uniform(0.8, 1.2)
    # Brighter-slower (Phillips 1993) with 0.12 mag intrinsic scatter.
    return {"subtype": "Ia", "stretch": stretch, "abs_mag": -19.3 - 1.2 * (stretch - 1.0) + rng.normal(0, 0.12),
            "redshift": z}


def draw_sn_cc(rng, z: float) -> dict:
    if rng.random() < 0.6:
        return {"subtype": "IIP", "abs_mag": rng.normal(-16.8, 0.8), "redshift": z, "tau_rise": rng.uniform(2.0, 4.0),
                "plateau": rng.uniform(70.0, 110.0), "tau_fall": rng.uniform(8.0, 20.0), "stretch": 1.0}
    return {"subtype": "Ibc", "abs_mag": rng.normal(-17.5, 0.7), "redshift": z, "stretch": rng.uniform(0.8, 1.25)}


def sn_time_scales(params: dict, band: str) -> tuple[float, float]:
    """Observer-frame (rise, fall) time scales in days of a supernova in one band."""
    dilation = 1.0 + params["redshift"]
    if params["subtype"] == "IIP":
        return params["tau_rise"] * dilation, params["tau_fall"] * dilation
    model = SN_IA if params["subtype"] == "Ia" else SN_IBC
    s = params["stretch"] * dilation
    return _band_value(model["tau_rise"], band) * s, _band_value(model["tau_fall"], band) * s


def supernova_flux(t, band: str, params: dict, distmod: float):
    """True flux of a supernova peaking (in r, observer frame) at params['t_peak']."""
    z, subtype = params["redshift"], params["subtype"]
    model = {"Ia": SN_IA, "Ibc": SN_IBC, "IIP": SN_IIP}[subtype]
    peak_mag = params["abs_mag"] + distmod + _band_value(model["colour"], band) + _band_value(UV_FADING, band) * z
    peak_flux = mag_to_flux(peak_mag)
    tau_rise, tau_fall = sn_time_scales(params, band)
    dilation = 1.0 + z
    if subtype == "IIP":
        t0 = params["t_peak"] - 2.0 * tau_rise
        return peak_flux * villar(t, t0, tau_rise, tau_fall, params["plateau"] * dilation,
                                  _band_value(model["slope"], band) / dilation)
    delay = _band_value(model.get("peak_delay", {"r": 0.0}), band) * dilation
    t0 = params["t_peak"] + delay - (bazin_peak_time(0.0, tau_rise, tau_fall))
    flux = bazin(t, t0, tau_rise, tau_fall)
    if subtype == "Ia" and WAVELENGTH[band] > 7000:
        # The red second maximum of SNe Ia, ~28 rest-frame days after the first.
        width = 6.0 * params["stretch"] * dilation
        flux = flux + 0.35 * np.exp(-0.5 * ((t - params["t_peak"] - 28.0 * params["stretch"] * dilation) / width) ** 2)
    return peak_flux * flux


# ---------------------------------------------------------------------------- periodic variables
def rr_lyrae_shape(phase, rise_fraction: float):
    """Magnitude offset in [-0.5, 0.5] over one cycle: a fast brightening over `rise_fraction` of
    the period (phase 0 is maximum light), then a slow linear fading (RRab sawtooth; RRc rounder)."""
    phase = np.mod(phase, 1.0)
    fading = -0.5 + (phase / (1.0 - rise_fraction))
    brightening = 0.5 - (phase - (1.0 - rise_fraction)) / rise_fraction
    shape = np.where(phase < 1.0 - rise_fraction, fading, brightening)
    if rise_fraction >= 0.3:  # RRc: close to a sinusoid
        shape = 0.5 * np.cos(2 * np.pi * phase + np.pi)
    return shape


def draw_rr_lyrae(rng) -> dict:
    if rng.random() < 0.7:
        return {"subtype": "RRab", "period": float(np.clip(rng.normal(0.58, 0.07), 0.42, 0.85)),
                "amplitude": rng.uniform(0.6, 1.2), "rise_fraction": rng.uniform(0.12, 0.2),
                "mean_mag": rng.uniform(15.0, 20.0), "phase0": rng.random(), "g_r": rng.uniform(0.1, 0.35)}
    return {"subtype": "RRc", "period": rng.uniform(0.25, 0.42), "amplitude": rng.uniform(0.3, 0.6),
            "rise_fraction": 0.4, "mean_mag": rng.uniform(15.0, 20.0), "phase0": rng.random(),
            "g_r": rng.uniform(0.05, 0.25)}


def rr_lyrae_flux(t, band: str, params: dict):
    # Pulsation amplitudes shrink to the red (g 1, r 0.75, i 0.6 of the g amplitude).
    scale = float(np.interp(WAVELENGTH[band], [4830.0, 6220.0, 7550.0], [1.0, 0.75, 0.6]))
    colour = params["g_r"] * float(np.interp(WAVELENGTH[band], [4830.0, 6220.0, 7550.0], [1.0, 0.0, -0.5]))
    phase = np.asarray(t) / params["period"] + params["phase0"]
    mag = params["mean_mag"] + colour + params["amplitude"] * scale * rr_lyrae_shape(phase, params["rise_fraction"])
    return mag_to_flux(mag)


def draw_eclipsing_binary(rng) -> dict:
    common = {"mean_mag": rng.uniform(15.0, 20.0), "phase0": rng.random(), "g_r": rng.uniform(0.2, 1.0)}
    if rng.random() < 0.6:
        depth = rng.uniform(0.15, 0.6)
        return {"subtype": "detached", "period": float(np.exp(rng.uniform(np.log(0.5), np.log(10.0)))),
                "depth1": depth, "depth2": depth * rng.uniform(0.1, 0.9), "width": rng.uniform(0.015, 0.05),
                "secondary_phase": 0.5 + rng.uniform(-0.03, 0.03), "colour_slope": rng.uniform(-0.5, 0.5), **common}
    return {"subtype": "contact", "period": rng.uniform(0.25, 0.6), "ellipsoidal": rng.uniform(0.1, 0.35),
            "unequal": rng.uniform(0.0, 0.05), **common}


def eclipsing_binary_flux(t, band: str, params: dict):
    phase = np.mod(np.asarray(t) / params["period"] + params["phase0"], 1.0)
    colour = params["g_r"] * float(np.interp(WAVELENGTH[band], [4830.0, 6220.0, 7550.0], [1.0, 0.0, -0.5]))
    base = mag_to_flux(params["mean_mag"] + colour)
    if params["subtype"] == "contact":
        # W UMa: continuous light change, minima at phases 0 and 0.5 of unequal depth.
        shape = 1.0 - params["ellipsoidal"] * 0.5 * (1 + np.cos(4 * np.pi * phase)) - params["unequal"] * 0.5 * (1 + np.cos(2 * np.pi * phase))
        return base * shape
    # Detached: two eclipses; the secondary's depth depends on the band (the stars' colours differ).
    tilt = 1.0 + params["colour_slope"] * (WAVELENGTH[band] - 6220.0) / 6220.0
    distance1 = np.minimum(phase, 1.0 - phase)
    distance2 = np.abs(phase - params["secondary_phase"])
    dips = params["depth1"] * np.exp(-0.5 * (distance1 / params["width"]) ** 2)
    dips = dips + np.clip(params["depth2"] * tilt, 0.0, 0.95) * np.exp(-0.5 * (distance2 / params["width"]) ** 2)
    return base * (1.0 - np.clip(dips, 0.0, 0.98))


# ---------------------------------------------------------------------------- AGN and quiet stars
def draw_agn(rng) -> dict:
    z = rng.uniform(0.3, 2.5)
    tau_rest = float(np.exp(rng.normal(np.log(120.0), 0.4)))
    return {"subtype": "AGN", "redshift": z, "tau": tau_rest * (1 + z), "sf_inf": rng.uniform(0.12, 0.35),
            "mean_mag": rng.uniform(18.5, 22.0), "g_r": rng.normal(0.2, 0.1)}


def damped_random_walk(times, tau: float, sigma: float, rng):
    """Exact Ornstein-Uhlenbeck draws at (sorted) irregular times: stationary variance sigma^2."""
    times = np.asarray(times, dtype=float)
    x = np.empty(len(times))
    if not len(times):
        return x
    x[0] = rng.normal(0.0, sigma)
    decay = np.exp(-np.diff(times) / tau)
    kicks = rng.normal(0.0, 1.0, len(times) - 1) * sigma * np.sqrt(1.0 - decay**2)
    for k in range(1, len(times)):
        x[k] = x[k - 1] * decay[k - 1] + kicks[k - 1]
    return x


def agn_flux(times, bands, params: dict, rng):
    """All observations at once: one DRW (in mag) shared by the bands, larger in the blue."""
    order = np.argsort(times, kind="stable")
    walk = np.empty(len(times))
    walk[order] = damped_random_walk(times[order], params["tau"], params["sf_inf"] / np.sqrt(2.0), rng)
    wavelength = np.array([WAVELENGTH[b] for b in bands])
    scale = np.interp(wavelength, [4830.0, 6220.0, 7550.0], [1.0, 0.8, 0.65])
    colour = params["g_r"] * np.interp(wavelength, [4830.0, 6220.0, 7550.0], [1.0, 0.0, -0.7])
    return mag_to_flux(params["mean_mag"] + colour + scale * walk)


def draw_star(rng) -> dict:
    return {"subtype": "star", "mean_mag": rng.uniform(15.0, 21.5), "g_r": rng.uniform(0.2, 1.4)}


def star_flux(t, band: str, params: dict):
    # Main-sequence colours: r - i grows with g - r (about 0.4 of it).
    colour = params["g_r"] * float(np.interp(WAVELENGTH[band], [4830.0, 6220.0, 7550.0], [1.0, 0.0, -0.4]))
    return np.full(np.shape(t), mag_to_flux(params["mean_mag"] + colour))
