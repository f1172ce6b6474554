"""Mask R-CNN experiment (lecture 002): fields with instance truth, training through the one loop,
AP from the prediction table against torchmetrics, `deepsky predict` on FITS fields."""

import numpy as np
import pandas as pd
import pytest
import torch

from deepsky.data.detection_fields import (
    instance_map,
    render_field,
    settings,
    simulate_field,
    write_fields_dataset,
)
from deepsky.tasks import make_task

SMALL = {"image_size": 32, "bands": ["r", "i"], "min_objects": 3, "max_objects": 6}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 tiny fields on disk with a split: 4 train, 2 val, 2 test."""
    from deepsky.data.split import make_split

    out = tmp_path_factory.mktemp("fields")
    write_fields_dataset(out, "fields", {"n_per_class": 8, "simulation": SMALL}, seed=3)
    split = make_split(pd.read_parquet(out / "catalog.parquet"), 0.25, 3, seed=0)
    split.to_parquet(out / "split.parquet")
    return out


def test_field_is_objects_plus_noise_and_masks_are_disjoint_and_boxed():
    cfg = settings(SMALL)
    field, stamps, noise, _, sigmas = render_field(cfg, np.random.default_rng(1))
    np.testing.assert_allclose(field, stamps.sum(axis=0) + noise, atol=1e-4)
    assert abs(noise[0].std() / sigmas[0] - 1) < 0.15
    image, ids, truth = simulate_field(cfg, seed=5, index=2)
    assert ids.dtype == np.int16 and set(np.unique(ids)) <= set(range(len(truth) + 1))
    assert len(truth) > 0 and (truth["field"] == 2).all()
    for row in truth.itertuples(index=False):
        rows, cols = np.nonzero(ids == row.object)  # one id per pixel: masks are disjoint by construction
        assert len(rows) == row.area >= cfg["min_area"]
        assert (row.x0, row.y0, row.x1, row.y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    again, ids_again, _ = simulate_field(cfg, seed=5, index=2)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(ids, ids_again)


def test_overlaps_go_to_the_brighter_object_and_faint_ones_are_dropped():
    stamps = np.zeros((3, 1, 8, 8), np.float32)
    stamps[0, 0, 2:6, 2:6] = 5.0
    stamps[1, 0, 4:8, 4:8] = 3.0  # overlaps object 0 on 4:6, 4:6 where object 0 is brighter
    stamps[2, 0, 0, 0] = 10.0  # one pixel: below min_area
    ids, kept = instance_map(stamps, np.array([1.0]), mask_sigma=1.0, min_area=2)
    assert list(kept) == [0, 1]
    assert (ids[4:6, 4:6] == 1).all() and (ids[6:8, 6:8] == 2).all() and ids[0, 0] == 0


def hand_made_table(task):
    """Two 16x16 fields: truths and detections with known overlaps, through the task's table."""
    def box_mask(x0, y0, x1, y1):
        m = np.zeros((16, 16), bool)
        m[y0:y1, x0:x1] = True
        return m

    truth_boxes = [[(1, 1, 5, 5), (8, 8, 14, 14)], [(2, 2, 6, 7)]]
    truth_classes = [[1, 2], [2]]
    maps = np.zeros((2, 16, 16), np.int16)
    rows = []
    for f, (boxes, classes) in enumerate(zip(truth_boxes, truth_classes)):
        for k, (b, c) in enumerate(zip(boxes, classes)):
            maps[f][box_mask(*b)] = k + 1
            rows.append({"field": f, "object": k + 1, "class": c, "x0": b[0], "y0": b[1], "x1": b[2], "y1": b[3],
                         "x": (b[0] + b[2]) / 2, "y": (b[1] + b[3]) / 2, "neighbour_distance": 5.0})
    objects = pd.DataFrame(rows)
    detections = [
        {"boxes": np.array([[1, 1, 5, 6], [9, 8, 14, 14], [0, 10, 3, 13]], np.float32), "labels": np.array([1, 2, 1]),
         "scores": np.array([0.9, 0.8, 0.6], np.float32)},
        {"boxes": np.array([[2, 2, 6, 6], [2, 3, 6, 7]], np.float32), "labels": np.array([1, 2]),
         "scores": np.array([0.7, 0.3], np.float32)},
    ]
    for d in detections:
        d["masks"] = np.stack([box_mask(*b.astype(int)) for b in d["boxes"]])
    table = task.prediction_table(np.array([0, 1]), {"objects": objects, "masks": maps}, {"detections": detections}, 0, "x")
    return table, detections, objects, maps


def test_ap_from_the_table_matches_torchmetrics():
    from torchmetrics.detection import MeanAveragePrecision

    task = make_task({"name": "detection", "score_threshold": 0.5})
    table, detections, objects, maps = hand_made_table(task)
    assert set(table["kind"]) == {"truth", "detection"} and len(table) == 3 + 5
    metrics = task.metrics(table)

    direct = MeanAveragePrecision(iou_type=("bbox", "segm"), class_metrics=True, backend="pycocotools")
    preds = [{k: torch.as_tensor(v) for k, v in d.items()} for d in detections]
    targets = []
    for f in (0, 1):
        rows = objects[objects["field"] == f]
        targets.append({"boxes": torch.tensor(rows[["x0", "y0", "x1", "y1"]].to_numpy(np.float32)),
                        "labels": torch.tensor(rows["class"].to_numpy()),
                        "masks": torch.from_numpy(maps[f][None] == rows["object"].to_numpy()[:, None, None])})
    direct.update(preds, targets)
    expected = direct.compute()
    for iou in ("bbox", "segm"):
        assert metrics[f"{iou}_map"] == pytest.approx(float(expected[f"{iou}_map"]))
        assert metrics[f"{iou}_map_50"] == pytest.approx(float(expected[f"{iou}_map_50"]))
        assert metrics[f"{iou}_map_star"] == pytest.approx(float(expected[f"{iou}_map_per_class"][0]))
        # AP50 of one class = AP50 of a run on that class alone.
        for c, name in ((1, "star"), (2, "galaxy")):
            alone = MeanAveragePrecision(iou_type=iou, backend="pycocotools")
            alone.update([{k: v[p["labels"] == c] for k, v in p.items()} for p in preds],
                         [{k: v[t["labels"] == c] for k, v in t.items()} for t in targets])
            assert metrics[f"{iou}_map_50_{name}"] == pytest.approx(float(alone.compute()["map_50"]))
    # Class-agnostic matching at IoU 0.5 among score >= 0.5: 3 of 3 truths, 3 of 4 counted detections.
    assert metrics["completeness"] == pytest.approx(1.0)
    assert metrics["purity"] == pytest.approx(0.75)
    assert metrics["class_accuracy"] == pytest.approx(2 / 3)
    truth = table[table["kind"] == "truth"].set_index(["index", "object"])
    assert truth.loc[(1, 1), "matched"] == 1 and truth.loc[(0, 2), "iou"] == pytest.approx(30 / 36)


def test_mask_rcnn_trains_through_the_loop_and_predicts(dataset, tmp_path):
    from deepsky.models import create_model
    from deepsky.train import fit

    task = make_task({"name": "detection"})
    data = task.load_fold(dataset, dataset / "split.parquet", 0)
    dims = task.input_dims(data["train"])
    assert dims == {"in_channels": 2, "image_size": 32}
    torch.manual_seed(0)
    model = create_model("mask_rcnn_resnet18", dims["in_channels"], task.head_size, image_size=dims["image_size"])
    settings = {"epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "mixed_precision": False}
    history, best = fit(model, data["train"], data["val"], settings, torch.device("cpu"), 0, tmp_path / "last.pt", task)
    record = history[0]
    assert np.isfinite(record["train_loss"]) and np.isfinite(record["val_loss"]) and best is not None
    assert {"train_loss_mask", "val_loss_objectness"} <= set(record)
    # val_loss is deterministic (private seed for the proposal sampling).
    assert task.validate(model, data["val"], torch.device("cpu"), 4)["val_loss"] == pytest.approx(record["val_loss"])

    index, x, raw = task.load_test(dataset, dataset / "split.parquet")
    table = task.prediction_table(index, raw, task.predict(model, x, torch.device("cpu")), 0, "mask_rcnn_resnet18")
    assert (table[table["kind"] == "truth"].groupby("index").size().sum()) == len(raw["objects"])
    assert set(task.metrics(table)) >= {"bbox_map", "segm_map_50", "completeness", "purity"}
    assert model(x).shape == (len(x), 2)  # the registry's tensor contract: expected counts per class


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from deepsky.models import create_model

    torch.manual_seed(0)
    model = create_model("mask_rcnn_resnet18", 2, 2, image_size=32)
    # Untrained: its class scores (~1/3 each) pass the 0.05 score threshold, so detections exist.
    meta = {"architecture": "mask_rcnn_resnet18", "model_kwargs": {}, "in_channels": 2, "image_size": 32,
            "num_outputs": 2, "class_names": ["field"], "task": {"name": "detection"}, "bands": ["r", "i"],
            "normalization": "asinh"}
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save({"state_dict": model.state_dict(), "meta": meta}, path)
    return path


def test_predict_cli_writes_one_row_per_detection(model_file, dataset, tmp_path, capsys):
    from deepsky.cli import main
    from deepsky.data.fits_io import write_cutout
    from deepsky.predict import run_own_outputs

    images = np.load(dataset / "images.npy")
    for k in range(2):
        write_cutout(tmp_path / f"field_{k}.fits", images[k], ["r", "i"])
    write_cutout(tmp_path / "wrong.fits", images[0][:1], ["r"])
    out = tmp_path / "detections.csv"
    code = main(["predict", "--model", str(model_file), str(tmp_path / "field_0.fits"), str(tmp_path / "field_1.fits"),
                 str(tmp_path / "wrong.fits"), "-o", str(out), "--device", "cpu"])
    assert code == 1  # one file could not be used
    err = capsys.readouterr().err
    assert "wrong.fits" in err and "(1, 32, 32)" in err and "(2, 32, 32)" in err
    table = pd.read_csv(out)
    assert list(table.columns) == ["file", "class", "score", "x0", "y0", "x1", "y1", "x", "y", "mask_area"]
    _, written, _ = run_own_outputs(model_file, [tmp_path / "field_0.fits", tmp_path / "field_1.fits"], tmp_path / "again.csv", 4, "cpu")
    assert written == len(table) > 0
    assert set(table["class"]) <= {"star", "galaxy"} and table["file"].str.endswith(".fits").all()
    assert ((table["x0"] <= table["x"] + 1) & (table["x"] <= table["x1"] + 1)).all()
