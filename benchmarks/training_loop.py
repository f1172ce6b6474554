"""Throughput of our training loop against a bare PyTorch loop on the same tensors.

    python benchmarks/training_loop.py [--arch winning_cnn] [--images 2048] [--size 48] [--epochs 3]

Prints images/second of each and their ratio (ours / bare), measured in this one run, the two
loops alternating so that machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from deepsky.models import create_model
from deepsky.tasks import make_task
from deepsky.train import fit, pick_device


def bare_loop(model, x, y, epochs, batch_size, device):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            idx = order[i : i + batch_size]
            xb, yb = x[idx].to(device), y[idx].float().unsqueeze(1).to(device)
            optimizer.zero_grad()
            loss_fn(model(xb), yb).backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(x) / (time.perf_counter() - start)


def our_loop(model, x, y, epochs, batch_size, device):
    settings = {"epochs": epochs, "batch_size": batch_size, "learning_rate": 1e-3, "patience": epochs + 1}
    val = (x[:256], y[:256])
    with tempfile.TemporaryDirectory() as tmp:
        history, _ = fit(model, (x, y), val, settings, device, 0, Path(tmp) / "last.pt",
                         make_task({"name": "binary", "class_names": ["non-lens", "lens"]}))
    # Training time only, as the bare loop has no validation or checkpoint.
    return sum(r["images_per_second"] * r["epoch_seconds"] for r in history) / sum(r["epoch_seconds"] for r in history)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="winning_cnn")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    x = torch.randn(args.images, 3, args.size, args.size)
    y = torch.randint(0, 2, (args.images,))
    bare, ours = [], []
    for _ in range(args.rounds):
        torch.manual_seed(0)
        bare.append(bare_loop(create_model(args.arch, 3, 1, image_size=args.size).to(device), x, y, args.epochs, args.batch_size, device))
        torch.manual_seed(0)
        ours.append(our_loop(create_model(args.arch, 3, 1, image_size=args.size).to(device), x, y, args.epochs, args.batch_size, device))
    b, o = max(bare), max(ours)
    print(f"device={device.type} threads={args.threads} arch={args.arch} images={args.images} size={args.size}")
    print(f"bare loop: {b:8.1f} images/s   (rounds: {', '.join(f'{v:.1f}' for v in bare)})")
    print(f"our loop:  {o:8.1f} images/s   (rounds: {', '.join(f'{v:.1f}' for v in ours)})")
    print(f"ratio ours/bare: {o / b:.3f}")


if __name__ == "__main__":
    main()
