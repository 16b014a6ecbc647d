"""GCA block and the IAL network: shapes, the geometric-mean rule, sizes derived from the input,
the official parameter count (methods.md §4.1)."""
import pytest
import torch

from affectlab.models.ial import GCA, BasicBlock, GCAIALNet, IALNetConfig, build_ial_net

#: official GenerateModel total (19,083,527) minus its 146,752 never-used parameters (methods.md §4.1)
OFFICIAL_USED_PARAMS = 19_083_527 - 146_752


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_paper_network_has_official_used_parameter_count():
    assert _count(build_ial_net("paper")) == OFFICIAL_USED_PARAMS == 18_936_775


def test_paper_network_shapes_and_derived_sizes():
    net = build_ial_net("paper").eval()
    assert net.map_sizes == {"layer1": (28, 28), "layer2": (14, 14), "layer3": (7, 7), "dsf": (4, 4)}
    assert net.layer2.attention.global_conv.kernel_size == (14, 14)  # official rule 256/C·7
    assert net.layer3.attention.global_conv.kernel_size == (7, 7)
    assert net.static_pos.shape == (1, 16, 256) and net.temporal_pos.shape == (1, 16, 4096)
    with torch.no_grad():
        out = net(torch.rand(1, 16, 3, 112, 112))
    assert out.logits.shape == (1, 7) and out.features.shape == (1, 4096)
    assert [a.shape for a in out.aux_logits] == [(1, 7), (1, 7)]


def test_sizes_follow_the_configured_input():
    net = GCAIALNet(IALNetConfig(num_frames=6, image_size=96, widths=[16, 32, 64]))
    assert net.map_sizes["layer2"] == (12, 12) and net.map_sizes["layer3"] == (6, 6)
    assert net.layer2.attention.global_conv.kernel_size == (12, 12)
    assert net.static_pos.shape == (1, 9, 64) and net.token_dim == 64 * 9
    out = net(torch.rand(2, 6, 3, 96, 96))
    assert out.logits.shape == (2, 7)
    with pytest.raises(ValueError, match="built for 6"):
        net(torch.rand(2, 8, 3, 96, 96))


def test_narrow_preset_keeps_the_paper_maps_at_112():
    """CPU default: 8×112×112 clips at widths 8/16/32 keep the paper's 14×14 / 7×7 GCA maps and 4×4 DSF map."""
    net = build_ial_net("narrow", image_size=112)
    assert net.cfg.num_frames == 8 and net.cfg.widths == [8, 16, 32]
    assert net.layer2.attention.global_conv.kernel_size == (14, 14)
    assert net.layer3.attention.global_conv.kernel_size == (7, 7)
    assert net.static_pos.shape == (1, 16, 32) and net.token_dim == 32 * 16
    out = net(torch.rand(2, 8, 3, 112, 112))
    assert out.logits.shape == (2, 7) and out.features.shape == (2, 512)


def test_temporal_tokens_are_frame_differences():
    """T frames give T-1 tokens: the first T-1 positional embeddings are used, the last never is."""
    net = build_ial_net("small")
    out = net(torch.rand(2, 8, 3, 64, 64))
    out.logits.sum().backward()
    assert net.temporal_pos.grad[0, :7].abs().sum() > 0
    assert net.temporal_pos.grad[0, 7].abs().sum() == 0


def test_gca_matches_reference_formula():
    torch.manual_seed(0)
    b, t, c, h, w, k = 2, 4, 32, 5, 5, 7
    gca = GCA(c, (h, w), num_classes=k, reduction=16)
    u = torch.randn(b * t, c, h, w)
    y, aux = gca(u, num_frames=t)
    # independent reference: explicit whole-map weighted sum instead of a depth-wise conv
    kern = gca.global_conv.weight[:, 0]  # (C, H, W)
    g = (u * kern).sum(dim=(2, 3))  # (B·T, C)
    w1, w2 = gca.aux[0].weight, gca.aux[1].weight
    ref_aux = g.view(b, t, c).mean(1) @ w1.T @ w2.T
    wa, wb = gca.squeeze.weight[:, :, 0, 0], gca.excite.weight[:, :, 0, 0]
    s = 2 * torch.sigmoid(torch.relu(g @ wa.T) @ wb.T).view(b, t, c)
    weight = torch.sqrt(s * s.mean(1, keepdim=True) + 1e-5)  # geometric mean of frame and clip weights
    ref_y = u * weight.reshape(b * t, c, 1, 1)
    assert aux.shape == (b, k) and y.shape == u.shape
    assert torch.allclose(aux, ref_aux, atol=1e-5)
    assert torch.allclose(y, ref_y, atol=1e-5)
    assert gca.aux[0].bias is None and gca.aux[1].bias is None
    assert gca.squeeze.out_channels == c // 16


def test_gca_weights_are_geometric_mean_and_bounded():
    torch.manual_seed(1)
    gca = GCA(16, (3, 3), reduction=16)
    # identical frames: clip mean = frame weight, so w = sqrt(s² + eps) ≈ s ∈ (0, 2)
    frame = torch.randn(1, 16, 3, 3)
    u = frame.repeat(4, 1, 1, 1)
    y, _ = gca(u, num_frames=4)
    ratio = y / u
    g = (frame * gca.global_conv.weight[:, 0]).sum(dim=(2, 3))
    s = 2 * torch.sigmoid(torch.relu(g @ gca.squeeze.weight[:, :, 0, 0].T) @ gca.excite.weight[:, :, 0, 0].T)
    assert torch.allclose(ratio[0, :, 0, 0], torch.sqrt(s[0] ** 2 + 1e-5), atol=1e-4)
    assert torch.allclose(ratio[0], ratio[3])
    assert (ratio > 0).all() and (ratio < 2.0001).all()


def test_gca_rejects_wrong_map_size():
    with pytest.raises(ValueError, match="maps"):
        GCA(32, (7, 7))(torch.randn(16, 32, 14, 14), num_frames=16)


@pytest.mark.parametrize("attention", ["se", "none"])
def test_ablation_blocks(attention):
    net = build_ial_net("small", attention=attention)
    out = net(torch.rand(2, 8, 3, 64, 64))
    assert out.logits.shape == (2, 7) and out.aux_logits == (None, None)
    c2, c3 = 32, 64
    gca_extra = _count(build_ial_net("small")) - _count(build_ial_net("small", attention="none"))
    # GCA: depth-wise whole-map kernel + C→2C→7 aux + C→C/16→C excitation, per stage
    expect = sum(c * s * s + c * 2 * c + 2 * c * 7 + 2 * c * (c // 16) for c, s in ((c2, 8), (c3, 4)))
    assert gca_extra == expect
    if attention == "se":
        assert _count(net) - _count(build_ial_net("small", attention="none")) == 2 * (c2 * 2 + c3 * 4)


def test_basic_block_shortcut_and_errors():
    assert isinstance(BasicBlock(8, 8).shortcut, torch.nn.Identity)
    assert BasicBlock(8, 16, stride=2).shortcut[0].stride == (2, 2)
    with pytest.raises(ValueError, match="attention"):
        BasicBlock(8, 8, attention="cbam")
    with pytest.raises(ValueError, match="num_frames"):
        build_ial_net("small", num_frames=1)
    with pytest.raises(ValueError, match="preset"):
        build_ial_net("huge")


def test_paper_network_compute_matches_official_analytic_count():
    """methods.md §4.1 [D]: 5.62 GMACs per 16×112×112 clip (convs + linears + attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build_ial_net("paper").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.rand(1, 16, 3, 112, 112))
    assert counter.get_total_flops() / 2e9 == pytest.approx(5.62, abs=0.005)
