"""IAL on vs off on synthetic DFEW, split by the generator's intensity band.

Trains the ``ial`` method twice with the same seed, data and budget — once with the intensity-aware
loss (λ = ``method.ial_weight``) and once without (``method.use_ial=false``) — then evaluates each
selected checkpoint on the test fold and reports UAR/WAR overall and per intensity band (low / medium /
high, read from the generator's ground-truth table ``groundtruth/dfew.csv.gz``, column ``band``;
neutral clips have no band and are listed as ``none``).

    PYTHONPATH=src:. python benchmarks/ial_evidence.py                       # both variants, CPU defaults
    PYTHONPATH=src:. python benchmarks/ial_evidence.py --variants on --out /tmp/ial_ev   # one at a time
    PYTHONPATH=src:. python benchmarks/ial_evidence.py --variants off --out /tmp/ial_ev  # (table merges both)
    PYTHONPATH=src:. python benchmarks/ial_evidence.py -- trainer.max_epochs=20 data.fold=2  # extra overrides
    PYTHONPATH=src:. python benchmarks/ial_evidence.py --reuse-on runs/ial/dfew/<run>   # on = a make-train run
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from affectlab.evaluation.intensity_bands import clip_bands

BANDS = ("low", "medium", "high", "none")


def uar_war(pred: np.ndarray, label: np.ndarray, num_classes: int) -> tuple[float, float, int]:
    """UAR over the classes present in ``label``, WAR, and the number of clips."""
    if len(label) == 0:
        return float("nan"), float("nan"), 0
    recalls = [np.mean(pred[label == c] == c) for c in range(num_classes) if np.any(label == c)]
    return float(np.mean(recalls)), float(np.mean(pred == label)), int(len(label))


@torch.no_grad()
def predict(module, datamodule) -> pd.DataFrame:
    module.eval()
    rows = []
    for batch in datamodule.test_dataloader():
        pred = module(batch["video"]).argmax(1)
        for clip, y, p in zip(batch["meta"]["clip"], batch["label"].tolist(), pred.tolist()):
            rows.append({"clip": str(clip), "label": int(y), "pred": int(p)})
    return pd.DataFrame(rows)


def check_same_setup(cfg, recorded: dict, where: str) -> None:
    """Refuse a reused run whose method, data, epochs or seed differ from this comparison's."""
    from omegaconf import OmegaConf

    want = OmegaConf.to_container(cfg, resolve=True)
    for key in ("method", "data", "seed"):
        if want[key] != recorded[key]:
            raise SystemExit(f"{where}: recorded {key} differs from this comparison's configuration")
    if want["trainer"]["max_epochs"] != recorded["trainer"]["max_epochs"]:
        raise SystemExit(f"{where}: recorded trainer.max_epochs differs")


def run_variant(name: str, use_ial: bool, args: argparse.Namespace, out: Path) -> dict:
    from affectlab.config import compose
    from affectlab.engine.runner import train
    from affectlab.methods.ial import IALModule
    from data_modules import create_datamodule

    overrides = [
        "METHOD=ial", f"seed={args.seed}", f"method.use_ial={str(use_ial).lower()}",
        f"run_root={out / 'runs'}", f"run_name=ial-{name}", "logger.wandb.enabled=false",
        "leaderboard.enabled=false", "trainer.enable_progress_bar=false", *args.overrides,
    ]
    cfg = compose(overrides)
    reuse = getattr(args, f"reuse_{name}", None)
    if reuse is not None:  # an existing run of the same configuration (e.g. `make train METHOD=ial`)
        record = json.loads((Path(reuse) / "results.json").read_text())
        check_same_setup(cfg, record["config"], reuse)
        wall = float(record["wall_time_s"])
    else:
        start = time.time()
        record = train(cfg)
        wall = time.time() - start
    run_dir = Path(record["run_dir"])
    best = json.loads((run_dir / "stages" / "supervised" / "done.json").read_text())["checkpoint"]
    dm = create_datamodule(cfg.data)
    module = IALModule(cfg, list(dm.class_names))
    module.load_state_dict(torch.load(best, map_location="cpu", weights_only=False)["state_dict"])
    preds = predict(module, dm)
    bands = clip_bands(dm.root, "dfew")
    if bands is None:
        raise FileNotFoundError(f"{dm.root.parent / 'groundtruth'}: generator ground truth not found "
                                "(expected a synthetic root)")
    preds["band"] = preds["clip"].map(bands)
    if preds["band"].isna().any():
        missing = preds.loc[preds["band"].isna(), "clip"].tolist()[:5]
        raise ValueError(f"test clips missing from the ground-truth table: {missing}")
    k = len(dm.class_names)
    result = {"variant": name, "use_ial": use_ial, "seed": args.seed, "wall_s": round(wall, 1),
              "epochs": int(cfg.trainer.max_epochs), "record_uar": record["metrics"]["uar"],
              "record_war": record["metrics"]["war"], "overrides": overrides, "groups": {}}
    for band in ("all", *BANDS):
        sub = preds if band == "all" else preds[preds["band"] == band]
        uar, war, n = uar_war(sub["pred"].to_numpy(), sub["label"].to_numpy(), k)
        result["groups"][band] = {"uar": uar, "war": war, "n": n}
    (out / f"evidence_{name}.json").write_text(json.dumps(result, indent=1))
    return result


def print_table(results: list[dict]) -> None:
    print(f"\n{'variant':<8} {'group':<7} {'n':>4} {'UAR':>7} {'WAR':>7}")
    for r in results:
        for band, g in r["groups"].items():
            if g["n"]:
                print(f"{r['variant']:<8} {band:<7} {g['n']:>4} {g['uar']:>7.3f} {g['war']:>7.3f}")
    for r in results:
        print(f"# {r['variant']}: seed {r['seed']}, {r['epochs']} epochs, {r['wall_s']} s; "
              f"results.json UAR {r['record_uar']:.3f} WAR {r['record_war']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="on,off", help="comma list of on | off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="folder for runs and per-variant JSON")
    parser.add_argument("--reuse-on", type=Path, default=None,
                        help="run folder of an existing IAL-on run with this configuration (evaluated, not retrained)")
    parser.add_argument("--reuse-off", type=Path, default=None, help="the same for the IAL-off variant")
    parser.add_argument("overrides", nargs="*", help="extra key=value config overrides (after --)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ial_evidence_"))
    out.mkdir(parents=True, exist_ok=True)
    for name in args.variants.split(","):
        if name not in ("on", "off"):
            raise SystemExit(f"--variants: expected on/off, got {name!r}")
        run_variant(name, name == "on", args, out)
    results = [json.loads(p.read_text()) for p in sorted(out.glob("evidence_*.json"), reverse=True)]
    print_table(results)
    print(f"# per-variant JSON in {out}")


if __name__ == "__main__":
    main()
