"""``affectlab sweep FILE [KEY=VALUE ...] [--count N] [--local]``: a wandb sweep, online or with the local engine.

``KEY=VALUE`` overrides are the ones ``affectlab train`` takes (``DATA=toyau trainer.max_epochs=1``);
every trial gets them besides its swept parameters.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from affectlab.schema import ConfigError

NAME = "sweep"
HELP = "run a wandb sweep file (online with an agent, or offline/--local with the sweeps engine)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep YAML (experiments/sweeps/<method>.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides passed to every trial, as for affectlab train (DATA=toyau trainer.max_epochs=1)")
    parser.add_argument("--count", type=int, default=None, help="number of trials to run")
    parser.add_argument("--local", action="store_true", help="search locally even when wandb is online")
    parser.add_argument("--resume", default=None, metavar="SWEEP_ID", help="continue a local sweep")
    parser.add_argument("--root", default="runs/sweeps", help="folder of local sweep states")
    parser.add_argument("--leaderboard-url", default=None, help="board for trial records (default: results/)")
    parser.add_argument("--project", default=None)
    parser.add_argument("--entity", default=None)


def _say(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    from affectlab.sweeps import LocalSweep, load_sweep_file, run_online, wandb_online, with_overrides

    if args.count is not None and args.count < 1:
        raise ConfigError(f"--count must be at least 1, got {args.count}")
    try:
        config = with_overrides(load_sweep_file(args.file), args.overrides, where=args.file)
    except ValueError as err:  # the file or the overrides
        raise ConfigError(str(err)) from None
    if not args.local and not args.resume and wandb_online():
        sweep_id = run_online(config, args.count, project=args.project, entity=args.entity,
                              announce=lambda sid: _say(f"wandb sweep {sid} created; running its agent here"))
        _say(f"wandb sweep {sweep_id} done")
        return 0
    if args.resume:
        if args.overrides:
            raise ConfigError("--resume continues a sweep with the overrides it started with; give no KEY=VALUE")
        if not (Path(args.root) / args.resume / "sweep.json").is_file():
            known = sorted(p.parent.name for p in Path(args.root).glob("*/sweep.json"))
            raise ConfigError(f"--resume {args.resume}: no local sweep of that id under {args.root} "
                              f"(known: {', '.join(known) or 'none'})")
    sweep = LocalSweep(config, root=args.root, sweep_id=args.resume, leaderboard_url=args.leaderboard_url,
                       echo=False, progress=_say)
    _say(f"sweep {sweep.sweep_id} ({'resumed' if args.resume else 'new'}; continue it with "
         f"--resume {sweep.sweep_id}): state and trial logs in {sweep.dir}")
    trials = sweep.run(args.count)
    best = sweep.best()
    if best:
        _say(f"best: {best.name} {sweep.metric_name}={best.metric} {best.params} ({best.run_dir})")
    _say(str(sweep.dir))
    return 0 if any(t.state == "finished" for t in trials) or not trials else 1
