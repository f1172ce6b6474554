import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from deepsky.data import storage
from deepsky.data.split import make_split

ROOT = Path(__file__).resolve().parents[1]


def ring_dataset(out_dir: Path, n: int = 160, size: int = 32, bands: int = 3, seed: int = 0) -> Path:
    """A small on-disk dataset in the project format: class 1 has a faint ring (an Einstein
    ring stand-in) on top of a galaxy blob and noise; learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    labels = np.arange(n) % 2
    images = rng.normal(0, 1, (n, bands, size, size)).astype(np.float32)
    images += 20 * np.exp(-0.5 * (r / 2.5) ** 2)
    radius = rng.uniform(5, 9, n)
    rings = 4 * np.exp(-0.5 * ((r[None] - radius[:, None, None]) / 1.0) ** 2)
    images += (labels[:, None, None] * rings)[:, None]
    catalog = pd.DataFrame(
        {"index": np.arange(n), "label": labels, "class_name": np.where(labels, "lens", "non-lens"),
         "kind": np.where(labels, "lens", "galaxy"), "radius": radius}
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    storage.save_images(out_dir / storage.IMAGES, images)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    storage.save_table(out_dir / "split.parquet", make_split(catalog, 0.2, 4, seed=seed))
    card = {"class_names": ["non-lens", "lens"], "bands": ["g", "r", "i"][:bands],
            "images_sha256": storage.sha256_file(out_dir / storage.IMAGES)}
    (out_dir / storage.CARD).write_text(json.dumps(card))
    return out_dir


def training_config(tmp_path: Path, data_name="rings", **training) -> dict:
    settings = {"epochs": 3, "batch_size": 32, "learning_rate": 1e-3, "patience": 10, "augment": False}
    settings.update(training)
    return {
        "seed": 1,
        "device": "cpu",
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")},
        "datasets": {data_name: {"source": "simulate_lenses", "n_per_class": 80, "split": {"test_fraction": 0.2, "k_folds": 4}}},
        "experiments": {"tiny": {"dataset": data_name, "architectures": ["winning_cnn"], "training": settings}},
    }


@pytest.fixture
def rings(tmp_path):
    return ring_dataset(tmp_path / "data")


def tiny_config(experiments=("lens_finding",), gradients=False) -> dict:
    """The default config cut down to a few experiments on tiny data."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    config["experiments"] = {name: config["experiments"][name] for name in experiments}
    used = {exp["dataset"] for exp in config["experiments"].values()}
    used |= {v["dataset"] for exp in config["experiments"].values() for v in exp.get("variants", {}).values() if "dataset" in v}
    used |= {config["datasets"][name]["base"] for name in list(used) if "base" in config["datasets"][name]}
    config["concept_figures"] = False  # unit-tested, and in the catalogue test's dry run
    config["inside"]["experiments"] = [e for e in config["inside"]["experiments"] if e in experiments][:1]
    if not config["inside"]["experiments"]:
        del config["inside"]
    if gradients:
        config["gradients"].update(steps=6, record_every=3)
        used.add(config["gradients"]["dataset"])
    else:
        del config["gradients"]
    config["datasets"] = {name: d for name, d in config["datasets"].items() if name in used}
    config["seed"] = 7
    for dataset in config["datasets"].values():
        dataset["split"] = {"test_fraction": 0.25, "k_folds": 2}
        if "n_per_class" in dataset:
            dataset["n_per_class"] = 24
            dataset["simulation"] = {"image_size": 32}
    for experiment in config["experiments"].values():
        if "architectures" in experiment:
            experiment["architectures"] = ["simple_cnn", "winning_cnn"]
        if "variants" in experiment:
            experiment["variants"] = dict(list(experiment["variants"].items())[:2])
        experiment["folds"] = "all"
        experiment["training"].update(epochs=2, batch_size=16, patience=2)
    return config


TINY = tiny_config(("lens_finding", "galaxy_morphology", "spurious_feature", "lens_parameters"), gradients=True)


def snakemake(workdir, *args, env=None):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
               *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{workdir}/results/mlflow.db"}
    result = snakemake(workdir, "--configfile", workdir / "tiny.yaml", "--cores", "2", env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir




def start_job(script: str, *args):
    """A training job in its own process (tests kill it), its output captured."""
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def crash_and_resume(start, tmp_path, job_dir=lambda out: out, side_by_side=False):
    """Run `start(out)` to the end into tmp_path/ref, and into tmp_path/crashed killed at its first
    checkpoint then restarted; checks that it resumed. `side_by_side` runs the reference while the
    other job is killed (faster; the job must tolerate a second writer). Returns (ref, crashed)."""
    ref, crashed = tmp_path / "ref", tmp_path / "crashed"
    reference = start(ref)
    if not side_by_side:
        assert reference.wait(timeout=300) == 0, reference.communicate()[0][-3000:]
    kill_at_first_checkpoint(start(crashed), job_dir(crashed))
    if side_by_side:
        assert reference.wait(timeout=300) == 0, reference.communicate()[0][-3000:]
    resumed = start(crashed)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming from" in log, log[-3000:]
    return ref, crashed


def assert_same_training(ref, new, columns, model="model.pt") -> None:
    """Same history (these columns) and bit-identical final weights in two job folders."""
    import pandas as pd
    import torch

    pd.testing.assert_frame_equal(pd.read_csv(ref / "history.csv")[columns], pd.read_csv(new / "history.csv")[columns])
    a = torch.load(ref / model, weights_only=True)
    b = torch.load(new / model, weights_only=True)
    assert a["meta"].get("task") == b["meta"].get("task")
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key


def kill_at_first_checkpoint(process, out_dir):
    """SIGKILL a training job as soon as its first epoch checkpoint exists; return the checkpoint."""
    import signal
    import time

    checkpoint = out_dir / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (out_dir / "model.pt").exists(), "the job finished before it could be killed"
    return checkpoint
