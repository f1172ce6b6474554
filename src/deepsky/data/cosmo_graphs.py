"""Galaxy catalogues whose clustering depends on (Omega_m, sigma_8): the data of the GNN experiment.

One box per cosmology of a Latin hypercube (scipy.stats.qmc): the matter power spectrum from camb
(halofit by default), a lognormal galaxy density field on a periodic grid with spectrum b^2 P(k)
(Coles & Jones 1991; the Gaussian field's spectrum is chosen so that the lognormal one has the
target spectrum, as in Agrawal+2017), galaxies Poisson-sampled in its cells and placed uniformly
inside them, optionally moved along z by linear redshift-space distortions.

camb costs ~0.5 s per cosmology, so the spectra are *emulated*: camb's transfer functions on a
small grid of Omega_m, halofit at a few sigma_8 for each (a cheap re-normalisation), and
ln P(k) - 2 ln sigma_8 interpolated (cubic) across the grid. At linear order sigma_8 rescales the
amplitude exactly; the interpolation error is below 1 % (tests/test_cosmo_graphs_data.py).

On disk (results/data/<name>/): catalog.parquet (one row per box: index, label=0, Omega_m,
sigma_8, n_galaxies, bias, nbar), galaxies.parquet (box, x, y, z in Mpc/h), power_grid.npz (the
emulator's camb grid), card.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.interpolate import RegularGridInterpolator
from scipy.stats import qmc

from deepsky.data import storage

GALAXIES = "galaxies.parquet"
POWER_GRID = "power_grid.npz"
PARAMETERS = ("Omega_m", "sigma_8")

DEFAULT_SIMULATION = {
    "box_size": 200.0,          # Mpc/h: k from 0.03 (fundamental) to 0.5 h/Mpc (Nyquist)
    "grid": 32,                 # cells per side of the density field (6.25 Mpc/h)
    "n_galaxies": 1000,         # mean galaxies per box (nbar = n_galaxies / box_size^3)
    "bias": 1.5,                # linear galaxy bias: the galaxy field has spectrum bias^2 P_m(k)
    "redshift": 0.0,
    "rsd": False,               # linear redshift-space distortions along z (Kaiser)
    "nonlinear": True,          # camb halofit; false = linear theory
    "omega_m_range": [0.1, 0.5],   # CAMELS ranges
    "sigma_8_range": [0.6, 1.0],
    "h": 0.6711,
    "omega_b": 0.049,
    "n_s": 0.9624,
    "emulator_grid": [7, 5],    # camb runs in Omega_m x halofit normalisations in sigma_8
}


def merge_simulation(settings: dict | None) -> dict:
    merged = {**DEFAULT_SIMULATION, **(settings or {})}
    unknown = sorted(set(merged) - set(DEFAULT_SIMULATION))
    if unknown:
        raise ValueError(f"simulation keys {unknown} are unknown (known: {', '.join(DEFAULT_SIMULATION)})")
    for key in ("omega_m_range", "sigma_8_range"):
        lo, hi = merged[key]
        if not lo < hi:
            raise ValueError(f"simulation.{key} must be [low, high] with low < high, got {merged[key]}")
    if merged["omega_m_range"][0] <= merged["omega_b"]:
        raise ValueError("simulation.omega_m_range must stay above omega_b (cold dark matter must be positive)")
    return merged


def latin_hypercube(n: int, sim: dict, seed: int) -> pd.DataFrame:
    """n cosmologies spread over the (Omega_m, sigma_8) rectangle, one per row and column stratum."""
    try:
        sampler = qmc.LatinHypercube(d=2, rng=np.random.default_rng(seed))
    except TypeError:  # scipy < 1.15 calls it seed
        sampler = qmc.LatinHypercube(d=2, seed=np.random.default_rng(seed))
    unit = sampler.random(n)
    lo = [sim["omega_m_range"][0], sim["sigma_8_range"][0]]
    hi = [sim["omega_m_range"][1], sim["sigma_8_range"][1]]
    values = qmc.scale(unit, lo, hi)
    return pd.DataFrame(values, columns=list(PARAMETERS))


# ---------------------------------------------------------------- the power spectrum emulator
def camb_power_grid(sim: dict, k: np.ndarray) -> dict:
    """camb matter P(k) [(Mpc/h)^3] at k [h/Mpc] on a grid of (Omega_m, sigma_8)."""
    import camb

    n_om, n_s8 = sim["emulator_grid"]
    omegas = np.linspace(*sim["omega_m_range"], n_om)
    sigmas = np.linspace(*sim["sigma_8_range"], n_s8)
    h, ob = sim["h"], sim["omega_b"]
    power = np.empty((n_om, n_s8, len(k)))
    for i, om in enumerate(omegas):
        pars = camb.CAMBparams()
        pars.set_cosmology(H0=100 * h, ombh2=ob * h**2, omch2=(om - ob) * h**2, mnu=0.0, omk=0.0)
        pars.InitPower.set_params(ns=sim["n_s"], As=2e-9)
        pars.WantCls = False
        pars.set_matter_power(redshifts=[sim["redshift"]], kmax=max(5.0, 1.2 * float(k.max())))
        pars.NonLinear = camb.model.NonLinear_pk if sim["nonlinear"] else camb.model.NonLinear_none
        data = camb.get_transfer_functions(pars)
        data.power_spectra_from_transfer()
        sigma8_ref = data.get_sigma8_0()
        for j, s8 in enumerate(sigmas):
            data.Params.InitPower.set_params(ns=sim["n_s"], As=2e-9 * (s8 / sigma8_ref) ** 2)
            data.power_spectra_from_transfer()
            interp = data.get_matter_power_interpolator(nonlinear=sim["nonlinear"], hubble_units=True, k_hunit=True)
            power[i, j] = interp.P(sim["redshift"], k)
    return {"omega_m": omegas, "sigma_8": sigmas, "k": k, "power": power}


class PowerEmulator:
    """P(k; Omega_m, sigma_8) from a camb grid: cubic in (Omega_m, sigma_8), linear in ln k, of
    ln P - 2 ln sigma_8 (exactly flat in sigma_8 at linear order)."""

    def __init__(self, grid: dict):
        self.k = np.asarray(grid["k"])
        reduced = np.log(grid["power"]) - 2 * np.log(grid["sigma_8"])[None, :, None]
        method = "cubic" if min(reduced.shape[:2]) >= 4 else "linear"
        self._interp = RegularGridInterpolator((grid["omega_m"], grid["sigma_8"], np.log(self.k)), reduced, method=method)

    def __call__(self, omega_m: float, sigma_8: float, k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=float)
        lnk = np.clip(np.log(np.where(k > 0, k, self.k[0])), np.log(self.k[0]), np.log(self.k[-1]))
        points = np.stack([np.full(lnk.size, omega_m), np.full(lnk.size, sigma_8), lnk.ravel()], axis=1)
        power = np.exp(self._interp(points) + 2 * np.log(sigma_8)).reshape(k.shape)
        return np.where(k > 0, power, 0.0)


def emulator_k(sim: dict) -> np.ndarray:
    """k samples covering every mode of the grid, fundamental to corner."""
    k_min = 2 * np.pi / sim["box_size"]
    k_max = np.sqrt(3) * np.pi * sim["grid"] / sim["box_size"]
    return np.geomspace(0.5 * k_min, 1.05 * k_max, 96)


def save_power_grid(path, grid: dict) -> None:
    storage.atomic_write_bytes(Path(path), lambda tmp: np.savez(open(tmp, "wb"), **grid))


def load_power_grid(path) -> dict:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


# ---------------------------------------------------------------- fields and galaxies
def wavenumbers(n: int, box: float, real: bool = True) -> np.ndarray:
    """|k| of the (r)fftn modes of an n^3 grid of side box."""
    kx = 2 * np.pi * np.fft.fftfreq(n, d=box / n)
    kz = 2 * np.pi * np.fft.rfftfreq(n, d=box / n) if real else kx
    return np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)


def gaussian_spectrum_for_lognormal(target: np.ndarray, n: int, box: float) -> tuple[np.ndarray, int]:
    """The spectrum of the Gaussian field G whose exp(G - s^2/2) - 1 has the target spectrum.

    On the grid: xi = IFFT[P] / V_cell, xi_G = ln(1 + xi), P_G = V_cell FFT[xi_G]; negative P_G
    (where no lognormal field has the target) are clipped to 0. `target` and the result are on
    the rfftn modes. Returns (P_G, number of clipped modes).
    """
    cell = (box / n) ** 3
    xi = np.fft.irfftn(target, s=(n, n, n)) / cell
    if xi.min() <= -1:
        raise ValueError("the target correlation function reaches -1: no lognormal field has this spectrum")
    p_gauss = np.fft.rfftn(np.log1p(xi)).real * cell
    clipped = int((p_gauss < 0).sum())
    return np.clip(p_gauss, 0.0, None), clipped


def gaussian_field(p_gauss: np.ndarray, n: int, box: float, rng: np.random.Generator) -> np.ndarray:
    """A periodic Gaussian random field with spectrum p_gauss (rfftn modes) from white noise."""
    cell = (box / n) ** 3
    noise = np.fft.rfftn(rng.standard_normal((n, n, n)))
    return np.fft.irfftn(noise * np.sqrt(p_gauss / cell), s=(n, n, n))


def lognormal_field(p_gauss: np.ndarray, n: int, box: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(delta_LN, G): the lognormal overdensity and the Gaussian field it came from."""
    gauss = gaussian_field(p_gauss, n, box, rng)
    variance = np.fft.irfftn(p_gauss, s=(n, n, n))[0, 0, 0] / (box / n) ** 3  # xi_G(0): <1 + delta> = 1
    return np.expm1(gauss - 0.5 * variance), gauss


def growth_rate(omega_m: float, redshift: float) -> float:
    """f = Omega_m(z)^0.55 in flat LCDM (Linder 2005)."""
    a3 = (1 + redshift) ** 3
    return float((omega_m * a3 / (omega_m * a3 + 1 - omega_m)) ** 0.55)


def linear_displacement_z(density: np.ndarray, box: float) -> np.ndarray:
    """z component of the Zel'dovich displacement psi(k) = i k / k^2 delta(k), in Mpc/h."""
    n = density.shape[0]
    kz = 2 * np.pi * np.fft.rfftfreq(n, d=box / n)
    k2 = wavenumbers(n, box) ** 2
    k2[0, 0, 0] = 1.0
    return np.fft.irfftn(1j * kz[None, None, :] / k2 * np.fft.rfftn(density), s=density.shape)


def poisson_galaxies(delta: np.ndarray, box: float, nbar: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Galaxy positions: Poisson counts of mean nbar V_cell (1 + delta) per cell, uniform inside it.

    Returns (positions (N, 3) in [0, box), the flat cell index of each galaxy).
    """
    n = delta.shape[0]
    size = box / n
    counts = rng.poisson(nbar * size**3 * np.clip(1 + delta, 0, None)).ravel()
    cells = np.repeat(np.arange(counts.size), counts)
    ijk = np.stack(np.unravel_index(cells, delta.shape), axis=1)
    positions = (ijk + rng.random((len(cells), 3))) * size
    return positions, cells


def simulate_box(emulator: PowerEmulator, omega_m: float, sigma_8: float, sim: dict, rng: np.random.Generator) -> np.ndarray:
    """One catalogue: galaxy positions (N, 3) in a periodic box of side sim['box_size']."""
    n, box = sim["grid"], sim["box_size"]
    target = sim["bias"] ** 2 * emulator(omega_m, sigma_8, wavenumbers(n, box))
    p_gauss, _ = gaussian_spectrum_for_lognormal(target, n, box)
    delta, gauss = lognormal_field(p_gauss, n, box, rng)
    nbar = sim["n_galaxies"] / box**3
    positions, cells = poisson_galaxies(delta, box, nbar, rng)
    if sim["rsd"]:
        # Linear velocities from the Gaussian field, a proxy for the linear matter field (G ~ b delta_m).
        shift = growth_rate(omega_m, sim["redshift"]) * linear_displacement_z(gauss / sim["bias"], box)
        positions[:, 2] = np.mod(positions[:, 2] + shift.ravel()[cells], box)
    return positions


# ---------------------------------------------------------------- power spectrum estimator
def measure_power(positions: np.ndarray, box: float, n: int, n_bins: int, k_max: float | None = None,
                  subtract_shot_noise: bool = True) -> dict:
    """Binned P(k) of a periodic catalogue: nearest-grid-point counts on an n^3 grid, FFT,
    spherical average in n_bins linear bins from the fundamental mode to k_max (default Nyquist).

    NGP on the grid the galaxies were drawn on returns each cell's count, so the estimate has no
    window and P - 1/nbar is unbiased for the generated field (on another grid, the NGP window
    suppresses power near Nyquist). Returns k (mean |k| per bin), power, n_modes, nbar.
    """
    positions = np.asarray(positions, dtype=float)
    cell = box / n
    ijk = np.floor(np.mod(positions, box) / cell).astype(int) % n
    counts = np.zeros((n, n, n))
    np.add.at(counts, tuple(ijk.T), 1.0)
    nbar = len(positions) / box**3
    delta = counts / (nbar * cell**3) - 1.0
    return binned_spectrum(delta, box, n_bins, k_max, shot_noise=1 / nbar if subtract_shot_noise else 0.0) | {"nbar": nbar}


def binned_spectrum(delta: np.ndarray, box: float, n_bins: int, k_max: float | None = None, shot_noise: float = 0.0) -> dict:
    """Spherically averaged spectrum of a gridded overdensity (counting the rfft half-space twice
    where its mirror is not stored)."""
    n = delta.shape[0]
    modes = np.abs(np.fft.rfftn(delta)) ** 2 * box**3 / n**6
    k = wavenumbers(n, box)
    weight = np.full(k.shape, 2.0)
    weight[..., 0] = 1.0
    if n % 2 == 0:
        weight[..., -1] = 1.0
    k_f = 2 * np.pi / box
    k_max = np.pi * n / box if k_max is None else k_max
    edges = np.linspace(k_f / 2, k_max, n_bins + 1)
    which = np.digitize(k.ravel(), edges) - 1
    inside = (which >= 0) & (which < n_bins)
    w = weight.ravel()[inside]
    n_modes = np.bincount(which[inside], weights=w, minlength=n_bins)
    power = np.bincount(which[inside], weights=w * modes.ravel()[inside], minlength=n_bins)
    k_mean = np.bincount(which[inside], weights=w * k.ravel()[inside], minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"k": k_mean / n_modes, "power": power / n_modes - shot_noise, "n_modes": n_modes, "edges": edges}


# ---------------------------------------------------------------- the dataset
def simulate_catalogues(n_boxes: int, settings: dict | None, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(catalog: one row per box, galaxies: box, x, y, z, the emulator's camb grid)."""
    sim = merge_simulation(settings)
    cosmologies = latin_hypercube(n_boxes, sim, seed)
    grid = camb_power_grid(sim, emulator_k(sim))
    emulator = PowerEmulator(grid)
    streams = np.random.SeedSequence(seed).spawn(n_boxes)
    boxes, rows = [], []
    for index, (row, stream) in enumerate(zip(cosmologies.itertuples(index=False), streams)):
        positions = simulate_box(emulator, row.Omega_m, row.sigma_8, sim, np.random.default_rng(stream))
        boxes.append(pd.DataFrame({"box": np.int32(index), **{a: positions[:, i].astype(np.float32) for i, a in enumerate("xyz")}}))
        rows.append({"index": index, "label": 0, "class_name": "box", "Omega_m": row.Omega_m, "sigma_8": row.sigma_8,
                     "n_galaxies": len(positions), "bias": sim["bias"], "nbar": len(positions) / sim["box_size"] ** 3})
    return pd.DataFrame(rows), pd.concat(boxes, ignore_index=True), grid


def write_cosmo_dataset(out_dir, name: str, dataset: dict, seed: int) -> dict:
    out_dir = Path(out_dir)
    sim = merge_simulation(dataset.get("simulation"))
    catalog, galaxies, grid = simulate_catalogues(int(dataset["n_boxes"]), sim, seed)
    storage.save_table(out_dir / GALAXIES, galaxies)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    save_power_grid(out_dir / POWER_GRID, grid)
    card = {
        "name": name,
        "source": dataset["source"],
        "description": dataset.get("description", ""),
        "class_names": ["box"],
        "n_images": len(catalog),  # boxes: the number of examples, named as for image datasets
        "n_boxes": len(catalog),
        "n_galaxies": int(len(galaxies)),
        "bands": [],
        # The data checksum every tracked run is tagged with (image datasets: images.npy).
        "images_sha256": storage.sha256_file(out_dir / GALAXIES),
        "catalog_sha256": storage.sha256_file(out_dir / storage.CATALOG),
        "simulation": sim,
        "parameter_ranges": {p: {"min": float(catalog[p].min()), "max": float(catalog[p].max())} for p in PARAMETERS},
        "provenance": {
            "simulator": "camb (halofit) power spectrum emulated on a grid, lognormal galaxy field, Poisson sampling",
            "citation": "Villanueva-Domingo & Villaescusa-Navarro 2022 (CosmoGraphNet); de Santi et al. 2023; Coles & Jones 1991",
            "seed": seed,
            "config_sha256": hashlib.sha256(json.dumps(sim, sort_keys=True).encode()).hexdigest(),
        },
    }
    storage.write_json(out_dir / storage.CARD, card)
    (out_dir / "card.md").write_text(
        f"# Dataset card: {name}\n\n{card['description']}\n\n- source: `{card['source']}`\n"
        f"- boxes: {card['n_boxes']} of side {sim['box_size']} Mpc/h, {card['n_galaxies']} galaxies in all\n"
        f"- galaxy model: bias {sim['bias']}, {sim['n_galaxies']} galaxies per box on average, rsd {sim['rsd']}\n"
        f"- Omega_m in {sim['omega_m_range']}, sigma_8 in {sim['sigma_8_range']} (Latin hypercube)\n"
        f"- galaxies.parquet SHA-256: `{card['images_sha256']}`\n- citation: {card['provenance']['citation']}\n"
    )
    return card


def load_catalogues(dataset_dir) -> dict[int, np.ndarray]:
    """Box index -> galaxy positions (N, 3)."""
    galaxies = pd.read_parquet(Path(dataset_dir) / GALAXIES)
    order = np.argsort(galaxies["box"].to_numpy(), kind="stable")
    boxes = galaxies["box"].to_numpy()[order]
    xyz = galaxies[["x", "y", "z"]].to_numpy(dtype=np.float64)[order]
    starts = np.searchsorted(boxes, np.unique(boxes))
    return {int(b): part for b, part in zip(np.unique(boxes), np.split(xyz, starts[1:]))}
