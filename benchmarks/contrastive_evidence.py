"""Evidence for contrastive_intensity (Sanchez et al., ACCV 2020): does stage-1 contrastive pretraining
help sparse-label AU intensity regression, and how does ICC grow with the label budget?

Pretrains once, then runs stage 2 for every label budget, stage-2 seed and arm (``init:extractor``:
stage-1 weights or a random initialisation, frozen or fine-tuned extractor) with the same data,
budget and schedule. Prints a table (test ICC/MAE/PCC means ± sd over seeds, model selected on val
ICC) and saves the budget curve as a PNG.

    PYTHONPATH=src:. python benchmarks/contrastive_evidence.py                       # synthetic DISFA + videos
    PYTHONPATH=src:. python benchmarks/contrastive_evidence.py --toy-data /tmp/toy   # self-contained toy release
    ... --arms contrastive:frozen scratch:finetuned --seeds 0 1 2 --set data.fold=2    # arms, seeds, overrides

``--toy-data DIR`` writes (once) a small DISFA-layout release and a folder of unlabelled tracks in which
each of the 12 AUs is a blob whose contrast follows a smooth 0–5 intensity curve, for use before the
synthetic generator is available or as a quick sanity check.
"""
from __future__ import annotations

import argparse
import copy
import math
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


def write_toy_release(root: Path, frames: int = 120, size: int = 48, seed: int = 0) -> tuple[Path, Path]:
    """DISFA layout (27 subjects, one AVI each + ActionUnit_Labels) and ``videos/`` tracks; AU k is a
    Gaussian blob at a fixed place whose contrast is proportional to its intensity; subjects differ
    in background brightness and texture."""
    import cv2

    from data_modules.disfa import DISFA_INTENSITY_AUS, PARTS

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    centres = [(0.2 + 0.2 * (k % 4), 0.25 + 0.25 * (k // 4)) for k in range(len(DISFA_INTENSITY_AUS))]
    blobs = np.stack([np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 0.06 ** 2)) for cx, cy in centres])

    def curves(n: int) -> np.ndarray:
        out = np.zeros((n, len(centres)))
        for k in range(len(centres)):
            for _ in range(rng.poisson(n / 60)):  # activation episodes: smooth bumps
                t0, width, peak = rng.uniform(0, n), rng.uniform(6, 20), rng.uniform(1, 5)
                out[:, k] += peak * np.exp(-((np.arange(n) - t0) ** 2) / (2 * width ** 2))
        return np.clip(out, 0, 5)

    def render(u: np.ndarray, base: float, texture: np.ndarray) -> np.ndarray:
        img = base + texture + (u[:, None, None] * blobs).sum(0) * 25 + rng.normal(0, 4, (size, size))
        return np.repeat(np.clip(img, 0, 255).astype(np.uint8)[..., None], 3, axis=2)

    disfa, videos = root / "DISFA", root / "videos"
    if (disfa / "done").exists():
        return disfa, videos
    subjects = sorted(s for p in PARTS.values() for s in p)
    for s in subjects:
        u, base, tex = curves(frames), rng.uniform(60, 110), rng.normal(0, 8, (size, size))
        path = disfa / "Videos_LeftCamera" / f"LeftVideoSN{s[2:]}_comp.avi"
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20, (size, size))
        for t in range(frames):
            writer.write(render(u[t], base, tex))
        writer.release()
        labels = disfa / "ActionUnit_Labels" / s
        labels.mkdir(parents=True, exist_ok=True)
        levels = np.where(u < 0.5, 0, np.minimum(5, np.floor(u + 0.5))).astype(int)
        for k, au in enumerate(DISFA_INTENSITY_AUS):
            (labels / f"{s}_au{au}.txt").write_text("".join(f"{t + 1},{v}\n" for t, v in enumerate(levels[:, k])))
    for ident in range(40):
        base, tex = rng.uniform(60, 110), rng.normal(0, 8, (size, size))
        for track in range(2):
            d = videos / f"id{ident:05d}" / f"track{track}"
            d.mkdir(parents=True, exist_ok=True)
            for t, row in enumerate(curves(48)):
                cv2.imwrite(str(d / f"{t:04d}.png"), render(row, base, tex))
    (disfa / "done").write_text("ok")
    return disfa, videos


class EpochPrinter(L.Callback):
    """Prints the monitored validation metric after every epoch (the learning curve of a run)."""

    def __init__(self, tag: str, keys: tuple[str, ...]) -> None:
        self.tag, self.keys, self.start = tag, keys, time.time()

    def on_validation_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        values = " ".join(f"{k}={float(trainer.callback_metrics[k]):.3f}" for k in self.keys
                          if k in trainer.callback_metrics)
        print(f"[{self.tag}] epoch {trainer.current_epoch}: {values} ({time.time() - self.start:.0f}s)", flush=True)


def _fit(module: L.LightningModule, dm, epochs: int, monitor: str | None, mode: str, workdir: Path,
         tag: str = "", keys: tuple[str, ...] = ()) -> L.Trainer:
    ckpt = ModelCheckpoint(dirpath=str(workdir), monitor=monitor, mode=mode, save_top_k=1 if monitor else 0,
                           save_last=monitor is None)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, callbacks=[ckpt, EpochPrinter(tag, keys)],
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    if monitor and ckpt.best_model_path:
        module.load_state_dict(torch.load(ckpt.best_model_path, weights_only=False)["state_dict"])
    return trainer


ARMS = {"contrastive": True, "scratch": False}
EXTRACTOR = {"frozen": "true", "finetuned": "false"}


def parse_arm(text: str) -> tuple[str, str]:
    """``contrastive:frozen`` → (init, extractor); init contrastive | scratch, extractor frozen | finetuned."""
    init, _, extractor = text.partition(":")
    if init not in ARMS or extractor not in EXTRACTOR:
        raise argparse.ArgumentTypeError(f"arm {text!r}: expected <contrastive|scratch>:<frozen|finetuned>")
    return init, extractor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=float, nargs="*", default=[0.005, 0.02, 0.1, 1.0])
    parser.add_argument("--arms", type=parse_arm, nargs="*",
                        default=[("contrastive", "frozen"), ("scratch", "finetuned"), ("scratch", "frozen")],
                        help="init:extractor pairs trained at every budget (init contrastive = stage-1 weights)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0],
                        help="stage-2 seeds; each sets seed and data.label_mask_seed (other labelled frames, "
                             "other initialisation); stage 1 always runs with the config seed")
    parser.add_argument("--toy-data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/contrastive_budget_curve.png"))
    parser.add_argument("--set", nargs="*", default=[], help="config overrides key=value")
    parser.add_argument("--pretrained", type=Path, default=None,
                        help="stage-1 weights: loaded if the file exists, else trained and saved there")
    parser.add_argument("--results", type=Path, default=None,
                        help="CSV to append rows to; the table and the plot then cover every row in it")
    parser.add_argument("--toy-frames", type=int, default=120)
    args = parser.parse_args()

    from affectlab.config import compose
    from affectlab.methods.contrastive_intensity import (
        ContrastivePretrainModule,
        SparseIntensityRegressor,
        build_model,
        pretrain_datamodule,
        regress_datamodule,
    )

    torch.set_num_threads(max(1, torch.get_num_threads()))
    overrides = ["METHOD=contrastive_intensity", "logger.wandb.enabled=false", "leaderboard.enabled=false"]
    if args.toy_data:
        disfa, videos = write_toy_release(args.toy_data, frames=args.toy_frames)
        overrides += [f"data.root={disfa}", f"method.pretrain.root={videos}", "data.image_size=48",
                      "data.align=false", "data.hflip=false", "method.pretrain.flip=false"]
    cfg = compose(overrides + list(args.set))
    work = Path(tempfile.mkdtemp(prefix="contrastive_evidence_"))

    start = time.time()
    need_pretrain = any(init == "contrastive" for init, _ in args.arms) and args.budgets
    pretrained = None
    if args.pretrained and args.pretrained.is_file():
        pretrained = torch.load(args.pretrained, weights_only=True)
    elif need_pretrain or args.pretrained:
        L.seed_everything(int(cfg.seed), verbose=False)
        pre = ContrastivePretrainModule(cfg)
        monitor = "val/loss" if cfg.method.pretrain.select == "best" else None
        _fit(pre, pretrain_datamodule(cfg), cfg.method.pretrain.max_epochs, monitor, "min", work / "pretrain",
             "pretrain", ("train/loss", "train/acc", "train/acc_same_clip", "val/loss", "val/acc"))
        pretrained = copy.deepcopy(pre.model.state_dict())
        if args.pretrained:
            args.pretrained.parent.mkdir(parents=True, exist_ok=True)
            torch.save(pretrained, args.pretrained)
    pretrain_s = time.time() - start

    rows = []
    for seed in args.seeds:
        for budget in args.budgets:
            for init, extractor in args.arms:
                t0 = time.time()
                run_cfg = compose(overrides + list(args.set) + [
                    f"seed={seed}", f"data.label_mask_seed={seed}", f"data.label_fraction={budget}",
                    f"method.regress.freeze_extractor={EXTRACTOR[extractor]}"])
                L.seed_everything(seed, verbose=False)
                model = build_model(run_cfg.method)
                if ARMS[init]:
                    missing, unexpected = model.load_state_dict(pretrained, strict=False)
                    if unexpected or missing:
                        raise RuntimeError(f"stage-1 weights do not match the model: missing {missing}, "
                                           f"unexpected {unexpected}")
                dm, label_budget = regress_datamodule(run_cfg)
                module = SparseIntensityRegressor(run_cfg, model, list(dm.au_names), label_budget)
                tag = f"{init}-{extractor}-{budget}-s{seed}"
                trainer = _fit(module, dm, run_cfg.method.regress.max_epochs, "val/icc_mean", "max", work / tag,
                               tag, ("train/loss", "val/icc_mean", "val/mae_mean"))
                trainer.test(module, datamodule=dm, verbose=False)
                m = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
                rows.append(dict(budget=budget, init=init, extractor=extractor, seed=seed, icc=m["test/icc_mean"],
                                 mae=m["test/mae_mean"], pcc=m["test/pcc_mean"], seconds=time.time() - t0))
                print(f"[{tag}] test ICC {m['test/icc_mean']:.3f} MAE {m['test/mae_mean']:.3f} "
                      f"({time.time() - t0:.0f}s)", flush=True)

    print(f"\ncontrastive_intensity evidence: data {cfg.data.name} fold {cfg.data.fold} "
          f"({'toy ' + str(args.toy_data) if args.toy_data else 'synthetic ' + cfg.data.synthetic_profile}), "
          f"label scope {cfg.method.regress.label_scope}, stage 1 {cfg.method.pretrain.objective} on "
          f"{cfg.method.pretrain.source} (seed {cfg.seed}, {pretrain_s:.0f}s)")
    if args.results:
        import pandas as pd

        new = pd.DataFrame(rows)
        if args.results.is_file():
            new = pd.concat([pd.read_csv(args.results), new], ignore_index=True)
        args.results.parent.mkdir(parents=True, exist_ok=True)
        new.to_csv(args.results, index=False)
        rows = new.to_dict("records")
    print(summary_table(rows))
    if rows:
        plot_curve(rows, args.out)
        print(f"budget curve: {args.out}")


def summary_table(rows: list[dict]) -> str:
    """Mean ± sd (over seeds) of test ICC/MAE/PCC per budget and arm, with the per-seed ICCs."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["budget"], r["init"], r["extractor"]), []).append(r)
    lines = [f"{'budget':>8} {'init':>12} {'extractor':>10} {'ICC':>15} {'MAE':>7} {'PCC':>7}  ICC per seed"]
    for (budget, init, extractor), rs in sorted(groups.items()):
        icc = np.array([r["icc"] for r in rs])
        per_seed = " ".join(f"s{r['seed']}:{r['icc']:.3f}" for r in rs)
        lines.append(f"{100 * budget:7.1f}% {init:>12} {extractor:>10} {icc.mean():7.3f} ± {icc.std():.3f} "
                     f"{np.mean([r['mae'] for r in rs]):7.3f} {np.mean([r['pcc'] for r in rs]):7.3f}  {per_seed}")
    return "\n".join(lines)


def plot_curve(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    arms = sorted({(r["init"], r["extractor"]) for r in rows})
    for init, extractor in arms:
        by_budget: dict[float, list[float]] = {}
        for r in rows:
            if (r["init"], r["extractor"]) == (init, extractor):
                by_budget.setdefault(r["budget"], []).append(0.0 if math.isnan(r["icc"]) else r["icc"])
        xs = sorted(by_budget)
        ax.errorbar([100 * b for b in xs], [np.mean(by_budget[b]) for b in xs], yerr=[np.std(by_budget[b]) for b in xs],
                    fmt="o-" if init == "contrastive" else "s--", capsize=3, label=f"{init}, {extractor}")
    ax.set_xscale("log")
    ax.set_xlabel("labelled training frames (%)")
    ax.set_ylabel("test ICC(3,1), mean over AUs")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
