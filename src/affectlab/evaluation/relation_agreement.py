"""Does a learned K×K AU relation agree with the true AU co-occurrence? (issue #20, region_relation)

Spearman correlation over the K(K−1)/2 off-diagonal AU pairs (each matrix symmetrised) between the
learned relation and the co-occurrence of a synthetic release's ground truth, beside two controls:
the same learned matrix with its AUs shuffled (``shuffles`` permutations: mean, 95th percentile and
the permutation p-value), and a geometric relation, the negative distance between AU centres on a
canonical face (how much of the agreement spatial proximity alone explains).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from scipy.stats import spearmanr

#: the generator's intensity at which an AU counts as present (BP4D occurrence = level ≥ 1, and the
#: generator's level is 0 below u = 0.5: ``affectlab.synth.labels``)
OCCURRENCE_THRESHOLD = 0.5


def off_diagonal(matrix: np.ndarray) -> np.ndarray:
    """Upper-triangle entries (k = 1) of the symmetrised matrix."""
    sym = 0.5 * (matrix + matrix.T)
    return sym[np.triu_indices(len(sym), k=1)]


def groundtruth_cooccurrence(release_root: Path, dataset: str, au_names: list[str],
                             threshold: float = OCCURRENCE_THRESHOLD) -> Optional[np.ndarray]:
    """``(P(j|i) + P(i|j)) / 2`` over every frame of the generator's ground-truth table beside a synthetic
    release; None when there is none (a real release)."""
    import pandas as pd

    from affectlab.losses.optimal_transport import cooccurrence_relation
    from affectlab.synth import release_groundtruth_path

    table = release_groundtruth_path(release_root, dataset)
    if not table.is_file():
        return None
    columns = [a.lower() for a in au_names]
    frame = pd.read_csv(table, usecols=lambda c: c in columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: expected AU intensity columns {columns}, missing {missing}")
    labels = torch.tensor((frame[columns].to_numpy() >= threshold).astype(np.float32))
    return cooccurrence_relation(labels).numpy().astype(np.float64)


def geometric_relation(au_names: list[str], image_size: int = 112) -> np.ndarray:
    """Negative minimum distance between the two centres of each AU pair on the canonical face."""
    from affectlab.models.au_attention import au_centres, template_landmarks

    c = au_centres(template_landmarks(image_size), au_names)[0]  # (K, 2, 2)
    d = (c[:, None, :, None, :] - c[None, :, None, :, :]).norm(dim=-1).amin(dim=(-1, -2))
    return -d.numpy().astype(np.float64)


def relation_agreement(learned: np.ndarray, truth: np.ndarray, au_names: list[str], shuffles: int = 2000,
                       seed: int = 0) -> dict[str, float]:
    """``relation_spearman`` (learned vs truth), ``relation_shuffled_mean`` / ``relation_shuffled_q95``
    and ``relation_p_value`` (learned with its AUs permuted), ``relation_geometric`` (the geometric
    control vs truth)."""
    target = off_diagonal(truth)
    rho = float(spearmanr(off_diagonal(learned), target).statistic)
    rng = np.random.default_rng(seed)
    shuffled = np.empty(shuffles)
    for i in range(shuffles):
        perm = rng.permutation(len(learned))
        shuffled[i] = spearmanr(off_diagonal(learned[np.ix_(perm, perm)]), target).statistic
    geometric = float(spearmanr(off_diagonal(geometric_relation(au_names)), target).statistic)
    # a constant off-diagonal (e.g. a plan that stayed at its uniform start) has no ranking: rho is NaN, and
    # counting shuffles >= NaN (none) would report the smallest p-value possible
    p_value = float((1 + np.sum(shuffled >= rho)) / (1 + shuffles)) if np.isfinite(rho) else float("nan")
    return {"relation_spearman": rho, "relation_shuffled_mean": float(shuffled.mean()),
            "relation_shuffled_q95": float(np.quantile(shuffled, 0.95)),
            "relation_p_value": p_value, "relation_geometric": geometric}
