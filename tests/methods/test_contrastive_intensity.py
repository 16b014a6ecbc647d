"""contrastive_intensity: spatio-temporal model, the two stages' LightningModules (2-step fits on
random tensors shaped like the ``clips``/``sequences`` samples) and the method's config."""
from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from affectlab.config import RootConfig
from affectlab.losses.sparse_regression import LabelBudget
from affectlab.methods.contrastive_intensity import (
    ContrastiveIntensityConfig,
    ContrastivePretrainModule,
    SparseIntensityRegressor,
    build_model,
)
from affectlab.evaluation.intensity_traces import IntensityTraces, sequence_names
from data_modules.base import DataConfig
from data_modules.clip_views import augment_clips, temporal_view

TINY_MODEL = {"backbone": "resnet18", "hidden_dim": 16,
              "backbone_kwargs": {"channels": [8, 8, 16, 16], "layers": [1, 1, 1, 1], "stem_width": 8}}
SIZE, K = 32, 3


def make_cfg(**method):
    cfg = OmegaConf.structured(RootConfig)
    cfg.method = OmegaConf.structured(ContrastiveIntensityConfig)
    cfg.data = OmegaConf.structured(DataConfig)
    base = {"model": TINY_MODEL, "pretrain": {"clip_length": 6, "temporal_jitter": 2, "horizon": 2, "min_context": 2,
                                              "batch_size": 4}}
    cfg.method = OmegaConf.merge(cfg.method, base, method)
    cfg.trainer.max_steps = 2
    return cfg


class _Clips(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"video": torch.randn(8, 3, SIZE, SIZE, generator=g), "meta": {"clip": str(i)}}


class _Sequences(Dataset):
    """Two sequences of 20 frames cut into windows of 10; labels on frames 3 and 14 only (train)."""

    def __init__(self, dense: bool):
        self.dense = dense

    def __len__(self):
        return 4

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        seq, start = f"S{i // 2}", 10 * (i % 2)
        frames = torch.arange(start, start + 10)
        mask = torch.ones(10, K, dtype=torch.bool) if self.dense else torch.isin(frames, torch.tensor([3, 14]))[:, None].repeat(1, K)
        return {"video": torch.randn(10, 3, SIZE, SIZE, generator=g), "intensity": torch.rand(10, K, generator=g) * 5,
                "intensity_mask": mask, "meta": {"dataset": "toy", "subject": seq, "sequence": "T1", "frames": frames}}


class _DM(L.LightningDataModule):
    def __init__(self, kind):
        super().__init__()
        self.kind = kind
        self.au_names = [f"AU{i + 1:02d}" for i in range(K)]

    def _loader(self, dense):
        ds = _Clips() if self.kind == "clips" else _Sequences(dense)
        return DataLoader(ds, batch_size=4 if self.kind == "clips" else 2)

    def train_dataloader(self):
        return self._loader(False)

    def val_dataloader(self):
        return self._loader(True)

    def test_dataloader(self):
        return self._loader(True)


def _fit(module, kind, steps=2):
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=1)
    trainer.fit(module, datamodule=_DM(kind))
    return trainer


def _params(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items() if v.is_floating_point()}


def test_temporal_state_is_causal():
    torch.manual_seed(0)
    model = build_model(OmegaConf.merge(OmegaConf.structured(ContrastiveIntensityConfig),
                                        {"model": TINY_MODEL})).eval()
    video = torch.randn(2, 7, 3, SIZE, SIZE)
    z, h = model(video)
    assert z.shape == (2, 7, model.embed_dim) and h.shape == (2, 7, 16)
    changed = video.clone()
    changed[:, 4:] = torch.randn(2, 3, 3, SIZE, SIZE)
    _, h2 = model(changed)
    assert torch.allclose(h[:, :4], h2[:, :4], atol=1e-5)
    assert not torch.allclose(h[:, 4:], h2[:, 4:], atol=1e-3)


def test_clip_augmentation_is_identical_over_frames_and_temporal_view_is_contiguous():
    frame = torch.rand(3, 3, SIZE, SIZE)
    video = frame[:, None].repeat(1, 5, 1, 1, 1)
    out = augment_clips(video, 0.5, True, 0.3, generator=torch.Generator().manual_seed(0))
    assert out.shape == video.shape and not torch.allclose(out, video)
    assert torch.allclose(out[:, 1:], out[:, :1].expand_as(out[:, 1:]))
    ramp = torch.arange(10.0)[None, :, None, None, None].expand(4, 10, 1, 2, 2)
    view = temporal_view(ramp, 6, generator=torch.Generator().manual_seed(1))[:, :, 0, 0, 0]
    assert torch.all(view[:, 1:] - view[:, :-1] == 1) and view.shape == (4, 6)
    with pytest.raises(ValueError, match="clip_length"):
        temporal_view(ramp, 11)


@pytest.mark.parametrize("objective", ["predictive", "frame", "frame_predictive"])
def test_pretrain_two_step_fit(objective):
    torch.manual_seed(0)
    module = ContrastivePretrainModule(make_cfg(pretrain={"objective": objective}))
    before = _params(module)
    trainer = _fit(module, "clips")
    assert trainer.global_step == 2
    assert math.isfinite(float(trainer.callback_metrics["train/loss"]))
    assert math.isfinite(float(trainer.callback_metrics["val/loss"]))
    after = _params(module)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.encoder"))
    # the frame objective trains the per-frame extractor only
    changed_temporal = any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.temporal"))
    assert changed_temporal == (objective != "frame")
    # and, for DDP, every parameter that requires a gradient gets one
    module.zero_grad(set_to_none=True)
    module.loss(torch.randn(4, 8, 3, SIZE, SIZE), train=True)[0].backward()
    assert [n for n, p in module.named_parameters() if p.requires_grad and p.grad is None] == []
    assert 0.0 <= float(trainer.callback_metrics["train/acc"]) <= 1.0


def test_frame_predictive_adds_a_temporal_term_that_stops_at_the_extractor():
    from affectlab.losses.contrastive import nt_xent, predictive_contrastive_loss

    torch.manual_seed(0)
    cfg = make_cfg(pretrain={"objective": "frame_predictive", "temporal_weight": 0.5})
    module = ContrastivePretrainModule(cfg)
    video = torch.randn(4, 8, 3, SIZE, SIZE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        loss, stats = module.loss(video, train=True)
    # the same views by hand: NT-Xent of the projections + 0.5 × predictive InfoNCE of the detached mean
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        clip = video[:, :6]
        frames = clip.flatten(0, 1)[:, None]
        views = [augment_clips(frames, 0.8, True, 0.2).view_as(clip) for _ in range(2)]
    e1, e2 = (module.model.encoder(v) for v in views)
    z = (e1 + e2) / 2
    h = module.model.temporal(module.model.feature_norm(z))
    anchors = torch.arange(1, 4)  # min_context 2, horizon 2, 6 frames: t = 1, 2, 3
    temporal = predictive_contrastive_loss(module.predictor(h[:, anchors]), z, anchors, 0.1)
    expected = nt_xent(module.head(e1.flatten(0, 1)), module.head(e2.flatten(0, 1)), 0.1) + 0.5 * temporal
    assert torch.allclose(loss, expected, atol=1e-5) and torch.allclose(stats["temporal"], temporal, atol=1e-5)
    # the temporal term trains the temporal module and predictor, never the extractor
    module.zero_grad(set_to_none=True)
    module.temporal_loss(z.detach())[0].backward()
    assert all(p.grad is None for p in module.model.encoder.parameters())
    assert all(p.grad is not None for p in (*module.model.temporal.parameters(), *module.predictor.parameters()))


def test_frame_predictive_pretrains_the_same_extractor_as_frame():
    """The temporal term is detached from the extractor and its predictor is drawn from a forked
    stream, so frame vs frame_predictive at one seed is an exact ablation of the pretrained GRU."""
    trained = {}
    for objective in ("frame", "frame_predictive"):
        torch.manual_seed(0)
        module = ContrastivePretrainModule(make_cfg(pretrain={"objective": objective}))
        _fit(module, "clips", steps=3)
        trained[objective] = _params(module)
    frame, both = trained["frame"], trained["frame_predictive"]
    shared = [k for k in frame if k.startswith(("model.encoder", "head"))]
    assert shared and all(torch.equal(frame[k], both[k]) for k in shared)
    assert any(not torch.equal(frame[k], both[k]) for k in frame if k.startswith("model.temporal"))


def test_regressor_trains_the_temporal_part_after_frame_pretraining(tmp_path):
    torch.manual_seed(0)
    cfg = make_cfg(pretrain={"objective": "frame"}, regress={"freeze_extractor": True})
    pre = ContrastivePretrainModule(cfg)
    _fit(pre, "clips")
    module = SparseIntensityRegressor(cfg, pre.model, [f"AU{i + 1:02d}" for i in range(K)])
    module.artifact_dir = tmp_path
    before = _params(module)
    _fit(module, "sequences")
    after = _params(module)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.temporal"))


def test_pretrain_rejects_impossible_clip():
    with pytest.raises(ValueError, match="clip_length"):
        ContrastivePretrainModule(make_cfg(pretrain={"clip_length": 3, "horizon": 2, "min_context": 2}))


@pytest.mark.parametrize("freeze", [True, False])
def test_regress_two_step_fit_and_test_pass(freeze, tmp_path):
    torch.manual_seed(0)
    cfg = make_cfg(regress={"freeze_extractor": freeze, "trace_sequences": 2})
    module = SparseIntensityRegressor(cfg, build_model(cfg.method), [f"AU{i + 1:02d}" for i in range(K)])
    module.artifact_dir = tmp_path
    before = _params(module)
    trainer = _fit(module, "sequences")
    after = _params(module)
    encoder_changed = any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.encoder"))
    assert encoder_changed is (not freeze)  # frozen: weights and BatchNorm statistics untouched
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model.temporal"))
    assert "val/icc_mean" in trainer.callback_metrics
    trainer.test(module, datamodule=_DM("sequences"), verbose=False)
    metrics = trainer.callback_metrics
    for name in ("icc", "mae", "pcc"):
        assert {f"test/{name}_au01", f"test/{name}_au03", f"test/{name}_mean"} <= set(metrics)
    png = tmp_path / "intensity_traces.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


def test_regress_training_loss_uses_only_labelled_frames():
    torch.manual_seed(0)
    cfg = make_cfg()
    module = SparseIntensityRegressor(cfg, build_model(cfg.method), ["AU01", "AU02", "AU03"])
    batch = next(iter(DataLoader(_Sequences(dense=False), batch_size=2)))
    pred = module(batch["video"])
    pred.retain_grad()
    from affectlab.losses.sparse_regression import masked_intensity_loss

    masked_intensity_loss(pred, batch["intensity"], module.training_mask(batch)).backward()
    labelled = torch.isin(batch["meta"]["frames"], torch.tensor([3, 14]))
    assert torch.all(pred.grad[~labelled] == 0) and torch.all(pred.grad[labelled].abs().sum(-1) > 0)


def test_global_label_budget_restricts_training_mask():
    cfg = make_cfg()
    frames = list(range(20)) * 2
    budget = LabelBudget(["S0_T1"] * 20 + ["S1_T1"] * 20, frames, fraction=0.1, seed=0)
    assert budget.num_frames == 40 and budget.num_labelled == 4
    module = SparseIntensityRegressor(cfg, build_model(cfg.method), ["AU01", "AU02", "AU03"], budget)
    batch = next(iter(DataLoader(_Sequences(dense=True), batch_size=4)))
    batch["meta"]["sequence"] = [f"{s}_T1" for s in batch["meta"]["subject"]]
    mask = module.training_mask(batch)
    assert int(mask.any(-1).sum()) == 4
    for i, seq in enumerate(batch["meta"]["sequence"]):
        chosen = set(budget.labelled[seq].tolist())
        for t, f in enumerate(batch["meta"]["frames"][i].tolist()):
            assert bool(mask[i, t].all()) is (f in chosen)
    with pytest.raises(KeyError, match="not in the training manifest"):
        budget.mask(["S9"], torch.zeros(1, 3, dtype=torch.long))


def test_overlapping_evaluation_windows_count_each_frame_once():
    cfg = make_cfg()
    module = SparseIntensityRegressor(cfg, build_model(cfg.method), ["AU01", "AU02", "AU03"])
    mask = torch.ones(2, 4, K, dtype=torch.bool)
    batch = {"meta": {"subject": ["S1", "S1"], "sequence": ["T1", "T1"],
                      "frames": torch.tensor([[0, 1, 2, 3], [2, 3, 4, 5]])}}
    module.on_validation_epoch_start()
    kept = module.first_seen.mask(batch["meta"], mask)
    assert kept[0].all() and not kept[1, :2].any() and kept[1, 2:].all()
    module.on_validation_epoch_start()  # a new pass scores every frame again
    assert torch.equal(module.first_seen.mask(batch["meta"], mask), kept)


def test_intensity_traces_keep_coded_frames_of_the_first_sequences_only():
    traces = IntensityTraces(max_sequences=1)
    pred = torch.arange(2 * 3 * 2, dtype=torch.float).view(2, 3, 2)
    target = torch.ones(2, 3, 2)
    mask = torch.tensor([[[1, 0], [0, 0], [1, 1]], [[1, 1], [1, 1], [1, 1]]], dtype=torch.bool)
    meta = {"subject": ["S1", "S2"], "sequence": ["T1", "T1"], "frames": torch.tensor([[5, 6, 7], [0, 1, 2]])}
    traces.add(meta, pred, target, mask)
    assert list(traces.traces) == ["S1_T1"]  # S2 is a second sequence, over the limit
    entry = traces.traces["S1_T1"]
    assert entry["frame"][0].tolist() == [5, 7]  # frame 6 has no coded AU
    assert torch.equal(entry["pred"][0], pred[0, [0, 2]])
    assert torch.isnan(entry["target"][0][0, 1]) and entry["target"][0][1].tolist() == [1.0, 1.0]


def test_intensity_traces_plot_then_reset(tmp_path):
    traces = IntensityTraces(max_sequences=2)
    meta = {"subject": ["S1"], "sequence": ["T1"], "frames": torch.tensor([[3, 4]])}
    traces.add(meta, torch.rand(1, 2, 2) * 5, torch.ones(1, 2, 2), torch.ones(1, 2, 2, dtype=torch.bool))
    png = traces.plot(["AU01", "AU02"], tmp_path / "traces.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and len(traces) == 1
    traces.reset()
    assert len(traces) == 0 and not traces


def test_method_config_presets_compose():
    from affectlab.config import ConfigError, compose

    cfg = compose(["METHOD=contrastive_intensity"])
    assert (cfg.data.name, cfg.data.task, cfg.data.label_fraction) == ("disfa", "sequences", 0.02)
    # the synthetic CPU preset trains the extractor with the per-frame objective (docs: end-to-end
    # predictive collapses to clip identity) and the temporal module with the predictive one on its
    # detached embeddings; the config default and the paper-sized preset stay predictive
    assert cfg.method.pretrain.objective == "frame_predictive"
    assert ContrastiveIntensityConfig().pretrain.objective == "predictive"
    paper = compose(["EXP=contrastive_intensity_paper"])
    assert paper.method.model.backbone_kwargs is None and paper.data.image_size == 112
    assert paper.method.pretrain.objective == "predictive"
    # CPU preset: stage 1 on the training subjects' frames, 4×4 grid embedding; paper preset: a separate
    # video set, global pooling
    assert (cfg.method.pretrain.source, cfg.method.model.grid) == ("regress_train", 4)
    assert (paper.method.pretrain.source, paper.method.model.grid) == ("videos", 0)
    assert ContrastiveIntensityConfig().pretrain.source == "videos"
    bp4d = compose(["METHOD=contrastive_intensity", "DATA=bp4d", "method.regress.freeze_extractor=true"])
    assert bp4d.data.task == "sequences" and bp4d.method.regress.freeze_extractor is True
    with pytest.raises(ConfigError, match="label_fractoin"):
        compose(["METHOD=contrastive_intensity", "method.regress.label_fractoin=0.1"])


def test_sequence_names():
    assert sequence_names({"subject": ["SN001"], "sequence": ["SN001"]}, 1) == ["SN001"]
    assert sequence_names({"subject": ["F001"], "sequence": ["T1"]}, 1) == ["F001_T1"]
    assert sequence_names(None, 2) == ["item0", "item1"]


def test_feature_norm_standardises_frame_embeddings_before_the_temporal_module():
    from affectlab.models.spatiotemporal import FeatureNorm

    g = torch.Generator().manual_seed(0)
    z = 5.0 + 0.1 * torch.randn(3, 7, 4, generator=g)  # large mean, small frame-to-frame variation
    out = FeatureNorm(4, "batch").train()(z)
    flat = out.flatten(0, 1)
    assert torch.allclose(flat.mean(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(flat.std(0, unbiased=False), torch.ones(4), atol=1e-2)
    # the same frame gives the same output whatever its position (normalisation per feature over frames)
    ref = (z - z.flatten(0, 1).mean(0)) / torch.sqrt(z.flatten(0, 1).var(0, unbiased=False) + 1e-5)
    assert torch.allclose(out, ref, atol=1e-4)
    assert torch.equal(FeatureNorm(4, "none")(z), z)
    with pytest.raises(ValueError, match="feature_norm"):
        FeatureNorm(4, "layer")
    # the model returns the raw z (for the stage-1 losses) and feeds the normalised z to the GRU
    torch.manual_seed(0)
    model = build_model(OmegaConf.create({"model": {**TINY_MODEL, "checkpoint_path": None,
                                                    "num_layers": 1, "dropout": 0.0,
                                                    "feature_norm": "batch", "grid": 0}})).eval()
    video = torch.randn(2, 5, 3, SIZE, SIZE, generator=g)
    z_out, h = model(video)
    assert torch.allclose(z_out, model.encoder(video))
    assert torch.allclose(h, model.temporal(model.feature_norm(z_out)))


def test_pretrain_select_switch():
    from affectlab.methods.contrastive_intensity import ContrastiveIntensity

    cfg = make_cfg(pretrain={"select": "bogus"})
    with pytest.raises(ValueError, match="select"):
        next(ContrastiveIntensity().stages(cfg, None))


def test_grid_frame_embedding_keeps_the_layout_of_the_feature_map():
    from affectlab.models.spatiotemporal import FrameEncoder

    torch.manual_seed(0)
    enc = FrameEncoder("resnet18", backbone_kwargs=TINY_MODEL["backbone_kwargs"], grid=2).eval()
    video = torch.randn(2, 3, 3, SIZE, SIZE)
    z = enc(video)
    assert z.shape == (2, 3, enc.net.num_features * 4) and enc.out_dim == enc.net.num_features * 4
    big = torch.randn(1, 2, 3, 2 * SIZE, 2 * SIZE)  # 64 px → a 2×2 map: each cell is one quadrant
    fmap = enc.net.forward_features(big.flatten(0, 1))
    assert fmap.shape[-2:] == (2, 2)
    ref = torch.stack([fmap[..., i, j] for i in range(2) for j in range(2)], dim=-1).flatten(1)  # (T, D·4) D-major
    assert torch.allclose(enc(big)[0], ref, atol=1e-6)
    # global pooling (grid 0) is the mean of the cells
    glob = FrameEncoder("resnet18", backbone_kwargs=TINY_MODEL["backbone_kwargs"], grid=0).eval()
    glob.load_state_dict(enc.state_dict())
    assert torch.allclose(glob(big)[0], fmap.mean((-2, -1)), atol=1e-6)
    with pytest.raises(ValueError, match="grid"):
        FrameEncoder("resnet18", backbone_kwargs=TINY_MODEL["backbone_kwargs"], grid=-1)


def test_pretrain_source_is_validated():
    from affectlab.methods.contrastive_intensity import pretrain_datamodule

    with pytest.raises(ValueError, match="source"):
        pretrain_datamodule(make_cfg(pretrain={"source": "bogus"}))


def test_frame_encoder_loads_a_local_checkpoint_without_the_network(tmp_path, monkeypatch):
    """``checkpoint_path`` sets timm's ``pretrained=True`` with a file overlay: the weights must come
    from that file (a 1000-class ImageNet-style state dict; the classifier is dropped) and nothing may
    be fetched."""
    import socket

    import timm

    from affectlab.models.spatiotemporal import FrameEncoder

    def no_network(*args, **kwargs):
        raise AssertionError("FrameEncoder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(3)
    source = timm.create_model("resnet18", pretrained=False, **TINY_MODEL["backbone_kwargs"])
    path = tmp_path / "resnet18_tiny.pth"
    torch.save(source.state_dict(), path)
    with pytest.raises(ValueError, match="checkpoint_path"):
        FrameEncoder("resnet18", pretrained=True, backbone_kwargs=TINY_MODEL["backbone_kwargs"])
    torch.manual_seed(4)
    enc = FrameEncoder("resnet18", checkpoint_path=str(path), backbone_kwargs=TINY_MODEL["backbone_kwargs"])
    loaded = enc.net.state_dict()
    expected = {k: v for k, v in source.state_dict().items() if not k.startswith("fc.")}
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)
