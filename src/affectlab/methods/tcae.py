"""TCAE: self-supervised twin-cycle autoencoder pretraining, then a linear AU probe on frozen φ.

Li, Zeng, Shan, Chen, "Self-supervised Representation Learning from Videos for Facial Action Unit
Detection", CVPR 2019. Stages:

1. ``pretrain`` -- :class:`TCAEPretrainModule` on frame pairs of one face track (``pairs`` task of
   ``videos``, or BP4D/DISFA frames without labels): the objective of spec §1.2 with the per-term
   self-paced window of §1.3, SGD(1e-3, momentum 0.9), official crop jitter drawn independently per
   frame. Skipped when ``method.pretrained_checkpoint`` is given.
2. ``probe`` -- :class:`TCAELinearProbe`: frozen φ → BatchNorm1d → bias-free Linear, BCE (the
   released ``Au_detection`` classifier shape; loss/optimiser are ours, spec §1.4 [X]), evaluated
   with per-AU F1 on the datamodule's subject-exclusive fold.

Above ~350 lines because only the method is left, ~90 lines of it the documented config keys.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from affectlab.engine.au_head import AUOccurrenceModule, positive_weights
from affectlab.engine.batchnorm import calibrate_batchnorm
from affectlab.engine.loggers import log_image
from affectlab.engine.online_probe import OnlineProbe, OnlineProbeConfig
from affectlab.evaluation.disentanglement import MIN_SUBJECTS, align_groundtruth, embedding_r2, frame_groundtruth
from affectlab.evaluation.tcae_grid import GRID_COLUMNS, first_pairs, save_grid
from affectlab.evidence.arms import Arm, Evidence
from affectlab.losses.tcae import CurriculumWindow, TCAELossWeights, per_sample_terms, tcae_objective
from affectlab.methods.base import METHODS, MethodConfig, MethodSpec, RunContext, Stage, probe_split_keys
from affectlab.models.tcae import TCAE, TCAENetConfig, check_net_config, crop_jitter, load_pretrained
from affectlab.schema import ConfigError, config_errors


@dataclass
class TCAEConfig(MethodConfig):
    """``cfg.method`` for ``METHOD=tcae`` (defaults: official values unless marked)."""

    model: TCAENetConfig = field(default_factory=TCAENetConfig)
    loss: TCAELossWeights = field(default_factory=TCAELossWeights)
    #: path to a pretrain-stage checkpoint (Lightning ``.ckpt`` or a TCAE ``state_dict``): skip pretraining
    pretrained_checkpoint: Optional[str] = None
    # --- pretraining -------------------------------------------------------------------------
    pretrain_epochs: int = 2000
    #: optional cap on optimiser steps (CPU runs; None = epochs only)
    pretrain_max_steps: Optional[int] = None
    #: validate (and update the curriculum tracker) every n epochs; an official epoch is only one pair
    #: per track, so small datasets make epochs of a single step
    pretrain_val_every_n_epochs: int = 1
    #: validate every n optimiser steps instead (across epoch boundaries; None = the epoch cadence above)
    pretrain_val_every_n_steps: Optional[int] = None
    #: registered datamodule that provides the ``pretrain_task`` (frame pairs of one face track)
    pretrain_data: str = "videos"
    pretrain_task: str = "pairs"
    #: release folder of the pretraining data; None → the synthetic stand-in (or ``data.root`` when
    #: ``pretrain_data`` is the probe's dataset)
    pretrain_root: Optional[str] = None
    pretrain_batch_size: int = 64
    pretrain_eval_batch_size: int = 32
    #: frame gap between source and target, drawn uniformly in [min, max] (official: any two frames
    #: of a track sampled at 1 fps)
    pretrain_pair_gap_min: int = 1
    pretrain_pair_gap_max: int = 30
    #: pairs drawn per unit per epoch (official 1: an epoch of a small dataset is then a single step;
    #: more makes an epoch long enough for the validation/curriculum cadence)
    pretrain_pairs_per_track: int = 1
    #: what an epoch draws one pair from: ``track`` (ours) or ``identity`` (official: a random video of
    #: each identity, a random track of it); see ``data.pair_unit``
    pretrain_pair_unit: str = "track"
    #: ``gap`` (uniform in [pretrain_pair_gap_min, max]) or ``any`` (official: two distinct random frames
    #: among every ``pretrain_pair_frame_stride``-th, i.e. 1-fps frames when the stride is the frame rate)
    pretrain_pair_frames: str = "gap"
    pretrain_pair_frame_stride: int = 1
    #: identities held out for validation / test (fractions of all identities; None = the datamodule's
    #: default; official 0.15 / 0.10). A test fraction needs the ``videos`` datamodule
    pretrain_val_fraction: Optional[float] = None
    pretrain_test_fraction: float = 0.0
    #: the official loader does not flip; jitter is applied by this module (``jitter``)
    pretrain_hflip: bool = False
    pretrain_limit_items: Optional[int] = None
    #: optimiser steps trained on the reconstruction term alone before the official objective (ours, a
    #: CPU phase-in: on synthetic BP4D the AU information appeared only after ~5000 reconstruction-only
    #: steps, docs/methods/tcae.md; 0 = the official objective from the first step)
    rec_only_steps: int = 0
    #: ``sgd`` (official, with ``momentum``; also the CPU default) or ``adam`` (measured, not better here)
    optimizer: str = "sgd"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    #: official jitter: random square crop of side c ∈ [crop_min, crop_max] (256-px units, c drawn
    #: once per epoch) inside the central 224 px, resized back; drawn independently per frame
    jitter: bool = True
    jitter_crop_min: int = 200
    jitter_crop_max: int = 223
    #: jitter the validation pairs too (official: crop side from RandomState(0), i.e. 212 px for
    #: [200, 223], at positions drawn afresh; here the positions are reseeded at every validation, so
    #: that the curriculum compares losses on the same crops)
    val_jitter: bool = False
    # self-paced curriculum (TrackLoss)
    curriculum: bool = True
    curriculum_start: list[float] = field(default_factory=lambda: [0.0, 0.5])
    curriculum_step: float = 0.1
    curriculum_stop_below: float = 0.85
    curriculum_patience: int = 15
    #: ReduceLROnPlateau stepped only when the tracker fires in the final window
    lr_plateau_patience: int = 10
    lr_plateau_factor: float = 0.1
    #: official quirk: validation embedding MSEs divided by batch size × embedding size
    val_embedding_quirk: bool = True
    #: rows of the validation image grid (0 = none)
    grid_rows: int = 6
    #: a randomly initialised encoder (``pretrain_epochs=0``, the evidence control) gets its BatchNorm
    #: statistics from this many shuffled training batches of the probe data before the probe, as
    #: training would have set them (ours; 0 = keep the initial 0 / 1, which mis-scale every layer)
    random_init_bn_batches: int = 20
    # --- linear probe ([X]: the official evaluation script is not public) --------------------
    probe_epochs: int = 20
    probe_max_steps: Optional[int] = None
    probe_lr: float = 1e-3
    probe_weight_decay: float = 0.0
    #: weight positives by the train split's negative/positive ratio (off = plain BCE, the official
    #: probe; on = the CPU default, since plain BCE at threshold 0.5 predicts almost no rare AU)
    probe_pos_weight: bool = False
    probe_threshold: float = 0.5
    #: linear probe on detached φ of labelled probe-data frames at every pretraining validation (ours)
    online_probe: OnlineProbeConfig = field(default_factory=OnlineProbeConfig)


def optimizer_name(method_cfg: Any) -> str:
    """``method.optimizer`` lower-cased: ``sgd`` (official) or ``adam``; anything else is a ConfigError."""
    given = getattr(method_cfg, "optimizer", "sgd")
    name = str(given).lower()
    if name not in ("sgd", "adam"):
        raise ConfigError(f"tcae method.optimizer must be 'sgd' (official) or 'adam', got {given!r}")
    return name


class TCAEPretrainModule(L.LightningModule):
    """Self-supervised TCAE training (spec §1.1-§1.3): twin-cycle objective with the per-term
    percentile window, moved by the validation-loss plateau tracker."""

    def __init__(self, model: TCAE, cfg: TCAEConfig | DictConfig, lr: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
        cfg = self.cfg
        self.lr = float(cfg.lr if lr is None else lr)
        self.weights = TCAELossWeights(**dict(cfg.loss))
        start = list(cfg.curriculum_start)
        if len(start) != 2:  # CurriculumWindow checks the values
            raise ConfigError(f"method.curriculum_start must be [lo, hi] (two fractions), got {start}")
        with config_errors("method.curriculum_start"):
            self.curriculum = CurriculumWindow(start[0], start[1], cfg.curriculum_step, cfg.curriculum_stop_below,
                                               cfg.curriculum_patience)
        self.plateau: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
        self.artifact_dir: Path | None = None
        self._val_sum = 0.0
        self._val_count = 0
        self._grid_batch: dict[str, torch.Tensor] | None = None
        self._jitter_gen = torch.Generator()
        self._val_jitter_gen = torch.Generator()
        # the official validation set draws its crop side once, from RandomState(0)
        self._val_crop = float(np.random.RandomState(0).randint(cfg.jitter_crop_min, cfg.jitter_crop_max + 1))

    # --- data ------------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # c drawn once per epoch from an epoch-seeded RNG, as the official loader does
        seed = int(self.trainer.current_epoch if self.trainer else 0)
        rng = np.random.RandomState(seed)
        self._crop = float(rng.randint(self.cfg.jitter_crop_min, self.cfg.jitter_crop_max + 1))
        self._jitter_gen.manual_seed((torch.initial_seed() * 1_000_003 + seed) % 2**63)  # run seed + epoch

    def _pair(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        source, target = batch["source"].float(), batch["target"].float()
        if train and self.cfg.jitter:
            crop = getattr(self, "_crop", float(self.cfg.jitter_crop_max))
            source = crop_jitter(source, crop, self._jitter_gen)
            target = crop_jitter(target, crop, self._jitter_gen)
        elif not train and self.cfg.val_jitter:
            source = crop_jitter(source, self._val_crop, self._val_jitter_gen)
            target = crop_jitter(target, self._val_crop, self._val_jitter_gen)
        return source, target

    def probe_features(self, batch: dict) -> torch.Tensor:
        """The AU embedding φ of labelled frames (the online probe's features, detached)."""
        phi, _ = self.model.encoder(batch["image"].float())
        return phi.detach().flatten(1)

    # --- steps -----------------------------------------------------------------------------
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        source, target = self._pair(batch, train=True)
        out = self.model(source, target)
        window = self.curriculum.window if self.cfg.curriculum else (0.0, 1.0)
        total, reduced = tcae_objective(per_sample_terms(out, source, target), self.weights_at(self.global_step),
                                        window)
        b = source.shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=b)
        self.log_dict({f"train/{k}": v for k, v in reduced.items()}, batch_size=b)
        self.log("train/window_lo", window[0], batch_size=b)
        return total

    def weights_at(self, step: int) -> TCAELossWeights:
        """Loss weights of optimiser step ``step``: reconstruction only during the first
        ``rec_only_steps``, then the configured (official) weights. Validation always scores the latter."""
        if step < self.cfg.rec_only_steps:
            return TCAELossWeights(rec=self.weights.rec, sparse=0.0, emb=0.0, cyc=0.0)
        return self.weights

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        source, target = self._pair(batch, train=False)
        out = self.model(source, target)
        b = source.shape[0]
        emb_scale = 1.0 / (b * self.model.encoder.embedding_dim) if self.cfg.val_embedding_quirk else 1.0
        total, reduced = tcae_objective(per_sample_terms(out, source, target), self.weights, emb_scale=emb_scale)
        identity = (source - target).abs().flatten(1).mean(1).mean()
        self.log("val/loss", total, prog_bar=True, batch_size=b, sync_dist=True)
        self.log_dict({f"val/{k}": v for k, v in reduced.items()}, batch_size=b, sync_dist=True)
        # L1 of using the source itself as the prediction (the identity warp), for comparison with val/rec
        self.log("val/rec_identity", identity, batch_size=b, sync_dist=True)
        self._val_sum += float(total) * b
        self._val_count += b
        if batch_idx == 0 and self.cfg.grid_rows > 0:
            n = int(self.cfg.grid_rows)
            self._grid_batch = {"source": source[:n], "target": target[:n], "out": first_pairs(out, n)}

    def on_validation_epoch_start(self) -> None:
        self._val_sum, self._val_count, self._grid_batch = 0.0, 0, None
        self._val_jitter_gen.manual_seed(0)  # the same validation crops every time

    def on_validation_epoch_end(self) -> None:
        if self.trainer is None or self.trainer.sanity_checking:
            return
        # every rank must take the same curriculum decision: reduce the sums across processes
        totals = self.trainer.strategy.reduce(
            torch.tensor([self._val_sum, float(self._val_count)], device=self.device), reduce_op="sum")
        if float(totals[1]) == 0:
            return
        val_loss = float(totals[0] / totals[1])
        if self.cfg.curriculum:
            event = self.curriculum.update(val_loss)
            if event == "plateau" and self.plateau is not None:
                self.plateau.step(val_loss)
        lo, hi = self.curriculum.window
        self.log_dict({"val/window_lo": lo, "val/window_hi": hi})
        if self._grid_batch is not None and self.artifact_dir is not None and self.trainer.is_global_zero:
            path = Path(self.artifact_dir) / f"tcae_val_epoch{self.current_epoch:04d}.png"
            save_grid(path, **self._grid_batch)
            log_image(self.loggers, "val/grid", path, caption=" | ".join(GRID_COLUMNS))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if optimizer_name(self.cfg) == "sgd":
            opt = torch.optim.SGD(self.model.parameters(), lr=self.lr, momentum=self.cfg.momentum,
                                  weight_decay=self.cfg.weight_decay)
        else:
            opt = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.cfg.weight_decay)
        # stepped by hand (only when the tracker fires in the final window), hence not returned
        self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.cfg.lr_plateau_factor, patience=self.cfg.lr_plateau_patience)
        return opt

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["tcae_curriculum"] = self.curriculum.state_dict()
        if self.plateau is not None:
            checkpoint["tcae_lr_plateau"] = self.plateau.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "tcae_curriculum" in checkpoint:
            self.curriculum.load_state_dict(checkpoint["tcae_curriculum"])
        self._plateau_state = checkpoint.get("tcae_lr_plateau")

    def on_train_start(self) -> None:
        state = getattr(self, "_plateau_state", None)
        if state is not None and self.plateau is not None:
            self.plateau.load_state_dict(state)


class TCAELinearProbe(AUOccurrenceModule):
    """Linear AU classifier on the frozen AU embedding φ (official ``Au_detection``): BatchNorm1d then
    a bias-free Linear, per-AU sigmoid; trained with BCE on the labelled AUs (mask from ``au_mask``).

    With ``groundtruth`` (a synthetic release's per-frame table) the test pass also records how well φ
    and ψ predict the generator's AU intensities and head pose (``r2_{phi,psi}_{au,pose}``, ours)."""

    def __init__(self, encoder: nn.Module, au_names: list[str], lr: float = 1e-3, weight_decay: float = 0.0,
                 pos_weight: torch.Tensor | None = None, threshold: float = 0.5) -> None:
        super().__init__(au_names, pos_weight, threshold)
        self.encoder = encoder
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        dim = int(encoder.embedding_dim)
        self.bn = nn.BatchNorm1d(dim)
        self.classifier = nn.Linear(dim, len(self.au_names), bias=False)
        self.lr, self.weight_decay = lr, weight_decay
        self.groundtruth: Any = None  # frame_groundtruth(...) on a synthetic release
        self._test_embeddings: list[tuple[np.ndarray, np.ndarray, list[tuple[str, str, int]]]] = []

    def train(self, mode: bool = True) -> "TCAELinearProbe":
        super().train(mode)
        self.encoder.eval()  # frozen: BN running statistics stay those of pretraining
        return self

    def on_train_batch_start(self, batch: dict, batch_idx: int) -> None:
        self.encoder.eval()  # Lightning restores per-submodule modes around validation

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            phi, _ = self.encoder(image.float())
        return phi

    def head(self, phi: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.bn(phi))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(image))

    def logits(self, batch: dict) -> torch.Tensor:
        return self(batch["image"])

    def on_test_epoch_start(self) -> None:
        self._test_embeddings = []

    def test_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.groundtruth is None:
            return super().test_step(batch, batch_idx)
        with torch.no_grad():  # one encoder pass gives the probe its φ and the readout φ and ψ
            phi, psi = self.encoder(batch["image"].float())
        meta = batch["meta"]
        keys = [(str(s), str(q), int(f)) for s, q, f in zip(meta["subject"], meta["sequence"], meta["frame"])]
        self._test_embeddings.append((phi.flatten(1).cpu().numpy(), psi.flatten(1).cpu().numpy(), keys))
        probs = torch.sigmoid(self.head(phi))
        self.test_metrics.update(probs, batch["au"], batch.get("au_mask"))
        return probs

    def on_test_epoch_end(self) -> None:
        self.log_test_metrics()
        if self.groundtruth is not None and self._test_embeddings:
            self.log_dict({f"test/{k}": v for k, v in self.disentanglement().items()})
        self._test_embeddings = []

    def disentanglement(self) -> dict[str, float]:
        """Out-of-subject R² of φ and ψ → AU intensities and → head pose on the frames tested so far."""
        phi = np.concatenate([e[0] for e in self._test_embeddings])
        psi = np.concatenate([e[1] for e in self._test_embeddings])
        keys = [k for e in self._test_embeddings for k in e[2]]
        truth = align_groundtruth(self.groundtruth, keys)
        if truth is None:
            warnings.warn(f"tcae: test frames (e.g. {keys[0]}) do not match the generator's ground truth by "
                          "subject/sequence/frame; r2_{phi,psi}_{au,pose} are not recorded for this release")
            return {}
        subjects = np.array([k[0] for k in keys])
        if len(set(subjects)) < MIN_SUBJECTS:
            warnings.warn(f"tcae: {len(set(subjects))} test subjects, r2_{{phi,psi}}_{{au,pose}} need "
                          f"{MIN_SUBJECTS} for out-of-subject CV; not recorded")
            return {}
        return embedding_r2(phi, psi, truth, subjects)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.bn.parameters()) + list(self.classifier.parameters())
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)


def net_config(cfg: DictConfig) -> TCAENetConfig:
    """The network shape of ``method.model``, checked, and required to match ``data.image_size``."""
    net = TCAENetConfig(**OmegaConf.to_container(cfg.method.model, resolve=True))
    with config_errors("method.model"):
        check_net_config(net)
    if int(cfg.data.image_size) != net.image_size:
        raise ConfigError(
            f"tcae: data.image_size={cfg.data.image_size} but method.model.image_size={net.image_size}; "
            "the probe must see images of the size the encoder was built for"
        )
    return net


@METHODS.register("tcae")
class TCAEMethod(MethodSpec):
    """TCAE (Li et al., CVPR 2019): twin-cycle self-supervised pretraining from face videos, then a
    linear probe on the frozen AU embedding φ for AU detection (BP4D 12 AUs / DISFA 8 AUs)."""

    Config = TCAEConfig
    default_data = "bp4d"
    task = "au_occurrence"
    data_overrides = {"task": "au_occurrence", "image_size": 64, "normalize": "zero_one"}
    channels_last_cpu = True  # faster train steps on CPU (benchmarks/channels_last_cpu.py)
    evidence = Evidence(metric="f1_mean", breakdown=("r2_phi_au", "r2_psi_au", "r2_psi_pose", "r2_phi_pose"), arms=(
        Arm("default", help="TCAE pretraining, then the linear probe on frozen φ"),
        Arm("random_init", ("method.pretrain_epochs=0",),
            help="the same probe on a randomly initialised encoder (no pretraining)"),
        Arm("all_positive", trivial="all_positive", help="trivial: every AU present in every frame (no training)"),
    ))

    def stages(self, cfg: DictConfig, ctx: RunContext) -> Iterator[Stage]:
        from affectlab.engine.scaling import scaled_lr
        from data_modules import create_datamodule

        m = cfg.method
        optimizer_name(m)  # a wrong name fails before any data is built
        model = TCAE(net_config(cfg))
        datamodule = create_datamodule(cfg.data)
        if m.pretrained_checkpoint:
            load_pretrained(model, m.pretrained_checkpoint)
        elif m.pretrain_epochs != 0:  # -1: no epoch limit (a step-based schedule, pretrain_max_steps)
            lr = scaled_lr(cfg, m.lr, m.pretrain_batch_size)
            pretrain = TCAEPretrainModule(model, m, lr=lr)
            probes = [OnlineProbe(datamodule, "au_occurrence", _au_names(datamodule), m.online_probe)] \
                if m.online_probe.enabled else []
            yield Stage("pretrain", pretrain, pretrain_datamodule(cfg),
                        monitor="val/loss", mode="min", max_epochs=m.pretrain_epochs,
                        max_steps=m.pretrain_max_steps if m.pretrain_max_steps is not None else -1,
                        val_every_n_steps=m.pretrain_val_every_n_steps, callbacks=probes,
                        trainer_overrides={} if m.pretrain_val_every_n_steps else
                        {"check_val_every_n_epoch": int(m.pretrain_val_every_n_epochs)})
        elif m.random_init_bn_batches > 0:
            datamodule.setup("fit")
            batches = (batch["image"].float() for _, batch in zip(range(m.random_init_bn_batches),
                                                                  datamodule.train_dataloader()))
            calibrate_batchnorm(model.encoder, batches)
        model.eval()
        pos_weight = None
        if m.probe_pos_weight:
            datamodule.setup("fit")
            pos_weight = positive_weights(torch.as_tensor(datamodule.train_pos_rate(), dtype=torch.float32))
        probe = TCAELinearProbe(model.encoder, _au_names(datamodule), lr=m.probe_lr,
                                weight_decay=m.probe_weight_decay, pos_weight=pos_weight,
                                threshold=m.probe_threshold)
        if datamodule.is_synthetic():
            probe.groundtruth = frame_groundtruth(datamodule.root, cfg.data.name)
        yield Stage("probe", probe, datamodule, monitor="val/f1_mean", mode="max", evaluate=True,
                    max_epochs=m.probe_epochs,
                    max_steps=m.probe_max_steps if m.probe_max_steps is not None else -1)


def pretrain_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The frame-pair datamodule of the pretraining stage (``method.pretrain_*`` keys)."""
    from data_modules import create_datamodule

    m = cfg.method
    if m.pretrain_pairs_per_track < 1:  # the datamodule's own check would name its key, items_per_track
        raise ConfigError(f"method.pretrain_pairs_per_track must be >= 1, got {m.pretrain_pairs_per_track}")
    if not 1 <= m.pretrain_pair_gap_min <= m.pretrain_pair_gap_max:  # else the loader workers die mid-epoch
        raise ConfigError(f"method.pretrain_pair_gap_min / _max must satisfy 1 <= min <= max, "
                          f"got {m.pretrain_pair_gap_min} / {m.pretrain_pair_gap_max}")
    root = m.pretrain_root
    if root is None and cfg.data.root is not None:
        if m.pretrain_data != cfg.data.name:
            raise ConfigError(
                f"tcae: data.root points at a real {cfg.data.name} release; set method.pretrain_root to the "
                f"{m.pretrain_data} release used for pretraining (or method.pretrain_data={cfg.data.name})"
            )
        root = cfg.data.root
    for key in ("pretrain_val_fraction", "pretrain_test_fraction"):
        if m[key] is not None and not 0.0 <= m[key] < 1.0:
            raise ConfigError(f"method.{key} must lie in [0, 1), got {m[key]}")
    split = {} if m.pretrain_val_fraction is None else {"val_fraction": m.pretrain_val_fraction}
    if m.pretrain_test_fraction:
        split["test_fraction"] = m.pretrain_test_fraction
    return create_datamodule(
        m.pretrain_data,
        root=root,
        synthetic_profile=cfg.data.synthetic_profile,
        synthetic_seed=cfg.data.synthetic_seed,
        task=m.pretrain_task,
        image_size=int(m.model.image_size),
        normalize="zero_one",
        batch_size=m.pretrain_batch_size,
        eval_batch_size=m.pretrain_eval_batch_size,
        num_workers=cfg.data.num_workers,
        split_seed=cfg.data.split_seed,
        limit_items=m.pretrain_limit_items,
        pair_gap_min=m.pretrain_pair_gap_min,
        pair_gap_max=m.pretrain_pair_gap_max,
        items_per_track=m.pretrain_pairs_per_track,
        pair_unit=m.pretrain_pair_unit,
        pair_frames=m.pretrain_pair_frames,
        pair_frame_stride=m.pretrain_pair_frame_stride,
        hflip=m.pretrain_hflip,
        **split,
        **probe_split_keys(cfg, m.pretrain_data),
    )


def _au_names(datamodule: L.LightningDataModule) -> list[str]:
    names = getattr(datamodule, "au_names", None)
    if not names:
        raise ValueError(f"{type(datamodule).__name__} exposes no au_names; the TCAE probe needs AU labels")
    return list(names)
