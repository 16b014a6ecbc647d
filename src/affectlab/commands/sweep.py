"""``affectlab sweep FILE [--count N] [--local]``: a wandb sweep, online or with the local engine."""
from __future__ import annotations

import argparse

NAME = "sweep"
HELP = "run a wandb sweep file (online with an agent, or offline/--local with the sweeps engine)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="sweep YAML (experiments/sweeps/<method>.yaml)")
    parser.add_argument("--count", type=int, default=None, help="number of trials to run")
    parser.add_argument("--local", action="store_true", help="search locally even when wandb is online")
    parser.add_argument("--resume", default=None, metavar="SWEEP_ID", help="continue a local sweep")
    parser.add_argument("--root", default="runs/sweeps", help="folder of local sweep states")
    parser.add_argument("--leaderboard-url", default=None, help="board for trial records (default: results/)")
    parser.add_argument("--project", default=None)
    parser.add_argument("--entity", default=None)


def run(args: argparse.Namespace) -> int:
    from affectlab.sweeps import LocalSweep, load_sweep_file, run_online, wandb_online

    config = load_sweep_file(args.file)
    if not args.local and not args.resume and wandb_online():
        sweep_id = run_online(config, args.count, project=args.project, entity=args.entity)
        print(f"wandb sweep {sweep_id} done")
        return 0
    sweep = LocalSweep(config, root=args.root, sweep_id=args.resume, leaderboard_url=args.leaderboard_url, echo=False)
    trials = sweep.run(args.count)
    for trial in trials:
        print(f"{trial.name} {trial.state:8s} {sweep.metric_name}={trial.metric} {trial.params} {trial.message}")
    best = sweep.best()
    if best:
        print(f"best: {best.name} {sweep.metric_name}={best.metric} {best.params} ({best.run_dir})")
    print(sweep.dir)
    return 0 if any(t.state == "finished" for t in trials) or not trials else 1
