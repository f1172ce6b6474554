"""The `sequence_classification` task through the one loop: training, K-fold evaluation in the
multiclass contract, metrics equal to scikit-learn's, exact resume after a kill, `deepsky predict`
on an observations Parquet file, and the random-forest baseline in the same contract."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

from deepsky.data import storage
from deepsky.data.lightcurves import OBSERVATIONS, write_lightcurve_dataset
from deepsky.data.lightcurves_features import feature_table
from deepsky.data.lightcurves_physics import CLASS_NAMES
from deepsky.data.lightcurves_tensors import load_objects
from deepsky.data.split import make_split
from deepsky.stages.evaluate import evaluate_architecture
from deepsky.stages.lightcurves_analysis import baseline_folds, early_accuracy, unpadded
from deepsky.stages.train import train_fold
from deepsky.tasks import make_task
from tests.conftest import ROOT, assert_same_training, crash_and_resume, start_job

CONTRACT = ["index", "label", "fold", "architecture", *[f"p_{n}" for n in CLASS_NAMES], "predicted"]


@pytest.fixture(scope="module")
def light_curves(tmp_path_factory):
    out = tmp_path_factory.mktemp("lc")
    write_lightcurve_dataset(out, "lc", {"n_per_class": 16}, seed=3)
    catalog = pd.read_parquet(out / storage.CATALOG)
    storage.save_table(out / "split.parquet", make_split(catalog, 0.25, 3, seed=0))
    return out


def lc_config(tmp_path, arch="lc_gru", **training):
    settings = {"epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "patience": 10, "augment": False, **training}
    return {
        "seed": 1, "device": "cpu",
        "tracking": {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")},
        "datasets": {"lc": {"source": "simulate_lightcurves", "n_per_class": 16, "split": {"test_fraction": 0.25, "k_folds": 3}}},
        "experiments": {"tiny": {"dataset": "lc", "task": "sequence_classification", "architectures": [arch],
                                 "sequence": {"truncate_fraction": 0.5}, "training": settings}},
    }


@pytest.fixture(scope="module")
def trained(light_curves, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trained")
    config = lc_config(tmp, arch="lc_transformer")
    torch.set_num_threads(1)
    models = []
    for fold in (0, 1):
        out = tmp / f"lc_transformer/fold{fold}"
        meta = train_fold(config, "tiny", "lc_transformer", fold, light_curves, light_curves / "split.parquet", None,
                          out / "model.pt", out / "history.csv")
        models.append(out / "model.pt")
    per_fold = evaluate_architecture(config, "tiny", "lc_transformer", models, light_curves, light_curves / "split.parquet",
                                     tmp / "pred.parquet", tmp / "metrics.json")
    return {"meta": meta, "models": models, "per_fold": per_fold, "table": pd.read_parquet(tmp / "pred.parquet")}


def test_training_and_evaluation_write_the_multiclass_contract(trained, light_curves):
    meta, table = trained["meta"], trained["table"]
    assert meta["task"] == {"name": "sequence_classification", "class_names": CLASS_NAMES, "truncate_fraction": 0.5,
                            "bands": ["g", "r", "i"]}
    assert meta["in_channels"] == 8 and meta["num_outputs"] == 6
    assert set(CONTRACT) <= set(table.columns)
    assert sorted(table["fold"].unique()) == [0, 1] and set(table["architecture"]) == {"lc_transformer"}
    split = pd.read_parquet(light_curves / "split.parquet")
    assert sorted(table["index"].unique()) == sorted(split.loc[split["split"] == "test", "index"])
    p = table[[f"p_{n}" for n in CLASS_NAMES]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
    assert (table["predicted"] == p.argmax(1)).all()


def test_metrics_equal_scikit_learn(trained):
    table = trained["table"]
    for metrics in trained["per_fold"]:
        part = table[table["fold"] == metrics["fold"]]
        p = part[[f"p_{n}" for n in CLASS_NAMES]].to_numpy()
        assert metrics["accuracy"] == pytest.approx(accuracy_score(part["label"], p.argmax(1)))
        assert metrics["auroc_macro_ovr"] == pytest.approx(roc_auc_score(part["label"], p, multi_class="ovr", average="macro"))
        assert np.array(metrics["confusion"]).sum() == len(part)


def test_predict_reads_an_observations_parquet(trained, light_curves, tmp_path, capsys):
    from deepsky.cli import main

    observations = pd.read_parquet(light_curves / OBSERVATIONS)
    chosen = [3, 7, 11]
    observations[observations["object"].isin(chosen)].to_parquet(tmp_path / "mine.parquet")
    observations.drop(columns="flux_err").head(20).to_parquet(tmp_path / "broken.parquet")
    out = tmp_path / "p.csv"
    code = main(["predict", "--model", str(trained["models"][0]), str(tmp_path / "mine.parquet"),
                 str(tmp_path / "broken.parquet"), "-o", str(out), "--device", "cpu"])
    assert code == 1  # one file could not be used
    assert "broken.parquet: missing column(s) ['flux_err']" in capsys.readouterr().err
    written = pd.read_csv(out)
    assert list(written.columns) == ["file", "object", "predicted", *[f"p_{n}" for n in CLASS_NAMES]]
    assert written["object"].tolist() == chosen
    # The same probabilities as the evaluation of fold 0 on these test objects (they are test objects
    # or not: the model sees the same light curves either way).
    from deepsky.models_io import load_model

    model, meta = load_model(trained["models"][0])
    task = make_task(meta["task"])
    expected = task.predict(model, load_objects(light_curves, chosen, task.bands), torch.device("cpu"))
    np.testing.assert_allclose(written[[f"p_{n}" for n in CLASS_NAMES]].to_numpy(),
                               np.stack([expected[f"p_{n}"] for n in CLASS_NAMES], 1), atol=2e-6)
    assert written["predicted"].tolist() == [CLASS_NAMES[k] for k in expected["predicted"]]


def test_early_classification_on_cut_light_curves(trained, light_curves):
    from deepsky.models_io import load_model

    model, meta = load_model(trained["models"][0])
    task = make_task(meta["task"])
    index, x, labels = task.load_test(light_curves, light_curves / "split.parquet")
    rows = early_accuracy(task, model, *x, labels, torch.device("cpu"), "lc_transformer", 0, fractions=(0.2, 1.0))
    full = trained["table"].query("fold == 0")
    assert rows[1]["accuracy"] == pytest.approx(accuracy_score(full["label"], full["predicted"]))
    assert [r["fraction"] for r in rows] == [0.2, 1.0]


def test_random_forest_baseline_writes_the_same_contract(light_curves):
    catalog = pd.read_parquet(light_curves / storage.CATALOG).set_index("index", drop=False)
    split = pd.read_parquet(light_curves / "split.parquet")
    raw, lengths = load_objects(light_curves, catalog["index"], ["g", "r", "i"])
    features = feature_table(unpadded(raw, lengths), catalog["index"], ["g", "r", "i"])
    table, per_fold, _ = baseline_folds(features, split, catalog["label"], [0, 1], CLASS_NAMES, seed=0)
    assert set(CONTRACT) <= set(table.columns) and set(table["architecture"]) == {"random_forest"}
    for metrics in per_fold:
        part = table[table["fold"] == metrics["fold"]]
        assert metrics["accuracy"] == pytest.approx(accuracy_score(part["label"], part["predicted"]))
    # Hand-made features separate quiet stars from everything that varies.
    assert per_fold[0]["auroc_star"] > 0.9


SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from deepsky.stages.train import train_fold
    torch.set_num_threads(1)
    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    train_fold(config, "tiny", "lc_gru", 0, data, data + "/split.parquet", None, out + "/model.pt", out + "/history.csv")
    """
)


def test_resumes_exactly_after_a_kill(light_curves, tmp_path):
    """Random truncation draws from torch's generator, which the loop seeds per epoch."""
    config = lc_config(tmp_path, epochs=6, batch_size=8)

    def start(out):
        # Each job its own tracking store: the reference runs beside the job that gets killed.
        tracking = {"uri": f"sqlite:///{out}.db", "artifact_root": str(tmp_path / "artifacts")}
        return start_job(SCRIPT, json.dumps({**config, "tracking": tracking}), light_curves, out)

    ref, crashed = crash_and_resume(start, tmp_path, side_by_side=True)
    assert_same_training(ref, crashed, ["epoch", "train_loss", "val_loss", "val_accuracy"])

def test_image_augmentation_is_refused():
    from deepsky.config import ConfigError, validate_config

    config = lc_config(ROOT, augment=True)
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.training\.augment"):
        validate_config(config)
    with pytest.raises(ValueError, match="training.augment"):
        make_task({"name": "sequence_classification", "class_names": CLASS_NAMES}).check_training({"augment": True})
