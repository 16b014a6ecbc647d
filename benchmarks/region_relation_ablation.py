"""Fast ablation of region_relation's pretraining objectives on synthetic BP4D (fold 1), outside Lightning.

Why: the Lightning probe re-runs the frozen encoder every epoch, which makes a sweep of objectives
slow on a shared CPU. Here the fold's train/val/test frames are loaded once (evaluation transform:
aligned, no flip) into memory, a variant is pretrained for ``--steps`` AdamW steps with the method's
own ``RegionRelationPretrain.losses`` (two views from ``TwoViewAugment``; cosine schedule over the
steps; encoder initialised with ``torch.manual_seed(--seed)``, so step 0 *is* the random-init
control), and the frozen region features are probed offline: features standardised with the
training mean/std, one linear layer, BCE with positive weights ``(1 − p)/p`` (≤ 10), AdamW, cosine,
threshold 0.5, test-fold F1. Also printed: the effective rank ``exp(H(σ²/Σσ²))`` of the centred
concatenated training features (≈ 1 = collapsed) and the F1 with per-AU thresholds tuned on val.

    PYTHONPATH=src:. python benchmarks/region_relation_ablation.py --steps 200 \\
        --probe-at 0,200 method.mim_weight=1 method.region_weight=0 method.ot_weight=0

``--folds 1,2,3 --seeds 0,1`` repeats this on every subject-exclusive fold (pretraining on that fold's
training frames only) and every seed (encoder init, batch order and probe order), then prints the
mean ± sample sd over the runs and the paired test gain over step 0 (the same initialisation, unpretrained).

``--pixels 16,32,64`` skips pretraining and probes the raw aligned pixels (average-pooled to each size)
with the same probe: the ceiling check of the doc.

``--grouped F`` builds batches of F frames from each of batch/F sequences (hard same-identity
negatives for ``method.consistency=infonce``). Extra ``key=value`` are config overrides.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from affectlab.synth import synthetic_root

os.environ.setdefault("WANDB_MODE", "disabled")


def load_fold(overrides: list[str], image_size: int) -> dict:
    from affectlab.config import compose
    from data_modules import create_datamodule

    cfg = compose(["METHOD=region_relation", "DATA=bp4d", f"data.image_size={image_size}", *overrides])
    dm = create_datamodule(cfg.data)
    out: dict = {"au_names": list(dm.au_names)}
    for split in ("train", "val", "test"):
        ds = dm.build_dataset(split)
        ds.transform = dm._transform(False)  # no flip: the views are augmented by the method itself
        items = [ds[i] for i in range(len(ds))]
        out[split] = {"image": torch.stack([s["image"] for s in items]).half(),
                      "landmarks": torch.stack([torch.as_tensor(s["landmarks"]).float() for s in items]),
                      "au": torch.stack([s["au"] for s in items]), "au_mask": torch.stack([s["au_mask"] for s in items]),
                      "sequence": dm.manifest(split)["sequence"].tolist()}
    return out


def f1_per_au(prob: torch.Tensor, y: torch.Tensor, m: torch.Tensor, thr=0.5) -> torch.Tensor:
    pred, y, m = prob >= thr, y.bool(), m.bool()
    tp = (pred & y & m).sum(0).float()
    fp = (pred & ~y & m).sum(0).float()
    fn = (~pred & y & m).sum(0).float()
    return 2 * tp / (2 * tp + fp + fn).clamp(min=1)


@torch.no_grad()
def extract(encoder: nn.Module, split: dict, bs: int = 256) -> torch.Tensor:
    encoder.eval()
    return torch.cat([encoder(split["image"][i:i + bs].float(), split["landmarks"][i:i + bs])
                      for i in range(0, len(split["image"]), bs)])


def linear_probe(data: dict, feats: dict, epochs: int = 30, lr: float = 1e-2, bs: int = 256,
                 pos_weight: bool = True, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = {s: f.flatten(1) for s, f in feats.items()}
    mu, sd = x["train"].mean(0), x["train"].std(0).clamp(min=1e-5)
    x = {s: (v - mu) / sd for s, v in x.items()}
    y, m = data["train"]["au"].float(), data["train"]["au_mask"].float()
    p = (y * m).sum(0) / m.sum(0)
    pw = ((1 - p) / p).clamp(max=10) if pos_weight else torch.ones_like(p)
    head = nn.Linear(x["train"].shape[1], y.shape[1])
    nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * (len(y) // bs))
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y) - bs + 1, bs):
            idx = perm[i:i + bs]
            loss = F.binary_cross_entropy_with_logits(head(x["train"][idx]), y[idx], pos_weight=pw, reduction="none")
            loss = (loss * m[idx]).sum() / m[idx].sum()
            opt.zero_grad(), loss.backward(), opt.step(), sched.step()
    with torch.no_grad():
        prob = {s: torch.sigmoid(head(x[s])) for s in ("val", "test")}
    val, test = data["val"], data["test"]
    thresholds = torch.linspace(0.05, 0.95, 19)
    val_f1 = torch.stack([f1_per_au(prob["val"], val["au"], val["au_mask"], t) for t in thresholds])
    tuned = thresholds[val_f1.argmax(0)][None]
    centred = x["train"] * sd - (x["train"] * sd).mean(0)
    s = torch.linalg.svdvals(centred) ** 2
    q = s / s.sum()
    return {"test": f1_per_au(prob["test"], test["au"], test["au_mask"]),
            "val": f1_per_au(prob["val"], val["au"], val["au_mask"]),
            "test_val_thresholds": f1_per_au(prob["test"], test["au"], test["au_mask"], tuned),
            "probe_loss": float(loss.detach()), "effective_rank": float(torch.exp(-(q * q.clamp(min=1e-12).log()).sum()))}


def batches(data: dict, bs: int, grouped: int, g: torch.Generator) -> list[torch.Tensor]:
    n = len(data["image"])
    if not grouped:
        perm = torch.randperm(n, generator=g)
        return [perm[i:i + bs] for i in range(0, n - bs + 1, bs)]
    by_seq: dict = {}
    for j, q in enumerate(data["sequence"]):
        by_seq.setdefault(q, []).append(j)
    chunks = []
    for js in by_seq.values():
        js = [js[k] for k in torch.randperm(len(js), generator=g).tolist()]
        chunks += [js[k:k + grouped] for k in range(0, len(js) - grouped + 1, grouped)]
    order = torch.randperm(len(chunks), generator=g).tolist()
    per = bs // grouped
    return [torch.tensor(sum((chunks[o] for o in order[k:k + per]), [])) for k in range(0, len(order) - per + 1, per)]


def relation_spearman(module: nn.Module, groundtruth: str) -> str:
    """Spearman (66 AU pairs) of the learned relation (running mean OT plan) vs the generator's co-occurrence."""
    from scipy.stats import spearmanr

    from benchmarks.region_relation_evidence import off_diagonal, true_cooccurrence

    truth = true_cooccurrence(groundtruth, list(module.au_names), 0.5)
    learned = module.relation_matrix().double().numpy()
    return f"relation Spearman {spearmanr(off_diagonal(learned), off_diagonal(truth)).statistic:.3f}"


def pretrain_and_probe(data: dict, cfg, seed: int, steps: int, batch_size: int, grouped: int,
                       probe_at: set[int], groundtruth: str = "") -> dict[int, dict]:
    """Pretrain one encoder (init seed ``seed``) on ``data['train']``; probe it at the steps in ``probe_at``."""
    from affectlab.methods.region_relation import RegionRelationPretrain

    torch.manual_seed(seed)
    module = RegionRelationPretrain(cfg, data["au_names"])
    m = cfg.method
    opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=m.pretrain_lr,
                            weight_decay=m.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))
    train = data["train"]
    g = torch.Generator().manual_seed(seed + 1)
    step, start, history, results = 0, time.time(), [], {}

    def report() -> None:
        feats = {s: extract(module.encoder, data[s]) for s in ("train", "val", "test")}
        r = linear_probe(data, feats, seed=seed)
        results[step] = r
        print(f"step {step}: test F1 {r['test'].mean():.3f} (val {r['val'].mean():.3f}, test with val-tuned "
              f"thresholds {r['test_val_thresholds'].mean():.3f}) per AU {' '.join(f'{v:.3f}' for v in r['test'].tolist())} "
              f"eff. rank {r['effective_rank']:.2f} probe loss {r['probe_loss']:.3f}", flush=True)
        module.train()

    if 0 in probe_at:
        report()
    module.train()
    while step < steps:
        for idx in batches(train, batch_size, grouped, g):
            batch = {k: train[k][idx] for k in ("landmarks", "au", "au_mask")}
            batch["image"] = train["image"][idx].float()
            terms = module.losses(batch, update_prior=True)
            opt.zero_grad()
            terms["loss"].backward()
            opt.step()
            sched.step()
            if m.consistency == "byol":
                module.on_train_batch_end(None, None, 0)
            history.append({k: float(v.detach()) for k, v in terms.items()})
            step += 1
            if step % 50 == 0:
                mean = {k: round(float(np.mean([h[k] for h in history[-50:]])), 4) for k in history[-1]}
                print(f"step {step} {mean} {time.time() - start:.0f}s", flush=True)
            if step in probe_at:
                report()
            if step >= steps:
                break
    if groundtruth and steps and os.path.isfile(groundtruth):
        print(relation_spearman(module, groundtruth), flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--probe-at", default="", help="comma-separated steps to probe at (0 = random init)")
    parser.add_argument("--grouped", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="encoder-init/probe seed (see --seeds)")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (overrides --seed)")
    parser.add_argument("--folds", default="1", help="comma-separated BP4D folds (subject-exclusive), e.g. 1,2,3")
    parser.add_argument("--pixels", default="", help="comma-separated sizes: instead of pretraining, probe the raw "
                        "aligned pixels average-pooled to each size (the ceiling check of the doc)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--data-root", help="BP4D release (default: the synthetic quick copy)")
    parser.add_argument("--groundtruth", default=str(synthetic_root("quick", 0) / "groundtruth" / "bp4d.csv.gz"),
        help="generator co-occurrence table: prints the learned relation's Spearman after pretraining")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))

    from affectlab.config import compose

    seeds = [int(s) for s in args.seeds.split(",") if s] or [args.seed]
    folds = [int(f) for f in args.folds.split(",") if f]
    probe_at = {int(s) for s in args.probe_at.split(",") if s} | {args.steps}
    table: dict[int, list[tuple[float, float]]] = {}
    for fold in folds:
        base = ([f"data.root={args.data_root}"] if args.data_root else []) + [f"data.fold={fold}"]
        data = load_fold(base, args.image_size)
        cfg = compose(["METHOD=region_relation", "DATA=bp4d", f"data.image_size={args.image_size}", *base,
                       *args.overrides])
        y, mask = data["test"]["au"].float(), data["test"]["au_mask"].float()
        rate = (y * mask).sum(0) / mask.sum(0)
        print(f"fold {fold}: {len(data['train']['image'])} train / {len(data['val']['image'])} val / "
              f"{len(data['test']['image'])} test frames; all-positive test F1 {float((2 * rate / (1 + rate)).mean()):.3f}")
        for seed in seeds:
            print(f"fold {fold} seed {seed}", flush=True)
            if args.pixels:
                for size in (int(v) for v in args.pixels.split(",")):
                    feats = {s: F.adaptive_avg_pool2d(data[s]["image"].float(), size) for s in ("train", "val", "test")}
                    r = linear_probe(data, feats, seed=seed)
                    print(f"raw pixels {size}x{size}: test F1 {r['test'].mean():.3f} (val {r['val'].mean():.3f}, "
                          f"test with val-tuned thresholds {r['test_val_thresholds'].mean():.3f})", flush=True)
                continue
            for step, r in pretrain_and_probe(data, cfg, seed, args.steps, args.batch_size, args.grouped,
                                              probe_at, args.groundtruth).items():
                table.setdefault(step, []).append((float(r["test"].mean()), float(r["val"].mean())))
    if table and len(folds) * len(seeds) > 1:
        print(f"\nsummary over folds {folds} x seeds {seeds} (mean ± sample sd; paired gain vs step 0 when probed)")
        for step in sorted(table):
            test, val = np.array(table[step]).T
            line = f"step {step}: test F1 {test.mean():.3f} ± {test.std(ddof=1):.3f}, val F1 {val.mean():.3f} ± {val.std(ddof=1):.3f}"
            if step and 0 in table:
                gain = test - np.array(table[0])[:, 0]
                line += f"; test gain vs step 0 {gain.mean():+.3f} ± {gain.std(ddof=1):.3f} (min {gain.min():+.3f})"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
