"""Contrastive (stage 1) and sparse-label (stage 2) losses of the contrastive_intensity method,
checked against hand-computed values and a loop reference."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from affectlab.losses.contrastive import (
    anchor_steps,
    info_nce,
    nt_xent,
    nt_xent_accuracy,
    predictive_accuracy,
    predictive_contrastive_loss,
)
from affectlab.losses.sparse_regression import budget_count, masked_intensity_loss, sample_label_subset

E1, E2 = [1.0, 0.0], [0.0, 1.0]


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _loop_info_nce(q, k, tau):
    """Reference: cosine similarities and -log softmax written out with math."""
    total = 0.0
    for i, qi in enumerate(q):
        logits = [_cos(qi, kj) / tau for kj in k]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    return total / len(q)


def test_info_nce_hand_computed():
    q = torch.tensor([E1, E2])
    k = torch.tensor([[0.6, 0.8], E1])
    # row 0 logits (0.6, 1.0)/0.5, positive 0; row 1 logits (0.8, 0.0)/0.5, positive 1
    expected = ((-1.2 + math.log(math.exp(1.2) + math.exp(2.0))) + (0.0 + math.log(math.exp(1.6) + 1.0))) / 2
    assert info_nce(q, k, temperature=0.5).item() == pytest.approx(expected, rel=1e-6)
    # normalisation: scaling the vectors changes nothing
    assert info_nce(3 * q, 7 * k, temperature=0.5).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_hand_computed():
    z = torch.tensor([E1, E2])
    # each anchor: positive similarity 1, two negatives with similarity 0 (self excluded)
    assert nt_xent(z, z.clone(), temperature=1.0).item() == pytest.approx(math.log(2 + math.e) - 1, rel=1e-6)
    # views of clip 0 point the same way, clip 1's views are orthogonal to each other
    z1, z2 = torch.tensor([E1, E2]), torch.tensor([E1, [-1.0, 0.0]])
    t = 0.5
    # views (e1, e2, e1, -e1); anchor 0: pos e1 sim 1, negs e2 0, -e1 -1; anchor 1: pos -e1 0, negs e1 0, e1 0;
    # anchor 2 = anchor 0; anchor 3 (-e1): pos e2 0, negs e1 -1, e1 -1
    l0 = -1 / t + math.log(math.exp(0) + math.exp(1 / t) + math.exp(-1 / t))
    l1 = -0 + math.log(3 * math.exp(0))
    l3 = -0 + math.log(math.exp(-1 / t) + math.exp(0) + math.exp(-1 / t))
    assert nt_xent(z1, z2, temperature=t).item() == pytest.approx((2 * l0 + l1 + l3) / 4, rel=1e-6)


def test_nt_xent_matches_loop_reference_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    z = torch.cat([z1, z2]).tolist()
    tau, n, ref = 0.2, 5, 0.0
    for i in range(2 * n):
        others = [j for j in range(2 * n) if j != i]
        pos = (i + n) % (2 * n)
        logits = {j: _cos(z[i], z[j]) / tau for j in others}
        ref += -logits[pos] + math.log(sum(math.exp(v) for v in logits.values()))
    ref /= 2 * n
    assert nt_xent(z1, z2, tau).item() == pytest.approx(ref, rel=1e-5)
    assert nt_xent(z2, z1, tau).item() == pytest.approx(ref, rel=1e-5)


def test_anchor_steps():
    assert anchor_steps(8, horizon=3, min_context=2).tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="clip_length"):
        anchor_steps(4, horizon=3, min_context=2)


def _predictive_case():
    # B=2 clips, T=3 frames, D=2; horizon 1, anchors t=0,1 predict frames 1,2
    emb = torch.tensor([[E1, E1, E2], [E2, [-1.0, 0.0], [0.6, 0.8]]])
    preds = torch.tensor([[[E1], [[0.6, 0.8]]], [[[-1.0, 0.0]], [E2]]])  # (B,A,k,D)
    return preds, emb


def test_predictive_loss_batch_time_negatives_matches_loop_reference():
    preds, emb = _predictive_case()
    # queries/keys ordered (clip, anchor): every other clip and time step is a negative
    q = [preds[0, 0, 0].tolist(), preds[0, 1, 0].tolist(), preds[1, 0, 0].tolist(), preds[1, 1, 0].tolist()]
    k = [emb[0, 1].tolist(), emb[0, 2].tolist(), emb[1, 1].tolist(), emb[1, 2].tolist()]
    loss = predictive_contrastive_loss(preds, emb, torch.tensor([0, 1]), temperature=0.5)
    assert loss.item() == pytest.approx(_loop_info_nce(q, k, 0.5), rel=1e-6)


def test_predictive_loss_multi_step_uses_step_offsets():
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(3, 6, 4, generator=g)
    anchors = anchor_steps(6, horizon=2, min_context=2)  # t = 1, 2, 3
    preds = torch.randn(3, len(anchors), 2, 4, generator=g)
    ref = 0.0
    for j in range(2):
        q = [preds[b, a, j].tolist() for b in range(3) for a in range(len(anchors))]
        k = [emb[b, int(anchors[a]) + j + 1].tolist() for b in range(3) for a in range(len(anchors))]
        ref += _loop_info_nce(q, k, 0.1) / 2
    assert predictive_contrastive_loss(preds, emb, anchors, 0.1).item() == pytest.approx(ref, rel=1e-5)
    # a perfect predictor beats a random one
    perfect = torch.stack([emb[:, anchors + j + 1] for j in range(2)], dim=2)
    assert predictive_contrastive_loss(perfect, emb, anchors, 0.1) < predictive_contrastive_loss(preds, emb, anchors, 0.1)


def test_masked_loss_value_and_gradient_only_at_labelled_frames():
    torch.manual_seed(0)
    b, t, k = 2, 12, 3
    x = torch.randn(b, t, 5, requires_grad=True)
    gru = torch.nn.GRU(5, 8, batch_first=True)
    head = torch.nn.Linear(8, k)
    out = head(gru(x)[0])
    out.retain_grad()
    target = torch.rand(b, t, k) * 5
    target[:, 9:] = float("nan")  # unlabelled entries may hold anything
    mask = torch.zeros(b, t, k, dtype=torch.bool)
    mask[0, 3, 1] = mask[1, 6] = True  # labelled frames: clip0 t=3 (AU1 only), clip1 t=6 (all AUs)
    loss = masked_intensity_loss(out, target, mask)
    expected = ((out[0, 3, 1] - target[0, 3, 1]) ** 2 + ((out[1, 6] - target[1, 6]) ** 2).sum()) / 4
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert torch.all(out.grad[~mask] == 0)
    assert torch.all(out.grad[mask] != 0)
    # back-propagation through time: inputs up to the labelled step get gradient, later ones none
    assert torch.all(x.grad[0, :4].abs().sum(-1) > 0) and torch.all(x.grad[0, 4:] == 0)
    assert torch.all(x.grad[1, :7].abs().sum(-1) > 0) and torch.all(x.grad[1, 7:] == 0)


def test_masked_loss_by_hand_and_empty_mask():
    pred = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    mask = torch.tensor([[True, False], [False, True]])
    assert masked_intensity_loss(pred, target, mask).item() == pytest.approx((1.0 + 16.0) / 2)
    empty = masked_intensity_loss(pred, target, torch.zeros_like(mask))
    empty.backward()
    assert empty.item() == 0.0 and torch.all(pred.grad == 0)
    with pytest.raises(ValueError, match="same shape"):
        masked_intensity_loss(pred, target[:1], mask)


def test_budget_count():
    assert budget_count(1000, 0.02) == 20
    assert budget_count(10, 0.02) == 1  # never zero labels
    assert budget_count(10, 1.0) == 10
    with pytest.raises(ValueError, match="fraction"):
        budget_count(10, 0.0)


def test_label_subset_is_seeded():
    lengths = [50, 120, 30]
    a = sample_label_subset(lengths, 0.1, seed=3)
    b = sample_label_subset(lengths, 0.1, seed=3)
    c = sample_label_subset(lengths, 0.1, seed=4)
    assert [m.shape[0] for m in a] == lengths
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert int(sum(m.sum() for m in a)) == 20
    per_seq = sample_label_subset(lengths, 0.1, seed=3, scope="per_sequence")
    assert [int(m.sum()) for m in per_seq] == [5, 12, 3]
    # the global RNG is not consumed
    torch.manual_seed(0)
    r1 = torch.rand(1)
    torch.manual_seed(0)
    sample_label_subset(lengths, 0.1, seed=9)
    assert torch.equal(torch.rand(1), r1)


@pytest.mark.parametrize("scope", ["global", "per_sequence"])
def test_label_subset_is_uniform(scope):
    lengths = [7, 13, 20]
    n_draws = 1500
    counts = torch.zeros(sum(lengths))
    for seed in range(n_draws):
        counts += torch.cat(sample_label_subset(lengths, 0.25, seed=seed, scope=scope)).float()
    # within each block of equal inclusion probability the counts must be uniform (chi-square)
    blocks = [counts] if scope == "global" else list(counts.split(lengths))
    for block in blocks:
        assert stats.chisquare(block.numpy()).pvalue > 1e-3
    if scope == "global":
        assert counts.sum().item() == n_draws * 10  # round(0.25 * 40) per draw


def test_datamodule_sparse_label_sampler_is_seeded_and_uniform():
    """The ``sequences`` task's own sampler (data_modules.sampling), used by label_scope=per_sequence."""
    np = pytest.importorskip("numpy")
    from data_modules.sampling import sparse_label_mask

    a = sparse_label_mask(200, 0.02, np.random.default_rng(5))
    assert a.sum() == 4 and np.array_equal(a, sparse_label_mask(200, 0.02, np.random.default_rng(5)))
    assert not np.array_equal(a, sparse_label_mask(200, 0.02, np.random.default_rng(6)))
    counts = sum(sparse_label_mask(30, 0.1, np.random.default_rng(s)).astype(int) for s in range(1500))
    assert counts.sum() == 1500 * 3 and stats.chisquare(counts).pvalue > 1e-3


def test_predictive_accuracy_separates_clip_identity_from_time():
    # 2 clips x 4 frames, anchors 0..1, horizon 1. Embeddings: clip c, frame t -> direction of clip c
    # plus a small time-specific component, so that "right clip, wrong time" is distinguishable.
    emb = torch.zeros(2, 4, 6)
    for c in range(2):
        for t in range(4):
            emb[c, t, c] = 1.0
            emb[c, t, 2 + t] = 0.1
    anchors = torch.tensor([0, 1])
    perfect = emb[:, anchors + 1][:, :, None]  # predicts the true next embedding exactly
    acc = predictive_accuracy(perfect, emb, anchors)
    assert acc["top1"].item() == 1.0 and acc["same_clip"].item() == 1.0
    # clip-only predictions (the clip direction, no time component): ties resolve to the first
    # candidate of that clip (anchor 0), so exactly one of the two anchors per clip is right
    clip_only = torch.zeros(2, 2, 1, 6)
    for c in range(2):
        clip_only[c, :, 0, c] = 1.0
    acc = predictive_accuracy(clip_only, emb, anchors)
    assert acc["top1"].item() == 0.5 and acc["same_clip"].item() == 1.0
    # swapped clips: never the right clip
    acc = predictive_accuracy(perfect.flip(0), emb, anchors)
    assert acc["top1"].item() == 0.0 and acc["same_clip"].item() == 0.0


def test_nt_xent_accuracy_hand_made():
    z1 = torch.tensor([E1, E2])
    assert nt_xent_accuracy(z1, z1.clone()).item() == 1.0
    # second views swapped: each view's nearest other view is the other clip's second view
    assert nt_xent_accuracy(z1, z1.flip(0)).item() == 0.0
