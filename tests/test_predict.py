import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.cli import main
from deepsky.data.fits_io import write_cutout
from deepsky.models import create_model
from deepsky.predict import score_files


@pytest.fixture
def model_path(tmp_path):
    torch.manual_seed(0)
    model = create_model("simple_cnn", 3, 1, image_size=32)
    meta = {"architecture": "simple_cnn", "model_kwargs": {}, "in_channels": 3, "image_size": 32, "num_outputs": 1,
            "class_names": ["non-lens", "lens"], "bands": ["g", "r", "i"], "normalization": "asinh"}
    path = tmp_path / "model.pt"
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    return path


@pytest.fixture
def cutouts(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for k in range(3):
        write_cutout(folder / f"good_{k}.fits", rng.normal(size=(3, 32, 32)), ["g", "r", "i"])
    write_cutout(tmp_path / "two_bands.fits", rng.normal(size=(2, 32, 32)), ["g", "r"])
    write_cutout(tmp_path / "too_small.fits", rng.normal(size=(3, 20, 20)), ["g", "r", "i"])
    nan = rng.normal(size=(3, 32, 32))
    nan[1, 5, 5] = np.nan
    write_cutout(tmp_path / "with_nan.fits", nan, ["g", "r", "i"])
    (tmp_path / "not_fits.fits").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    return tmp_path


def test_good_files_are_scored_and_bad_ones_named(model_path, cutouts):
    inputs = [cutouts / "cutouts", cutouts / "two_bands.fits", cutouts / "too_small.fits",
              cutouts / "with_nan.fits", cutouts / "not_fits.fits", cutouts / "missing.fits"]
    rows, errors, _ = score_files(model_path, inputs, device="cpu")
    assert sorted(p.split("/")[-1] for p, _ in rows) == ["good_0.fits", "good_1.fits", "good_2.fits"]
    assert all(0 <= s <= 1 for _, s in rows)
    messages = dict(errors)
    assert "(2, 32, 32)" in messages[str(cutouts / "two_bands.fits")]
    assert "(3, 20, 20)" in messages[str(cutouts / "too_small.fits")]
    assert "1 NaN" in messages[str(cutouts / "with_nan.fits")]
    assert "not a readable FITS" in messages[str(cutouts / "not_fits.fits")]
    assert "no such file" in messages[str(cutouts / "missing.fits")]


def test_scores_match_the_model_on_the_same_pixels(model_path, cutouts):
    from deepsky.data.fits_io import read_cutout
    from deepsky.data.tensors import asinh_stretch
    from deepsky.models_io import load_model

    rows, _, _ = score_files(model_path, [cutouts / "cutouts/good_1.fits"], device="cpu")
    model, _ = load_model(model_path)
    x = torch.from_numpy(asinh_stretch(read_cutout(cutouts / "cutouts/good_1.fits", 3, 32)[None]))
    with torch.no_grad():
        expected = torch.sigmoid(model(x)).item()
    assert rows[0][1] == pytest.approx(expected, rel=1e-5)


def test_cli_writes_csv_and_exit_code(model_path, cutouts, capsys):
    out = cutouts / "scores.csv"
    assert main(["predict", "--model", str(model_path), str(cutouts / "cutouts"), "-o", str(out), "--device", "cpu"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "score_lens"] and len(table) == 3
    assert main(["predict", "--model", str(model_path), str(cutouts / "with_nan.fits"), "--device", "cpu"]) == 2
    assert "with_nan.fits" in capsys.readouterr().err


def test_not_a_model_file(tmp_path, cutouts):
    torch.save({"weights": 1}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a deepsky model file"):
        score_files(tmp_path / "x.pt", [cutouts / "cutouts"], device="cpu")
