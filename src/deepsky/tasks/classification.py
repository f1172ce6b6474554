"""Classification tasks: `binary` (one logit, P(class 1) as `score`) and `multiclass` (softmax
over K classes, `p_<class>` columns and `predicted`). The table keeps `label`, the true class."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepsky.tasks.base import Task, register_task


class _Classification(Task):
    summary_metrics = ("accuracy", "auroc", "tpr0", "tpr10", "auroc_macro_ovr")

    @property
    def class_names(self) -> list[str]:
        return list(self.spec["class_names"])

    def targets(self, catalog: pd.DataFrame) -> np.ndarray:
        return catalog["label"].to_numpy()

    def encode(self, raw: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(raw, dtype=np.int64))

    def truth_columns(self, raw_targets: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": np.asarray(raw_targets)}

    def validation_metrics(self, outputs, targets) -> dict[str, float]:
        return {"val_accuracy": float((self.predicted_class(outputs) == targets).float().mean())}


@register_task("binary")
class BinaryTask(_Classification):
    head_size = 1
    selection_metric = ("auroc", "max")
    _loss = nn.BCEWithLogitsLoss()

    def loss(self, outputs, targets):
        return self._loss(outputs, targets.float().unsqueeze(1))

    @staticmethod
    def predicted_class(outputs) -> torch.Tensor:
        return (torch.sigmoid(outputs.squeeze(1)) >= 0.5).long()

    def predict(self, model, x, device, batch_size=256):
        return {"score": torch.sigmoid(self.forward(model, x, device, batch_size).squeeze(1)).numpy()}

    def metrics(self, table):
        from deepsky.metrics import binary_metrics

        return binary_metrics(table["label"], table["score"])

    def user_columns(self, predicted):
        return {f"score_{self.class_names[1]}": [f"{s:.6f}" for s in predicted["score"]]}


@register_task("multiclass")
class MulticlassTask(_Classification):
    selection_metric = ("accuracy", "max")
    _loss = nn.CrossEntropyLoss()

    @property
    def head_size(self) -> int:
        return len(self.class_names)

    def loss(self, outputs, targets):
        return self._loss(outputs, targets)

    @staticmethod
    def predicted_class(outputs) -> torch.Tensor:
        return outputs.argmax(1)

    def predict(self, model, x, device, batch_size=256):
        p = torch.softmax(self.forward(model, x, device, batch_size), dim=1).numpy()
        columns = {f"p_{name}": p[:, k] for k, name in enumerate(self.class_names)}
        columns["predicted"] = p.argmax(1) if len(p) else np.empty(0, dtype=np.int64)
        return columns

    def metrics(self, table):
        from deepsky.metrics import multiclass_metrics

        p = table[[f"p_{name}" for name in self.class_names]].to_numpy()
        return multiclass_metrics(table["label"], p, self.class_names)

    def user_columns(self, predicted):
        columns = {"predicted": [self.class_names[int(k)] for k in predicted["predicted"]]}
        columns.update({f"p_{n}": [f"{v:.6f}" for v in predicted[f"p_{n}"]] for n in self.class_names})
        return columns
