"""Evidence that TCAE learned something, on the synthetic data (prints tables; not a timed test).

1. Linear probe (BatchNorm1d + bias-free Linear, BCE) on frozen φ: pretrained encoder vs the same
   architecture at random initialisation (BatchNorm statistics estimated on the probe's training
   images, no training) vs the trivial all-positive predictor, per-AU F1 on BP4D test.
2. Disentanglement against the generator's ground truth (``groundtruth/BP4D.csv.gz``): ridge
   regression R² (fit on train subjects, scored on test subjects) φ→AU intensities vs ψ→AU and
   ψ→head pose vs φ→pose.
3. Reconstruction: L1 of the fused warp Î_t = W(I_s, Δ) against I_t, versus the identity warp (I_s).

Usage (``--run-dir`` of a finished ``make train METHOD=tcae`` run, or ``--checkpoint`` of its
pretrain stage; with neither, the method's pipeline is run first with the given overrides):

    PYTHONPATH=src:. python benchmarks/tcae_evidence.py --run-dir runs/<...> [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from affectlab.config import compose
from affectlab.engine.batchnorm import calibrate_batchnorm
from affectlab.methods.tcae import net_config, pretrain_datamodule
from affectlab.metrics import AUDetectionMetrics
from affectlab.models.tcae import TCAE, load_pretrained
from affectlab.synth import release_groundtruth_path


def pretrain_checkpoint(run_dir: Path) -> Path:
    done = run_dir / "stages" / "pretrain" / "done.json"
    if not done.is_file():
        raise FileNotFoundError(f"{done} not found: is {run_dir} a finished TCAE run with a pretrain stage?")
    return Path(json.loads(done.read_text())["checkpoint"])


@torch.no_grad()
def embed(encoder: nn.Module, dataset, batch_size: int = 128, workers: int = 1) -> dict:
    """φ, ψ, labels and meta of every item of a frame dataset (eval transform, no shuffling)."""
    phis, psis, aus, masks, metas = [], [], [], [], []
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers):
        phi, psi = encoder(batch["image"].float())
        phis.append(phi)
        psis.append(psi)
        aus.append(batch["au"])
        masks.append(batch["au_mask"])
        meta = batch["meta"]
        metas.append(pd.DataFrame({k: (v.tolist() if torch.is_tensor(v) else list(v))
                                   for k, v in meta.items() if k in ("index", "subject", "sequence", "frame")}))
    return {"phi": torch.cat(phis), "psi": torch.cat(psis), "au": torch.cat(aus), "mask": torch.cat(masks),
            "meta": pd.concat(metas, ignore_index=True)}


def calibrate_encoder_batchnorm(encoder: nn.Module, dataset, batches: int = 20, batch_size: int = 64) -> None:
    """BN statistics of ``encoder`` from the first ``batches`` shuffled batches of a dataset
    (:func:`affectlab.engine.batchnorm.calibrate_batchnorm`); leaves it in eval mode."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    calibrate_batchnorm(encoder, (batch["image"].float() for _, batch in zip(range(batches), loader)))
    encoder.eval()


def fit_probe(train: dict, val: dict, test: dict, au_names: list[str], epochs: int, lr: float, seed: int,
              pos_weight: bool = False, threshold: float = 0.5) -> dict:
    """The TCAE probe on precomputed features (identical to TCAELinearProbe with a frozen encoder:
    BatchNorm1d, bias-free Linear, masked BCE, Adam; ``pos_weight`` = method.probe_pos_weight); the
    epoch with the best validation mean F1 is tested."""
    torch.manual_seed(seed)
    dim = train["phi"].shape[1]
    head = nn.Sequential(nn.BatchNorm1d(dim), nn.Linear(dim, len(au_names), bias=False))
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    n = len(train["phi"])
    weight = None
    if pos_weight:  # (1 - p) / p with p the positive rate of the labelled training frames
        m = train["mask"].float()
        rate = (train["au"] * m).sum(0) / m.sum(0).clamp(min=1)
        weight = (1.0 - rate) / rate.clamp(min=1e-3)

    def f1(split: dict) -> dict:
        head.eval()
        metric = AUDetectionMetrics(au_names, threshold)
        with torch.no_grad():
            metric.update(torch.sigmoid(head(split["phi"])), split["au"], split["mask"])
        return {k: float(v) for k, v in metric.compute().items()}

    best, best_test = -1.0, {}
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(n).split(64):
            if len(idx) < 2:
                continue
            logits = head(train["phi"][idx])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, train["au"][idx], pos_weight=weight,
                                                                  reduction="none")
            mask = train["mask"][idx].float()
            loss = (loss * mask).sum() / mask.sum().clamp(min=1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        score = f1(val)["f1_mean"]
        if score > best:
            best, best_test = score, f1(test)
    return best_test


def all_positive_f1(test: dict, au_names: list[str]) -> dict:
    metric = AUDetectionMetrics(au_names)
    metric.update(torch.ones_like(test["au"]), test["au"], test["mask"])
    return {k: float(v) for k, v in metric.compute().items()}


def ridge_r2(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             groups: np.ndarray) -> np.ndarray:
    """Per-target R² on held-out subjects of a standardised ridge regression whose alpha is chosen by
    subject-grouped 3-fold CV on the training subjects (leave-one-frame-out CV picks a far too small
    alpha on correlated video frames and the held-out R² then goes strongly negative)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    search = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": np.logspace(-1, 5, 13)},
                          cv=GroupKFold(3), scoring="r2")
    search.fit(x_train, y_train, groups=groups)
    pred = search.predict(x_test)
    return np.array([r2_score(y_test[:, j], pred[:, j]) for j in range(y_test.shape[1])])


def join_groundtruth(feats: dict, manifest: pd.DataFrame, release_root: Path, table: pd.DataFrame,
                     where: str) -> pd.DataFrame:
    """Ground-truth rows in the order of ``feats``: matched on the frame path relative to the release
    folder (the table's ``path``), else on (subject, sequence, frame)."""
    paths = manifest["path"].iloc[feats["meta"]["index"].to_numpy()]
    root = release_root.resolve()
    rel = [str(Path(p).resolve().relative_to(root)) if Path(p).resolve().is_relative_to(root) else str(p)
           for p in paths]
    by_path = table.drop_duplicates("path").set_index("path")
    if all(r in by_path.index for r in rel):
        return by_path.loc[rel].reset_index()
    meta = feats["meta"].astype({"subject": str, "sequence": str, "frame": int})
    meta = meta[["subject", "sequence", "frame"]].assign(_order=np.arange(len(meta)))
    keyed = table.astype({"subject": str, "sequence": str, "frame": int})
    merged = meta.merge(keyed, on=["subject", "sequence", "frame"], how="left").sort_values("_order")
    missing = int(merged["yaw"].isna().sum())
    if missing:
        raise ValueError(f"{where}: {missing} of {len(meta)} frames have no ground-truth row "
                         f"(matched on path, then on subject/sequence/frame); e.g. {rel[0]}")
    return merged


@torch.no_grad()
def reconstruction_errors(model: TCAE, dataset, draws: int = 1, batch_size: int = 32,
                          max_pairs: int = 2000) -> tuple[float, float, int]:
    """Mean L1 of the fused-warp reconstruction Î_t and of the identity warp (I_s as the prediction)
    against I_t, over ``draws`` seeded pair draws of every track of an evaluation pair dataset."""
    fused = identity = 0.0
    count = 0
    base = dataset.seed
    try:
        for draw in range(draws):
            dataset.seed = base + draw  # evaluation pairs are seeded per (seed, item)
            for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
                src, tgt = batch["source"].float(), batch["target"].float()
                out = model(src, tgt)
                fused += (out.reconstruction - tgt).abs().flatten(1).mean(1).sum().item()
                identity += (src - tgt).abs().flatten(1).mean(1).sum().item()
                count += len(src)
                if count >= max_pairs:
                    return fused / count, identity / count, count
    finally:
        dataset.seed = base
    return fused / count, identity / count, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", type=Path)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--random-seeds", type=int, default=3, help="random encoders (seeds seed..seed+n-1)")
    parser.add_argument("--rec-draws", type=int, default=10, help="seeded pair draws per validation track")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. data.fold=2")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    overrides = ["METHOD=tcae", *args.overrides]
    cfg = compose(overrides)
    ckpt = args.checkpoint
    if ckpt is None and args.run_dir is not None:
        ckpt = pretrain_checkpoint(args.run_dir)
    if ckpt is None:
        from affectlab.engine.runner import train

        record = train(compose(overrides + ["leaderboard.enabled=false"]))
        ckpt = pretrain_checkpoint(Path(record["run_dir"]))
    print(f"pretrained weights: {ckpt}")

    from data_modules import create_datamodule

    m = cfg.method
    dm = create_datamodule(cfg.data, hflip=False)  # deterministic frames for fixed features
    au_names = list(dm.au_names)
    pretrained = TCAE(net_config(cfg))
    load_pretrained(pretrained, ckpt)
    encoders = {"pretrained": pretrained.encoder.eval()}
    for k in range(args.random_seeds):
        torch.manual_seed(args.seed + k)
        random_init = TCAE(net_config(cfg))
        calibrate_encoder_batchnorm(random_init.encoder, dm.dataset("train"))
        encoders[f"random init {args.seed + k}"] = random_init.encoder.eval()
    feats = {name: {split: embed(enc, dm.dataset(split), workers=cfg.data.num_workers)
                    for split in ("train", "val", "test")} for name, enc in encoders.items()}
    randoms = [name for name in feats if name.startswith("random")]

    # 1. probe F1: the official probe (plain BCE) and, if configured, the pos-weighted one
    probes = {"official probe (BCE)": False}
    if m.probe_pos_weight:
        probes["configured probe (pos-weighted BCE)"] = True
    keys = [f"f1_{a.lower()}" for a in au_names] + ["f1_mean"]
    positive = all_positive_f1(feats["pretrained"]["test"], au_names)
    for title, weighted in probes.items():
        rows = {name: fit_probe(f["train"], f["val"], f["test"], au_names, m.probe_epochs, m.probe_lr,
                                args.seed, pos_weight=weighted, threshold=m.probe_threshold)
                for name, f in feats.items()}
        if randoms:
            rows["random (mean)"] = {k: float(np.mean([rows[r][k] for r in randoms])) for k in keys}
        rows["all-positive"] = positive
        print(f"\n1. Linear probe on frozen φ, {title}, {cfg.data.name} fold {cfg.data.fold} test, per-AU F1 "
              f"({m.probe_epochs} epochs, lr {m.probe_lr}, threshold {m.probe_threshold})")
        print(f"{'encoder':>16} " + " ".join(f"{k[3:]:>6}" for k in keys))
        for name, row in rows.items():
            print(f"{name:>16} " + " ".join(f"{row[k]:6.3f}" for k in keys))

    # 2. disentanglement against the ground truth table
    table_path = release_groundtruth_path(dm.root, cfg.data.name)
    if not table_path.is_file():
        raise FileNotFoundError(f"{table_path}: the generator's ground-truth table is needed for part 2")
    table = pd.read_csv(table_path)
    au_cols = [c for c in table.columns if c.startswith("au") and c[2:].isdigit()]
    pose_cols = ["yaw", "pitch", "roll"]
    print("\n2. Ridge regression R² on test subjects (alpha by subject-grouped CV; mean over targets with variance)")
    print(f"{'encoder':>16} {'phi->AU':>8} {'psi->AU':>8} {'psi->pose':>9} {'phi->pose':>9}   pose R² per angle (psi | phi)")
    for name, f in feats.items():
        gt_tr = join_groundtruth(f["train"], dm.manifest("train"), Path(dm.root), table, f"{name} train")
        gt_te = join_groundtruth(f["test"], dm.manifest("test"), Path(dm.root), table, f"{name} test")
        varied = [c for c in au_cols if gt_te[c].std() > 1e-3 and gt_tr[c].std() > 1e-3]
        groups = gt_tr["subject"].astype(str).to_numpy()
        r2 = {}
        for emb in ("phi", "psi"):
            x_tr, x_te = f["train"][emb].numpy(), f["test"][emb].numpy()
            r2[(emb, "au")] = ridge_r2(x_tr, gt_tr[varied].to_numpy(), x_te, gt_te[varied].to_numpy(), groups)
            r2[(emb, "pose")] = ridge_r2(x_tr, gt_tr[pose_cols].to_numpy(), x_te, gt_te[pose_cols].to_numpy(),
                                         groups)
        angles = " ".join(f"{c}:{a:.2f}|{b:.2f}" for c, a, b in zip(pose_cols, r2[("psi", "pose")], r2[("phi", "pose")]))
        print(f"{name:>16} {r2[('phi', 'au')].mean():8.3f} {r2[('psi', 'au')].mean():8.3f} "
              f"{r2[('psi', 'pose')].mean():9.3f} {r2[('phi', 'pose')].mean():9.3f}   {angles}")

    # 3. reconstruction: held-out pretraining identities, and pairs of the probe dataset's test subjects
    print("\n3. Target reconstruction (mean L1 per pair, [0,1] pixels; no jitter)")
    print(f"{'pairs':>34} {'n':>5} {'fused warp':>10} {'identity':>9} {'ratio':>6}")
    pre_dm = pretrain_datamodule(cfg)
    sets = {f"{m.pretrain_data} val ({args.rec_draws} draws/track)": (pre_dm.dataset("val"), args.rec_draws)}
    if cfg.data.name in ("bp4d", "disfa"):
        test_pairs = create_datamodule(cfg.data, task="pairs", pair_gap_min=m.pretrain_pair_gap_min,
                                       pair_gap_max=m.pretrain_pair_gap_max, hflip=False)
        sets[f"{cfg.data.name} test subjects"] = (test_pairs.dataset("test"), 2)
    for title, (dataset, draws) in sets.items():
        fused, identity, n = reconstruction_errors(pretrained.eval(), dataset, draws)
        print(f"{title:>34} {n:5d} {fused:10.4f} {identity:9.4f} {fused / identity:6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
