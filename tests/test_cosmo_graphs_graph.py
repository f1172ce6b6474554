"""Catalogues as graphs: the neighbours are right through the periodic boundary, and the GNN's
output does not change when the catalogue is rotated or translated."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from deepsky.data import cosmo_graphs_graph as gg
from deepsky.models import cosmo_graphs_nets, create_model

BOX, RADIUS = 100.0, 12.0


def clustered_catalogue(n=300, seed=0):
    """Clumps and a uniform background, some of them across the box faces."""
    rng = np.random.default_rng(seed)
    centres = np.vstack([rng.uniform(0, BOX, (8, 3)), [[0.5, 50, 50], [99.5, 99.5, 0.3]]])
    clumps = centres[rng.integers(0, len(centres), n // 2)] + rng.normal(0, 4, (n // 2, 3))
    return np.mod(np.vstack([clumps, rng.uniform(0, BOX, (n - n // 2, 3))]), BOX)


def test_edges_match_a_brute_force_search_with_periodic_wrap():
    positions = clustered_catalogue()
    edge_index, displacement = gg.periodic_edges(positions, BOX, RADIUS)
    found = set(zip(edge_index[0].tolist(), edge_index[1].tolist()))
    expected = gg.brute_force_edges(positions, BOX, RADIUS)
    assert found == expected
    crossing = np.abs(positions[edge_index[0]] - positions[edge_index[1]]).max(axis=1) > BOX / 2
    assert crossing.any(), "the test catalogue must have edges through the boundary"
    # Displacements are the nearest periodic image: shorter than the radius, pointing from i to j.
    assert np.all(np.linalg.norm(displacement, axis=1) < RADIUS)
    np.testing.assert_allclose(np.mod(positions[edge_index[1]] + displacement, BOX) % BOX,
                               positions[edge_index[0]] % BOX, atol=1e-9)


def test_linking_radius_must_fit_in_the_box():
    with pytest.raises(ValueError, match="half the box"):
        gg.periodic_edges(clustered_catalogue(20), BOX, 60.0)


def test_features_are_rotation_invariant():
    positions = clustered_catalogue()
    edge_index, displacement = gg.periodic_edges(positions, BOX, RADIUS)
    nodes, edges = gg.invariant_features(len(positions), edge_index, displacement, RADIUS)
    rotation = Rotation.random(random_state=3).as_matrix()
    rotated_nodes, rotated_edges = gg.invariant_features(len(positions), edge_index, displacement @ rotation.T, RADIUS)
    np.testing.assert_allclose(rotated_nodes, nodes, atol=1e-9)
    np.testing.assert_allclose(rotated_edges, edges, atol=1e-9)
    assert nodes.shape[1] == gg.NODE_FEATURES and edges.shape[1] == gg.EDGE_FEATURES == cosmo_graphs_nets.EDGE_FEATURES
    assert cosmo_graphs_nets.GLOBAL_FEATURES == gg.GLOBAL_FEATURES


def cube_symmetry(positions, seed):
    """A random rotation of the cube (axis permutation and signs with det +1) and a periodic shift."""
    rng = np.random.default_rng(seed)
    while True:
        matrix = np.eye(3)[rng.permutation(3)] * rng.choice([-1, 1], 3)[:, None]
        if np.linalg.det(matrix) > 0 and not np.allclose(matrix, np.eye(3)):
            break
    centred = positions - BOX / 2
    return np.mod(centred @ matrix.T + BOX / 2 + rng.uniform(0, BOX, 3), BOX)


def test_gnn_output_is_invariant_to_rotating_and_translating_the_catalogue():
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    model = create_model("cosmo_gnn", gg.NODE_FEATURES, 4, 12, hidden=16).eval()
    positions = clustered_catalogue()
    graphs = [gg.catalogue_graph(positions, BOX, RADIUS, np.zeros(12))]
    graphs += [gg.catalogue_graph(cube_symmetry(positions, seed), BOX, RADIUS, np.zeros(12)) for seed in range(3)]
    # And the galaxies listed in another order.
    order = np.random.default_rng(9).permutation(len(positions))
    graphs.append(gg.catalogue_graph(positions[order], BOX, RADIUS, np.zeros(12)))
    with torch.no_grad():
        out = model(Batch.from_data_list(graphs))
    assert torch.allclose(out, out[:1].expand_as(out), atol=1e-5), out
    other = gg.catalogue_graph(clustered_catalogue(seed=1), BOX, RADIUS, np.zeros(12))
    with torch.no_grad():
        assert not torch.allclose(model(Batch.from_data_list([other])), out[:1], atol=1e-3)


def test_models_read_their_part_of_the_batch():
    from torch_geometric.data import Batch

    graphs = [gg.catalogue_graph(clustered_catalogue(seed=s), BOX, RADIUS, np.linspace(0, 1, 12)) for s in range(3)]
    batch = Batch.from_data_list(graphs)
    assert batch.pk.shape == (3, 12) and batch.u.shape == (3, 1)
    for name in ("cosmo_gnn", "pk_mlp"):
        model = create_model(name, gg.NODE_FEATURES, 4, 12)
        model.train()
        assert model(batch).shape == (3, 4)
        assert model(Batch.from_data_list(graphs[:1])).shape == (1, 4)  # one box: batch norm uses running statistics


def test_pictures_are_graphs_too():
    """The registry's image contract: pixels become nodes joined to their 4 neighbours."""
    images = torch.randn(2, 3, 5, 7)
    graphs = cosmo_graphs_nets.image_graphs(images)
    assert graphs.num_graphs == 2 and graphs.x.shape == (2 * 35, 3)
    assert graphs.edge_index.shape[1] == 2 * 2 * (5 * 6 + 4 * 7)
    assert torch.allclose(graphs.edge_attr[:, 0], torch.ones(len(graphs.edge_attr)))
    power = cosmo_graphs_nets.image_power(images, 6)
    assert power.shape == (2, 6) and torch.isfinite(power).all()
