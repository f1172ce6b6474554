"""Photometric redshifts (lecture 002): a point estimate or a mixture density network (MDN).

Spec: {"name": "photoz", "inputs": "photometry" | "images", "head": "point" | "mdn",
"n_components": K}; training adds "scale" (the training redshifts' mean and std) and, for
photometry, "feature_scale" (the training features' mean and std).

- inputs "photometry": the ugriz magnitudes and the four adjacent colours of every catalogue row
  (a fully connected network); "images": the cutouts (catalogue rows with `has_image`), asinh
  stretched, flipped and rotated at random in every training batch (the sky has no orientation);
- head "point": one output trained with the squared error; "mdn": K Gaussians (logits, means,
  log-widths), trained with the mixture negative log-likelihood through log-sum-exp (D'Isanto &
  Polsterer 2018).

Table contract: `z` (truth), `z_pred` (point estimate; for an MDN the mixture's mode), `z_lo68` /
`z_hi68` (16th / 84th percentiles of the mixture; NaN for a point estimate), and for an MDN
`mdn_weight_<k>`, `mdn_mean_<k>`, `mdn_sigma_<k>` in redshift units. `deepsky predict` writes
`z_phot`, `z_lo68`, `z_hi68` and the mixture per object.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from deepsky.tasks.base import register_task
from deepsky.tasks.photoz_metrics import GaussianMixture, interval_columns, photoz_metrics, sigma_nmad
from deepsky.tasks.regression import RegressionTask

LOG_SIGMA_RANGE = (-7.0, 3.0)  # in units of the training redshifts' std: finite in float16, bounded NLL
INPUTS = ("photometry", "images")
HEADS = ("point", "mdn")


def mdn_nll(outputs: torch.Tensor, targets: torch.Tensor, n_components: int) -> torch.Tensor:
    """Mean negative log-likelihood of targets (N, 1) under the mixtures in outputs (N, 3K)."""
    logits, means, log_sigmas = split_mixture(outputs.float(), n_components)
    y = targets.float().reshape(-1, 1)
    log_component = (
        F.log_softmax(logits, dim=1) - log_sigmas - 0.5 * math.log(2 * math.pi) - 0.5 * ((y - means) / log_sigmas.exp()) ** 2
    )
    return -torch.logsumexp(log_component, dim=1).mean()


def split_mixture(outputs: torch.Tensor, n_components: int):
    k = n_components
    return outputs[:, :k], outputs[:, k : 2 * k], outputs[:, 2 * k : 3 * k].clamp(*LOG_SIGMA_RANGE)


def photometry_features(catalog: pd.DataFrame, bands) -> np.ndarray:
    """(N, 2B-1): the magnitudes, then the colours of adjacent bands."""
    columns = [f"mag_{b}" for b in bands]
    missing = [c for c in columns if c not in catalog]
    if missing:
        raise KeyError(f"photometry columns {missing} are missing (has: {', '.join(map(str, catalog.columns))})")
    mags = catalog[columns].to_numpy(dtype=np.float64)
    return np.concatenate([mags, mags[:, :-1] - mags[:, 1:]], axis=1)


def dihedral(x: torch.Tensor) -> torch.Tensor:
    """A random rotation by a multiple of 90 degrees and a random flip per image."""
    n = len(x)
    flip = torch.rand(n, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    turns = torch.randint(0, 4, (n,), device=x.device)
    out = x
    for k in (1, 2, 3):
        out = torch.where((turns == k)[:, None, None, None], torch.rot90(x, k, dims=(-2, -1)), out)
    return out


@register_task("photoz")
class PhotozTask(RegressionTask):
    def __init__(self, spec: dict):
        spec = {"inputs": "photometry", "head": "mdn", "n_components": 5, "bands": list("ugriz"), **spec}
        if spec["inputs"] not in INPUTS:
            raise ValueError(f"photoz inputs must be one of {INPUTS}, not {spec['inputs']!r}")
        if spec["head"] not in HEADS:
            raise ValueError(f"photoz head must be one of {HEADS}, not {spec['head']!r}")
        if int(spec["n_components"]) < 1:
            raise ValueError("photoz n_components must be >= 1")
        super().__init__({**spec, "targets": {"z": "z"}, "uncertainty": "none", "mc_dropout": 0})

    @property
    def mdn(self) -> bool:
        return self.spec["head"] == "mdn"

    @property
    def images(self) -> bool:
        return self.spec["inputs"] == "images"

    @property
    def reads_tables(self) -> bool:
        """`deepsky predict` feeds catalogue rows, not FITS cutouts, to a photometry model."""
        return not self.images

    @property
    def n_components(self) -> int:
        return int(self.spec["n_components"])

    @property
    def head_size(self) -> int:
        return 3 * self.n_components if self.mdn else 1

    summary_metrics = ("sigma_nmad", "outlier_frac_015", "outlier_frac_005", "bias", "crps", "pit_ks",
                       "hdr_coverage68", "hdr_coverage95")

    def check_training(self, settings: dict) -> None:
        if settings.get("augment", False):
            raise ValueError("photoz experiments flip and rotate image batches themselves; set training.augment: false")

    # ---- data: catalogue rows (photometry) or cutouts
    def _rows(self, dataset_dir, split_path):
        from deepsky.data import storage

        catalog = pd.read_parquet(f"{dataset_dir}/{storage.CATALOG}").set_index("index", drop=False)
        split = pd.read_parquet(split_path)
        if self.images:
            if "image_row" not in catalog:
                raise KeyError(f"{dataset_dir}/{storage.CATALOG} has no image_row column: not a photo-z survey with cutouts")
            split = split[split["index"].isin(catalog.index[catalog["image_row"] >= 0])]
        return catalog, split

    def _inputs(self, dataset_dir, catalog: pd.DataFrame) -> torch.Tensor:
        """Raw model inputs of these rows: unscaled features, or stretched cutouts."""
        if not self.images:
            return torch.from_numpy(photometry_features(catalog, self.spec["bands"]).astype(np.float32))
        from deepsky.data import storage
        from deepsky.data.tensors import asinh_stretch

        images = storage.load_images(f"{dataset_dir}/{storage.IMAGES}")
        return torch.from_numpy(asinh_stretch(images[catalog["image_row"].to_numpy()]))

    def _scale_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.images:
            return x
        if "feature_scale" not in self.spec:
            raise RuntimeError("photometry features have no scale yet: load a training fold first")
        mean = torch.tensor(self.spec["feature_scale"]["mean"], dtype=torch.float32)
        std = torch.tensor(self.spec["feature_scale"]["std"], dtype=torch.float32)
        return (x - mean) / std

    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        from deepsky.data.split import fold_indices

        catalog, split = self._rows(dataset_dir, split_path)
        parts = {name: np.sort(idx) for name, idx in fold_indices(split, fold).items()}
        raw = {name: self.targets(catalog.loc[idx]) for name, idx in parts.items()}
        self.fit_encoding(raw["train"])
        inputs = {name: self._inputs(dataset_dir, catalog.loc[idx]) for name, idx in parts.items()}
        if not self.images:
            train = inputs["train"].double()
            std = train.std(0)
            self.spec["feature_scale"] = {"mean": train.mean(0).tolist(), "std": torch.where(std > 0, std, 1).tolist()}
        out = {}
        for name, idx in parts.items():
            out[name] = (self._scale_features(inputs[name]), self.encode(raw[name]))
            out[name + "_index"] = idx
        return out

    def load_test(self, dataset_dir, split_path):
        """Test rows in index order; inputs unscaled (predict scales them with each fold's own scale).

        Photometry comes as a NumPy array: the evaluate stage registers tensor-input models as MLflow
        pyfuncs whose wrapper asinh-stretches cutouts, which does not apply to a magnitude vector.
        """
        catalog, split = self._rows(dataset_dir, split_path)
        index = np.sort(split.loc[split["split"] == "test", "index"].to_numpy())
        rows = catalog.loc[index]
        x = self._inputs(dataset_dir, rows)
        return index, (x if self.images else x.numpy()), self.targets(rows)

    def table_inputs(self, table: pd.DataFrame) -> torch.Tensor:
        """Raw inputs of a user's catalogue table (deepsky predict): its mag_<band> columns."""
        if self.images:
            raise ValueError("this photo-z model reads cutouts, not catalogue tables")
        return torch.from_numpy(photometry_features(table, self.spec["bands"]).astype(np.float32))

    def input_dims(self, data) -> dict:
        x = data[0]
        if self.images:
            return {"in_channels": int(x.shape[1]), "image_size": int(x.shape[-1])}
        return {"in_channels": int(x.shape[1]), "image_size": 1}

    # ---- training
    def loss(self, outputs, targets):
        if self.mdn:
            return mdn_nll(outputs, targets, self.n_components)
        return F.mse_loss(outputs.float(), targets.float())

    def train_step(self, model: nn.Module, batch, optimizers: dict, amp) -> dict[str, float]:
        x, y = batch
        if self.images:
            x = dihedral(x)
        with amp.autocast():
            loss = self.loss(model(x), y)
        amp.step(loss, optimizers["model"])
        return {"loss": loss.item()}

    def validation_metrics(self, outputs, targets) -> dict[str, float]:
        centre, std = (float(v[0]) for v in self._scale())
        if self.mdn:
            logits, means, _ = split_mixture(outputs.float(), self.n_components)
            z_pred = (F.softmax(logits, 1) * means).sum(1)  # the mixture mean: cheap, once per epoch
        else:
            z_pred = outputs.float()[:, 0]
        z_pred = z_pred.numpy() * std + centre
        z_true = targets.float()[:, 0].numpy() * std + centre
        return {"val_sigma_nmad": sigma_nmad((z_pred - z_true) / (1 + z_true))}

    # ---- predictions
    def mixture(self, outputs: torch.Tensor) -> GaussianMixture:
        centre, std = (float(v[0]) for v in self._scale())
        logits, means, log_sigmas = split_mixture(outputs.float(), self.n_components)
        return GaussianMixture(
            F.softmax(logits, 1).numpy(), means.numpy().astype(np.float64) * std + centre,
            log_sigmas.exp().numpy().astype(np.float64) * std,
        )

    def predict(self, model, x, device, batch_size=256) -> dict[str, np.ndarray]:
        outputs = self.forward(model, self._scale_features(torch.as_tensor(x)), device, batch_size)
        if not self.mdn:
            centre, std = (float(v[0]) for v in self._scale())
            z_pred = outputs[:, 0].numpy().astype(np.float64) * std + centre
            nan = np.full(len(z_pred), np.nan)
            return {"z_pred": z_pred, "z_lo68": nan, "z_hi68": nan.copy()}
        mixture = self.mixture(outputs)
        # float32 halves the table (K x 3 columns per object); the summaries are computed in float64.
        return {**interval_columns(mixture), **{k: v.astype(np.float32) for k, v in mixture.columns().items()}}

    def metrics(self, table: pd.DataFrame) -> dict:
        return photoz_metrics(table)

    def user_columns(self, predicted):
        renamed = {("z_phot" if name == "z_pred" else name): values for name, values in predicted.items()}
        return {name: [f"{v:.6g}" for v in values] for name, values in renamed.items()}
