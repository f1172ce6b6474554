"""Detection + instance segmentation + star/galaxy classification of fields (Mask R-CNN;
lecture 002, He+2017, Burke+2019).

Data: a simulate_fields dataset (deepsky.data.detection_fields): images.npy (asinh-stretched
here), the per-field instance maps masks.npy and objects.parquet. A batch is a list of field
tensors and a list of torchvision target dicts (boxes x0,y0,x1,y1; labels 1 star, 2 galaxy;
masks). The step sums Mask R-CNN's five losses.

val_loss: the same sum of losses on the validation fields, computed under no_grad with the
network in training mode (torchvision returns losses only there). The model has GroupNorm, not
batch norm, so training mode changes nothing but the proposal sampling, which runs on a fixed
private seed: val_loss is deterministic and the global generators are untouched (exact resume).
For the same reason there is no batch-norm recalibration.

Prediction table (one row per detection and per true object): index (field), fold,
architecture, kind ("truth" | "detection"), object (id within the field and kind), class
(1 star, 2 galaxy), class_name, score (NaN for truths), x0, y0, x1, y1, x, y (mask centroid),
area, height, width, mask_rle (pycocotools RLE counts of the mask), matched (the object id of
the other kind it is matched to at mask IoU >= 0.5, class-agnostic, greedy by score among
detections with score >= score_threshold; -1 if none), iou (of that match, NaN if none),
neighbour_distance (truth: pixels to the nearest other true object; detection: that of the true
object nearest to its centroid), counted (score >= score_threshold and not suppressed
by the class-agnostic NMS: the detections that completeness and purity count; AP uses them all).

Metrics: COCO AP (IoU 0.5:0.95) and AP50, all and per class, for boxes and masks with
torchmetrics' MeanAveragePrecision (pycocotools backend); completeness (matched truths /
truths), purity (matched detections / detections) and the class accuracy of the matches.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepsky.tasks.base import Amp, Task, register_task

CLASS_NAMES = ("star", "galaxy")
DISTANCE_BINS = (0.0, 3.0, 5.0, 8.0, 12.0, np.inf)


def rle_encode(mask: np.ndarray) -> str:
    from pycocotools import mask as mask_utils

    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def rle_decode(counts: str, height: int, width: int) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": [int(height), int(width)], "counts": counts.encode("ascii")}).astype(bool)


def field_targets(objects: pd.DataFrame, ids: np.ndarray) -> dict:
    """torchvision target dict of one field from its truth rows and its instance map."""
    numbers = objects["object"].to_numpy()
    masks = ids[None, :, :] == numbers[:, None, None]
    return {
        "boxes": torch.tensor(objects[["x0", "y0", "x1", "y1"]].to_numpy(np.float32)).reshape(-1, 4),
        "labels": torch.tensor(objects["class"].to_numpy(np.int64)),
        "masks": torch.from_numpy(masks.astype(np.uint8)),
    }


def read_fields(dataset_dir, index: np.ndarray):
    """(raw images, instance maps, objects of these fields) of a simulate_fields dataset."""
    from deepsky.data import storage
    from deepsky.data.detection_fields import MASKS, OBJECTS

    dataset_dir = Path(dataset_dir)
    for name in (storage.IMAGES, MASKS, OBJECTS):
        if not (dataset_dir / name).exists():
            raise FileNotFoundError(f"{dataset_dir / name} is missing: the detection task needs a simulate_fields dataset")
    images = np.asarray(storage.load_images(dataset_dir / storage.IMAGES)[index])
    maps = np.load(dataset_dir / MASKS, mmap_mode="r")[index]
    objects = pd.read_parquet(dataset_dir / OBJECTS)
    return images, np.asarray(maps), objects[objects["field"].isin(index)].reset_index(drop=True)


def match(truth_masks: np.ndarray, det_masks: np.ndarray, scores: np.ndarray, threshold: float = 0.5):
    """Greedy one-to-one matching by score at mask IoU >= threshold.

    Returns (truth -> detection position or -1, detection -> truth position or -1, IoU matrix)."""
    from pycocotools import mask as mask_utils

    n_t, n_d = len(truth_masks), len(det_masks)
    t_of_d, d_of_t = np.full(n_d, -1), np.full(n_t, -1)
    if n_t == 0 or n_d == 0:
        return d_of_t, t_of_d, np.zeros((n_t, n_d))
    encode = lambda m: mask_utils.encode(np.asfortranarray(m.transpose(1, 2, 0).astype(np.uint8)))
    iou = np.asarray(mask_utils.iou(encode(det_masks), encode(truth_masks), [0] * n_t)).reshape(n_d, n_t).T
    for d in np.argsort(-scores, kind="stable"):
        candidates = np.where(d_of_t < 0, iou[:, d], -1.0)
        t = int(candidates.argmax())
        if candidates[t] >= threshold:
            d_of_t[t], t_of_d[d] = d, t
    return d_of_t, t_of_d, iou


def coco_inputs(table: pd.DataFrame):
    """(preds, targets) lists of dicts for torchmetrics, one per field, from the table alone."""
    preds, targets = [], []
    for _, rows in table.groupby("index", sort=True):
        entry = {}
        for kind, out in (("detection", preds), ("truth", targets)):
            part = rows[rows["kind"] == kind]
            h, w = (int(rows["height"].iloc[0]), int(rows["width"].iloc[0]))
            masks = np.stack([rle_decode(c, h, w) for c in part["mask_rle"]]) if len(part) else np.zeros((0, h, w), bool)
            entry = {
                "boxes": torch.tensor(part[["x0", "y0", "x1", "y1"]].to_numpy(np.float32)).reshape(-1, 4),
                "labels": torch.tensor(part["class"].to_numpy(np.int64)),
                "masks": torch.from_numpy(masks),
            }
            if kind == "detection":
                entry["scores"] = torch.tensor(part["score"].to_numpy(np.float32))
            out.append(entry)
    return preds, targets


def mean_average_precision(table: pd.DataFrame, extended: bool = False):
    """torchmetrics MeanAveragePrecision (bbox and segm, per class) of a prediction table."""
    from torchmetrics.detection import MeanAveragePrecision

    metric = MeanAveragePrecision(iou_type=("bbox", "segm"), class_metrics=True, extended_summary=extended,
                                  backend="pycocotools")
    preds, targets = coco_inputs(table)
    metric.update(preds, targets)
    return metric.compute()


def ap50_per_class(precision: torch.Tensor) -> np.ndarray:
    """COCOeval's AP at IoU 0.5 per class from its precision array (T, R, K, A, M): the mean over
    recall of the interpolated precision, all areas, most detections (what COCOeval.summarize does)."""
    p = precision[0, :, :, 0, -1].numpy()
    return np.array([p[:, k][p[:, k] > -1].mean() if (p[:, k] > -1).any() else np.nan for k in range(p.shape[1])])


def completeness_purity(table: pd.DataFrame) -> dict:
    truth, det = table[table["kind"] == "truth"], table[(table["kind"] == "detection") & table["counted"]]
    matched = truth[truth["matched"] >= 0]
    det_class = det.set_index(["index", "object"])["class"]
    agree = [det_class.get((i, m)) == c for i, m, c in zip(matched["index"], matched["matched"], matched["class"])]
    return {
        "completeness": float((truth["matched"] >= 0).mean()) if len(truth) else float("nan"),
        "purity": float((det["matched"] >= 0).mean()) if len(det) else float("nan"),
        "class_accuracy": float(np.mean(agree)) if agree else float("nan"),
    }


def by_separation(table: pd.DataFrame, bins=DISTANCE_BINS) -> pd.DataFrame:
    """Completeness and purity in bins of the true nearest-neighbour distance (pixels)."""
    rows = []
    for lo, hi in itertools.pairwise(bins):
        part = table[(table["neighbour_distance"] >= lo) & (table["neighbour_distance"] < hi)]
        truth = part[part["kind"] == "truth"]
        det = part[(part["kind"] == "detection") & part["counted"]]
        rows.append({"lo": lo, "hi": hi, "n_truth": len(truth), "n_detections": len(det),
                     "completeness": (truth["matched"] >= 0).mean() if len(truth) else np.nan,
                     "purity": (det["matched"] >= 0).mean() if len(det) else np.nan})
    return pd.DataFrame(rows)


@register_task("detection")
class DetectionTask(Task):
    summary_metrics = ("bbox_map", "bbox_map_50", "segm_map", "segm_map_50", "completeness", "purity")
    selection_metric = ("segm_map_50", "max")
    registers_pyfunc = False
    writes_own_outputs = True

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.class_names = list(CLASS_NAMES)
        self.score_threshold = float(spec.get("score_threshold", 0.5))
        self.agnostic_nms = float(spec.get("agnostic_nms", 0.5))
        self.spec["class_names"] = self.class_names

    @property
    def head_size(self) -> int:
        return len(self.class_names)  # object classes; the background is not counted

    # ---- data
    def _load(self, dataset_dir, index):
        from deepsky.data.tensors import asinh_stretch

        images, maps, objects = read_fields(dataset_dir, index)
        groups = dict(tuple(objects.groupby("field")))
        empty = objects.iloc[:0]
        targets = [field_targets(groups.get(i, empty), maps[k]) for k, i in enumerate(index)]
        return torch.from_numpy(asinh_stretch(images)), targets, maps, objects

    def load_fold(self, dataset_dir, split_path, fold: int, augmented_dir=None) -> dict:
        from deepsky.data.split import fold_indices

        parts = {k: np.sort(v) for k, v in fold_indices(pd.read_parquet(split_path), fold).items()}
        out = {}
        for name in ("train", "val"):
            x, targets, _, _ = self._load(dataset_dir, parts[name])
            out[name], out[name + "_index"] = (x, targets), parts[name]
        return out

    def load_test(self, dataset_dir, split_path):
        split = pd.read_parquet(split_path)
        index = np.sort(split.loc[split["split"] == "test", "index"].to_numpy())
        x, _, maps, objects = self._load(dataset_dir, index)
        return index, x, {"objects": objects, "masks": maps}

    def check_training(self, settings: dict) -> None:
        if settings.get("augment", False):
            raise ValueError("training.augment: the detection task has no augmentation of boxes and masks; set it to false")

    # ---- training
    def num_examples(self, data) -> int:
        return len(data[0])

    def pin(self, data):
        return data

    def batch(self, data, idx: torch.Tensor, device: torch.device):
        x, targets = data
        images = [x[i].to(device) for i in idx.tolist()]
        return images, [{k: v.to(device) for k, v in targets[i].items()} for i in idx.tolist()]

    def model_input(self, batch):
        return batch[0]

    def train_step(self, model: nn.Module, batch, optimizers: dict, amp: Amp) -> dict[str, float]:
        images, targets = batch
        with amp.autocast():
            losses = model(images, targets)
            loss = sum(losses.values())
        amp.step(loss, optimizers["model"])
        return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}

    @torch.no_grad()
    def recalibrate_batchnorm(self, model: nn.Module, data, device: torch.device, batch_size: int) -> bool:
        return False  # GroupNorm (deepsky.models.detection_nets): no running statistics

    @torch.no_grad()
    def validate(self, model: nn.Module, data, device: torch.device, batch_size: int) -> dict[str, float]:
        model.train()
        norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for m in norms:
            m.eval()
        sums, n = {}, self.num_examples(data)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            for start in range(0, n, batch_size):
                idx = torch.arange(start, min(start + batch_size, n))
                losses = model(*self.batch(data, idx, device))
                for key, value in {"loss": sum(losses.values()), **losses}.items():
                    sums[key] = sums.get(key, 0.0) + float(value) * len(idx)
        model.eval()
        return {f"val_{k}": v / max(n, 1) for k, v in sums.items()}

    # ---- predictions
    @torch.no_grad()
    def detections(self, model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 16) -> list[dict]:
        """Per field: boxes (n, 4), labels, scores, masks (n, H, W) bool (probability > 0.5) and
        unique (n,) bool, on the CPU.

        torchvision suppresses overlapping boxes per class, so one source can come out as both a
        star and a galaxy. COCO AP is computed on torchvision's output; for the catalogue
        (completeness, purity, `deepsky predict`) a class-agnostic suppression (box IoU >
        agnostic_nms, default 0.5) marks only the likelier class as `unique`."""
        from torchvision.ops import nms

        out = []
        for start in range(0, len(x), batch_size):
            for found in model.detect([im.to(device) for im in x[start : start + batch_size]]):
                unique = torch.ones(len(found["scores"]), dtype=torch.bool)
                if self.agnostic_nms < 1:
                    unique[:] = False
                    unique[nms(found["boxes"].float(), found["scores"].float(), self.agnostic_nms).cpu()] = True
                out.append({"boxes": found["boxes"].float().cpu().numpy(), "labels": found["labels"].cpu().numpy(),
                            "scores": found["scores"].float().cpu().numpy(),
                            "masks": (found["masks"][:, 0] > 0.5).cpu().numpy(), "unique": unique.numpy()})
        return out

    def predict(self, model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 16) -> dict:
        return {"detections": self.detections(model, x, device, min(batch_size, 16))}

    def prediction_table(self, index, raw_targets, predicted: dict, fold: int, architecture: str) -> pd.DataFrame:
        objects, maps = raw_targets["objects"], raw_targets["masks"]
        groups = dict(tuple(objects.groupby("field")))
        h, w = maps.shape[-2:]
        rows = []
        for k, field in enumerate(index):
            truth = groups.get(field, objects.iloc[:0])
            found = predicted["detections"][k]
            t_masks = maps[k][None] == truth["object"].to_numpy()[:, None, None]
            counted = (found["scores"] >= self.score_threshold) & found.get("unique", np.ones(len(found["scores"]), bool))
            d_of_t, t_of_d, iou = match(t_masks, found["masks"][counted], found["scores"][counted])
            det_ids = np.flatnonzero(counted)  # matching positions -> detection numbers
            for t, row in enumerate(truth.itertuples(index=False)):
                d = d_of_t[t]
                rows.append({"index": field, "kind": "truth", "object": int(row.object), "class": int(truth["class"].iloc[t]),
                             "score": np.nan, "x0": row.x0, "y0": row.y0, "x1": row.x1, "y1": row.y1,
                             "mask": t_masks[t], "matched": int(det_ids[d] + 1) if d >= 0 else -1,
                             "iou": float(iou[t, d]) if d >= 0 else np.nan, "neighbour_distance": float(row.neighbour_distance),
                             "counted": True})
            xy = truth[["x", "y"]].to_numpy()
            for j in range(len(found["scores"])):
                mask = found["masks"][j]
                ys, xs = np.nonzero(mask)
                cx, cy = (xs.mean() + 0.5, ys.mean() + 0.5) if len(xs) else ((found["boxes"][j, 0] + found["boxes"][j, 2]) / 2,
                                                                       (found["boxes"][j, 1] + found["boxes"][j, 3]) / 2)
                position = np.flatnonzero(det_ids == j)
                t = t_of_d[position[0]] if len(position) else -1
                nearest = int(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy).argmin()) if len(xy) else -1
                rows.append({"index": field, "kind": "detection", "object": j + 1, "class": int(found["labels"][j]),
                             "score": float(found["scores"][j]), "x0": found["boxes"][j, 0], "y0": found["boxes"][j, 1],
                             "x1": found["boxes"][j, 2], "y1": found["boxes"][j, 3], "mask": mask,
                             "matched": int(truth["object"].iloc[t]) if t >= 0 else -1,
                             "iou": float(iou[t, position[0]]) if t >= 0 else np.nan,
                             "neighbour_distance": float(truth["neighbour_distance"].iloc[nearest]) if nearest >= 0 else np.nan,
                             "counted": bool(counted[j])})
        table = pd.DataFrame(rows, columns=["index", "kind", "object", "class", "score", "x0", "y0", "x1", "y1", "mask",
                                            "matched", "iou", "neighbour_distance", "counted"])
        masks = table.pop("mask")
        table["class_name"] = [self.class_names[c - 1] for c in table["class"]]
        table["x"] = [(np.nonzero(m)[1].mean() + 0.5) if m.any() else np.nan for m in masks]
        table["y"] = [(np.nonzero(m)[0].mean() + 0.5) if m.any() else np.nan for m in masks]
        table["area"] = [int(m.sum()) for m in masks]
        table["height"], table["width"] = h, w
        table["mask_rle"] = [rle_encode(m) for m in masks]
        table.insert(1, "fold", fold)
        table.insert(2, "architecture", architecture)
        return table

    def metrics(self, table: pd.DataFrame) -> dict:
        result = mean_average_precision(table, extended=True)
        out = {}
        classes = result["classes"].reshape(-1).tolist()
        for iou in ("bbox", "segm"):
            out[f"{iou}_map"] = float(result[f"{iou}_map"])
            out[f"{iou}_map_50"] = float(result[f"{iou}_map_50"])
            per_class = result[f"{iou}_map_per_class"].reshape(-1).tolist()
            for c, value in zip(classes, per_class):
                out[f"{iou}_map_{self.class_names[int(c) - 1]}"] = float(value)
        for iou in ("bbox", "segm"):
            for c, value in zip(classes, ap50_per_class(result[f"{iou}_precision"])):
                out[f"{iou}_map_50_{self.class_names[int(c) - 1]}"] = float(value)
        out.update(completeness_purity(table))
        out["score_threshold"] = self.score_threshold
        return out

    # ---- deepsky predict
    def write_user_outputs(self, model: nn.Module, files: list, x: torch.Tensor, output, device: torch.device,
                           batch_size: int) -> int:
        """One CSV row per detection (after the class-agnostic suppression): file, class, score, box,
        mask centroid, mask area."""
        import csv
        import sys

        found = self.detections(model, x, device, min(batch_size, 16))
        handle = open(output, "w", newline="") if output else sys.stdout  # noqa: SIM115 (closed below)
        written = 0
        try:
            writer = csv.writer(handle)
            writer.writerow(["file", "class", "score", "x0", "y0", "x1", "y1", "x", "y", "mask_area"])
            for path, dets in zip(files, found):
                for j in np.flatnonzero(dets["unique"]):
                    ys, xs = np.nonzero(dets["masks"][j])
                    box = dets["boxes"][j]
                    cx, cy = (xs.mean() + 0.5, ys.mean() + 0.5) if len(xs) else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                    writer.writerow([str(path), self.class_names[int(dets["labels"][j]) - 1], f"{dets['scores'][j]:.4f}",
                                     *(f"{v:.2f}" for v in box), f"{cx:.2f}", f"{cy:.2f}", len(xs)])
                    written += 1
        finally:
            if output:
                handle.close()
        return written
