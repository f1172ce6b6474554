"""The task interface and its registry.

A task owns one kind of learning: which catalog columns are its targets and how they are
encoded, the head size, the loss, one optimisation step, the prediction columns and the metrics.
The loop in `deepsky.train` owns time: epochs, early stopping, checkpoints and exact resume,
mixed precision, progress and tracking. A task that needs more than one optimiser (a GAN), or
batches that are not tensors (graphs, padded sequences), overrides `optimizers`, `batch` and
`train_step`; nothing else changes.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

_TASKS: dict[str, type["Task"]] = {}
#: Training examples whose batch-norm statistics replace the running averages before validation.
PRECISE_BN_EXAMPLES = 1024


def uses_channels_last(model: nn.Module) -> bool:
    """Whether a model runs in channels-last order; a model class opts out with `channels_last = False`."""
    return getattr(model, "channels_last", True)


# Built-in tasks, imported when first asked for: a job pays only for the task it runs
# (some pull in scipy.stats or torch-geometric, a second or more per process).
BUILTIN_TASK_MODULES = {
    "binary": "deepsky.tasks.classification",
    "multiclass": "deepsky.tasks.classification",
    "regression": "deepsky.tasks.regression",
    "sequence_classification": "deepsky.tasks.lightcurves",
    "graph_regression": "deepsky.tasks.cosmo_graphs",
    "photoz": "deepsky.tasks.photoz",
    "gan": "deepsky.tasks.cmb",
    "domain_adaptation": "deepsky.tasks.domains",
    "detection": "deepsky.tasks.detection",
    "deblend": "deepsky.tasks.deblend",
    "segmentation": "deepsky.tasks.deblend",
}


def register_task(name: str) -> Callable[[type["Task"]], type["Task"]]:
    def decorator(cls: type[Task]) -> type[Task]:
        if name in _TASKS and _TASKS[name] is not cls:
            raise ValueError(f"task {name!r} is already registered")
        cls.name = name
        _TASKS[name] = cls
        return cls

    return decorator


def registered_tasks() -> list[str]:
    return sorted(set(_TASKS) | set(BUILTIN_TASK_MODULES))


def make_task(spec: dict) -> "Task":
    """Build a task from its spec ({"name": ..., task options...})."""
    name = spec.get("name")
    if name not in _TASKS and name in BUILTIN_TASK_MODULES:
        import importlib

        importlib.import_module(BUILTIN_TASK_MODULES[name])
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r} (known: {', '.join(registered_tasks())})")
    return _TASKS[name](spec)


def task_from_meta(meta: dict) -> "Task":
    """The task a saved model was trained for (models saved before tasks existed are classifiers)."""
    if "task" in meta:
        return make_task(meta["task"])
    names = meta["class_names"]
    return make_task({"name": "binary" if meta["num_outputs"] == 1 else "multiclass", "class_names": names})


def adam(params, **kwargs) -> torch.optim.Adam:
    """Adam with the fused kernel (one kernel for all parameters, on CPU and CUDA)."""
    params = list(params)
    fused = all(p.dtype.is_floating_point and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, fused=fused or None, **kwargs)


class Amp:
    """Mixed precision on CUDA (autocast + gradient scaling); a no-op on the CPU."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device = device
        self.enabled = enabled and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled)

    def autocast(self):
        return torch.autocast(self.device.type, enabled=self.enabled) if self.device.type == "cuda" else contextlib.nullcontext()

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """zero_grad, backward and step of one optimiser on one loss."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)

    def update(self) -> None:
        self.scaler.update()


class Task:
    """Defaults for a supervised task on image tensors; subclasses fill in the abstract parts."""

    name = "task"
    #: Metrics of `metrics()` that the K-fold summary reports as mean and std over folds.
    summary_metrics: tuple[str, ...] = ()
    #: (metric, "max" | "min") that picks the fold model registered in MLflow; None: the first fold.
    selection_metric: tuple[str | None, str] = (None, "max")
    #: Whether the evaluator logs the best fold as an MLflow pyfunc model scoring cutout arrays.
    registers_pyfunc: bool = True

    def __init__(self, spec: dict):
        self.spec = dict(spec)

    # ---- what the model and data look like
    @property
    def head_size(self) -> int:
        raise NotImplementedError

    def targets(self, catalog: pd.DataFrame) -> np.ndarray:
        """Raw targets of these catalog rows (labels, physical values...)."""
        raise NotImplementedError

    def fit_encoding(self, raw_train_targets: np.ndarray) -> None:
        """Learn any target encoding from the training targets (stored in the spec)."""

    def encode(self, raw: np.ndarray) -> torch.Tensor:
        """Raw targets -> what the loss compares the outputs with."""
        raise NotImplementedError

    # ---- data on disk (a dataset folder: catalog.parquet, card.json, images.npy for image tasks)
    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        """{"train": data, "val": data, ...} for one fold; targets encoded (fit on train only)."""
        from deepsky.data.tensors import load_fold

        return load_fold(dataset_dir, split_path, fold, augmented_dir, task=self)

    def load_test(self, dataset_dir, split_path):
        """(catalog indices, model inputs, raw targets) of the held-out test set."""
        from deepsky.data.tensors import asinh_stretch, load_test_set

        index, images, raw = load_test_set(dataset_dir, split_path, task=self)
        return index, torch.from_numpy(asinh_stretch(images)), raw

    def input_dims(self, data) -> dict:
        """Arguments of create_model that depend on the data (images: channels and size)."""
        x = data[0]
        return {"in_channels": int(x.shape[1]), "image_size": int(x.shape[-1])}

    def check_training(self, settings: dict) -> None:
        """Refuse training settings that make no sense for this task."""

    # ---- training
    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def optimizers(self, model: nn.Module, settings: dict) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(model.parameters(), lr=settings["learning_rate"], weight_decay=settings.get("weight_decay", 0.0))}

    def memory_format(self, data):
        """Image tensors in channels-last order (NHWC), which oneDNN and cuDNN convolve faster
        (1.3-1.6x for the lecture CNNs on a 2-core CPU, benchmarks/training_loop.py)."""
        if isinstance(data, tuple) and all(isinstance(t, torch.Tensor) for t in data):
            return tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in data)
        return data

    def num_examples(self, data) -> int:
        return len(data[0])

    def pin(self, data):
        return tuple(t.pin_memory() for t in data)

    def batch(self, data, idx: torch.Tensor, device: torch.device):
        return tuple(t[idx].to(device, non_blocking=True) for t in data)

    def train_step(self, model: nn.Module, batch, optimizers: dict, amp: Amp) -> dict[str, float]:
        """One optimisation step; returns at least {"loss": float}."""
        x, y = batch
        with amp.autocast():
            loss = self.loss(model(x), y)
        amp.step(loss, optimizers["model"])
        return {"loss": loss.item()}

    def model_input(self, batch):
        """The part of a batch the model is called on (for batch-norm recalibration)."""
        return batch[0]

    def on_epoch_end(self, model: nn.Module, epoch: int, out_dir) -> None:
        """Called by the loop after validating epoch `epoch` (1-based), before its checkpoint, with
        the checkpoint folder: a place for per-epoch artefacts (a GAN's sample grid). Must not draw
        from the global random generators (exact resume). Default: nothing."""

    @torch.no_grad()
    def recalibrate_batchnorm(self, model: nn.Module, data, device: torch.device, batch_size: int) -> bool:
        """Recompute batch-norm running statistics on the training set with the current weights.

        The running averages lag the weights: with few, large steps per epoch (small data, Adam)
        they describe an older network, and evaluation-mode outputs shift (the lens finder's
        validation accuracy fell to chance for one epoch while its training loss kept falling).
        A pass over the training data in order, dropout off, gives exact statistics
        ("precise BN", Wu & Johnson 2021). Returns False when the model has no batch norm.
        """
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
        if not norms:
            return False
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the pass
        model.train()
        dropouts = [m for m in model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
        for m in dropouts:
            m.eval()
        n = self.num_examples(data)
        # An evenly strided subset: statistics of 1024 images are as good as of all, at a fraction of a pass.
        order = torch.linspace(0, n - 1, PRECISE_BN_EXAMPLES).round().long().unique() if n > PRECISE_BN_EXAMPLES else torch.arange(n)
        for start in range(0, len(order), batch_size):
            model(self.model_input(self.batch(data, order[start : start + batch_size], device)))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        return True

    @torch.no_grad()
    def forward(self, model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256) -> torch.Tensor:
        """Raw outputs of the model in eval mode, on the CPU, in float32."""
        model.eval()
        chunks = []
        amp = Amp(device, enabled=True)
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device, non_blocking=True)
            if xb.dim() == 4 and uses_channels_last(model):
                xb = xb.contiguous(memory_format=torch.channels_last)
            with amp.autocast():
                chunks.append(model(xb).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0, self.head_size)

    def validate(self, model: nn.Module, data, device: torch.device, batch_size: int) -> dict[str, float]:
        """Validation loss (early stopping watches it) and the task's quick metrics."""
        x, y = data
        outputs = self.forward(model, x, device, batch_size)
        return {"val_loss": float(self.loss(outputs, y)), **self.validation_metrics(outputs, y)}

    def validation_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        return {}

    # ---- predictions and metrics
    def predict(self, model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Named prediction columns for these inputs (the task's table contract)."""
        raise NotImplementedError

    def truth_columns(self, raw_targets: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def prediction_table(self, index, raw_targets, predicted: dict, fold: int, architecture: str) -> pd.DataFrame:
        table = pd.DataFrame({"index": index, **self.truth_columns(raw_targets), "fold": fold, "architecture": architecture})
        for name, values in predicted.items():
            table[name] = values
        return table

    def metrics(self, table: pd.DataFrame) -> dict:
        raise NotImplementedError

    def user_columns(self, predicted: dict) -> dict[str, list]:
        """What `deepsky predict` writes per input (default: the prediction columns)."""
        return {name: list(values) for name, values in predicted.items()}

    #: True when `deepsky predict` hands the read cutouts to `write_user_outputs` (image outputs,
    #: several rows per input) instead of writing one CSV row per input.
    writes_own_outputs = False

    def write_user_outputs(self, model: nn.Module, files: list, x: torch.Tensor, output, device: torch.device,
                           batch_size: int) -> int:
        """Write what this task gives a user for `files` (model inputs `x`, stretched as in
        training) under `output` (a folder or a CSV path; None: standard output); return the count."""
        raise NotImplementedError
