"""Generative adversarial training (lecture 003, "GAN: training"; Tutorial 3, CMB maps with GANs).

D sees real patches labelled 1 and G's patches labelled 0 and minimises
J_D = -1/N sum [log D(x) + log(1 - D(G(z)))]; then G minimises J_G = -1/N sum log D(G(z)) (the
non-saturating loss of the lecture). One `train_step` does both updates with two Adam optimisers
(DCGAN: beta1 = 0.5); the shared loop keeps epochs, checkpoints, exact resume, AMP and tracking.

Spec: {"name": "gan", "adam_beta1": 0.5, "range_sigma": 4, "bin_width": 2, "apodisation": 0.5,
"sample_every": 1, "n_generated": null}; training adds "scale" (mean and std of the training
pixels, muK: the networks see (T - mean) / (range_sigma std), inside G's tanh range), the pixel
size and the resolved multipole range of the dataset.

Validation loss: the rms log-ratio of the mean binned power spectrum of generated patches to that
of the validation patches over the resolved bins (GAN losses say little about sample quality; the
spectrum is what the tutorial asks G to match). The loop keeps the epoch with the lowest one.
Batch-norm recalibration is off: D's statistics mix real and generated batches by design.
`on_epoch_end` writes a grid of G's patches for fixed z to <checkpoint dir>/samples/epoch_NNN.png
(the cmb_evaluate stage logs them to the training run in MLflow).

`predict` gives D's probability that a patch is real (column `p_real`) for inputs in network units
(`encode`); `deepsky predict` feeds asinh-stretched images, which a GAN was not trained on.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from deepsky.tasks.base import Task, register_task

DEFAULTS = {"adam_beta1": 0.5, "range_sigma": 4.0, "bin_width": 2.0, "apodisation": 0.5, "sample_every": 1, "n_generated": None}
GRID = 6  # the per-epoch sample grid is GRID x GRID patches
VALIDATION_SEED = 0


@contextlib.contextmanager
def frozen(module: nn.Module):
    """No weight gradients for `module` (G's step backpropagates through D without updating it)."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def adversarial_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target)


@register_task("gan")
class GanTask(Task):
    summary_metrics = ("ps_ratio_worst", "ps_ratio_median", "ks_distance", "diversity_ratio")

    def __init__(self, spec: dict):
        spec = {**DEFAULTS, **spec}
        if not 0 <= spec["adam_beta1"] < 1:
            raise ValueError(f"gan adam_beta1 must be in [0, 1), got {spec['adam_beta1']}")
        if spec["range_sigma"] <= 0:
            raise ValueError(f"gan range_sigma must be positive, got {spec['range_sigma']}")
        super().__init__(spec)

    @property
    def head_size(self) -> int:
        return 1

    # ---- data: patches in muK <-> network units
    def targets(self, catalog: pd.DataFrame) -> np.ndarray:
        return catalog["label"].to_numpy()

    def fit_encoding(self, train_images: np.ndarray) -> None:
        self.spec["scale"] = {"mean": float(np.mean(train_images)), "std": float(np.std(train_images))}

    def _scale(self) -> tuple[float, float]:
        if "scale" not in self.spec:
            raise RuntimeError("the gan task has no pixel scale yet: load a fold (fit_encoding) first")
        return self.spec["scale"]["mean"], self.spec["scale"]["std"] * self.spec["range_sigma"]

    def encode(self, images: np.ndarray) -> torch.Tensor:
        """Patches in muK (N, C, n, n) -> network units."""
        centre, width = self._scale()
        return torch.from_numpy(((np.asarray(images, dtype=np.float64) - centre) / width).astype(np.float32))

    def decode(self, x: torch.Tensor) -> np.ndarray:
        """Network units -> muK, (N, n, n) for one channel."""
        centre, width = self._scale()
        sky = x.detach().float().cpu().numpy().astype(np.float64) * width + centre
        return (sky[:, 0] if sky.shape[1] == 1 else sky).astype(np.float32)

    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        from deepsky.data import storage
        from deepsky.data.cmb import card_settings
        from deepsky.data.split import fold_indices

        dataset_dir = Path(dataset_dir)
        simulation, theory = card_settings(storage.read_card(dataset_dir))
        images = storage.load_images(dataset_dir / storage.IMAGES)
        parts = {name: np.sort(idx) for name, idx in fold_indices(pd.read_parquet(split_path), fold).items()}
        self.fit_encoding(np.asarray(images[parts["train"]]))
        self.spec["pixel_arcmin"] = float(simulation["pixel_arcmin"])
        self.spec["ell_range"] = [float(theory["ell_min_resolved"]), float(theory["ell_max_resolved"])]
        out = {}
        for name, idx in parts.items():
            out[name] = (self.encode(images[idx]),)
            out[name + "_index"] = idx
        return out

    def load_test(self, dataset_dir, split_path):
        from deepsky.data import storage

        split = pd.read_parquet(split_path)
        index = np.sort(split.loc[split["split"] == "test", "index"].to_numpy())
        images = np.asarray(storage.load_images(Path(dataset_dir) / storage.IMAGES)[index])
        return index, self.encode(images), np.zeros(len(index), dtype=np.int64)

    def check_training(self, settings: dict) -> None:
        if settings.get("augment", False):
            raise ValueError("gan experiments train on the patches as cut (set training.augment: false)")

    # ---- training
    def optimizers(self, model: nn.Module, settings: dict) -> dict[str, torch.optim.Optimizer]:
        betas = (self.spec["adam_beta1"], 0.999)
        lr = settings["learning_rate"]
        return {
            "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=betas),
            "generator": torch.optim.Adam(model.generator.parameters(), lr=lr, betas=betas),
        }

    def train_step(self, model: nn.Module, batch, optimizers: dict, amp) -> dict[str, float]:
        if isinstance(model, nn.parallel.DistributedDataParallel):
            raise NotImplementedError("the gan task trains in one process (DDP would only synchronise D's forward)")
        real = batch[0]
        z = model.latent(len(real), real.device)
        with amp.autocast():
            fake = model.generate(z)
            d_real, d_fake = model.discriminator(real), model.discriminator(fake.detach())
            loss_d = adversarial_loss(d_real, True) + adversarial_loss(d_fake, False)
        amp.step(loss_d, optimizers["discriminator"])
        with frozen(model.discriminator), amp.autocast():
            loss_g = adversarial_loss(model.discriminator(fake), True)
        amp.step(loss_g, optimizers["generator"])
        return {
            "loss": loss_d.item() + loss_g.item(),
            "loss_D": loss_d.item(),
            "loss_G": loss_g.item(),
            "D_real": torch.sigmoid(d_real.float()).mean().item(),
            "D_fake": torch.sigmoid(d_fake.float()).mean().item(),
        }

    def recalibrate_batchnorm(self, model, data, device, batch_size) -> bool:
        """Off: D's statistics mix real and generated batches by design, and G's follow its own batches."""
        return False

    @torch.no_grad()
    def generate(self, model: nn.Module, n: int, device: torch.device, seed: int, batch_size: int = 256) -> np.ndarray:
        """n patches in muK (n, size, size) from G in evaluation mode, reproducible from `seed`."""
        model.eval()
        rng = torch.Generator(device="cpu").manual_seed(int(seed))
        chunks = []
        for start in range(0, n, batch_size):
            z = model.latent(min(batch_size, n - start), "cpu", generator=rng).to(device)
            chunks.append(self.decode(model.generate(z)))
        return np.concatenate(chunks) if chunks else np.empty((0, model.image_size, model.image_size), np.float32)

    @torch.no_grad()
    def validate(self, model: nn.Module, data, device: torch.device, batch_size: int) -> dict[str, float]:
        from deepsky.data.cmb_compare import estimator_for, resolved_bins

        x = data[0]
        generated = self.generate(model, len(x), device, VALIDATION_SEED)
        estimator = estimator_for(x.shape[-1], self.spec["pixel_arcmin"], self.spec["bin_width"], self.spec["apodisation"])
        resolved = resolved_bins(estimator, self.spec["ell_range"])
        ratio = estimator(generated).mean(0)[resolved] / estimator(self.decode(x)).mean(0)[resolved]
        d_real = self.forward(model, x, device, batch_size)
        d_fake = self.forward(model, self.encode(generated[:, None]), device, batch_size)
        return {
            "val_loss": float(np.sqrt(np.mean(np.log(ratio) ** 2))),
            "val_ps_ratio_worst": float(np.abs(ratio - 1).max()),
            "val_loss_D": float(adversarial_loss(d_real, True) + adversarial_loss(d_fake, False)),
            "val_D_real": float(torch.sigmoid(d_real).mean()),
            "val_D_fake": float(torch.sigmoid(d_fake).mean()),
        }

    def on_epoch_end(self, model: nn.Module, epoch: int, out_dir) -> None:
        """A grid of G's patches for fixed z every `sample_every` epochs: <out_dir>/samples/epoch_NNN.png."""
        every = int(self.spec.get("sample_every") or 0)
        if every <= 0 or epoch % every:
            return
        import matplotlib.image

        device = next(model.parameters()).device
        patches = self.generate(model, GRID * GRID, device, VALIDATION_SEED)
        n = patches.shape[-1]
        canvas = np.full((GRID * (n + 1) - 1, GRID * (n + 1) - 1), self.spec["scale"]["mean"], np.float32)
        for i, patch in enumerate(patches):
            r, c = divmod(i, GRID)
            canvas[r * (n + 1) : r * (n + 1) + n, c * (n + 1) : c * (n + 1) + n] = patch
        limit = 3 * self.spec["scale"]["std"]
        path = Path(out_dir) / "samples" / f"epoch_{epoch:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        centre = self.spec["scale"]["mean"]
        matplotlib.image.imsave(path, np.kron(canvas, np.ones((4, 4))), cmap="RdBu_r", vmin=centre - limit, vmax=centre + limit)

    # ---- predictions
    def predict(self, model, x, device, batch_size=256) -> dict[str, np.ndarray]:
        return {"p_real": torch.sigmoid(self.forward(model, x, device, batch_size)[:, 0]).numpy()}

    def truth_columns(self, raw_targets: np.ndarray) -> dict[str, np.ndarray]:
        return {"label": np.asarray(raw_targets)}

    def metrics(self, table: pd.DataFrame) -> dict:
        return {"p_real_mean": float(table["p_real"].mean())}

    def user_columns(self, predicted):
        return {name: [f"{v:.4f}" for v in values] for name, values in predicted.items()}
