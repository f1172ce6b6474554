"""Image-to-image tasks on artificial blends (lecture 002: the U-Net; Boucaud+2020, Hausen+2020).

Both read a `simulate_blends` dataset (deepsky.data.deblend): the input is the asinh-stretched
blend (deepsky.data.tensors.asinh_stretch), as for every image task.

``deblend``: the target is the noiseless image of the central galaxy in units of the band's sky
noise sigma (a per-dataset constant from the card), so the output times sigma is the deblended
galaxy in the input's units (nJy) and fluxes are sums over it. Uncertainty: a heteroscedastic
Gaussian head (mean and log-variance per pixel and band, Gaussian NLL; aleatoric) plus MC dropout
at prediction (epistemic). Chosen over a probabilistic U-Net (Kohl+2018) because it trains in one
pass with the shared loop, gives a per-pixel sigma directly, and its calibration is checkable with
z-scores; it does not sample coherent alternative deblendings as the probabilistic U-Net does.
The flux sigma adds the pixel sigmas linearly (the errors of a smooth network output are
correlated over the galaxy: the quadrature sum, as if pixels were independent, covered 22 % of the
true fluxes at 1 sigma) and, in quadrature, the scatter of the flux over the dropout passes.

``segmentation``: per-pixel classes 0 background, 1 central, 2 companion, cross-entropy;
IoU and Dice per class from the summed confusion counts (checked against torchmetrics in the tests).

Prediction tables: one row per test blend (columns in `DeblendTask.predict` and `prediction_table`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from deepsky.tasks.base import Task, register_task
from deepsky.tasks.regression import LOG_VAR_RANGE, has_dropout

SMALL_SEPARATION, LARGE_SEPARATION = 1.0, 2.0  # arcsec: the "small" and "large" subsets of the metrics
CLASSES = ("background", "central", "companion")
CATALOG_COLUMNS = ["index", "true_flux", "flux_baseline", "baseline_detected", "separation_arcsec", "flux_ratio",
                   "n_companions", "e1", "e2"]


def load_blends(dataset_dir, split_path, parts: list[str], fold: int | None):
    """{part: (catalog rows, stretched blends, centrals, segmentation)} in index order."""
    from deepsky.data import storage
    from deepsky.data.split import fold_indices
    from deepsky.data.tensors import asinh_stretch

    dataset_dir = Path(dataset_dir)
    for name in ("central.npy", "segmentation.npy", storage.IMAGES):
        if not (dataset_dir / name).exists():
            raise FileNotFoundError(f"{dataset_dir / name}: not a simulate_blends dataset (run the data rule)")
    images = storage.load_images(dataset_dir / storage.IMAGES)
    central = np.load(dataset_dir / "central.npy", mmap_mode="r")
    segmentation = np.load(dataset_dir / "segmentation.npy", mmap_mode="r")
    catalog = pd.read_parquet(dataset_dir / storage.CATALOG).set_index("index", drop=False)
    split = pd.read_parquet(split_path)
    if fold is None:
        indices = {"test": split.loc[split["split"] == "test", "index"].to_numpy()}
    else:
        indices = fold_indices(split, fold)
    out = {}
    for part in parts:
        idx = np.sort(indices[part])
        out[part] = (catalog.loc[idx], torch.from_numpy(asinh_stretch(images[idx])), np.asarray(central[idx], np.float32),
                     np.asarray(segmentation[idx]))
    return out


def relative_error_stats(measured, truth, prefix: str) -> dict[str, float]:
    """Median (bias), 68% half-width (p84 - p16) / 2 and sigma_NMAD of (measured - truth) / truth."""
    r = (np.asarray(measured, float) - np.asarray(truth, float)) / np.asarray(truth, float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return {f"{prefix}_bias": float("nan"), f"{prefix}_err68": float("nan"), f"{prefix}_nmad": float("nan")}
    median = float(np.median(r))
    p16, p84 = np.percentile(r, [16, 84])
    return {f"{prefix}_bias": median, f"{prefix}_err68": float((p84 - p16) / 2),
            f"{prefix}_nmad": float(1.4826 * np.median(np.abs(r - median)))}


class BlendTask(Task):
    """What the two blend tasks share: data loading, inputs, the per-blend truth columns."""

    registers_pyfunc = False  # predictions carry per-pixel arrays, not only columns

    def check_training(self, settings: dict) -> None:
        if settings.get("augment", False):
            raise ValueError(f"{self.name}: the flip/rotation augmentation would not move the targets; set training.augment: false")

    def _remember_dataset(self, dataset_dir) -> None:
        from deepsky.data import storage

        card = storage.read_card(dataset_dir)
        sigma = card["provenance"].get("noise_sigma_njy")
        if sigma is None:
            raise KeyError(f"{dataset_dir}/card.json has no provenance.noise_sigma_njy: not a simulate_blends dataset")
        self.spec["noise_sigma"] = [float(sigma[b]) for b in card["bands"]]
        self.spec["bands"] = list(card["bands"])
        self.spec["reference_band"] = card["provenance"]["simulation"]["reference_band"]

    @property
    def sigma(self) -> np.ndarray:
        return np.asarray(self.spec["noise_sigma"], dtype=np.float64)

    @property
    def reference(self) -> int:
        return self.spec["bands"].index(self.spec["reference_band"])

    def target(self, central: np.ndarray, segmentation: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        self._remember_dataset(dataset_dir)
        parts = load_blends(dataset_dir, split_path, ["train", "val"], fold)
        out = {}
        for name, (rows, x, central, seg) in parts.items():
            out[name] = (x, self.target(central, seg))
            out[name + "_index"] = rows["index"].to_numpy()
        return out

    def load_test(self, dataset_dir, split_path):
        """Raw targets: {"catalog": the test rows, "central": noiseless centrals (nJy), "segmentation"}."""
        if "noise_sigma" not in self.spec:
            self._remember_dataset(dataset_dir)
        rows, x, central, seg = load_blends(dataset_dir, split_path, ["test"], None)["test"]
        return rows["index"].to_numpy(), x, {"catalog": rows.reset_index(drop=True), "central": central,
                                              "segmentation": seg}

    def truth_columns(self, raw_targets) -> dict[str, np.ndarray]:
        rows = raw_targets["catalog"]
        return {
            "true_flux": rows["true_flux"].to_numpy(), "flux_baseline": rows["flux_baseline"].to_numpy(),
            "baseline_detected": rows["baseline_detected"].to_numpy(),
            "separation_arcsec": rows["separation_arcsec"].to_numpy(), "flux_ratio": rows["flux_ratio"].to_numpy(),
            "n_companions": rows["n_companions"].to_numpy(), "e1_true": rows["e1"].to_numpy(),
            "e2_true": rows["e2"].to_numpy(),
        }


@register_task("deblend")
class DeblendTask(BlendTask):
    selection_metric = ("unet_flux_err68", "min")
    summary_metrics = ("unet_flux_bias", "unet_flux_err68", "baseline_flux_bias", "baseline_flux_err68",
                       "unet_small_flux_err68", "baseline_small_flux_err68", "unet_e_rmse", "flux_coverage68",
                       "flux_coverage95", "pixel_coverage68", "pixel_coverage95")
    writes_own_outputs = True

    def __init__(self, spec: dict):
        super().__init__({"mc_dropout": 10, **spec})

    @property
    def n_bands(self) -> int:
        return len(self.spec.get("bands", "gri"))

    @property
    def head_size(self) -> int:
        return 2 * self.n_bands  # mean and log-variance per band

    def target(self, central, segmentation):
        return torch.from_numpy((central / self.sigma[None, :, None, None]).astype(np.float32))

    def split_outputs(self, outputs: torch.Tensor):
        c = outputs.shape[1] // 2
        return outputs[:, :c], outputs[:, c:].clamp(*LOG_VAR_RANGE)

    def loss(self, outputs, targets):
        mean, log_var = self.split_outputs(outputs.float())
        return F.gaussian_nll_loss(mean, targets, log_var.exp(), full=True)

    def validation_metrics(self, outputs, targets):
        mean, _ = self.split_outputs(outputs)
        return {"val_rmse_sigma_units": float(((mean - targets) ** 2).mean().sqrt())}

    @torch.no_grad()
    def images(self, model: nn.Module, x: torch.Tensor, device, batch_size: int = 256):
        """(mean, sigma) deblended images of the central in the input's units (N, C, H, W), and
        the per-pass reference-band fluxes (passes, N): aleatoric variance averaged over the MC
        dropout passes plus the variance of the passes' means."""
        samples = int(self.spec.get("mc_dropout", 0))
        passes = samples if samples > 0 and has_dropout(model) else 1
        means, variance, fluxes = 0.0, 0.0, []
        second = 0.0
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)  # the same predictions every time
            for _ in range(passes):
                model.eval()
                if passes > 1:
                    for module in model.modules():
                        if isinstance(module, nn.modules.dropout._DropoutNd):
                            module.train()
                out = torch.cat([model(x[s : s + batch_size].to(device)).float().cpu()
                                 for s in range(0, len(x), batch_size)]) if len(x) else torch.empty(0, self.head_size, 1, 1)
                mean, log_var = self.split_outputs(out)
                mean, var = mean.double().numpy(), log_var.exp().double().numpy()
                means = means + mean / passes
                second = second + mean**2 / passes
                variance = variance + var / passes
                fluxes.append(mean[:, self.reference].sum(axis=(1, 2)) * self.sigma[self.reference])
        model.eval()
        total_var = variance + np.clip(second - means**2, 0, None)
        scale = self.sigma[None, :, None, None]
        return means * scale, np.sqrt(total_var) * scale, np.stack(fluxes), variance * scale**2

    def predict(self, model, x, device, batch_size=256) -> dict[str, np.ndarray]:
        from deepsky.data.deblend import hsm_ellipticity

        mean, sigma, fluxes, aleatoric = self.images(model, x, device, batch_size)
        ref = self.reference
        flux_var = flux_variance(aleatoric[:, ref], fluxes)
        shapes = np.array([hsm_ellipticity(image) for image in mean[:, ref]]).reshape(-1, 2)
        return {"flux_unet": mean[:, ref].sum(axis=(1, 2)), "flux_unet_sigma": np.sqrt(flux_var),
                "e1_unet": shapes[:, 0], "e2_unet": shapes[:, 1], "_mean": mean, "_sigma": sigma}

    def prediction_table(self, index, raw_targets, predicted, fold, architecture):
        predicted = dict(predicted)
        mean, sigma = predicted.pop("_mean"), predicted.pop("_sigma")
        table = super().prediction_table(index, raw_targets, predicted, fold, architecture)
        truth = raw_targets["central"][:, self.reference].astype(np.float64)
        z = (mean[:, self.reference] - truth) / sigma[:, self.reference]
        # pixels of the galaxy (noiseless light above one sky sigma): the empty sky is trivially right
        inside = truth > self.sigma[self.reference]
        for level, name in ((1.0, "pixel_coverage68"), (2.0, "pixel_coverage95")):
            table[name] = ((np.abs(z) < level) & inside).sum(axis=(1, 2)) / np.maximum(inside.sum(axis=(1, 2)), 1)
        return table

    def metrics(self, table: pd.DataFrame) -> dict:
        return deblend_metrics(table)

    def write_user_outputs(self, model, files, x, output, device, batch_size) -> int:
        from astropy.io import fits

        if output is None:
            raise ValueError("deblend writes one FITS file per input: give --output FOLDER")
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        mean, sigma, fluxes, aleatoric = self.images(model, x, device, batch_size)
        ref = self.reference
        flux_sigma = np.sqrt(flux_variance(aleatoric[:, ref], fluxes))
        rows = []
        for k, path in enumerate(files):
            header = fits.Header()
            header["BANDS"] = (",".join(self.spec["bands"]), "bands along NAXIS3")
            header["BUNIT"] = "nJy"
            header["CONTENT"] = "U-Net deblended central galaxy (mean)"
            primary = fits.PrimaryHDU(mean[k].astype(np.float32), header=header)
            error = fits.ImageHDU(sigma[k].astype(np.float32), name="SIGMA")
            target = out / f"{Path(path).stem}_deblended.fits"
            fits.HDUList([primary, error]).writeto(target, overwrite=True)
            rows.append({"file": str(path), "output": str(target), "band": self.spec["reference_band"],
                         "flux": float(mean[k, ref].sum()), "flux_sigma": float(flux_sigma[k])})
        pd.DataFrame(rows).to_csv(out / "deblended.csv", index=False)
        return len(rows)


def flux_variance(pixel_variance: np.ndarray, pass_fluxes: np.ndarray) -> np.ndarray:
    """Flux variance per galaxy: aleatoric pixel sigmas (N, H, W) fully correlated, plus the
    variance of the flux over the MC-dropout passes (passes, N)."""
    return np.sqrt(pixel_variance).sum(axis=(1, 2)) ** 2 + pass_fluxes.var(axis=0)


def deblend_metrics(table: pd.DataFrame) -> dict:
    """Flux-error bias and scatter of the U-Net and the SEP baseline (all, small and large
    separation), ellipticity RMS error, and the coverage of the flux and pixel uncertainties."""
    metrics = {"n": int(len(table))}
    subsets = {"": np.ones(len(table), bool), "_small": (table["separation_arcsec"] < SMALL_SEPARATION).to_numpy(),
               "_large": (table["separation_arcsec"] > LARGE_SEPARATION).to_numpy()}
    for suffix, keep in subsets.items():
        part = table[keep]
        metrics[f"n{suffix or '_all'}"] = int(keep.sum())
        metrics.update(relative_error_stats(part["flux_unet"], part["true_flux"], f"unet{suffix}_flux"))
        metrics.update(relative_error_stats(part["flux_baseline"], part["true_flux"], f"baseline{suffix}_flux"))
    de = np.concatenate([(table["e1_unet"] - table["e1_true"]).to_numpy(), (table["e2_unet"] - table["e2_true"]).to_numpy()])
    metrics["unet_e_rmse"] = float(np.sqrt(np.nanmean(de**2))) if np.isfinite(de).any() else float("nan")
    metrics["unet_e_failures"] = int(table["e1_unet"].isna().sum())
    metrics["baseline_missed"] = int((~table["baseline_detected"].astype(bool)).sum())
    z = ((table["flux_unet"] - table["true_flux"]) / table["flux_unet_sigma"]).to_numpy()
    metrics["flux_coverage68"] = float(np.mean(np.abs(z) < 1))
    metrics["flux_coverage95"] = float(np.mean(np.abs(z) < 2))
    metrics["pixel_coverage68"] = float(table["pixel_coverage68"].mean())
    metrics["pixel_coverage95"] = float(table["pixel_coverage95"].mean())
    return metrics


def confusion_counts(truth: np.ndarray, predicted: np.ndarray, n_classes: int = 3) -> np.ndarray:
    """(N, n_classes, n_classes) per-image pixel counts [true class, predicted class]."""
    n = truth.shape[0]
    flat = truth.reshape(n, -1).astype(np.int64) * n_classes + predicted.reshape(n, -1).astype(np.int64)
    return np.stack([np.bincount(row, minlength=n_classes**2) for row in flat]).reshape(n, n_classes, n_classes)


def iou_dice(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class IoU = TP / (TP + FP + FN) and Dice = 2 TP / (2 TP + FP + FN) of one confusion
    matrix (last two axes); NaN for a class absent from both truth and prediction."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1).astype(float)
    fp = confusion.sum(axis=-2) - tp
    fn = confusion.sum(axis=-1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(tp + fp + fn > 0, tp / (tp + fp + fn), np.nan)
        dice = np.where(tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    return iou, dice


@register_task("segmentation")
class SegmentationTask(BlendTask):
    selection_metric = ("miou", "max")
    summary_metrics = ("miou", "iou_central", "iou_companion", "dice_central", "dice_companion")

    @property
    def head_size(self) -> int:
        return len(CLASSES)

    def target(self, central, segmentation):
        return torch.from_numpy(segmentation.astype(np.int64))

    def loss(self, outputs, targets):
        return F.cross_entropy(outputs.float(), targets)

    def validation_metrics(self, outputs, targets):
        return {"val_pixel_accuracy": float((outputs.argmax(1) == targets).float().mean())}

    def predict(self, model, x, device, batch_size=256) -> dict[str, np.ndarray]:
        logits = self.forward(model, x, device, batch_size)
        probability = torch.softmax(logits, dim=1)
        return {"_labels": probability.argmax(1).numpy().astype(np.uint8), "_probability": probability.numpy()}

    def prediction_table(self, index, raw_targets, predicted, fold, architecture):
        labels = predicted["_labels"]
        table = super().prediction_table(index, raw_targets, {}, fold, architecture)
        confusion = confusion_counts(raw_targets["segmentation"], labels, len(CLASSES))
        iou, dice = iou_dice(confusion)
        for c, name in enumerate(CLASSES):
            table[f"iou_{name}"] = iou[:, c]
            table[f"dice_{name}"] = dice[:, c]
        for t in range(len(CLASSES)):
            for p in range(len(CLASSES)):
                table[f"n_true{t}_pred{p}"] = confusion[:, t, p]
        return table

    def metrics(self, table: pd.DataFrame) -> dict:
        return segmentation_metrics(table)

    writes_own_outputs = True

    def write_user_outputs(self, model, files, x, output, device, batch_size) -> int:
        from astropy.io import fits

        if output is None:
            raise ValueError("segmentation writes one FITS file per input: give --output FOLDER")
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
        predicted = self.predict(model, x, device, batch_size)
        rows = []
        for k, path in enumerate(files):
            header = fits.Header()
            header["CONTENT"] = ("U-Net segmentation", "0 background, 1 central, 2 companion")
            target = out / f"{Path(path).stem}_segmentation.fits"
            fits.HDUList([fits.PrimaryHDU(predicted["_labels"][k], header=header),
                          fits.ImageHDU(predicted["_probability"][k].astype(np.float32), name="PROB")]).writeto(target, overwrite=True)
            counts = np.bincount(predicted["_labels"][k].ravel(), minlength=len(CLASSES))
            rows.append({"file": str(path), "output": str(target), **{f"pixels_{n}": int(counts[c]) for c, n in enumerate(CLASSES)}})
        pd.DataFrame(rows).to_csv(out / "segmentation.csv", index=False)
        return len(rows)


def segmentation_metrics(table: pd.DataFrame) -> dict:
    """IoU and Dice per class over all test pixels (summed confusion), their class means, and the
    central's IoU at small and large separation."""
    n = len(CLASSES)
    columns = [f"n_true{t}_pred{p}" for t in range(n) for p in range(n)]
    metrics = {"n": int(len(table))}
    for suffix, keep in (("", np.ones(len(table), bool)), ("_small", table["separation_arcsec"] < SMALL_SEPARATION),
                         ("_large", table["separation_arcsec"] > LARGE_SEPARATION)):
        confusion = table.loc[np.asarray(keep), columns].to_numpy().sum(axis=0).reshape(n, n)
        iou, dice = iou_dice(confusion)
        for c, name in enumerate(CLASSES):
            if suffix and name == "background":
                continue
            metrics[f"iou_{name}{suffix}"] = float(iou[c])
            metrics[f"dice_{name}{suffix}"] = float(dice[c])
        if not suffix:
            metrics["miou"] = float(np.nanmean(iou))
            metrics["mdice"] = float(np.nanmean(dice))
            metrics["pixel_accuracy"] = float(np.trace(confusion) / confusion.sum())
    return metrics
