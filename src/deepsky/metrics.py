"""Lens-finding and classification metrics (scikit-learn underneath, Metcalf+2019 definitions)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score, roc_curve


def tpr_at_false_positives(labels: np.ndarray, scores: np.ndarray, max_false_positives: int) -> float:
    """Fraction of lenses ranked above the (max_false_positives+1)-th highest non-lens.

    Metcalf et al. (2019): TPR0 is the highest true-positive rate reached before the first false
    positive; TPR10 the highest reached while fewer than ten false positives are made (k = 9).
    Ties with a non-lens score count as not found, as a threshold cannot separate them.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    if labels.all() or not labels.any():
        raise ValueError("TPR needs both lenses and non-lenses")
    negatives = np.sort(scores[~labels])[::-1]
    if len(negatives) <= max_false_positives:
        return 1.0
    threshold = negatives[max_false_positives]
    return float(np.mean(scores[labels] > threshold))


def tpr0(labels, scores) -> float:
    return tpr_at_false_positives(labels, scores, 0)


def tpr10(labels, scores) -> float:
    return tpr_at_false_positives(labels, scores, 9)


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict:
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(scores) >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(labels, predicted, labels=[0, 1]).ravel()
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "auroc": float(roc_auc_score(labels, scores)),
        "tpr0": tpr0(labels, scores),
        "tpr10": tpr10(labels, scores),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
    }


def multiclass_metrics(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict:
    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype=float)
    predicted = probabilities.argmax(axis=1)
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "auroc_macro_ovr": float(
            roc_auc_score(labels, probabilities, multi_class="ovr", average="macro", labels=range(len(class_names)))
        ),
        "confusion": confusion_matrix(labels, predicted, labels=range(len(class_names))).tolist(),
    }
    for k, name in enumerate(class_names):
        metrics[f"auroc_{name}"] = float(roc_auc_score(labels == k, probabilities[:, k]))
    return metrics


def roc_points(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr, tpr
