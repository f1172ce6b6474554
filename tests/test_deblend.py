"""Blends, their truth and baseline, the deblend/segmentation metrics, resume and `deepsky predict`."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.data import storage
from deepsky.data.deblend import (draw_galaxy, make_blend, merge_blend_config, noise_sigma, segmentation_map,
                                  sep_central_flux, write_blend_dataset)
from deepsky.data.split import make_split
from deepsky.tasks.deblend import confusion_counts, deblend_metrics, iou_dice, segmentation_metrics
from tests.conftest import ROOT, kill_at_first_checkpoint

SMALL = {"image_size": 16, "separation_px_range": [1.0, 6.0], "separation_bins": [0.4, 0.8]}


def test_blend_is_exactly_the_sum_of_its_parts():
    cfg = merge_blend_config(SMALL)
    for index in range(5):
        parts = make_blend(index, cfg, seed=3)
        assert len(parts["galaxies"]) == 1 + parts["row"]["n_companions"]
        expected = np.sum(parts["galaxies"], axis=0, dtype=np.float32) + parts["noise"]
        assert parts["blend"].dtype == np.float32 and np.array_equal(parts["blend"], expected)
        # the same seed gives the same blend; the noise has the configured depth
        assert np.array_equal(make_blend(index, cfg, seed=3)["blend"], parts["blend"])
    assert parts["row"]["true_flux"] == pytest.approx(float(parts["galaxies"][0][cfg["bands"].index("i")].sum()))


def test_segmentation_truth_follows_the_brighter_noiseless_galaxy():
    cfg = merge_blend_config({**SMALL, "image_size": 32})
    parts = make_blend(7, cfg, seed=1)
    sigma = list(noise_sigma(cfg).values())
    seg = segmentation_map(parts["galaxies"], sigma, 1.0)
    scale = np.asarray(sigma)[:, None, None]
    central = (parts["galaxies"][0] / scale).sum(0)
    companion = (np.sum(parts["galaxies"][1:], axis=0) / scale).sum(0)
    assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2}
    assert np.all(central[seg == 1] >= companion[seg == 1]) and np.all(companion[seg == 2] > central[seg == 2])
    assert np.all(np.maximum(central, companion)[seg == 0] < 1.0)
    assert np.all(np.maximum(central, companion)[seg > 0] >= 1.0)
    assert seg[16, 16] == 1 or companion[16, 16] > central[16, 16]


def test_sep_baseline_recovers_an_isolated_galaxy():
    cfg = merge_blend_config({"image_size": 32})
    import galsim

    rng = np.random.default_rng(0)
    sigma = noise_sigma(cfg)["i"]
    errors = []
    for k in range(5):
        params = {"mag": 21.5, "hlr": 0.5, "bulge_fraction": 0.3, "g1": 0.1, "g2": -0.05}
        truth = draw_galaxy(params, galsim.Kolmogorov(fwhm=0.7), cfg, (0.2, -0.1))[2]
        flux, found = sep_central_flux(truth + sigma * rng.standard_normal(truth.shape), sigma)
        assert found
        errors.append(flux / truth.sum() - 1)
    # isophotal flux misses the wings below 1.5 sigma: a few per cent low
    assert -0.15 < np.median(errors) < 0.02


def test_iou_and_dice_by_hand_and_against_torchmetrics():
    from torchmetrics.functional.classification import multiclass_f1_score, multiclass_jaccard_index

    truth = np.array([[[0, 0, 1], [1, 1, 2], [2, 2, 0]]], dtype=np.uint8)
    pred = np.array([[[0, 1, 1], [1, 2, 2], [2, 0, 0]]], dtype=np.uint8)
    confusion = confusion_counts(truth, pred)[0]
    iou, dice = iou_dice(confusion)
    # class 0: TP 2 (0,0),(2,2); FP 1 (2,1); FN 1 (0,1) -> IoU 2/4, Dice 4/6
    # class 1: TP 2; FP 1 (0,1); FN 1 (1,2) -> 2/4, 4/6; class 2: TP 2; FP 1 (1,2); FN 1 (2,1)
    assert iou == pytest.approx([0.5, 0.5, 0.5]) and dice == pytest.approx([2 / 3] * 3)
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (4, 8, 8)).astype(np.uint8)
    pred = np.where(rng.uniform(size=truth.shape) < 0.7, truth, rng.integers(0, 3, truth.shape)).astype(np.uint8)
    iou, dice = iou_dice(confusion_counts(truth, pred).sum(0))
    t, p = torch.from_numpy(truth.astype(np.int64)), torch.from_numpy(pred.astype(np.int64))
    assert iou == pytest.approx(multiclass_jaccard_index(p, t, num_classes=3, average=None).numpy(), abs=1e-6)
    assert dice == pytest.approx(multiclass_f1_score(p, t, num_classes=3, average=None).numpy(), abs=1e-6)
    table = pd.DataFrame({"separation_arcsec": [0.5, 1.0, 1.5, 2.5]})
    confusion = confusion_counts(truth, pred)
    for a in range(3):
        for b in range(3):
            table[f"n_true{a}_pred{b}"] = confusion[:, a, b]
    metrics = segmentation_metrics(table)
    assert metrics["iou_central"] == pytest.approx(iou[1]) and metrics["miou"] == pytest.approx(iou.mean())
    small_iou, _ = iou_dice(confusion[:1].sum(0))
    assert metrics["iou_companion_small"] == pytest.approx(small_iou[2])


def test_flux_error_metrics_against_numpy():
    rng = np.random.default_rng(2)
    n = 200
    truth = rng.uniform(1e3, 1e4, n)
    table = pd.DataFrame({
        "true_flux": truth, "flux_unet": truth * (1 + rng.normal(0.01, 0.05, n)),
        "flux_baseline": truth * (1 + rng.normal(0.1, 0.2, n)), "flux_unet_sigma": 0.05 * truth,
        "separation_arcsec": rng.uniform(0.2, 2.4, n), "baseline_detected": True,
        "e1_true": 0.1, "e2_true": 0.0, "e1_unet": 0.1 + rng.normal(0, 0.02, n), "e2_unet": rng.normal(0, 0.02, n),
        "pixel_coverage68": 0.6, "pixel_coverage95": 0.9,
    })
    table.loc[0, "e1_unet"] = np.nan
    m = deblend_metrics(table)
    r = table["flux_unet"] / truth - 1
    assert m["unet_flux_bias"] == pytest.approx(np.median(r))
    assert m["unet_flux_err68"] == pytest.approx((np.percentile(r, 84) - np.percentile(r, 16)) / 2)
    assert m["unet_flux_nmad"] == pytest.approx(1.4826 * np.median(np.abs(r - np.median(r))))
    small = table["separation_arcsec"] < 1.0
    rb = table.loc[small, "flux_baseline"] / truth[small] - 1
    assert m["baseline_small_flux_bias"] == pytest.approx(np.median(rb)) and m["n_small"] == small.sum()
    de = np.r_[table["e1_unet"] - 0.1, table["e2_unet"]]
    assert m["unet_e_rmse"] == pytest.approx(np.sqrt(np.nanmean(de**2))) and m["unet_e_failures"] == 1
    z = (table["flux_unet"] - truth) / table["flux_unet_sigma"]
    assert m["flux_coverage68"] == pytest.approx(np.mean(np.abs(z) < 1))


@pytest.fixture(scope="module")
def blend_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("blends")
    write_blend_dataset(out, "tiny_blends", {"simulation": {**SMALL, "n_blends": 96}}, seed=5)
    catalog = pd.read_parquet(out / storage.CATALOG)
    storage.save_table(out / "split.parquet", make_split(catalog, 0.25, 2, seed=0))
    images = np.load(out / "images.npy")
    assert images.shape == (96, 3, 16, 16) and np.load(out / "segmentation.npy").shape == (96, 16, 16)
    return out


def blend_config(tmp_path, task="deblend", epochs=3):
    return {
        "seed": 1, "device": "cpu",
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")},
        "datasets": {"tiny_blends": {"source": "simulate_blends", "simulation": SMALL,
                                     "split": {"test_fraction": 0.25, "k_folds": 2}}},
        "experiments": {"tiny": {"dataset": "tiny_blends", "task": task, "architectures": ["unet"],
                                 "model_kwargs": {"unet": {"base_channels": 4, "depth": 2}}, "deblend": {"mc_dropout": 3},
                                 "training": {"epochs": epochs, "batch_size": 16, "learning_rate": 3e-3, "patience": 10,
                                              "augment": False}}},
    }


SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from deepsky.stages.train import train_fold
    torch.set_num_threads(1)
    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    train_fold(config, "tiny", "unet", 0, data, data + "/split.parquet", None, out + "/model.pt", out + "/history.csv")
    """
)


@pytest.mark.slow
def test_deblend_resumes_exactly_after_a_kill(blend_data, tmp_path):
    config = blend_config(tmp_path, epochs=4)

    def start(out):
        return subprocess.Popen([sys.executable, "-c", SCRIPT, json.dumps(config), str(blend_data), str(out)],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    assert start(tmp_path / "ref").wait(timeout=300) == 0
    crashed = tmp_path / "crashed"
    kill_at_first_checkpoint(start(crashed), crashed)
    resumed = start(crashed)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0 and "resuming from" in log, log
    columns = ["epoch", "train_loss", "val_loss", "val_rmse_sigma_units"]
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ref/history.csv")[columns], pd.read_csv(crashed / "history.csv")[columns])
    ref, new = (torch.load(p / "model.pt", weights_only=True) for p in (tmp_path / "ref", crashed))
    for key in ref["state_dict"]:
        assert torch.equal(ref["state_dict"][key], new["state_dict"][key]), key


@pytest.mark.parametrize("task", ["deblend", "segmentation"])
def test_train_evaluate_and_predict_cli_write_fits(blend_data, tmp_path, task, capsys):
    from astropy.io import fits

    from deepsky.cli import main
    from deepsky.data.fits_io import write_cutout
    from deepsky.stages.evaluate import evaluate_model
    from deepsky.stages.train import train_fold
    from deepsky.tasks import make_task

    config = blend_config(tmp_path, task, epochs=2)
    model_path = tmp_path / "fold0" / "model.pt"
    train_fold(config, "tiny", "unet", 0, blend_data, blend_data / "split.parquet", None, model_path, tmp_path / "h.csv")
    loader = make_task({"name": task, "bands": ["g", "r", "i"]})
    index, x, raw = loader.load_test(blend_data, blend_data / "split.parquet")
    table, metrics = evaluate_model(model_path, x, raw, index, "unet", torch.device("cpu"))
    assert len(table) == len(index) and (table["fold"] == 0).all()
    if task == "deblend":
        assert {"true_flux", "flux_unet", "flux_unet_sigma", "flux_baseline", "e1_unet", "pixel_coverage68"} <= set(table)
        assert (table["flux_unet_sigma"] > 0).all() and 0 <= metrics["flux_coverage68"] <= 1
    else:
        assert {"iou_central", "dice_companion", "n_true1_pred1"} <= set(table) and 0 <= metrics["miou"] <= 1
    images = np.load(blend_data / "images.npy")
    cutouts = tmp_path / "cutouts"
    cutouts.mkdir()
    for k in range(2):
        write_cutout(cutouts / f"blend_{k}.fits", images[k], ["g", "r", "i"])
    write_cutout(tmp_path / "wrong.fits", images[0, :2], ["g", "r"])
    out = tmp_path / "out"
    assert main(["predict", "--model", str(model_path), str(cutouts), "-o", str(out), "--device", "cpu"]) == 0
    suffix, csv = ("deblended", "deblended.csv") if task == "deblend" else ("segmentation", "segmentation.csv")
    with fits.open(out / f"blend_0_{suffix}.fits") as hdul:
        assert hdul[0].data.shape == ((3, 16, 16) if task == "deblend" else (16, 16))
        assert hdul[1].name == ("SIGMA" if task == "deblend" else "PROB")
    assert len(pd.read_csv(out / csv)) == 2
    assert main(["predict", "--model", str(model_path), str(tmp_path / "wrong.fits"), "-o", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "wrong.fits" in err and "(2, 16, 16)" in err and "(3, 16, 16)" in err
