"""The IAL LightningModule: a 2-step fit, metrics names, the confusion-matrix artefact, config."""
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from affectlab.config import TrainerConfig
from affectlab.engine.schedules import warmup_cosine
from affectlab.methods.ial import IALConfig, IALModule, build_network, save_confusion_matrix

CLASSES = ["Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear"]


def _cfg(**method):
    return OmegaConf.create({
        "method": {**OmegaConf.structured(IALConfig(name="ial", preset="small", lr=0.05, weight_decay=0.0)), **method},
        "data": {"name": "toyclips", "fold": 1, "image_size": 32, "clip_segments": 4,
                 "clip_frames_per_segment": 1, "batch_size": 7},
        "trainer": OmegaConf.structured(TrainerConfig()),
    })


class _Clips(Dataset):
    """Clips whose class sets the brightness of one image quadrant band (learnable in a few steps)."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % 7
        self.videos = torch.rand(n, 4, 3, 32, 32, generator=g) * 0.2
        for i, y in enumerate(self.labels.tolist()):
            self.videos[i, :, :, 4 * y:4 * y + 4, :] += 0.8

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"video": self.videos[i], "label": int(self.labels[i]), "meta": {"clip": str(i)}}


class _DM(L.LightningDataModule):
    def train_dataloader(self):
        return DataLoader(_Clips(14, 0), batch_size=7, shuffle=True)

    def val_dataloader(self):
        return DataLoader(_Clips(7, 1), batch_size=7)

    def test_dataloader(self):
        return DataLoader(_Clips(14, 2), batch_size=7)


def test_network_is_sized_from_data_section():
    net = build_network(_cfg(), num_classes=7)
    assert net.cfg.num_frames == 4 and net.cfg.image_size == 32 and net.cfg.widths == [16, 32, 64]
    with pytest.raises(ValueError, match="preset"):
        build_network(_cfg(preset="tiny"), 7)
    with pytest.raises(ValueError, match="attention"):
        build_network(_cfg(attention="cbam"), 7)


def test_two_step_fit_and_test_pass(tmp_path):
    torch.manual_seed(0)
    module = IALModule(_cfg(), CLASSES)
    module.artifact_dir = tmp_path / "artifacts"
    before = [p.detach().clone() for p in module.parameters()]
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0)
    trainer.fit(module, datamodule=_DM())
    assert trainer.global_step == 2
    changed = sum(not torch.equal(a, b) for a, b in zip(before, module.parameters()))
    assert changed > 0.9 * len(before)  # everything that enters the loss is trained, incl. GCA aux
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    for key in ("val/uar", "val/war", "val/recall_happy", "val/recall_fear", "train/ial", "train/aux2"):
        assert key in trainer.callback_metrics, key
    trainer.test(module, datamodule=_DM(), verbose=False)
    assert {"test/uar", "test/war", "test/recall_disgust"} <= set(trainer.callback_metrics)
    png = tmp_path / "artifacts" / "confusion_matrix_fold1.png"
    assert module.confusion_png == png and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = (tmp_path / "artifacts" / "confusion_matrix_fold1.csv").read_text().strip().splitlines()
    assert sum(int(v) for line in rows[1:] for v in line.split(",")[1:]) == 14


def test_loss_decreases_when_fitting_a_batch():
    torch.manual_seed(0)
    module = IALModule(_cfg(), CLASSES)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    batch = next(iter(DataLoader(_Clips(14, 0), batch_size=14)))
    losses = []
    for _ in range(15):
        terms, _ = module._objective(batch["video"], batch["label"])
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(terms["loss"].item())
    assert losses[-1] < 0.5 * losses[0]


def test_sgd_steplr_from_config():
    module = IALModule(_cfg(lr=0.001, weight_decay=0.1, lr_step_epochs=7, lr_gamma=0.5), CLASSES)
    module.trainer = None
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.SGD)
    g = opt.param_groups[0]
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (0.001, 0.9, 0.1)
    assert (sched.step_size, sched.gamma) == (7, 0.5)


def test_warmup_cosine_factors():
    # linear warm-up over 4 steps, then half a cosine period down to 0 at step 12
    assert [warmup_cosine(k, 4, 12) for k in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert warmup_cosine(4, 4, 12) == 1.0
    assert abs(warmup_cosine(8, 4, 12) - 0.5) < 1e-12
    assert abs(warmup_cosine(6, 4, 12) - (1 + np.cos(np.pi / 4)) / 2) < 1e-12
    assert warmup_cosine(12, 4, 12) == 0.0 and warmup_cosine(20, 4, 12) == 0.0
    assert warmup_cosine(0, 0, 10) == 1.0  # no warm-up


def test_adamw_cosine_from_config():
    cfg = _cfg(optimizer="adamw", lr=0.002, weight_decay=0.05, scheduler="cosine", warmup_epochs=2)
    cfg.trainer.max_epochs = 8
    module = IALModule(cfg, CLASSES)
    module.trainer = None  # no trainer: one step per epoch, so 2 warm-up steps of 8
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]
    assert isinstance(opt, torch.optim.AdamW) and sched["interval"] == "step"
    assert (opt.param_groups[0]["weight_decay"], opt.defaults["lr"]) == (0.05, 0.002)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    expected = [0.002 * warmup_cosine(k, 2, 8) for k in range(8)]
    assert np.allclose(lrs, expected) and lrs[0] == 0.001 and lrs[1] == 0.002 and lrs[-1] < lrs[2]
    with pytest.raises(ValueError, match="optimizer"):
        IALModule(_cfg(optimizer="lamb"), CLASSES).configure_optimizers()
    with pytest.raises(ValueError, match="scheduler"):
        IALModule(_cfg(scheduler="poly"), CLASSES).configure_optimizers()


class _GradNorm(L.Callback):
    """Global gradient norm as the optimiser saw it (grads are kept until the next step's zero_grad)."""

    def __init__(self) -> None:
        self.norms = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        grads = [p.grad.detach().flatten() for p in pl_module.parameters() if p.grad is not None]
        self.norms.append(float(torch.cat(grads).norm()))


@pytest.mark.parametrize("clip", [None, 1e-3])
def test_trainer_gradient_clipping(clip):
    torch.manual_seed(0)
    module = IALModule(_cfg(), CLASSES)
    probe = _GradNorm()
    trainer = L.Trainer(max_steps=2, gradient_clip_val=clip, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0,
                        limit_val_batches=0, callbacks=[probe])
    trainer.fit(module, datamodule=_DM())
    assert len(probe.norms) == 2
    if clip:
        assert all(n <= clip * 1.0001 for n in probe.norms), probe.norms
    else:
        assert all(n > 1e-2 for n in probe.norms), probe.norms  # unclipped gradients are far larger


def test_confusion_png(tmp_path):
    cm = np.array([[3, 1], [0, 2]])
    path = save_confusion_matrix(cm, ["A", "B"], tmp_path / "cm.png", title="t")
    assert path.exists() and path.stat().st_size > 1000


def test_registered_method_and_paper_experiment():
    from affectlab.config import compose

    cfg = compose(["METHOD=ial"])
    assert (cfg.data.name, cfg.data.task, cfg.method.preset, cfg.data.normalize) == ("dfew", "expression", "narrow", "zero_one")
    assert (cfg.data.image_size, cfg.data.clip_segments, cfg.data.train_transforms[0]["size"]) == (112, 8, [112, 112])
    assert build_network(cfg, 7).cfg.widths == [8, 16, 32]
    m = cfg.method  # CPU default: our optimisation (docs/methods/ial.md), the paper's network and loss
    assert (m.optimizer, m.scheduler, m.attention, m.use_ial, m.ial_weight) == ("adamw", "cosine", "gca", True, 0.1)
    assert m.warmup_epochs > 0 and cfg.trainer.gradient_clip_val == 1.0 and cfg.data.select_on_test is False
    assert m.select == "last" and compose(["EXP=ial_paper"]).method.select == "best"
    assert compose(["EXP=ial_ferv39k_paper"]).method.select == "best"
    paper = compose(["EXP=ial_paper", "data.fold=3"])
    m, d = paper.method, paper.data
    assert (m.name, m.preset, m.attention, m.use_ial) == ("ial", "paper", "gca", True)
    assert (m.lr, m.momentum, m.weight_decay, m.lr_step_epochs, m.lr_gamma) == (0.001, 0.9, 0.1, 7, 0.5)
    assert (m.optimizer, m.scheduler, m.warmup_epochs, paper.trainer.gradient_clip_val) == ("sgd", "step", 0, None)
    assert (m.ce_weight, list(m.aux_weights), m.ial_weight) == (1.0, [0.05, 0.0], 0.1)
    assert (d.name, d.fold, d.image_size, d.batch_size, d.clip_segments, d.clip_frames_per_segment) == ("dfew", 3, 112, 40, 16, 1)
    assert d.select_on_test is False and d.normalize == "zero_one"
    assert build_network(paper, 7).cfg.widths == [64, 128, 256]
    ferv = compose(["EXP=ial_ferv39k_paper"])
    assert (ferv.data.name, ferv.data.clip_segments, ferv.data.clip_frames_per_segment) == ("ferv39k", 8, 2)
    assert (ferv.method.optimizer, ferv.method.scheduler, ferv.trainer.gradient_clip_val) == ("sgd", "step", None)
    assert build_network(ferv, 7).cfg.num_frames == 16


def test_select_chooses_the_tested_weights():
    from affectlab.methods.ial import selection_monitor
    from affectlab.schema import ConfigError

    assert selection_monitor(_cfg(select="best").method) == "val/uar"
    assert selection_monitor(_cfg(select="last").method) is None   # the runner then tests last.ckpt
    with pytest.raises(ConfigError, match="method.select"):
        selection_monitor(_cfg(select="val").method)


@pytest.mark.parametrize("exp", ["ial_paper", "ial_ferv39k_paper"])
def test_paper_experiments_pin_float32_even_on_the_gpu_preset(exp):
    from affectlab.config import compose

    cfg = compose([f"EXP={exp}", "TRAINER=gpu"])
    assert (cfg.trainer.precision, cfg.trainer.matmul_precision) == ("32-true", "highest")
    fast = compose([f"EXP={exp}", "TRAINER=gpu", "trainer.precision=bf16-mixed", "trainer.matmul_precision=high"])
    assert (fast.trainer.precision, fast.trainer.matmul_precision) == ("bf16-mixed", "high")
    assert compose(["METHOD=ial", "TRAINER=gpu"]).trainer.matmul_precision == "high"  # the CPU default keeps its speed


@pytest.mark.parametrize("aux_weights", [[0.05, 0.0], [0.05, 0.5]])
def test_every_trainable_parameter_gets_a_gradient_as_ddp_requires(aux_weights):
    """DDP (find_unused_parameters=False) fails at step 2 on a trainable parameter without a gradient: the
    layer-3 auxiliary head at weight 0 (the paper's) is frozen, at a weight > 0 it trains."""
    torch.manual_seed(0)
    module = IALModule(_cfg(aux_weights=aux_weights), CLASSES)
    batch = next(iter(DataLoader(_Clips(7, 0), batch_size=7)))
    module._objective(batch["video"], batch["label"])[0]["loss"].backward()
    assert [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None] == []
    assert module.net.layer3.attention.aux[0].weight.requires_grad == (aux_weights[1] > 0)
