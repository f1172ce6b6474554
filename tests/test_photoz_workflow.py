"""The photo-z experiment in the workflow: config checks, the planned jobs, and (slow) a tiny full run."""

import copy
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from deepsky.config import ConfigError, validate_config
from tests.conftest import ROOT

PHOTOZ_EXPERIMENTS = ["photoz_mlp_point", "photoz_mlp_mdn", "photoz_cnn_point", "photoz_cnn_mdn"]


@pytest.fixture
def default():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


def test_photoz_options_need_the_photoz_task(default):
    config = copy.deepcopy(default)
    config["experiments"]["galaxy_morphology"]["photoz"] = {"inputs": "images"}
    with pytest.raises(ConfigError, match="experiments.galaxy_morphology"):
        validate_config(config)
    config = copy.deepcopy(default)
    config["experiments"]["photoz_cnn_mdn"]["training"]["augment"] = True
    with pytest.raises(ConfigError, match="photoz_cnn_mdn.training.augment"):
        validate_config(config)
    config = copy.deepcopy(default)
    config["experiments"]["photoz_mlp_mdn"]["photoz"]["head"] = "softmax"
    with pytest.raises(ConfigError, match="head"):
        validate_config(config)


def test_comparison_needs_a_photoz_dataset(default):
    config = copy.deepcopy(default)
    config["photoz_comparison"]["dataset"] = "lenses"
    with pytest.raises(ConfigError, match="photoz_comparison.dataset"):
        validate_config(config)
    config = copy.deepcopy(default)
    config["datasets"]["photoz_sdss"]["simulation"]["depth"] = 22
    with pytest.raises(ConfigError, match="depth"):
        validate_config(config)


def targets(config) -> list[str]:
    out = ["results/photoz/comparison.csv", "results/photoz/figures/002-photoz-pit.png"]
    return out + [f"results/{e}/summary.csv" for e in config["experiments"] if e in PHOTOZ_EXPERIMENTS]


def snakemake(workdir, config_path, *extra, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(config_path), "--cores", "2", *extra],
        capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.slow  # the catalogue test's dry run covers the DAG; this one counts the photo-z jobs
def test_dry_run_plans_networks_and_classical_methods(tmp_path, default):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(default))
    result = snakemake(tmp_path, path, "-n", "--", *targets(default))
    assert result.returncode == 0, result.stderr[-3000:]
    for rule, count in (("photoz_simulate", 1), ("photoz_classical", 2), ("train", 12), ("evaluate", 4), ("photoz_table", 1)):
        assert f"rule {rule}:" in result.stdout
        line = next(l for l in result.stdout.splitlines() if l.split()[:1] == [rule])
        assert int(line.split()[1]) == count, line


@pytest.mark.slow
def test_tiny_photoz_run_end_to_end(tmp_path, default):
    config = copy.deepcopy(default)
    config["experiments"] = {e: config["experiments"][e] for e in PHOTOZ_EXPERIMENTS}
    config["datasets"] = {"photoz_sdss": config["datasets"]["photoz_sdss"]}
    config["datasets"]["photoz_sdss"]["simulation"].update(n_objects=600, n_images=90, image_size=16)
    config["datasets"]["photoz_sdss"]["split"] = {"test_fraction": 0.25, "k_folds": 2}
    for experiment in config["experiments"].values():
        experiment["training"].update(epochs=2)
    for key in ("inside", "gradients"):
        config.pop(key, None)
    config["concept_figures"] = False
    config["tracking"] = {"uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "artifacts")}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, path, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    table = pd.read_csv(tmp_path / "results/photoz/comparison.csv")
    assert {"MLP MDN", "CNN MDN", "kNN", "random forest"} <= set(table["method"])
    assert (tmp_path / "results/photoz/figures/002-photoz-scatter.png").exists()
