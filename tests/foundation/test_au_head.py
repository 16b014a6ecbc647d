"""engine.au_head: the loss and positive weights shared by every AU-occurrence stage."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from affectlab.engine.au_head import masked_bce, positive_weights


def test_positive_weights_are_negative_over_positive_rate_floored_and_capped():
    rate = torch.tensor([0.25, 0.0, 0.9])
    assert positive_weights(rate).tolist() == pytest.approx([3.0, 1000.0, 0.1 / 0.9], rel=1e-6)  # p floored at 1e-3
    assert positive_weights(rate, max_weight=10.0).tolist() == pytest.approx([3.0, 10.0, 0.1 / 0.9])
    assert positive_weights(rate.double()).dtype == torch.float32


def test_masked_bce_averages_the_weighted_loss_over_labelled_entries_only():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 3.0, 0.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, False], [True, False, True]])
    w = torch.tensor([2.0, 1.0, 4.0])
    x, y, m = logits.numpy().astype(np.float64), target.numpy(), mask.numpy()
    sig = 1 / (1 + np.exp(-x))
    per_item = -(w.numpy() * y * np.log(sig) + (1 - y) * np.log(1 - sig))  # torch's pos_weight form
    expected = per_item[m].sum() / m.sum()
    assert masked_bce(logits, target, mask, w).item() == pytest.approx(expected, rel=1e-6)
    # no mask = every entry labelled; an all-unlabelled batch gives 0, not NaN
    assert masked_bce(logits, target, None, w).item() == pytest.approx(per_item.mean(), rel=1e-6)
    assert masked_bce(logits, target, torch.zeros_like(mask), w).item() == 0.0
