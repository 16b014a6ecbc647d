"""IAL test pass split by the synthetic generator's intensity band, and its place in `make evidence`."""
from __future__ import annotations

import pandas as pd
import pytest
import torch

from affectlab.evaluation.intensity_bands import band_scores, clip_bands


def test_band_scores_are_uar_over_present_classes_and_accuracy_per_band():
    labels = [0, 0, 1, 2, 1, 1, 0]
    preds = [0, 1, 1, 2, 0, 1, 0]
    bands = ["low", "low", "low", "high", "high", "high", "none"]
    got = band_scores(labels, preds, bands)
    # low: class 0 recall 1/2, class 1 recall 1/1 → UAR 0.75, WAR 2/3; high: class 2 1/1, class 1 1/2
    assert got == pytest.approx({"uar_low": 0.75, "war_low": 2 / 3, "uar_high": 0.75, "war_high": 2 / 3})
    assert "uar_medium" not in got and "uar_none" not in got  # no clip / Neutral: no band score


def test_clip_bands_read_the_generator_ground_truth_beside_a_synthetic_release(tmp_path):
    release = tmp_path / "DFEW"
    release.mkdir()
    assert clip_bands(release, "dfew") is None  # a real release has no generator table
    (tmp_path / "groundtruth").mkdir()
    rows = [("00001", "Clip/clip_224x224/00001/00001_00001.jpg", "low"),
            ("00001", "Clip/clip_224x224/00001/00001_00002.jpg", "low"),
            ("00002", "Clip/clip_224x224/00002/00002_00001.jpg", None)]
    columns = ["sequence", "path", "band"]
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "groundtruth" / "dfew.csv.gz", index=False)
    assert clip_bands(release, "dfew") == {"00001": "low", "00002": "none"}
    rows.append(("00002", "Clip/clip_224x224/00002/00002_00002.jpg", "high"))
    pd.DataFrame(rows, columns=columns).to_csv(tmp_path / "groundtruth" / "dfew.csv.gz", index=False)
    with pytest.raises(ValueError, match="dfew.csv.gz: clips with more than one intensity band"):
        clip_bands(release, "dfew")


@pytest.mark.parametrize("dataset, folder", [("dfew", "DFEW"), ("ferv39k", "FERV39k")])
def test_every_synthetic_test_clip_has_its_own_band(synth_root, dataset, folder):
    """The bands are keyed by the clip id the datamodule gives: FERV39k's clip folders (0000, 0001, …) repeat
    across scenes and classes, so keying by folder name merged clips (a ValueError on every FERV39k copy)."""
    from data_modules import create_datamodule

    dm = create_datamodule(dataset, root=str(synth_root / folder), num_workers=0, batch_size=4)
    clips = [str(c) for c in dm.manifest("test")["clip"]]
    bands = clip_bands(dm.root, dataset)
    assert set(clips) <= set(bands)
    assert set(bands.values()) <= {"low", "medium", "high", "none"} and len(set(bands.values())) > 1
    truth = pd.read_csv(synth_root / "groundtruth" / f"{dataset}.csv.gz", usecols=["sequence", "path", "band"])
    for clip in clips[:5]:   # the band of the clip's own frames
        rows = truth[truth["path"].str.contains(f"/{clip}/", regex=False)]
        assert len(rows) and set(rows["band"].fillna("none")) == {bands[clip]}


def test_ial_module_scores_its_test_clips_per_band_and_names_unknown_clips():
    from omegaconf import OmegaConf

    from affectlab.config import TrainerConfig
    from affectlab.methods.ial import IALConfig, IALModule

    cfg = OmegaConf.create({
        "method": OmegaConf.structured(IALConfig(name="ial", preset="small")),
        "data": {"name": "dfew", "fold": 1, "image_size": 32, "clip_segments": 4, "clip_frames_per_segment": 1},
        "trainer": OmegaConf.structured(TrainerConfig())})
    module = IALModule(cfg, ["Happy", "Sad"])
    assert module.band_metrics() == {}  # real data: no bands
    module.clip_bands = {"a": "low", "b": "low", "c": "high"}
    module._test_rows = [(["a", "b"], torch.tensor([0, 1]), torch.tensor([0, 0])), (["c"], torch.tensor([1]),
                                                                                    torch.tensor([1]))]
    assert module.band_metrics() == pytest.approx({"uar_low": 0.5, "war_low": 0.5, "uar_high": 1.0, "war_high": 1.0})
    module._test_rows.append((["zz"], torch.tensor([0]), torch.tensor([0])))
    with pytest.raises(ValueError, match="zz"):
        module.band_metrics()


def test_evidence_tables_the_breakdown_metrics_per_arm():
    from affectlab.evidence.arms import Arm
    from affectlab.evidence.collect import _arm_entry, _refresh
    from affectlab.evidence.report import markdown
    from affectlab.methods import METHODS

    assert METHODS.get("ial").evidence.breakdown[:3] == ("uar_low", "uar_medium", "uar_high")
    result = {"method": "ial", "dataset": "dfew", "fold": 1, "metric": "uar", "breakdown": ["uar_low", "uar_high"],
              "command": "x", "overrides": [], "seeds": [0, 1], "seed_keys": ["seed"], "data_source": "s",
              "git_commit": "abc", "finished": "now",
              "arms": [_arm_entry(Arm("default"), "uar"), _arm_entry(Arm("chance", trivial="chance"), "uar")]}
    result["arms"][0]["runs"] = [{"seed": 0, "value": 0.3, "breakdown": {"uar_low": 0.2, "uar_high": 0.4}},
                                 {"seed": 1, "value": 0.4, "breakdown": {"uar_low": 0.4, "uar_high": 0.6}}]
    result["arms"][1]["runs"] = [{"seed": None, "value": 1 / 7, "breakdown": {}}]
    _refresh(result)
    low = result["arms"][0]["breakdown"]["uar_low"]
    assert low["mean"] == pytest.approx(0.3) and low["sd"] == pytest.approx(0.1414213, rel=1e-5)
    md = markdown(result)
    assert "| arm | uar_low | uar_high |" in md
    assert "| default | 0.300 ± 0.141 | 0.500 ± 0.141 |" in md and "| chance | – | – |" in md
