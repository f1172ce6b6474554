"""Galaxy catalogues as graphs (lecture 002, "What makes up a graph?"): nodes are galaxies, edges
join galaxies closer than a linking radius in the periodic box, and every feature is invariant
under rotations and translations of the catalogue (CosmoGraphNet, Villanueva-Domingo &
Villaescusa-Navarro 2022).

CosmoGraphNet measures its edge angles from the box centroid; with periodic boundaries there is
no centroid, so the reference direction here is each galaxy's local dipole v_i, the mean
displacement to its neighbours (it rotates with the catalogue and ignores translations):

- node features: log(1 + degree), |v_i| / r;
- edge (j -> i) features: |d_ij| / r, cos(d_ij, v_i), cos(v_i, v_j), with d_ij = x_j - x_i wrapped
  to the nearest periodic image;
- global features U: log10 of the number of galaxies; P(k) of the catalogue rides along as
  `pk` (log10 of nbar P(k), shot noise included) for the power-spectrum baseline.

Neighbours come from scipy's cKDTree with `boxsize` (torch-cluster's radius_graph does not
install here).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch_geometric.data import Data

NODE_FEATURES = 2
EDGE_FEATURES = 3
GLOBAL_FEATURES = 1


def wrap(displacement: np.ndarray, box: float) -> np.ndarray:
    """Nearest periodic image of a displacement, in [-box/2, box/2)."""
    return (displacement + 0.5 * box) % box - 0.5 * box


def periodic_edges(positions: np.ndarray, box: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(edge_index (2, E): source j, target i, both directions; d_ij (E, 3) = x_j - x_i wrapped)."""
    if not 0 < radius < box / 2:
        raise ValueError(f"linking radius {radius} must be positive and below half the box ({box / 2})")
    positions = np.mod(np.asarray(positions, dtype=np.float64), box)
    pairs = cKDTree(positions, boxsize=box).query_pairs(radius, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros((2, 0), dtype=np.int64), np.zeros((0, 3))
    source = np.concatenate([pairs[:, 1], pairs[:, 0]])
    target = np.concatenate([pairs[:, 0], pairs[:, 1]])
    order = np.lexsort((source, target))  # grouped by receiving galaxy, deterministic
    source, target = source[order], target[order]
    return np.stack([source, target]).astype(np.int64), wrap(positions[source] - positions[target], box)


def brute_force_edges(positions: np.ndarray, box: float, radius: float) -> set[tuple[int, int]]:
    """Every ordered pair (j, i) closer than radius through the 27 periodic images (for tests)."""
    positions = np.mod(np.asarray(positions, dtype=np.float64), box)
    shifts = np.array([[a, b, c] for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]) * box
    diff = positions[None, :, None, :] - positions[:, None, None, :] + shifts[None, None]
    close = (np.linalg.norm(diff, axis=-1) < radius).any(axis=-1)
    np.fill_diagonal(close, False)
    targets, sources = np.nonzero(close)
    return set(zip(sources.tolist(), targets.tolist()))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    return np.where(norms > 1e-12, (a * b).sum(-1) / np.where(norms > 1e-12, norms, 1.0), 0.0)


def invariant_features(n_nodes: int, edge_index: np.ndarray, displacement: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(node features (N, 2), edge features (E, 3)) from the edges and their displacements."""
    source, target = edge_index
    degree = np.bincount(target, minlength=n_nodes).astype(np.float64)
    dipole = np.zeros((n_nodes, 3))
    np.add.at(dipole, target, displacement)
    dipole /= np.maximum(degree, 1.0)[:, None]
    nodes = np.stack([np.log1p(degree), np.linalg.norm(dipole, axis=1) / radius], axis=1)
    edges = np.stack(
        [np.linalg.norm(displacement, axis=1) / radius, _cosine(displacement, dipole[target]), _cosine(dipole[target], dipole[source])],
        axis=1,
    )
    return nodes, edges


def catalogue_graph(positions: np.ndarray, box: float, radius: float, pk: np.ndarray | None = None) -> Data:
    """One catalogue as a PyG graph (x, edge_index, edge_attr, u, and pk when given)."""
    edge_index, displacement = periodic_edges(positions, box, radius)
    nodes, edges = invariant_features(len(positions), edge_index, displacement, radius)
    graph = Data(
        x=torch.from_numpy(nodes.astype(np.float32)),
        edge_index=torch.from_numpy(edge_index),
        edge_attr=torch.from_numpy(edges.astype(np.float32)),
        u=torch.tensor([[np.log10(max(len(positions), 1))]], dtype=torch.float32),
        num_nodes=len(positions),
    )
    if pk is not None:
        graph.pk = torch.as_tensor(np.asarray(pk, dtype=np.float32)).reshape(1, -1)
    return graph


def power_features(positions: np.ndarray, box: float, grid: int, n_bins: int) -> np.ndarray:
    """The P(k) the baseline sees: log10(nbar P(k)) with shot noise included (always positive)."""
    from deepsky.data.cosmo_graphs import measure_power

    measured = measure_power(positions, box, grid, n_bins, subtract_shot_noise=False)
    return np.log10(np.maximum(measured["nbar"] * measured["power"], 1e-6))
