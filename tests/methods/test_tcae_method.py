"""TCAE Lightning modules: jitter geometry, 2-step fits of pretraining and probe, grid PNG, checkpoints."""
from __future__ import annotations

import cv2
import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from affectlab.evaluation.tcae_grid import GRID_COLUMNS
from affectlab.methods.tcae import TCAEConfig, TCAELinearProbe, TCAEPretrainModule
from affectlab.models.tcae import TCAE, TCAENetConfig, crop_jitter, load_pretrained

torch.set_num_threads(1)
NET = dict(image_size=16, trunk_channels=[8, 8], branch_channels=[8, 8], decoder_channels=[8, 8, 8])


class Pairs(Dataset):
    def __init__(self, n: int = 8) -> None:
        g = torch.Generator().manual_seed(0)
        self.src = torch.rand(n, 3, 16, 16, generator=g)
        self.tgt = self.src.roll(1, dims=-1)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> dict:
        return {"source": self.src[i], "target": self.tgt[i]}


class Frames(Dataset):
    def __init__(self, n: int = 16) -> None:
        g = torch.Generator().manual_seed(1)
        self.images = torch.rand(n, 3, 16, 16, generator=g)
        self.au = (torch.rand(n, 3, generator=g) > 0.5).float()
        self.mask = torch.ones(n, 3, dtype=torch.bool)
        self.mask[0, 0] = False

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "au": self.au[i], "au_mask": self.mask[i]}


def trainer(tmp_path, **kw) -> L.Trainer:
    return L.Trainer(default_root_dir=tmp_path, accelerator="cpu", devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, **kw)


def test_crop_jitter_with_the_widest_crop_is_the_resized_centre_224():
    image = torch.rand(2, 3, 256, 256)
    out = crop_jitter(image, 224.0, torch.Generator().manual_seed(0))  # no room to move: offset 16
    reference = F.interpolate(image[..., 16:240, 16:240], size=(256, 256), mode="bilinear", align_corners=False)
    # identical except the outermost pixels, which here blend in the neighbour just outside the crop
    assert torch.allclose(out[..., 1:-1, 1:-1], reference[..., 1:-1, 1:-1], atol=1e-4)


def test_crop_jitter_draws_independent_offsets_per_image():
    image = torch.rand(1, 3, 64, 64).expand(4, -1, -1, -1).contiguous()
    out = crop_jitter(image, 200.0, torch.Generator().manual_seed(0))
    assert out.shape == image.shape
    assert not torch.allclose(out[0], out[1])


def test_validation_jitter_uses_the_official_crop_side_and_the_same_crops_every_validation():
    batch = {"source": Pairs().src[:4], "target": Pairs().tgt[:4]}
    plain = TCAEPretrainModule(TCAE(TCAENetConfig(**NET)), TCAEConfig(model=TCAENetConfig(**NET)))
    assert torch.equal(plain._pair(batch, train=False)[0], batch["source"])  # ours: no validation jitter
    module = TCAEPretrainModule(TCAE(TCAENetConfig(**NET)), TCAEConfig(model=TCAENetConfig(**NET), val_jitter=True))
    assert module._val_crop == 212.0  # numpy RandomState(0).randint(200, 224), the official val dataset's draw
    runs = []
    for _ in range(2):
        module.on_validation_epoch_start()
        runs.append(module._pair(batch, train=False))
    assert not torch.equal(runs[0][0], batch["source"])
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    assert not torch.equal(runs[0][0][0], runs[0][1][0])  # source and target cropped independently


def test_pretraining_two_steps_runs_validation_writes_the_grid_and_moves_the_window(tmp_path):
    cfg = TCAEConfig(model=TCAENetConfig(**NET), curriculum_patience=0, grid_rows=3)
    module = TCAEPretrainModule(TCAE(cfg.model), cfg)
    module.artifact_dir = tmp_path / "artifacts"
    before = [p.detach().clone() for p in module.model.parameters()]
    # the window moves when val loss does not improve for more than 0 validations
    module.curriculum.best = -1.0
    t = trainer(tmp_path, max_steps=2, val_check_interval=1, limit_val_batches=1, check_val_every_n_epoch=None)
    t.fit(module, DataLoader(Pairs(), batch_size=4), DataLoader(Pairs(), batch_size=4))
    changed = sum(not torch.equal(a, b) for a, b in zip(before, module.model.parameters()))
    assert changed > 0
    assert module.curriculum.window[0] > 0.0
    for key in ("train/loss", "val/loss", "val/rec", "val/emb_rec_au_t", "val/cyc_pose", "val/rec_identity"):
        assert key in t.callback_metrics, key
    grids = sorted((tmp_path / "artifacts").glob("tcae_val_epoch*.png"))
    assert grids
    grid = cv2.imread(str(grids[-1]))
    assert grid.shape == (3 * 16, len(GRID_COLUMNS) * 16, 3)
    path = tmp_path / "pre.ckpt"
    t.save_checkpoint(path)
    saved = torch.load(path, map_location="cpu", weights_only=False)
    assert saved["tcae_curriculum"]["shifts"] == module.curriculum.shifts
    fresh = TCAE(cfg.model)
    load_pretrained(fresh, path)
    for a, b in zip(fresh.state_dict().values(), module.model.state_dict().values()):
        assert torch.equal(a, b)


def test_load_pretrained_rejects_a_mismatched_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="other.pt"):
        load_pretrained(TCAE(TCAENetConfig(**NET)), path)


def test_probe_two_steps_trains_only_the_head_and_reports_f1(tmp_path):
    model = TCAE(TCAENetConfig(**NET))
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    probe = TCAELinearProbe(model.encoder, ["AU01", "AU02", "AU04"], lr=1e-2)
    assert probe.classifier.bias is None
    head_before = probe.classifier.weight.detach().clone()
    t = trainer(tmp_path, max_steps=2)
    t.fit(probe, DataLoader(Frames(), batch_size=8), DataLoader(Frames(), batch_size=8))
    assert not torch.equal(head_before, probe.classifier.weight)
    for k, v in model.encoder.state_dict().items():  # frozen, BN running stats included
        assert torch.equal(v, encoder_before[k]), k
    results = t.test(probe, DataLoader(Frames(), batch_size=8), verbose=False)[0]
    assert set(results) >= {"test/f1_au01", "test/f1_au02", "test/f1_au04", "test/f1_mean"}
    # reference F1 from sklearn on the same predictions
    from sklearn.metrics import f1_score

    probe.eval()
    data = Frames()
    with torch.no_grad():
        pred = (torch.sigmoid(probe(data.images)) >= 0.5).numpy()
    au = data.au.numpy()
    keep = data.mask[:, 1].numpy()
    assert results["test/f1_au02"] == pytest.approx(f1_score(au[keep, 1], pred[keep, 1], zero_division=0), abs=1e-6)


def test_masked_labels_do_not_contribute_to_the_probe_loss():
    probe = TCAELinearProbe(TCAE(TCAENetConfig(**NET)).encoder, ["AU01", "AU02"])
    logits = torch.tensor([[0.0, 2.0]])
    batch = {"au": torch.tensor([[1.0, 0.0]]), "au_mask": torch.tensor([[True, False]])}
    assert probe.au_loss(logits, batch).item() == pytest.approx(-torch.log(torch.sigmoid(torch.tensor(0.0))).item())


def test_configs_compose_and_the_paper_experiment_has_the_official_network():
    from affectlab.config import ConfigError, compose
    from affectlab.methods.tcae import net_config
    from affectlab.models.tcae import count_parameters

    paper = compose(["EXP=tcae_paper"])
    assert paper.method.name == "tcae" and paper.data.image_size == 256 and paper.data.normalize == "zero_one"
    assert (paper.method.lr, paper.method.momentum, paper.method.curriculum_patience) == (0.001, 0.9, 15)
    # nothing of the CPU preset (method/tcae.yaml is merged first) leaks into the official experiment
    official = TCAEConfig()
    for key in ("pretrain_epochs", "pretrain_max_steps", "pretrain_val_every_n_epochs", "pretrain_batch_size",
                "probe_max_steps", "jitter_crop_min", "jitter_crop_max", "curriculum_start", "optimizer",
                "probe_pos_weight", "probe_threshold", "probe_epochs", "probe_lr", "pretrain_pairs_per_track"):
        assert paper.method[key] == getattr(official, key), key
    assert count_parameters(TCAE(net_config(paper))) == 14_717_094
    assert paper.method.model.zero_init_fields is False  # official (default) initialisation
    small = compose(["METHOD=tcae"])
    assert small.data.image_size == small.method.model.image_size == 64
    with pytest.raises(ConfigError, match="image_size"):
        net_config(compose(["METHOD=tcae", "data.image_size=112"]))


def test_the_paper_experiment_runs_in_float32_and_the_official_data_protocol():
    from affectlab.config import compose

    paper = compose(["EXP=tcae_paper", "TRAINER=gpu"])
    assert paper.trainer.precision == "32-true"  # gpu.yaml says bf16-mixed
    assert paper.trainer.matmul_precision == "highest"  # no TF32 matmuls either, as the official fp32 code
    chosen = compose(["EXP=tcae_paper", "TRAINER=gpu", "trainer.precision=bf16-mixed"])
    assert chosen.trainer.precision == "bf16-mixed"  # still the user's choice
    # and the official data protocol: one pair per identity, any two frames, 75/15/10, jittered validation
    m = paper.method
    assert (m.pretrain_pair_unit, m.pretrain_pair_frames, m.pretrain_val_fraction, m.pretrain_test_fraction,
            m.val_jitter) == ("identity", "any", 0.15, 0.10, True)
    cpu = compose(["METHOD=tcae"]).method  # the CPU default keeps its own protocol
    assert (cpu.pretrain_pair_unit, cpu.pretrain_pair_frames, cpu.pretrain_val_fraction, cpu.val_jitter) == (
        "track", "gap", None, False)


def test_real_probe_data_without_a_pretraining_root_is_refused(tmp_path):
    from affectlab.config import ConfigError, compose
    from affectlab.methods.tcae import pretrain_datamodule

    cfg = compose(["METHOD=tcae", f"data.root={tmp_path}"])
    with pytest.raises(ConfigError, match="pretrain_root"):
        pretrain_datamodule(cfg)


def test_optimizer_switch_official_sgd_or_adam_and_a_bad_name_is_refused():
    from affectlab.config import ConfigError

    def optimizer(name: str) -> torch.optim.Optimizer:
        module = TCAEPretrainModule(TCAE(TCAENetConfig(**NET)), TCAEConfig(optimizer=name, lr=0.01, momentum=0.5))
        return module.configure_optimizers()

    sgd = optimizer("sgd")
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.5 and sgd.defaults["lr"] == 0.01
    adam = optimizer("adam")
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.01
    with pytest.raises(ConfigError, match="optimizer"):
        optimizer("rmsprop")


def test_pos_weighted_probe_loss_weights_positive_terms_by_the_ratio():
    probe = TCAELinearProbe(TCAE(TCAENetConfig(**NET)).encoder, ["AU01", "AU02"], pos_weight=torch.tensor([3.0, 1.0]))
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    batch = {"au": torch.tensor([[1.0, 0.0], [0.0, 0.0]])}
    log2 = float(torch.log(torch.tensor(2.0)))
    # one positive of AU01 counts 3×, the other three terms once: (3 + 1 + 1 + 1) log 2 / 4
    assert probe.au_loss(logits, batch).item() == pytest.approx(6 * log2 / 4)


def test_rec_only_steps_train_the_reconstruction_term_alone_then_the_official_objective(tmp_path):
    from affectlab.losses.tcae import TCAELossWeights

    cfg = TCAEConfig(model=TCAENetConfig(**NET), rec_only_steps=2, curriculum=False)
    module = TCAEPretrainModule(TCAE(cfg.model), cfg)
    assert module.weights_at(0) == module.weights_at(1) == TCAELossWeights(rec=10.0, sparse=0.0, emb=0.0, cyc=0.0)
    assert module.weights_at(2) == TCAELossWeights()  # the official weights from step rec_only_steps on
    # step 0 trains 10·L_rec exactly (full window); the logged terms are still all computed
    seen = []
    module.log = lambda name, value, **kw: seen.append((name, float(value.detach()))) if name == "train/loss" else None
    module.log_dict = lambda values, **kw: seen.append(("rec", float(values["train/rec"])))
    batch = next(iter(DataLoader(Pairs(), batch_size=4)))
    module.on_train_epoch_start = lambda: None
    module._crop = float(cfg.jitter_crop_max)
    torch.manual_seed(0)
    total = module.training_step(batch, 0)
    rec = dict(seen)["rec"]
    assert float(total) == pytest.approx(10.0 * rec, rel=1e-6)


def test_cpu_long_preset_is_the_reconstruction_first_recipe():
    from affectlab.config import compose

    cfg = compose(["METHOD=tcae", "EXP=tcae_cpu_long"])
    m = cfg.method
    assert (m.rec_only_steps, m.pretrain_max_steps, m.optimizer, m.lr) == (10600, 12500, "adam", 0.001)
    assert (m.pretrain_data, m.jitter, m.curriculum, m.model.zero_init_fields) == ("bp4d", False, False, True)
    assert dict(m.loss) == {"rec": 10.0, "sparse": 0.1, "emb": 1.0, "cyc": 1.0}  # the official terms after the phase-in


def test_probe_disentanglement_joins_the_tested_frames_to_the_ground_truth():
    """The probe's test pass hands φ/ψ of the tested frames, keyed by (subject, sequence, frame), to
    ``embedding_r2``; frames it cannot place or too few subjects give no numbers and a warning."""
    import numpy as np

    from tests.foundation.test_disentanglement import _world

    phi, psi, truth, subjects = _world(n_subjects=6, frames=30)
    frames = np.tile(np.arange(30), 6)
    table = truth.assign(subject=subjects, sequence="T1", frame=frames).set_index(["subject", "sequence", "frame"])
    encoder = torch.nn.Module()
    encoder.embedding_dim = phi.shape[1]
    probe = TCAELinearProbe(encoder, ["au01"])
    probe.groundtruth = table
    keys = [(s, f"{s}/T1", int(f)) for s, f in zip(subjects, frames)]  # BP4D-style sequence ids
    order = np.random.default_rng(0).permutation(len(keys))  # test batches need not follow the table
    probe._test_embeddings = [(phi[order], psi[order], [keys[i] for i in order])]
    r2 = probe.disentanglement()
    assert r2["r2_phi_au"] > 0.95 and r2["r2_psi_pose"] > 0.95 and r2["r2_psi_au"] < 0.05
    probe._test_embeddings = [(phi[:60], psi[:60], keys[:60])]  # two subjects
    with pytest.warns(UserWarning, match="test subjects"):
        assert probe.disentanglement() == {}
    probe._test_embeddings = [(phi[:1], psi[:1], [("X9", "T1", 0)])]
    with pytest.warns(UserWarning, match="do not match"):
        assert probe.disentanglement() == {}
