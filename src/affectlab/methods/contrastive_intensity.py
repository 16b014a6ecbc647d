"""Sanchez, Bulat, Zaganidis, Tzimiropoulos, "Semi-supervised Facial Action Unit Intensity Estimation
with Contrastive Learning", ACCV 2020 (arXiv 2011.01864): two-stage pipeline.

What is the paper's (abstract-level facts, [AB] in ``shared/specs/methods.md`` §3.1):

* a spatio-temporal model = per-frame feature extractor + temporal module;
* stage 1 (``pretrain``): contrastive learning of that model on unlabelled videos;
* stage 2 (``regress``): on another dataset, a regressor on top of the spatio-temporal model outputs AU
  intensities; labelled frames are randomly chosen (default 2 %, no key-frame selection) and back-
  propagation through time is applied only from the network outputs at those frames;
* evaluation with ICC(3,1) (main metric) and MAE on DISFA (12 AUs) and BP4D/FERA2015 (5 AUs).

What is ours [X], each behind a config key (``docs/methods/contrastive_intensity.md``):
ResNet-18 trunk and input size (``model.*``), global vs g×g-grid pooling of the frame embedding
(``model.grid``), the causal GRU (``model.hidden_dim``, ``num_layers``), normalisation of the frame
embeddings before it (``model.feature_norm``), which unlabelled video stage 1 sees (``pretrain.source``:
a separate ``videos`` folder or the stage-2 training subjects' own frames), predictive InfoNCE,
per-frame NT-Xent or both (``pretrain.objective``) with temperature, horizon and clip length, the augmentations,
frozen vs fine-tuned extractor (``regress.freeze_extractor``), the linear regressor's output range and
MSE, label budget scope and seed, optimiser and schedule.

Longer than the ~350-line guide on purpose: two stages with a LightningModule each, and three stage-1
objectives: the paper preset's predictive reading, the per-frame one, and the CPU preset's per-frame
extractor objective with a predictive one for the temporal module (doc). Removed
(last in commit 52d3ada): clip-instance NT-Xent and same-clip (``time``) negatives, measured weaker
(numbers in the doc), and same-step (``batch``) negatives, which no preset used.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from affectlab.engine.online_probe import OnlineProbe, OnlineProbeConfig
from affectlab.engine.scaling import scaled_lr
from affectlab.engine.schedules import cosine_schedule
from affectlab.evaluation.intensity_traces import FirstSeenFrames, IntensityTraces
from affectlab.evidence.arms import Arm, Evidence
from affectlab.losses.contrastive import (
    anchor_steps,
    nt_xent,
    nt_xent_accuracy,
    predictive_accuracy,
    predictive_contrastive_loss,
)
from affectlab.losses.sparse_regression import LabelBudget, masked_intensity_loss
from affectlab.methods.base import METHODS, MethodConfig, MethodSpec, RunContext, Stage
from affectlab.metrics import AUIntensityMetrics
from affectlab.models.spatiotemporal import FuturePredictor, IntensityHead, ProjectionHead, SpatioTemporalModel
from affectlab.schema import ConfigError, config_errors
from data_modules.clip_views import augment_clips, temporal_view


@dataclass
class ModelConfig:
    """Spatio-temporal model [X]: timm trunk (+ kwargs, e.g. a reduced ResNet for CPU) and temporal module."""

    backbone: str = "resnet18"
    #: extra ``timm.create_model`` keys (a mapping, or null for none)
    backbone_kwargs: Any = None
    #: local timm-compatible weights (no downloads); None → random init
    checkpoint_path: Optional[str] = None
    #: the causal GRU over the frame embeddings
    hidden_dim: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    #: none | batch: normalisation of the frame embeddings before the temporal module
    feature_norm: str = "none"
    #: frame embedding: 0 = the trunk's global average pooling; g ≥ 1 = last feature map pooled to
    #: g×g cells, flattened (keeps the coarse layout of the aligned face)
    grid: int = 0


@dataclass
class PretrainConfig:
    """Stage 1, contrastive learning on unlabelled video [AB]; the formulation is [X]."""

    #: False → no stage 1 (the from-scratch ablation)
    enabled: bool = True
    #: unlabelled video for stage 1: videos (the ``videos`` datamodule at ``root``) | regress_train (the
    #: training subjects' sequences of the stage-2 dataset ``cfg.data``, labels unused: the in-domain
    #: semi-supervised setting; validation/test subjects are never seen)
    source: str = "videos"
    #: folder of unlabelled face videos (``videos`` datamodule layout); None → the synthetic stand-in
    root: Optional[str] = None
    #: clips drawn from every track per epoch (``items_per_track`` of the datamodule), for few long tracks
    clips_per_track: int = 1
    #: predictive (CPC/DPC-style InfoNCE, other clips and time steps of the batch as negatives) | frame
    #: (two views of every frame, NT-Xent over all frames of the batch, so the other frames of the same
    #: clip are negatives; trains the per-frame extractor only) | frame_predictive (frame's NT-Xent trains
    #: the extractor; the predictive InfoNCE on its detached embeddings trains the temporal module)
    objective: str = "predictive"
    #: frame_predictive: weight of the predictive term
    temporal_weight: float = 1.0
    #: frames per clip fed to the model
    clip_length: int = 12
    #: the datamodule delivers clip_length + temporal_jitter consecutive frames; views are random
    #: clip_length windows of them
    temporal_jitter: int = 4
    #: predictive: number of future frames predicted from each state
    horizon: int = 3
    #: predictive: frames seen before the first prediction
    min_context: int = 4
    temperature: float = 0.1
    projection_dim: int = 128
    #: views: random resized crop scale range, flip, brightness/contrast jitter
    crop_scale_min: float = 0.8
    flip: bool = True
    color_jitter: float = 0.2
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    #: -1 with max_steps: a step-based stage (cosine decay per step)
    max_epochs: int = 10
    max_steps: Optional[int] = None
    #: validate every n optimiser steps across epochs (None = once per epoch)
    val_every_n_steps: Optional[int] = None
    #: which stage-1 weights stage 2 starts from: best (lowest val/loss) | last (last epoch; for a tiny
    #: validation split whose loss is too noisy to select on)
    select: str = "best"
    #: keys passed to the ``videos`` datamodule (task ``clips``), e.g. batch_size
    data: Any = None


@dataclass
class RegressConfig:
    """Stage 2, sparse-label intensity regression [AB]; shapes and optimisation are [X]."""

    #: how the label budget ``data.label_fraction`` (seed ``data.label_mask_seed``) is drawn:
    #: per_sequence (the datamodule's sampler, the same fraction of every training sequence) |
    #: global (uniform over all training frames pooled, ``affectlab.losses.sparse_regression``)
    label_scope: str = "per_sequence"
    freeze_extractor: bool = False
    #: sigmoid (0–5) | linear; the regressor is linear and trained with MSE
    output: str = "sigmoid"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    max_epochs: int = 10
    max_steps: Optional[int] = None
    #: number of test sequences whose prediction-vs-ground-truth traces are plotted
    trace_sequences: int = 3


@dataclass
class ContrastiveIntensityConfig(MethodConfig):
    """``method`` keys of contrastive spatio-temporal pretraining + sparse-label intensity regression
    (experiments/method/contrastive_intensity.yaml): the network, stage 1, stage 2 and the online probe."""

    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    regress: RegressConfig = field(default_factory=RegressConfig)
    #: intensity probe (ridge) on detached features of the stage-2 data at every stage-1 validation (ours):
    #: the per-frame embeddings for ``pretrain.objective=frame`` (it trains only the extractor), else the
    #: temporal states; fitted on the training windows' labelled frames (the label budget), scored on val
    online_probe: OnlineProbeConfig = field(default_factory=OnlineProbeConfig)


def _plain(mapping: Any) -> dict[str, Any]:
    if mapping is None:
        return {}
    return OmegaConf.to_container(mapping) if isinstance(mapping, DictConfig) else dict(mapping)


def build_model(cfg: Any) -> SpatioTemporalModel:
    """The spatio-temporal model of ``cfg.model``; a value the model refuses is the user's ConfigError."""
    m = cfg.model
    kwargs = _plain(m.backbone_kwargs)
    with config_errors("method.model"):
        return SpatioTemporalModel(m.backbone, kwargs, checkpoint_path=m.checkpoint_path, hidden_dim=m.hidden_dim,
                                   num_layers=m.num_layers, dropout=m.dropout, feature_norm=m.feature_norm, grid=m.grid)


OBJECTIVES = ("predictive", "frame", "frame_predictive")


class ContrastivePretrainModule(L.LightningModule):
    """Stage 1: contrastive spatio-temporal pretraining on unlabelled clips (paper [AB]; the two
    objectives are our reconstruction [X], ``affectlab.losses.contrastive``)."""

    def __init__(self, cfg: DictConfig) -> None:
        super().__init__()
        self.cfg = cfg
        p = cfg.method.pretrain
        if p.objective not in OBJECTIVES:
            raise ConfigError(f"unknown method.pretrain.objective {p.objective!r}; expected one of {OBJECTIVES}")
        if p.clip_length < 1:
            raise ConfigError(f"method.pretrain.clip_length must be >= 1, got {p.clip_length}")
        if p.temporal_weight < 0:
            raise ConfigError(f"method.pretrain.temporal_weight must be >= 0, got {p.temporal_weight}")
        if p.temporal_weight != 1.0 and p.objective != "frame_predictive":
            raise ConfigError(f"method.pretrain.temporal_weight weights the predictive term of "
                              f"objective=frame_predictive; objective={p.objective} has no such term")
        self.model = build_model(cfg.method)
        if p.objective != "frame":
            with config_errors("method.pretrain"):  # fail early on an impossible clip
                anchor_steps(p.clip_length, p.horizon, p.min_context)
        if p.objective == "predictive":
            self.head: torch.nn.Module = FuturePredictor(self.model.state_dim, self.model.embed_dim, p.horizon)
        else:
            self.head = ProjectionHead(self.model.embed_dim, p.projection_dim)
        if p.objective == "frame_predictive":
            # initialised from a fork of the global stream, so every draw after it (and so the extractor
            # stage 1 trains) is the one objective=frame makes: the two differ by the temporal term only
            with torch.random.fork_rng(devices=[]):
                self.predictor = FuturePredictor(self.model.state_dim, self.model.embed_dim, p.horizon)
        elif p.objective == "frame":
            # only the frame encoder is trained here; parameters without gradients would make DDP
            # wait for them forever (stage 2 builds its own optimiser and re-enables them)
            for module in (self.model.feature_norm, self.model.temporal):
                module.requires_grad_(False)
        self.artifact_dir: Path | None = None

    def loss(self, video: torch.Tensor, train: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The stage-1 loss and its diagnostics (``acc``: top-1 retrieval of the positive; predictive
        also ``acc_same_clip``, see :func:`predictive_accuracy`)."""
        p = self.cfg.method.pretrain
        if p.objective == "predictive":
            clip = temporal_view(video, p.clip_length) if train else video[:, : p.clip_length]
            if train:
                clip = augment_clips(clip, p.crop_scale_min, p.flip, p.color_jitter)
            loss, acc = self.future_prediction(self.head, *self.model(clip))
            return loss, {"acc": acc["top1"], "acc_same_clip": acc["same_clip"]}
        clip = video[:, : p.clip_length]
        frames = clip.flatten(0, 1)[:, None]  # every frame its own view parameters
        views = [augment_clips(frames, p.crop_scale_min, p.flip, p.color_jitter).view_as(clip) for _ in range(2)]
        e1, e2 = (self.model.encoder(v) for v in views)
        z1, z2 = self.head(e1.flatten(0, 1)), self.head(e2.flatten(0, 1))
        loss, stats = nt_xent(z1, z2, p.temperature), {"acc": nt_xent_accuracy(z1, z2)}
        if p.objective == "frame_predictive":
            temporal, future = self.temporal_loss(((e1 + e2) / 2).detach())
            loss = loss + p.temporal_weight * temporal
            stats.update({"temporal": temporal.detach(), "future_acc": future["top1"],
                          "future_acc_same_clip": future["same_clip"]})
        return loss, stats

    def temporal_loss(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Predictive InfoNCE of the temporal module on fixed frame embeddings ``z`` (B,T,D): the states of
        frames 1..t predict z_{t+1..t+k} against the batch's other clips and time steps. ``z`` comes
        detached, so this term trains the feature normalisation, the GRU and the predictor only; the
        identity shortcut that makes the end-to-end predictive objective learn clip identity (doc) cannot
        reach the extractor."""
        return self.future_prediction(self.predictor, z, self.model.temporal(self.model.feature_norm(z)))

    def future_prediction(self, predictor: torch.nn.Module, z: torch.Tensor,
                          h: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Predictive InfoNCE of ``predictor`` mapping the states ``h`` (B,T,H) at every anchor step to the
        next ``horizon`` frame embeddings of ``z`` (B,T,D), and its retrieval accuracies."""
        p = self.cfg.method.pretrain
        anchors = anchor_steps(z.shape[1], p.horizon, p.min_context).to(z.device)
        pred = predictor(h[:, anchors])
        return predictive_contrastive_loss(pred, z, anchors, p.temperature), predictive_accuracy(pred, z, anchors)

    def probe_features(self, batch: dict[str, Any]) -> torch.Tensor:
        """(B,T,D) features of labelled sequences for the online probe (detached): the frame embeddings
        when stage 1 trains only the extractor (objective ``frame``; computed for the labelled frames
        only, zeros elsewhere, which the probe never reads), else the temporal states."""
        video = batch["video"].float()
        if self.cfg.method.pretrain.objective != "frame":
            return self.model(video)[1].detach()
        labelled = batch["intensity_mask"].bool().any(-1)  # (B,T): which frames the probe reads
        out = video.new_zeros(*labelled.shape, self.model.embed_dim)
        if labelled.any():
            out[labelled] = self.model.encoder(video[labelled][:, None])[:, 0]
        return out.detach()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss, stats = self.loss(batch["video"], train=True)
        n = len(batch["video"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log_dict({f"train/{k}": v for k, v in stats.items()}, batch_size=n, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # seeded views so the validation loss is comparable between epochs
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_idx)
            loss, stats = self.loss(batch["video"], train=self.cfg.method.pretrain.objective != "predictive")
        n = len(batch["video"])
        self.log("val/loss", loss, prog_bar=True, batch_size=n, sync_dist=True)
        self.log_dict({f"val/{k}": v for k, v in stats.items()}, batch_size=n, sync_dist=True)

    def configure_optimizers(self):
        p = self.cfg.method.pretrain
        opt = torch.optim.AdamW(self.parameters(), lr=scaled_lr(self.cfg, p.lr, p.batch_size), weight_decay=p.weight_decay)
        return cosine_schedule(self, opt)


class SparseIntensityRegressor(L.LightningModule):
    """Stage 2: intensity regressor on the temporal state of the (pretrained) spatio-temporal model,
    trained on whole sequences with the loss only at the sparse labelled frames (paper [AB]; the
    head, loss and frozen/fine-tuned switch are [X]). Metrics: ICC(3,1), MAE, PCC per AU.

    ``label_budget`` (a :class:`LabelBudget`, optional) further restricts the training mask to its
    (sequence, frame) pairs; without it the datamodule's sparse ``intensity_mask`` is used as is.
    In validation/test a frame seen in two overlapping windows is scored once (its first window).
    """

    def __init__(self, cfg: DictConfig, model: SpatioTemporalModel, au_names: list[str],
                 label_budget: LabelBudget | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        r = cfg.method.regress
        self.model = model
        self.au_names = list(au_names)
        self.head = IntensityHead(model.state_dim, len(au_names), r.output)
        self.val_metrics = AUIntensityMetrics(self.au_names)
        self.test_metrics = AUIntensityMetrics(self.au_names)
        self.freeze_extractor = bool(r.freeze_extractor)
        self.model.requires_grad_(True)  # stage 1's frame objective froze the temporal part
        if self.freeze_extractor:
            self.model.encoder.requires_grad_(False)
        self.label_budget = label_budget
        self.artifact_dir: Path | None = None
        self.first_seen = FirstSeenFrames()
        self.traces = IntensityTraces(r.trace_sequences)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_extractor:  # frozen extractor: BatchNorm statistics stay those of stage 1
            self.model.encoder.eval()
        return self

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``video`` (B,T,C,H,W) → intensities (B,T,K)."""
        if self.freeze_extractor and self.model.encoder.training:
            # Lightning restores per-module train modes around validation; a frozen extractor's
            # BatchNorm statistics must stay those of stage 1 whatever the surrounding mode
            self.model.encoder.eval()
        _, h = self.model(video, freeze_encoder=self.freeze_extractor)
        return self.head(h)

    def training_mask(self, batch: dict[str, Any]) -> torch.Tensor:
        mask = batch["intensity_mask"].bool()
        if self.label_budget is not None:
            meta = batch["meta"]
            mask = mask & self.label_budget.mask(meta["sequence"], meta["frames"].to(mask.device))[..., None]
        return mask

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        pred = self(batch["video"])
        mask = self.training_mask(batch)
        loss = masked_intensity_loss(pred, batch["intensity"], mask)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(pred))
        self.log("train/labelled_frames", mask.any(-1).sum().float(), batch_size=len(pred), reduce_fx="sum",
                 on_step=False, on_epoch=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self.first_seen.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        pred = self(batch["video"])
        mask = self.first_seen.mask(batch.get("meta"), batch["intensity_mask"])
        self.val_metrics.update(pred, batch["intensity"], mask)
        loss = masked_intensity_loss(pred, batch["intensity"], mask)
        self.log("val/loss", loss, batch_size=len(pred), sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self.log_dict({f"val/{k}": v for k, v in self.val_metrics.compute().items()}, sync_dist=True)
        self.val_metrics.reset()

    def on_test_epoch_start(self) -> None:
        self.first_seen.reset()
        self.traces.reset()

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        pred = self(batch["video"])
        mask = self.first_seen.mask(batch.get("meta"), batch["intensity_mask"])
        self.test_metrics.update(pred, batch["intensity"], mask)
        self.traces.add(batch.get("meta"), pred, batch["intensity"], mask)

    def on_test_epoch_end(self) -> None:
        self.log_dict({f"test/{k}": v for k, v in self.test_metrics.compute().items()})
        self.test_metrics.reset()
        if self.artifact_dir is not None and self.traces:
            self.traces.plot(self.au_names, Path(self.artifact_dir) / "intensity_traces.png")

    def configure_optimizers(self):
        r = self.cfg.method.regress
        lr = scaled_lr(self.cfg, r.lr)
        extractor = [p for p in self.model.encoder.parameters() if p.requires_grad]  # none when frozen
        rest = [p for n, p in self.model.named_parameters() if not n.startswith("encoder.")]
        params = rest + list(self.head.parameters()) + extractor
        return cosine_schedule(self, torch.optim.AdamW(params, lr=lr, weight_decay=r.weight_decay))


@METHODS.register("contrastive_intensity")
class ContrastiveIntensity(MethodSpec):
    """Sanchez et al. (ACCV 2020): contrastive video pretraining, then sparse-label AU intensity.

    Stage ``pretrain`` on unlabelled ``videos`` clips, stage ``regress`` (evaluated) on ``cfg.data``
    sequences; see the module docstring for which parts are the paper's and which are ours."""

    Config = ContrastiveIntensityConfig
    default_data = "disfa"
    task = "au_intensity"
    # applied after experiments/data/<name>.yaml (a CPU-sized default; EXP files override them)
    data_overrides = {"task": "sequences", "image_size": 64, "batch_size": 2, "sequence_length": 32,
                      "num_workers": 1}
    # each seed also draws its own labelled frames (data.label_mask_seed), the same for every arm
    evidence = Evidence(metric="icc_mean", seed_keys=("seed", "data.label_mask_seed"), arms=(
        Arm("default", help="stage-1 contrastive pretraining, then sparse-label regression"),
        Arm("scratch", ("method.pretrain.enabled=false", "method.regress.freeze_extractor=false"),
            help="no stage 1: the whole model trained from random init on the same labels"),
        Arm("random_frozen", ("method.pretrain.enabled=false",),
            help="no stage 1: the default's stage 2 on a frozen random extractor"),
    ))

    def stages(self, cfg: DictConfig, ctx: RunContext) -> Iterator[Stage]:
        m = cfg.method
        model = None
        if m.pretrain.enabled and m.pretrain.select not in ("best", "last"):
            raise ConfigError(f"unknown method.pretrain.select {m.pretrain.select!r}; expected 'best' or 'last'")
        if m.regress.output not in IntensityHead.OUTPUTS:  # stage 2's head is built after stage 1 has trained
            raise ConfigError(f"method.regress.output must be one of {IntensityHead.OUTPUTS}, got {m.regress.output!r}")
        dm, budget = regress_datamodule(cfg)  # the online probe's labelled data, then stage 2's
        if m.pretrain.enabled:
            pre = ContrastivePretrainModule(cfg)
            monitor = "val/loss" if m.pretrain.select == "best" else None
            probes = [online_probe(cfg, dm, budget)] if m.online_probe.enabled else []
            yield Stage("pretrain", pre, pretrain_datamodule(cfg), monitor=monitor, mode="min",
                        max_epochs=m.pretrain.max_epochs, max_steps=m.pretrain.max_steps,
                        val_every_n_steps=m.pretrain.val_every_n_steps, callbacks=probes)
            model = pre.model  # trained (or restored) by the runner before the generator resumes
        if model is None:
            model = build_model(m)
        module = SparseIntensityRegressor(cfg, model, list(dm.au_names), budget)
        yield Stage("regress", module, dm, monitor="val/icc_mean", mode="max", evaluate=True,
                    max_epochs=m.regress.max_epochs, max_steps=m.regress.max_steps)


def online_probe(cfg: DictConfig, dm: Any, budget: LabelBudget | None) -> OnlineProbe:
    """The stage-1 online probe on the stage-2 data; a global label budget restricts its training labels."""
    def budget_mask(batch: dict[str, Any]) -> torch.Tensor:
        meta = batch["meta"]
        return budget.mask(meta["sequence"], meta["frames"])

    return OnlineProbe(dm, "au_intensity", list(dm.au_names), cfg.method.online_probe,
                       train_mask=budget_mask if budget is not None else None)


PRETRAIN_SOURCES = ("videos", "regress_train")


def pretrain_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """Stage-1 clips (task ``clips``: one segment of clip_length + jitter consecutive frames,
    ``pretrain.clips_per_track`` per track and epoch) from ``method.pretrain.source``:

    * ``videos``: the unlabelled ``videos`` datamodule (root ``method.pretrain.root``), sharing the
      synthetic profile, image size and normalisation with ``cfg.data``;
    * ``regress_train``: ``cfg.data`` itself (same fold, subjects, alignment), one track per training
      sequence; the labels are never read and the validation subjects serve as stage-1 validation.

    ``method.pretrain.data`` overrides any key of the datamodule."""
    from data_modules import create_datamodule

    p = cfg.method.pretrain
    if p.source not in PRETRAIN_SOURCES:
        raise ConfigError(f"unknown method.pretrain.source {p.source!r}; expected one of {PRETRAIN_SOURCES}")
    if p.clips_per_track < 1:  # the datamodule's own check would name its key, items_per_track
        raise ConfigError(f"method.pretrain.clips_per_track must be >= 1, got {p.clips_per_track}")
    clips = dict(task="clips", batch_size=p.batch_size, clip_segments=1, items_per_track=p.clips_per_track,
                 clip_frames_per_segment=p.clip_length + p.temporal_jitter)
    if p.source == "regress_train":
        return create_datamodule(cfg.data, **{**clips, **_plain(p.data)})
    keys = dict(root=p.root, synthetic_profile=cfg.data.synthetic_profile,
                synthetic_seed=cfg.data.synthetic_seed, image_size=cfg.data.image_size,
                normalize=cfg.data.normalize, num_workers=cfg.data.num_workers, **clips)
    keys.update(_plain(p.data))
    return create_datamodule("videos", **keys)


def regress_datamodule(cfg: DictConfig) -> tuple[L.LightningDataModule, LabelBudget | None]:
    """Stage 2 data (``cfg.data``, task ``sequences``) and, for ``label_scope=global``, the label
    budget drawn over all training frames (the datamodule then keeps every coded label)."""
    from data_modules import create_datamodule

    scope = cfg.method.regress.label_scope
    if scope == "per_sequence":
        return create_datamodule(cfg.data), None
    if scope != "global":
        raise ConfigError(f"unknown method.regress.label_scope {scope!r}; expected 'per_sequence' or 'global'")
    dm = create_datamodule(cfg.data, label_fraction=1.0)
    train = dm.manifest("train")
    budget = LabelBudget(train["sequence"].astype(str).tolist(), train["frame"].tolist(),
                         cfg.data.label_fraction, cfg.data.label_mask_seed, scope="global")
    return dm, budget
