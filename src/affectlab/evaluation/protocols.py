"""Evaluation protocols: how many folds each dataset's standard protocol has.

BP4D and DISFA: 3-fold subject-exclusive cross-validation; DFEW: its 5 official folds;
FERV39k: its single official split (datasets.md). Datamodules of other datasets declare
``num_folds`` or a ``protocol = "<name>/<K>fold"`` on their class.
"""
from __future__ import annotations

import re

PROTOCOL_FOLDS = {"bp4d": 3, "disfa": 3, "dfew": 5, "ferv39k": 1}


def num_folds(dataset: str) -> int:
    """Number of folds of ``dataset``'s protocol (1-based fold numbers ``1..K``)."""
    if dataset in PROTOCOL_FOLDS:
        return PROTOCOL_FOLDS[dataset]
    try:
        from data_modules import DATAMODULES

        cls = DATAMODULES.get(dataset)
    except Exception as err:  # noqa: BLE001 - report the lookup failure with the dataset name
        raise ValueError(f"dataset {dataset!r} has no known protocol: {err}") from None
    folds = getattr(cls, "num_folds", None)
    match = re.search(r"/(\d+)fold$", str(getattr(cls, "protocol", "")))
    if folds is None and match:
        folds = int(match.group(1))
    if not isinstance(folds, int) or folds < 1:
        raise ValueError(
            f"dataset {dataset!r} has no protocol: add it to PROTOCOL_FOLDS or set "
            f"`num_folds` on {cls.__name__}"
        )
    return folds


def protocol_name(dataset: str) -> str:
    k = num_folds(dataset)
    return f"{dataset}/{k}fold" if k > 1 else f"{dataset}/official"
