"""Saved models: state dict plus what is needed to rebuild and feed them (weights_only load)."""

from __future__ import annotations

from pathlib import Path

import torch

from deepsky.models import create_model


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    payload = torch.load(path, map_location=device, weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload or "meta" not in payload:
        raise ValueError(f"{path} is not a deepsky model file (expected keys state_dict and meta)")
    meta = payload["meta"]
    model = create_model(
        meta["architecture"], meta["in_channels"], meta["num_outputs"], image_size=meta["image_size"],
        **meta.get("model_kwargs", {}),
    )
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), meta
