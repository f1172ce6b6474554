"""Throughput of our training loop against a bare PyTorch loop on the same tensors.

    python benchmarks/training_loop.py [--arch winning_cnn] [--images 2048] [--size 48] [--epochs 2] [--rounds 5]

Prints images/second of each and their ratios, measured in this one run: the loops run back to
back in each round and the ratios are medians over rounds, so that machine drift hits them alike:
- "bare, plain": the textbook loop (NCHW tensors, default Adam), what our loop did before;
- "bare, fast": the same with channels-last tensors and the fused Adam kernel;
- "ours": deepsky.train.fit (channels-last and fused Adam by default).
Goals: ours / bare fast >= 0.95 (the loop's own overhead), ours / bare plain >= 1.5.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from deepsky.models import create_model
from deepsky.tasks import make_task
from deepsky.train import fit, pick_device


def bare_loop(model, x, y, epochs, batch_size, device, fast=False):
    if fast:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fast or None)
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
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    x = torch.randn(args.images, 3, args.size, args.size)
    y = torch.randint(0, 2, (args.images,))
    loops = {
        "bare, plain": lambda m: bare_loop(m, x, y, args.epochs, args.batch_size, device),
        "bare, fast": lambda m: bare_loop(m, x, y, args.epochs, args.batch_size, device, fast=True),
        "ours": lambda m: our_loop(m, x, y, args.epochs, args.batch_size, device),
    }
    rates = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, loop in loops.items():
            torch.manual_seed(0)
            rates[name].append(loop(create_model(args.arch, 3, 1, image_size=args.size).to(device)))
    # This VM's speed drifts by tens of percent over minutes: compare loops within a round (run
    # back to back) and report the median of those ratios, not ratios of the best rounds.
    ratios = {
        pair: statistics.median(a / b for a, b in zip(rates[pair[0]], rates[pair[1]]))
        for pair in (("ours", "bare, fast"), ("ours", "bare, plain"))
    }
    print(f"device={device.type} threads={args.threads} arch={args.arch} images={args.images} size={args.size}")
    for name, values in rates.items():
        print(f"{name:12s} {statistics.median(values):8.1f} images/s median   (rounds: {', '.join(f'{v:.1f}' for v in values)})")
    print(f"ratio ours / bare fast:  {ratios['ours', 'bare, fast']:.3f}   (median over rounds; goal >= 0.95)")
    print(f"ratio ours / bare plain: {ratios['ours', 'bare, plain']:.3f}   (median over rounds; goal >= 1.5)")

if __name__ == "__main__":
    main()
