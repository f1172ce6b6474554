import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score, roc_curve
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy

from deepsky.metrics import binary_metrics, multiclass_metrics, tpr0, tpr10, tpr_at_false_positives


def test_tpr0_hand_made():
    # Non-lens scores 0.9 (highest), lenses 0.95 and 0.99 above it, 0.5 and 0.2 below.
    labels = [1, 1, 1, 1, 0, 0, 0]
    scores = [0.99, 0.95, 0.5, 0.2, 0.9, 0.3, 0.1]
    assert tpr0(labels, scores) == pytest.approx(0.5)


def test_tpr0_is_zero_when_top_score_is_a_non_lens():
    assert tpr0([1, 1, 0], [0.5, 0.4, 0.9]) == 0.0


def test_tpr0_tie_with_non_lens_counts_as_not_found():
    assert tpr0([1, 0, 1], [0.8, 0.8, 0.9]) == pytest.approx(0.5)


def test_tpr10_allows_nine_false_positives():
    negatives = np.linspace(0.95, 0.5, 12)  # 12 non-lenses, the 10th highest is 0.5909...
    lenses = np.array([0.99, 0.9, 0.6, 0.58, 0.1])
    labels = np.r_[np.ones(5), np.zeros(12)]
    scores = np.r_[lenses, negatives]
    tenth = np.sort(negatives)[::-1][9]
    assert tpr10(labels, scores) == pytest.approx(np.mean(lenses > tenth))
    assert tpr10(labels, scores) == pytest.approx(3 / 5)


def test_tpr_needs_both_classes():
    with pytest.raises(ValueError, match="both"):
        tpr0([1, 1], [0.2, 0.3])


@pytest.mark.parametrize("k", [0, 9])
def test_tpr_matches_sklearn_roc_curve(k):
    rng = np.random.default_rng(3)
    for trial in range(20):
        labels = rng.integers(0, 2, 300)
        scores = np.round(rng.normal(labels * 1.5, 1.0), 2)  # rounding makes ties
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        false_positives = np.round(fpr * (labels == 0).sum())
        expected = tpr[false_positives <= k].max()
        assert tpr_at_false_positives(labels, scores, k) == pytest.approx(expected)


def test_binary_metrics_against_sklearn_and_torchmetrics():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = 1 / (1 + np.exp(-rng.normal(labels * 2 - 1, 1.5)))
    m = binary_metrics(labels, scores)
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert m["auroc"] == pytest.approx(float(BinaryAUROC()(torch.tensor(scores), torch.tensor(labels))), abs=1e-6)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, scores >= 0.5))
    tn, fp, fn, tp = confusion_matrix(labels, scores >= 0.5).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)


def test_multiclass_metrics_against_sklearn_and_torchmetrics():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 400)
    logits = rng.normal(size=(400, 3)) + np.eye(3)[labels] * 1.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = multiclass_metrics(labels, probs, ["round", "edge_on", "spiral"])
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, probs.argmax(1)))
    micro = MulticlassAccuracy(num_classes=3, average="micro")(torch.tensor(probs), torch.tensor(labels))
    assert m["accuracy"] == pytest.approx(float(micro))
    assert m["auroc_macro_ovr"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr"))
    assert m["confusion"] == confusion_matrix(labels, probs.argmax(1)).tolist()
    assert m["auroc_spiral"] == pytest.approx(roc_auc_score(labels == 2, probs[:, 2]))
