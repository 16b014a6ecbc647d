"""The official TCAE state-dict layout (``mysee1989/TCAE``, ``models_multiview.py``) and the
deterministic weight fill shared by the golden test and ``benchmarks/official_tcae.py``.

* :func:`official_key_map` -- official tensor name → affectlab name for the ``paper`` preset
  (169 tensors, 1:1, equal shapes). The two encoder branches are paired by role, not by order: the
  official ``Gen_sep_feature`` runs the pose branch (``conv6-8``) first and returns
  ``(pose, emotion)``; its emotion branch (``conv6_1-8_1``) is φ and feeds ``expression_decoder``
  (affectlab ``decoder_au``).
* :func:`load_official_state_dict` -- put an official ``state_dict`` (e.g. the released checkpoint's
  ``['state_dict']``) into a paper-preset :class:`~affectlab.models.tcae.TCAE`.
* :func:`golden_state_dict` / :func:`fill_golden` -- tensors that are pure functions of the official
  tensor names and shapes, so that both implementations get the same weights without storing any;
  :func:`golden_pair`, :func:`affectlab_golden` and :func:`compare_with_fixture` are the rest of the
  golden comparison (``tests/methods/test_tcae_golden.py``, ``benchmarks/official_tcae.py``).
"""
from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Mapping

import torch

from affectlab.models.tcae import TCAE

if TYPE_CHECKING:
    from affectlab.losses.tcae import TCAELossWeights

#: official encoder module → affectlab encoder module (conv, then its BatchNorm where there is one)
_ENCODER_MODULES: dict[str, str] = {
    "conv1": "trunk.0.0", "batch_norm": "trunk.0.1",
    "conv2": "trunk.1.0", "batch_norm2_0": "trunk.1.1",
    "conv3": "trunk.2.0", "batch_norm4_0": "trunk.2.1",
    "conv4": "trunk.3.0", "batch_norm8_0": "trunk.3.1",
    "conv5": "trunk.4.0", "batch_norm8_1": "trunk.4.1",
    "conv6": "pose_branch.0.0", "batch_norm8_2": "pose_branch.0.1",
    "conv7": "pose_branch.1.0", "batch_norm8_3": "pose_branch.1.1",
    "conv8": "pose_branch.2.0",
    "conv6_1": "au_branch.0.0", "batch_norm8_2_1": "au_branch.0.1",
    "conv7_1": "au_branch.1.0", "batch_norm8_3_1": "au_branch.1.1",
    "conv8_1": "au_branch.2.0",
}
#: official decoder → affectlab decoder; both are Sequentials with the same indices (convs 2, 6, …, 30)
_DECODERS: dict[str, str] = {"expression_decoder": "decoder_au", "pose_decoder": "decoder_pose"}
_DECODER_CONVS = tuple(range(2, 31, 4))
_DECODER_NORMS = tuple(range(3, 28, 4))
_CONV_TENSORS = ("weight", "bias")
_NORM_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def official_key_map() -> dict[str, str]:
    """Official ``FrontaliseModelMasks_wider(inner_nc=256, num_output_channels=3, num_masks=0,
    num_additional_ids=32)`` state-dict names → affectlab ``TCAE.from_preset("paper")`` names."""
    mapping: dict[str, str] = {}
    for official, ours in _ENCODER_MODULES.items():
        tensors = _NORM_TENSORS if official.startswith("batch_norm") else _CONV_TENSORS
        for t in tensors:
            mapping[f"encoder.{official}.{t}"] = f"encoder.{ours}.{t}"
    for official, ours in _DECODERS.items():
        for index in _DECODER_CONVS:
            for t in _CONV_TENSORS:
                mapping[f"{official}.{index}.{t}"] = f"{ours}.net.{index}.{t}"
        for index in _DECODER_NORMS:
            for t in _NORM_TENSORS:
                mapping[f"{official}.{index}.{t}"] = f"{ours}.net.{index}.{t}"
    return mapping


def load_official_state_dict(model: TCAE, state: Mapping[str, torch.Tensor]) -> None:
    """Copy an official TCAE ``state_dict`` into ``model`` (paper preset); a missing, extra or
    differently shaped tensor raises ``ValueError`` naming it."""
    mapping = official_key_map()
    missing = sorted(set(mapping) - set(state))
    extra = sorted(set(state) - set(mapping))
    if missing or extra:
        raise ValueError(f"not an official TCAE state_dict: missing {missing[:5]}, unexpected {extra[:5]} "
                         f"({len(missing)} missing, {len(extra)} unexpected of {len(mapping)} tensors)")
    ours = model.state_dict()
    for official, name in mapping.items():
        if tuple(state[official].shape) != tuple(ours[name].shape):
            raise ValueError(f"official tensor {official} has shape {tuple(state[official].shape)}, "
                             f"affectlab {name} expects {tuple(ours[name].shape)} (is the model the paper preset?)")
    model.load_state_dict({mapping[k]: v for k, v in state.items()})


def golden_state_dict(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    """Deterministic tensors for official tensor names → shapes; each is seeded by the CRC-32 of its
    name, so both implementations get the same weights without any being stored.

    Convolutions get U(±1/√fan_in) weights and biases (the PyTorch default range); BatchNorm gets
    γ ~ U(0.5, 1.5), β ~ U(-0.1, 0.1), running mean ~ U(-0.1, 0.1), running variance ~ U(0.1, 0.3) (so
    that the fields of an eval-mode forward are a few pixels, not saturated); ``num_batches_tracked`` is 0.
    """
    out: dict[str, torch.Tensor] = {}
    for name, shape in shapes.items():
        module, kind = name.rsplit(".", 1)
        if kind == "num_batches_tracked":
            out[name] = torch.zeros(tuple(shape), dtype=torch.long)
            continue
        generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        uniform = torch.rand(tuple(shape), generator=generator, dtype=torch.float64)
        if f"{module}.running_mean" in shapes:  # a BatchNorm
            if kind == "weight":
                values = 0.5 + uniform
            elif kind == "running_var":
                values = 0.1 + 0.2 * uniform
            else:
                values = 0.2 * uniform - 0.1
        else:  # a convolution: weight (O, I, kh, kw) or bias (O,)
            _, cin, kh, kw = shapes[f"{module}.weight"]
            values = (2.0 * uniform - 1.0) / float(cin * kh * kw) ** 0.5
        out[name] = values.float()
    return out


def fill_golden(model: TCAE) -> None:
    """Fill a paper-preset ``model`` with :func:`golden_state_dict` of the official names."""
    ours = model.state_dict()
    shapes = {official: tuple(ours[name].shape) for official, name in official_key_map().items()}
    state = golden_state_dict(shapes)
    load_official_state_dict(model, state)


# --- golden comparison: seeded inputs, recorded outputs and their tolerances -----------------------
GOLDEN_BATCH, GOLDEN_SIZE, GOLDEN_SEED = 2, 256, 0
#: the training objective is taken at the curriculum's first window
GOLDEN_WINDOW = (0.0, 0.5)
#: forward tensors recorded (affectlab :class:`~affectlab.models.tcae.TCAEOutput` names) and their kind
GOLDEN_TENSORS: dict[str, str] = {
    "phi_s": "embedding", "psi_s": "embedding", "phi_t": "embedding", "psi_t": "embedding",
    "delta_au": "field", "delta_pose": "field", "attention_au": "field", "delta": "field",
    "au_changed": "image", "pose_changed": "image", "reconstruction": "image",
    "cycle_au": "image", "cycle_pose": "image",
}
#: parameters whose gradient norm is recorded (first conv, both embedding heads, both decoders' ends)
GOLDEN_GRADIENTS = ("encoder.trunk.0.0.weight", "encoder.au_branch.2.0.weight", "encoder.pose_branch.2.0.weight",
                    "decoder_au.net.2.weight", "decoder_au.net.30.weight", "decoder_pose.net.30.weight")
#: absolute tolerance per tensor kind; relative tolerance for loss terms and gradient norms. Measured
#: affectlab vs official (benchmarks/official_tcae.py): tensors and per-sample terms bit-equal, batch
#: means ≤ 1.2e-7 and gradient norms ≤ 5.4e-7 relative on the CPU that recorded the fixture; the
#: margins absorb other CPUs' float32 kernels. On another Xeon (2026-12-03) the fields moved by 2e-6
#: and the first conv's gradient norm by 2.0e-4 relative: bilinear sampling's gradient jumps at pixel
#: boundaries, so the earliest layer's norm amplifies forward rounding; hence 1e-3 for gradients (a
#: 10 % change of one loss weight moves them by up to 9.6e-3).
GOLDEN_TOLERANCES: dict[str, float] = {"embedding": 1e-5, "field": 1e-5, "image": 1e-4, "term": 1e-5,
                                       "gradient": 1e-3}
GOLDEN_SAMPLES = 32


def golden_pair(batch: int = GOLDEN_BATCH, size: int = GOLDEN_SIZE, seed: int = GOLDEN_SEED
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded smooth source and target images in [0.1, 0.9] (16×16 noise, bilinearly upsampled:
    smooth images keep bilinear sampling's gradient away from its pixel-boundary jumps)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(2, batch, 3, 16, 16, generator=generator)
    fine = torch.nn.functional.interpolate(coarse.flatten(0, 1), size=(size, size), mode="bilinear",
                                           align_corners=False).view(2, batch, 3, size, size)
    return 0.1 + 0.8 * fine[0], 0.1 + 0.8 * fine[1]


def summarize(tensor: torch.Tensor, samples: int = GOLDEN_SAMPLES) -> dict:
    """A few kilobytes that pin a tensor: shape, L2 norm and the values at seeded flat indices."""
    flat = tensor.detach().double().flatten()
    index = torch.randint(flat.numel(), (samples,), generator=torch.Generator().manual_seed(flat.numel()))
    return {"shape": list(tensor.shape), "l2": float(flat.norm()), "index": index.tolist(),
            "values": flat[index].tolist()}


def affectlab_golden(model: TCAE, weights: "TCAELossWeights", source: torch.Tensor, target: torch.Tensor) -> dict:
    """affectlab's side of the golden comparison, in eval mode: forward tensors, per-sample loss
    terms, the windowed training total, the validation objective (official ÷B·C quirk) and the
    gradient norms of the training total (``weights``: the loss weights of the preset)."""
    from affectlab.losses.tcae import per_sample_terms, tcae_objective

    model.eval()
    model.zero_grad(set_to_none=True)
    out = model(source, target)
    terms = per_sample_terms(out, source, target)
    total, _ = tcae_objective(terms, weights, GOLDEN_WINDOW)
    scale = 1.0 / (source.shape[0] * model.encoder.embedding_dim)
    val_total, val_terms = tcae_objective({k: v.detach() for k, v in terms.items()}, weights, emb_scale=scale)
    total.backward()
    params = dict(model.named_parameters())
    grads = {name: float(params[name].grad.norm()) for name in GOLDEN_GRADIENTS}
    grads["all"] = float(torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm())
    return {
        "tensors": {name: getattr(out, name).detach().flatten(1) for name in GOLDEN_TENSORS},
        "terms": {name: value.detach() for name, value in terms.items()},
        "train_total": float(total.detach()), "val_terms": {k: float(v) for k, v in val_terms.items()},
        "val_total": float(val_total), "grad_norms": grads,
    }


def compare_with_fixture(fixture: dict, ours: dict) -> list[tuple[str, float, float, bool]]:
    """Rows (quantity, difference, tolerance, within) of ``ours`` (:func:`affectlab_golden`) against
    a recorded official fixture. Tensors: max |diff| over the recorded samples and of the L2 norm;
    terms, totals and gradient norms: relative difference."""
    rows = []
    for name, kind in GOLDEN_TENSORS.items():
        rec = fixture["tensors"][name]
        flat = ours["tensors"][name].double().flatten()
        if list(ours["tensors"][name].shape) != rec["shape"]:
            rows.append((name, float("inf"), GOLDEN_TOLERANCES[kind], False))
            continue
        diff = max((flat[rec["index"]] - torch.tensor(rec["values"], dtype=torch.float64)).abs().max().item(),
                   abs(float(flat.norm()) - rec["l2"]))
        rows.append((name, diff, GOLDEN_TOLERANCES[kind], diff <= GOLDEN_TOLERANCES[kind]))
    scalars = {f"term {k}[{i}]": (float(v[i]), fixture["terms"][k][i]) for k, v in ours["terms"].items()
               for i in range(len(v))}
    scalars["train total"] = (ours["train_total"], fixture["train_total"])
    scalars.update({f"val {k}": (v, fixture["val_terms"][k]) for k, v in ours["val_terms"].items()})
    scalars["val total"] = (ours["val_total"], fixture["val_total"])
    for name, (mine, theirs) in scalars.items():
        diff = abs(mine - theirs) / max(abs(theirs), 1e-12)
        rows.append((name, diff, GOLDEN_TOLERANCES["term"], diff <= GOLDEN_TOLERANCES["term"]))
    for name, theirs in fixture["grad_norms"].items():
        diff = abs(ours["grad_norms"][name] - theirs) / max(abs(theirs), 1e-12)
        rows.append((f"|grad| {name}", diff, GOLDEN_TOLERANCES["gradient"], diff <= GOLDEN_TOLERANCES["gradient"]))
    return rows
