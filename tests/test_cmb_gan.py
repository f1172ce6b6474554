"""The DCGAN and the gan task: architecture, one adversarial step on tiny data, the shared loop with
two optimisers (per-epoch samples, history columns) and its exact resume after a kill."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deepsky.data import storage
from deepsky.data.cards import write_card
from deepsky.data.cmb_spectrum import fundamental_ell, gaussian_field, nyquist_ell
from deepsky.data.split import make_split
from deepsky.models import create_model
from deepsky.tasks import Amp, make_task
from deepsky.train import fit
from tests.conftest import assert_same_training, crash_and_resume, start_job

PIXEL, SIZE = 8.0, 16
MODEL = {"latent_dim": 16, "base_width": 8}


def flat_cmb_dataset(out_dir, n=128, seed=0):
    """Gaussian flat patches of a red spectrum, stored like a CMB dataset (no camb: fast)."""
    ell = np.arange(0, 4000.0)
    cl = 2e3 / (ell + 100.0) ** 2
    images = gaussian_field(ell, cl, SIZE, PIXEL, np.random.default_rng(seed), n_fields=n)[:, None].astype(np.float32)
    catalog = pd.DataFrame({"index": np.arange(n), "label": 0, "class_name": "cmb"})
    out_dir.mkdir(parents=True, exist_ok=True)
    storage.save_images(out_dir / storage.IMAGES, images)
    storage.save_table(out_dir / storage.CATALOG, catalog)
    storage.save_table(out_dir / "split.parquet", make_split(catalog, 0.2, 4, seed=seed))
    theory = {"ell_min_resolved": 2 * fundamental_ell(SIZE, PIXEL), "ell_max_resolved": nyquist_ell(PIXEL),
              "noise_cl": 0.0, "cl_tt": cl.tolist(), "beam_window": np.ones_like(cl).tolist()}
    simulation = {"pixel_arcmin": PIXEL, "beam_fwhm_arcmin": 0.0, "noise_uk_arcmin": 0.0, "nside": 0, "n_maps": 1}
    write_card(out_dir, name="flat", source="simulate_cmb", description="flat Gaussian patches", class_names=["cmb"],
               catalog=catalog, images_shape=images.shape, bands=["T"],
               provenance={"simulation": simulation, "theory": theory})
    return out_dir


@pytest.fixture(scope="module")
def flat_patches(tmp_path_factory):
    return flat_cmb_dataset(tmp_path_factory.mktemp("flat"))


# ---------------------------------------------------------------- the DCGAN
def test_dcgan_follows_radford():
    model = create_model("dcgan", 1, 1, 32, **MODEL)
    g, d = model.generator, model.discriminator
    kinds = [type(m) for m in model.modules()]
    assert nn.MaxPool2d not in kinds and nn.AvgPool2d not in kinds and nn.Linear not in kinds
    assert all(isinstance(m, nn.ConvTranspose2d) for m in g if hasattr(m, "weight") and not isinstance(m, nn.BatchNorm2d))
    assert isinstance(g[-1], nn.Tanh) and isinstance(g[-2], nn.ConvTranspose2d)  # no batch norm on G's output
    assert isinstance(d[1], nn.LeakyReLU) and d[1].negative_slope == 0.2  # none on D's input either
    assert any(isinstance(m, nn.ReLU) for m in g) and not any(isinstance(m, nn.LeakyReLU) for m in g)
    convs = [m for m in d if isinstance(m, nn.Conv2d)]
    assert all(m.stride == (2, 2) for m in convs[:-1]) and convs[-1].kernel_size == (4, 4)  # strided, not pooled
    z = model.latent(3, "cpu")
    fake = model.generate(z)
    assert fake.shape == (3, 1, 32, 32) and fake.abs().max() <= 1
    assert model(fake).shape == (3, 1)
    assert abs(float(g[0].weight.detach().std()) - 0.02) < 0.005  # N(0, 0.02) initialisation


@pytest.mark.parametrize("size", [16, 24, 48, 64])
def test_dcgan_sizes(size):
    model = create_model("dcgan", 2, 1, size, **MODEL)
    assert model.generate(model.latent(2, "cpu")).shape == (2, 2, size, size)
    with pytest.raises(ValueError, match="image_size"):
        create_model("dcgan", 1, 1, 36, **MODEL)


# ---------------------------------------------------------------- one step
def test_one_step_updates_d_then_g(flat_patches):
    task = make_task({"name": "gan"})
    data = task.load_fold(flat_patches, flat_patches / "split.parquet", 0)
    assert task.spec["scale"]["std"] > 0 and task.spec["pixel_arcmin"] == PIXEL
    x = data["train"][0]
    assert x.shape[1:] == (1, SIZE, SIZE) and (x.abs() < 1).float().mean() > 0.999  # inside G's tanh range
    torch.manual_seed(0)
    model = create_model("dcgan", 1, 1, SIZE, **MODEL)
    optimizers = task.optimizers(model, {"learning_rate": 2e-4})
    assert set(optimizers) == {"discriminator", "generator"}
    assert optimizers["generator"].defaults["betas"] == (0.5, 0.999)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    step = task.train_step(model, (x[:32],), optimizers, Amp(torch.device("cpu"), True))
    assert set(step) == {"loss", "loss_D", "loss_G", "D_real", "D_fake"}
    assert all(np.isfinite(v) for v in step.values()) and 0 < step["D_real"] < 1 and 0 < step["D_fake"] < 1
    after = model.state_dict()
    assert not torch.equal(before["generator.0.weight"], after["generator.0.weight"])
    assert not torch.equal(before["discriminator.0.weight"], after["discriminator.0.weight"])
    # The generator's step leaves no gradient on D (frozen during G's update).
    assert all(p.grad is None or torch.count_nonzero(p.grad) > 0 for p in model.discriminator.parameters())
    assert np.allclose(task.decode(task.encode(np.ones((2, 1, 4, 4)))), 1.0, atol=1e-4)


def test_fit_with_two_optimisers_writes_history_and_samples(flat_patches, tmp_path):
    task = make_task({"name": "gan", "sample_every": 1})
    data = task.load_fold(flat_patches, flat_patches / "split.parquet", 0)
    torch.manual_seed(0)
    model = create_model("dcgan", 1, 1, SIZE, **MODEL)
    settings = {"epochs": 2, "batch_size": 32, "learning_rate": 2e-4, "patience": 100}
    checkpoint = tmp_path / "checkpoints" / "last.pt"
    history, best = fit(model, data["train"], data["val"], settings, torch.device("cpu"), 1, checkpoint, task)
    assert len(history) == 2
    assert {"train_loss_D", "train_loss_G", "train_D_real", "train_D_fake", "val_loss", "val_D_real", "val_D_fake"} <= set(history[0])
    assert all(np.isfinite(r["val_loss"]) and r["val_loss"] >= 0 for r in history)
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "samples").glob("*.png")) == ["epoch_001.png", "epoch_002.png"]
    state = torch.load(checkpoint, weights_only=True)
    assert set(state["optimizers"]) == {"discriminator", "generator"}
    assert any(k.startswith("generator.") for k in best) and any(k.startswith("discriminator.") for k in best)
    generated = task.generate(model, 5, torch.device("cpu"), seed=3)
    assert generated.shape == (5, SIZE, SIZE) and np.array_equal(generated, task.generate(model, 5, torch.device("cpu"), seed=3))
    assert task.predict(model, data["val"][0], torch.device("cpu"))["p_real"].shape == (len(data["val"][0]),)


def test_gan_refuses_augmentation_and_bad_options():
    with pytest.raises(ValueError, match="augment"):
        make_task({"name": "gan"}).check_training({"augment": True})
    with pytest.raises(ValueError, match="adam_beta1"):
        make_task({"name": "gan", "adam_beta1": 1.5})


# ---------------------------------------------------------------- exact resume
def test_two_optimiser_loop_resumes_exactly(flat_patches, tmp_path, capsys):
    """Stop after epoch 1, resume from the checkpoint in a fresh model: the same history and weights
    as an uninterrupted run (both Adam states, the per-epoch seeds of z and of the batch order)."""
    task = make_task({"name": "gan", "sample_every": 0})
    data = task.load_fold(flat_patches, flat_patches / "split.parquet", 0)
    settings = {"epochs": 3, "batch_size": 16, "learning_rate": 2e-4, "patience": 100}
    cpu = torch.device("cpu")

    def fresh():
        torch.manual_seed(0)
        return create_model("dcgan", 1, 1, SIZE, **MODEL)

    reference = fresh()
    history, _ = fit(reference, data["train"], data["val"], settings, cpu, 5, tmp_path / "ref/last.pt", task)
    fit(fresh(), data["train"], data["val"], {**settings, "epochs": 1}, cpu, 5, tmp_path / "cut/last.pt", task)
    resumed = fresh()
    capsys.readouterr()
    again, _ = fit(resumed, data["train"], data["val"], settings, cpu, 5, tmp_path / "cut/last.pt", task)
    printed = capsys.readouterr().out
    assert "resuming from" in printed and "epoch 1:" not in printed  # epochs 2 and 3 only
    columns = ["epoch", "train_loss_D", "train_loss_G", "train_D_real", "train_D_fake", "val_loss", "val_D_real"]
    assert [[r[c] for c in columns] for r in history] == [[r[c] for c in columns] for r in again]
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from deepsky.stages.train import train_fold
    torch.set_num_threads(1)
    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    train_fold(config, "tiny", "dcgan", 0, data, data + "/split.parquet", None, out + "/model.pt", out + "/history.csv")
    """
)


def gan_config(tmp_path):
    return {
        "seed": 1,
        "device": "cpu",
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")},
        "datasets": {"flat": {"source": "simulate_cmb", "n_per_class": 128, "split": {"test_fraction": 0.2, "k_folds": 4}}},
        "experiments": {"tiny": {
            "dataset": "flat", "task": "gan", "architectures": ["dcgan"], "gan": {"sample_every": 2},
            "model_kwargs": {"dcgan": MODEL},
            "training": {"epochs": 3, "batch_size": 16, "learning_rate": 2e-4, "patience": 100, "augment": False},
        }},
    }


@pytest.mark.slow  # three processes importing torch and MLflow; the in-process test above runs by default
def test_gan_resumes_exactly_after_a_kill(flat_patches, tmp_path):
    config = gan_config(tmp_path)

    ref, crashed = crash_and_resume(lambda out: start_job(SCRIPT, json.dumps(config), flat_patches, out), tmp_path)
    assert_same_training(ref, crashed, ["epoch", "train_loss_D", "train_loss_G", "train_D_real", "train_D_fake", "val_loss", "val_D_real"])
    assert torch.load(ref / "model.pt", weights_only=True)["meta"]["task"]["name"] == "gan"
