"""Simulated multi-band light curves observed with a survey's cadence.

A dataset folder holds `observations.parquet` (one row per observation: object, time, band, flux,
flux_err), `catalog.parquet` (one row per object: index, label, class_name, subtype, period,
redshift, time scales...) and `card.json` / `card.md` (class counts, cadence statistics, checksums).

The cadence (per object, as each sits in its own field): observing seasons of `season_days`, a
visit every `revisit_days` nights in a wide field or more often in a deep field, nights lost to
weather runs (a two-state Markov chain), `bands_per_visit` bands per visit. Errors are
heteroscedastic: a per-visit 5-sigma depth (seeing jitter) sets the sky noise, the source adds
Poisson noise and a calibration floor. Objects with fewer than `min_detections` points at S/N > 5
are redrawn, as a survey only alerts on what it detects.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from deepsky.data import lightcurves_physics as phys
from deepsky.data import storage

OBSERVATIONS = "observations.parquet"
OBSERVATION_COLUMNS = ("object", "time", "band", "flux", "flux_err")

DEFAULT_SIMULATION = {
    "bands": ["g", "r", "i"],
    "depth": {"u": 23.5, "g": 24.3, "r": 24.0, "i": 23.5, "z": 22.8},  # single-visit 5-sigma AB mag
    "depth_scatter": 0.25,
    "season_days": 150,
    "n_seasons": 1,
    "deep_fraction": 0.25,
    # Nights between scheduled visits: drawn per object from [min, max] (a spread of sequence lengths).
    "wide": {"revisit_days": [3, 6], "bands_per_visit": 2},
    "deep": {"revisit_days": [2, 3], "bands_per_visit": 2},
    "clear_fraction": 0.7,
    "bad_weather_nights": 3.0,
    "sky_mag": 21.0,  # source flux at which Poisson noise equals the sky's
    "calibration_floor": 0.01,
    "min_detections": 3,
    "start_mjd": 60000.0,
}
YEAR = 365.25


def merge_simulation_config(overrides: dict | None) -> dict:
    cfg = copy.deepcopy(DEFAULT_SIMULATION)
    for key, value in (overrides or {}).items():
        if key not in cfg:
            raise ValueError(f"simulation key '{key}': unknown (known: {', '.join(sorted(cfg))})")
        cfg[key] = {**cfg[key], **value} if isinstance(cfg[key], dict) else value
    unknown = [b for b in cfg["bands"] if b not in phys.WAVELENGTH or b not in cfg["depth"]]
    if unknown:
        raise ValueError(f"simulation key 'bands': no wavelength or depth for {unknown}")
    return cfg


# ---------------------------------------------------------------------------- cadence
def clear_nights(n_nights: int, clear_fraction: float, mean_bad_run: float, rng) -> np.ndarray:
    """Weather as a two-state Markov chain: bad spells last `mean_bad_run` nights on average and
    a fraction `clear_fraction` of nights is clear in the long run."""
    leave_bad = 1.0 / mean_bad_run
    enter_bad = leave_bad * (1.0 - clear_fraction) / clear_fraction
    clear = np.empty(n_nights, dtype=bool)
    state = rng.random() < clear_fraction
    draws = rng.random(n_nights)
    for night in range(n_nights):
        clear[night] = state
        state = draws[night] >= enter_bad if state else draws[night] < leave_bad
    return clear


def draw_cadence(cfg: dict, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """(times in days from the survey start, band indices, 5-sigma depths, field kind)."""
    field = "deep" if rng.random() < cfg["deep_fraction"] else "wide"
    low, high = cfg[field]["revisit_days"]
    revisit, per_visit = int(rng.integers(low, high + 1)), min(cfg[field]["bands_per_visit"], len(cfg["bands"]))
    times, bands = [], []
    for season in range(cfg["n_seasons"]):
        start = season * YEAR
        nights = np.arange(cfg["season_days"])
        scheduled = nights[(nights + rng.integers(revisit)) % revisit == 0]
        clear = clear_nights(cfg["season_days"], cfg["clear_fraction"], cfg["bad_weather_nights"], rng)
        for night in scheduled[clear[scheduled]]:
            t = start + night + rng.uniform(0.05, 0.35)  # time of night varies: phases of short periods too
            for k, band in enumerate(rng.choice(len(cfg["bands"]), per_visit, replace=False)):
                times.append(t + 0.015 * k)  # bands of one visit ~20 minutes apart
                bands.append(band)
    times, bands = np.array(times), np.array(bands, dtype=np.int64)
    depth = np.array([cfg["depth"][cfg["bands"][b]] for b in bands]) + rng.normal(0.0, cfg["depth_scatter"], len(bands))
    return times, bands, depth, field


def observe(true_flux: np.ndarray, depth: np.ndarray, cfg: dict, rng) -> tuple[np.ndarray, np.ndarray]:
    """Noisy flux and its error: sky noise from the depth, Poisson noise of the source, calibration floor."""
    sky_sigma = phys.mag_to_flux(depth) / 5.0
    source = np.clip(true_flux, 0.0, None)
    sigma = np.sqrt(sky_sigma**2 * (1.0 + source / phys.mag_to_flux(cfg["sky_mag"])) + (cfg["calibration_floor"] * source) ** 2)
    return true_flux + rng.normal(0.0, 1.0, len(true_flux)) * sigma, sigma


# ---------------------------------------------------------------------------- one object
class Distances:
    """Distance modulus against redshift (Planck 2018 cosmology, built into astropy: no download)."""

    def __init__(self):
        from astropy.cosmology import Planck18

        self.z = np.linspace(0.005, 3.0, 600)
        self.mu = Planck18.distmod(self.z).value

    def __call__(self, z: float) -> float:
        return float(np.interp(z, self.z, self.mu))


def volume_redshift(rng, z_min: float, z_max: float) -> float:
    """p(z) ~ z^2: a constant rate per volume at low redshift."""
    return float((z_min**3 + rng.random() * (z_max**3 - z_min**3)) ** (1.0 / 3.0))


def draw_object(class_name: str, cfg: dict, rng, distances: Distances) -> tuple[dict, pd.DataFrame]:
    """Parameters and observations of one object of a class."""
    times, band_idx, depth, field = draw_cadence(cfg, rng)
    bands = np.array(cfg["bands"])[band_idx]
    span = (times.min(), times.max()) if len(times) else (0.0, cfg["season_days"])
    if class_name in ("SNIa", "SNCC"):
        if class_name == "SNIa":
            params = phys.draw_sn_ia(rng, volume_redshift(rng, 0.05, 0.6))
        else:
            params = phys.draw_sn_cc(rng, volume_redshift(rng, 0.01, 0.2))
        # Caught anywhere from on the rise to well into the decline.
        params["t_peak"] = rng.uniform(span[0] - 15.0, span[1] + 5.0)
        mu = distances(params["redshift"])
        flux = np.empty(len(times))
        for band in set(bands):
            sel = bands == band
            flux[sel] = phys.supernova_flux(times[sel], band, params, mu)
        params["rise_time"], params["decline_time"] = phys.sn_time_scales(params, "r")
        if params["subtype"] == "IIP":
            params["plateau"] = params["plateau"] * (1 + params["redshift"])
    elif class_name == "RRLyr":
        params = phys.draw_rr_lyrae(rng)
        flux = np.array([phys.rr_lyrae_flux(t, b, params) for t, b in zip(times, bands)])
    elif class_name == "EB":
        params = phys.draw_eclipsing_binary(rng)
        flux = np.array([phys.eclipsing_binary_flux(t, b, params) for t, b in zip(times, bands)])
    elif class_name == "AGN":
        params = phys.draw_agn(rng)
        flux = phys.agn_flux(times, bands, params, rng)
    elif class_name == "star":
        params = phys.draw_star(rng)
        flux = np.array([phys.star_flux(t, b, params) for t, b in zip(times, bands)]).reshape(-1)
    else:
        raise ValueError(f"unknown light-curve class '{class_name}' (known: {', '.join(phys.CLASS_NAMES)})")
    observed, sigma = observe(flux, depth, cfg, rng)
    params["field"] = field
    table = pd.DataFrame({"time": cfg["start_mjd"] + times, "band": bands, "flux": observed, "flux_err": sigma})
    return params, table


def simulate_object(class_name: str, cfg: dict, rng, distances: Distances, max_tries: int = 200):
    """Redraw until the survey detects the object (`min_detections` points at S/N > 5)."""
    for attempt in range(max_tries):
        params, table = draw_object(class_name, cfg, rng, distances)
        detections = int((table["flux"] / table["flux_err"] > 5.0).sum())
        if detections >= cfg["min_detections"]:
            params.update(n_detections=detections, draws=attempt + 1)
            return params, table
    raise RuntimeError(f"no detectable {class_name} in {max_tries} draws: the depth is too shallow for this class")


# ---------------------------------------------------------------------------- a dataset
CATALOG_COLUMNS = ("subtype", "field", "period", "redshift", "t_peak", "rise_time", "decline_time", "plateau", "tau",
                   "sf_inf", "amplitude", "mean_mag", "abs_mag", "stretch", "n_detections", "draws")


def simulate_lightcurves(n_per_class: int, cfg: dict, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(catalog, observations): balanced classes in a seeded random order, one seed per object."""
    labels = np.repeat(np.arange(len(phys.CLASS_NAMES)), n_per_class)
    labels = labels[np.random.default_rng(np.random.SeedSequence([seed, 1])).permutation(len(labels))]
    distances = Distances()
    rows, tables = [], []
    for index, label in enumerate(labels):
        rng = np.random.default_rng(np.random.SeedSequence([seed, 2, index]))
        class_name = phys.CLASS_NAMES[label]
        params, table = simulate_object(class_name, cfg, rng, distances)
        row = {"index": index, "label": int(label), "class_name": class_name}
        row.update({key: params.get(key, np.nan) for key in CATALOG_COLUMNS})
        if "t_peak" in params:
            row["t_peak"] = cfg["start_mjd"] + params["t_peak"]
        row["n_obs"] = len(table)
        rows.append(row)
        table.insert(0, "object", index)
        tables.append(table)
    catalog = pd.DataFrame(rows)
    observations = pd.concat(tables, ignore_index=True)
    observations["band"] = observations["band"].astype(str)
    return catalog, observations


def cadence_statistics(observations: pd.DataFrame, catalog: pd.DataFrame) -> dict:
    per_object = observations.groupby("object")
    n_obs = per_object.size()
    nights = observations.assign(night=np.floor(observations["time"])).groupby("object")["night"]
    gaps = nights.apply(lambda s: np.diff(np.unique(s.to_numpy()))).explode().astype(float)
    span = per_object["time"].agg(lambda s: s.max() - s.min())
    snr = observations["flux"] / observations["flux_err"]
    return {
        "n_observations": int(len(observations)),
        "observations_per_object": {"min": int(n_obs.min()), "median": float(n_obs.median()), "max": int(n_obs.max())},
        "observations_per_band": {b: int(n) for b, n in observations["band"].value_counts().sort_index().items()},
        "nights_between_visits": {"median": float(gaps.median()), "p90": float(gaps.quantile(0.9)), "max": float(gaps.max())},
        "time_span_days": {"median": float(span.median()), "max": float(span.max())},
        "fields": {k: int(v) for k, v in catalog["field"].value_counts().sort_index().items()},
        "fraction_snr_above_5": float((snr > 5).mean()),
    }


def write_lightcurve_dataset(out_dir, name: str, settings: dict, seed: int) -> dict:
    """Simulate and write observations, catalog and card; returns the card."""
    out_dir = Path(out_dir)
    cfg = merge_simulation_config(settings.get("simulation"))
    catalog, observations = simulate_lightcurves(settings["n_per_class"], cfg, seed)
    storage.save_table(out_dir / OBSERVATIONS, observations)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    counts = catalog["class_name"].value_counts().reindex(phys.CLASS_NAMES, fill_value=0)
    observations_sha = storage.sha256_file(out_dir / OBSERVATIONS)
    card = {
        "name": name,
        "source": "simulate_lightcurves",
        "description": settings.get("description", "simulated multi-band light curves"),
        "class_names": list(phys.CLASS_NAMES),
        "n_objects": int(len(catalog)),
        "bands": list(cfg["bands"]),
        "counts": {k: int(v) for k, v in counts.items()},
        "subtypes": {f"{c}/{s}": int(v) for (c, s), v in catalog.groupby(["class_name", "subtype"]).size().items()},
        "cadence": cadence_statistics(observations, catalog),
        "simulation": cfg,
        "observations_sha256": observations_sha,
        # The core tags runs and models with the data checksum under this key.
        "images_sha256": observations_sha,
        "catalog_sha256": storage.sha256_file(out_dir / storage.CATALOG),
        "provenance": {
            "citation": "parametric light curves: Bazin et al. 2009 (A&A 499, 653), Villar et al. 2019 (ApJ 884, 83); "
                        "DRW: Kelly et al. 2009 (ApJ 698, 895); class set after PLAsTiCC (Kessler et al. 2019)",
            "licence": "CC-BY-4.0 (simulated here)",
            "sncosmo": "not used: its SALT2 and core-collapse models download files at first use",
        },
    }
    storage.write_json(out_dir / storage.CARD, card)
    (out_dir / "card.md").write_text(card_markdown(card))
    return card


def card_markdown(card: dict) -> str:
    cadence = card["cadence"]
    lines = [
        f"# Dataset card: {card['name']}", "", card["description"], "",
        f"- source: `{card['source']}` ({card['n_objects']} objects, bands {', '.join(card['bands'])})",
        f"- observations: {cadence['n_observations']} "
        f"({cadence['observations_per_object']['min']}-{cadence['observations_per_object']['max']} per object, "
        f"median {cadence['observations_per_object']['median']:.0f})",
        f"- nights between visits: median {cadence['nights_between_visits']['median']:.0f}, "
        f"90th percentile {cadence['nights_between_visits']['p90']:.0f}, longest gap {cadence['nights_between_visits']['max']:.0f}",
        f"- fields: {', '.join(f'{k} {v}' for k, v in cadence['fields'].items())}",
        f"- observations.parquet SHA-256: `{card['observations_sha256']}`",
        f"- citation: {card['provenance']['citation']}",
        "", "| class | count |", "|---|---:|",
    ]
    lines += [f"| {name} | {card['counts'][name]} |" for name in card["class_names"]]
    lines += ["", "| class/subtype | count |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in card["subtypes"].items()]
    return "\n".join(lines) + "\n"
