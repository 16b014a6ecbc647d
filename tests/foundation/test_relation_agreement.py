"""Learned AU relation vs the true co-occurrence (evaluation.relation_agreement) against loop references."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from affectlab.evaluation.relation_agreement import (
    geometric_relation, groundtruth_cooccurrence, off_diagonal, relation_agreement,
)

AUS = ["AU01", "AU02", "AU04", "AU06", "AU12", "AU15"]


def _spearman_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / np.sqrt((rx ** 2).sum() * (ry ** 2).sum()))


def test_off_diagonal_is_the_upper_triangle_of_the_symmetrised_matrix():
    m = np.array([[9.0, 1.0, 2.0], [3.0, 9.0, 4.0], [6.0, 8.0, 9.0]])
    assert off_diagonal(m).tolist() == [2.0, 4.0, 6.0]  # (1+3)/2, (2+6)/2, (4+8)/2


def test_agreement_matches_a_loop_reference_and_controls_behave():
    rng = np.random.default_rng(3)
    truth = rng.random((6, 6))
    truth = truth + truth.T
    learned = truth + 0.05 * rng.random((6, 6))
    out = relation_agreement(learned, truth, AUS, shuffles=300, seed=1)
    pairs = list(itertools.combinations(range(6), 2))
    ref = _spearman_by_hand(np.array([(learned[i, j] + learned[j, i]) / 2 for i, j in pairs]),
                            np.array([truth[i, j] for i, j in pairs]))
    assert out["relation_spearman"] == pytest.approx(ref, abs=1e-12)
    assert out["relation_spearman"] > 0.9
    # shuffling the AUs destroys the agreement: near 0 on average, far below the learned one
    assert abs(out["relation_shuffled_mean"]) < 0.15 and out["relation_shuffled_q95"] < out["relation_spearman"]
    assert out["relation_p_value"] < 0.05
    # the geometric control does not depend on the learned matrix
    assert relation_agreement(truth.T.copy(), truth, AUS, shuffles=10)["relation_geometric"] == out["relation_geometric"]


def test_a_constant_relation_has_no_agreement_and_no_significance():
    """A plan that stayed uniform (1/K everywhere) or is diagonal only ranks nothing: Spearman and its
    p-value are undefined (NaN), not 'p = 1 / (1 + shuffles)', the smallest value possible."""
    rng = np.random.default_rng(0)
    truth = rng.random((6, 6))
    truth = truth + truth.T
    for learned in (np.full((6, 6), 1 / 6), np.eye(6)):
        out = relation_agreement(learned, truth, AUS, shuffles=50)
        assert np.isnan(out["relation_spearman"]) and np.isnan(out["relation_p_value"])


def test_geometric_relation_is_symmetric_with_zero_diagonal():
    geo = geometric_relation(AUS)
    assert geo.shape == (6, 6) and np.allclose(geo, geo.T) and np.allclose(np.diag(geo), 0.0)
    assert (geo[~np.eye(6, dtype=bool)] <= 0).all()


def test_cooccurrence_of_a_groundtruth_table_by_hand(tmp_path):
    (tmp_path / "BP4D").mkdir()
    (tmp_path / "groundtruth").mkdir()
    # AU01 on in frames 0-3, AU02 in frames 2-3, AU04 never; intensity 0.5 counts as present, 0.49 not
    pd.DataFrame({"subject": ["F001"] * 5, "au01": [1.0, 0.5, 2.0, 3.0, 0.0],
                  "au02": [0.0, 0.49, 1.0, 0.7, 0.0], "au04": [0.0] * 5}).to_csv(
        tmp_path / "groundtruth" / "bp4d.csv.gz", index=False)
    rel = groundtruth_cooccurrence(tmp_path / "BP4D", "bp4d", ["AU01", "AU02", "AU04"])
    # P(AU02 | AU01) = 2/4, P(AU01 | AU02) = 2/2 → 0.75; pairs with the absent AU04 → 0
    assert rel[0, 1] == pytest.approx(0.75) and rel[1, 0] == pytest.approx(0.75)
    assert rel[0, 2] == pytest.approx(0.0) and rel[0, 0] == pytest.approx(1.0)
    assert groundtruth_cooccurrence(tmp_path / "elsewhere" / "BP4D", "bp4d", ["AU01"]) is None
    with pytest.raises(ValueError, match="au17"):
        groundtruth_cooccurrence(tmp_path / "BP4D", "bp4d", ["AU01", "AU17"])
