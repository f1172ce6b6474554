"""The photoz task through the shared loop, its table contract, the classical methods and `deepsky predict`."""

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.data import storage
from deepsky.data.photoz import write_photoz_dataset
from deepsky.data.split import make_split
from deepsky.models import create_model
from deepsky.predict import predict_files, write_predictions
from deepsky.stages.photoz import classical_fold, comparison_table
from deepsky.tasks import make_task
from deepsky.tasks.photoz_metrics import photoz_metrics
from deepsky.train import fit, save_atomic

SETTINGS = {"epochs": 3, "batch_size": 64, "learning_rate": 3e-3, "patience": 10, "augment": False}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("photoz_survey")
    write_photoz_dataset(out, "tiny", {"source": "simulate_photoz",
                                       "simulation": {"n_objects": 700, "n_images": 100, "image_size": 16}}, seed=5)
    catalog = pd.read_parquet(out / storage.CATALOG)
    storage.save_table(out / "split.parquet", make_split(catalog, 0.2, 3, seed=5))
    return out


def train(task, survey, tmp_path, arch, **model_kwargs):
    data = task.load_fold(survey, survey / "split.parquet", 0)
    dims = task.input_dims(data["train"])
    torch.manual_seed(0)
    model = create_model(arch, dims["in_channels"], task.head_size, image_size=dims["image_size"], **model_kwargs)
    history, best = fit(model, data["train"], data["val"], SETTINGS, torch.device("cpu"), 0, tmp_path / "last.pt", task)
    model.load_state_dict(best)
    return model, data, dims, history


def test_spec_is_checked():
    with pytest.raises(ValueError, match="inputs"):
        make_task({"name": "photoz", "inputs": "spectra"})
    with pytest.raises(ValueError, match="head"):
        make_task({"name": "photoz", "head": "softmax"})
    assert make_task({"name": "photoz", "head": "mdn", "n_components": 4}).head_size == 12
    assert make_task({"name": "photoz", "head": "point"}).head_size == 1
    with pytest.raises(ValueError, match="augment"):
        make_task({"name": "photoz"}).check_training({"augment": True})


def test_mdn_on_photometry_learns_and_writes_the_table_contract(survey, tmp_path):
    task = make_task({"name": "photoz", "inputs": "photometry", "head": "mdn", "n_components": 3})
    model, data, dims, history = train(task, survey, tmp_path, "photoz_mlp")
    assert dims == {"in_channels": 9, "image_size": 1}
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    index, x, raw = task.load_test(survey, survey / "split.parquet")
    split = pd.read_parquet(survey / "split.parquet")
    assert list(index) == sorted(split.loc[split["split"] == "test", "index"])
    table = task.prediction_table(index, raw, task.predict(model, x, torch.device("cpu")), 0, "photoz_mlp")
    expected = {"index", "z", "fold", "architecture", "z_pred", "z_lo68", "z_hi68"}
    expected |= {f"mdn_{p}_{k}" for p in ("weight", "mean", "sigma") for k in range(3)}
    assert set(table.columns) == expected
    assert (table["z_lo68"] <= table["z_pred"] + 1e-9).mean() > 0.95 and (table["z_hi68"] >= table["z_lo68"]).all()
    assert np.allclose(table[[f"mdn_weight_{k}" for k in range(3)]].sum(1), 1.0)
    scores = task.metrics(table)
    mean_guess = photoz_metrics(table.assign(z_pred=float(raw.mean())))
    assert scores["sigma_nmad"] < 0.7 * mean_guess["sigma_nmad"], (scores, mean_guess)  # 3 epochs, 420 rows
    assert 0 <= scores["hdr_coverage68"] <= scores["hdr_coverage95"] <= 1


def test_each_fold_model_scales_its_own_features(survey, tmp_path):
    task = make_task({"name": "photoz", "inputs": "photometry", "head": "point"})
    model, data, _, _ = train(task, survey, tmp_path, "photoz_mlp")
    index, x, _ = task.load_test(survey, survey / "split.parquet")
    saved = make_task(json.loads(json.dumps(task.spec)))  # as evaluate rebuilds it from the model file
    predicted = saved.predict(model, x, torch.device("cpu"))["z_pred"]
    direct = model(task._scale_features(torch.as_tensor(x))).detach().numpy()[:, 0] * task.spec["scale"]["std"][0] + task.spec["scale"]["mean"][0]
    assert np.allclose(predicted, direct, atol=1e-5)
    assert np.isnan(saved.predict(model, x, torch.device("cpu"))["z_lo68"]).all()


def test_cnn_reads_only_the_rows_with_cutouts(survey, tmp_path):
    task = make_task({"name": "photoz", "inputs": "images", "head": "mdn", "n_components": 2})
    data = task.load_fold(survey, survey / "split.parquet", 1)
    catalog = pd.read_parquet(survey / storage.CATALOG)
    with_image = set(catalog.loc[catalog["has_image"], "index"])
    assert set(data["train_index"]) | set(data["val_index"]) | set(data["test_index"]) <= with_image
    assert data["train"][0].shape[1:] == (5, 16, 16)
    index, x, _ = task.load_test(survey, survey / "split.parquet")
    assert set(index) <= with_image and len(x) == len(index)


def test_dihedral_batches_keep_the_pixels():
    from deepsky.tasks.photoz import dihedral

    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    y = dihedral(x)
    for a, b in zip(x, y):
        assert any(torch.equal(torch.rot90(f, k, (-2, -1)), b) for f in (a, a.flip(-1)) for k in range(4))


def test_classical_methods_write_the_same_contract(survey):
    catalog = pd.read_parquet(survey / storage.CATALOG).set_index("index", drop=False)
    split = pd.read_parquet(survey / "split.parquet")
    tables = {}
    for method, params in (("knn", {"n_neighbors": 10}), ("random_forest", {"n_estimators": 8})):
        table = classical_fold(method, params, catalog, split, 0, list("ugriz"), seed=1)
        assert {"index", "z", "fold", "architecture", "z_pred", "z_lo68", "z_hi68", "mdn_weight_0"} <= set(table.columns)
        assert photoz_metrics(table)["sigma_nmad"] < 0.05
        tables[method] = table
    summary = comparison_table(tables, catalog.reset_index(drop=True), split)
    assert set(summary["test_set"]) == {"all", "cutouts"}
    assert (summary.loc[summary["test_set"] == "cutouts", "n_test"] < summary.loc[summary["test_set"] == "all", "n_test"].max()).all()
    with pytest.raises(ValueError, match="unknown classical"):
        classical_fold("svm", {}, catalog, split, 0, list("ugriz"), seed=1)


def saved_model(task, model, dims, arch, path):
    meta = {"architecture": arch, "model_kwargs": {}, "in_channels": dims["in_channels"], "image_size": dims["image_size"],
            "num_outputs": task.head_size, "class_names": ["red", "blue"], "task": task.spec}
    save_atomic({"state_dict": model.state_dict(), "meta": meta}, path)
    return path


def test_predict_reads_catalogue_tables(survey, tmp_path):
    task = make_task({"name": "photoz", "inputs": "photometry", "head": "mdn", "n_components": 2})
    model, _, dims, _ = train(task, survey, tmp_path, "photoz_mlp")
    path = saved_model(task, model, dims, "photoz_mlp", tmp_path / "model.pt")
    rows = pd.read_parquet(survey / storage.CATALOG).head(5)
    rows.to_parquet(tmp_path / "rows.parquet")
    broken = rows.copy()
    broken.loc[broken.index[1], "mag_g"] = np.nan
    broken.drop(columns=["z"]).to_csv(tmp_path / "rows.csv", index=False)
    rows.drop(columns=["mag_u"]).to_csv(tmp_path / "no_u.csv", index=False)
    from astropy.table import Table

    Table.from_pandas(rows[["index", "mag_u", "mag_g", "mag_r", "mag_i", "mag_z"]]).write(tmp_path / "rows.fits")
    inputs = [tmp_path / "rows.parquet", tmp_path / "rows.csv", tmp_path / "no_u.csv", tmp_path / "rows.fits"]
    labels, predicted, errors, meta = predict_files(path, inputs, device="cpu")
    assert len(labels) == 14 and labels[0].endswith("rows.parquet#0") and labels[-1].endswith("rows.fits#4")
    assert np.allclose(predicted["z_pred"][9:], predicted["z_pred"][:5], atol=1e-6)  # FITS table = Parquet
    assert any("mag_u" in message for _, message in errors) and any("#1: magnitudes are not finite" in m for _, m in errors)
    assert [label.rsplit("#", 1)[1] for label in labels[5:9]] == ["0", "2", "3", "4"]  # row 1 skipped, named
    assert np.allclose(predicted["z_pred"][5:9], predicted["z_pred"][[0, 2, 3, 4]], atol=1e-6)  # Parquet = CSV
    out = io.StringIO()
    write_predictions(labels, predicted, meta, out)
    header = next(csv.reader(io.StringIO(out.getvalue())))
    assert header[:4] == ["file", "z_phot", "z_lo68", "z_hi68"] and "mdn_sigma_1" in header


def test_predict_scores_fits_cutouts_with_an_image_model(survey, tmp_path):
    from deepsky.data.fits_io import write_cutout

    task = make_task({"name": "photoz", "inputs": "images", "head": "point"})
    model, _, dims, _ = train(task, survey, tmp_path, "photoz_inception", widths=[4, 4], stem=4, hidden=16)
    meta_kwargs = {"widths": [4, 4], "stem": 4, "hidden": 16}
    path = saved_model(task, model, dims, "photoz_inception", tmp_path / "model.pt")
    payload = torch.load(path, weights_only=True)
    payload["meta"]["model_kwargs"] = meta_kwargs
    save_atomic(payload, path)
    images = np.load(survey / storage.IMAGES)
    for k in range(2):
        write_cutout(tmp_path / f"cutout_{k}.fits", images[k], list("ugriz"))
    files, predicted, errors, _ = predict_files(path, [tmp_path / "cutout_0.fits", tmp_path / "cutout_1.fits"], device="cpu")
    assert len(files) == 2 and not errors and np.isfinite(predicted["z_pred"]).all()
