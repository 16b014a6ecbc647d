"""`affectlab synth check`: does the synthetic world separate learned features from raw pixels?

On BP4D fold 1 AU occurrence (mean F1) and DISFA fold 1 AU intensity (mean ICC(3,1)), aligned
crops from each release's own landmarks, five readouts are scored on the test fold:

========== ==========================================================================================
trivial    all-positive F1 / a constant intensity (ICC 0)
pixels     a linear readout of the aligned pixels, average-pooled to 16 or 32 px (picked on val)
random_cnn a linear readout of a frozen, randomly initialised :class:`CheckCNN` (BN calibrated)
cnn        the same :class:`CheckCNN` trained on the training crops for a fixed budget
oracle     a linear readout of the generator's ground-truth AU state (17 continuous intensities)
========== ==========================================================================================

A world that discriminates puts ``cnn`` well above the better unlearned readout and keeps the
unlearned readouts close to ``trivial`` (targets and measurements: docs/synthetic.md).

Above ~350 lines: data, the five readouts, the verdict and the report are one protocol, kept in one
module so it reads top to bottom.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from affectlab.engine.batchnorm import calibrate_batchnorm
from affectlab.metrics import icc_3_1

#: (dataset, task, main metric): the two problems the check scores
PROBLEMS = (("bp4d", "au_occurrence", "f1"), ("disfa", "au_intensity", "icc"))
READOUTS = ("trivial", "pixels", "random_cnn", "cnn", "oracle")
AU_STATE = [f"au{n:02d}" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 24, 25, 26)]


@dataclass
class Split:
    """One split of aligned crops with labels and the generator's ground-truth AU state."""

    images: torch.Tensor   # (N, 3, S, S) uint8
    target: torch.Tensor   # (N, K) float: 0/1 occurrence or 0–5 intensity
    mask: torch.Tensor     # (N, K) bool, labelled entries
    state: torch.Tensor    # (N, 17) float, ground-truth AU intensities (AU_STATE order)

    def float_images(self, idx=slice(None)) -> torch.Tensor:
        return self.images[idx].float() / 255.0


def _ground_truth(table: pd.DataFrame, manifest: pd.DataFrame, release_root: Path, where: str) -> torch.Tensor:
    """Ground-truth AU state in manifest order, matched on the frame path relative to the release
    folder, else (DISFA's extracted frames) on subject and 0-based frame index."""
    by_path = table.drop_duplicates("path").set_index("path")
    root = release_root.resolve()
    rel = [str(Path(p).resolve().relative_to(root)) if Path(p).resolve().is_relative_to(root) else str(p)
           for p in manifest["path"]]
    if all(r in by_path.index for r in rel):
        return torch.tensor(by_path.loc[rel, AU_STATE].to_numpy(np.float32))
    keyed = table.assign(subject=table["subject"].astype(str), frame=table["frame"].astype(int))
    keyed = keyed.drop_duplicates(["subject", "frame"]).set_index(["subject", "frame"])
    keys = list(zip(manifest["subject"].astype(str), manifest["frame"].astype(int)))
    missing = [k for k in keys if k not in keyed.index]
    if missing:
        raise ValueError(f"{where}: {len(missing)} of {len(keys)} frames have no ground-truth row "
                         f"(matched on path, then on subject/frame), e.g. {missing[0]}")
    return torch.tensor(keyed.loc[keys, AU_STATE].to_numpy(np.float32))


def load_problem(dataset: str, task: str, root: Optional[Path], profile: str, seed: int, fold: int = 1,
                 size: int = 64) -> tuple[dict[str, Split], list[str]]:
    """Train/val/test :class:`Split` s of one dataset through its own datamodule (evaluation
    transform: aligned with the release's landmarks, no flip)."""
    from torch.utils.data import DataLoader

    from affectlab.synth import RELEASE_DIR, ensure_synthetic, groundtruth_path
    from data_modules import create_datamodule

    copy = Path(root) if root is not None else ensure_synthetic(profile, seed, datasets=[dataset])
    release = copy / RELEASE_DIR[dataset]
    dm = create_datamodule(dataset, root=str(release), task=task, fold=fold, image_size=size,
                           normalize="zero_one", hflip=False, num_workers=0)
    table = pd.read_csv(groundtruth_path(copy, dataset))
    key = "au" if task == "au_occurrence" else "intensity"
    splits = {}
    for name in ("train", "val", "test"):
        ds = dm.build_dataset(name)
        ds.transform = dm._transform(False)
        images, target, mask = [], [], []
        for batch in DataLoader(ds, batch_size=256, shuffle=False, num_workers=0):
            images.append((batch["image"] * 255).round().to(torch.uint8))
            target.append(batch[key].float())
            mask.append(batch[f"{key}_mask"].bool())
        state = _ground_truth(table, dm.manifest(name), release, f"{dataset} {name}")
        splits[name] = Split(torch.cat(images), torch.cat(target), torch.cat(mask), state)
    return splits, list(dm.au_names)


# ---------------------------------------------------------------------------------------- scores
def f1_per_au(prob: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    pred, truth = prob >= threshold, target > 0.5
    tp = (pred & truth & mask).sum(0).float()
    fp = (pred & ~truth & mask).sum(0).float()
    fn = (~pred & truth & mask).sum(0).float()
    return 2 * tp / (2 * tp + fp + fn).clamp(min=1)


def icc_per_au(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.stack([icc_3_1(pred[mask[:, k], k], target[mask[:, k], k]).float() for k in range(target.shape[1])])


def score(task: str, out: torch.Tensor, split: Split) -> torch.Tensor:
    """Per-AU F1 of probabilities at 0.5 (occurrence) or ICC(3,1) of intensities."""
    if task == "au_occurrence":
        return f1_per_au(out, split.target, split.mask)
    return icc_per_au(out, split.target, split.mask)


def trivial(task: str, test: Split) -> torch.Tensor:
    """All-positive F1 per AU, or the ICC of a constant prediction (0 by construction)."""
    if task == "au_occurrence":
        return score(task, torch.ones_like(test.target), test)
    return torch.zeros(test.target.shape[1])


# ---------------------------------------------------------------------------------------- readouts
def positive_weight(train: Split) -> torch.Tensor:
    """``(1 − p) / p`` per AU (≤ 10), so a 0.5 threshold suits rare AUs."""
    p = ((train.target > 0.5) & train.mask).sum(0) / train.mask.sum(0).clamp(min=1)
    return ((1 - p) / p.clamp(min=1e-3)).clamp(max=10.0)


def masked_loss(task: str, out: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                pos_weight: Optional[torch.Tensor]) -> torch.Tensor:
    if task == "au_occurrence":
        loss = F.binary_cross_entropy_with_logits(out, target, pos_weight=pos_weight, reduction="none")
    else:
        loss = (out - target) ** 2
    m = mask.float()
    return (loss * m).sum() / m.sum().clamp(min=1)


def linear_readout(task: str, feats: dict[str, torch.Tensor], splits: dict[str, Split],
                   decays: tuple[float, ...] = (1e-4, 1e-2, 1.0), steps: int = 300,
                   max_dims: int = 512) -> tuple[torch.Tensor, float]:
    """Test per-AU score of a linear map on standardised features, L2 penalty picked on val.

    Occurrence: logistic regression (positive-weighted BCE), full-batch Adam; intensity: ridge
    regression, closed form. Features wider than ``max_dims`` are first projected on their top
    ``max_dims`` principal directions (on the training split), which keeps a pixel readout cheap.
    Returns the test scores and the val mean of the chosen penalty.
    """
    mu, sd = feats["train"].mean(0), feats["train"].std(0).clamp(min=1e-5)
    x = {s: (f - mu) / sd for s, f in feats.items()}
    dims = min(max_dims, len(x["train"]))
    if x["train"].shape[1] > dims:  # still a linear map of the features, fitted in their top subspace
        with torch.random.fork_rng():
            torch.manual_seed(0)
            _, _, basis = torch.pca_lowrank(x["train"], q=dims, center=False, niter=4)
        x = {s: f @ basis for s, f in x.items()}
    if task == "au_intensity":
        x = {s: f.double() for s, f in x.items()}
    train = splits["train"]
    best: tuple[float, Optional[torch.Tensor]] = (-math.inf, None)
    for decay in decays:
        if task == "au_occurrence":
            predict = _logistic(x["train"], train, decay, steps)
        else:
            predict = _ridge(x["train"], train, decay)
        val = float(score(task, predict(x["val"]), splits["val"]).mean())
        if val > best[0]:
            best = (val, score(task, predict(x["test"]), splits["test"]))
    return best[1], best[0]


def _ridge(x: torch.Tensor, train: Split, decay: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-AU ridge fit on the labelled rows (the penalty scales with the sample count)."""
    weights = []
    for k in range(train.target.shape[1]):
        rows = train.mask[:, k]
        xk = torch.cat([x[rows], torch.ones(int(rows.sum()), 1, dtype=x.dtype)], 1)
        reg = decay * len(xk) * torch.eye(xk.shape[1], dtype=x.dtype)
        reg[-1, -1] = 0
        weights.append(torch.linalg.solve(xk.T @ xk + reg, xk.T @ train.target[rows, k].double()))
    w = torch.stack(weights, 1)
    return lambda z: (torch.cat([z, torch.ones(len(z), 1, dtype=z.dtype)], 1) @ w).float()


def _logistic(x: torch.Tensor, train: Split, decay: float, steps: int) -> Callable[[torch.Tensor], torch.Tensor]:
    head = nn.Linear(x.shape[1], train.target.shape[1])
    nn.init.zeros_(head.weight), nn.init.zeros_(head.bias)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    y, m, pw = train.target, train.mask, positive_weight(train)
    for _ in range(steps):
        loss = masked_loss("au_occurrence", head(x), y, m, pw) + decay * head.weight.pow(2).sum() / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    return lambda z: torch.sigmoid(head(z)).detach().float()


def pooled_pixels(split: Split, size: int) -> torch.Tensor:
    return F.adaptive_avg_pool2d(split.float_images(), size).flatten(1)


class CheckCNN(nn.Module):
    """Four conv–BN–ReLU–max-pool blocks (32, 64, 128, 128 channels) on a 64-px crop, then a 2×2
    average pool, so that *where* on the face a change happens reaches the linear head."""

    def __init__(self, outputs: int, width: int = 32) -> None:
        super().__init__()
        chans, layers = [3, width, 2 * width, 4 * width, 4 * width], []
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(4 * chans[-1], outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@torch.no_grad()
def cnn_features(model: CheckCNN, split: Split, batch: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(split.float_images(slice(i, i + batch))) for i in range(0, len(split.images), batch)])


def train_cnn(task: str, splits: dict[str, Split], seed: int, epochs: int, batch: int = 64,
              lr: float = 1e-3) -> CheckCNN:
    """Fit :class:`CheckCNN` on the training crops for a fixed budget (no selection)."""
    torch.manual_seed(seed)
    train = splits["train"]
    model = CheckCNN(train.target.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * (len(train.images) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(steps, 1))
    pw = positive_weight(train) if task == "au_occurrence" else None
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train.images), generator=g)
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i:i + batch]
            loss = masked_loss(task, model(train.float_images(idx)), train.target[idx], train.mask[idx], pw)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model


@torch.no_grad()
def cnn_predictions(task: str, model: CheckCNN, split: Split, batch: int = 256) -> torch.Tensor:
    model.eval()
    out = torch.cat([model(split.float_images(slice(i, i + batch))) for i in range(0, len(split.images), batch)])
    return torch.sigmoid(out) if task == "au_occurrence" else out


# ---------------------------------------------------------------------------------------- the check
def check_problem(dataset: str, task: str, splits: dict[str, Split], seeds: list[int], epochs: int,
                  log: Callable[[str], None] = print) -> dict[str, dict]:
    """Every readout's test mean (± sd over seeds where it depends on a seed) and its wall time."""
    rows: dict[str, dict] = {}

    def record(name: str, per_seed: list[torch.Tensor], t0: float) -> None:
        means = [float(s.mean()) for s in per_seed]
        rows[name] = {"mean": float(np.mean(means)), "std": float(np.std(means, ddof=1)) if len(means) > 1 else 0.0,
                      "per_seed": means, "per_au": torch.stack(per_seed).mean(0).tolist(),
                      "seconds": round(time.time() - t0, 1)}
        log(f"{dataset}: {name:<10} {rows[name]['mean']:.3f} ({rows[name]['seconds']:.0f} s)")

    t0 = time.time()
    record("trivial", [trivial(task, splits["test"])], t0)
    t0 = time.time()
    best = max(((size, *linear_readout(task, {s: pooled_pixels(v, size) for s, v in splits.items()}, splits))
                for size in (16, 32)), key=lambda r: r[2])
    rows_pixels = [best[1]]
    record("pixels", rows_pixels, t0)
    rows["pixels"]["pool"] = best[0]
    t0 = time.time()
    random_scores, cnn_scores = [], []
    for seed in seeds:
        torch.manual_seed(seed)
        model = CheckCNN(splits["train"].target.shape[1])
        train = splits["train"]  # running BN means = the exact average over the training crops
        calibrate_batchnorm(model, (train.float_images(slice(i, i + 256)) for i in range(0, len(train.images), 256)),
                            forward=model.features)
        random_scores.append(linear_readout(task, {s: cnn_features(model, v) for s, v in splits.items()}, splits)[0])
    record("random_cnn", random_scores, t0)
    t0 = time.time()
    for seed in seeds:
        model = train_cnn(task, splits, seed, epochs)
        cnn_scores.append(score(task, cnn_predictions(task, model, splits["test"]), splits["test"]))
    record("cnn", cnn_scores, t0)
    t0 = time.time()
    record("oracle", [linear_readout(task, {s: v.state for s, v in splits.items()}, splits)[0]], t0)
    return rows


def verdict(rows: dict[str, dict], margin_learned: float = 0.10, margin_unlearned: float = 0.05) -> dict[str, bool]:
    """The issue's targets: cnn ≥ best unlearned + 0.10; unlearned readouts within 0.05 of trivial."""
    unlearned = max(rows["pixels"]["mean"], rows["random_cnn"]["mean"])
    return {"cnn_beats_unlearned": rows["cnn"]["mean"] >= unlearned + margin_learned,
            "unlearned_near_trivial": unlearned <= rows["trivial"]["mean"] + margin_unlearned}


def run_check(root: Optional[Path] = None, profile: str = "quick", seed: int = 0, seeds: tuple[int, ...] = (0,),
              epochs: int = 8, report: Optional[Path] = None, log: Callable[[str], None] = print) -> dict:
    """Score every readout on both problems; write ``check.json`` and ``check.png`` under ``report``."""
    from affectlab.synth import GENERATOR_VERSION

    result: dict = {"generator_version": GENERATOR_VERSION, "profile": profile if root is None else None,
                    "root": str(root) if root is not None else None, "seed": seed, "seeds": list(seeds),
                    "epochs": epochs, "problems": {}}
    for dataset, task, metric in PROBLEMS:
        t0 = time.time()
        splits, au_names = load_problem(dataset, task, root, profile, seed)
        log(f"{dataset}: loaded {', '.join(f'{k} {len(v.images)}' for k, v in splits.items())} crops "
            f"in {time.time() - t0:.0f} s")
        rows = check_problem(dataset, task, splits, list(seeds), epochs, log)
        result["problems"][dataset] = {"task": task, "metric": metric, "au_names": au_names,
                                       "load_seconds": round(time.time() - t0, 1), "readouts": rows,
                                       "verdict": verdict(rows)}
    if report is not None:
        report = Path(report)
        report.mkdir(parents=True, exist_ok=True)
        from affectlab.engine.io import atomic_write_json
        atomic_write_json(report / "check.json", result)
        plot_check(result, report / "check.png")
    return result


def markdown(result: dict) -> str:
    """The check as a Markdown table (mean ± sd over seeds, seconds)."""
    lines = ["| readout | " + " | ".join(f"{d.upper()} {p['metric'].upper()} (s)" for d, p in result["problems"].items())
             + " |", "|---|" + "---|" * len(result["problems"])]
    for name in READOUTS:
        cells = []
        for p in result["problems"].values():
            r = p["readouts"][name]
            spread = f" ± {r['std']:.3f}" if len(r["per_seed"]) > 1 else ""
            cells.append(f"{r['mean']:.3f}{spread} ({r['seconds']:.0f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for d, p in result["problems"].items():
        v = p["verdict"]
        lines.append(f"\n{d}: cnn ≥ best unlearned + 0.10: {'yes' if v['cnn_beats_unlearned'] else 'NO'}; "
                     f"unlearned within 0.05 of trivial: {'yes' if v['unlearned_near_trivial'] else 'NO'}")
    return "\n".join(lines)


def plot_check(result: dict, path: Path) -> Path:
    """Bar chart of every readout per problem, saved as PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = result["problems"]
    fig, axes = plt.subplots(1, len(problems), figsize=(4.2 * len(problems), 3.2))
    for ax, (d, p) in zip(np.atleast_1d(axes), problems.items()):
        r = p["readouts"]
        ax.bar(READOUTS, [r[n]["mean"] for n in READOUTS], yerr=[r[n]["std"] for n in READOUTS],
               color=["#999", "#c66", "#c96", "#393", "#36c"])
        ax.set_title(f"{d.upper()} fold 1, mean {p['metric'].upper()}")
        ax.set_ylim(min(0.0, min(r[n]["mean"] for n in READOUTS)), 1.0)
        ax.tick_params(axis="x", rotation=30)
    fig.suptitle(f"synth check, generator v{result['generator_version']}"
                 + (f" ({result['profile']})" if result["profile"] else ""))
    fig.tight_layout()
    from affectlab.engine.io import atomic_save_figure
    return atomic_save_figure(fig, path, dpi=110)
