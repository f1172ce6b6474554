"""Regression of a vector of continuous targets, optionally with a predicted uncertainty.

Spec: {"name": "regression", "targets": {name: catalog column}, "uncertainty": "gaussian" | "none",
"mc_dropout": number of stochastic passes at prediction time (0 = off)}; training adds "scale"
(the training targets' mean and std: the network sees standardised targets).

- uncertainty "gaussian": a heteroscedastic head, mean and log-variance per target, trained with
  the Gaussian negative log-likelihood (Kendall & Gal 2017; Perreault Levasseur+2017);
- mc_dropout N: N forward passes with dropout on (Gal & Ghahramani 2016); the predicted variance
  is then the mean aleatoric variance plus the variance of the N means.

Table contract: each target under its own name (the truth), `<name>_pred`, and `<name>_sigma`
(the Gaussian 1-sigma) when the model predicts an uncertainty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from deepsky.tasks.base import Task, register_task

LOG_VAR_RANGE = (-12.0, 8.0)  # keeps exp() finite in float16 and the NLL bounded early in training


def has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules())


@register_task("regression")
class RegressionTask(Task):
    selection_metric = ("r2_mean", "max")
    summary_suffixes = ("_err68", "_rmse", "_r2", "_bias", "_coverage68", "_coverage95")

    def __init__(self, spec: dict):
        spec = {"uncertainty": "none", "mc_dropout": 0, **spec}
        if spec["uncertainty"] not in ("none", "gaussian"):
            raise ValueError(f"regression uncertainty must be 'none' or 'gaussian', not {spec['uncertainty']!r}")
        if not spec.get("targets"):
            raise ValueError("a regression task needs targets (name -> catalog column)")
        super().__init__(spec)

    @property
    def names(self) -> list[str]:
        return list(self.spec["targets"])

    @property
    def gaussian(self) -> bool:
        return self.spec["uncertainty"] == "gaussian"

    @property
    def head_size(self) -> int:
        return len(self.names) * (2 if self.gaussian else 1)

    @property
    def summary_metrics(self) -> tuple[str, ...]:
        return tuple(f"{n}{s}" for n in self.names for s in self.summary_suffixes)

    # ---- targets
    def targets(self, catalog: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.spec["targets"].values() if c not in catalog]
        if missing:
            raise KeyError(f"regression targets {missing} are not columns of the catalog (has: {', '.join(catalog.columns)})")
        return catalog[list(self.spec["targets"].values())].to_numpy(dtype=np.float64)

    def fit_encoding(self, raw_train_targets: np.ndarray) -> None:
        std = raw_train_targets.std(axis=0)
        self.spec["scale"] = {"mean": raw_train_targets.mean(axis=0).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}

    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        if "scale" not in self.spec:
            raise RuntimeError("regression targets have no scale yet: call fit_encoding on the training targets")
        return np.asarray(self.spec["scale"]["mean"]), np.asarray(self.spec["scale"]["std"])

    def encode(self, raw: np.ndarray) -> torch.Tensor:
        mean, std = self._scale()
        return torch.from_numpy(((np.asarray(raw) - mean) / std).astype(np.float32))

    def check_training(self, settings: dict) -> None:
        if settings.get("augment", False):
            raise ValueError(
                "regression experiments cannot use the flip/rotation augmentation: it would change "
                "orientation and position targets without changing the labels; set training.augment: false"
            )

    # ---- training
    def split_outputs(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        t = len(self.names)
        if not self.gaussian:
            return outputs, None
        return outputs[:, :t], outputs[:, t:].clamp(*LOG_VAR_RANGE)

    def loss(self, outputs, targets):
        mean, log_var = self.split_outputs(outputs.float())
        if log_var is None:
            return F.mse_loss(mean, targets)
        return F.gaussian_nll_loss(mean, targets, log_var.exp(), full=True)

    def validation_metrics(self, outputs, targets) -> dict[str, float]:
        mean, _ = self.split_outputs(outputs)
        return {"val_rmse_scaled": float(((mean - targets) ** 2).mean().sqrt())}

    # ---- predictions
    def _passes(self, model, x, device, batch_size) -> list[torch.Tensor]:
        samples = int(self.spec.get("mc_dropout", 0))
        if samples <= 0 or not has_dropout(model):
            return [self.forward(model, x, device, batch_size)]
        outputs = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)  # the same predictions every time
            for _ in range(samples):
                model.eval()
                for module in model.modules():
                    if isinstance(module, nn.modules.dropout._DropoutNd):
                        module.train()
                outputs.append(self._forward_keep_mode(model, x, device, batch_size))
        model.eval()
        return outputs

    @torch.no_grad()
    def _forward_keep_mode(self, model, x, device, batch_size) -> torch.Tensor:
        chunks = [model(x[s : s + batch_size].to(device)).float().cpu() for s in range(0, len(x), batch_size)]
        return torch.cat(chunks) if chunks else torch.empty(0, self.head_size)

    def predict(self, model, x, device, batch_size=256) -> dict[str, np.ndarray]:
        passes = self._passes(model, x, device, batch_size)
        means, variances = [], []
        for out in passes:
            mean, log_var = self.split_outputs(out)
            means.append(mean.numpy().astype(np.float64))
            variances.append(log_var.exp().numpy() if log_var is not None else np.zeros_like(means[-1]))
        means, variances = np.stack(means), np.stack(variances)
        mu = means.mean(0)
        var = variances.mean(0) + means.var(0)
        centre, std = self._scale()
        columns = {}
        for k, name in enumerate(self.names):
            columns[f"{name}_pred"] = mu[:, k] * std[k] + centre[k]
            if self.gaussian or len(passes) > 1:
                columns[f"{name}_sigma"] = np.sqrt(var[:, k]) * std[k]
        return columns

    def truth_columns(self, raw_targets: np.ndarray) -> dict[str, np.ndarray]:
        raw = np.asarray(raw_targets)
        return {name: raw[:, k] for k, name in enumerate(self.names)}

    def metrics(self, table: pd.DataFrame) -> dict:
        from deepsky.metrics import regression_metrics

        names = self.names
        sigma = table[[f"{n}_sigma" for n in names]].to_numpy() if f"{names[0]}_sigma" in table else None
        return regression_metrics(table[names].to_numpy(), table[[f"{n}_pred" for n in names]].to_numpy(), names, sigma)

    def user_columns(self, predicted):
        return {name: [f"{v:.6g}" for v in values] for name, values in predicted.items()}
