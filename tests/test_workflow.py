"""The workflow end to end on a tiny config, in a temporary directory."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, TINY, snakemake, tiny_config



def test_outputs(tiny_run):
    results = tiny_run / "results"
    summary = pd.read_csv(results / "lens_finding/summary.csv")
    assert list(summary["architecture"]) == ["simple_cnn", "winning_cnn"]
    assert (summary["n_folds"] == 2).all()
    assert summary["auroc_mean"].between(0, 1).all()
    for name in ["004-roc-curves", "001-train-validation-loss", "002-metcalf19-table"]:
        assert (results / f"lens_finding/figures/{name}.png").stat().st_size > 10_000
        assert (results / f"lens_finding/figures/{name}.pdf").exists()
    card = json.loads((results / "data/lenses/card.json").read_text())
    assert card["n_images"] == 48 and card["counts"] == {"non-lens": 24, "lens": 24}
    assert len(list((results / "data/lenses/fits").glob("*.fits"))) == 48
    predictions = pd.read_parquet(results / "lens_finding/winning_cnn/predictions.parquet")
    split = pd.read_parquet(results / "data/lenses/split.parquet")
    for fold in (0, 1):
        assert set(predictions.loc[predictions["fold"] == fold, "index"]) == set(split.loc[split["split"] == "test", "index"])
    for rule_log in ["data/lenses/simulate.log", "lens_finding/simple_cnn/fold0/train.log"]:
        assert (tiny_run / "logs" / rule_log).stat().st_size > 0


def test_mlflow_runs(tiny_run):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tiny_run}/results/mlflow.db")
    experiment = client.get_experiment_by_name("lens_finding")
    runs = client.search_runs([experiment.experiment_id])
    names = sorted(r.info.run_name for r in runs)
    expected = sorted(
        [f"train/lens_finding/{arch}/fold{fold}" for arch in ("simple_cnn", "winning_cnn") for fold in (0, 1)]
        + [f"evaluate/lens_finding/{arch}" for arch in ("simple_cnn", "winning_cnn")]
        + [f"figure/lens_finding/{stem}" for stem in ("001-train-validation-loss", "004-roc-curves",
                                                       "004-reliability-diagram", "002-metcalf19-table",
                                                       "001-architecture-accuracy")]
        + ["inside/lens_finding/winning_cnn/fold0"]
    )
    assert names == expected
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["workflow_run"] for r in runs}) == 1
    evaluation = next(r for r in runs if r.info.run_name == "evaluate/lens_finding/winning_cnn")
    assert 0 <= evaluation.data.metrics["test_auroc_mean"] <= 1
    assert {"test_tpr0", "test_tpr10", "test_accuracy", "test_auroc_std"} <= set(evaluation.data.metrics)
    per_fold = client.get_metric_history(evaluation.info.run_id, "test_auroc")
    assert sorted(m.step for m in per_fold) == [0, 1]
    train = next(r for r in runs if r.info.run_name == "train/lens_finding/simple_cnn/fold1")
    assert len(client.get_metric_history(train.info.run_id, "val_loss")) == 2


def test_registered_model_scores_cutouts(tiny_run):
    import mlflow
    import numpy as np

    from deepsky.mlflow_model import using_tracking_uri

    with using_tracking_uri(f"sqlite:///{tiny_run}/results/mlflow.db"):
        model = mlflow.pyfunc.load_model("models:/lens_finding-winning_cnn/latest")
    images = np.load(tiny_run / "results/data/lenses/images.npy")[:5]
    scores = model.predict(images.astype(np.float32))
    assert list(scores.columns) == ["score"] and scores["score"].between(0, 1).all()
    assert not list((tiny_run / "results/lens_finding").glob("*/fold*/checkpoints/last.pt"))


def test_second_run_has_nothing_to_do(tiny_run):
    result = snakemake(tiny_run, "--configfile", tiny_run / "tiny.yaml", "--cores", "1", "-n")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


def test_predict_on_exported_fits(tiny_run, tmp_path):
    fits_dir = tiny_run / "results/data/lenses/fits"
    bad = tmp_path / "bad.fits"
    bad.write_text("not a fits file")
    out = tmp_path / "scores.csv"
    result = subprocess.run(
        [sys.executable, "-m", "deepsky.cli", "predict", "--model",
         str(tiny_run / "results/lens_finding/winning_cnn/fold0/model.pt"), str(fits_dir), str(bad), "-o", str(out)],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 1  # one file could not be scored
    assert "bad.fits" in result.stderr and "not a readable FITS" in result.stderr
    scores = pd.read_csv(out)
    assert len(scores) == 48 and scores["score_lens"].between(0, 1).all()


def test_bad_config_stops_before_any_job(tmp_path):
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    bad["experiments"]["lens_finding"]["training"]["epochs"] = "many"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    result = snakemake(tmp_path, "--configfile", tmp_path / "bad.yaml", "--cores", "1")
    assert result.returncode != 0
    assert "experiments.lens_finding.training.epochs" in result.stderr
    assert not (tmp_path / "results").exists()


def test_inside_figures(tiny_run):
    inside = tiny_run / "results/lens_finding/inside/winning_cnn-fold0"
    for stem in ["002-first-layer-filters", "002-feature-maps", "002-top9-activations", "002-occlusion",
                 "002-saliency-gradcam", "002-class-maximisation"]:
        assert (inside / f"{stem}.png").stat().st_size > 10_000
    numbers = json.loads((inside / "numbers.json").read_text())
    assert set(numbers) >= {"002-occlusion", "002-class-maximisation"}


def test_multiclass_experiment(tiny_run):
    results = tiny_run / "results/galaxy_morphology"
    summary = pd.read_csv(results / "summary.csv")
    assert {"accuracy_mean", "auroc_macro_ovr_mean"} <= set(summary.columns)
    for stem in ["004-confusion-matrix", "004-roc-one-vs-rest", "001-train-validation-loss"]:
        assert (results / f"figures/{stem}.png").exists()
    predictions = pd.read_parquet(results / "winning_cnn/predictions.parquet")
    probabilities = predictions[["p_round", "p_edge_on", "p_spiral"]].to_numpy()
    assert abs(probabilities.sum(axis=1) - 1).max() < 1e-5


def test_real_galaxy10_file_runs_the_same_experiment(tmp_path):
    """Pointing config at a Galaxy10 file (format-faithful fixture) runs the experiment on it."""
    from tests.test_realdata import _write_galaxy10

    _write_galaxy10(tmp_path / "Galaxy10.h5", n=120)
    config = tiny_config(("galaxy_morphology_sdss",))
    config["datasets"]["galaxy10_sdss"]["path"] = str(tmp_path / "Galaxy10.h5")
    config["experiments"]["galaxy_morphology_sdss"]["architectures"] = ["simple_cnn"]
    config["experiments"]["galaxy_morphology_sdss"]["training"]["epochs"] = 1
    (tmp_path / "real.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", tmp_path / "real.yaml", "--cores", "2",
                       env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    assert result.returncode == 0, result.stderr[-4000:]
    card = json.loads((tmp_path / "results/data/galaxy10_sdss/card.json").read_text())
    # 120 rows with labels 0..9 cycling: 12 round (1), 36 edge-on (4,5,6), 36 spiral (7,8,9).
    assert card["counts"] == {"round": 12, "edge_on": 36, "spiral": 36}
    assert card["provenance"]["archive_sha256"]
    assert (tmp_path / "results/galaxy_morphology_sdss/figures/004-confusion-matrix.png").exists()


def test_real_data_experiment_is_skipped_offline(tmp_path):
    config = tiny_config(("lens_finding", "cats_vs_dogs"))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", tmp_path / "c.yaml", "--cores", "1", "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipping experiment 'cats_vs_dogs'" in result.stderr
    assert "download_all" in result.stderr
    assert "results/cats_vs_dogs" not in result.stdout


def test_lint_is_clean(tmp_path):
    result = snakemake(ROOT, "--lint")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Congratulations" in result.stdout + result.stderr


def test_slurm_profile_dry_run(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="the SLURM plugin is an optional extra")
    result = snakemake(tmp_path, "--profile", ROOT / "profiles/slurm", "-n", "--configfile", ROOT / "config/config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train" in result.stdout + result.stderr


def test_spurious_feature_pitfall(tiny_run):
    results = tiny_run / "results/spurious_feature"
    table = pd.read_csv(results / "pitfall_accuracy.csv")
    assert set(table["model"]) == {"trained on clean data", "trained with the artefact on lens images"}
    assert table["test_condition"].nunique() == 3 and table["fold"].nunique() == 2
    assert table["accuracy"].between(0, 1).all()
    for stem in ["000-spurious-accuracy", "000-spurious-attribution"]:
        assert (results / f"figures/{stem}.png").exists()
    card = json.loads((tiny_run / "results/data/lenses_artefact/card.json").read_text())
    base = json.loads((tiny_run / "results/data/lenses_small/card.json").read_text())
    assert card["provenance"]["base_sha256"] == base["images_sha256"] != card["images_sha256"]
    split = pd.read_parquet(tiny_run / "results/data/lenses_artefact/split.parquet")
    base_split = pd.read_parquet(tiny_run / "results/data/lenses_small/split.parquet")
    pd.testing.assert_frame_equal(split, base_split)


def test_regression_experiment(tiny_run):
    """Lens-parameter regression through the same train / evaluate / summary rules."""
    results = tiny_run / "results/lens_parameters"
    targets = ["theta_E", "epsilon_x", "epsilon_y", "x", "y"]
    summary = pd.read_csv(results / "summary.csv")
    assert list(summary["architecture"]) == ["simple_cnn", "winning_cnn", "combined"]
    assert {f"{t}_err68_mean" for t in targets} | {f"{t}_coverage68_mean" for t in targets} <= set(summary)
    for arch in ("winning_cnn", "combined"):
        table = pd.read_parquet(results / f"{arch}/predictions.parquet")
        assert {"index", "fold", "architecture"} | set(targets) | {f"{t}_pred" for t in targets} | {
            f"{t}_sigma" for t in targets} <= set(table)
        assert sorted(table["fold"].unique()) == [0, 1] and (table["theta_E_sigma"] > 0).all()
    catalog = pd.read_parquet(tiny_run / "results/data/lens_parameters/catalog.parquet").set_index("index")
    table = pd.read_parquet(results / "winning_cnn/predictions.parquet")
    assert (table["theta_E"].to_numpy() == catalog.loc[table["index"], "theta_E"].to_numpy()).all()
    for stem in ["004-hezaveh17-table", "004-hezaveh17-parameters", "004-parameter-calibration",
                 "001-train-validation-loss"]:
        assert (results / f"figures/{stem}.png").stat().st_size > 10_000
    assert (tiny_run / "results/data/lens_parameters/figures/004-hezaveh17-examples.png").exists()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tiny_run}/results/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("lens_parameters").experiment_id])
    names = {r.info.run_name for r in runs}
    assert {"evaluate/lens_parameters/combined", "train/lens_parameters/winning_cnn/fold1"} <= names
    train = next(r for r in runs if r.info.run_name == "train/lens_parameters/winning_cnn/fold1")
    assert train.data.params["task"] == "regression"
