"""Cosmological parameters from galaxy catalogues: regression on graphs (CosmoGraphNet).

Spec: {"name": "graph_regression", "targets": {name: catalog column}, "graph": {"linking_radius":
Mpc/h, "pk_bins": n, "pk_grid": n}}; training adds "scale" as for `regression`.

An example is one box: a PyG `Data` graph of its galaxies (deepsky.data.cosmo_graphs_graph) that
also carries the box's binned P(k), so one task serves the GNN (which reads the graph) and the
power-spectrum MLP (which reads `pk`); a batch is a PyG `Batch`. The head predicts a mean and a
log-variance per parameter, trained with the moment-network loss of Jeffrey & Wandelt 2020 (as
CosmoGraphNet): per parameter, log sum (theta - mu)^2 + log sum ((theta - mu)^2 - sigma^2)^2, so mu
is the posterior mean and sigma the posterior standard deviation, with no Gaussian assumption.

Table contract: the `regression` columns (`<name>`, `<name>_pred`, `<name>_sigma`, `fold`), and
metrics adding the mean relative error `<name>_rel_error` (CosmoGraphNet's epsilon) and the
reduced chi^2 `<name>_chi2` to those of `regression`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepsky.tasks.base import register_task
from deepsky.tasks.regression import RegressionTask

DEFAULT_GRAPH = {
    "linking_radius": 16.0,  # Mpc/h: about 4 neighbours per galaxy at 1000 galaxies in (200 Mpc/h)^3
    "pk_bins": 12,           # linear k bins from the fundamental mode to Nyquist
    "pk_grid": 32,           # cells per side for the P(k) estimate
}


def moment_loss(mean: torch.Tensor, variance: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Jeffrey & Wandelt 2020: sum over parameters of log E[(theta-mu)^2] + log E[((theta-mu)^2 - sigma^2)^2]."""
    squared = (targets - mean) ** 2
    return (torch.log(squared.mean(0)) + torch.log(((squared - variance) ** 2).mean(0))).sum()


def relative_error(truth, pred) -> float:
    """Mean |pred - truth| / |truth| (CosmoGraphNet's epsilon; sklearn's MAPE)."""
    from sklearn.metrics import mean_absolute_percentage_error

    return float(mean_absolute_percentage_error(truth, pred))


def reduced_chi2(truth, pred, sigma) -> float:
    """Mean of ((pred - truth) / sigma)^2: 1 when the predicted sigmas are right."""
    truth, pred, sigma = (np.asarray(a, dtype=float) for a in (truth, pred, sigma))
    return float(np.mean(((pred - truth) / sigma) ** 2))


@register_task("graph_regression")
class GraphRegressionTask(RegressionTask):
    summary_suffixes = RegressionTask.summary_suffixes + ("_rel_error", "_chi2")

    def __init__(self, spec: dict):
        spec = {**spec, "uncertainty": "gaussian", "mc_dropout": 0, "graph": {**DEFAULT_GRAPH, **spec.get("graph", {})}}
        super().__init__(spec)

    # ---- data: boxes of galaxies -> graphs (built here, from galaxies.parquet)
    def load_boxes(self, dataset_dir, indices=None) -> tuple[np.ndarray, list, np.ndarray]:
        """(box indices, graphs, raw targets) of these boxes (default all), in index order."""
        from deepsky.data import storage
        from deepsky.data.cosmo_graphs import load_catalogues
        from deepsky.data.cosmo_graphs_graph import catalogue_graph, power_features

        dataset_dir = Path(dataset_dir)
        card = storage.read_card(dataset_dir)
        if "simulation" not in card or "box_size" not in card["simulation"]:
            raise ValueError(f"{dataset_dir / storage.CARD} has no simulation.box_size: not a galaxy-catalogue dataset")
        box = float(card["simulation"]["box_size"])
        catalog = pd.read_parquet(dataset_dir / storage.CATALOG).set_index("index", drop=False)
        index = np.sort(catalog["index"].to_numpy() if indices is None else np.asarray(indices))
        boxes = load_catalogues(dataset_dir)
        graph = self.spec["graph"]
        graphs = []
        for i in index.tolist():
            positions = boxes.get(i, np.zeros((0, 3)))
            pk = power_features(positions, box, graph["pk_grid"], graph["pk_bins"])
            graphs.append(catalogue_graph(positions, box, graph["linking_radius"], pk))
        return index, graphs, self.targets(catalog.loc[index])

    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        from deepsky.data.split import fold_indices

        parts = fold_indices(pd.read_parquet(split_path), fold)
        loaded = {name: self.load_boxes(dataset_dir, parts[name]) for name in ("train", "val")}  # test: load_test
        self.fit_encoding(loaded["train"][2])
        out = {}
        for name, (index, graphs, raw) in loaded.items():
            for graph, y in zip(graphs, self.encode(raw)):
                graph.y = y.reshape(1, -1)
            out[name], out[name + "_index"] = graphs, index
        return out

    def load_test(self, dataset_dir, split_path):
        split = pd.read_parquet(split_path)
        return self.load_boxes(dataset_dir, split.loc[split["split"] == "test", "index"].to_numpy())

    def input_dims(self, data) -> dict:
        return {"in_channels": int(data[0].x.shape[1]), "image_size": int(data[0].pk.shape[1])}

    # ---- batches are PyG Batches
    def num_examples(self, data) -> int:
        return len(data)

    def pin(self, data):
        return data

    def batch(self, data, idx: torch.Tensor, device: torch.device):
        from torch_geometric.data import Batch

        return Batch.from_data_list([data[i] for i in idx.tolist()]).to(device)

    def model_input(self, batch):
        return batch

    def loss(self, outputs, targets):
        mean, log_var = self.split_outputs(outputs.float())
        return moment_loss(mean, log_var.exp(), targets)

    def train_step(self, model, batch, optimizers, amp) -> dict[str, float]:
        with amp.autocast():
            outputs = model(batch)
        loss = self.loss(outputs, batch.y)
        amp.step(loss, optimizers["model"])
        return {"loss": loss.item()}

    @torch.no_grad()
    def forward(self, model, graphs, device, batch_size: int = 256) -> torch.Tensor:
        from torch_geometric.data import Batch

        model.eval()
        chunks = [model(Batch.from_data_list(graphs[s : s + batch_size]).to(device)).float().cpu()
                  for s in range(0, len(graphs), batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.head_size)

    def validate(self, model, data, device, batch_size) -> dict[str, float]:
        outputs = self.forward(model, data, device, batch_size)
        targets = torch.cat([graph.y for graph in data])
        return {"val_loss": float(self.loss(outputs, targets)), **self.validation_metrics(outputs, targets)}

    # ---- metrics: regression's, plus CosmoGraphNet's relative error and the reduced chi^2
    def metrics(self, table: pd.DataFrame) -> dict:
        metrics = super().metrics(table)
        for name in self.names:
            metrics[f"{name}_rel_error"] = relative_error(table[name], table[f"{name}_pred"])
            if f"{name}_sigma" in table:
                metrics[f"{name}_chi2"] = reduced_chi2(table[name], table[f"{name}_pred"], table[f"{name}_sigma"])
        return metrics
