"""Pretraining on the probe's own dataset stays inside the probe's fold (no test subject, even unlabelled)."""
from __future__ import annotations

from affectlab.config import compose
from affectlab.methods.base import probe_split_keys


def test_tcae_pretraining_on_bp4d_uses_the_probe_fold():
    from affectlab.methods.tcae import pretrain_datamodule

    cfg = compose(["METHOD=tcae", "data.fold=3", "method.pretrain_data=bp4d"])
    assert pretrain_datamodule(cfg).cfg.fold == 3  # was always fold 1: fold 3's test subjects in pretraining
    assert probe_split_keys(cfg, "videos") == {} and probe_split_keys(cfg, None) == {}
    assert probe_split_keys(compose(["METHOD=region_relation", "data.fold=2"]), "bp4d") == {"fold": 2}
