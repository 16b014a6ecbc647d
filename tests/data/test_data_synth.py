"""Round trip against the synthetic generator's ground-truth tables (runs once branch `synth` is merged)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

synth = pytest.importorskip("affectlab.synth")
if not hasattr(synth, "generate"):
    pytest.skip("affectlab.synth.generate not available yet", allow_module_level=True)

from data_modules.bp4d import PARTS as BP4D_PARTS  # noqa: E402
from data_modules.disfa import PARTS as DISFA_PARTS  # noqa: E402
from releases import make  # noqa: E402


def groundtruth(root: Path, release: str) -> pd.DataFrame:
    for name in (release.lower(), release):
        p = root / "groundtruth" / f"{name}.csv.gz"
        if p.is_file():
            return pd.read_csv(p, dtype={"subject": str, "sequence": str, "path": str})
    raise FileNotFoundError(f"no ground truth for {release} under {root / 'groundtruth'}")


@pytest.mark.parametrize("fold,part", [(1, 3), (2, 2), (3, 1)])
def test_bp4d_fold_counts_match_groundtruth(synth_root, fold, part):
    gt = groundtruth(synth_root, "BP4D")
    dm = make("bp4d", synth_root / "BP4D", fold=fold)
    test = dm.manifest("test")
    assert len(test) == int(gt["subject"].isin(BP4D_PARTS[part]).sum())
    rel = {str(Path(p).relative_to(synth_root / "BP4D")) for p in test["path"]}
    assert rel <= set(gt["path"])


@pytest.mark.parametrize("fold,part", [(1, 3), (3, 1)])
def test_disfa_counts_and_sn010(synth_root, fold, part):
    gt = groundtruth(synth_root, "DISFA")
    full = make("disfa", synth_root / "DISFA", fold=fold).full_manifest()
    per = full.groupby("subject").size()
    gt_per = gt.groupby("subject").size()
    assert all(gt_per[s] - 1 <= per[s] <= gt_per[s] for s in per.index)
    others = per.drop("SN010")
    assert per["SN010"] == others.iloc[0] - 1 and (others == others.iloc[0]).all()
    test = make("disfa", synth_root / "DISFA", fold=fold).manifest("test")
    assert set(test["subject"]) == set(DISFA_PARTS[part])


def test_dfew_clips_and_labels_match_groundtruth(synth_root):
    gt = groundtruth(synth_root, "DFEW")
    clip_class = gt.groupby(gt["sequence"].map(lambda s: f"{int(s):05d}"))["expression"].first()
    seen = set()
    for k in range(1, 6):
        test = make("dfew", synth_root / "DFEW", fold=k).manifest("test")
        assert all(clip_class[c] == n for c, n in zip(test["clip"], test["class_name"]))
        seen |= set(test["clip"])
    assert seen <= set(clip_class.index)


def test_ferv39k_class_names_match_groundtruth(synth_root):
    gt = groundtruth(synth_root, "FERV39k")
    dm = make("ferv39k", synth_root / "FERV39k")
    full = dm.full_manifest()
    for clip, name, label in zip(full["clip"], full["class_name"], full["label"]):
        rows = gt[gt["path"].str.contains(clip, regex=False)]
        assert len(rows) and (rows["expression"] == name).all() and dm.class_names[label] == name
