"""TCAE diagnostics without Lightning: a plain training loop on preloaded synthetic BP4D frames,
evaluated at chosen steps with the evidence script's probe, ridge and reconstruction measures.

Pairs are two frames of one training-subject track (labels unused), gap uniform in [1, --gap-max],
random order, optional official crop jitter (``--jitter C``: crop side in [C, 223]); the objective is
the module's (:func:`tcae_objective` with a fixed window). Printed per evaluation step: test mean F1 of
the pos-weighted and of the plain-BCE probe on frozen φ (10 epochs, Adam 1e-3), ridge R² φ→AU, ψ→AU,
ψ→pose, φ→pose on test subjects, and fused-warp / identity-warp L1 on two seeded pairs per test track.
``--random N`` instead evaluates N randomly initialised encoders (BatchNorm statistics estimated on the
training frames) and the all-positive predictor. ``--weights-after STEP:w`` switches the loss weights at
STEP (a reconstruction-first schedule), ``--init`` starts from a ``--save``d model (fresh optimizer),
``--time-budget`` evaluates and stops after that many seconds of training. Not a timed test; used for
docs/methods/tcae.md.

    PYTHONPATH=src:. python benchmarks/tcae_plain_loop.py --steps 300 --eval 100,300 --lr 0.01
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))
from tcae_evidence import all_positive_f1, fit_probe, join_groundtruth, ridge_r2  # noqa: E402

from affectlab.engine.batchnorm import calibrate_batchnorm  # noqa: E402
from affectlab.losses.tcae import TCAELossWeights, per_sample_terms, tcae_objective  # noqa: E402
from affectlab.methods.tcae import crop_jitter  # noqa: E402
from affectlab.models.tcae import TCAE, TCAENetConfig  # noqa: E402

POSE = ["yaw", "pitch", "roll"]


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def load_split(dataset) -> dict:
    """Every frame of a split as uint8 (N,3,S,S) with labels and meta (eval transform, no flip)."""
    parts: dict[str, list] = {"img": [], "au": [], "mask": [], "meta": []}
    for b in DataLoader(dataset, batch_size=128, shuffle=False, num_workers=1):
        parts["img"].append((b["image"].float() * 255).round().to(torch.uint8))
        parts["au"].append(b["au"])
        parts["mask"].append(b["au_mask"])
        meta = {k: v for k, v in b["meta"].items() if k in ("index", "subject", "sequence", "frame")}
        parts["meta"].append(pd.DataFrame({k: (v.tolist() if torch.is_tensor(v) else list(v)) for k, v in meta.items()}))
    return {"img": torch.cat(parts["img"]), "au": torch.cat(parts["au"]), "mask": torch.cat(parts["mask"]),
            "meta": pd.concat(parts["meta"], ignore_index=True)}


def tracks_of(split: dict) -> list[np.ndarray]:
    """Row indices of each sequence, in frame order."""
    meta = split["meta"].assign(i=np.arange(len(split["meta"]))).sort_values(["sequence", "frame"])
    return [np.array(x) for x in meta.groupby("sequence")["i"].apply(list)]


def draw_pair(track: np.ndarray, gap_max: int, rng: np.random.Generator) -> tuple[int, int]:
    gap = rng.integers(1, min(gap_max, len(track) - 1) + 1)
    s = rng.integers(0, len(track) - gap)
    return track[s], track[s + gap]


class Bench:
    """Preloaded BP4D fold (train/val/test frames), ground truth and fixed test pairs."""

    def __init__(self, size: int, gap_max: int, rng: np.random.Generator) -> None:
        from data_modules import create_datamodule

        dm = create_datamodule("bp4d", task="au_occurrence", image_size=size, normalize="zero_one", hflip=False)
        self.au_names = list(dm.au_names)
        self.data = {s: load_split(dm.dataset(s)) for s in ("train", "val", "test")}
        self.train_tracks = tracks_of(self.data["train"])
        self.rec_pairs = np.array([draw_pair(t, gap_max, rng) for t in tracks_of(self.data["test"]) for _ in range(2)])
        table = pd.read_csv(Path(dm.root).parent / "groundtruth" / "bp4d.csv.gz")
        self.gt = {s: join_groundtruth({"meta": self.data[s]["meta"]}, dm.manifest(s), Path(dm.root), table, s)
                   for s in ("train", "test")}
        aus = [c for c in table.columns if c.startswith("au") and c[2:].isdigit()]
        self.varied = [c for c in aus if self.gt["test"][c].std() > 1e-3 and self.gt["train"][c].std() > 1e-3]

    def images(self, split: str, idx) -> torch.Tensor:
        return self.data[split]["img"][idx].float() / 255

    @torch.no_grad()
    def features(self, encoder: torch.nn.Module) -> dict:
        encoder.eval()
        out = {}
        for split, d in self.data.items():
            phi, psi = zip(*(encoder(d["img"][i:i + 256].float() / 255) for i in range(0, len(d["img"]), 256)))
            out[split] = {"phi": torch.cat(phi), "psi": torch.cat(psi), "au": d["au"], "mask": d["mask"]}
        return out

    @torch.no_grad()
    def reconstruction(self, model: TCAE) -> tuple[float, float]:
        model.eval()
        fused = identity = 0.0
        for i in range(0, len(self.rec_pairs), 64):
            pairs = self.rec_pairs[i:i + 64]
            src, tgt = self.images("test", pairs[:, 0]), self.images("test", pairs[:, 1])
            fused += (model(src, tgt).reconstruction - tgt).abs().flatten(1).mean(1).sum().item()
            identity += (src - tgt).abs().flatten(1).mean(1).sum().item()
        return fused / len(self.rec_pairs), identity / len(self.rec_pairs)

    def evaluate(self, tag: str, model: TCAE, with_rec: bool = True, probe_seeds: tuple[int, ...] = (0,)) -> None:
        f = self.features(model.encoder)
        probe = {}
        for w in (True, False):
            runs = [fit_probe(f["train"], f["val"], f["test"], self.au_names, 10, 1e-3, s, pos_weight=w)["f1_mean"]
                    for s in probe_seeds]
            probe[w] = float(np.mean(runs))
            if len(runs) > 1:
                print(f"[{tag}] probe {'pos-weighted' if w else 'BCE'} seeds {list(probe_seeds)}: "
                      + " ".join(f"{r:.3f}" for r in runs), flush=True)
        groups = self.gt["train"]["subject"].astype(str).to_numpy()
        r2 = {}
        for emb in ("phi", "psi"):
            for name, cols in (("AU", self.varied), ("pose", POSE)):
                r2[emb + name] = ridge_r2(f["train"][emb].numpy(), self.gt["train"][cols].to_numpy(),
                                          f["test"][emb].numpy(), self.gt["test"][cols].to_numpy(), groups).mean()
        mean = " (mean)" if len(probe_seeds) > 1 else ""
        line = (f"[{tag}] probe{mean} pos-weighted {probe[True]:.3f} BCE {probe[False]:.3f} | R2 phi->AU {r2['phiAU']:.3f} "
                f"psi->AU {r2['psiAU']:.3f} psi->pose {r2['psipose']:.3f} phi->pose {r2['phipose']:.3f}")
        if with_rec:
            fused, identity = self.reconstruction(model)
            line += f" | rec fused {fused:.4f} identity {identity:.4f} ratio {fused / identity:.3f}"
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--trunk", default="32,64,128")
    p.add_argument("--branch", default="128,128,128")
    p.add_argument("--decoder", default="128,128,64,32,16")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--eval", default="100,300", help="steps at which to evaluate")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--weights", default="10,0.1,1,1", help="rec,sparse,emb,cyc")
    p.add_argument("--weights-after", default="", metavar="STEP:rec,sparse,emb,cyc",
                   help="from STEP on, train with these weights (e.g. reconstruction first, official terms later)")
    p.add_argument("--window", default="0,0.5", help="fixed self-paced window lo,hi")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds; when training has run this long, evaluate at the current step and stop (0 = off)")
    p.add_argument("--init", default="", help="start from this --save state_dict (optimizer state starts fresh)")
    p.add_argument("--save", default="", help="save the model state_dict here at every evaluation")
    p.add_argument("--jitter", type=int, default=0, help="0 = none, else the smallest crop side (official 200)")
    p.add_argument("--gap-max", type=int, default=17)
    p.add_argument("--zero-init-fields", action="store_true", help="model.zero_init_fields: Δ = 0, α = ½ at the start")
    p.add_argument("--random", type=int, default=0, help="evaluate N random encoders instead of training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--probe-seeds", default="0", help="probe initialisation/shuffling seeds (mean printed)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    net = TCAENetConfig(a.size, ints(a.trunk), ints(a.branch), ints(a.decoder), a.zero_init_fields)
    rng = np.random.default_rng(123)
    bench = Bench(a.size, a.gap_max, rng)
    train_frames = bench.data["train"]["img"]
    seeds = tuple(ints(a.probe_seeds))

    if a.random:
        for k in range(a.random):
            torch.manual_seed(k)
            model = TCAE(net)
            calibrate_batchnorm_tensor(model.encoder, train_frames)
            bench.evaluate(f"random init {k}", model, with_rec=False, probe_seeds=seeds)
        positive = all_positive_f1({"au": bench.data["test"]["au"], "mask": bench.data["test"]["mask"]}, bench.au_names)
        print(f"all-positive mean F1 {positive['f1_mean']:.3f}")
        return 0

    torch.manual_seed(a.seed)
    model = TCAE(net)
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu"))
        bench.evaluate("init", model, probe_seeds=seeds)
    if a.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    weights = TCAELossWeights(*[float(x) for x in a.weights.split(",")])
    switch_step, weights_after = parse_weights_after(a.weights_after)
    window = tuple(float(x) for x in a.window.split(","))
    jitter_gen = torch.Generator().manual_seed(a.seed)
    evals, start = set(ints(a.eval)), time.time()
    for step in range(1, a.steps + 1):
        if step == switch_step:
            weights = weights_after
            print(f"step {step}: weights now {weights}", flush=True)
        model.train()
        pairs = []
        for k in rng.integers(0, len(bench.train_tracks), a.batch_size):
            s, t = draw_pair(bench.train_tracks[k], a.gap_max, rng)
            pairs.append((s, t) if rng.random() < 0.5 else (t, s))
        src = train_frames[[s for s, _ in pairs]].float() / 255
        tgt = train_frames[[t for _, t in pairs]].float() / 255
        if a.jitter:
            crop = float(rng.integers(a.jitter, 224))
            src, tgt = crop_jitter(src, crop, jitter_gen), crop_jitter(tgt, crop, jitter_gen)
        loss, reduced = tcae_objective(per_sample_terms(model(src, tgt), src, tgt), weights, window)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step} loss {loss.item():.4f} rec {reduced['rec'].item():.4f} "
                  f"{time.time() - start:.0f}s", flush=True)
        out_of_time = a.time_budget > 0 and time.time() - start > a.time_budget
        if step in evals or out_of_time:
            bench.evaluate(f"step {step}", model, probe_seeds=seeds)
            if a.save:
                torch.save(model.state_dict(), a.save)
        if out_of_time:
            print(f"time budget reached after {step} steps", flush=True)
            break
    return 0


def parse_weights_after(text: str) -> tuple[int, TCAELossWeights | None]:
    """``"STEP:rec,sparse,emb,cyc"`` → (STEP, weights); ``""`` → (0, None), i.e. no switch."""
    if not text:
        return 0, None
    step, weights = text.split(":")
    if int(step) < 1:
        raise ValueError(f"--weights-after step must be >= 1, got {step}")
    return int(step), TCAELossWeights(*[float(x) for x in weights.split(",")])


def calibrate_batchnorm_tensor(encoder: torch.nn.Module, frames: torch.Tensor, batches: int = 20) -> None:
    """BN statistics from 20 random batches of 64 preloaded uint8 frames; leaves the encoder in eval mode."""
    order = torch.randperm(len(frames))[:batches * 64].split(64)
    calibrate_batchnorm(encoder, (frames[idx].float() / 255 for idx in order))
    encoder.eval()


if __name__ == "__main__":
    sys.exit(main())
