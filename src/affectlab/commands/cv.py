"""``affectlab cv METHOD=m DATA=d [key=value ...] [--fold K]``: every fold of the protocol."""
from __future__ import annotations

import argparse
import shlex
import sys

from affectlab.schema import ConfigError

NAME = "cv"
HELP = "cross-validate a method over every fold of the dataset's protocol (or one fold with --fold)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="METHOD=…, DATA=…, TRAINER=…, dotted.key=value")
    parser.add_argument("--fold", type=int, action="append",
                        help="run only this fold (repeatable; for one process per fold in an array job)")
    parser.add_argument("--aggregate-only", action="store_true",
                        help="only aggregate the folds that already finished")
    parser.add_argument("--train-command", default=None,
                        help="command that trains one fold (default: this python -m affectlab train)")


def run(args: argparse.Namespace) -> int:
    from affectlab.evaluation import CrossValidation
    from affectlab.evaluation.crossval import DEFAULT_TRAIN_COMMAND

    try:
        command = shlex.split(args.train_command) if args.train_command else DEFAULT_TRAIN_COMMAND
    except ValueError as err:  # an unbalanced quote
        raise ConfigError(f"--train-command {args.train_command!r}: {err}") from None
    cv = CrossValidation(list(args.overrides), train_command=command)
    if not args.aggregate_only and not args.train_command:
        from affectlab.config import compose

        compose(args.overrides)  # a config mistake fails here once, not in every fold's subprocess
    if args.aggregate_only:
        missing = [k for k in cv.folds if k not in cv.finished_records()]
        if missing:
            print(f"affectlab cv: error: cannot aggregate yet: folds {missing} of {cv.protocol} have not finished "
                  f"(fold states in {cv.cv_dir}); run them with `affectlab cv {' '.join(args.overrides)}` "
                  f"or --fold K, then aggregate", file=sys.stderr)
            return 2
        result = cv.aggregate()
        print(cv.cv_dir / "cv_results.md")
        return 0 if result else 1
    summary = cv.run(args.fold)
    failed = [o for o in summary["outcomes"] if o.status == "failed"]
    for outcome in summary["outcomes"]:
        print(f"fold {outcome.fold}: {outcome.status} {outcome.run_dir or ''} {outcome.message}".rstrip())
    if summary["aggregate"]:
        print((cv.cv_dir / "cv_results.md").read_text())
    else:
        missing = [k for k in cv.folds if k not in cv.finished_records()]
        print(f"waiting for folds {missing} before aggregating")
    print(cv.cv_dir)
    return 1 if failed else 0
