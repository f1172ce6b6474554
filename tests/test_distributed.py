"""One model on several processes: the same loop under DDP (gloo on the CPU, 2 ranks)."""

import json
import os
import subprocess
import sys
import time

import pandas as pd
import psutil
import torch

from deepsky.distributed import shard
from deepsky.stages.train import train_fold
from tests.conftest import ROOT, training_config


def test_ranks_share_every_batch_once():
    order = torch.randperm(103, generator=torch.Generator().manual_seed(0))
    for start in range(0, 103, 16):
        idx = order[start : start + 16]
        parts = [shard(idx, rank, 2) for rank in range(2)]
        assert sorted(torch.cat(parts).tolist()) == sorted(idx.tolist())
        assert not set(parts[0].tolist()) & set(parts[1].tolist())
        assert abs(len(parts[0]) - len(parts[1])) <= 1


def ddp_job(config, data, out, tmp_path):
    job = tmp_path / f"{out.name}.json"
    job.write_text(json.dumps([config, "tiny", "lenet5", 0, str(data), str(data / "split.parquet"), None,
                               str(out / "model.pt"), str(out / "history.csv")]))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "deepsky.stages.train", str(job)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lenet_config(tmp_path, epochs):
    config = training_config(tmp_path, epochs=epochs, batch_size=32, precise_bn=False)
    config["experiments"]["tiny"]["architectures"] = ["lenet5"]
    return config


def test_two_ranks_train_like_one_and_resume_after_a_rank_dies(rings, tmp_path):
    config = lenet_config(tmp_path, epochs=4)
    torch.set_num_threads(1)
    single = tmp_path / "single"
    train_fold(config, "tiny", "lenet5", 0, rings, rings / "split.parquet", None, single / "model.pt", single / "history.csv")

    two = tmp_path / "two"
    process = ddp_job(config, rings, two, tmp_path)
    log = process.communicate(timeout=300)[0]
    assert process.returncode == 0, log[-3000:]
    a, b = pd.read_csv(single / "history.csv"), pd.read_csv(two / "history.csv")
    # LeNet-5 has no batch norm: the averaged gradients of two half batches are the batch gradient.
    pd.testing.assert_frame_equal(a[["epoch", "train_loss", "val_loss"]], b[["epoch", "train_loss", "val_loss"]],
                                  rtol=1e-4, atol=1e-6)
    from mlflow.tracking import MlflowClient

    client = MlflowClient(config["tracking"]["uri"])
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 2, "rank 1 must not open a run of its own"

    # Kill one rank after the first checkpoint: the job fails; run again, it resumes.
    crashed = tmp_path / "crashed"
    process = ddp_job(config, rings, crashed, tmp_path)
    checkpoint = crashed / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.02)
    ranks = [p for p in psutil.Process(process.pid).children(recursive=True) if "deepsky.stages.train" in " ".join(p.cmdline())]
    assert len(ranks) == 2
    ranks[-1].kill()
    process.communicate(timeout=120)
    assert process.returncode != 0 and not (crashed / "model.pt").exists()
    resumed = ddp_job(config, rings, crashed, tmp_path)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming from" in log, log[-3000:]
    c = pd.read_csv(crashed / "history.csv")
    pd.testing.assert_frame_equal(b[["epoch", "train_loss", "val_loss"]], c[["epoch", "train_loss", "val_loss"]])
    reference = torch.load(two / "model.pt", weights_only=True)["state_dict"]
    for key, value in torch.load(crashed / "model.pt", weights_only=True)["state_dict"].items():
        assert torch.equal(value, reference[key]), key


def test_training_gpus_become_the_rules_gpu_resource(tmp_path):
    """`training.gpus: 2` asks the scheduler for two GPUs; the stage then launches two ranks."""
    import yaml

    from tests.conftest import snakemake, tiny_config

    config = tiny_config(("lens_finding",))
    config["experiments"]["lens_finding"]["training"]["gpus"] = 2
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", tmp_path / "c.yaml", "-n", "--cores", "2", "--resources", "gpu=2")
    assert result.returncode == 0, result.stderr[-3000:]
    train_blocks = [b for b in result.stdout.split("\n\n") if "rule train:" in b]
    assert train_blocks and all("gpu=2" in b for b in train_blocks)
