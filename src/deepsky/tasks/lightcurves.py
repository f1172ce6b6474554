"""`sequence_classification`: multi-class classification of light curves by sequence models.

The targets, loss, prediction columns (`label`, `p_<class>`, `predicted`) and metrics are those of
`multiclass`; what differs is the data: variable-length sequences of observations held as one
zero-padded tensor with lengths, cut per batch to its longest sequence, and turned into model
features per batch (`deepsky.data.lightcurves_tensors.encode`).

Spec options: `bands` (from the dataset card at load time), `truncate_fraction` (the share of
training light curves cut at a random fraction of their time span, so that a model also learns
to classify partial light curves, as RAPID does), `clip_grad_norm` (tanh RNNs need it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepsky.data import storage
from deepsky.data.lightcurves_tensors import encode, load_objects, n_features, truncate
from deepsky.data.split import fold_indices
from deepsky.tasks.base import Amp, register_task
from deepsky.tasks.classification import MulticlassTask


@register_task("sequence_classification")
class SequenceClassificationTask(MulticlassTask):
    summary_metrics = ("accuracy", "auroc_macro_ovr")

    @property
    def bands(self) -> list[str]:
        if "bands" not in self.spec:
            raise ValueError("sequence_classification: the task spec has no 'bands' (load a dataset first)")
        return list(self.spec["bands"])

    # ---- data: (raw (N, L, C), lengths (N,), encoded targets (N,))
    def _catalog(self, dataset_dir) -> pd.DataFrame:
        self.spec["bands"] = storage.read_card(dataset_dir)["bands"]
        return pd.read_parquet(Path(dataset_dir) / storage.CATALOG).set_index("index", drop=False)

    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        if augmented_dir is not None:
            raise ValueError("sequence_classification: image augmentation does not apply to light curves")
        catalog = self._catalog(dataset_dir)
        parts = {name: np.sort(idx) for name, idx in fold_indices(pd.read_parquet(split_path), fold).items()}
        out = {}
        for name, idx in parts.items():
            raw, lengths = load_objects(dataset_dir, idx, self.bands)
            out[name] = (raw, lengths, self.encode(self.targets(catalog.loc[idx])))
            out[name + "_index"] = idx
        return out

    def load_test(self, dataset_dir, split_path):
        catalog = self._catalog(dataset_dir)
        split = pd.read_parquet(split_path)
        index = np.sort(split.loc[split["split"] == "test", "index"].to_numpy())
        return index, load_objects(dataset_dir, index, self.bands), self.targets(catalog.loc[index])

    def input_dims(self, data) -> dict:
        return {"in_channels": n_features(len(self.bands)), "image_size": int(data[0].shape[1])}

    def check_training(self, settings: dict) -> None:
        if settings.get("augment", False):
            raise ValueError("training.augment: image augmentation does not apply to light curves; set it to false")

    # ---- batches
    def batch(self, data, idx: torch.Tensor, device: torch.device):
        raw, lengths, y = data
        lengths = lengths[idx]
        longest = int(lengths.max())
        return raw[idx, :longest].to(device, non_blocking=True), lengths.to(device), y[idx].to(device)

    def model_input(self, batch):
        return encode(batch[0], batch[1])

    def train_step(self, model: nn.Module, batch, optimizers: dict, amp: Amp) -> dict[str, float]:
        raw, lengths, y = batch
        share = float(self.spec.get("truncate_fraction", 0.0))
        if share > 0:
            # The loop seeds torch per epoch: a resumed run cuts exactly the same light curves.
            cut = torch.rand(len(lengths)) < share
            fraction = torch.where(cut, torch.empty(len(lengths)).uniform_(0.1, 1.0), torch.ones(len(lengths)))
            lengths = truncate(raw, lengths, fraction.to(raw.device))
        optimizer = optimizers["model"]
        with amp.autocast():
            loss = self.loss(model(encode(raw, lengths)), y)
        optimizer.zero_grad(set_to_none=True)
        amp.scaler.scale(loss).backward()
        clip = float(self.spec.get("clip_grad_norm", 1.0))
        if clip > 0:
            amp.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        amp.scaler.step(optimizer)
        return {"loss": loss.item()}

    @torch.no_grad()
    def forward(self, model: nn.Module, x, device: torch.device, batch_size: int = 256) -> torch.Tensor:
        """Logits of (raw, lengths) sequences in eval mode, on the CPU, in float32."""
        raw, lengths = x[0], x[1]
        model.eval()
        amp = Amp(device, enabled=True)
        chunks = []
        for start in range(0, len(raw), batch_size):
            part = lengths[start : start + batch_size]
            r = raw[start : start + batch_size, : int(part.max())].to(device, non_blocking=True)
            with amp.autocast():
                chunks.append(model(encode(r, part.to(device))).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, self.head_size)

    def validate(self, model: nn.Module, data, device: torch.device, batch_size: int) -> dict[str, float]:
        raw, lengths, y = data
        outputs = self.forward(model, (raw, lengths), device, batch_size)
        return {"val_loss": float(self.loss(outputs, y)), **self.validation_metrics(outputs, y)}

    def user_columns(self, predicted: dict) -> dict[str, list]:
        """`deepsky predict`: the object id, the predicted class and the class probabilities."""
        columns = super().user_columns(predicted)
        return {"object": list(predicted["object"]), **columns} if "object" in predicted else columns
