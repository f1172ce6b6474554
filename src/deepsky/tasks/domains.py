"""Domain adaptation (`domain_adaptation`): a classifier trained on a labelled source domain and an
unlabelled target domain (lecture 002; Ciprijanovic et al. 2021, DeepMerge II).

Each step takes a labelled source batch and an unlabelled target batch. Networks without
adaptation (`adaptation_method(model) == "none"`) learn from the source batch only; `mmd` adds the
maximum mean discrepancy between the two batches' latent features (Gretton et al. 2012, JMLR 13,
723); `adversarial` adds a domain discriminator behind a gradient-reversal layer (Ganin et al.
2016). Validation watches the source loss (no target labels) and reports the feature MMD.

Test predictions cover the held-out test sets of both domains: the table has `domain` (dataset
name) and `role` (source | target); metrics carry `_source` / `_target` suffixes, and the plain
names (accuracy, auroc, ...) are the target domain's, where remedies are judged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepsky.models.domains_nets import (
    adaptation_method,
    reverse_gradient,
    split_backbone_head,
)
from deepsky.tasks.base import Task, make_task, register_task

ROLES = ("source", "target")
KERNEL_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


# ---------------------------------------------------------------- maximum mean discrepancy
def gaussian_kernel(a: torch.Tensor, b: torch.Tensor, sigmas) -> torch.Tensor:
    """sum_s exp(-|a_i - b_j|^2 / (2 s^2)): a sum of Gaussian kernels, (len(a), len(b))."""
    d2 = torch.cdist(a, b).pow(2)
    return sum(torch.exp(-d2 / (2.0 * s * s)) for s in sigmas)


def mmd2(x: torch.Tensor, y: torch.Tensor, sigmas) -> torch.Tensor:
    """Unbiased estimate of the squared MMD between the samples x (n, d) and y (m, d)
    (Gretton et al. 2012, eq. 3): the within-sample means leave out i == j."""
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"MMD needs at least two points per sample, got {n} and {m}")
    kxx, kyy, kxy = gaussian_kernel(x, x, sigmas), gaussian_kernel(y, y, sigmas), gaussian_kernel(x, y, sigmas)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return within_x + within_y - 2.0 * kxy.mean()


def median_bandwidths(x: torch.Tensor, y: torch.Tensor, scales=KERNEL_SCALES) -> list[float]:
    """Kernel widths around the median pairwise distance of the pooled sample (a constant)."""
    pooled = torch.cat([x, y]).detach().float()
    d = torch.pdist(pooled)
    median = float(d.median()) if len(d) else 1.0
    return [max(median, 1e-6) * s for s in scales]


def feature_mmd(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return mmd2(x, y, median_bandwidths(x, y))


# ---------------------------------------------------------------- the task
def _split_part(base: Path, name: str, fold: int):
    """Indices of one dataset's parts (train / val / test) for this fold, from its split table."""
    from deepsky.data.split import fold_indices

    return fold_indices(pd.read_parquet(base / name / "split.parquet"), fold)


def _stretched(base: Path, name: str, index: np.ndarray) -> torch.Tensor:
    from deepsky.data import storage
    from deepsky.data.tensors import asinh_stretch

    images = storage.load_images(base / name / storage.IMAGES)
    return torch.from_numpy(asinh_stretch(images[np.sort(index)]))


@register_task("domain_adaptation")
class DomainAdaptationTask(Task):
    """Spec: class_names, source and target (dataset names), mmd_weight, adversarial_weight."""

    def __init__(self, spec: dict):
        super().__init__(spec)
        names = list(spec["class_names"])
        self.inner = make_task({"name": "binary" if len(names) == 2 else "multiclass", "class_names": names})
        self.metric = self.inner.selection_metric[0]
        self.summary_metrics = tuple(f"{m}{part}" for m in self.inner.summary_metrics for part in ("_source", "_target", ""))
        # Picking a fold with target labels would be cheating: source labels only.
        self.selection_metric = (f"{self.metric}_source", "max")
        self._mix_batchnorm = False

    # ---- classification: delegated
    @property
    def head_size(self) -> int:
        return self.inner.head_size

    def targets(self, catalog):
        return self.inner.targets(catalog)

    def encode(self, raw):
        return self.inner.encode(raw)

    def loss(self, outputs, targets):
        return self.inner.loss(outputs, targets)

    def predict(self, model, x, device, batch_size=256):
        return self.inner.predict(model, x, device, batch_size)

    def user_columns(self, predicted):
        return self.inner.user_columns(predicted)

    # ---- data: labelled source fold + unlabelled target images of the same fold
    def load_fold(self, dataset_dir, split_path, fold, augmented_dir=None):
        from deepsky.data.tensors import load_fold

        base = Path(dataset_dir).parent
        labelled = load_fold(dataset_dir, split_path, fold, augmented_dir, task=self)
        target = _split_part(base, self.spec["target"], fold)
        out = {}
        for part in ("train", "val"):
            x, y = labelled[part]
            out[part] = {"x": x, "y": y, "target_x": _stretched(base, self.spec["target"], target[part])}
        return out

    def input_dims(self, data):
        return {"in_channels": int(data["x"].shape[1]), "image_size": int(data["x"].shape[-1])}

    def num_examples(self, data):
        return len(data["x"])

    def pin(self, data):
        return {k: v.pin_memory() for k, v in data.items()}

    def batch(self, data, idx, device):
        # Target images drawn from the global generator, which the loop seeds every epoch.
        target_idx = torch.randint(len(data["target_x"]), (len(idx),))
        return (data["x"][idx].to(device, non_blocking=True), data["y"][idx].to(device, non_blocking=True),
                data["target_x"][target_idx].to(device, non_blocking=True))

    def model_input(self, batch):
        return torch.cat([batch[0], batch[2]]) if self._mix_batchnorm else batch[0]

    def recalibrate_batchnorm(self, model, data, device, batch_size):
        # Adapted networks see mixed source+target batches in training: their statistics too.
        self._mix_batchnorm = adaptation_method(model) != "none"
        try:
            return super().recalibrate_batchnorm(model, data, device, batch_size)
        finally:
            self._mix_batchnorm = False

    # ---- one step
    def train_step(self, model, batch, optimizers, amp):
        xs, ys, xt = batch
        method = adaptation_method(model)
        parts = {}
        with amp.autocast():
            if method == "none":
                loss = classification = self.loss(model(xs), ys)
            else:
                features, head = split_backbone_head(model)
                f = features(torch.cat([xs, xt]))
                classification = self.loss(head(f[: len(xs)]), ys)
                if method == "mmd":
                    discrepancy = feature_mmd(f[: len(xs)].float(), f[len(xs):].float())
                    loss = classification + float(self.spec.get("mmd_weight", 1.0)) * discrepancy
                    parts["mmd"] = discrepancy.item()
                else:
                    reversed_features = reverse_gradient(f, float(self.spec.get("adversarial_weight", 1.0)))
                    domain = torch.cat([torch.zeros(len(xs)), torch.ones(len(xt))]).to(f.device)
                    domain_loss = nn.functional.binary_cross_entropy_with_logits(
                        model.discriminator(reversed_features).squeeze(1).float(), domain)
                    loss = classification + domain_loss
                    parts["domain_loss"] = domain_loss.item()
        amp.step(loss, optimizers["model"])
        return {"loss": loss.item(), "classification_loss": classification.item(), **parts}

    @torch.no_grad()
    def features(self, model, x, device, batch_size=256) -> torch.Tensor:
        """Latent features (the head's input) in evaluation mode, on the CPU."""
        model.eval()
        extractor, _ = split_backbone_head(model)
        chunks = [extractor(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(chunks)

    def validate(self, model, data, device, batch_size):
        outputs = self.forward(model, data["x"], device, batch_size)
        metrics = {"val_loss": float(self.loss(outputs, data["y"])), **self.inner.validation_metrics(outputs, data["y"])}
        fs = self.features(model, data["x"], device, batch_size)
        ft = self.features(model, data["target_x"], device, batch_size)
        metrics["val_feature_mmd"] = float(feature_mmd(fs, ft))
        return metrics

    # ---- test: both domains
    def load_test(self, dataset_dir, split_path):
        from deepsky.data.tensors import asinh_stretch, load_test_set

        base = Path(dataset_dir).parent
        index, images, truth = [], [], []
        for role in ROLES:
            name = self.spec[role]
            idx, raw_images, labels = load_test_set(base / name, base / name / "split.parquet", task=self)
            index.append(idx)
            images.append(asinh_stretch(raw_images))
            truth.append(pd.DataFrame({"label": labels, "domain": name, "role": role}))
        return np.concatenate(index), torch.from_numpy(np.concatenate(images)), pd.concat(truth, ignore_index=True)

    def truth_columns(self, raw_targets):
        return {name: raw_targets[name].to_numpy() for name in ("label", "domain", "role")}

    def metrics(self, table):
        out = {}
        for role in ROLES:
            part = table[table["role"] == role]
            if len(part):
                measured = self.inner.metrics(part)
                out.update({f"{k}_{role}": v for k, v in measured.items() if k != "confusion"})
                if role == "target":
                    out.update(measured)
        return out
