"""Test-pass figures for AU detection: per-AU F1 bars and per-AU precision-recall curves.

Precision-recall follows the usual step definition (scikit-learn's ``precision_recall_curve`` and
``average_precision_score``): one point per distinct score threshold, AP = Σ (R_n − R_{n−1}) P_n.
Only labelled frames (``mask``) count.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def precision_recall(scores: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Precision and recall at every distinct threshold (highest first) and the average precision.
    With no positive frame, recall is undefined: empty curves and AP = nan."""
    scores, truth = np.asarray(scores, dtype=float), np.asarray(truth, dtype=bool)
    positives = int(truth.sum())
    if positives == 0:
        return np.zeros(0), np.zeros(0), float("nan")
    order = np.argsort(-scores, kind="mergesort")
    scores, truth = scores[order], truth[order]
    last_of_each_threshold = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    tp = np.cumsum(truth)[last_of_each_threshold]
    predicted = last_of_each_threshold + 1
    precision, recall = tp / predicted, tp / positives
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return precision, recall, ap


def save_au_f1_bars(f1: dict[str, float], path: Path, title: str = "") -> Path:
    """Bar per AU of its test F1 (percent), the mean as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, values = list(f1), [100.0 * v for v in f1.values()]
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(names), 3.2))
    ax.bar(range(len(names)), values, color="#4e79a7")
    mean = float(np.mean(values)) if values else 0.0
    ax.axhline(mean, color="#333", linestyle="--", linewidth=1, label=f"mean {mean:.1f}")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("F1 (%)")
    ax.legend(loc="upper right", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_pr_curves(probs: np.ndarray, target: np.ndarray, mask: np.ndarray, au_names: list[str], path: Path,
                   threshold: float = 0.5, title: str = "") -> dict[str, float]:
    """One precision-recall curve per AU (AP in the legend, the ``threshold`` operating point marked);
    returns the AP of each AU (nan for an AU without a labelled positive frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    colours = plt.get_cmap("tab20")
    ap_of: dict[str, float] = {}
    for k, name in enumerate(au_names):
        labelled = mask[:, k].astype(bool)
        scores, truth = probs[labelled, k], target[labelled, k] > 0.5
        precision, recall, ap = precision_recall(scores, truth)
        ap_of[name] = ap
        if not len(recall):
            continue
        colour = colours(k % 20)
        ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre", color=colour,
                linewidth=1.2, label=f"{name} AP {100 * ap:.1f}")
        at = scores >= threshold
        if at.any():
            hit = (at & truth).sum()
            ax.plot(hit / truth.sum(), hit / at.sum(), "o", color=colour, markersize=4)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title or f"precision-recall per AU (dots: threshold {threshold})", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return ap_of
