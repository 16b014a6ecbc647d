"""Networks of the region/relation AU model (Song & Liu, ICASSP 2023; reconstruction, spec §2.2 [X]).

* :func:`build_swin` — timm Swin Transformer (``swin_tiny_patch4_window7_224`` for the paper preset,
  or a small configuration of timm's own ``SwinTransformer`` class for CPU runs); never downloaded.
* :class:`SwinFeatures` — dense features (B, C, h, w) of one Swin stage.
* :class:`AURegionPooling` — region learning: attention inside each AU region (a shared timm
  ``SwinTransformerBlock`` on the AU-weighted map, or masked multi-head attention), then pooling
  under the AU attention map, ``f_i = Σ_p M_i(p) F_i(p) / Σ_p M_i(p)``.
* :class:`RegionRelationEncoder` — image + landmarks → AU features (B, K, C); also the masked
  feature map of its SimMIM term.
* :class:`TwoViewAugment` — batched view augmentation that moves the landmarks with the pixels
  (random resized crop, horizontal flip with left/right landmark swap, colour jitter).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock

from affectlab.models.au_attention import au_attention_maps, check_au_names, flip_landmarks, to_49

SMALL_SWIN = "small"


def load_backbone_checkpoint(model: nn.Module, path: str | Path) -> None:
    """Load a local (ImageNet) checkpoint into a backbone without a classifier head."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"backbone checkpoint not found: {file}")
    state = torch.load(file, map_location="cpu", weights_only=False)
    for key in ("state_dict", "model", "module"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("head")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if "relative_position_index" not in k and "attn_mask" not in k]
    if missing:
        raise ValueError(f"{file}: checkpoint does not fit the backbone; missing keys {missing[:5]} …")
    if unexpected:
        raise ValueError(f"{file}: checkpoint has keys the backbone lacks: {unexpected[:5]} …")


def build_swin(
    name: str,
    image_size: int,
    checkpoint: Optional[str] = None,
    embed_dim: int = 32,
    depths: Sequence[int] = (2, 2),
    num_heads: Sequence[int] = (2, 4),
    window_size: int = 4,
    drop_path_rate: float = 0.1,
) -> SwinTransformer:
    """A timm Swin without classifier: a registered timm name, or ``"small"`` for the CPU configuration."""
    if name == SMALL_SWIN:
        model = SwinTransformer(
            img_size=image_size, patch_size=4, num_classes=0, embed_dim=embed_dim, depths=tuple(depths),
            num_heads=tuple(num_heads), window_size=window_size, drop_path_rate=drop_path_rate,
        )
    else:
        if "swin" not in name:
            raise ValueError(f"backbone must be a timm Swin Transformer or {SMALL_SWIN!r}, got {name!r}")
        model = timm.create_model(name, pretrained=False, num_classes=0, img_size=image_size,
                                  drop_path_rate=drop_path_rate)
    if checkpoint:
        load_backbone_checkpoint(model, checkpoint)
    return model


class SwinFeatures(nn.Module):
    """Dense NCHW features of Swin stage ``stage`` (1-based; -1 = last, with the final norm)."""

    def __init__(self, swin: SwinTransformer, stage: int = -1) -> None:
        super().__init__()
        num_stages = len(swin.layers)
        self.stage = num_stages if stage == -1 else stage
        if not 1 <= self.stage <= num_stages:
            raise ValueError(f"feature stage must be in 1..{num_stages} or -1, got {stage}")
        self.swin = swin
        if self.stage < num_stages:  # the later stages and the final norm never run: no gradient for DDP to wait on
            for unused in (*swin.layers[self.stage:], swin.norm):
                unused.requires_grad_(False)
        self.out_channels = swin.feature_info[self.stage - 1]["num_chs"]
        self.reduction = swin.feature_info[self.stage - 1]["reduction"]

    def forward(self, images: torch.Tensor, token_mask: Optional[torch.Tensor] = None,
                mask_token: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``token_mask`` (B, h, w) bool over the patch tokens: those are replaced by ``mask_token`` (C,)
        before the first stage (SimMIM, Xie et al. CVPR 2022)."""
        x = self.swin.patch_embed(images)
        if token_mask is not None:
            x = torch.where(token_mask[..., None], mask_token.to(x), x)
        for layer in self.swin.layers[: self.stage]:
            x = layer(x)
        if self.stage == len(self.swin.layers):
            x = self.swin.norm(x)
        return x.permute(0, 3, 1, 2).contiguous()


class AURegionPooling(nn.Module):
    """Region learning (abstract: "Swin Transformer … long-distance dependencies within each AU region").

    ``block='swin'``: one timm ``SwinTransformerBlock`` (shared by all AUs) runs on the map weighted by
    each AU's attention map, so attention acts on that AU's region only; ``'none'``: pooling only (the
    ablation without region learning).
    The region features are the map-weighted averages of the result.
    """

    def __init__(self, channels: int, resolution: tuple[int, int], block: str = "swin",
                 num_heads: int = 4, window_size: int = 7, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.block_kind = block
        if block == "swin":
            window = min(window_size, *resolution)
            self.block = SwinTransformerBlock(dim=channels, input_resolution=resolution, num_heads=num_heads,
                                              window_size=window, always_partition=True, mlp_ratio=mlp_ratio)
        elif block != "none":
            raise ValueError(f"region block must be swin | none, got {block!r}")

    def forward(self, features: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """features (B, C, h, w), maps (B, K, h, w) → AU features (B, K, C)."""
        b, c, h, w = features.shape
        k = maps.shape[1]
        weights = maps.flatten(2)  # (B, K, hw)
        if self.block_kind == "none":
            pooled = torch.einsum("bkp,bcp->bkc", weights, features.flatten(2))
            return pooled / weights.sum(-1, keepdim=True).clamp_min(1e-6)
        tokens = features.flatten(2).transpose(1, 2)  # (B, hw, C)
        region = tokens[:, None] * weights[..., None]  # (B, K, hw, C)
        out = self.block(region.reshape(b * k, h, w, c)).reshape(b, k, h * w, c)
        pooled = (out * weights[..., None]).sum(2)
        return pooled / weights.sum(-1)[..., None].clamp_min(1e-6)


class RegionRelationEncoder(nn.Module):
    """Image (B, 3, H, W) + landmarks (B, P, 2) → AU region features (B, K, C) (spec §2.2 [X])."""

    def __init__(
        self,
        au_names: Sequence[str],
        image_size: int,
        backbone: str = SMALL_SWIN,
        checkpoint: Optional[str] = None,
        feature_stage: int = -1,
        region_block: str = "swin",
        region_heads: int = 4,
        region_mlp_ratio: float = 4.0,
        attention_xi: float = 4.0,
        small_embed_dim: int = 32,
        small_depths: Sequence[int] = (2, 2),
        small_heads: Sequence[int] = (2, 4),
        small_window: int = 4,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        self.au_names = check_au_names(au_names)
        self.image_size = int(image_size)
        self.attention_xi = attention_xi
        swin = build_swin(backbone, image_size, checkpoint, small_embed_dim, small_depths, small_heads,
                          small_window, drop_path_rate)
        self.features = SwinFeatures(swin, feature_stage)
        side = self.image_size // self.features.reduction
        self.map_size = (side, side)
        window = swin.layers[-1].blocks[0].window_size[0]
        self.region = AURegionPooling(self.features.out_channels, self.map_size, region_block, region_heads, window,
                                     region_mlp_ratio)
        self.out_channels = self.features.out_channels
        self.embed_dim = swin.feature_info[0]["num_chs"]
        self.patch_size = self.features.reduction // (2 ** (self.features.stage - 1))

    def attention_maps(self, landmarks: torch.Tensor) -> torch.Tensor:
        return au_attention_maps(landmarks.float(), self.au_names, (self.image_size, self.image_size),
                                 self.map_size, xi=self.attention_xi)

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            raise ValueError(f"expected {self.image_size}×{self.image_size} images, got {tuple(images.shape[-2:])}")
        return self.region(self.features(images), self.attention_maps(landmarks))

    def masked_features(self, images: torch.Tensor, mask_ratio: float,
                        mask_token: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feature map of the images with each feature-map cell masked with probability ``mask_ratio``
        (all patch tokens under the cell replaced by ``mask_token``, SimMIM), and the (B, 1, H, W)
        pixel mask of those cells."""
        h, w = self.map_size
        cells = torch.rand(images.shape[0], h, w, device=images.device) < mask_ratio
        up = self.features.reduction // self.patch_size
        token_mask = cells.repeat_interleave(up, 1).repeat_interleave(up, 2)
        feats = self.features(images, token_mask, mask_token)
        r = self.features.reduction
        return feats, cells.repeat_interleave(r, 1).repeat_interleave(r, 2)[:, None].to(images)


class TokenBatchNorm(nn.Module):
    """BatchNorm1d over (B, K, D) tokens: statistics ``shared`` over batch and AUs, or ``per_au``
    (over the batch separately for every AU token, as SimSiam's BN normalises over images only)."""

    def __init__(self, dim: int, num_tokens: int, stats: str = "shared", affine: bool = True) -> None:
        super().__init__()
        if stats not in ("shared", "per_au"):
            raise ValueError(f"BatchNorm statistics must be shared | per_au, got {stats!r}")
        self.per_au = stats == "per_au"
        self.bn = nn.BatchNorm1d(dim * num_tokens if self.per_au else dim, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, d = x.shape
        if self.per_au:
            return self.bn(x.reshape(b, k * d)).reshape(b, k, d)
        return self.bn(x.reshape(b * k, d)).reshape(b, k, d)


class TokenMLP(nn.Module):
    """Linear-BN-ReLU-Linear(-BN) per AU token (SimSiam/BYOL projector and predictor shape; the linear
    layers are shared by all AUs).

    ``output_bn`` adds SimSiam's BatchNorm on the projector output (SimSiam §4.4 finds it helps);
    ``bn_stats`` chooses whether BN statistics are shared over the batch and the AUs or taken per AU.
    With ``shared`` statistics a per-AU constant (the same output for every image, different per AU)
    still has non-zero BN variance, so BN does not resist that collapse; ``per_au`` does.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, output_bn: bool = False, num_tokens: int = 1,
                 bn_stats: str = "shared") -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.bn1 = TokenBatchNorm(hidden, num_tokens, bn_stats)
        self.fc2 = nn.Linear(hidden, out_dim)
        self.bn2 = TokenBatchNorm(out_dim, num_tokens, bn_stats) if output_bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.fc2(F.relu(self.bn1(self.fc1(x)))))


class TwoViewAugment(nn.Module):
    """One random view of a batch; landmarks (converted to the 49-point layout) follow the pixels.

    Random resized crop (square, scale ∈ [min_scale, 1] of the side, random position inside the
    image), horizontal flip with probability ``flip_p`` (x → W − 1 − x and left/right swap), then a
    per-image affine colour jitter ``x·(1+c) + b`` on the normalised pixels.
    """

    def __init__(self, min_scale: float = 0.8, flip_p: float = 0.5, brightness: float = 0.2,
                 contrast: float = 0.2) -> None:
        super().__init__()
        self.min_scale, self.flip_p, self.brightness, self.contrast = min_scale, flip_p, brightness, contrast

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = images.shape
        dev, dt = images.device, images.dtype
        lm = to_49(landmarks).to(dt)
        scale = torch.empty(b, device=dev, dtype=dt).uniform_(self.min_scale, 1.0)
        shift = (torch.rand(b, 2, device=dev, dtype=dt) * 2 - 1) * (1 - scale)[:, None]
        theta = torch.zeros(b, 2, 3, device=dev, dtype=dt)
        theta[:, 0, 0] = scale
        theta[:, 1, 1] = scale
        theta[:, :, 2] = shift
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        size = torch.tensor([w, h], device=dev, dtype=dt)
        # pixel-index → grid coordinates (align_corners=False); input = scale·output + shift
        normalised = 2 * (lm + 0.5) / size - 1
        lm = ((normalised - shift[:, None]) / scale[:, None, None] + 1) * size / 2 - 0.5
        flip = torch.rand(b, device=dev) < self.flip_p
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
        lm = torch.where(flip[:, None, None], flip_landmarks(lm, float(w)), lm)
        return affine_jitter(out, self.contrast, self.brightness), lm


def affine_jitter(images: torch.Tensor, contrast: float, brightness: float) -> torch.Tensor:
    """``x·(1 + c) + b`` with c ∈ [−contrast, contrast], b ∈ [−brightness, brightness] drawn per image."""
    shape = (images.shape[0], 1, 1, 1)
    gain = 1 + (torch.rand(shape, device=images.device, dtype=images.dtype) * 2 - 1) * contrast
    bias = (torch.rand(shape, device=images.device, dtype=images.dtype) * 2 - 1) * brightness
    return images * gain + bias
