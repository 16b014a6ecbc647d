"""Improved OT: marginals, gradients, the prior's effect, co-occurrence prior, consistency loss."""
from __future__ import annotations

import numpy as np
import ot
import pytest
import torch

from affectlab.losses.optimal_transport import (
    RelationPrior,
    cooccurrence_relation,
    cosine_cost,
    improved_cost,
    ot_relation_loss,
    plan_relation,
    sinkhorn_plan,
)
from affectlab.losses.region_relation import region_consistency_loss


def test_plan_marginals_equal_the_prescribed_ones():
    g = torch.Generator().manual_seed(0)
    cost = torch.rand(4, 6, 5, generator=g, dtype=torch.float64)
    a = torch.softmax(torch.randn(4, 6, generator=g, dtype=torch.float64), -1)
    b = torch.softmax(torch.randn(4, 5, generator=g, dtype=torch.float64), -1)
    plan = sinkhorn_plan(cost, reg=0.1, a=a, b=b, num_iter=2000, tol=1e-12)
    assert torch.allclose(plan.sum(-1), a, atol=1e-8)
    assert torch.allclose(plan.sum(-2), b, atol=1e-8)
    uniform = sinkhorn_plan(cost, reg=0.1, num_iter=2000, tol=1e-12)
    assert torch.allclose(uniform.sum(-1), torch.full((4, 6), 1 / 6, dtype=torch.float64), atol=1e-8)
    # agrees with POT's reference single-problem solver
    ref = ot.sinkhorn(a[0].numpy(), b[0].numpy(), cost[0].numpy(), 0.1, numItermax=5000, stopThr=1e-12)
    np.testing.assert_allclose(plan[0].numpy(), ref, atol=1e-7)


@pytest.mark.parametrize("differentiable", [False, True])
def test_gradients_flow_through_the_ot_cost(differentiable):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 8, generator=g, requires_grad=True)
    y = torch.randn(3, 5, 8, generator=g, requires_grad=True)
    loss, plan = ot_relation_loss(x, y, relation=torch.eye(5), beta=0.5, reg=0.1, differentiable_plan=differentiable)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0 and y.grad.abs().sum() > 0
    if not differentiable:
        # envelope: the gradient is that of <T, C> with T held fixed; check against autograd on that
        x2 = x.detach().clone().requires_grad_(True)
        (plan.detach() * cosine_cost(x2, y.detach())).sum((-1, -2)).mean().backward()
        assert torch.allclose(x.grad, x2.grad, atol=1e-6)


def test_gradient_of_the_loss_lowers_the_ot_cost():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 6, generator=g, requires_grad=True)
    y = torch.randn(2, 4, 6, generator=g)
    before, _ = ot_relation_loss(x, y, reg=0.1)
    before.backward()
    with torch.no_grad():
        after, _ = ot_relation_loss(x - 0.1 * x.grad, y, reg=0.1)
    assert after < before


def test_prior_moves_mass_to_related_aus_on_a_hand_made_example():
    # 3 AUs whose view-1 features match view-2 features on the diagonal only weakly;
    # the prior says AU0 and AU1 are strongly related, AU2 unrelated to both.
    cost = torch.tensor([[[0.2, 0.3, 0.9], [0.3, 0.2, 0.9], [0.9, 0.9, 0.2]]], dtype=torch.float64)
    relation = torch.tensor([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    plain = sinkhorn_plan(cost, reg=0.1, num_iter=2000, tol=1e-12)[0]
    improved = sinkhorn_plan(improved_cost(cost, relation, beta=1.0), reg=0.1, num_iter=2000, tol=1e-12)[0]
    # the augmented cost adds beta*(1-R): 0.1 on the related pair, 1.0 on the unrelated pairs,
    # so the related off-diagonal pair gains mass relative to the unrelated ones
    assert improved[0, 1] / improved[0, 2] > 2 * plain[0, 1] / plain[0, 2]
    assert improved[0, 2] < plain[0, 2] and improved[2, 0] < plain[2, 0]
    # closed form for this symmetric 3x3 problem: with uniform marginals the plan is diag(u) K diag(v)
    kernel = torch.exp(-improved_cost(cost, relation, 1.0)[0] / 0.1)
    u = torch.ones(3, dtype=torch.float64)
    for _ in range(5000):
        v = (1 / 3) / (kernel.T @ u)
        u = (1 / 3) / (kernel @ v)
    assert torch.allclose(improved, u[:, None] * kernel * v[None, :], atol=1e-7)


def test_cooccurrence_relation_matches_a_hand_count():
    labels = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 0]], dtype=torch.float32)
    mask = torch.ones_like(labels)
    mask[3, 2] = 0  # AU2 unknown in the last frame
    rel = cooccurrence_relation(labels, mask)
    # P(AU1|AU0) = 2/3, P(AU0|AU1) = 2/3 → 2/3; P(AU2|AU0) = 1/3, P(AU0|AU2) = 1 → 2/3
    # P(AU2|AU1): AU1 on & AU2 labelled in frames 0, 2 → 1/2; P(AU1|AU2) = 1 → 3/4
    expected = torch.tensor([[1, 2 / 3, 2 / 3], [2 / 3, 1, 3 / 4], [2 / 3, 3 / 4, 1]])
    assert torch.allclose(rel, expected, atol=1e-6)


def test_relation_prior_sources():
    prior = RelationPrior(3, source="plans", momentum=0.5)
    assert prior.relation() is None
    plans = torch.tensor([[[0.3, 0.03, 0.0], [0.03, 0.3, 0.0], [0.0, 0.0, 1 / 3]]]).expand(2, 3, 3)
    prior.update_plans(plans)
    assert torch.allclose(prior.mean_plan, plans[0] * 3)
    rel = prior.relation()
    assert torch.allclose(rel, plan_relation(plans[0]))
    assert rel[0, 1] == pytest.approx(0.1) and rel[0, 2] == 0 and torch.equal(rel.diagonal(), torch.ones(3))
    labelled = RelationPrior(3, source="labels")
    labelled.update_labels(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    assert torch.allclose(labelled.relation(), cooccurrence_relation(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])))
    assert RelationPrior(3, source="none").relation() is None
    with pytest.raises(ValueError, match="plans | labels | none"):
        RelationPrior(3, source="graph")


def test_region_consistency_is_minus_one_for_aligned_views_and_stops_target_gradients():
    p = torch.randn(4, 3, 8, requires_grad=True)
    z = (2.0 * p.detach()).requires_grad_(True)
    loss = region_consistency_loss(p, p, z, z)
    assert loss.item() == pytest.approx(-1.0, abs=1e-6)
    loss.backward()
    assert z.grad is None
