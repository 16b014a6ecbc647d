"""The ``affectlab`` command: train, test, list, config, plus every module of ``affectlab.commands``.

Arguments after the subcommand are ``KEY=value`` pairs: selectors ``METHOD= DATA= TRAINER= EXP=``
and dotted config overrides such as ``data.fold=2 trainer.max_epochs=5``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import warnings
from typing import Callable, Sequence

from affectlab.config import ConfigError
from affectlab.registry import UnknownNameError

EXIT_USAGE = 2


def _overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="selectors (METHOD= DATA= TRAINER= EXP=) and dotted config overrides")


def cmd_train(args: argparse.Namespace) -> int:
    from affectlab.config import compose
    from affectlab.engine.runner import print_summary, train

    cfg = compose(args.overrides)
    record = train(cfg)
    if record:
        print_summary(record)
        print(record["run_dir"], flush=True)
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from affectlab.engine.evaluate import evaluate_run
    from affectlab.engine.runner import print_summary

    record = evaluate_run(args.run_dir, checkpoint=args.checkpoint, overrides=args.overrides)
    print_summary(record)
    print(record["output"], flush=True)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from affectlab.config import available
    from affectlab.methods import METHODS
    from data_modules import DATAMODULES

    print("methods:")
    for name in METHODS.names():
        spec = METHODS.get(name)
        summary = (spec.__doc__ or "").strip().splitlines()[0] if spec.__doc__ else ""
        print(f"  {name:<24} task={spec.task:<14} default data={spec.default_data:<9} {summary}")
    print("datasets:")
    for name in DATAMODULES.names():
        dm = DATAMODULES.get(name)
        print(f"  {name:<24} tasks={','.join(getattr(dm, 'tasks', ()))}")
    print("trainer presets:")
    print("  " + ", ".join(available("trainer")))
    print("experiments:")
    print("  " + (", ".join(available("exp")) or "(none)"))
    print("valid combinations (method × dataset for the method's task):")
    for name in METHODS.names():
        spec = METHODS.get(name)
        ok = [d for d in DATAMODULES.names() if spec.task in getattr(DATAMODULES.get(d), "tasks", ())]
        print(f"  {name:<24} {', '.join(ok) or '(none)'}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from affectlab.config import compose, config_hash, to_yaml

    cfg = compose(args.overrides)
    print(f"# config hash {config_hash(cfg)}; merge order: base → method → data → trainer → experiment → command line")
    print(to_yaml(cfg), end="")
    return 0


BUILTIN: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "train": ("train a method (all its stages) and test it", _overrides, cmd_train),
    "config": ("print the resolved config", _overrides, cmd_config),
    "list": ("list methods, datasets, trainer presets and valid combinations", lambda p: None, cmd_list),
}


def _add_test(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="run directory written by `affectlab train`")
    parser.add_argument("--checkpoint", help="checkpoint to evaluate (default: the run's selected one)")
    _overrides(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affectlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_text, add_args, func) in BUILTIN.items():
        p = sub.add_parser(name, help=help_text)
        add_args(p)
        p.set_defaults(func=func)
    p = sub.add_parser("test", help="evaluate a run's checkpoint on its test split")
    _add_test(p)
    p.set_defaults(func=cmd_test)
    import affectlab.commands as commands

    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"affectlab.commands.{info.name}")
        p = sub.add_parser(module.NAME, help=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=".*Valid config keys have changed in V2.*")
    logging.getLogger("affectlab").setLevel(os.environ.get("AFFECTLAB_LOG", "INFO"))
    args = build_parser().parse_args(argv)
    from data_modules.frames import DataFormatError, TooManyBadImages

    try:
        return int(args.func(args) or 0)
    except (ConfigError, UnknownNameError, FileNotFoundError, DataFormatError, TooManyBadImages) as err:
        print(f"affectlab {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
