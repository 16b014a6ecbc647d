"""Intensity-aware loss and the IAL objective against hand-computed values (methods.md §4.2)."""
import math

import pytest
import torch
import torch.nn.functional as F

from affectlab.losses.ial import ial_objective, intensity_aware_loss, most_confusable


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_ial_hand_computed():
    logits = torch.tensor([[2.0, 1.0, 3.0, 0.0], [0.5, 4.0, -1.0, 3.5], [1.0, 1.0, 0.0, -2.0]])
    target = torch.tensor([0, 1, 3])
    # row 0: y=0, m=2 → softplus(3-2); row 1: y=1, m=3 → softplus(3.5-4); row 2: y=3, m=0 (tie 0/1 → first)
    expected = [_softplus(1.0), _softplus(-0.5), _softplus(3.0)]
    assert most_confusable(logits, target).tolist() == [2, 3, 0]
    per_row = intensity_aware_loss(logits, target, reduction="none")
    assert per_row.tolist() == pytest.approx(expected, rel=1e-6)
    assert intensity_aware_loss(logits, target).item() == pytest.approx(sum(expected) / 3, rel=1e-6)
    assert intensity_aware_loss(logits, target, reduction="sum").item() == pytest.approx(sum(expected), rel=1e-6)


def test_ial_equals_two_way_softmax_and_official_masked_ce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 7, generator=g) * 3
    target = torch.randint(0, 7, (32,), generator=g)
    m = most_confusable(logits, target)
    z_y, z_m = logits[torch.arange(32), target], logits[torch.arange(32), m]
    p_ia = torch.exp(z_y) / (torch.exp(z_y) + torch.exp(z_m))
    assert torch.allclose(intensity_aware_loss(logits, target), -torch.log(p_ia).mean(), atol=1e-5)
    # the official realisation: 7-way CE with every class other than y and m shifted by -9999
    keep = F.one_hot(target, 7).bool() | F.one_hot(m, 7).bool()
    shifted = torch.where(keep, logits, logits - 9999.0)
    assert torch.allclose(intensity_aware_loss(logits, target), F.cross_entropy(shifted, target), atol=1e-5)


def test_ial_gradient_touches_only_target_and_most_confusable():
    logits = torch.tensor([[2.0, 1.0, 3.0, 0.0, -1.0], [0.0, 0.2, 0.1, 5.0, 1.0]], requires_grad=True)
    target = torch.tensor([0, 3])
    intensity_aware_loss(logits, target).backward()
    grad = logits.grad
    sig0, sig1 = torch.sigmoid(torch.tensor(1.0)).item(), torch.sigmoid(torch.tensor(-4.0)).item()
    expected = torch.zeros(2, 5)
    expected[0, 0], expected[0, 2] = -sig0 / 2, sig0 / 2
    expected[1, 3], expected[1, 4] = -sig1 / 2, sig1 / 2
    assert torch.allclose(grad, expected, atol=1e-7)
    assert (grad != 0).sum().item() == 4


def test_objective_weights_and_switches():
    logits = torch.tensor([[2.0, 1.0, 3.0], [0.0, 2.0, 1.0]])
    aux2 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    aux3 = torch.tensor([[0.0, 3.0, 0.0], [1.0, 1.0, 1.0]])
    y = torch.tensor([0, 1])
    ce, ial = F.cross_entropy(logits, y), (_softplus(1.0) + _softplus(-1.0)) / 2
    ce2, ce3 = F.cross_entropy(aux2, y), F.cross_entropy(aux3, y)
    out = ial_objective(logits, y, (aux2, aux3))
    assert out["loss"].item() == pytest.approx(ce.item() + 0.05 * ce2.item() + 0.1 * ial, rel=1e-6)
    assert out["ial"].item() == pytest.approx(ial, rel=1e-6)
    assert out["aux3"].item() == pytest.approx(ce3.item(), rel=1e-6)  # reported, weight 0
    off = ial_objective(logits, y, (aux2, aux3), use_ial=False, aux_weights=(0.0, 0.5))
    assert off["loss"].item() == pytest.approx(ce.item() + 0.5 * ce3.item(), rel=1e-6)
    no_gca = ial_objective(logits, y, (None, None), ial_weight=0.5)
    assert no_gca["loss"].item() == pytest.approx(ce.item() + 0.5 * ial, rel=1e-6)
    assert "aux2" not in no_gca


def test_bad_shapes_fail_clearly():
    with pytest.raises(ValueError, match="N, K"):
        intensity_aware_loss(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        intensity_aware_loss(torch.zeros(2, 3), torch.zeros(2), reduction="max")
