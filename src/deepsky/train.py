"""The one training loop of every experiment: early stopping on validation loss, a checkpoint
every epoch and exact resume from it, mixed precision on CUDA, a progress bar and a NaN guard.
What is learnt (targets, loss, the step itself) comes from a task (deepsky.tasks). Readable top
to bottom."""

from __future__ import annotations

import math
import os
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from deepsky import distributed
from deepsky.tasks.base import Amp, uses_channels_last


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but no CUDA device is visible")
    if preference in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def job_seed(seed: int, *names) -> int:
    """A seed per job, stable across runs and machines (no Python hash randomisation)."""
    return int(np.random.SeedSequence([seed] + [zlib.crc32(str(n).encode()) for n in names]).generate_state(1)[0])


def loss_function(num_outputs: int) -> nn.Module:
    return nn.BCEWithLogitsLoss() if num_outputs == 1 else nn.CrossEntropyLoss()


def targets_for(loss: nn.Module, labels: torch.Tensor) -> torch.Tensor:
    """BCE wants float targets shaped like the (N, 1) logits; cross-entropy wants class indices."""
    return labels.float().unsqueeze(1) if isinstance(loss, nn.BCEWithLogitsLoss) else labels


def scores_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """P(lens) for one logit, class probabilities otherwise."""
    return torch.sigmoid(logits.squeeze(1)) if logits.shape[1] == 1 else torch.softmax(logits, dim=1)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (logits, scores) on the CPU."""
    model.eval()
    chunks = []
    for start in range(0, len(x), batch_size):
        xb = x[start : start + batch_size].to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            chunks.append(model(xb).float().cpu())
    logits = torch.cat(chunks) if chunks else torch.empty(0, 1)
    return logits, scores_from_logits(logits)


def save_atomic(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def fit(model, train, val, settings: dict, device: torch.device, seed: int, checkpoint: Path, task,
        on_epoch=None, run_id=None, config_hash=None):
    """Train with early stopping on the validation loss; resume from `checkpoint` if it exists.

    `task` (deepsky.tasks) supplies the optimisers, the batches and one step; this loop owns the
    epochs, seeding, checkpoints, mixed precision, progress and the NaN guard. Under torchrun
    (deepsky.distributed) each rank trains on its share of every batch through DDP and only rank 0
    writes the checkpoint. Returns (history, best state).
    """
    rank, world = distributed.rank_world()
    if settings.get("channels_last", True) and uses_channels_last(model):
        model.to(memory_format=torch.channels_last)
        train, val = task.memory_format(train), task.memory_format(val)
    trained = distributed.wrap(model, device) if world > 1 else model
    optimizers = task.optimizers(model, settings)
    amp = Amp(device, settings.get("mixed_precision", True))
    batch_size = settings["batch_size"]
    patience = settings.get("patience", settings["epochs"])
    history, best_state, best_val, bad_epochs, start_epoch = [], None, math.inf, 0, 0

    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        amp.scaler.load_state_dict(state["scaler"])
        history, best_state = state["history"], state["best_state"]
        best_val, bad_epochs, start_epoch = state["best_val_loss"], state["bad_epochs"], state["epoch"] + 1
        print(f"resuming from {checkpoint} after epoch {state['epoch']}", flush=True)
        if bad_epochs >= patience:
            return history, best_state

    if device.type == "cuda":
        train = task.pin(train)
    n = task.num_examples(train)
    for epoch in range(start_epoch, settings["epochs"]):
        # Seeding per epoch makes a resumed run draw exactly what an uninterrupted one would.
        torch.manual_seed(job_seed(seed, "epoch", epoch))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(job_seed(seed, "order", epoch)))
        trained.train()
        started, sums = time.perf_counter(), {}
        batches = tqdm(
            range(0, n, batch_size), desc=f"epoch {epoch + 1}/{settings['epochs']}", unit="batch",
            mininterval=5, leave=False, disable=rank > 0,
        )
        for start in batches:
            idx = order[start : start + batch_size]
            mine = distributed.shard(idx, rank, world)
            step = task.train_step(trained, task.batch(train, mine, device), optimizers, amp)
            amp.update()
            step = distributed.mean_over_ranks(step, len(mine))
            if not all(math.isfinite(v) for v in step.values()):
                raise FloatingPointError(
                    f"training loss became {step} at epoch {epoch + 1} (batch {start // batch_size + 1}); "
                    "lower the learning rate or check the input data"
                )
            for key, value in step.items():
                sums[key] = sums.get(key, 0.0) + value * len(idx)
        seconds = time.perf_counter() - started
        if settings.get("precise_bn", True):
            task.recalibrate_batchnorm(model, train, device, batch_size)
        validation = task.validate(model, val, device, batch_size * 2)
        record = {
            "epoch": epoch + 1,
            **{f"train_{key}": total / n for key, total in sums.items()},
            **validation,
            "epoch_seconds": seconds,
            "images_per_second": n / seconds,
        }
        history.append(record)
        val_loss = validation["val_loss"]
        if val_loss < best_val:
            best_val, bad_epochs = val_loss, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        quick = " ".join(f"{k}={v:.4f}" for k, v in record.items() if k.startswith(("train_", "val_")))
        if rank == 0:
            print(f"epoch {epoch + 1}: {quick} ({seconds:.1f}s)", flush=True)
            task.on_epoch_end(model, epoch + 1, checkpoint.parent)
            save_atomic(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
                    "scaler": amp.scaler.state_dict(),
                    "history": history,
                    "best_state": best_state,
                    "best_val_loss": best_val,
                    "bad_epochs": bad_epochs,
                    "run_id": run_id,
                    "config_hash": config_hash,
                },
                checkpoint,
            )
            if on_epoch is not None:
                on_epoch(record)
        distributed.barrier()
        if bad_epochs >= patience:
            print(f"early stopping after epoch {epoch + 1}: no val_loss improvement in {patience} epochs", flush=True)
            break
    return history, best_state
