"""The task core: one loop and one evaluator for every kind of learning, and regression on it."""

import json
import os
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deepsky.config import ConfigError, validate_config
from deepsky.data import storage
from deepsky.data.split import make_split
from deepsky.stages.evaluate import combine_predictions, evaluate_architecture
from deepsky.stages.train import train_fold
from deepsky.tasks import Task, make_task, register_task
from deepsky.train import fit
from tests.conftest import ROOT, assert_same_training, crash_and_resume, start_job, training_config

TARGETS = {"radius": "radius", "amplitude": "amplitude"}


def ring_regression_dataset(out_dir, n=200, size=32, seed=0):
    """Rings whose radius and amplitude are the targets (one band, noise on top)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    radius, amplitude = rng.uniform(4, 11, n), rng.uniform(2, 6, n)
    images = amplitude[:, None, None] * np.exp(-0.5 * ((r[None] - radius[:, None, None]) / 1.2) ** 2)
    images = (images + rng.normal(0, 1, images.shape))[:, None].astype(np.float32)
    catalog = pd.DataFrame({"index": np.arange(n), "label": 0, "class_name": "ring", "radius": radius, "amplitude": amplitude})
    out_dir.mkdir(parents=True, exist_ok=True)
    storage.save_images(out_dir / storage.IMAGES, images)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    storage.save_table(out_dir / "split.parquet", make_split(catalog, 0.2, 4, seed=seed))
    card = {"class_names": ["ring"], "bands": ["F814W"], "images_sha256": storage.sha256_file(out_dir / storage.IMAGES)}
    (out_dir / storage.CARD).write_text(json.dumps(card))
    return out_dir


def regression_config(tmp_path, **training):
    config = training_config(tmp_path, **training)
    config["datasets"]["rings"]["source"] = "simulate_lens_parameters"
    config["experiments"]["tiny"].update(task="regression", targets=TARGETS, uncertainty="gaussian", mc_dropout=8)
    return config


@pytest.fixture
def ring_radii(tmp_path):
    return ring_regression_dataset(tmp_path / "data")


# ---------------------------------------------------------------- the seam
def test_a_task_defined_here_trains_through_the_shared_loop(tmp_path):
    """A two-optimiser task with its own batches and step: the loop still checkpoints and resumes."""

    @register_task("test_two_heads")
    class TwoHeads(Task):
        head_size = 1

        def optimizers(self, model, settings):
            return {"first": torch.optim.SGD(model[0].parameters(), lr=0.1),
                    "second": torch.optim.SGD(model[1].parameters(), lr=0.1)}

        def num_examples(self, data):
            return len(data["x"])

        def pin(self, data):
            return data

        def batch(self, data, idx, device):
            return data["x"][idx].to(device), data["y"][idx].to(device)

        def train_step(self, model, batch, optimizers, amp):
            x, y = batch
            first = ((model[0](x) - y) ** 2).mean()
            amp.step(first, optimizers["first"])
            second = ((model[1](x) - 2 * y) ** 2).mean()
            amp.step(second, optimizers["second"])
            return {"loss": first.item() + second.item(), "first": first.item()}

        def validate(self, model, data, device, batch_size):
            x, y = data["x"], data["y"]
            with torch.no_grad():
                return {"val_loss": float(((model[0](x) - y) ** 2).mean() + ((model[1](x) - 2 * y) ** 2).mean())}

    x = torch.randn(64, 3)
    data = {"x": x, "y": x.sum(1, keepdim=True)}
    task = make_task({"name": "test_two_heads"})

    def train(epochs, checkpoint):
        torch.manual_seed(0)
        model = nn.ModuleList([nn.Linear(3, 1), nn.Linear(3, 1)])
        settings = {"epochs": epochs, "batch_size": 16, "learning_rate": 0.1}
        history, best = fit(model, data, data, settings, torch.device("cpu"), 3, checkpoint, task)
        return history, best

    history, best = train(6, tmp_path / "a.pt")
    assert history[-1]["val_loss"] < 0.1 * history[0]["val_loss"]
    assert {"train_loss", "train_first", "val_loss"} <= set(history[0])
    train(3, tmp_path / "b.pt")  # stop after 3 epochs, then resume to 6 from the checkpoint
    resumed, resumed_best = train(6, tmp_path / "b.pt")
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in history]
    assert set(torch.load(tmp_path / "b.pt", weights_only=True)["optimizers"]) == {"first", "second"}
    for key in best:
        assert torch.equal(best[key], resumed_best[key])


def test_unknown_task_names_the_key():
    config = training_config(ROOT)
    config["experiments"]["tiny"]["task"] = "clustering"
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.task.*is not one of"):
        validate_config(config)


def test_regression_needs_targets_and_no_augmentation():
    config = training_config(ROOT)
    config["experiments"]["tiny"]["task"] = "regression"
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.targets"):
        validate_config(config)
    config["experiments"]["tiny"]["targets"] = TARGETS
    config["experiments"]["tiny"]["training"]["augment"] = True
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.training\.augment"):
        validate_config(config)


def test_classification_rejects_regression_options():
    config = training_config(ROOT)
    config["experiments"]["tiny"]["uncertainty"] = "gaussian"
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.uncertainty.*only regression"):
        validate_config(config)


# ---------------------------------------------------------------- regression
def test_gaussian_loss_is_the_negative_log_likelihood():
    from scipy.stats import norm

    task = make_task({"name": "regression", "targets": TARGETS, "uncertainty": "gaussian"})
    mean, log_var = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.2, -0.4]])
    y = torch.tensor([[1.0, 0.0]])
    expected = -norm.logpdf(y.numpy(), mean.numpy(), np.exp(0.5 * log_var.numpy())).mean()
    assert float(task.loss(torch.cat([mean, log_var], 1), y)) == pytest.approx(expected, rel=1e-5)


def test_tiny_regression_beats_the_mean_and_predicts(ring_radii, tmp_path):
    config = regression_config(tmp_path, epochs=8, batch_size=16)
    torch.set_num_threads(1)
    models = []
    for fold in (0, 1):
        out = tmp_path / f"m{fold}"
        meta = train_fold(config, "tiny", "winning_cnn", fold, ring_radii, ring_radii / "split.parquet", None,
                          out / f"fold{fold}/model.pt", out / "history.csv")
        models.append(out / f"fold{fold}/model.pt")
    assert meta["task"]["name"] == "regression" and meta["num_outputs"] == 4
    env_before = os.environ.get("MLFLOW_TRACKING_URI")
    per_fold = evaluate_architecture(config, "tiny", "winning_cnn", models, ring_radii, ring_radii / "split.parquet",
                                     tmp_path / "pred.parquet", tmp_path / "metrics.json")
    assert os.environ.get("MLFLOW_TRACKING_URI") == env_before, "registering a model must not redirect later runs"
    table = pd.read_parquet(tmp_path / "pred.parquet")
    assert {"radius", "radius_pred", "radius_sigma", "amplitude", "amplitude_pred", "amplitude_sigma", "fold"} <= set(table)
    for fold, part in table.groupby("fold"):
        baseline = np.sqrt(((part["radius"] - part["radius"].mean()) ** 2).mean())
        rmse = np.sqrt(((part["radius_pred"] - part["radius"]) ** 2).mean())
        assert rmse < 0.6 * baseline, f"fold {fold}: rmse {rmse:.2f} vs predict-the-mean {baseline:.2f}"
    assert all(m["radius_r2"] > 0.5 for m in per_fold)
    assert (table["radius_sigma"] > 0).all()

    # The best fold is registered: pyfunc scores raw cutouts like the evaluator did.
    import mlflow

    from deepsky.mlflow_model import using_tracking_uri

    with using_tracking_uri(config["tracking"]["uri"]):
        registered = mlflow.pyfunc.load_model("models:/tiny-winning_cnn/latest")
    images = storage.load_images(ring_radii / storage.IMAGES)
    test_index = np.sort(table["index"].unique())
    scored = registered.predict(np.asarray(images[test_index], dtype=np.float32))
    best = max(per_fold, key=lambda m: m["r2_mean"])["fold"]
    expected = table[table["fold"] == best].sort_values("index")
    np.testing.assert_allclose(scored["radius_pred"], expected["radius_pred"], rtol=1e-4)

    # An experiment that opts out (a sweep feeding a figure) evaluates without a new registry version.
    config["experiments"]["tiny"]["register_models"] = False
    evaluate_architecture(config, "tiny", "winning_cnn", models, ring_radii, ring_radii / "split.parquet",
                          tmp_path / "pred2.parquet", tmp_path / "metrics2.json")
    client = mlflow.MlflowClient(tracking_uri=config["tracking"]["uri"])
    assert len(client.search_model_versions("name='tiny-winning_cnn'")) == 1

    # deepsky predict on the same model writes every target and its sigma per FITS file.
    from deepsky.cli import main
    from deepsky.data.fits_io import write_cutout

    images = storage.load_images(ring_radii / storage.IMAGES)
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for k in range(3):
        write_cutout(folder / f"ring_{k}.fits", images[k], ["F814W"])
    assert main(["predict", "--model", str(models[0]), str(folder), "-o", str(tmp_path / "p.csv"), "--device", "cpu"]) == 0
    written = pd.read_csv(tmp_path / "p.csv")
    assert list(written.columns) == ["file", "radius_pred", "radius_sigma", "amplitude_pred", "amplitude_sigma"]
    truth = pd.read_parquet(ring_radii / storage.CATALOG)["radius"].to_numpy()[:3]
    assert np.all(np.abs(written["radius_pred"] - truth) < 3 * written["radius_sigma"] + 1.5)


SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from deepsky.stages.train import train_fold
    torch.set_num_threads(1)
    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    train_fold(config, "tiny", "winning_cnn", 0, data, data + "/split.parquet", None, out + "/model.pt", out + "/history.csv")
    """
)


def test_regression_resumes_exactly_after_a_kill(ring_radii, tmp_path):
    config = regression_config(tmp_path, epochs=5, batch_size=16)

    ref, crashed = crash_and_resume(lambda out: start_job(SCRIPT, json.dumps(config), ring_radii, out), tmp_path)
    assert_same_training(ref, crashed, ["epoch", "train_loss", "val_loss", "val_rmse_scaled"])

def test_combined_network_averages_members():
    task = make_task({"name": "regression", "targets": {"a": "a"}, "uncertainty": "gaussian"})
    base = {"index": [0, 1], "fold": [0, 0], "a": [1.0, 2.0]}
    one = pd.DataFrame({**base, "architecture": "n1", "a_pred": [1.0, 3.0], "a_sigma": [0.1, 0.2]})
    two = pd.DataFrame({**base, "architecture": "n2", "a_pred": [2.0, 1.0], "a_sigma": [0.1, 0.2]})
    combined = combine_predictions([one, two], task)
    assert combined["a_pred"].tolist() == [1.5, 2.0]
    # Mixture of two Gaussians: variance = mean variance + variance of the means.
    assert combined["a_sigma"].tolist() == pytest.approx([np.sqrt(0.01 + 0.25), np.sqrt(0.04 + 1.0)])
    assert set(combined["architecture"]) == {"combined"}
    with pytest.raises(ValueError, match="different test images"):
        combine_predictions([one, two.iloc[:1]], task)


def test_mc_dropout_spreads_predictions_and_is_repeatable():
    from deepsky.models import create_model

    task = make_task({"name": "regression", "targets": {"a": "a"}, "uncertainty": "none", "mc_dropout": 10,
                      "scale": {"mean": [0.0], "std": [1.0]}})
    torch.manual_seed(0)
    model = create_model("winning_cnn", 1, 1, image_size=32)
    x = torch.randn(4, 1, 32, 32)
    first = task.predict(model, x, torch.device("cpu"))
    again = task.predict(model, x, torch.device("cpu"))
    assert (first["a_sigma"] > 0).all()
    np.testing.assert_array_equal(first["a_pred"], again["a_pred"])
    assert not model.training


def test_a_file_that_is_not_a_model_gives_one_line(tmp_path, capsys):
    from deepsky.cli import main

    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    torch.save({"model": nn.Linear(2, 2)}, tmp_path / "pickled_module.pt")  # weights_only refuses it
    for name in ("junk.pt", "pickled_module.pt"):
        assert main(["predict", "--model", str(tmp_path / name), str(tmp_path), "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and "not a deepsky model file" in err[0], err
