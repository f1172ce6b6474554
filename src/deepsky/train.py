"""The training loop: Adam, cross-entropy, early stopping on validation loss, a checkpoint every
epoch and resume from it, mixed precision on CUDA. Readable top to bottom."""

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


def evaluate_loss(model, loss_fn, x, y, device, batch_size) -> tuple[float, float]:
    logits, scores = predict(model, x, device, batch_size)
    loss = float(loss_fn(logits, targets_for(loss_fn, y)))
    predicted = (scores >= 0.5).long() if scores.ndim == 1 else scores.argmax(1)
    return loss, float((predicted == y).float().mean())


def save_atomic(payload: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def fit(model, train, val, settings: dict, device: torch.device, seed: int, checkpoint: Path, num_outputs: int, on_epoch=None, run_id=None):
    """Train with early stopping; resume from `checkpoint` if it exists. Returns (history, best state)."""
    x_train, y_train = train
    x_val, y_val = val
    loss_fn = loss_function(num_outputs)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=settings["learning_rate"], weight_decay=settings.get("weight_decay", 0.0)
    )
    use_amp = device.type == "cuda" and settings.get("mixed_precision", True)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    batch_size = settings["batch_size"]
    patience = settings.get("patience", settings["epochs"])
    history, best_state, best_val, bad_epochs, start_epoch = [], None, math.inf, 0, 0

    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, best_state = state["history"], state["best_state"]
        best_val, bad_epochs, start_epoch = state["best_val_loss"], state["bad_epochs"], state["epoch"] + 1
        print(f"resuming from {checkpoint} after epoch {state['epoch']}", flush=True)
        if bad_epochs >= patience:
            return history, best_state

    if device.type == "cuda":
        x_train = x_train.pin_memory()
    n = len(x_train)
    for epoch in range(start_epoch, settings["epochs"]):
        # Seeding per epoch makes a resumed run draw exactly what an uninterrupted one would.
        torch.manual_seed(job_seed(seed, "epoch", epoch))
        order = torch.randperm(n, generator=torch.Generator().manual_seed(job_seed(seed, "order", epoch)))
        model.train()
        started, total_loss = time.perf_counter(), 0.0
        batches = tqdm(
            range(0, n, batch_size), desc=f"epoch {epoch + 1}/{settings['epochs']}", unit="batch",
            mininterval=5, leave=False,
        )
        for start in batches:
            idx = order[start : start + batch_size]
            xb = x_train[idx].to(device, non_blocking=True)
            yb = y_train[idx].to(device, non_blocking=True)
            with torch.autocast(device.type, enabled=use_amp):
                loss = loss_fn(model(xb), targets_for(loss_fn, yb))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            batch_loss = loss.item()
            if not math.isfinite(batch_loss):
                raise FloatingPointError(
                    f"training loss became {batch_loss} at epoch {epoch + 1} (batch {start // batch_size + 1}); "
                    "lower the learning rate or check the input data"
                )
            total_loss += batch_loss * len(idx)
        seconds = time.perf_counter() - started
        val_loss, val_accuracy = evaluate_loss(model, loss_fn, x_val, y_val, device, batch_size * 2)
        record = {
            "epoch": epoch + 1,
            "train_loss": total_loss / n,
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "epoch_seconds": seconds,
            "images_per_second": n / seconds,
        }
        history.append(record)
        if val_loss < best_val:
            best_val, bad_epochs = val_loss, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        print(
            f"epoch {epoch + 1}: train_loss={record['train_loss']:.4f} val_loss={val_loss:.4f} "
            f"val_acc={val_accuracy:.3f} ({seconds:.1f}s)",
            flush=True,
        )
        save_atomic(
            {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
                "best_state": best_state,
                "best_val_loss": best_val,
                "bad_epochs": bad_epochs,
                "run_id": run_id,
            },
            checkpoint,
        )
        if on_epoch is not None:
            on_epoch(record)
        if bad_epochs >= patience:
            print(f"early stopping after epoch {epoch + 1}: no val_loss improvement in {patience} epochs", flush=True)
            break
    return history, best_state
