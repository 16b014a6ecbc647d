"""Diagnostic for contrastive_intensity stage 1 (Sanchez et al., ACCV 2020): do the frozen per-frame
features carry AU intensity? A ridge probe from the extractor's pooled embedding z (and from the GRU
state h) to the DISFA intensity labels, trained on the training subjects (all frames, or the same
2 % per-sequence budget as stage 2), ridge strength chosen on the validation subjects, scored with
ICC(3,1) on the test subjects. Compare stage-1 weights with a random initialisation (same seed).

    PYTHONPATH=src:. python benchmarks/contrastive_probe.py --weights /tmp/pre.pt [--set key=value ...]

``--weights`` is a stage-1 state dict as ``benchmarks/contrastive_evidence.py --pretrained`` saves it;
without it only the random initialisation is probed. ``--pixels`` adds a 16×16 grey-level probe (what
a linear read-out of the raw aligned face achieves).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch


def collect(model, dataset, pixels: bool = False) -> dict[str, np.ndarray]:
    """Per-frame z, h (and pixels), labels and sequence ids, each coded frame once."""
    zs, hs, px, ys, seqs, seen = [], [], [], [], [], set()
    model.eval()
    with torch.no_grad():
        for i in range(len(dataset)):
            item = dataset[i]
            z, h = model(item["video"][None])
            small = torch.nn.functional.interpolate(item["video"].mean(1, keepdim=True), size=(16, 16), mode="area")
            seq = str(item["meta"]["sequence"])
            for t, frame in enumerate(item["meta"]["frames"].tolist()):
                if (seq, frame) in seen or not bool(item["intensity_mask"][t].all()):
                    continue
                seen.add((seq, frame))
                zs.append(z[0, t].numpy())
                hs.append(h[0, t].numpy())
                px.append(small[t].flatten().numpy())
                ys.append(item["intensity"][t].numpy())
                seqs.append(seq)
    out = {"z": np.array(zs), "h": np.array(hs), "y": np.array(ys), "seq": np.array(seqs)}
    if pixels:
        out["pixels"] = np.array(px)
    return out


def ridge_icc(x_tr, y_tr, x_te, y_te, alpha: float) -> float:
    """Mean ICC(3,1) over AUs of a ridge regression on standardised features."""
    from affectlab.metrics.au import icc_3_1

    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6
    a, b = (x_tr - mu) / sd, (x_te - mu) / sd
    y_mean = y_tr.mean(0)
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y_tr - y_mean))
    pred = b @ w + y_mean
    return float(np.nanmean([float(icc_3_1(torch.tensor(pred[:, k]), torch.tensor(y_te[:, k])))
                             for k in range(y_te.shape[1])]))


def probe(splits: dict[str, dict[str, np.ndarray]], keys: list[str], per_sequence: int, seed: int = 0) -> dict:
    tr, va, te = splits["train"], splits["val"], splits["test"]
    rng = np.random.default_rng(seed)
    sparse = np.concatenate([rng.choice(np.where(tr["seq"] == s)[0], per_sequence, replace=False)
                             for s in np.unique(tr["seq"])])
    out = {}
    for key in keys:
        for label, idx in (("all", np.arange(len(tr["y"]))), ("sparse", sparse)):
            _, alpha = max((ridge_icc(tr[key][idx], tr["y"][idx], va[key], va["y"], a), a)
                           for a in (0.1, 1, 10, 100, 1000, 10000))
            out[f"{key}/{label}"] = round(ridge_icc(tr[key][idx], tr["y"][idx], te[key], te["y"], alpha), 3)
    out["n_train"], out["n_sparse"], out["n_test"] = len(tr["y"]), len(sparse), len(te["y"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--pixels", action="store_true")
    args = parser.parse_args()

    import lightning as L

    from affectlab.config import compose
    from affectlab.losses.sparse_regression import budget_count
    from affectlab.methods.contrastive_intensity import build_model
    from data_modules import create_datamodule

    cfg = compose(["METHOD=contrastive_intensity", "logger.wandb.enabled=false", "leaderboard.enabled=false",
                   "data.num_workers=0"] + list(args.set))
    dm = create_datamodule(cfg.data, label_fraction=1.0)
    frames_per_seq = int(dm.manifest("train").groupby("sequence").size().min())
    per_seq = budget_count(frames_per_seq, cfg.data.label_fraction)
    inits = [("random", None)] + ([("stage1", args.weights)] if args.weights else [])
    for name, path in inits:
        L.seed_everything(int(cfg.seed), verbose=False)
        model = build_model(cfg.method)
        if path is not None:
            missing, unexpected = model.load_state_dict(torch.load(path, weights_only=True), strict=False)
            if unexpected or any(not k.startswith("feature_norm.") for k in missing):
                raise RuntimeError(f"{path} does not match the model: missing {missing}, unexpected {unexpected}")
        splits = {s: collect(model, dm.dataset(s), args.pixels and name == "random") for s in ("train", "val", "test")}
        keys = ["z", "h"] + (["pixels"] if "pixels" in splits["train"] else [])
        print(f"{name:>7} ({path or 'seed ' + str(cfg.seed)}): test ICC of the ridge probe "
              f"({cfg.data.name} fold {cfg.data.fold}, sparse = {per_seq} frames per training sequence):",
              probe(splits, keys, per_seq, int(cfg.data.label_mask_seed)), flush=True)


if __name__ == "__main__":
    main()
