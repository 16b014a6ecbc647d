"""The shared results store: one record per evaluation, ranked per dataset and task.

``record_result(record, cfg)`` is called by the runner after it writes ``results.json``;
``Store`` reads and writes a board on any SQLAlchemy URL; ``render`` turns a board into
Markdown, HTML and PNG tables. See docs/leaderboard.md.
"""
from __future__ import annotations

import os
import sys
from typing import Any

from affectlab.leaderboard.records import SCHEMA_VERSION, RecordError, record_id, validate_record
from affectlab.leaderboard.store import Store, default_url

__all__ = ["SCHEMA_VERSION", "RecordError", "Store", "default_url", "is_rank_zero", "open_store",
           "record_id", "record_result", "validate_record"]


def is_rank_zero() -> bool:
    """True in the process that writes records: global rank 0 (or no distributed job at all)."""
    # a process that has not imported torch has no process group: importing it here only to ask would
    # cost seconds in every leaderboard command
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    for var in ("RANK", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var) not in (None, ""):
            return int(os.environ[var]) == 0
    return True


def _section(cfg: Any, key: str, default: Any = None) -> Any:
    if cfg is None:
        return default
    if isinstance(cfg, dict):
        return cfg.get(key, default)
    return getattr(cfg, key, default) if key in cfg else default


def board_url(url: str | None = None) -> str:
    """The board a command writes to: ``url``, else AFFECTLAB_LEADERBOARD_URL, else the default SQLite file."""
    return url or os.environ.get("AFFECTLAB_LEADERBOARD_URL") or default_url()


def open_store(url: str | None = None) -> Store:
    """The board at ``url``; None → the SQLite file ``results/leaderboard.sqlite``."""
    return Store(board_url(url))


def record_result(record: dict[str, Any], cfg: Any = None) -> bool:
    """Append the results record of a finished evaluation to the configured board (rank 0 only);
    False when nothing was added (not rank 0, board disabled, or the run is on the board already).

    Respects ``cfg.leaderboard.enabled`` and ``cfg.leaderboard.url``, and tags the record with
    ``cfg.sweep_id`` and ``cfg.leaderboard.tags``.
    """
    if not is_rank_zero():
        return False
    board = _section(cfg, "leaderboard", None)
    if board is not None and not _section(board, "enabled", True):
        return False
    record = dict(record)
    sweep_id = _section(cfg, "sweep_id") or os.environ.get("AFFECTLAB_SWEEP_ID")
    if sweep_id and not record.get("sweep_id"):
        record["sweep_id"] = str(sweep_id)
    tags = list(_section(board, "tags", None) or []) if board is not None else []
    if tags:
        record["tags"] = sorted(set(record.get("tags", [])) | {str(t) for t in tags})
    store = open_store(_section(board, "url", None) if board is not None else None)
    try:
        return store.add(record)
    finally:
        store.close()
