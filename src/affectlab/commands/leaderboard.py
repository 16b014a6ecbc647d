"""``affectlab leaderboard [render|export FILE|import FILE] [DATA=d] [--all]``."""
from __future__ import annotations

import argparse
import os

from affectlab.schema import ConfigError

NAME = "leaderboard"
HELP = "render the results board (Markdown, HTML, PNG) or move its records as JSONL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("words", nargs="*",
                        help="[render] [DATA=d] | export FILE.jsonl | import FILE.jsonl|RUN_DIR/results.json ...")
    parser.add_argument("--url", default=None, help="SQLAlchemy URL of the board (default results/leaderboard.sqlite)")
    parser.add_argument("--out", default="results", help="folder for LEADERBOARD.md, leaderboard.html, plots/")
    parser.add_argument("--all", action="store_true", help="every record instead of each method's best")
    parser.add_argument("--include-truncated", action="store_true",
                        help="also rank runs whose training or evaluation was truncated "
                             "(trainer.limit_*, data.limit_items)")
    parser.add_argument("--no-png", action="store_true")
    parser.add_argument("--no-wandb", action="store_true", help="do not log the tables to wandb (logged when online)")


def run(args: argparse.Namespace) -> int:
    from affectlab.leaderboard import open_store

    words = list(args.words)
    action = words.pop(0) if words and words[0] in ("render", "export", "import") else "render"
    if action == "export" and len(words) != 1:
        raise ConfigError("usage: affectlab leaderboard export FILE.jsonl")
    if action == "import" and not words:
        raise ConfigError("usage: affectlab leaderboard import FILE.jsonl|RUN_DIR/results.json ...")
    dataset = None
    if action == "render":
        for word in words:
            key, _, value = word.partition("=")
            if key != "DATA" or not value:
                raise ConfigError(f"unknown argument {word!r}; expected DATA=<dataset>")
            dataset = value
    if action != "import":
        _require_existing_board(args.url)
    store = open_store(args.url)
    try:
        if action == "export":
            print(f"exported {store.export_jsonl(words[0])} records to {words[0]}")
            return 0
        if action == "import":
            for word in words:
                print(f"imported {store.import_jsonl(word)} new records from {word}")
            return 0
        from affectlab.leaderboard.render import log_wandb_tables, render

        records = store.records()
        on_board = sorted({str(r.get("dataset")) for r in records})
        if dataset is not None and records and dataset not in on_board:
            raise ConfigError(f"DATA={dataset}: no records for that dataset; on the board: {', '.join(on_board)}")
        out = render(records, args.out, dataset=dataset, all_runs=args.all, png=not args.no_png,
                     include_truncated=args.include_truncated)
        print(f"{len(out['tables'])} tables → {out['markdown']}, {out['html']}")
        if not args.no_wandb:
            from affectlab.sweeps.online import wandb_online

            if wandb_online():
                print(f"logged to {log_wandb_tables(out['tables'], directory=args.out)}")
            else:
                print("wandb is offline: tables not logged (set WANDB_API_KEY to log them as wandb Tables)")
        return 0
    finally:
        store.close()


def _require_existing_board(url: str | None) -> None:
    """render and export only read: a board named explicitly (``--url`` or AFFECTLAB_LEADERBOARD_URL) whose
    SQLite file does not exist is a mistyped path, not an empty board to create and render."""
    from affectlab.leaderboard.store import sqlite_file

    url = url or os.environ.get("AFFECTLAB_LEADERBOARD_URL")
    db_file = sqlite_file(url) if url else None
    if db_file is not None and not db_file.is_file():
        raise ConfigError(f"{db_file}: no leaderboard database there (render and export read an existing board; "
                          "`affectlab leaderboard import` or a training run creates one)")
