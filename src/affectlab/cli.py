"""The ``affectlab`` command: train and test methods, inspect datasets and configs, cross-validate,
sweep hyper-parameters, generate the synthetic data and render the leaderboard.

Arguments after the subcommand are ``KEY=value`` pairs: selectors ``METHOD= DATA= TRAINER= EXP=``
and dotted config overrides such as ``data.fold=2 trainer.max_epochs=5``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import re
import sys
import textwrap
from typing import Callable, Sequence

from affectlab.engine.quiet import silence_benign_noise
from affectlab.registry import UnknownNameError
from affectlab.schema import ConfigError

EXIT_USAGE = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for `cat big | head`


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
    from affectlab.config import available, valid_datasets
    from affectlab.methods import METHODS
    from data_modules import DATAMODULES

    print("methods:")
    for name in METHODS.names():
        spec = METHODS.get(name)
        print(f"  {name:<24} task={spec.task:<14} default data={spec.default_data}")
        print(textwrap.fill(summary_of(spec.__doc__), width=100, initial_indent=" " * 4, subsequent_indent=" " * 4))
    print("datasets:")
    for name in DATAMODULES.names():
        dm = DATAMODULES.get(name)
        print(f"  {name:<24} tasks={','.join(dm.tasks)}")
    print("trainer presets:")
    print("  " + ", ".join(available("trainer")))
    print("experiments:")
    print("  " + (", ".join(available("exp")) or "(none)"))
    print("valid combinations (method × dataset for the method's task):")
    for name in METHODS.names():
        spec = METHODS.get(name)
        print(f"  {name:<24} {', '.join(valid_datasets(METHODS.get(name))) or '(none)'}")
    return 0


def plain_text(doc: str | None) -> str:
    """A docstring as a terminal shows it: RST literals (````x````) and roles lose their markup."""
    text = re.sub(r":[a-z]+:`([^`]+)`", r"\1", (doc or "").strip())
    return re.sub(r"`{1,2}([^`]+)`{1,2}", r"\1", text)


def summary_of(doc: str | None) -> str:
    """The first paragraph of a docstring on one line, in plain text."""
    return " ".join(plain_text(doc).split("\n\n")[0].split())


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
    parser.add_argument("run_dir", help="run directory written by affectlab train")
    parser.add_argument("--checkpoint", help="checkpoint to evaluate (default: the run's selected one)")
    _overrides(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="affectlab", description=plain_text(__doc__),
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
        p = sub.add_parser(module.NAME, help=module.HELP, description=plain_text(module.__doc__),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that report a mistake in the user's input (printed as one line, no traceback).
    Imported on demand: ``data_modules`` pulls in Lightning, which ``--help`` and ``list`` do not need."""
    from affectlab.leaderboard.records import RecordError
    from data_modules.frames import DataFormatError, TooManyBadImages

    # a path that is a file where a folder is needed (or the reverse), exists already or may not be written
    paths = (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError)
    return ConfigError, UnknownNameError, *paths, DataFormatError, TooManyBadImages, RecordError


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; ``KEY=VALUE`` words after an option (``sweep FILE --count 3 DATA=toyau``, as
    ``make sweep ARGS=...`` writes them) join the subcommand's overrides instead of being refused."""
    args, extra = parser.parse_known_args(argv)
    stray = [w for w in extra if "=" not in w or w.startswith("-")]
    if stray or (extra and not isinstance(getattr(args, "overrides", None), list)):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    silence_benign_noise()
    level = os.environ.get("AFFECTLAB_LOG", "INFO").upper()
    if level not in LOG_LEVELS:
        print(f"affectlab: error: AFFECTLAB_LOG={os.environ['AFFECTLAB_LOG']!r} is no log level; expected one of "
              f"{', '.join(LOG_LEVELS)}", file=sys.stderr)
        return EXIT_USAGE
    logging.getLogger("affectlab").setLevel(level)
    args = parse_args(build_parser(), argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # the reader of our output went away (`affectlab config … | head`): stop quietly, as cat does; stdout
        # points at /dev/null so that the interpreter's final flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as err:  # noqa: BLE001 - re-raised below unless it is the user's mistake
        if not isinstance(err, _user_errors()):
            raise
        print(f"affectlab {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
