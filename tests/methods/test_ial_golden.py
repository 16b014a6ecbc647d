"""Golden test: affectlab's IAL reproduces outputs recorded from the official code.

``tests/fixtures/ial_official_golden.json`` holds what the official network and training loop
(muse1998/IAL @39a24b6, run by ``benchmarks/official_ial.py --write-fixture``) produced for the
deterministic fill ``golden_fill`` of every official tensor and the seeded clips ``golden_inputs``:
eval logits and both auxiliary logits, the train-mode logits, the loss and each of its terms, and the
gradient norms of nine tensors. Here affectlab's ``ial_paper`` module gets the same fill through its
name mapping and must match in the fixture's dtype (float32) within its tolerances.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from affectlab.config import compose
from affectlab.methods.ial import IALModule
from affectlab.models.ial_official import fill_golden, golden_inputs, official_name
from data_modules.dfew import DFER_CLASSES

GOLDEN = json.loads((Path(__file__).parents[1] / "fixtures" / "ial_official_golden.json").read_text())
TOL = GOLDEN["tolerances"]


@pytest.fixture(scope="module")
def affectlab_run() -> dict:
    torch.manual_seed(0)
    module = IALModule(compose(["EXP=ial_paper", "TRAINER=cpu"]), DFER_CLASSES)
    fill_golden(module.net)
    module = module.to(getattr(torch, GOLDEN["dtype"]))
    video, labels = golden_inputs(GOLDEN["batch"], GOLDEN["seed"], getattr(torch, GOLDEN["dtype"]))
    assert labels.tolist() == GOLDEN["labels"]
    module.eval()
    with torch.no_grad():
        out = module.net(video)
    module.train()
    terms, train_logits = module._objective(video, labels)
    terms["loss"].backward()
    grads = {official_name(k): p.grad for k, p in module.net.named_parameters()}
    return {"module": module, "eval": {"logits": out.logits, "aux2": out.aux_logits[0], "aux3": out.aux_logits[1]},
            "train": {"logits": train_logits.detach(), **{k: v.detach() for k, v in terms.items()}}, "grads": grads}


def test_mapping_covers_the_official_layout():
    net = IALModule(compose(["EXP=ial_paper", "TRAINER=cpu"]), DFER_CLASSES).net
    mapped = {official_name(k): list(v.shape) for k, v in net.state_dict().items()}
    assert mapped == GOLDEN["tensors"]  # 166 tensors, names and shapes of the official state dict


@pytest.mark.parametrize("part,key", [("eval", "logits"), ("eval", "aux2"), ("eval", "aux3"), ("train", "logits")])
def test_logits_match_official(affectlab_run, part, key):
    expected = torch.tensor(GOLDEN[part][key], dtype=torch.float64)
    got = affectlab_run[part][key].double()
    assert got.shape == expected.shape
    assert float((got - expected).abs().max()) <= TOL["logits"]


@pytest.mark.parametrize("term", ["loss", "ce", "aux2", "aux3", "ial"])
def test_loss_terms_match_official(affectlab_run, term):
    assert abs(float(affectlab_run["train"][term]) - GOLDEN["train"][term]) <= TOL["loss"]


def test_gradient_norms_match_official(affectlab_run):
    for name, expected in GOLDEN["grad_norms"].items():
        grad = affectlab_run["grads"][name]
        norm = 0.0 if grad is None else float(grad.double().norm())  # layer3's aux head: weight 0, no grad
        assert abs(norm - expected) <= TOL["grad_norm_rel"] * max(abs(expected), 1e-12), name


def test_official_checkpoint_loader():
    from affectlab.models.ial_official import golden_fill, load_official_state_dict

    net = IALModule(compose(["EXP=ial_paper", "TRAINER=cpu"]), DFER_CLASSES).net
    checkpoint = {f"module.{name}": golden_fill(name, shape, torch.float32) for name, shape in GOLDEN["tensors"].items()}
    checkpoint["module.s_former.layer1.0.glb.weight"] = torch.zeros(64, 64, 1, 1)  # never used: ignored
    load_official_state_dict(net, checkpoint)
    w = net.classifier.weight
    assert torch.equal(w, golden_fill("fc_f.weight", w.shape, w.dtype))
    del checkpoint["module.fc_f.bias"]
    with pytest.raises(KeyError, match="fc_f.bias"):
        load_official_state_dict(net, checkpoint)
    checkpoint["module.fc_f.bias"] = torch.zeros(8)
    with pytest.raises(ValueError, match=r"fc_f.bias: shape \(8,\)"):
        load_official_state_dict(net, checkpoint)


def test_unknown_names_have_no_official_tensor():
    for name in ("layer2.attention.bogus.weight", "head.weight"):
        with pytest.raises(KeyError, match="no official IAL tensor corresponds"):
            official_name(name)
