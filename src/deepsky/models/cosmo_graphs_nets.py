"""Networks that read a galaxy catalogue (a PyG `Batch` of graphs, deepsky.data.cosmo_graphs_graph).

* ``cosmo_gnn`` - CosmoGraphNet-like message passing (Villanueva-Domingo & Villaescusa-Navarro
  2022): MetaLayer-style blocks (Battaglia+2018) that update every edge from its two galaxies,
  its invariant features and the global features, then every galaxy from the sum and max of its
  incoming edges (residual), then a readout of the mean (and optionally max) over galaxies, the mean and
  standard deviation of the input node and edge features (the lecture's "statistical
  properties, manually inserted" global features) and the global features, batch-normalised.
* ``pk_mlp`` - the summary-statistic baseline: a small MLP on the binned power spectrum `pk` the
  same batch carries.

Registry arguments: ``in_channels`` = node features, ``image_size`` = P(k) bins, ``num_classes``
= outputs (the moment network's means and log-variances). Both also take the registry's image
tensors (N, C, H, W): "pictures are graphs" (lecture 002) - the GNN sees pixels as nodes joined to
their 4 neighbours, the MLP the image's radially averaged power spectrum in ``image_size`` bins. torch_geometric is imported where it is
used: importing it costs seconds, and every job of the workflow imports the registry.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import register_model

# deepsky.data.cosmo_graphs_graph builds these (a test checks they agree).
EDGE_FEATURES = 3
GLOBAL_FEATURES = 1

__all__ = ["CosmoGNN", "PowerSpectrumMLP"]


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def moments(values: torch.Tensor, graph: torch.Tensor, n_graphs: int) -> torch.Tensor:
    """Per graph, the mean and standard deviation of each feature (the lecture's "statistical
    properties, manually inserted" global features)."""
    from torch_geometric.utils import scatter

    mean = scatter(values, graph, dim=0, dim_size=n_graphs, reduce="mean")
    second = scatter(values**2, graph, dim=0, dim_size=n_graphs, reduce="mean")
    return torch.cat([mean, (second - mean**2).clamp_min(0).add(1e-12).sqrt()], dim=1)


def image_graphs(images: torch.Tensor):
    """A batch of pictures as a batch of graphs: pixels are nodes (their channel values the node
    features), edges join 4-neighbours, with the invariant edge features of the catalogue graphs."""
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import scatter

    n, channels, height, width = images.shape
    index = torch.arange(height * width, device=images.device).reshape(height, width)
    pairs = torch.cat([torch.stack([index[:, :-1].flatten(), index[:, 1:].flatten()]),
                       torch.stack([index[:-1].flatten(), index[1:].flatten()])], dim=1)
    edge_index = torch.cat([pairs, pairs.flip(0)], dim=1)
    rows, cols = torch.div(index.flatten(), width, rounding_mode="floor"), index.flatten() % width
    coords = torch.stack([cols, rows, torch.zeros_like(rows)], dim=1).to(images.dtype)
    displacement = coords[edge_index[0]] - coords[edge_index[1]]
    dipole = scatter(displacement, edge_index[1], dim=0, dim_size=height * width, reduce="mean")
    cosine = nn.functional.cosine_similarity
    edge_attr = torch.stack([displacement.norm(dim=1), cosine(displacement, dipole[edge_index[1]], dim=1, eps=1e-12),
                             cosine(dipole[edge_index[1]], dipole[edge_index[0]], dim=1, eps=1e-12)], dim=1)
    u = torch.full((1, 1), float(torch.log10(torch.tensor(height * width))), device=images.device)
    return Batch.from_data_list([Data(x=image.reshape(channels, -1).T, edge_index=edge_index, edge_attr=edge_attr, u=u)
                                 for image in images])


def image_power(images: torch.Tensor, n_bins: int) -> torch.Tensor:
    """log10 of the radially averaged power spectrum of each picture (channels averaged), n_bins bins."""
    power = torch.fft.rfft2(images.mean(dim=1)).abs() ** 2 / images[0, 0].numel()
    ky = torch.fft.fftfreq(images.shape[-2], device=images.device)[:, None]
    kx = torch.fft.rfftfreq(images.shape[-1], device=images.device)[None, :]
    which = (torch.sqrt(kx**2 + ky**2) / (0.5 * 2**0.5) * n_bins).long().clamp(max=n_bins - 1).flatten()
    sums = torch.zeros(len(images), n_bins, device=images.device).index_add_(1, which, power.flatten(1))
    counts = torch.bincount(which, minlength=n_bins).clamp(min=1)
    return torch.log10(sums / counts + 1e-8)


class InteractionBlock(nn.Module):
    """One MetaLayer-style step (Battaglia+2018): edges, then nodes.

    e'_ji = MLP([x_i, x_j, e_ji, u]), x'_i = MLP([x_i, sum_j e'_ji, max_j e'_ji, u]). The first
    layer of the edge MLP is applied to each part separately (a linear map of a concatenation is
    the sum of the maps of its parts): on the galaxies, then gathered onto the edges, which has
    the same result as MetaLayer's concatenation per edge at a fraction of the cost.
    """

    def __init__(self, node: int, edge: int, glob: int, hidden: int):
        super().__init__()
        self.receiver = nn.Linear(node + glob, hidden)
        self.sender = nn.Linear(node, hidden, bias=False)
        self.edge = nn.Linear(edge, hidden, bias=False)
        self.edge_out = nn.Linear(hidden, hidden)
        self.node = mlp([node + 2 * hidden + glob, hidden, hidden])

    def forward(self, x, edge_index, edge_attr, u_nodes):
        from torch_geometric.utils import scatter

        source, target = edge_index
        first = self.receiver(torch.cat([x, u_nodes], dim=1))[target] + self.sender(x)[source] + self.edge(edge_attr)
        edge_attr = self.edge_out(nn.functional.silu(first))
        summed = scatter(edge_attr, target, dim=0, dim_size=x.size(0), reduce="sum")
        largest = scatter(edge_attr, target, dim=0, dim_size=x.size(0), reduce="max")
        return self.node(torch.cat([x, summed, largest, u_nodes], dim=1)), edge_attr


class CosmoGNN(nn.Module):
    def __init__(self, in_channels: int, num_outputs: int, *, hidden: int = 32, layers: int = 2,
                 edge_features: int = EDGE_FEATURES, global_features: int = GLOBAL_FEATURES, pool_norm: bool = True,
                 input_statistics: bool = True, max_pool: bool = False):
        super().__init__()
        # Max pooling (CosmoGraphNet pools sum, mean and max) is off by default: the densest clump
        # of a lognormal box then drives the readout, and validation losses jumped by 10x.
        self.input_statistics, self.max_pool = input_statistics, max_pool
        pooled = (2 if max_pool else 1) * hidden + (2 * (in_channels + edge_features) if input_statistics else 0)
        # Averages over a thousand galaxies differ little between boxes next to their common
        # offset; batch norm across boxes puts those differences on the readout's scale.
        self.pool_norm = nn.BatchNorm1d(pooled) if pool_norm else nn.Identity()
        self.blocks = nn.ModuleList()
        node, edge = in_channels, edge_features
        for _ in range(layers):
            self.blocks.append(InteractionBlock(node, edge, global_features, hidden))
            node, edge = hidden, hidden
        self.readout = mlp([pooled + global_features, hidden, hidden, num_outputs])

    def forward(self, batch) -> torch.Tensor:
        if isinstance(batch, torch.Tensor):
            batch = image_graphs(batch)
        x, edge_attr, u_nodes = batch.x, batch.edge_attr, batch.u[batch.batch]
        inputs = (x, edge_attr)
        for k, block in enumerate(self.blocks):
            new_x, new_edge = block(x, batch.edge_index, edge_attr, u_nodes)
            # Residual once the widths agree (CosmoGraphNet adds each block's input).
            x, edge_attr = (new_x, new_edge) if k == 0 else (x + new_x, edge_attr + new_edge)
        return self.readout(torch.cat([self.pool(batch, x, inputs), batch.u], dim=1))

    def pool(self, batch, x, inputs) -> torch.Tensor:
        """Mean and max of the galaxies' states (and the moments of the input features), normalised."""
        from torch_geometric.nn import global_max_pool, global_mean_pool

        parts = [global_mean_pool(x, batch.batch)] + ([global_max_pool(x, batch.batch)] if self.max_pool else [])
        if self.input_statistics:
            parts += [moments(inputs[0], batch.batch, batch.num_graphs),
                      moments(inputs[1], batch.batch[batch.edge_index[1]], batch.num_graphs)]
        pooled = torch.cat(parts, dim=1)
        norm = self.pool_norm
        if self.training and batch.num_graphs == 1 and isinstance(norm, nn.BatchNorm1d):
            # One box has no batch statistics: use the running ones.
            return nn.functional.batch_norm(pooled, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)
        return norm(pooled)


class PowerSpectrumMLP(nn.Module):
    def __init__(self, n_bins: int, num_outputs: int, *, hidden: int = 64, depth: int = 2):
        super().__init__()
        self.n_bins = n_bins
        self.net = mlp([n_bins] + [hidden] * depth + [num_outputs])

    def forward(self, batch) -> torch.Tensor:
        return self.net(image_power(batch, self.n_bins) if isinstance(batch, torch.Tensor) else batch.pk)


@register_model(family="graph", min_image_size=1)
def cosmo_gnn(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """CosmoGraphNet-like GNN on a galaxy graph (MetaLayer-style blocks, mean pooling)."""
    return CosmoGNN(in_channels, num_classes, **kwargs)


@register_model(family="graph", min_image_size=1)
def pk_mlp(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """MLP on the catalogue's binned power spectrum (the summary-statistic baseline)."""
    return PowerSpectrumMLP(image_size, num_classes, **kwargs)
