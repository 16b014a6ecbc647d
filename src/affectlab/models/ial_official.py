"""Tensor names of the official IAL code (muse1998/IAL @39a24b6, ``final_model.GenerateModel``) for
affectlab's ``paper`` network, and a deterministic weight fill keyed by those names.

The mapping lets an official checkpoint be loaded into :class:`~affectlab.models.ial.GCAIALNet`
(:func:`load_official_state_dict`) and lets the golden test (``tests/methods/test_ial_golden.py``)
and ``benchmarks/official_ial.py`` fill both networks with identical values without sharing a file
of weights: :func:`golden_fill` derives every tensor from a generator seeded by a stable hash of its
official name. Module correspondence: docs/fidelity.md (IAL).
"""
from __future__ import annotations

import hashlib
import math
import re
from typing import Callable, Mapping

import torch
from torch import nn

# sub-module names inside a GCA block and a transformer layer: affectlab → official
_GCA = {"global_conv": "gc.0", "aux": "AUX_fc", "squeeze": "fc1.0", "excite": "fc2.0"}
_TRANSFORMER = {"0.0": "0.fn.norm", "0.1.to_qkv": "0.fn.fn.to_qkv", "0.1.to_out": "0.fn.fn.to_out.0",
                "1.0": "1.fn.norm", "1.1": "1.fn.fn.net.0", "1.3": "1.fn.fn.net.3"}
_OFFICIAL_TRANSFORMER = {"spatial": "pos_transformer", "temporal": "temporal_transformer"}

# affectlab key prefix pattern → official prefix, tried in order (first match wins)
_RULES: list[tuple[str, Callable[[re.Match], str]]] = [
    (r"stem\.([013])\.", lambda m: f"s_former.conv1.{m[1]}."),
    (r"stem\.4\.", lambda m: "s_former.bn1."),
    (r"layer1\.", lambda m: "s_former.layer1.0."),
    (r"layer([23])\.shortcut\.", lambda m: f"s_former.layer{m[1]}.0.downsample."),
    (r"layer([23])\.attention\.(\w+)\.", lambda m: f"s_former.layer{m[1]}.0.{_GCA[m[2]]}."),
    (r"layer([23])\.", lambda m: f"s_former.layer{m[1]}.0."),
    (r"dynamic\.(\d+)\.shortcut\.", lambda m: f"s_former.layer4.{m[1]}.downsample."),
    (r"dynamic\.(\d+)\.", lambda m: f"s_former.layer4.{m[1]}."),
    (r"static_embed\.", lambda m: "s_former.patch_embedding."),
    (r"static_pos$", lambda m: "s_former.pos_embedding_pos"),
    (r"temporal_pos$", lambda m: "s_former.pos_embedding"),
    (r"(spatial|temporal)_transformer\.layers\.(\d+)\.(0\.0|0\.1\.to_qkv|0\.1\.to_out|1\.0|1\.1|1\.3)\.",
     lambda m: f"s_former.{_OFFICIAL_TRANSFORMER[m[1]]}.layers.{m[2]}.{_TRANSFORMER[m[3]]}."),
    (r"classifier\.", lambda m: "fc_f."),
]


def official_name(name: str) -> str:
    """The official state-dict key of affectlab's ``paper``-network key ``name`` (KeyError if none)."""
    for pattern, official_prefix in _RULES:
        match = re.match(pattern, name)
        if match:
            try:
                return official_prefix(match) + name[match.end():]
            except KeyError:
                break
    raise KeyError(f"no official IAL tensor corresponds to {name!r}")


def golden_fill(name: str, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A tensor for official key ``name``, reproducible from the name and shape alone.

    Values are ``u ∈ [0, 1)`` from a CPU generator seeded with the first 8 bytes of sha256(name),
    shaped by role: weights (≥ 2-D) uniform with unit-variance fan-in scaling, norm scales ``1 ± 0.1``,
    biases ``± 0.05``, BN running means ``± 0.1`` and variances in ``[0.5, 1.5)``, positional
    embeddings ``± 1``; ``num_batches_tracked`` is 3.
    """
    shape = tuple(shape)
    if name.endswith("num_batches_tracked"):
        return torch.tensor(3, dtype=torch.long)
    seed = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") & (2**63 - 1)
    u = torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    centred = 2 * u - 1
    if name.endswith("running_var"):
        out = 0.5 + u
    elif name.endswith("running_mean"):
        out = 0.1 * centred
    elif "pos_embedding" in name:
        out = centred
    elif len(shape) >= 2:
        out = centred * math.sqrt(3.0 / math.prod(shape[1:]))
    elif name.endswith("weight"):
        out = 1 + 0.1 * centred
    else:
        out = 0.05 * centred
    return out.to(dtype)


#: the official network is hard-wired to clips of 16 frames of 3×112×112
OFFICIAL_CLIP = (16, 3, 112, 112)


def golden_inputs(batch: int, seed: int, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips in [0, 1) of shape (batch, 16, 3, 112, 112) and labels in 0…6, drawn in that order from one
    seeded CPU generator (the inputs of the golden comparison)."""
    gen = torch.Generator().manual_seed(seed)
    video = torch.rand((batch, *OFFICIAL_CLIP), generator=gen, dtype=torch.float64).to(dtype)
    labels = torch.randint(0, 7, (batch,), generator=gen)
    return video, labels


def fill_golden(net: nn.Module) -> None:
    """Overwrite every parameter and buffer of affectlab's ``paper`` network with :func:`golden_fill`."""
    state = net.state_dict()
    net.load_state_dict({k: golden_fill(official_name(k), v.shape, v.dtype) for k, v in state.items()}, strict=True)


def load_official_state_dict(net: nn.Module, official: Mapping[str, torch.Tensor]) -> None:
    """Load an official IAL checkpoint (``module.`` prefixes of DataParallel allowed) into ``net``.

    Official tensors the network does not use (layer1's idle GCA, ``glb`` convs, ``bias1/2``,
    ``s_former.bias``) are ignored; a missing or mis-shaped tensor fails naming it.
    """
    official = {k.removeprefix("module."): v for k, v in official.items()}
    out = {}
    for key, value in net.state_dict().items():
        src = official_name(key)
        if src not in official:
            raise KeyError(f"official checkpoint lacks {src!r} (for affectlab {key!r})")
        if tuple(official[src].shape) != tuple(value.shape):
            raise ValueError(f"{src}: shape {tuple(official[src].shape)} in the checkpoint, "
                             f"{tuple(value.shape)} expected for {key!r}")
        out[key] = official[src]
    net.load_state_dict(out, strict=True)
