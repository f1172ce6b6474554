"""Saved models: state dict plus what is needed to rebuild and feed them (weights_only load)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from deepsky.models import create_model


class NotAModelError(ValueError):
    """The file is not a model written by the deepsky train rule."""


def read_model_file(path: str | Path, device: torch.device | str = "cpu", mmap: bool = False) -> dict:
    """The saved payload; `mmap=True` maps the tensors instead of reading them (for the meta alone)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        payload = torch.load(path, map_location=device, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NotAModelError(
            f"{path} is not a deepsky model file (torch.load with weights_only=True refused it: {reason[:200]})"
        ) from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta" not in payload:
        raise NotAModelError(f"{path} is not a deepsky model file (expected keys state_dict and meta)")
    return payload


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    payload = read_model_file(path, device)
    meta = payload["meta"]
    model = create_model(
        meta["architecture"], meta["in_channels"], meta["num_outputs"], image_size=meta["image_size"],
        **meta.get("model_kwargs", {}),
    )
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), meta


def read_meta(path: str | Path) -> dict:
    """What a model file says about its model (task, architecture, inputs) without loading weights."""
    return read_model_file(path, "cpu", mmap=True)["meta"]
