"""Our anti-collapse and masked-image-modelling switches of region_relation, against loop references."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from affectlab.losses.region_relation import per_au_info_nce, variance_covariance_loss
from affectlab.models.au_attention import template_landmarks

NAMES = ["AU01", "AU02", "AU04", "AU06"]


def _cfg(**method):
    from affectlab.config import compose

    keys = {"method.small_embed_dim": 16, "method.small_heads": "[2,2]", "method.projector_hidden": 32,
            "method.projection_dim": 16, "method.predictor_hidden": 8, **{f"method.{k}": v for k, v in method.items()}}
    return compose(["METHOD=region_relation", "DATA=toyau", "data.image_size=32",
                    "method.region_aus=[AU01,AU02,AU04,AU06]", "method.landmarks_source=template",
                    *[f"{k}={v}" for k, v in keys.items()]])


def test_variance_covariance_match_a_loop_reference():
    torch.manual_seed(0)
    z = torch.randn(6, 3, 5) * torch.tensor([0.2, 1.0, 3.0, 0.5, 1.5])
    variance, covariance = variance_covariance_loss(z, target_std=1.0, eps=1e-4)
    var_terms, cov_terms = [], []
    for k in range(3):
        x = z[:, k].double()
        x = x - x.mean(0)
        std = torch.sqrt(x.var(0) + 1e-4)
        var_terms.extend(max(0.0, 1.0 - float(s)) for s in std)
        c = x.T @ x / 5
        cov_terms.append(sum(float(c[i, j]) ** 2 for i in range(5) for j in range(5) if i != j) / 5)
    assert abs(float(variance) - sum(var_terms) / len(var_terms)) < 1e-5
    assert abs(float(covariance) - sum(cov_terms) / 3) < 1e-4
    collapsed, _ = variance_covariance_loss(torch.ones(6, 3, 5))
    assert abs(float(collapsed) - (1 - 1e-2)) < 1e-6  # std = sqrt(eps) everywhere


def test_per_au_info_nce_matches_a_loop_reference_and_prefers_matched_views():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 3, 8), torch.randn(5, 3, 8)
    loss = per_au_info_nce(z1, z2, temperature=0.5)
    terms = []
    for k in range(3):
        for i in range(5):
            s12 = torch.tensor([F.cosine_similarity(z1[i, k], z2[j, k], dim=0) for j in range(5)]) / 0.5
            s21 = torch.tensor([F.cosine_similarity(z2[i, k], z1[j, k], dim=0) for j in range(5)]) / 0.5
            terms.append(0.5 * (-torch.log_softmax(s12, 0)[i] - torch.log_softmax(s21, 0)[i]))
    assert torch.allclose(loss, torch.stack(terms).mean(), atol=1e-5)
    assert per_au_info_nce(z1, z1.clone(), 0.1) < per_au_info_nce(z1, z2, 0.1)


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
