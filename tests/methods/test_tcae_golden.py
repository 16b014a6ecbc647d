"""Golden test: affectlab's paper-preset TCAE reproduces outputs recorded from the official code.

``tests/fixtures/tcae_official_golden.json`` was written by ``benchmarks/official_tcae.py
--write-fixture`` from the official repository (github.com/mysee1989/TCAE, converted to Python 3
at run time; commit in the fixture). Both networks are filled with the same deterministic weights
(:func:`~affectlab.models.tcae_official.golden_state_dict`, seeded by the official tensor names) and
run in eval mode on the same seeded pair; the fixture holds the official φ, ψ, fields, warped images,
every per-sample loss term, the training and validation totals and a few gradient norms (sampled
elements and norms only, no weights). Tolerances: ``GOLDEN_TOLERANCES``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from affectlab.config import EXPERIMENTS_DIR, load_yaml
from affectlab.losses.tcae import TCAELossWeights
from affectlab.models.tcae import TCAE
from affectlab.models.tcae_official import (
    affectlab_golden,
    compare_with_fixture,
    fill_golden,
    golden_pair,
    load_official_state_dict,
    official_key_map,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tcae_official_golden.json"


def test_paper_tcae_reproduces_the_recorded_official_outputs():
    torch.set_num_threads(1)
    record = json.loads(FIXTURE.read_text())
    model = TCAE.from_preset("paper")
    fill_golden(model)
    loss = load_yaml(EXPERIMENTS_DIR / "exp" / "tcae_paper.yaml")["method"]["loss"]
    ours = affectlab_golden(model, TCAELossWeights(**loss), *golden_pair())
    rows = compare_with_fixture(record, ours)
    assert len(rows) == 13 + 20 + 12 + 7  # tensors, per-sample terms, totals and val terms, gradients
    failed = [f"{name}: {diff:.3g} > {tol:g}" for name, diff, tol, ok in rows if not ok]
    assert not failed, "differs from the official TCAE:\n" + "\n".join(failed)


def test_official_key_map_covers_the_paper_network_one_to_one():
    mapping = official_key_map()
    ours = TCAE.from_preset("paper").state_dict()
    assert len(mapping) == 169 and sorted(mapping.values()) == sorted(ours)
    # branches are paired by role: the official emotion branch (conv*_1) is φ, which feeds D_A
    assert mapping["encoder.conv8_1.weight"] == "encoder.au_branch.2.0.weight"
    assert mapping["expression_decoder.30.weight"] == "decoder_au.net.30.weight"


def test_a_foreign_state_dict_is_refused_naming_the_tensors():
    model = TCAE.from_preset("paper")
    with pytest.raises(ValueError, match="missing"):
        load_official_state_dict(model, model.state_dict())
