"""Simulation throughput (images per second) with 1 and 2 worker processes.

    python benchmarks/simulation.py [--n-per-class 150] [--size 48]

Also checks that the data are identical whatever the number of workers.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from deepsky.data.simulate import simulate_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default="simulate_lenses")
    parser.add_argument("--n-per-class", type=int, default=150)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    rates, first = {}, None
    # Warm up imports and cached simulator objects so that the first timing is not penalised.
    simulate_dataset(args.source, 2, {"image_size": args.size}, seed=0, workers=1)
    for workers in args.workers:
        start = time.perf_counter()
        images, _, _ = simulate_dataset(args.source, args.n_per_class, {"image_size": args.size}, seed=1, workers=workers)
        rates[workers] = len(images) / (time.perf_counter() - start)
        if first is None:
            first = images
        assert np.array_equal(first, images), "data depend on the number of workers"
        print(f"{workers} worker(s): {rates[workers]:7.1f} images/s")
    base = args.workers[0]
    for workers in args.workers[1:]:
        print(f"speed-up {workers} vs {base} worker(s): {rates[workers] / rates[base]:.2f} (ideal {workers / base:.0f}; cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
