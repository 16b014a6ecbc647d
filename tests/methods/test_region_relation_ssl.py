"""Our anti-collapse and masked-image-modelling switches of region_relation, against loop references."""
from __future__ import annotations

import torch

from affectlab.config import compose
from affectlab.losses.region_relation import masked_mean
from affectlab.models.au_attention import template_landmarks

NAMES = ["AU01", "AU02", "AU04", "AU06"]


def _cfg(**method):
    keys = {"method.small_embed_dim": 16, "method.small_heads": "[2,2]", "method.projector_hidden": 32,
            "method.projection_dim": 16, "method.predictor_hidden": 8, **{f"method.{k}": v for k, v in method.items()}}
    return compose(["METHOD=region_relation", "DATA=toyau", "data.image_size=32",
                    "method.region_aus=[AU01,AU02,AU04,AU06]", "method.landmarks_source=template",
                    *[f"{k}={v}" for k, v in keys.items()]])


def test_token_mask_replaces_exactly_the_masked_tokens():
    from affectlab.models.region_relation import RegionRelationEncoder

    torch.manual_seed(0)
    enc = RegionRelationEncoder(NAMES, 32, small_embed_dim=16, small_heads=[2, 2]).eval()
    images = torch.randn(2, 3, 32, 32)
    token = torch.randn(16)
    plain = enc.features(images)
    none_masked = enc.features(images, torch.zeros(2, 8, 8, dtype=torch.bool), token)
    assert torch.allclose(plain, none_masked)
    embedded = []
    enc.features.swin.layers[0].register_forward_pre_hook(lambda mod, args: embedded.append(args[0]))
    mask = torch.zeros(2, 8, 8, dtype=torch.bool)
    mask[0, 2, 3] = True
    enc.features(images, mask, token)
    assert torch.equal(embedded[0][0, 2, 3], token)
    assert torch.equal(embedded[0][~mask], enc.features.swin.patch_embed(images)[~mask])


def test_mim_loss_is_l1_on_masked_pixels_and_trains_the_backbone():
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(0)
    module = RegionRelationPretrain(_cfg(mim_weight=1.0, mim_mask_ratio=0.5), NAMES)
    for p in module.mim_decoder.parameters():
        torch.nn.init.zeros_(p)  # prediction 0 → the loss is the mean |pixel| over masked pixels
    images = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    loss = module.mim_loss(images)
    torch.manual_seed(1)
    cells = torch.rand(2, 4, 4) < 0.5  # the same draw: feature map 4×4 at reduction 8
    pixels = cells.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None].expand_as(images)
    assert torch.allclose(loss, images.abs()[pixels].mean(), atol=1e-6)
    torch.nn.init.normal_(module.mim_decoder[0].weight, std=0.1)
    module.mim_loss(images).backward()
    assert module.mask_token.grad is not None and module.mask_token.grad.abs().sum() > 0
    assert module.encoder.features.swin.patch_embed.proj.weight.grad.abs().sum() > 0


def test_two_view_terms_with_zero_weight_build_no_graph():
    from affectlab.methods.region_relation import RegionRelationPretrain

    batch = {"image": torch.randn(4, 3, 32, 32), "landmarks": template_landmarks(32, 4)}
    for region_weight, expect_grad in ((0.0, False), (1.0, True)):
        torch.manual_seed(0)
        module = RegionRelationPretrain(_cfg(mim_weight=1.0, region_weight=region_weight, ot_weight=0.0), NAMES)
        terms = module.losses(batch, update_prior=True)
        terms["loss"].backward()
        projector_grad = any(p.grad is not None for p in module.projector.parameters())
        assert projector_grad == expect_grad
        assert int(module.prior.plan_updates) == 1  # the relation matrix is updated either way
        assert torch.isfinite(terms["region"]) and torch.isfinite(terms["mim"])


def test_per_au_batchnorm_resists_a_per_au_constant_and_matches_a_loop_reference():
    from affectlab.models.region_relation import TokenBatchNorm

    torch.manual_seed(0)
    constant = torch.randn(1, 3, 4).expand(6, 3, 4)  # the same for every image, different per AU
    shared, per_au = TokenBatchNorm(4, 3, "shared").train(), TokenBatchNorm(4, 3, "per_au").train()
    assert shared(constant).abs().max() > 0.5  # shared statistics see the spread over the AUs
    assert per_au(constant).abs().max() < 1e-3
    x = torch.randn(6, 3, 4)
    out = per_au(x)
    for k in range(3):
        ref = (x[:, k] - x[:, k].mean(0)) / torch.sqrt(x[:, k].var(0, unbiased=False) + 1e-5)
        assert torch.allclose(out[:, k], ref, atol=1e-5)


def test_siamese_ot_stops_target_gradients_and_averages_both_directions():
    from affectlab.losses.optimal_transport import ot_relation_loss
    from affectlab.losses.region_relation import siamese_ot_loss

    torch.manual_seed(0)
    p1, p2, z1, z2 = (torch.randn(3, 4, 6, requires_grad=True) for _ in range(4))
    loss, plans = siamese_ot_loss(p1, p2, z1, z2, reg=0.1)
    l12, t12 = ot_relation_loss(p1, z2, reg=0.1)
    l21, t21 = ot_relation_loss(p2, z1, reg=0.1)
    assert torch.allclose(loss, 0.5 * (l12 + l21)) and torch.allclose(plans, 0.5 * (t12 + t21.transpose(-1, -2)))
    loss.backward()
    assert z1.grad is None and z2.grad is None
    assert p1.grad.abs().sum() > 0 and p2.grad.abs().sum() > 0


def test_two_view_grad_region_stops_the_two_view_terms_at_the_backbone():
    from affectlab.methods.region_relation import RegionRelationPretrain

    batch = {"image": torch.randn(4, 3, 32, 32), "landmarks": template_landmarks(32, 4)}
    for mode, backbone_grad in (("full", True), ("region", False)):
        torch.manual_seed(0)
        module = RegionRelationPretrain(_cfg(mim_weight=0.0, region_weight=1.0, ot_weight=1.0, two_view_grad=mode,
                                             ot_features="projection", ot_siamese=True), NAMES)
        terms = module.losses(batch, update_prior=True)
        terms["loss"].backward()
        grad = module.encoder.features.swin.patch_embed.proj.weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == backbone_grad
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.encoder.region.parameters())
        assert module.projector.fc1.weight.grad.abs().sum() > 0
    # the detached features are the backbone's own: the same region features as the full forward
    module.eval()
    images, lm = batch["image"], batch["landmarks"]
    assert torch.allclose(module.view_features(images, lm), module.encoder(images, lm))

def test_masked_mean_against_slices():
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, :4, :4] = 1
    assert torch.allclose(masked_mean(images, mask), images[0, :, :4, :4].mean())
    assert masked_mean(images, torch.zeros_like(mask)) == 0


def test_mim_only_pretraining_leaves_no_trainable_parameter_without_a_gradient():
    """The CPU default (MIM only): the two-view heads and the region block are frozen, as DDP
    (find_unused_parameters=False) would otherwise wait for their gradients at step 2."""
    from affectlab.methods.region_relation import RegionRelationPretrain

    batch = {"image": torch.randn(4, 3, 32, 32), "landmarks": template_landmarks(32, 4)}
    for region_weight in (0.0, 1.0):
        torch.manual_seed(0)
        module = RegionRelationPretrain(_cfg(mim_weight=1.0, region_weight=region_weight, ot_weight=0.0), NAMES)
        module.losses(batch, update_prior=True)["loss"].backward()
        assert [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None] == []
        assert all(p.requires_grad == bool(region_weight) for p in module.projector.parameters())


def test_swin_stages_after_the_feature_stage_are_frozen():
    from affectlab.models.region_relation import RegionRelationEncoder

    enc = RegionRelationEncoder(NAMES, 32, small_embed_dim=16, small_heads=[2, 2], feature_stage=1)
    swin = enc.features.swin
    assert all(p.requires_grad for p in swin.layers[0].parameters())
    assert not any(p.requires_grad for p in (*swin.layers[1].parameters(), *swin.norm.parameters()))
    enc(torch.randn(2, 3, 32, 32), template_landmarks(32, 2)).sum().backward()
    assert [n for n, p in enc.named_parameters() if p.requires_grad and p.grad is None] == []


def test_linear_probe_trains_on_the_frozen_encoder_in_eval_mode(synth_root, tmp_path, monkeypatch):
    """Lightning (>= 2.2) keeps each submodule's mode when a fit starts; the runner puts the stage in training
    mode, so the probe's own train() keeps the frozen encoder in eval mode (no stochastic depth) while it trains."""
    from affectlab.engine.runner import train
    from affectlab.methods.region_relation import RegionRelationProbe

    seen: list[tuple[bool, bool]] = []
    original = RegionRelationProbe.training_step

    def recording_step(self, batch, batch_idx):
        seen.append((self.training, self.encoder.training))
        return original(self, batch, batch_idx)

    monkeypatch.setattr(RegionRelationProbe, "training_step", recording_step)
    cfg = compose(["METHOD=region_relation", f"data.root={synth_root / 'BP4D'}", "data.num_workers=0",
                   "data.limit_items=48", "data.batch_size=8", "method.pretrain=false", "method.probe_epochs=1",
                   "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                   "logger.wandb.enabled=false", "leaderboard.enabled=false", f"run_root={tmp_path}"])
    train(cfg)
    assert seen and all(seen_probe and not seen_encoder for seen_probe, seen_encoder in seen), seen
