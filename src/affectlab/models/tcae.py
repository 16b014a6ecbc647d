"""TCAE networks (Li, Zeng, Shan, Chen, CVPR 2019, Fig. 2; official ``models_multiview.py``).

* :class:`TCAEEncoder` -- a shared stride-2 conv trunk and two branches giving the AU embedding φ
  and the pose embedding ψ (each C×1×1, returned flattened).
* :class:`TCAEDecoder` -- maps ``[embedding to warp ; embedding to reach]`` to a displacement field
  (2 channels, normalised coordinates) and an attention logit (1 channel), all tanh-bounded.
* :func:`warp` -- backward warping on the identity grid, clamped to [-1, 1], bilinear with
  ``align_corners=True`` (PyTorch 0.4.1 ``grid_sample`` semantics).
* :class:`TCAE` -- the twin-cycle forward pass of spec §1.1 steps 1-6, with the official gradient
  routing (the pixels being warped are detached; grids and re-encodings are not).
* :func:`crop_jitter` -- the official training-pair jitter (random square crop, resized back).
* :func:`load_pretrained` -- TCAE weights from a pretrain-stage checkpoint or a plain ``state_dict``.

The ``paper`` preset has the official parameter counts at 256×256 (encoder 8,035,488, each decoder
3,340,803, total 14,717,094); ``small`` is a narrower 64-px network for CPU runs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.schema import ConfigError


@dataclass
class TCAENetConfig:
    """Network shape. Depth follows the image size: ``len(trunk) + len(branch) = log2(size)``
    stride-2 convs bring the image to 1×1, and ``len(decoder) + 1 = log2(size)`` ×2 up-blocks
    bring the 1×1 code back; the embedding size is ``branch_channels[-1]``."""

    image_size: int = 64
    trunk_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    branch_channels: list[int] = field(default_factory=lambda: [128, 128, 128])
    decoder_channels: list[int] = field(default_factory=lambda: [128, 128, 64, 32, 16])
    #: not official (PyTorch default init there): zero the decoders' last conv, so that at the start
    #: Δ_A = Δ_P = 0 (every warp is the identity) and α_A = ½
    zero_init_fields: bool = False


PRESETS: dict[str, TCAENetConfig] = {
    "paper": TCAENetConfig(
        image_size=256,
        trunk_channels=[32, 64, 128, 256, 256],
        branch_channels=[256, 256, 256],
        decoder_channels=[256, 256, 256, 256, 128, 64, 32],
    ),
    "small": TCAENetConfig(),
}


def check_net_config(cfg: TCAENetConfig) -> None:
    """Raise ``ValueError`` naming the keys when the channel lists do not fit the image size."""
    size = int(cfg.image_size)
    levels = int(round(math.log2(size))) if size > 0 else -1
    if size <= 1 or 2**levels != size:
        raise ValueError(f"tcae model.image_size must be a power of two, got {size}")
    if len(cfg.trunk_channels) + len(cfg.branch_channels) != levels:
        raise ValueError(
            f"tcae model: len(trunk_channels) + len(branch_channels) must be log2(image_size) = {levels} "
            f"(got {len(cfg.trunk_channels)} + {len(cfg.branch_channels)})"
        )
    if len(cfg.branch_channels) < 1:
        raise ValueError("tcae model.branch_channels needs at least one entry (the embedding conv)")
    if len(cfg.decoder_channels) + 1 != levels:
        raise ValueError(
            f"tcae model: len(decoder_channels) must be log2(image_size) - 1 = {levels - 1} "
            f"(got {len(cfg.decoder_channels)})"
        )


def _down(cin: int, cout: int, plain: bool = False) -> nn.Sequential:
    conv = nn.Conv2d(cin, cout, kernel_size=4, stride=2, padding=1, bias=True)
    if plain:
        return nn.Sequential(conv)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True))


def _branch(cin: int, channels: list[int]) -> nn.Sequential:
    layers, c = [], cin
    for i, cout in enumerate(channels):
        layers.append(_down(c, cout, plain=i == len(channels) - 1))
        c = cout
    return nn.Sequential(*layers)


class TCAEEncoder(nn.Module):
    """Two-branch encoder E (spec §1.1 table; ``Gen_sep_feature``): 4×4 stride-2 convs with BN and
    LeakyReLU(0.2); each branch ends in a plain conv (no BN, no activation) to a 1×1 embedding."""

    def __init__(self, cfg: TCAENetConfig) -> None:
        super().__init__()
        check_net_config(cfg)
        layers, c = [], 3
        for cout in cfg.trunk_channels:
            layers.append(_down(c, cout))
            c = cout
        self.trunk = nn.Sequential(*layers)
        self.au_branch = _branch(c, list(cfg.branch_channels))
        self.pose_branch = _branch(c, list(cfg.branch_channels))
        self.embedding_dim = int(cfg.branch_channels[-1])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``image`` (B,3,S,S) in [0,1] → (φ, ψ), each (B, embedding_dim)."""
        h = self.trunk(image)
        return self.au_branch(h).flatten(1), self.pose_branch(h).flatten(1)


class TCAEDecoder(nn.Module):
    """Displacement decoder D_A or D_P (``generate_decoder_layers``): ReLU on the concatenated
    1×1 input, then up-blocks (×2 bilinear, 3×3 conv, BN, ReLU), the last one conv → 3 channels
    → tanh. Output channels: Δx, Δy (normalised coordinates) and the attention logit m."""

    def __init__(self, cfg: TCAENetConfig) -> None:
        super().__init__()
        check_net_config(cfg)
        c = 2 * int(cfg.branch_channels[-1])
        blocks: list[nn.Module] = [nn.ReLU()]
        for cout in cfg.decoder_channels:
            blocks += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(c, cout, kernel_size=3, stride=1, padding=1, bias=True),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
            c = cout
        blocks += [
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(c, 3, kernel_size=3, stride=1, padding=1, bias=True),
            nn.Tanh(),
        ]
        self.net = nn.Sequential(*blocks)
        if cfg.zero_init_fields:
            last = blocks[-2]
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def forward(self, moving: torch.Tensor, reach: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (B,C) of the image to warp and of the image to reach → (Δ (B,2,S,S), m (B,1,S,S))."""
        out = self.net(torch.cat([moving, reach], dim=1)[:, :, None, None])
        return out[:, :2], out[:, 2:]


def identity_grid(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Identity sampling grid G (1,2,S,S) in float32: channel 0 = x (along width), 1 = y.

    Built as ``linspace(-1, 1, S)`` in float64 and rounded once to float32, which is bit-equal to the
    official ``torch.Tensor(np.linspace(-1, 1, S))``. It never follows an autocast dtype: in bf16 the
    coordinates near ±1 are 2**-8 apart (half a pixel at 256 px) and neighbouring columns collapse.
    """
    axis = torch.linspace(-1.0, 1.0, size, dtype=torch.float64).to(device=device, dtype=torch.float32)
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([gx, gy])[None]


def sampling_grid(displacement: torch.Tensor) -> torch.Tensor:
    """clamp(G + Δ, -1, 1) in float32 for a field Δ (B,2,H,W) on a square image (spec §1.1 "Warping").

    The sum is formed in float32 whatever the dtype of Δ (e.g. bf16 under autocast)."""
    grid = identity_grid(displacement.shape[-1], displacement.device)
    return (grid + displacement.float()).clamp(-1.0, 1.0)


def warp(image: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Backward warp: output(p) = bilinear sample of ``image`` at clamp(G + Δ)(p), align_corners=True.

    Runs in float32 with autocast disabled, so a mixed-precision run samples on the exact grid."""
    with torch.autocast(device_type=displacement.device.type, enabled=False):
        grid = sampling_grid(displacement).permute(0, 2, 3, 1)
        return F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def fuse_fields(delta_au: torch.Tensor, logit_au: torch.Tensor, delta_pose: torch.Tensor,
                logit_pose: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention fusion Δ = α_A Δ_A + α_P Δ_P with α = softmax over the two logits; returns (α_A, Δ).

    Δ is written as the official exp-weighted mean ``(Δ_P e^{m_P} + Δ_A e^{m_A}) / (e^{m_P} + e^{m_A})``
    (the logits are tanh-bounded, so the plain exponentials cannot overflow); it then rounds exactly
    as the official code does."""
    weight_au, weight_pose = logit_au.exp(), logit_pose.exp()
    norm = weight_pose + weight_au
    return weight_au / norm, (delta_pose * weight_pose + delta_au * weight_au) / norm


@dataclass
class TCAEOutput:
    """Every tensor the TCAE objective needs (names follow spec §1.1)."""

    phi_s: torch.Tensor
    psi_s: torch.Tensor
    phi_t: torch.Tensor
    psi_t: torch.Tensor
    delta_au: torch.Tensor      # Δ_A (B,2,S,S)
    delta_pose: torch.Tensor    # Δ_P
    attention_au: torch.Tensor  # α_A (B,1,S,S), softmax weight of the AU field
    delta: torch.Tensor         # fused Δ = α_A Δ_A + α_P Δ_P
    au_changed: torch.Tensor    # I_A = W(I_s, Δ_A)
    pose_changed: torch.Tensor  # I_P = W(I_s, Δ_P)
    reconstruction: torch.Tensor  # Î_t = W(I_s, Δ)
    phi_au: torch.Tensor
    psi_au: torch.Tensor
    phi_pose: torch.Tensor
    psi_pose: torch.Tensor
    phi_rec: torch.Tensor
    psi_rec: torch.Tensor
    cycle_au: torch.Tensor      # Ĩ_s^A = W(I_A, Δ_A')
    cycle_pose: torch.Tensor    # Ĩ_s^P = W(I_P, Δ_P')


class TCAE(nn.Module):
    """Twin-cycle autoencoder (CVPR 2019 Fig. 2): encoder E, AU decoder D_A, pose decoder D_P."""

    def __init__(self, cfg: TCAENetConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or TCAENetConfig()
        check_net_config(cfg)
        self.cfg = cfg
        self.encoder = TCAEEncoder(cfg)
        self.decoder_au = TCAEDecoder(cfg)
        self.decoder_pose = TCAEDecoder(cfg)

    @classmethod
    def from_preset(cls, name: str) -> "TCAE":
        if name not in PRESETS:
            raise ConfigError(f"unknown TCAE preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls(PRESETS[name])

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> TCAEOutput:
        """Spec §1.1 steps 1-6 on a batch of (I_s, I_t) pairs in [0,1]."""
        phi_s, psi_s = self.encoder(source)
        phi_t, psi_t = self.encoder(target)
        delta_au, logit_au = self.decoder_au(phi_s, phi_t)
        delta_pose, logit_pose = self.decoder_pose(psi_s, psi_t)
        pixels = source.detach()  # gradients reach the decoders only through the sampling grids
        au_changed = warp(pixels, delta_au)
        pose_changed = warp(pixels, delta_pose)
        attention_au, delta = fuse_fields(delta_au, logit_au, delta_pose, logit_pose)
        reconstruction = warp(pixels, delta)
        phi_au, psi_au = self.encoder(au_changed)
        phi_pose, psi_pose = self.encoder(pose_changed)
        phi_rec, psi_rec = self.encoder(reconstruction)
        back_au, _ = self.decoder_au(phi_au, phi_s)
        back_pose, _ = self.decoder_pose(psi_pose, psi_s)
        cycle_au = warp(au_changed.detach(), back_au)
        cycle_pose = warp(pose_changed.detach(), back_pose)
        return TCAEOutput(
            phi_s, psi_s, phi_t, psi_t, delta_au, delta_pose, attention_au, delta,
            au_changed, pose_changed, reconstruction, phi_au, psi_au, phi_pose, psi_pose,
            phi_rec, psi_rec, cycle_au, cycle_pose,
        )


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def crop_jitter(images: torch.Tensor, crop: float, generator: torch.Generator) -> torch.Tensor:
    """Official TCAE jitter on a batch (B,C,S,S): per image, a square crop of side ``crop·S/256`` at a
    uniformly random position inside the central ``224·S/256`` region, bilinearly resized to S×S.

    (The official pad-24 → centre-crop-224 → random-crop → resize chain never reaches the padding, so
    this is the same geometry as an affine resampling.)"""
    b, _, s, _ = images.shape
    scale = s / 256.0
    side = crop * scale
    free = (224.0 - crop) * scale
    offsets = 16.0 * scale + torch.rand(b, 2, generator=generator) * free  # top-left x, y in pixels
    centre = (2.0 * (offsets + side / 2.0)) / s - 1.0
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = side / s
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def load_pretrained(model: TCAE, path: str | Path) -> None:
    """Load TCAE weights from a pretrain-stage Lightning checkpoint (keys ``model.*``) or a plain
    ``TCAE.state_dict()``; a mismatch raises naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tcae pretrained_checkpoint not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=False)
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a Lightning checkpoint or a TCAE state_dict")
    if any(k.startswith("model.") for k in state):
        state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the configured TCAE model ({err})") from None
