"""Spatio-temporal model of Sanchez et al., "Semi-supervised Facial Action Unit Intensity Estimation
with Contrastive Learning" (ACCV 2020): a per-frame feature extractor followed by a temporal module.

Paper [AB]: the model is "a per-frame feature extractor + a temporal module", trained in two stages
and supervised through back-propagation through time. Everything else here is affectlab's
reconstruction [X] (``docs/methods/contrastive_intensity.md``): the timm CNN trunk (ResNet-18 in the
paper preset), the unidirectional GRU, the future-embedding predictor of the predictive contrastive
loss and the linear intensity regressor head. A causal temporal transformer, an MLP regressor, an L1
loss and LayerNorm of the frame embeddings were options until 2026-12-03 (used by no preset; code at
05f480b).
"""
from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn


def _tuplify(kwargs: dict[str, Any]) -> dict[str, Any]:
    # YAML/OmegaConf give lists; timm expects tuples for ``channels``/``layers``.
    return {k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in kwargs.items()}


class FrameEncoder(nn.Module):
    """Per-frame 2-D CNN (any timm model), applied independently to every frame.

    ``backbone_kwargs`` go to ``timm.create_model`` (e.g. ``channels=[16, 32, 64, 128],
    layers=[1, 1, 1, 1], stem_width=16`` turns resnet18 into a CPU-sized trunk). ``grid`` = 0: the
    timm global pooling (a D-vector per frame); ``grid`` = g ≥ 1: the last feature map average-pooled
    to g×g cells and flattened (D·g² per frame), so the embedding keeps where on the aligned face a
    feature fires (AUs are local) [X].
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        in_chans: int = 3,
        backbone_kwargs: dict[str, Any] | None = None,
        grid: int = 0,
    ) -> None:
        super().__init__()
        if grid < 0:
            raise ValueError(f"grid must be 0 (global pooling) or a number of cells per side, got {grid}")
        kwargs = _tuplify(dict(backbone_kwargs or {}))
        if pretrained and not checkpoint_path:
            raise ValueError(f"{backbone}: pretrained weights are loaded from a local checkpoint_path only "
                             "(nothing is downloaded); set checkpoint_path or pretrained=False")
        if checkpoint_path:
            kwargs["pretrained_cfg_overlay"] = dict(file=str(checkpoint_path))
            pretrained = True  # timm then reads the local file given in the overlay
        self.net = timm.create_model(backbone, pretrained=pretrained, num_classes=0, in_chans=in_chans, **kwargs)
        self.grid = grid
        self.out_dim: int = int(self.net.num_features) * max(grid, 1) ** 2

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video`` (B,T,C,H,W) → per-frame embeddings (B,T,D)."""
        if video.ndim != 5:
            raise ValueError(f"FrameEncoder expects a (B,T,C,H,W) video, got shape {tuple(video.shape)}")
        b, t = video.shape[:2]
        if self.grid:
            feats = nn.functional.adaptive_avg_pool2d(self.net.forward_features(video.flatten(0, 1)), self.grid)
        else:
            feats = self.net(video.flatten(0, 1))
        return feats.reshape(b, t, -1)


class GRUTemporal(nn.Module):
    """Unidirectional (causal) GRU over the frame embeddings; state h_t summarises frames 1..t."""

    def __init__(self, in_dim: int, hidden_dim: int = 256, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        self.gru = nn.GRU(in_dim, hidden_dim, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.out_dim = hidden_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class FeatureNorm(nn.Module):
    """Optional normalisation of the frame embeddings z before the temporal module [X].

    ``none``: identity. ``batch``: BatchNorm over all frames of the batch (per feature, affine), so that
    small frame-to-frame variations of z are not swamped by its large mean (the extractor's pooled
    features are dominated by identity). The frame embeddings returned by
    :class:`SpatioTemporalModel` (used by the stage-1 losses) are the un-normalised z.
    """

    KINDS = ("none", "batch")

    def __init__(self, dim: int, kind: str = "none") -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"unknown feature_norm {kind!r}; expected one of {self.KINDS}")
        self.kind = kind
        self.norm: nn.Module = nn.BatchNorm1d(dim) if kind == "batch" else nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "batch":
            return self.norm(z.flatten(0, 1)).view_as(z)
        return self.norm(z)


class SpatioTemporalModel(nn.Module):
    """Per-frame extractor + temporal module (the paper's model [AB]; module choices [X]).

    ``forward(video)`` returns the frame embeddings z (B,T,D) and the temporal states h (B,T,H).
    """

    def __init__(
        self,
        backbone: str = "resnet18",
        backbone_kwargs: dict[str, Any] | None = None,
        pretrained: bool = False,
        checkpoint_path: str | None = None,
        hidden_dim: int = 256,
        num_layers: int = 1,
        dropout: float = 0.0,
        feature_norm: str = "none",
        grid: int = 0,
    ) -> None:
        super().__init__()
        self.encoder = FrameEncoder(backbone, pretrained, checkpoint_path, backbone_kwargs=backbone_kwargs, grid=grid)
        self.feature_norm = FeatureNorm(self.encoder.out_dim, feature_norm)
        self.temporal = GRUTemporal(self.encoder.out_dim, hidden_dim, num_layers, dropout)
        self.embed_dim = self.encoder.out_dim
        self.state_dim = hidden_dim

    def forward(self, video: torch.Tensor, freeze_encoder: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if freeze_encoder:
            with torch.no_grad():
                z = self.encoder(video)
        else:
            z = self.encoder(video)
        return z, self.temporal(self.feature_norm(z))


class FuturePredictor(nn.Module):
    """Maps the state h_t to predictions of the next ``horizon`` frame embeddings z_{t+1..t+k}
    (one 2-layer MLP shared over time, output split into k steps; CPC/DPC-style [X])."""

    def __init__(self, state_dim: int, embed_dim: int, horizon: int, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or state_dim
        self.horizon, self.embed_dim = horizon, embed_dim
        self.net = nn.Sequential(nn.Linear(state_dim, hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(hidden_dim, horizon * embed_dim))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """``states`` (..., H) → (..., horizon, D)."""
        return self.net(states).unflatten(-1, (self.horizon, self.embed_dim))


class ProjectionHead(nn.Module):
    """SimCLR-style 2-layer MLP projection of the per-frame NT-Xent objective [X]."""

    def __init__(self, in_dim: int, out_dim: int = 128, hidden_dim: int | None = None) -> None:
        super().__init__()
        hidden_dim = hidden_dim or in_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class IntensityHead(nn.Module):
    """Linear regressor from the temporal state h_t to K AU intensities (paper: "a regressor on top of
    the spatio-temporal model" [AB]; its shape and output range are [X])."""

    OUTPUTS = ("sigmoid", "linear")

    def __init__(self, state_dim: int, num_aus: int, output: str = "sigmoid", max_intensity: float = 5.0) -> None:
        super().__init__()
        self.net = nn.Linear(state_dim, num_aus)
        if output not in self.OUTPUTS:
            raise ValueError(f"unknown regressor output {output!r}; expected one of {self.OUTPUTS}")
        self.output, self.max_intensity = output, max_intensity

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        y = self.net(states)
        return torch.sigmoid(y) * self.max_intensity if self.output == "sigmoid" else y
