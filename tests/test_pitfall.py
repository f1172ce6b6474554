"""Solving the wrong problem: an artefact on the training lenses only is learnt instead of the
arcs, and accuracy collapses when the artefact moves to the non-lenses."""

import numpy as np
import torch

from deepsky.data import storage
from deepsky.data.artefacts import add_artefact
from deepsky.stages.pitfall import accuracy_table
from deepsky.stages.pitfall import test_conditions as make_conditions
from deepsky.stages.train import train_fold
from tests.conftest import ring_dataset, training_config


def test_accuracy_collapses_when_the_artefact_moves(tmp_path):
    data = ring_dataset(tmp_path / "data", n=160, size=32)
    images = np.array(storage.load_images(data / storage.IMAGES))
    labels = np.arange(len(images)) % 2
    # Hide the real signal (the ring) from the spurious model's training set: keep only the artefact.
    images[:] = images.mean(axis=0, keepdims=True) + np.random.default_rng(1).normal(0, 1, images.shape)
    marked = add_artefact(images, labels == 1, np.random.default_rng(2), kind="hot_pixel_column", strength=10.0)
    storage.save_images(data / storage.IMAGES, marked)
    torch.set_num_threads(1)
    config = training_config(tmp_path, epochs=8, learning_rate=2e-3)
    train_fold(config, "tiny", "winning_cnn", 0, data, data / "split.parquet", None,
               tmp_path / "m/fold0/model.pt", tmp_path / "m/fold0/history.csv")

    test = images[:40]
    conditions = make_conditions(test, labels[:40], ["non-lens", "lens"],
                                 {"kind": "hot_pixel_column", "on_class": "lens", "strength": 10.0}, seed=5)
    table = accuracy_table({"spurious": [tmp_path / "m/fold0/model.pt"]}, conditions, labels[:40])
    accuracy = table.set_index("test_condition")["accuracy"]
    assert accuracy["artefact on lens images (as in training)"] >= 0.9
    assert accuracy["artefact on non-lens images"] <= 0.1
    assert 0.3 <= accuracy["no artefact"] <= 0.7
