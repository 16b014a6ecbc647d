"""`affectlab synth`: generate the synthetic stand-in datasets, or `affectlab synth preview` a contact sheet."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

NAME = "synth"
HELP = "generate synthetic BP4D/DISFA/DFEW/FERV39k/videos in the official layouts (or a preview PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["generate", "preview"], default="generate",
                        help="generate datasets (default) or write a PNG contact sheet")
    parser.add_argument("--out", required=True, help="output folder (generate) or PNG file (preview)")
    parser.add_argument("--datasets", default="bp4d,disfa,dfew,ferv39k,videos",
                        help="comma-separated subset of bp4d,disfa,dfew,ferv39k,videos")
    parser.add_argument("--profile", default="quick", choices=["tiny", "quick", "realres", "full"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: min(2, cores))")


def run(args: argparse.Namespace) -> int:
    if args.action == "preview":
        from affectlab.synth.preview import write_preview
        print(f"wrote {write_preview(args.out, args.seed)}")
        return 0
    from affectlab.synth import generate
    names = [d.strip() for d in args.datasets.replace(" ", ",").split(",") if d.strip()]
    t0 = time.time()
    out = generate(Path(args.out), names, args.profile, args.seed, progress=True, workers=args.workers)
    print(f"wrote {', '.join(names)} ({args.profile}, seed {args.seed}) to {out} in {time.time() - t0:.1f} s")
    return 0
