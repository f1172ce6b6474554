"""One model on several GPUs (or CPU processes): the same loop under torch.distributed (DDP).

A training job that asks for `gpus: N > 1` is launched by torchrun inside the job; each rank
holds the whole fold in memory, draws the same seeded permutation each epoch and takes its share
of every global batch, so that every training image is seen once per epoch and the averaged
gradients equal those of the single-process batch. Only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import torch


def rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes in the environment (NCCL on GPUs, gloo on CPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or torch.distributed.is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shard(idx: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This rank's share of a global batch (strided, so shares differ by at most one image)."""
    return idx[rank::world]


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device.index])
    return DistributedDataParallel(model)


def mean_over_ranks(values: dict[str, float], count: int) -> dict[str, float]:
    """Image-weighted mean of per-rank step values (the loss of the whole global batch)."""
    rank, world = rank_world()
    if world == 1:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] * count for k in keys] + [float(count)], dtype=torch.float64)
    torch.distributed.all_reduce(tensor)
    return {k: float(tensor[i] / tensor[-1]) for i, k in enumerate(keys)}


def barrier() -> None:
    if rank_world()[1] > 1:
        torch.distributed.barrier()


def launch(module: str, argument: str, processes: int) -> int:
    """Run `python -m module argument` on `processes` ranks with torchrun; returns its exit code."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", module, argument]
    print("launching: " + " ".join(command), flush=True)
    return subprocess.run(command).returncode
