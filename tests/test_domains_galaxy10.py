"""The real survey pair of the domain-shift experiments: Galaxy10 SDSS -> Galaxy10 DECaLS, run when
both archives are here (format-faithful files built at test time) and skipped cleanly otherwise."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from deepsky.data.realdata import GALAXY10_DECALS_LECTURE_CLASSES, read_galaxy10
from tests.conftest import snakemake, tiny_config
from tests.test_realdata import _write_galaxy10

EXPERIMENT = "domain_shift_galaxy10"


def test_decals_crop_covers_the_field_of_an_sdss_cutout(tmp_path):
    """A 13.6" square (52 DECaLS pixels of 0.262") must come out 34-35 pixels wide, as it would
    on a 69-pixel SDSS cutout of 0.396" pixels, after the configured crop (104) and resize (69)."""
    images = np.zeros((1, 256, 256, 3), dtype=np.uint8)
    images[0, 102:154, 102:154] = 255
    with h5py.File(tmp_path / "Galaxy10_DECals.h5", "w") as f:
        f["images"] = images
        f["ans"] = np.array([2], dtype=np.uint8)
        f["pxscale"] = np.array([0.262])
    config = yaml.safe_load(open("config/config.yaml"))["datasets"]["galaxy10_decals"]
    out, _, _ = read_galaxy10(tmp_path / "Galaxy10_DECals.h5", config["class_map"], image_size=config["image_size"],
                              crop=config["crop"])
    assert out.shape == (1, 3, 69, 69)
    width = int((out[0, 0, 34] > 0.5).sum())
    assert abs(width - 52 * 0.262 / 0.396) <= 1.0
    uncropped, _, _ = read_galaxy10(tmp_path / "Galaxy10_DECals.h5", GALAXY10_DECALS_LECTURE_CLASSES, image_size=69)
    assert int((uncropped[0, 0, 34] > 0.5).sum()) < 16  # the whole 67" field: the square shrinks


def pair_config(tmp_path, with_files: bool) -> dict:
    config = tiny_config((EXPERIMENT,))
    exp = config["experiments"][EXPERIMENT]
    exp["variants"] = {k: exp_v for k, exp_v in exp["variants"].items() if k in ("no_adaptation", "oracle")}
    exp["transfer"].update(labels=[0, 10], methods=["frozen", "finetune"], steps=4)
    exp["training"].update(epochs=1)
    exp["folds"] = [0]
    config["tracking"]["register_models"] = False
    if with_files:
        _write_galaxy10(tmp_path / "Galaxy10.h5", n=160)
        _write_galaxy10(tmp_path / "Galaxy10_DECals.h5", n=160, size=256, pxscale=True, seed=1)
        config["datasets"]["galaxy10_sdss"]["path"] = str(tmp_path / "Galaxy10.h5")
        config["datasets"]["galaxy10_decals"]["path"] = str(tmp_path / "Galaxy10_DECals.h5")
    return config


def test_real_pair_is_skipped_while_an_archive_is_missing(tmp_path):
    config = pair_config(tmp_path, with_files=False)
    _write_galaxy10(tmp_path / "Galaxy10.h5", n=40)
    config["datasets"]["galaxy10_sdss"]["path"] = str(tmp_path / "Galaxy10.h5")  # SDSS here, DECaLS not
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", tmp_path / "c.yaml", "--cores", "1", "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"skipping experiment '{EXPERIMENT}'" in result.stderr
    assert "galaxy10_decals/Galaxy10_DECals.h5" in result.stderr and "datasets.galaxy10_decals.path" in result.stderr
    assert f"results/{EXPERIMENT}" not in result.stdout


@pytest.mark.slow
def test_real_pair_runs_when_both_archives_are_here(tmp_path):
    config = pair_config(tmp_path, with_files=True)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", tmp_path / "c.yaml", "--cores", "2",
                       env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"})
    assert result.returncode == 0, result.stderr[-4000:]
    table = pd.read_parquet(tmp_path / f"results/{EXPERIMENT}/no_adaptation/predictions.parquet")
    assert sorted(table["domain"].unique()) == ["galaxy10_decals", "galaxy10_sdss"]
    gap = pd.read_csv(tmp_path / f"results/{EXPERIMENT}/domain_gap.csv")
    assert {"no_adaptation", "oracle"} <= set(gap["member"])
    assert (tmp_path / f"results/{EXPERIMENT}/figures/002-domain-gap-table.png").exists()
