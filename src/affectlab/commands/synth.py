"""`affectlab synth`: generate the synthetic stand-in datasets, `affectlab synth preview` a contact sheet,
or `affectlab synth check` how well the world separates learned features from raw pixels."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "synth"
HELP = ("generate synthetic BP4D/DISFA/DFEW/FERV39k/videos in the official layouts (or a preview PNG, or check "
        "the world's discrimination)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["generate", "preview", "check"], default="generate",
                        help="generate datasets (default), write a PNG contact sheet, or score the trivial / pixel / "
                             "random-CNN / supervised-CNN / oracle readouts on BP4D and DISFA fold 1")
    parser.add_argument("--out", default=None, help="output folder (generate) or PNG file (preview); for check, the "
                                                    "synthetic copy to read (default: the cached copy of --profile)")
    parser.add_argument("--report", default=None, help="check: folder for check.json and check.png "
                                                       "(default: runs/synth_check/<profile>-seed<seed>)")
    parser.add_argument("--check-seeds", default="0,1,2", help="check: seeds of the random and trained CNNs")
    parser.add_argument("--epochs", type=int, default=8, help="check: training epochs of the supervised CNN")
    parser.add_argument("--datasets", default="bp4d,disfa,dfew,ferv39k,videos",
                        help="comma-separated subset of bp4d,disfa,dfew,ferv39k,videos")
    parser.add_argument("--profile", default="quick", choices=["tiny", "quick", "realres", "full"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: min(2, cores))")


def run(args: argparse.Namespace) -> int:
    from affectlab.schema import ConfigError

    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    if args.action == "check":
        return _check(args)
    if args.out is None:
        raise ConfigError(f"synth {args.action} needs --out ({'a PNG file' if args.action == 'preview' else 'a folder'})")
    if args.action == "preview":
        from affectlab.synth.preview import write_preview
        if Path(args.out).suffix.lower() != ".png":
            raise ConfigError(f"synth preview --out {args.out}: expected a .png file")
        print(f"wrote {write_preview(args.out, args.seed)}")
        return 0
    from affectlab.synth import generate
    names = [d.strip() for d in args.datasets.replace(" ", ",").split(",") if d.strip()]
    if not names:  # generate() reads no names as all of them
        raise ConfigError(f"--datasets {args.datasets!r} names no dataset")
    t0 = time.time()
    out = generate(Path(args.out), names, args.profile, args.seed, progress=True, workers=args.workers)
    print(f"wrote {', '.join(names)} ({args.profile}, seed {args.seed}) to {out} in {time.time() - t0:.1f} s")
    return 0


def _check(args: argparse.Namespace) -> int:
    from affectlab.schema import ConfigError
    from affectlab.synth import check

    try:
        seeds = tuple(int(v) for v in args.check_seeds.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--check-seeds must be comma-separated integers, got {args.check_seeds!r}") from None
    if not seeds or args.epochs < 1:
        raise ConfigError("synth check needs at least one seed in --check-seeds and --epochs >= 1")
    root = Path(args.out) if args.out else None
    if root is not None and not (root / "groundtruth").is_dir():
        raise ConfigError(f"{root} is not a synthetic copy (no groundtruth/ folder); write one with "
                          f"`affectlab synth --out {root}` or leave --out unset for the cached copy")
    report = Path(args.report or Path("runs") / "synth_check" / f"{args.profile}-seed{args.seed}")
    t0 = time.time()
    result = check.run_check(root, args.profile, args.seed, seeds, args.epochs, report)
    print(check.markdown(result))
    print(f"\nwrote {report / 'check.json'} and {report / 'check.png'} in {time.time() - t0:.0f} s")
    return 0
