"""TCAE's disentanglement on a synthetic release (Li et al., CVPR 2019, Sec. 3: φ should carry the AUs,
ψ the head pose): out-of-subject R² of a linear map from each embedding to the generator's AU
intensities and head pose (``groundtruth/<dataset>.csv.gz`` beside the release)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

POSE = ("yaw", "pitch", "roll")
KEYS = ("subject", "sequence", "frame")
FOLDS = 3
MIN_SUBJECTS = 2 * FOLDS  # nested group-wise CV: FOLDS outer folds, each fitted with FOLDS inner ones


def frame_groundtruth(release_root: Path, dataset: str) -> Optional[Any]:
    """The generator's per-frame table (subject, sequence, frame, ``au*`` intensities, yaw/pitch/roll)
    beside a synthetic release, indexed by (subject, sequence, frame); None for a real release."""
    import pandas as pd

    from affectlab.synth import release_groundtruth_path

    table = release_groundtruth_path(release_root, dataset)
    if not table.is_file():
        return None
    gt = pd.read_csv(table, dtype={"subject": str, "sequence": str})
    aus = [c for c in gt.columns if c.startswith("au") and c[2:].isdigit()]
    missing = [c for c in (*KEYS, *POSE) if c not in gt.columns]
    if missing or not aus:
        raise ValueError(f"{table}: expected columns {KEYS + POSE} and au01…, missing {missing or ['au*']}")
    gt = gt[[*KEYS, *aus, *POSE]].drop_duplicates(list(KEYS))
    return gt.astype({"frame": int}).set_index(list(KEYS))


def align_groundtruth(table: Any, keys: list[tuple[str, str, int]]) -> Optional[Any]:
    """The table's rows for (subject, sequence, frame) ``keys`` in their order; a datamodule's sequence
    id may carry the subject as a folder (BP4D ``F001/T1``), so its last path part is tried too. None
    when some frame has no row either way."""
    for key_of in (lambda k: k, lambda k: (k[0], k[1].rsplit("/", 1)[-1], k[2])):
        rows = [key_of(k) for k in keys]
        if all(r in table.index for r in rows):
            return table.loc[rows]
    return None


def grouped_r2(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = FOLDS,
               alphas: np.ndarray = np.logspace(-1, 5, 13)) -> np.ndarray:
    """Per-target R² of standardised ridge predictions made out of group (subject): every row is
    predicted by a model fitted on the other groups of an outer ``GroupKFold``, its alpha picked by
    an inner group-wise CV (frame-wise CV on correlated video frames picks far too small alphas)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(groups)) < 2 * folds:
        raise ValueError(f"grouped_r2 needs at least {2 * folds} groups for {folds}-fold nested CV, "
                         f"got {len(np.unique(groups))}")
    pred = np.zeros_like(y, dtype=float)
    for fit, held in GroupKFold(folds).split(x, y, groups):
        search = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": alphas},
                              cv=GroupKFold(folds), scoring="r2")
        search.fit(x[fit], y[fit], groups=groups[fit])
        pred[held] = search.predict(x[held]).reshape(len(held), -1)
    return np.array([r2_score(y[:, j], pred[:, j]) for j in range(y.shape[1])])


def embedding_r2(phi: np.ndarray, psi: np.ndarray, truth: Any, subjects: np.ndarray) -> dict[str, float]:
    """``r2_{phi,psi}_{au,pose}``: mean out-of-subject R² of φ and ψ for the AU intensities that vary
    in ``truth`` (rows aligned with the embeddings) and for yaw, pitch and roll."""
    aus = [c for c in truth.columns if c.startswith("au") and float(truth[c].std()) > 0]
    out = {}
    for name, target in (("au", truth[aus].to_numpy(float)), ("pose", truth[list(POSE)].to_numpy(float))):
        for emb_name, emb in (("phi", phi), ("psi", psi)):
            out[f"r2_{emb_name}_{name}"] = float(grouped_r2(emb, target, subjects).mean())
    return out
