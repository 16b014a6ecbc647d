"""Metrics against independent references (sklearn, scipy, the ICC ANOVA definition)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score, recall_score

from affectlab.metrics import AUDetectionMetrics, AUIntensityMetrics, ExpressionMetrics


def test_au_f1_matches_sklearn_per_au_with_masked_labels():
    rng = np.random.default_rng(0)
    probs = rng.random((200, 3))
    target = (rng.random((200, 3)) < 0.3).astype(np.float32)
    mask = rng.random((200, 3)) > 0.1
    metric = AUDetectionMetrics(["AU01", "AU06", "AU12"])
    for chunk in np.array_split(np.arange(200), 4):  # several updates accumulate
        metric.update(torch.tensor(probs[chunk]), torch.tensor(target[chunk]), torch.tensor(mask[chunk]))
    out = metric.compute()
    expected = [f1_score(target[mask[:, k], k], probs[mask[:, k], k] >= 0.5) for k in range(3)]
    for k, name in enumerate(["f1_au01", "f1_au06", "f1_au12"]):
        assert out[name].item() == pytest.approx(expected[k], abs=1e-6)
    assert out["f1_mean"].item() == pytest.approx(np.mean(expected), abs=1e-6)


def icc_3_1_reference(x: np.ndarray, y: np.ndarray) -> float:
    """ICC(3,1) straight from the two-way ANOVA mean squares (Shrout & Fleiss 1979, case 3)."""
    data = np.stack([x, y], 1).astype(float)
    n, k = data.shape
    row_means, col_means, grand = data.mean(1), data.mean(0), data.mean()
    msr = k * np.sum((row_means - grand) ** 2) / (n - 1)
    residual = data - row_means[:, None] - col_means[None, :] + grand
    mse = np.sum(residual**2) / ((n - 1) * (k - 1))
    return (msr - mse) / (msr + (k - 1) * mse)


def test_intensity_metrics_match_anova_icc_scipy_pcc_and_mae():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 6, size=(300, 2)).astype(np.float32)
    pred = np.clip(target + rng.normal(0.3, 0.8, size=target.shape), 0, 5).astype(np.float32)
    mask = np.ones_like(target, dtype=bool)
    mask[:50, 1] = False  # code-9 frames of the second AU
    metric = AUIntensityMetrics(["AU06", "AU12"])
    metric.update(torch.tensor(pred), torch.tensor(target), torch.tensor(mask))
    out = metric.compute()
    for k, au in enumerate(["au06", "au12"]):
        p, t = pred[mask[:, k], k], target[mask[:, k], k]
        assert out[f"icc_{au}"].item() == pytest.approx(icc_3_1_reference(p, t), abs=1e-5)
        assert out[f"pcc_{au}"].item() == pytest.approx(pearsonr(p, t)[0], abs=1e-5)
        assert out[f"mae_{au}"].item() == pytest.approx(np.abs(p - t).mean(), abs=1e-5)
    assert out["icc_mean"].item() == pytest.approx((out["icc_au06"] + out["icc_au12"]).item() / 2, abs=1e-6)


def test_icc_is_one_for_perfect_and_penalises_bias():
    t = torch.tensor([0.0, 1, 2, 3, 4, 5])
    metric = AUIntensityMetrics(["AU06"])
    metric.update(t[:, None], t[:, None])
    assert metric.compute()["icc_au06"].item() == pytest.approx(1.0)
    # ICC(3,1) is a consistency measure: a constant offset does not lower it
    metric.reset()
    metric.update(t[:, None] + 1, t[:, None])
    assert metric.compute()["icc_au06"].item() == pytest.approx(1.0)


def test_expression_uar_war_and_recall_match_sklearn():
    rng = np.random.default_rng(2)
    names = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]
    target = rng.integers(0, 7, 500)
    logits = rng.normal(size=(500, 7))
    logits[np.arange(500), target] += rng.random(500) * 2.5
    metric = ExpressionMetrics(names)
    metric.update(torch.tensor(logits), torch.tensor(target))
    out = metric.compute()
    pred = logits.argmax(1)
    assert out["uar"].item() == pytest.approx(recall_score(target, pred, average="macro"), abs=1e-6)
    assert out["war"].item() == pytest.approx(accuracy_score(target, pred), abs=1e-6)
    per_class = recall_score(target, pred, average=None)
    for i, n in enumerate(names):
        assert out[f"recall_{n.lower()}"].item() == pytest.approx(per_class[i], abs=1e-6)
    assert metric.confusion_matrix().sum().item() == 500
