"""Training-practice experiments: gradient norms (vanishing gradients) and comparison figures."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.figures.practice import (
    FIGURE_STEMS,
    PRACTICE_FIGURES,
    fig_architecture_comparison,
    fig_batch_size,
    fig_overfitting,
    fig_validation_curves,
    fold_mean,
    parse_batch_size,
)
from deepsky.practice import DEFAULT_VARIANTS, fig_gradient_norms, gradient_norms, init_ratios
from deepsky.practice.gradients import COLUMNS, main


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny tensors: a second OpenMP thread only adds contention (BatchNorm1d goes from ~0.03 ms to
    # ~60 ms per call on a busy 2-core machine).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- gradients
@pytest.fixture(scope="module")
def random_batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1, 32, 32, generator=g)
    y = torch.arange(64) % 2
    return x, y


@pytest.fixture(scope="module")
def init_table(random_batch):
    x, y = random_batch
    return gradient_norms(x, y, DEFAULT_VARIANTS, steps=4, batch_size=32, lr=0.01, seed=5, record_every=2)


def test_gradient_table_layout(init_table):
    assert list(init_table.columns) == COLUMNS
    assert set(init_table["variant"]) == set(DEFAULT_VARIANTS)
    assert sorted(init_table["step"].unique()) == [0, 2, 4]
    # depth 10 -> 10 hidden Linear layers + the output Linear, indexed 0..10
    per = init_table[(init_table["variant"] == "sigmoid") & (init_table["step"] == 0)]
    assert per["layer"].tolist() == list(range(11))
    assert (init_table["weight_norm"] > 0).all()
    assert np.isfinite(init_table["grad_norm"]).all()


def test_sigmoid_gradients_vanish_bn_and_residual_keep_them(init_table):
    ratios = init_ratios(init_table)
    # sigmoid: sigma' <= 1/4 per layer -> the first layer sees orders of magnitude less gradient
    assert ratios["sigmoid"] < 1e-2
    # gradient shrinks monotonically-ish toward the input: first half much smaller than last half
    sig = init_table[(init_table["variant"] == "sigmoid") & (init_table["step"] == 0)]["grad_norm"].to_numpy()
    assert sig[:5].max() < sig[-3:].min()
    for name in ("relu_batchnorm", "relu_residual"):
        assert ratios[name] > 100 * ratios["sigmoid"], (name, ratios)
        assert 1e-2 < ratios[name] < 1e3, (name, ratios)


def test_gradient_norms_deterministic_and_seed_dependent(random_batch):
    x, y = random_batch
    variants = {"sig": {"depth": 3, "width": 16, "activation": "sigmoid"}}
    a = gradient_norms(x, y, variants, steps=3, batch_size=16, lr=0.1, seed=1, record_every=1)
    b = gradient_norms(x, y, variants, steps=3, batch_size=16, lr=0.1, seed=1, record_every=1)
    c = gradient_norms(x, y, variants, steps=3, batch_size=16, lr=0.1, seed=2, record_every=1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["grad_norm"], c["grad_norm"])
    # training changes the weights: step 3's weight norms differ from step 0's
    w0 = a[a["step"] == 0]["weight_norm"].to_numpy()
    w3 = a[a["step"] == 3]["weight_norm"].to_numpy()
    assert not np.allclose(w0, w3)


def test_exploding_variant_is_stopped_not_fatal(random_batch):
    x, y = random_batch
    variants = {"huge": {"depth": 6, "width": 64, "activation": "relu", "init": "normal", "init_std": 3.0}}
    table = gradient_norms(x, y, variants, steps=20, batch_size=32, lr=1.0, seed=0, record_every=5)
    # exploding: huge gradients at initialisation, then the loss blows up; recorded and stopped
    assert table[table["step"] == 0]["grad_norm"].min() > 1e3
    last = table["step"].max()
    assert last < 20
    assert not np.isfinite(table[table["step"] == last]["loss"]).all()


def test_fig_gradient_norms_writes_png_and_pdf(init_table, tmp_path):
    out = fig_gradient_norms(init_table, tmp_path / "002-vanishing-gradients.png")
    assert (tmp_path / "002-vanishing-gradients.png").stat().st_size > 10_000
    assert (tmp_path / "002-vanishing-gradients.pdf").exists()
    assert out["sigmoid"]["ratio_init"] == pytest.approx(init_ratios(init_table)["sigmoid"])
    assert len(out["relu"]["init"]) == 11


def test_main_with_fake_snakemake(rings, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = tmp_path / "results"
    smk = SimpleNamespace(
        input=SimpleNamespace(images=str(rings / "images.npy"), catalog=str(rings / "catalog.parquet"),
                              split=str(rings / "split.parquet")),
        output=SimpleNamespace(table=str(out / "gradients.csv"), figure=str(out / "002-vanishing-gradients.png")),
        params=SimpleNamespace(settings={
            "steps": 4, "batch_size": 32, "learning_rate": 0.01, "record_every": 2,
            "variants": {"sigmoid": {"depth": 4, "width": 16, "activation": "sigmoid"},
                         "relu_bn": {"depth": 4, "width": 16, "batch_norm": True}},
        }),
        log=[str(tmp_path / "logs" / "gradients.log")],
        wildcards=SimpleNamespace(experiment="practice"),
        config={"seed": 3, "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db"}},
        threads=1,
    )
    main(smk)
    table = pd.read_csv(smk.output.table)
    assert set(table["variant"]) == {"sigmoid", "relu_bn"}
    assert sorted(table["step"].unique()) == [0, 2, 4]
    assert (out / "002-vanishing-gradients.pdf").exists()
    assert (tmp_path / "logs" / "gradients.log").exists()  # (pytest's capture keeps print() out of it)

    from mlflow.tracking import MlflowClient

    client = MlflowClient(smk.config["tracking"]["uri"])
    experiment = client.get_experiment_by_name("practice")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "gradients/practice"
    history = client.get_metric_history(run.info.run_id, "sigmoid.grad_norm_first")
    assert sorted(m.step for m in history) == [0, 2, 4]
    first = table[(table["variant"] == "sigmoid") & (table["step"] == 0) & (table["layer"] == 0)]["grad_norm"].item()
    assert [m.value for m in history if m.step == 0][0] == pytest.approx(first, rel=1e-5)
    assert "relu_bn.grad_norm_last" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "gradients")}
    assert {"gradients/gradients.csv", "gradients/002-vanishing-gradients.png"} <= artifacts


# --------------------------------------------------------------------------- comparison figures
def _history(train, val, seconds=1.0, n=1000):
    train, val = np.asarray(train, float), np.asarray(val, float)
    e = np.arange(1, len(val) + 1)
    s = np.full(len(val), seconds)
    return pd.DataFrame({"epoch": e, "train_loss": train, "val_loss": val, "val_accuracy": 1 - val / 2,
                         "epoch_seconds": s, "images_per_second": n / s})


@pytest.fixture
def histories():
    rng = np.random.default_rng(0)
    h = {}
    e = np.arange(1, 16)
    for fold in range(3):
        noise = rng.normal(0, 0.005, len(e))
        h[("plain", fold)] = _history(0.7 * np.exp(-e / 4) + noise, 0.5 * np.exp(-e / 3) + 0.3 + 0.01 * e)
        h[("dropout", fold)] = _history(0.7 * np.exp(-e / 6) + 0.1, 0.5 * np.exp(-e / 4) + 0.25 + noise)[: 15 - fold]
    return h


def test_fig_overfitting_finds_min_val_epoch(tmp_path):
    val = [0.9, 0.7, 0.55, 0.48, 0.5, 0.6, 0.7, 0.8]  # minimum at epoch 4
    train = np.linspace(0.9, 0.05, len(val))
    h = {("m", 0): _history(train, val), ("m", 1): _history(train, np.array(val) + 0.01)}
    out = fig_overfitting(h, {"m": "no regularisation"}, tmp_path / "001-overfitting.png")
    assert out["m"]["best_epoch"] == 4
    assert out["m"]["min_val_loss"] == pytest.approx(0.485)
    assert out["m"]["fold_best_epochs"] == [4, 4]
    assert out["m"]["val_rise"] == pytest.approx(0.805 - 0.485)
    assert (tmp_path / "001-overfitting.png").exists() and (tmp_path / "001-overfitting.pdf").exists()


def test_fold_mean_handles_early_stopped_folds(histories):
    curve = fold_mean(histories, "dropout", "val_loss")
    assert curve["epoch"].tolist() == list(range(1, 16))
    # folds stop after 15, 14 and 13 epochs
    assert curve["n"].tolist() == [3] * 13 + [2, 1]


@pytest.mark.parametrize("show_train", [False, True])
def test_fig_validation_curves(histories, tmp_path, show_train):
    png = tmp_path / "curves.png"
    out = fig_validation_curves(histories, {"plain": "plain"}, png, "Plain vs residual", show_train=show_train)
    assert png.exists() and png.with_suffix(".pdf").exists()
    assert out["plain"]["min_val_loss"] < out["plain"]["final_val_loss"]
    assert out["dropout"]["epochs"] == 15


def test_fig_batch_size(tmp_path, monkeypatch):
    h = {}
    for bs, sec in ((16, 4.0), (64, 2.0), (256, 1.0)):
        for fold in range(2):
            e = np.arange(1, 9)
            h[(f"bs{bs}", fold)] = _history(np.exp(-e / 3), np.exp(-e * 16 / bs) + 0.2, seconds=sec)
    labels = {"bs16": "batch 16", "bs64": "batch 64", "bs256": "batch 256"}
    summary = pd.DataFrame({"architecture": ["bs16", "bs64", "bs256"],
                            "train_images_per_second_mean": [250.0, 500.0, 1000.0]})
    out = fig_batch_size(h, summary, labels, tmp_path / "004-batch-size.png")
    assert [out[m]["batch_size"] for m in ("bs16", "bs64", "bs256")] == [16, 64, 256]
    assert out["bs16"]["epoch_seconds_mean"] == pytest.approx(4.0)
    assert out["bs256"]["images_per_second"] == pytest.approx(1000.0)
    assert out["bs64"]["seconds_to_best"] == pytest.approx(16.0)  # best at epoch 8, 2 s per epoch
    assert (tmp_path / "004-batch-size.pdf").exists()
    # explicit sizes win over parsing (no need to render again)
    import matplotlib.pyplot as plt

    import deepsky.figures.practice as practice

    monkeypatch.setattr(practice, "save_figure", lambda fig, png: plt.close(fig))
    out2 = fig_batch_size(h, None, {}, tmp_path / "b2.png", batch_sizes={"bs16": 8, "bs64": 32, "bs256": 128})
    assert out2["bs16"]["batch_size"] == 8
    assert parse_batch_size("batch_size_128") == 128
    with pytest.raises(ValueError):
        parse_batch_size("large")


def test_fig_architecture_comparison_returns_what_it_drew(tmp_path):
    summary = pd.DataFrame({
        "architecture": ["simple_cnn", "winning_cnn", "resnet18"], "n_folds": [5, 5, 5],
        "accuracy_mean": [0.81, 0.93, 0.95], "accuracy_std": [0.02, 0.01, 0.015],
        "auroc_mean": [0.88, 0.97, 0.985], "auroc_std": [0.01, 0.005, 0.004],
        "train_seconds_mean": [10.0, 40.0, 120.0], "train_seconds_std": [1.0, 2.0, 3.0],
        "train_images_per_second_mean": [5000.0, 1200.0, 400.0], "train_images_per_second_std": [50.0, 20.0, 10.0],
    })
    params = {"simple_cnn": 20_000, "winning_cnn": 300_000, "resnet18": 11_000_000}
    out = fig_architecture_comparison(summary, params, tmp_path / "001-architecture-accuracy.png")
    assert out["architecture"] == summary["architecture"].tolist()
    for col in ("accuracy_mean", "accuracy_std", "auroc_mean", "auroc_std"):
        assert out[col] == pytest.approx(summary[col].tolist())
    assert out["images_per_second"] == pytest.approx(summary["train_images_per_second_mean"].tolist())
    assert out["params"] == [params[a] for a in out["architecture"]]
    assert (tmp_path / "001-architecture-accuracy.pdf").exists()


def test_practice_figures_registry(histories, tmp_path, monkeypatch):
    # Rendering is covered above; here only the uniform calling convention (skip the slow savefig).
    import matplotlib.pyplot as plt

    import deepsky.figures.practice as practice

    saved = []
    monkeypatch.setattr(practice, "save_figure", lambda fig, png: (saved.append(png), plt.close(fig)))
    assert set(FIGURE_STEMS.values()) == set(PRACTICE_FIGURES)
    summary = pd.DataFrame({"architecture": ["plain", "dropout"], "n_folds": [3, 3],
                            "accuracy_mean": [0.8, 0.9], "accuracy_std": [0.01, 0.02],
                            "train_images_per_second_mean": [100.0, 90.0]})
    kwargs = {"histories": histories, "labels": {"plain": "plain (batch 32)", "dropout": "dropout (batch 64)"},
              "summary": summary, "params": {"plain": 1000, "dropout": 1000}}
    for stem, fn in PRACTICE_FIGURES.items():
        assert isinstance(fn(tmp_path / f"{stem}.png", **kwargs), dict), stem
    assert saved == [tmp_path / f"{stem}.png" for stem in PRACTICE_FIGURES]
