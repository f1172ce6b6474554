"""What the light-curve experiment measures beyond the K-fold table: the random-forest baseline,
gradients through time (lecture 002, "why gradients vanish"), early classification (RAPID) and
the transformer's attention."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import RandomForestClassifier
from torch.nn import functional as F

from deepsky.data.lightcurves_features import feature_table
from deepsky.data.lightcurves_tensors import encode, truncate
from deepsky.data.split import fold_indices
from deepsky.metrics import multiclass_metrics
from deepsky.models.lightcurves_nets import TransformerClassifier
from deepsky.tasks import make_task

#: Fractions of each light curve's time span seen in the early-classification curves.
FRACTIONS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
BASELINE = "random_forest"


def unpadded(raw: torch.Tensor, lengths: torch.Tensor) -> list[np.ndarray]:
    return [raw[k, : int(n)].numpy() for k, n in enumerate(lengths)]


# ---------------------------------------------------------------------------- random forest
def random_forest(seed: int, n_estimators: int = 200) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=n_estimators, min_samples_leaf=2, n_jobs=1, random_state=seed)


def baseline_folds(features: pd.DataFrame, split: pd.DataFrame, labels: pd.Series, folds, class_names, seed: int,
                   test_sets: dict[float, pd.DataFrame] | None = None):
    """K-fold random forests: (prediction table in the multiclass contract, metrics per fold,
    early-classification rows for the feature tables of truncated test light curves)."""
    task = make_task({"name": "multiclass", "class_names": list(class_names)})
    features = features.set_index("index")
    columns = list(features.columns)
    tables, per_fold, early = [], [], []
    for fold in folds:
        parts = fold_indices(split, fold)
        train, test = np.sort(parts["train"]), np.sort(parts["test"])
        forest = random_forest(seed + fold).fit(features.loc[train, columns].to_numpy(), labels.loc[train].to_numpy())
        p = forest.predict_proba(features.loc[test, columns].to_numpy())
        predicted = {f"p_{name}": p[:, k] for k, name in enumerate(class_names)}
        predicted["predicted"] = p.argmax(1)
        table = task.prediction_table(test, labels.loc[test].to_numpy(), predicted, fold, BASELINE)
        metrics = task.metrics(table)
        metrics.update({"fold": int(fold), "architecture": BASELINE, "n_test": int(len(test))})
        tables.append(table)
        per_fold.append(metrics)
        for fraction, seen in (test_sets or {}).items():
            p = forest.predict_proba(seen.set_index("index").loc[test, columns].to_numpy())
            scores = multiclass_metrics(labels.loc[test].to_numpy(), p, list(class_names))
            early.append({"architecture": BASELINE, "fold": int(fold), "fraction": fraction, "accuracy": scores["accuracy"],
                          "auroc_macro_ovr": scores["auroc_macro_ovr"], "n": int(len(test))})
    return pd.concat(tables, ignore_index=True), per_fold, pd.DataFrame(early)


def truncated_features(raw: torch.Tensor, lengths: torch.Tensor, index, bands, full: pd.DataFrame, fractions=FRACTIONS) -> dict:
    """Feature tables of the test light curves seen up to each fraction of their time span (the
    whole light curve: rows of `full`)."""
    tables = {f: feature_table(unpadded(raw, truncate(raw, lengths, f)), index, bands) for f in fractions if f < 1}
    return {**tables, 1.0: full[full["index"].isin(index)]} if 1.0 in fractions else tables


# ---------------------------------------------------------------------------- early classification
def early_accuracy(task, model, raw, lengths, labels, device, arch: str, fold: int, fractions=FRACTIONS) -> list[dict]:
    rows = []
    class_names = task.class_names
    for fraction in fractions:
        predicted = task.predict(model, (raw, truncate(raw, lengths, fraction)), device)
        p = np.stack([predicted[f"p_{n}"] for n in class_names], 1)
        scores = multiclass_metrics(labels, p, class_names)
        rows.append({"architecture": arch, "fold": int(fold), "fraction": fraction, "accuracy": scores["accuracy"],
                     "auroc_macro_ovr": scores["auroc_macro_ovr"], "n": int(len(labels))})
    return rows


# ---------------------------------------------------------------------------- gradients through time
def input_gradient_norms(model, raw, lengths, labels, device, batch_size: int = 128) -> list[np.ndarray]:
    """Per sequence, ||d loss / d x_t|| at every observation t (model in eval mode; cuDNN RNNs
    only backpropagate in training mode, so cuDNN is switched off here)."""
    model.eval()
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    norms = []
    with torch.backends.cudnn.flags(enabled=False):
        for start in range(0, len(raw), batch_size):
            part = lengths[start : start + batch_size]
            seq = encode(raw[start : start + batch_size, : int(part.max())].to(device), part.to(device))
            values = seq.values.detach().requires_grad_(True)
            loss = F.cross_entropy(model(seq._replace(values=values)), labels[start : start + batch_size].to(device), reduction="sum")
            (grad,) = torch.autograd.grad(loss, values)
            g = grad.norm(dim=2).cpu().numpy()
            norms += [g[k, : int(n)] for k, n in enumerate(part)]
    return norms


def gradient_profile(norms: list[np.ndarray], arch: str, max_steps: int = 200) -> pd.DataFrame:
    """Gradient at k steps before the last observation, over the gradient at the last one."""
    rows = []
    ratios = [g[::-1] / max(g[-1], 1e-30) for g in norms]
    for k in range(min(max_steps, max(len(r) for r in ratios))):
        values = np.array([r[k] for r in ratios if len(r) > k])
        if len(values) >= 10:
            q25, median, q75 = np.percentile(values, [25, 50, 75])
            rows.append({"architecture": arch, "steps_before_end": k, "median": median, "q25": q25, "q75": q75,
                         "n": len(values)})
    return pd.DataFrame(rows)


def first_step_ratio(norms: list[np.ndarray]) -> np.ndarray:
    """||grad at the first observation|| / ||grad at the last|| per sequence."""
    return np.array([g[0] / max(g[-1], 1e-30) for g in norms])


def length_bins(n_obs: np.ndarray, n_bins: int = 6) -> np.ndarray:
    edges = np.unique(np.percentile(n_obs, np.linspace(0, 100, n_bins + 1)).round())
    edges[-1] += 1
    return edges


def by_length(table: pd.DataFrame, n_obs: pd.Series, edges: np.ndarray) -> pd.DataFrame:
    """Accuracy per architecture and sequence-length bin (mean and std over folds)."""
    table = table.assign(n_obs=n_obs.loc[table["index"]].to_numpy(), correct=table["label"] == table["predicted"])
    table["bin"] = np.digitize(table["n_obs"], edges[1:-1])
    per_fold = table.groupby(["architecture", "bin", "fold"], sort=False)["correct"].agg(["mean", "size"]).reset_index()
    out = per_fold.groupby(["architecture", "bin"], sort=False).agg(
        accuracy_mean=("mean", "mean"), accuracy_std=("mean", "std"), n=("size", "first")).reset_index()
    out["length_low"], out["length_high"] = edges[out["bin"]], edges[out["bin"] + 1] - 1
    order = {arch: k for k, arch in enumerate(dict.fromkeys(table["architecture"]))}
    return out.sort_values(["architecture", "bin"], key=lambda c: c.map(order) if c.name == "architecture" else c,
                           ignore_index=True)


# ---------------------------------------------------------------------------- attention
@torch.no_grad()
def cls_attention(model: TransformerClassifier, raw, lengths, device, batch_size: int = 128):
    """(probabilities (N, K), attention from [CLS] to each observation, per sequence)."""
    model.eval()
    model.keep_attention = True
    probabilities, weights = [], []
    try:
        for start in range(0, len(raw), batch_size):
            part = lengths[start : start + batch_size]
            logits = model(encode(raw[start : start + batch_size, : int(part.max())].to(device), part.to(device)))
            probabilities.append(torch.softmax(logits.float(), 1).cpu())
            attention = model.attention.float().cpu().numpy()
            weights += [attention[k, : int(n)] for k, n in enumerate(part)]
    finally:
        model.keep_attention = False
    return torch.cat(probabilities).numpy(), weights
