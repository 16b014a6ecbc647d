"""Baseline test-pass figures: precision-recall against a hand computation and scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from affectlab.evaluation.au_plots import precision_recall, save_au_f1_bars, save_pr_curves


def test_precision_recall_by_hand():
    # scores 0.9 (pos), 0.8 (neg), 0.3 (pos), 0.1 (neg): P = 1, 1/2, 2/3, 1/2 at R = 1/2, 1/2, 1, 1
    precision, recall, ap = precision_recall(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    assert precision == pytest.approx([1, 1 / 2, 2 / 3, 1 / 2]) and recall == pytest.approx([0.5, 0.5, 1, 1])
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_precision_recall_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 1)  # many tied scores
    truth = rng.random(200) < 0.3
    precision, recall, ap = precision_recall(scores, truth)
    ref_p, ref_r, _ = precision_recall_curve(truth, scores)
    assert ap == pytest.approx(average_precision_score(truth, scores))
    assert np.allclose(precision, ref_p[:-1][::-1]) and np.allclose(recall, ref_r[:-1][::-1])
    assert np.isnan(precision_recall(scores, np.zeros(200, bool))[2])


def test_plots_are_written_and_ap_skips_unlabelled_frames(tmp_path):
    probs = np.array([[0.9, 0.2], [0.8, 0.7], [0.3, 0.6], [0.1, 0.1]])
    target = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    mask = np.array([[1, 1], [1, 1], [1, 0], [1, 1]], bool)  # AU02 of frame 3 unlabelled
    ap = save_pr_curves(probs, target, mask, ["AU01", "AU02"], tmp_path / "pr.png")
    assert ap["AU01"] == pytest.approx(average_precision_score(target[:, 0], probs[:, 0]))
    assert ap["AU02"] == pytest.approx(average_precision_score(target[mask[:, 1], 1], probs[mask[:, 1], 1]))
    save_au_f1_bars({"AU01": 0.5, "AU02": 0.25}, tmp_path / "f1.png")
    assert (tmp_path / "pr.png").stat().st_size > 5_000 and (tmp_path / "f1.png").stat().st_size > 5_000
