"""Expression recognition split by the synthetic generator's intensity band (low / medium / high; the
Neutral clips have none): where an intensity-aware loss is meant to help (IAL paper, Sec. 3)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

BANDS = ("low", "medium", "high")


def clip_bands(release_root: Path, dataset: str) -> Optional[dict[str, str]]:
    """Clip id → band, from the generator's ``groundtruth/<dataset>.csv.gz`` beside a synthetic release;
    None for a release without that table (a real one). The clip id is the table's ``sequence``, the id
    the datamodules give a clip (DFEW ``00001``; FERV39k ``Scene/Class/0000``, whose folder names repeat
    across scenes and classes). Neutral clips map to ``"none"``. A clip with two bands is a corrupt table
    and raises, naming the file."""
    import pandas as pd

    from affectlab.synth import release_groundtruth_path

    table = release_groundtruth_path(release_root, dataset)
    if not table.is_file():
        return None
    gt = pd.read_csv(table, usecols=["sequence", "band"], dtype={"sequence": str, "band": str})
    bands = gt["band"].fillna("none").replace("", "none").groupby(gt["sequence"]).agg(lambda s: sorted(set(s)))
    mixed = bands[bands.map(len) != 1]
    if len(mixed):
        raise ValueError(f"{table}: clips with more than one intensity band: {mixed.head().to_dict()}")
    return {clip: values[0] for clip, values in bands.items()}


def band_scores(labels: Sequence[int], preds: Sequence[int], bands: Sequence[str]) -> dict[str, float]:
    """``uar_<band>`` (mean recall over the classes present in the band) and ``war_<band>`` (accuracy)
    for every band of :data:`BANDS` with at least one clip."""
    labels, preds, bands = np.asarray(labels), np.asarray(preds), np.asarray(bands)
    out: dict[str, float] = {}
    for band in BANDS:
        keep = bands == band
        if not keep.any():
            continue
        y, p = labels[keep], preds[keep]
        out[f"uar_{band}"] = float(np.mean([np.mean(p[y == c] == c) for c in np.unique(y)]))
        out[f"war_{band}"] = float(np.mean(p == y))
    return out
