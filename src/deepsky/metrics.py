"""Lens-finding and classification metrics (scikit-learn underneath, Metcalf+2019 definitions),
lens-parameter regression metrics (Hezaveh+2017) and reliability of predicted probabilities."""

from __future__ import annotations

import numpy as np


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
    from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score  # lazy: 0.8 s that figure jobs need not pay

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
    from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score  # lazy: 0.8 s that figure jobs need not pay

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
    from sklearn.metrics import roc_curve  # lazy: 0.8 s that figure jobs need not pay

    fpr, tpr, _ = roc_curve(labels, scores)
    return fpr, tpr


# --- Regression (Hezaveh, Perreault Levasseur & Marshall 2017) and probability calibration ---


def error_quantile(truth, pred, q: float = 0.68) -> float:
    """Hezaveh+17's "68 % error": the value below which a fraction q of |pred - truth| fall.

    A quantile rather than an rmse, so that a few catastrophic fits do not dominate it.
    """
    errors = np.abs(np.asarray(pred, dtype=float) - np.asarray(truth, dtype=float))
    return float(np.quantile(errors, q))


def gaussian_interval_coverage(truth, mean, sigma, level: float) -> float:
    """Fraction of truths inside the central Gaussian interval holding `level` of the mass.

    A calibrated uncertainty gives coverage == level; too small sigmas give less.
    """
    from scipy.stats import norm

    z = norm.ppf(0.5 + level / 2)
    truth, mean, sigma = (np.asarray(a, dtype=float) for a in (truth, mean, sigma))
    return float(np.mean(np.abs(truth - mean) <= z * sigma))


def gaussian_nll(truth, mean, sigma) -> float:
    """Mean Gaussian negative log-likelihood, constant 0.5*log(2*pi) included (= -norm.logpdf)."""
    truth, mean, sigma = (np.asarray(a, dtype=float) for a in (truth, mean, sigma))
    return float(np.mean(0.5 * ((truth - mean) / sigma) ** 2 + np.log(sigma) + 0.5 * np.log(2 * np.pi)))


def regression_metrics(truth: np.ndarray, pred: np.ndarray, names: list[str], sigma: np.ndarray | None = None) -> dict:
    """Per-target rmse, mae, r2, bias and 68 % error; coverage and NLL when sigmas are predicted."""
    from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error  # lazy: 0.8 s that figure jobs need not pay

    truth = np.asarray(truth, dtype=float).reshape(len(truth), -1)
    pred = np.asarray(pred, dtype=float).reshape(truth.shape)
    metrics = {}
    for k, name in enumerate(names):
        t, p = truth[:, k], pred[:, k]
        metrics[f"{name}_rmse"] = float(root_mean_squared_error(t, p))
        metrics[f"{name}_mae"] = float(mean_absolute_error(t, p))
        metrics[f"{name}_r2"] = float(r2_score(t, p))
        metrics[f"{name}_bias"] = float(np.mean(p - t))
        metrics[f"{name}_err68"] = error_quantile(t, p, 0.68)
    # rmse has the units of each target (arcsec vs none), so only the unitless r2 is averaged.
    metrics["r2_mean"] = float(np.mean([metrics[f"{n}_r2"] for n in names]))
    if sigma is not None:
        sigma = np.asarray(sigma, dtype=float).reshape(truth.shape)
        for k, name in enumerate(names):
            t, p, s = truth[:, k], pred[:, k], sigma[:, k]
            metrics[f"{name}_coverage68"] = gaussian_interval_coverage(t, p, s, 0.68)
            metrics[f"{name}_coverage95"] = gaussian_interval_coverage(t, p, s, 0.95)
            metrics[f"{name}_nll"] = gaussian_nll(t, p, s)
        metrics["coverage68_mean"] = float(np.mean([metrics[f"{n}_coverage68"] for n in names]))
        metrics["coverage95_mean"] = float(np.mean([metrics[f"{n}_coverage95"] for n in names]))
    return metrics


def _uniform_bin_counts(scores, n_bins: int) -> np.ndarray:
    # The same binning as sklearn's calibration_curve(strategy="uniform"), so counts line up.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.bincount(np.searchsorted(edges[1:-1], np.asarray(scores, dtype=float)), minlength=n_bins)


def reliability_curve(labels, scores, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted score, fraction of positives, count) for each non-empty uniform bin."""
    from sklearn.calibration import calibration_curve  # 0.7 s of imports: only where needed

    fraction_positive, mean_predicted = calibration_curve(
        np.asarray(labels).astype(int), np.asarray(scores, dtype=float), n_bins=n_bins, strategy="uniform", pos_label=1
    )
    counts = _uniform_bin_counts(scores, n_bins)
    return mean_predicted, fraction_positive, counts[counts > 0]


def expected_calibration_error(labels, scores, n_bins: int = 10) -> float:
    """Count-weighted mean |fraction positive - mean predicted| over non-empty uniform bins."""
    mean_predicted, fraction_positive, counts = reliability_curve(labels, scores, n_bins)
    return float(np.sum(counts * np.abs(fraction_positive - mean_predicted)) / np.sum(counts))
