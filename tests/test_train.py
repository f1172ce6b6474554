import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.data import storage
from deepsky.stages.train import train_fold
from tests.conftest import ROOT, kill_at_first_checkpoint, training_config

SCRIPT = textwrap.dedent(
    """
    import json, sys, torch
    from deepsky.stages.train import train_fold
    torch.set_num_threads(1)
    config, data, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    train_fold(config, "tiny", "winning_cnn", 0, data, data + "/split.parquet", None, out + "/model.pt", out + "/history.csv")
    """
)


def run_training(config, data, out):
    import json

    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, json.dumps(config), str(data), str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_resume_after_a_crash_gives_the_uninterrupted_result(rings, tmp_path):
    config = training_config(tmp_path, epochs=6)
    reference = tmp_path / "reference"
    assert run_training(config, rings, reference).wait(timeout=300) == 0

    crashed = tmp_path / "crashed"
    checkpoint = kill_at_first_checkpoint(run_training(config, rings, crashed), crashed)
    epoch_at_crash = torch.load(checkpoint, weights_only=True)["epoch"]
    assert epoch_at_crash < 5

    resumed = run_training(config, rings, crashed)
    log = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, log
    assert f"resuming from {checkpoint} after epoch {epoch_at_crash}" in log
    a = pd.read_csv(reference / "history.csv")
    b = pd.read_csv(crashed / "history.csv")
    columns = ["epoch", "train_loss", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    ref_state = torch.load(reference / "model.pt", weights_only=True)["state_dict"]
    new_state = torch.load(crashed / "model.pt", weights_only=True)["state_dict"]
    for key in ref_state:
        assert torch.equal(ref_state[key], new_state[key]), key

    from mlflow.tracking import MlflowClient

    client = MlflowClient(config["tracking"]["uri"])
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert len(runs) == 2, "the resumed job must continue its run, not open a third"
    for run in runs:
        assert run.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")]
        assert sorted(steps) == [1, 2, 3, 4, 5, 6]


def test_training_learns_and_is_tracked(rings, tmp_path):
    config = training_config(tmp_path, epochs=4)
    torch.set_num_threads(1)
    meta = train_fold(config, "tiny", "winning_cnn", 1, rings, rings / "split.parquet", None,
                      tmp_path / "m/model.pt", tmp_path / "m/history.csv")
    history = pd.read_csv(tmp_path / "m/history.csv")
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert meta["num_outputs"] == 1 and meta["class_names"] == ["non-lens", "lens"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(config["tracking"]["uri"])
    run = client.get_run(meta["train_run_id"])
    assert run.data.tags["architecture"] == "winning_cnn" and run.data.tags["fold"] == "1"
    for tag in ("git_commit", "config_hash", "data_sha256", "experiment"):
        assert run.data.tags[tag]
    assert run.data.params["architecture"] == "winning_cnn"
    assert "config.experiment.training.epochs" in run.data.params
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "history.csv" in artifacts
    assert not (tmp_path / "m/checkpoints/last.pt").exists(), "the resume checkpoint outlives the job"


def test_nan_loss_names_the_epoch(rings, tmp_path):
    images = np.array(storage.load_images(rings / storage.IMAGES))
    images[:, :, 0, 0] = np.nan
    storage.save_images(rings / storage.IMAGES, images)
    config = training_config(tmp_path)
    with pytest.raises(FloatingPointError, match="epoch 1"):
        train_fold(config, "tiny", "winning_cnn", 0, rings, rings / "split.parquet", None,
                   tmp_path / "n/model.pt", tmp_path / "n/history.csv")


def test_a_checkpoint_of_another_config_is_not_resumed(rings, tmp_path, capsys):
    config = training_config(tmp_path, epochs=2)
    stale = tmp_path / "s/checkpoints/last.pt"
    stale.parent.mkdir(parents=True)
    torch.save({"epoch": 5, "history": [], "config_hash": "another-config", "run_id": None}, stale)
    torch.set_num_threads(1)
    train_fold(config, "tiny", "winning_cnn", 0, rings, rings / "split.parquet", None,
               tmp_path / "s/model.pt", tmp_path / "s/history.csv")
    assert "discarding" in capsys.readouterr().out
    assert len(pd.read_csv(tmp_path / "s/history.csv")) == 2


def test_a_training_job_imports_only_what_it_uses(tmp_path):
    # Each job is a fresh process: a stray import (torchvision through the registry, scikit-learn
    # through metrics, matplotlib through figures) costs a second or more per job. (torch.optim's
    # step imports Dynamo, 1.1 s, whatever we do.)
    code = textwrap.dedent(
        """
        import sys, torch
        from pathlib import Path
        from deepsky.models import create_model
        from deepsky.stages.train import train_fold
        from deepsky.tasks import make_task
        from deepsky.train import fit
        model = create_model("winning_cnn", 3, 1, image_size=32)
        x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 2, (16,))
        settings = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": 2}
        task = make_task({"name": "binary", "class_names": ["non-lens", "lens"]})
        fit(model, (x, y), (x, y), settings, torch.device("cpu"), 0, Path(sys.argv[1]) / "last.pt", task)
        modules = ("torchvision", "sklearn", "matplotlib", "mlflow")
        print(sorted(m for m in modules if m in sys.modules))
        """
    )
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_channels_last_is_used_unless_the_model_opts_out(tmp_path):
    from deepsky.models import create_model
    from deepsky.tasks import make_task
    from deepsky.train import fit

    torch.manual_seed(0)
    x, y = torch.randn(16, 3, 32, 32), torch.randint(0, 2, (16,))
    settings = {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": 2}
    task = make_task({"name": "binary", "class_names": ["non-lens", "lens"]})
    layouts = {}
    for name, kwargs in (("winning_cnn", {}), ("deeplens_resnet", {"base_width": 4, "n_stages": 2})):
        model = create_model(name, 3, 1, image_size=32, **kwargs)
        fit(model, (x, y), (x, y), settings, torch.device("cpu"), 0, tmp_path / name / "last.pt", task)
        conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[1] > 1)
        layouts[name] = conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    # DeepLens's backward segfaults in oneDNN with channels-last CPU tensors: it stays NCHW.
    assert layouts == {"winning_cnn": True, "deeplens_resnet": False}
