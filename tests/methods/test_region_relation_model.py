"""Swin region encoder, view augmentation, checkpoint loading, 2-step fits and the full method."""
from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from affectlab.models.au_attention import FLIP_49, template_landmarks, to_49
from affectlab.models.region_relation import (
    AURegionPooling,
    RegionRelationEncoder,
    TwoViewAugment,
    build_swin,
    load_backbone_checkpoint,
)

AUS = ["AU01", "AU06", "AU12", "AU17"]


def _coordinate_image(size: int) -> torch.Tensor:
    """Channel 0 holds each pixel's x index, channel 1 its y index (bilinear resampling keeps them)."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32),
                            indexing="ij")
    return torch.stack([xs, ys, torch.zeros_like(xs)])


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_augmented_landmarks_follow_the_pixels(flip_p):
    torch.manual_seed(0)
    size = 64
    images = _coordinate_image(size).expand(6, 3, size, size).clone()
    lm68 = template_landmarks(size, 6)
    augment = TwoViewAugment(min_scale=0.7, flip_p=flip_p, brightness=0.0, contrast=0.0)
    out, lm = augment(images, lm68)
    source = to_49(lm68)
    if flip_p == 1.0:
        source = source[:, FLIP_49]  # point i of the flipped face is the mirror of point FLIP_49[i]
    inside = ((lm >= 0) & (lm <= size - 1)).all(-1)
    assert inside.float().mean() > 0.8
    for b in range(6):
        for i in torch.nonzero(inside[b]).flatten().tolist():
            x, y = lm[b, i]
            # sample the coordinate image bilinearly at the predicted landmark position
            grid = torch.tensor([[[[2 * (x + 0.5) / size - 1, 2 * (y + 0.5) / size - 1]]]])
            value = torch.nn.functional.grid_sample(out[b:b + 1, :2], grid, align_corners=False)[0, :, 0, 0]
            assert torch.allclose(value, source[b, i], atol=0.05), (b, i, value, source[b, i])


def test_encoder_shapes_and_region_blocks():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 64, 64)
    lm = template_landmarks(64, 2)
    for block in ("swin", "none"):
        enc = RegionRelationEncoder(AUS, 64, region_block=block, small_embed_dim=16, small_heads=[2, 2])
        feats = enc(images, lm)
        assert feats.shape == (2, 4, 32) and torch.isfinite(feats).all()
    with pytest.raises(ValueError, match="expected 64×64"):
        enc(torch.randn(1, 3, 32, 32), lm[:1])
    with pytest.raises(ValueError, match="region block"):
        AURegionPooling(8, (4, 4), block="gcn")


def test_pooling_without_block_is_the_map_weighted_mean():
    features = torch.randn(2, 5, 4, 4)
    maps = torch.rand(2, 3, 4, 4)
    pooled = AURegionPooling(5, (4, 4), block="none")(features, maps)
    expected = torch.stack([
        torch.stack([(features[b] * maps[b, k]).sum((1, 2)) / maps[b, k].sum() for k in range(3)]) for b in range(2)
    ])
    assert torch.allclose(pooled, expected, atol=1e-6)


def test_paper_backbone_is_timm_swin_tiny_with_stage_choice():
    enc = RegionRelationEncoder(AUS, 224, backbone="swin_tiny_patch4_window7_224", feature_stage=3,
                                region_block="none")
    assert type(enc.features.swin).__name__ == "SwinTransformer"
    assert enc.out_channels == 384 and enc.map_size == (14, 14)
    with pytest.raises(ValueError, match="Swin"):
        build_swin("resnet18", 64)


def test_local_checkpoint_is_loaded_and_bad_ones_are_refused(tmp_path):
    torch.manual_seed(0)
    source = build_swin("small", 64, embed_dim=16, num_heads=(2, 2))
    path = tmp_path / "swin.pth"
    torch.save({"state_dict": {**source.state_dict(), "head.fc.weight": torch.zeros(3, 32)}}, path)
    torch.manual_seed(1)
    target = build_swin("small", 64, embed_dim=16, num_heads=(2, 2), checkpoint=str(path))
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    other = tmp_path / "other.pth"
    torch.save(build_swin("small", 64, embed_dim=24, num_heads=(2, 2)).state_dict(), other)
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_backbone_checkpoint(target, other)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_swin("small", 64, checkpoint=str(tmp_path / "missing.pth"))


def _tiny_cfg(**method):
    from affectlab.config import compose

    keys = {"method.small_embed_dim": 16, "method.small_heads": "[2,2]", "method.projector_hidden": 32,
            "method.projection_dim": 16, "method.predictor_hidden": 8, **{f"method.{k}": v for k, v in method.items()}}
    return compose(["METHOD=region_relation", "DATA=toyau", "data.image_size=32",
                    "method.region_aus=[AU01,AU02,AU04,AU06]", "method.landmarks_source=template",
                    *[f"{k}={v}" for k, v in keys.items()]])


def _batches(n: int = 8):
    g = torch.Generator().manual_seed(0)
    items = [{"image": torch.randn(3, 32, 32, generator=g), "landmarks": template_landmarks(32)[0],
              "au": (torch.rand(4, generator=g) > 0.5).float(), "au_mask": torch.ones(4, dtype=torch.bool)}
             for _ in range(n)]
    return DataLoader(items, batch_size=4)


SPEC = {"region_weight": 1.0, "ot_weight": 1.0, "mim_weight": 0.0, "ot_features": "projection"}


@pytest.mark.parametrize("variant", [{}, SPEC, {**SPEC, "head_bn": "per_au", "projector_output_bn": True, "ot_siamese": True},
                                     {**SPEC, "ot_prior": "labels", "landmarks_source": "sample"}])
def test_two_step_pretrain_fit_with_the_small_swin(tmp_path, variant):
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(0)
    cfg = _tiny_cfg(**variant)
    module = RegionRelationPretrain(cfg, ["AU01", "AU02", "AU04", "AU06"])
    module.artifact_dir = tmp_path
    before = {k: v.clone() for k, v in module.encoder.state_dict().items()}
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, train_dataloaders=_batches())
    assert torch.isfinite(trainer.callback_metrics["train/loss_step"])
    changed = [k for k, v in module.encoder.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert any("swin.layers" in k for k in changed)
    # the region block is trained by the two-view terms only; the default (MIM-only) leaves it random
    assert any("region" in k for k in changed) == (module.cfg.method.region_weight > 0)
    assert int(module.prior.plan_updates) == 2
    assert torch.allclose(module.relation_matrix().sum(-1), torch.ones(4), atol=1e-3)
    if variant.get("ot_prior") == "labels":
        assert module.prior.relation() is not None and module.prior.on_given_labelled.sum() > 0
    rows = (tmp_path / "au_relation.csv").read_text().splitlines()
    assert rows[0] == "au,AU01,AU02,AU04,AU06" and len(rows) == 5
    assert (tmp_path / "au_relation.png").stat().st_size > 1000


def test_bad_switch_value_is_refused():
    from affectlab.methods.region_relation import RegionRelationPretrain

    with pytest.raises(ValueError, match="ot_prior must be one of plans | labels | none"):
        RegionRelationPretrain(_tiny_cfg(ot_prior="graph"), ["AU01"])


def test_probe_freezes_the_encoder_and_finetune_does_not():
    from affectlab.methods.region_relation import RegionRelationPretrain, RegionRelationProbe

    names = ["AU01", "AU02", "AU04", "AU06"]
    for mode in ("linear", "finetune"):
        cfg = _tiny_cfg(probe_mode=mode)
        enc = RegionRelationPretrain(cfg, names).encoder
        probe = RegionRelationProbe(cfg, enc, names, torch.full((4,), 0.25))
        probe.train()
        assert probe.encoder.training == (mode == "finetune")
        batch = next(iter(_batches()))
        loss = probe.au_loss(probe.logits(batch), batch)
        loss.backward()
        grads = [p.grad for p in probe.encoder.parameters()]
        assert all(g is None for g in grads) if mode == "linear" else any(g is not None for g in grads)
        assert torch.allclose(probe.pos_weight, torch.full((4,), 3.0))


def test_train_command_pretrains_then_probes_and_records(tmp_path):
    from affectlab.engine.runner import train

    cfg = _tiny_cfg(pretrain_epochs=1, probe_epochs=1)
    cfg.run_root = str(tmp_path)
    cfg.leaderboard.enabled = False
    cfg.logger.wandb.enabled = False
    cfg.trainer.limit_train_batches = 2
    cfg.trainer.limit_val_batches = 1
    cfg.trainer.enable_progress_bar = False
    record = train(cfg)
    assert record["method"] == "region_relation"
    assert set(record["metrics"]) >= {"f1_au01", "f1_au04", "f1_mean"}
    assert not any(k.startswith("relation_") for k in record["metrics"])  # no generator ground truth here
    run_dir = tmp_path / "region_relation" / "toyau"
    (run,) = list(run_dir.iterdir())
    assert (run / "artifacts" / "au_relation.csv").is_file()
    assert {p.name for p in (run / "stages").iterdir()} == {"pretrain", "probe"}
    assert json.loads((run / "results.json").read_text())["metrics"]["f1_mean"] == pytest.approx(record["metrics"]["f1_mean"])


def test_bp4d_release_with_landmarks_runs_both_stages(tmp_path):
    """The BP4D datamodule's 49-point landmarks feed the AU maps; 12 AUs are probed and recorded. Beside a
    generator's ground truth (a synthetic release), the learned relation's agreement with the true AU
    co-occurrence is recorded too, equal to that of the learned (and exported) matrix."""
    import sys
    from pathlib import Path

    import numpy as np
    import pandas as pd

    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    import releases

    from affectlab.config import compose
    from affectlab.engine.runner import train
    from affectlab.evaluation.relation_agreement import groundtruth_cooccurrence, relation_agreement

    root = tmp_path / "BP4D"
    releases.write_bp4d(root, subjects=["F001", "F002", "F003", "F005", "F004", "F006"], tasks=("T1",), n_frames=6)
    aus = ["au01", "au02", "au04", "au06", "au07", "au10", "au12", "au14", "au15", "au17", "au23", "au24"]
    (tmp_path / "groundtruth").mkdir()
    rng = np.random.default_rng(0)
    pd.DataFrame(rng.random((200, 12)) * (rng.random((200, 12)) < 0.4) * 3, columns=aus).to_csv(
        tmp_path / "groundtruth" / "bp4d.csv.gz", index=False)
    (tmp_path / ".complete-bp4d").write_text("3\n")  # what makes the release synthetic
    cfg = compose(["METHOD=region_relation", "DATA=bp4d", f"data.root={root}", "data.batch_size=4",
                   "data.num_workers=0", "data.image_size=32", "method.small_embed_dim=16", "method.small_heads=[2,2]",
                   "method.pretrain_epochs=1", "method.probe_epochs=1", "trainer.limit_train_batches=2",
                   "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false", f"run_root={tmp_path / 'runs'}",
                   "leaderboard.enabled=false", "logger.wandb.enabled=false"])
    record = train(cfg)
    assert len([k for k in record["metrics"] if k.startswith("f1_au")]) == 12
    (run,) = list((tmp_path / "runs" / "region_relation" / "bp4d").iterdir())
    header = (run / "artifacts" / "au_relation.csv").read_text().splitlines()[0]
    assert header.split(",")[1:] == ["AU01", "AU02", "AU04", "AU06", "AU07", "AU10", "AU12", "AU14", "AU15",
                                     "AU17", "AU23", "AU24"]
    # the exact learned matrix is the pretraining checkpoint's running plan (the CSV keeps 6 decimals)
    state = torch.load(run / "stages" / "pretrain" / "last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    learned = state["prior.mean_plan"].double().numpy()
    exported = pd.read_csv(run / "artifacts" / "au_relation.csv", index_col=0).to_numpy(dtype=np.float64)
    assert np.allclose(exported, learned, atol=1e-6)
    names = [a.upper() for a in aus]
    expected = relation_agreement(learned, groundtruth_cooccurrence(root, "bp4d", names), names)
    for key, value in expected.items():
        assert record["metrics"][key] == pytest.approx(value, abs=1e-5), key


def test_pairs_batches_use_the_two_frames_as_views():
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(0)
    cfg = _tiny_cfg(pretrain_task="pairs", aug_flip_p=0.0, aug_min_scale=1.0, aug_brightness=0.0, aug_contrast=0.0)
    module = RegionRelationPretrain(cfg, ["AU01", "AU02", "AU04", "AU06"])
    seen = []
    forward = module.encoder.forward
    module.encoder.forward = lambda images, landmarks: seen.append(images) or forward(images, landmarks)
    source, target = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    terms = module.losses({"source": source, "target": target}, update_prior=False)
    assert torch.isfinite(terms["loss"])
    # identity augmentation (scale 1, no flip, no jitter): the views are exactly the two frames
    assert torch.allclose(seen[0], source, atol=1e-5) and torch.allclose(seen[1], target, atol=1e-5)
