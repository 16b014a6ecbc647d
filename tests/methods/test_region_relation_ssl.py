"""Our anti-collapse and masked-image-modelling switches of region_relation, against loop references."""
from __future__ import annotations

import pytest
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


def test_masked_view_gives_view_one_features_from_the_masked_forward():
    from affectlab.methods.region_relation import RegionRelationPretrain

    with pytest.raises(ValueError, match="masked_view needs mim_weight"):
        RegionRelationPretrain(_cfg(masked_view=True, mim_weight=0.0), NAMES)
    batch = {"image": torch.randn(4, 3, 32, 32), "landmarks": template_landmarks(32, 4)}
    terms = {}
    for masked in (False, True):  # mask ratio 0: the masked forward is the plain forward
        torch.manual_seed(0)
        module = RegionRelationPretrain(_cfg(masked_view=masked, mim_weight=1.0, mim_mask_ratio=0.0), NAMES).eval()
        torch.manual_seed(1)
        terms[masked] = module.losses(batch, update_prior=False)
    assert torch.allclose(terms[True]["region"], terms[False]["region"], atol=1e-6)
    torch.manual_seed(0)
    module = RegionRelationPretrain(_cfg(masked_view=True, mim_weight=1.0, mim_mask_ratio=1.0), NAMES).eval()
    seen = []
    module.encoder.region.register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    module.losses(batch, update_prior=False)
    # view 1: every token masked, so its feature map no longer depends on the image content
    other = module.encoder.features(torch.randn(4, 3, 32, 32), torch.ones(4, 8, 8, dtype=torch.bool), module.mask_token)
    assert torch.allclose(seen[0], other, atol=1e-5)


def test_channel_jitter_is_a_per_channel_affine_map_within_its_range():
    from affectlab.models.region_relation import TwoViewAugment

    torch.manual_seed(0)
    images = torch.rand(5, 3, 16, 16)
    out, _ = TwoViewAugment(min_scale=1.0, flip_p=0.0, brightness=0.0, contrast=0.0, channel=0.3)(
        images, template_landmarks(16, 5))
    a, b = images.flatten(2), out.flatten(2)
    gain = (b[..., 1] - b[..., 0]) / (a[..., 1] - a[..., 0])
    offset = b[..., 0] - gain * a[..., 0]
    assert torch.allclose(b, gain[..., None] * a + offset[..., None], atol=1e-4)
    assert ((gain - 1).abs() <= 0.3 + 1e-4).all() and (offset.abs() <= 0.3 + 1e-4).all()
    assert (gain.std(dim=1) > 0).all()  # the channels move differently


def test_normalised_mim_target_is_each_cell_standardised_per_channel():
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(0)
    module = RegionRelationPretrain(_cfg(mim_weight=1.0, mim_mask_ratio=1.0, mim_norm_target=True), NAMES)
    for p in module.mim_decoder.parameters():
        torch.nn.init.zeros_(p)  # prediction 0 → the loss is the mean |normalised target|
    images = torch.rand(2, 3, 32, 32) * 3 + 1
    loss = module.mim_loss(images)
    total = 0.0
    for i in range(0, 32, 8):  # cells of 8×8 pixels (reduction 8), every one masked
        for j in range(0, 32, 8):
            cell = images[:, :, i:i + 8, j:j + 8].flatten(2)
            z = (cell - cell.mean(-1, keepdim=True)) / (cell.var(-1, keepdim=True) + 1e-6).sqrt()
            total += float(z.abs().sum())
    assert abs(float(loss.detach()) - total / images.numel()) < 1e-4


def test_au_guided_mask_has_the_exact_count_and_prefers_au_regions():
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(0)
    module = RegionRelationPretrain(_cfg(mim_weight=1.0, mim_mask_ratio=0.25, mim_mask_guide="au",
                                         small_embed_dim=16), NAMES)
    landmarks = template_landmarks(32, 512)
    cells = module.mask_cells(512, landmarks, torch.device("cpu"))
    assert cells.shape == (512, 4, 4) and cells.dtype == torch.bool
    assert (cells.flatten(1).sum(1) == 4).all()  # round(0.25 · 16) per image, without replacement
    union = module.encoder.attention_maps(landmarks[:1]).amax(1)[0]  # (4, 4)
    freq = cells.float().mean(0)
    inside, outside = union > 0.3, union == 0
    assert inside.any() and outside.any()
    assert freq[inside].min() > 4 * freq[outside].max()
    # the masking frequency follows the map: the strongest cell is masked at least as often as the weakest inside
    assert freq.flatten()[union.flatten().argmax()] >= freq[inside].min()
    with pytest.raises(ValueError, match="needs the landmarks"):
        module.mask_cells(2, None, torch.device("cpu"))
    module.cfg.method.mim_mask_guide = "context"  # the complement: cells outside the regions first
    freq = module.mask_cells(512, landmarks, torch.device("cpu")).float().mean(0)
    assert freq[outside].min() > 1.5 * freq[union >= union.max() - 1e-6].max()
    with pytest.raises(ValueError, match="mim_mask_guide"):
        RegionRelationPretrain(_cfg(mim_weight=1.0, mim_mask_guide="edges"), NAMES)


def test_region_mim_matches_a_loop_reference_and_trains_the_region_block():
    from affectlab.methods.region_relation import RegionRelationPretrain
    from affectlab.models.au_attention import au_attention_maps

    torch.manual_seed(0)
    for target in ("all", "masked"):
        module = RegionRelationPretrain(_cfg(mim_weight=0.0, region_mim_weight=1.0, region_mim_target=target,
                                             region_mim_size=8), NAMES)
        tokens = torch.randn(2, 4, module.encoder.out_channels)
        images = torch.randn(2, 3, 32, 32)
        landmarks = template_landmarks(32, 2)
        pixel_mask = torch.zeros(2, 1, 32, 32)
        pixel_mask[:, :, :16] = 1  # top half masked
        loss = module.region_mim_loss(tokens, images, landmarks, pixel_mask)
        small = F.avg_pool2d(images, 4)  # 32 → 8
        maps = au_attention_maps(landmarks, NAMES, (32, 32), (8, 8), xi=module.encoder.attention_xi)
        num = den = 0.0
        for b in range(2):
            for k in range(4):
                pred = (tokens[b, k] @ module.region_decoder_weight[k] + module.region_decoder_bias[k]).view(3, 8, 8)
                w = maps[b, k] * (1.0 if target == "all" else torch.cat([torch.ones(4, 8), torch.zeros(4, 8)]))
                num = num + ((pred - small[b]).abs() * w).sum()
                den = den + 3 * w.sum()
        assert torch.allclose(loss, num / den, atol=1e-5)
    batch = {"image": torch.randn(4, 3, 32, 32), "landmarks": template_landmarks(32, 4)}
    module = RegionRelationPretrain(_cfg(mim_weight=0.0, region_mim_weight=1.0, region_weight=0.0, ot_weight=0.0),
                                    NAMES)
    terms = module.losses(batch, update_prior=True)
    assert set(terms) >= {"region_mim", "loss"} and "mim" not in terms
    terms["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.encoder.region.parameters())
    assert module.encoder.features.swin.patch_embed.proj.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="region_mim_target=masked needs"):
        RegionRelationPretrain(_cfg(region_mim_weight=1.0, region_mim_target="masked", mim_mask_ratio=0.0), NAMES)


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
    with pytest.raises(ValueError, match="masked_view needs two_view_grad=full"):
        RegionRelationPretrain(_cfg(mim_weight=1.0, masked_view=True, two_view_grad="region"), NAMES)


def test_mim_visible_weight_adds_the_l1_of_the_visible_pixels():
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(0)
    module = RegionRelationPretrain(_cfg(mim_weight=1.0, mim_mask_ratio=0.5, mim_visible_weight=0.3), NAMES)
    for p in module.mim_decoder.parameters():
        torch.nn.init.zeros_(p)  # prediction 0
    images = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    loss = module.mim_loss(images)
    torch.manual_seed(1)
    cells = torch.rand(2, 4, 4) < 0.5
    pixels = cells.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None].expand_as(images)
    expected = images.abs()[pixels].mean() + 0.3 * images.abs()[~pixels].mean()
    assert torch.allclose(loss, expected, atol=1e-6)
    with pytest.raises(ValueError, match="must be >= 0"):
        RegionRelationPretrain(_cfg(mim_weight=1.0, mim_visible_weight=-1.0), NAMES)
