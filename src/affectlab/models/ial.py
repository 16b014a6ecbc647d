"""GCA + dynamic-static fusion + temporal transformer network of Li et al., AAAI 2023 ("IAL").

"Intensity-Aware Loss for Dynamic Facial Expression Recognition in the Wild", Figure 2:
stem → layer1 (ResNet basic block) → layer2/layer3 (basic blocks with the global
convolution-attention block, GCA) → dynamic-static fusion (frame-difference branch of three basic
blocks + static branch with a 2-layer spatial transformer) → per-frame tokens → 2-layer temporal
transformer with learned positional embeddings → mean over time → linear classifier.

Layer sizes follow the official implementation (``methods.md`` §4.1). Unlike the official code,
nothing assumes 112×112 or 16 frames: the GCA kernel sizes, the spatial token count and the
temporal token count are derived from ``image_size`` and ``num_frames``. At 16×3×112×112 the
network has exactly the official model's *used* parameters (18,936,775; the official module also
holds 146,752 parameters that never enter the forward pass, which are left out here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from affectlab.schema import ConfigError

ATTENTIONS = ("gca", "se", "none")


def _down(size: int) -> int:
    """Output size of a 3×3/stride-2/pad-1 conv, 3×3/s2/p1 max-pool or 1×1/s2 conv."""
    return (size - 1) // 2 + 1


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class GCA(nn.Module):
    """Global convolution-attention block (IAL paper, Figure 2 "GCA"; methods.md §4.1 steps 1-5).

    Input: the residual branch ``u`` of a basic block, shape (B·T, C, H, W) with the T frames of a
    clip contiguous. Steps: (1) depth-wise convolution whose kernel covers the whole H×W map → one
    scalar per channel and frame, g_t; (2) clip-level auxiliary logits W₂W₁·mean_t(g_t) (bias-free,
    no non-linearity); (3) s_t = 2·σ(W_b·ReLU(W_a·g_t)) with reduction ``reduction``; (4) channel
    weights w_t = sqrt(s_t ⊙ mean_t(s_t) + 1e-5), the geometric mean of the frame's and the clip's
    weights. Returns ``(u ⊙ w, aux_logits)``; step (5), the residual sum and ReLU, is in the block.
    """

    eps = 1e-5

    def __init__(self, channels: int, map_size: tuple[int, int], num_classes: int = 7, reduction: int = 16):
        super().__init__()
        if channels // reduction < 1:
            raise ValueError(f"GCA: {channels} channels cannot be reduced by {reduction}")
        self.map_size = map_size
        self.global_conv = nn.Conv2d(channels, channels, kernel_size=map_size, groups=channels, bias=False)
        self.aux = nn.Sequential(
            nn.Linear(channels, 2 * channels, bias=False), nn.Linear(2 * channels, num_classes, bias=False)
        )
        # 1×1 convs (not Linear) so that they get the Kaiming fan-out init of every conv, as officially.
        self.squeeze = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.excite = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)

    def forward(self, u: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = u.shape
        if (h, w) != self.map_size:
            raise ValueError(f"GCA built for {self.map_size} maps, got {(h, w)}; set image_size to the input size")
        g = self.global_conv(u)  # (B·T, C, 1, 1)
        aux = self.aux(g.view(n // num_frames, num_frames, c).mean(dim=1))
        s = 2.0 * torch.sigmoid(self.excite(F.relu(self.squeeze(g))))
        s_clip = s.view(n // num_frames, num_frames, c, 1, 1).mean(dim=1, keepdim=True)
        weight = torch.sqrt(s.view(n // num_frames, num_frames, c, 1, 1) * s_clip + self.eps)
        return u * weight.view(n, c, 1, 1), aux


class SqueezeExcitation(nn.Module):
    """Per-frame squeeze-and-excitation (Hu et al. 2018), the "GCA → SE" ablation of the IAL paper."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.squeeze = nn.Conv2d(channels, channels // reduction, kernel_size=1, bias=False)
        self.excite = nn.Conv2d(channels // reduction, channels, kernel_size=1, bias=False)

    def forward(self, u: torch.Tensor, num_frames: int) -> tuple[torch.Tensor, None]:
        s = torch.sigmoid(self.excite(F.relu(self.squeeze(u.mean(dim=(2, 3), keepdim=True)))))
        return u * s, None


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016) with an optional channel attention on the residual branch.

    ``attention``: ``"gca"`` (IAL Figure 2), ``"se"`` or ``"none"`` (plain block). The shortcut is a
    1×1 conv + BN whenever the stride or the width changes. ``forward`` returns ``(y, aux_logits)``.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        stride: int = 1,
        attention: str = "none",
        out_size: Optional[tuple[int, int]] = None,
        num_classes: int = 7,
        reduction: int = 16,
    ):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {attention!r}")
        self.conv1 = conv3x3(cin, cout, stride)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = conv3x3(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = (
            nn.Sequential(nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        if attention == "gca":
            if out_size is None:
                raise ValueError("a GCA block needs the output map size (out_size)")
            self.attention: Optional[nn.Module] = GCA(cout, out_size, num_classes, reduction)
        elif attention == "se":
            self.attention = SqueezeExcitation(cout, reduction)
        else:
            self.attention = None

    def forward(self, x: torch.Tensor, num_frames: int = 1) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        u = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        aux = None
        if self.attention is not None:
            u, aux = self.attention(u, num_frames)
        return F.relu(u + self.shortcut(x)), aux


class Attention(nn.Module):
    """Multi-head self-attention as in ViT (bias-free QKV projection, output projection with bias)."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads = heads
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Identity() if (heads == 1 and dim_head == dim) else nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q·kᵀ/√d)·v, as in the official code
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class Transformer(nn.Module):
    """Pre-norm transformer encoder (LN → MHSA, LN → MLP with tanh-GELU), no dropout, no final LN."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(
                nn.ModuleList(
                    [
                        nn.Sequential(nn.LayerNorm(dim), Attention(dim, heads, dim_head)),
                        nn.Sequential(
                            nn.LayerNorm(dim),
                            nn.Linear(dim, mlp_dim),
                            nn.GELU(approximate="tanh"),
                            nn.Linear(mlp_dim, dim),
                        ),
                    ]
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, mlp in self.layers:
            x = x + attn(x)
            x = x + mlp(x)
        return x


@dataclass
class IALNetConfig:
    """Hyper-parameters of :class:`GCAIALNet`; the defaults are the official (paper) model."""

    num_classes: int = 7
    num_frames: int = 16
    image_size: int = 112
    in_channels: int = 3
    #: widths of the stem/layer1, layer2 and layer3; the DSF module keeps the last width
    widths: list[int] = field(default_factory=lambda: [64, 128, 256])
    #: channel attention in layer2 and layer3: gca (paper) | se | none (ablations)
    attention: str = "gca"
    reduction: int = 16
    dynamic_blocks: int = 3
    spatial_depth: int = 2
    spatial_heads: int = 4
    spatial_dim_head: int = 32
    spatial_mlp_dim: int = 256
    temporal_depth: int = 2
    temporal_heads: int = 4
    temporal_dim_head: int = 32
    temporal_mlp_dim: int = 512


_SMALL = dict(num_frames=8, image_size=64, widths=[16, 32, 64], spatial_heads=2, spatial_dim_head=16,
              spatial_mlp_dim=64, temporal_heads=2, temporal_dim_head=16, temporal_mlp_dim=128)

#: ``paper``: the official network; ``small``: a narrow variant for CPU runs on 8×64×64 clips;
#: ``narrow``: the CPU default (``make train METHOD=ial``) on 8×112×112 clips, so the stem keeps the
#: paper's 28×28 map, at half the ``small`` widths (16 spatial tokens of 32-d, 512-d temporal tokens).
PRESETS: dict[str, dict] = {
    "paper": {},
    "small": _SMALL,
    "narrow": {**{k: v for k, v in _SMALL.items() if k != "image_size"}, "widths": [8, 16, 32]},
}


class IALOutput(NamedTuple):
    """Outputs of :class:`GCAIALNet` for one batch of clips."""

    logits: torch.Tensor  #: (B, K) final logits
    features: torch.Tensor  #: (B, D) mean-pooled temporal features (before the classifier)
    aux_logits: tuple[Optional[torch.Tensor], ...]  #: GCA auxiliary logits of layer2, layer3 (None if no GCA)


class GCAIALNet(nn.Module):
    """The full IAL network (paper Figure 2; methods.md §4.1 table). Input (B, T, C, H, W) in [0, 1]."""

    def __init__(self, cfg: IALNetConfig | None = None, **overrides):
        super().__init__()
        cfg = cfg or IALNetConfig()
        for key, value in overrides.items():
            if not hasattr(cfg, key):
                raise TypeError(f"GCAIALNet: unknown option {key!r}")
            setattr(cfg, key, value)
        if cfg.num_frames < 2:
            raise ValueError(f"the dynamic branch needs frame differences: num_frames must be ≥ 2, got {cfg.num_frames}")
        if len(cfg.widths) != 3:
            raise ValueError(f"widths must list 3 stage widths, got {cfg.widths}")
        self.cfg = cfg
        c1, c2, c3 = cfg.widths
        h, w = _pair(cfg.image_size)
        s1 = (_down(_down(h)), _down(_down(w)))  # stem conv stride 2 + max-pool
        s2 = (_down(s1[0]), _down(s1[1]))
        s3 = (_down(s2[0]), _down(s2[1]))
        s4 = (_down(s3[0]), _down(s3[1]))
        self.map_sizes = {"layer1": s1, "layer2": s2, "layer3": s3, "dsf": s4}

        self.stem = nn.Sequential(
            nn.Conv2d(cfg.in_channels, c1, kernel_size=3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            conv3x3(c1, c1),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
        )
        block = dict(num_classes=cfg.num_classes, reduction=cfg.reduction)
        self.layer1 = BasicBlock(c1, c1, 1, "none")
        self.layer2 = BasicBlock(c1, c2, 2, cfg.attention, s2, **block)
        self.layer3 = BasicBlock(c2, c3, 2, cfg.attention, s3, **block)

        # Dynamic-static fusion (NR-DFERNet's DSF without its class token / snippet filter).
        self.dynamic = nn.Sequential(
            BasicBlock(c3, c3, 2), *[BasicBlock(c3, c3, 1) for _ in range(cfg.dynamic_blocks - 1)]
        )
        self.static_embed = nn.Sequential(conv3x3(c3, c3, 2), nn.BatchNorm2d(c3), nn.ReLU(inplace=True))
        num_patches = s4[0] * s4[1]
        self.static_pos = nn.Parameter(torch.randn(1, num_patches, c3))
        self.spatial_transformer = Transformer(
            c3, cfg.spatial_depth, cfg.spatial_heads, cfg.spatial_dim_head, cfg.spatial_mlp_dim
        )
        token_dim = c3 * num_patches
        # One embedding per input frame; the T-1 difference tokens use the first T-1 (as officially).
        self.temporal_pos = nn.Parameter(torch.randn(1, cfg.num_frames, token_dim))
        self.temporal_transformer = Transformer(
            token_dim, cfg.temporal_depth, cfg.temporal_heads, cfg.temporal_dim_head, cfg.temporal_mlp_dim
        )
        self.classifier = nn.Linear(token_dim, cfg.num_classes)
        self.token_dim = token_dim
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, video: torch.Tensor) -> IALOutput:
        if video.ndim != 5:
            raise ValueError(f"expected a video batch (B, T, C, H, W), got shape {tuple(video.shape)}")
        b, t, c, h, w = video.shape
        if t != self.cfg.num_frames or (h, w) != _pair(self.cfg.image_size):
            raise ValueError(
                f"network built for {self.cfg.num_frames}×{_pair(self.cfg.image_size)} clips, got {t}×{(h, w)}"
            )
        x = self.stem(video.reshape(b * t, c, h, w))
        x, _ = self.layer1(x, t)
        x, aux2 = self.layer2(x, t)
        x, aux3 = self.layer3(x, t)

        _, c3, h3, w3 = x.shape
        x = x.view(b, t, c3, h3, w3)
        diff = (x[:, 1:] - x[:, :-1]).reshape(b * (t - 1), c3, h3, w3)
        static = x[:, :-1].reshape(b * (t - 1), c3, h3, w3)
        for blk in self.dynamic:
            diff, _ = blk(diff)
        static = self.static_embed(static)
        h4, w4 = static.shape[-2:]
        tokens = static.flatten(2).transpose(1, 2) + self.static_pos
        static = self.spatial_transformer(tokens).transpose(1, 2).reshape(-1, c3, h4, w4)
        fused = (static + diff).reshape(b, t - 1, -1)

        feats = self.temporal_transformer(fused + self.temporal_pos[:, : t - 1]).mean(dim=1)
        return IALOutput(self.classifier(feats), feats, (aux2, aux3))


def build_ial_net(preset: str = "paper", **overrides) -> GCAIALNet:
    """The network of a named preset (``paper`` or ``small``) with keyword overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown IAL preset {preset!r}; available: {', '.join(PRESETS)}")
    return GCAIALNet(IALNetConfig(**{**PRESETS[preset], **overrides}))
