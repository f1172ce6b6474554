"""The graph_regression task through the shared loop: moment loss, metrics, exact resume with PyG
batches, the regression prediction contract and the robustness stage."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.config import ConfigError, validate_config
from deepsky.data import storage
from deepsky.data.cosmo_graphs import write_cosmo_dataset
from deepsky.data.split import make_split
from deepsky.tasks import make_task
from deepsky.tasks.cosmo_graphs import moment_loss, reduced_chi2, relative_error
from tests.conftest import assert_same_training, crash_and_resume, start_job

TARGETS = {"Omega_m": "Omega_m", "sigma_8": "sigma_8"}
SIMULATION = {"box_size": 100.0, "grid": 16, "n_galaxies": 150, "emulator_grid": [2, 2]}


def cosmo_config(tmp_path, **training):
    settings = {"epochs": 4, "batch_size": 8, "learning_rate": 3e-3, "patience": 10, "augment": False, **training}
    datasets = {
        name: {"source": "simulate_cosmo_galaxies", "n_boxes": n, "simulation": {**SIMULATION, **extra},
               "split": {"test_fraction": 0.25, "k_folds": 2}}
        for name, n, extra in (("boxes", 32, {}), ("sparse", 8, {"n_galaxies": 90}))
    }
    return {
        "seed": 1, "device": "cpu",
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")},
        "datasets": datasets,
        "experiments": {"tiny": {"dataset": "boxes", "task": "graph_regression", "targets": TARGETS,
                                 "graph": {"linking_radius": 15.0, "pk_bins": 6, "pk_grid": 16},
                                 "shift_datasets": ["sparse"], "architectures": ["cosmo_gnn", "pk_mlp"],
                                 "model_kwargs": {"cosmo_gnn": {"hidden": 8}}, "training": settings}},
    }


@pytest.fixture(scope="module")
def boxes(tmp_path_factory):
    root = tmp_path_factory.mktemp("cosmo")
    config = cosmo_config(root)
    for name, seed in (("boxes", 3), ("sparse", 4)):
        write_cosmo_dataset(root / name, name, config["datasets"][name], seed=seed)
    catalog = pd.read_parquet(root / "boxes" / storage.CATALOG)
    storage.save_table(root / "boxes" / "split.parquet", make_split(catalog, 0.25, 2, seed=0))
    return root


# ---------------------------------------------------------------- loss and metrics
def test_moment_loss_is_minimised_by_the_mean_and_the_variance():
    rng = np.random.default_rng(0)
    draws = rng.normal(0.3, 0.1, (2000, 1))
    # A symmetric sample (no third moment): the optimum is exactly its mean and variance.
    theta = torch.from_numpy(np.vstack([draws, 0.6 - draws]))
    best = theta.mean(0, keepdim=True), ((theta - theta.mean(0)) ** 2).mean(0, keepdim=True)
    value = float(moment_loss(best[0].expand_as(theta), best[1].expand_as(theta), theta))
    manual = np.log(np.mean((theta.numpy() - best[0].numpy()) ** 2)) + np.log(np.mean(((theta.numpy() - best[0].numpy()) ** 2 - best[1].numpy()) ** 2))
    assert value == pytest.approx(manual)
    mean, variance = best[0].clone().requires_grad_(), best[1].clone().requires_grad_()
    moment_loss(mean.expand_as(theta), variance.expand_as(theta), theta).backward()
    assert abs(float(mean.grad)) < 1e-9 and abs(float(variance.grad)) < 1e-9
    for shifted in ((best[0] + 0.05, best[1]), (best[0], best[1] * 2)):
        assert float(moment_loss(shifted[0].expand_as(theta), shifted[1].expand_as(theta), theta)) > value


def test_relative_error_and_reduced_chi2():
    from sklearn.metrics import mean_absolute_percentage_error

    rng = np.random.default_rng(1)
    truth = rng.uniform(0.1, 0.5, 5000)
    sigma = rng.uniform(0.01, 0.05, 5000)
    pred = truth + rng.normal(0, sigma)
    assert relative_error(truth, pred) == pytest.approx(np.mean(np.abs(pred - truth) / truth))
    assert relative_error(truth, pred) == pytest.approx(mean_absolute_percentage_error(truth, pred))
    assert reduced_chi2(truth, pred, sigma) == pytest.approx(1.0, abs=0.05)
    assert reduced_chi2(truth, pred, sigma / 2) == pytest.approx(4.0, rel=0.05)


def test_config_needs_catalogue_datasets(tmp_path):
    config = cosmo_config(tmp_path)
    validate_config(config)
    config["experiments"]["tiny"]["shift_datasets"] = ["nowhere"]
    with pytest.raises(ConfigError, match=r"experiments\.tiny.*simulate_cosmo_galaxies"):
        validate_config(config)


# ---------------------------------------------------------------- through the loop
SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from deepsky.stages.train import train_fold
    torch.set_num_threads(1)
    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    train_fold(config, "tiny", "cosmo_gnn", 0, data, data + "/split.parquet", None, out + "/fold0/model.pt", out + "/history.csv")
    """
)


def test_graph_training_resumes_exactly_after_a_kill(boxes, tmp_path):
    config = cosmo_config(tmp_path, epochs=4)

    from deepsky.tracking import init_store

    init_store(config["tracking"]["uri"], config["tracking"]["artifact_root"], ["tiny"])  # two jobs at once
    ref, crashed = crash_and_resume(lambda out: start_job(SCRIPT, json.dumps(config), boxes / "boxes", out), tmp_path,
                                    job_dir=lambda out: out / "fold0", side_by_side=True)
    assert_same_training(ref, crashed, ["epoch", "train_loss", "val_loss", "val_rmse_scaled"], model="fold0/model.pt")
    meta = torch.load(ref / "fold0/model.pt", weights_only=True)["meta"]
    assert meta["task"]["name"] == "graph_regression" and meta["num_outputs"] == 4

def test_predictions_follow_the_regression_contract_and_robustness_runs(boxes, tmp_path):
    from deepsky.stages.cosmo_graphs import evaluate_robustness
    from deepsky.stages.evaluate import evaluate_architecture
    from deepsky.stages.train import train_fold

    torch.set_num_threads(1)
    config = cosmo_config(tmp_path, epochs=2)
    data = boxes / "boxes"
    models, nominal = [], []
    for arch in ("cosmo_gnn", "pk_mlp"):
        paths = []
        for fold in (0, 1):
            path = tmp_path / "tiny" / arch / f"fold{fold}" / "model.pt"
            train_fold(config, "tiny", arch, fold, data, data / "split.parquet", None, path, path.parent / "history.csv")
            paths.append(path)
        per_fold = evaluate_architecture(config, "tiny", arch, paths, data, data / "split.parquet",
                                         tmp_path / f"{arch}.parquet", tmp_path / f"{arch}.json")
        assert {"Omega_m_rel_error", "sigma_8_chi2", "Omega_m_coverage68", "sigma_8_r2"} <= set(per_fold[0])
        models += paths
        nominal.append(tmp_path / f"{arch}.parquet")
    table = pd.read_parquet(nominal[0])
    assert {"index", "Omega_m", "Omega_m_pred", "Omega_m_sigma", "sigma_8", "sigma_8_pred", "sigma_8_sigma", "fold"} <= set(table)
    assert len(table) == 2 * 8 and (table["Omega_m_sigma"] > 0).all()

    summary = evaluate_robustness(config, "tiny", models, nominal, {"boxes": data, "sparse": boxes / "sparse"},
                                  tmp_path / "rob.parquet", tmp_path / "rob.csv", tmp_path / "rob_summary.csv")
    assert set(summary["test_set"]) == {"boxes", "sparse"} and set(summary["architecture"]) == {"cosmo_gnn", "pk_mlp"}
    shifted = pd.read_parquet(tmp_path / "rob.parquet").query("test_set == 'sparse'")
    assert len(shifted) == 2 * 2 * 8  # every sparse box, by every fold model of both networks
    assert summary.loc[summary["test_set"] == "sparse", "n_galaxies"].eq(90).all()


def test_task_spec_round_trip():
    task = make_task({"name": "graph_regression", "targets": TARGETS, "graph": {"linking_radius": 10.0}})
    assert task.head_size == 4 and task.spec["graph"]["pk_bins"] == 12
    assert make_task(dict(task.spec)).spec == task.spec
