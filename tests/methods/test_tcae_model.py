"""TCAE network, warp, objective terms and curriculum window (hand-computed references)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from affectlab.losses.tcae import (
    EMBEDDING_TERMS,
    CurriculumWindow,
    TCAELossWeights,
    displacement_l1,
    l1_per_sample,
    mse_per_sample,
    per_sample_terms,
    tcae_objective,
    window_bounds,
    window_mean,
)
from affectlab.models.tcae import (
    PRESETS,
    TCAE,
    TCAENetConfig,
    count_parameters,
    fuse_fields,
    identity_grid,
    sampling_grid,
    warp,
)

torch.set_num_threads(1)


def test_paper_preset_has_official_parameter_counts():
    model = TCAE.from_preset("paper")
    assert count_parameters(model.encoder) == 8_035_488
    assert count_parameters(model.decoder_au) == 3_340_803
    assert count_parameters(model.decoder_pose) == 3_340_803
    assert count_parameters(model) == 14_717_094


def test_paper_encoder_and_decoder_shapes():
    model = TCAE.from_preset("paper").eval()
    with torch.no_grad():
        phi, psi = model.encoder(torch.rand(1, 3, 256, 256))
        delta, logit = model.decoder_au(phi, psi)
    assert phi.shape == psi.shape == (1, 256)
    assert delta.shape == (1, 2, 256, 256) and logit.shape == (1, 1, 256, 256)
    assert delta.abs().max() < 1 and logit.abs().max() < 1  # tanh-bounded


def test_bad_channel_lists_fail_with_the_key_names():
    with pytest.raises(ValueError, match="log2"):
        TCAE(TCAENetConfig(image_size=64, trunk_channels=[8, 16], branch_channels=[16, 16, 16]))
    with pytest.raises(ValueError, match="power of two"):
        TCAE(TCAENetConfig(image_size=100))


def test_identity_grid_is_linspace_x_then_y():
    grid = identity_grid(3)
    assert torch.equal(grid[0, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))  # x varies along width
    assert torch.equal(grid[0, 1, :, 0], torch.tensor([-1.0, 0.0, 1.0]))  # y varies along height


def test_zero_displacement_returns_the_input():
    image = torch.rand(2, 3, 16, 16)
    out = warp(image, torch.zeros(2, 2, 16, 16))
    assert torch.allclose(out, image, atol=1e-5)  # float rounding of linspace


def test_known_shift_moves_the_image_by_whole_pixels_and_clamps_at_the_border():
    size, shift_x, shift_y = 16, 3, 2
    image = torch.rand(1, 3, size, size)
    delta = torch.zeros(1, 2, size, size)
    step = 2.0 / (size - 1)  # one pixel in align_corners=True coordinates
    delta[:, 0] = shift_x * step
    delta[:, 1] = shift_y * step
    out = warp(image, delta)
    # backward warp: output(y, x) reads input(y + 2, x + 3)
    assert torch.allclose(out[..., : size - shift_y, : size - shift_x], image[..., shift_y:, shift_x:], atol=1e-5)
    # clamped grid: the last columns repeat the last input column
    assert torch.allclose(out[..., : size - shift_y, -1], image[..., shift_y:, -1], atol=1e-5)
    assert torch.allclose(out[..., : size - shift_y, -2], image[..., shift_y:, -1], atol=1e-5)


def test_half_pixel_shift_is_bilinear():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)
    delta = torch.zeros(1, 2, 4, 4)
    delta[:, 0] = 0.5 * 2.0 / 3
    out = warp(image, delta)
    assert torch.allclose(out[0, 0, 0, :3], torch.tensor([0.5, 1.5, 2.5]), atol=1e-5)


def small_model(seed: int = 0) -> TCAE:
    torch.manual_seed(seed)
    return TCAE(TCAENetConfig(image_size=16, trunk_channels=[8, 8], branch_channels=[8, 8],
                              decoder_channels=[8, 8, 8]))


def test_forward_shapes_and_attention_fusion():
    model = small_model()
    src, tgt = torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)
    out = model(src, tgt)
    for name in ("au_changed", "pose_changed", "reconstruction", "cycle_au", "cycle_pose"):
        assert getattr(out, name).shape == src.shape
    assert out.phi_s.shape == (4, 8)
    # α_A = softmax of two tanh logits lies in (1/(1+e^2), e^2/(1+e^2))
    bound = 1.0 / (1.0 + torch.e**2)
    assert out.attention_au.min() > bound and out.attention_au.max() < 1 - bound
    fused = out.attention_au * out.delta_au + (1 - out.attention_au) * out.delta_pose
    assert torch.allclose(out.delta, fused, atol=1e-6)  # Δ is the official exp-weighted mean: same value, other rounding
    assert torch.allclose(out.reconstruction, warp(src, out.delta), atol=1e-6)
    assert torch.allclose(out.au_changed, warp(src, out.delta_au), atol=1e-6)


def test_warped_pixels_are_detached_but_grids_and_reencodings_are_not():
    model = small_model()
    for decoder in (model.decoder_au, model.decoder_pose):
        last = decoder.net[-2]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
    src = torch.rand(2, 3, 16, 16, requires_grad=True)
    out = model(src, torch.rand(2, 3, 16, 16))
    assert torch.allclose(out.reconstruction, src, atol=1e-5)  # zero field → identity warp
    # the only path from src to the warped images would be the pixels, which are detached
    for name in ("reconstruction", "au_changed", "cycle_au", "cycle_pose"):
        (grad,) = torch.autograd.grad(getattr(out, name).sum(), src, allow_unused=True, retain_graph=True)
        assert grad is None or grad.abs().max() == 0, name
    # with live decoders, the re-encoded embedding of I_A trains D_A through the grid
    model = small_model()
    out = model(src, torch.rand(2, 3, 16, 16))
    mse_per_sample(out.phi_au, out.phi_t).sum().backward()
    assert model.decoder_au.net[-2].weight.grad.abs().max() > 0


def test_per_sample_l1_mse_and_displacement_l1_by_hand():
    a = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 4.0], [1.0, -3.0]])
    assert torch.allclose(l1_per_sample(a, b), torch.tensor([1.5, 2.0]))
    assert torch.allclose(mse_per_sample(a, b), torch.tensor([2.5, 5.0]))
    # 2×2 grid: x = [-1, 1] per row, y = [-1, 1] per column
    delta = torch.zeros(1, 2, 2, 2)
    delta[0, 0] = torch.tensor([[0.5, 0.5], [-0.25, 0.0]])  # x=1+0.5 and x=-1-0.25 are clamped away
    delta[0, 1] = torch.tensor([[-0.5, 0.1], [3.0, 0.0]])   # y=-1-0.5 and y=1+3 are clamped away
    expected = (0.5 + 0.0 + 0.0 + 0.0 + 0.0 + 0.1 + 0.0 + 0.0) / 8
    assert torch.allclose(displacement_l1(delta), torch.tensor([expected]))


def test_per_sample_terms_pair_the_right_tensors():
    b = 2
    zeros = torch.zeros(b, 4)
    fields = {name: zeros.clone() for name in ("phi_s", "psi_s", "phi_t", "psi_t", "phi_au", "psi_au",
                                               "phi_pose", "psi_pose", "phi_rec", "psi_rec")}
    fields["psi_pose"] = torch.full((b, 4), 1.0)   # emb_pose_pose_t = 1
    fields["phi_pose"] = torch.full((b, 4), 2.0)   # emb_pose_au_s = 4
    fields["psi_s"] = torch.full((b, 4), -3.0)     # emb_au_pose_s = 9
    fields["phi_au"] = torch.full((b, 4), 0.5)     # emb_au_au_t = 0.25
    fields["psi_rec"] = torch.full((b, 4), 0.1)    # emb_rec_pose_t = 0.01
    fields["phi_rec"] = torch.full((b, 4), -0.2)   # emb_rec_au_t = 0.04
    img = torch.zeros(b, 3, 2, 2)
    source, target = img + 0.5, img + 0.25
    out = SimpleNamespace(**fields, reconstruction=img, delta_au=torch.zeros(b, 2, 2, 2),
                          cycle_au=img + 1.0, cycle_pose=img)
    terms = per_sample_terms(out, source, target)
    expected = {"rec": 0.25, "sparse": 0.0, "emb_pose_pose_t": 1.0, "emb_pose_au_s": 4.0, "emb_au_pose_s": 9.0,
                "emb_au_au_t": 0.25, "emb_rec_pose_t": 0.01, "emb_rec_au_t": 0.04, "cyc_au": 0.5, "cyc_pose": 0.5}
    assert set(terms) == set(expected)
    for name, value in expected.items():
        assert torch.allclose(terms[name], torch.full((b,), value)), name


def test_window_mean_keeps_the_ranks_in_the_window():
    values = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 0.0, 7.0, 6.0, 9.0, 8.0])
    assert window_mean(values, 0.0, 0.5).item() == pytest.approx(2.0)   # ranks 0-4
    assert window_mean(values, 0.4, 0.9).item() == pytest.approx(6.0)   # ranks 4-8
    assert window_mean(values, 0.0, 1.0).item() == pytest.approx(4.5)
    assert window_bounds(64, 0.4, 0.9) == (25, 57)
    assert window_bounds(1, 0.0, 0.5) == (0, 1)  # never empty
    assert window_bounds(3, 0.4, 0.9) == (1, 2)


def test_objective_weights_window_and_validation_embedding_scale():
    terms = {"rec": torch.tensor([1.0, 3.0]), "sparse": torch.tensor([2.0, 2.0]),
             "cyc_au": torch.tensor([0.5, 0.5]), "cyc_pose": torch.tensor([0.25, 0.25])}
    terms.update({name: torch.tensor([1.0, 1.0]) for name in EMBEDDING_TERMS})
    weights = TCAELossWeights()
    total, reduced = tcae_objective(terms, weights)
    assert total.item() == pytest.approx(10 * 2.0 + 0.1 * 2.0 + 6 * 1.0 + 0.75)
    total, reduced = tcae_objective(terms, weights, window=(0.0, 0.5))
    assert reduced["rec"].item() == pytest.approx(1.0)
    assert total.item() == pytest.approx(10 * 1.0 + 0.1 * 2.0 + 6 * 1.0 + 0.75)
    total, reduced = tcae_objective(terms, TCAELossWeights(rec=1, sparse=0.01, emb=0.1, cyc=0.1), emb_scale=0.5)
    assert reduced["emb_rec_au_t"].item() == pytest.approx(0.5)
    assert total.item() == pytest.approx(2.0 + 0.02 + 0.1 * 3.0 + 0.075)


def test_curriculum_moves_up_by_a_tenth_after_a_plateau_and_stops_at_the_official_window():
    cw = CurriculumWindow(patience=2)
    seen = [cw.window]
    events = []
    losses = [5.0, 4.0, 4.5, 4.2]  # two epochs without improvement: not yet more than patience
    for loss in losses:
        events.append(cw.update(loss))
    assert events == [None, None, None, None] and cw.window == (0.0, 0.5)
    assert cw.update(4.1) == "shift" and cw.window == (0.1, 0.6)
    # the tracker forgot its best: the next loss becomes the new reference even if worse
    assert cw.update(9.0) is None
    for _ in range(50):
        event = cw.update(9.0)
        if event == "shift":
            seen.append(cw.window)
        if event == "plateau":
            break
    assert event == "plateau"
    assert [(0.0, 0.5), (0.2, 0.7), (0.3, 0.8), (0.4, 0.9)] == seen
    assert cw.final and cw.window == (0.4, 0.9)
    state = cw.state_dict()
    other = CurriculumWindow(patience=2)
    other.load_state_dict(state)
    assert other.window == (0.4, 0.9)


def test_curriculum_final_window_keeps_the_best_and_re_arms_like_the_official_trackloss():
    # official TrackLoss(interval=2): fire at validation i when i - best_epoch > 2 and i - last_warm > 2;
    # a firing sets last_warm = i, an improvement sets best_epoch = last_warm = i; the best is never reset.
    # Hand-computed firings for this sequence (validations counted from 1): 4 (best at 1), 7 (armed at 4),
    # 11 (new best 4.0 at 8), 14 (armed at 11; 4.9 → 4.8 → 4.7 improve on nothing below the best 4.0).
    losses = [5.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 4.0, 4.5, 4.5, 4.5, 4.9, 4.8, 4.7]
    cw = CurriculumWindow(start_lo=0.4, start_hi=0.9, patience=2)
    assert cw.final
    fired = [i for i, loss in enumerate(losses, 1) if cw.update(loss) == "plateau"]
    assert fired == [4, 7, 11, 14]  # resetting the best after a firing would give [4, 11]
    assert cw.best == 4.0 and cw.window == (0.4, 0.9)
    resumed = CurriculumWindow(start_lo=0.4, start_hi=0.9, patience=2)
    resumed.load_state_dict(cw.state_dict())
    assert [resumed.update(5.0) for _ in range(3)] == [None, None, "plateau"]  # 17 = 14 + patience + 1


def test_curriculum_rejects_a_bad_window():
    with pytest.raises(ValueError, match="lo < hi"):
        CurriculumWindow(start_lo=0.6, start_hi=0.5)


def test_presets_are_consistent():
    for cfg in PRESETS.values():
        TCAE(cfg)


def test_zero_init_fields_start_from_the_identity_warp_and_still_learn():
    cfg = dict(image_size=16, trunk_channels=[8, 8], branch_channels=[8, 8], decoder_channels=[8, 8, 8])
    assert TCAE(TCAENetConfig(**cfg)).decoder_au.net[-2].weight.abs().sum() > 0  # official: default init
    model = TCAE(TCAENetConfig(**cfg, zero_init_fields=True))
    src, tgt = torch.rand(3, 3, 16, 16), torch.rand(3, 3, 16, 16)
    out = model(src, tgt)
    assert out.delta_au.abs().max() == 0 and out.delta_pose.abs().max() == 0
    assert torch.allclose(out.attention_au, torch.full_like(out.attention_au, 0.5))
    assert torch.equal(out.reconstruction, warp(src, torch.zeros_like(out.delta)))
    assert torch.allclose(out.reconstruction, src, atol=1e-5)
    (out.reconstruction - tgt).abs().mean().backward()
    assert model.decoder_au.net[-2].weight.grad.abs().sum() > 0  # the zeroed conv is trained


def test_identity_grid_is_bit_equal_to_the_official_numpy_grid():
    import numpy as np

    for size in (64, 256):
        official = torch.Tensor(np.linspace(-1, 1, size))  # what models_multiview's caller builds
        assert torch.equal(identity_grid(size)[0, 0, 0], official)


def test_warp_under_bf16_autocast_samples_on_the_float32_grid():
    size = 256
    image = torch.rand(2, 3, size, size)
    zero = torch.zeros(2, 2, size, size)
    reference = warp(image, zero)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        field = zero.to(torch.bfloat16)  # what a decoder returns under autocast
        grid = sampling_grid(field)
        out = warp(image, field)
    assert grid.dtype == torch.float32 and torch.equal(grid, identity_grid(size).expand(2, -1, -1, -1))
    assert grid[0, 0, 0].unique().numel() == size  # no two columns collapse onto one coordinate
    assert out.dtype == torch.float32 and torch.equal(out, reference)
    assert (out - image).abs().max() < 3e-5  # the identity field reproduces the input to float32 rounding


def test_fused_field_is_the_softmax_weighted_mean():
    delta_au, delta_pose = torch.rand(1, 2, 4, 4) - 0.5, torch.rand(1, 2, 4, 4) - 0.5
    logit_au, logit_pose = torch.rand(1, 1, 4, 4) * 2 - 1, torch.rand(1, 1, 4, 4) * 2 - 1
    alpha, delta = fuse_fields(delta_au, logit_au, delta_pose, logit_pose)
    expected_alpha = torch.softmax(torch.cat([logit_au, logit_pose], 1), 1)[:, :1]
    assert torch.allclose(alpha, expected_alpha, atol=1e-7)
    assert torch.allclose(delta, expected_alpha * delta_au + (1 - expected_alpha) * delta_pose, atol=1e-7)
