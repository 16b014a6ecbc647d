"""Trivial reference predictors that every learned AU detector must beat."""
from __future__ import annotations

from typing import Any

import numpy as np


def occurrence_matrix(datamodule: Any, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(positive, valid) boolean arrays of shape frames × AUs for an AU-occurrence datamodule's split.

    Uses the datamodule's own coding rule: BP4D occurrence codes 1 (9 = not coded), DISFA intensity
    at or above ``occurrence_threshold``.
    """
    df = datamodule.manifest(split)
    codes = df[datamodule.au_columns()].to_numpy(np.int64)
    valid = codes != 9
    thr = datamodule.occurrence_threshold
    positive = ((codes >= thr) if thr is not None else (codes == 1)) & valid
    return positive, valid


def all_positive_f1(datamodule: Any, split: str = "test") -> dict[str, float]:
    """Per-AU and mean F1 of predicting every AU present in every frame: 2p / (1 + p), p = base rate."""
    positive, valid = occurrence_matrix(datamodule, split)
    p = positive.sum(0) / np.maximum(valid.sum(0), 1)
    f1 = 2 * p / (1 + p)
    out = {f"f1_{a.lower()}": float(v) for a, v in zip(datamodule.au_names, f1)}
    out["f1_mean"] = float(f1.mean())
    return out
