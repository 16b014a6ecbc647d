"""An append-only, transactional results store on any SQLAlchemy URL.

Default: SQLite at ``results/leaderboard.sqlite``; a team points ``leaderboard.url`` at a shared
PostgreSQL server. Rows are only ever inserted. Each record has a unique ``record_id`` (see
:func:`records.record_id`), so concurrent or repeated writes of the same record add it once; a
run's record also has a unique ``run_key`` (run directory and evaluated stage, :func:`records.run_key`),
so re-testing a run never adds a second row. Each insert is one transaction, so parallel
writers (DDP ranks, sweep trials, array jobs) lose nothing. SQLite writers take the write lock
up front (``BEGIN IMMEDIATE``) and wait on it, instead of failing when a read lock cannot be
upgraded.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import (
    Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, create_engine, event, insert, inspect,
    select, update,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, IntegrityError, OperationalError, ProgrammingError

from affectlab.leaderboard.records import (
    SCHEMA_VERSION, RecordError, canonical_json, main_metric, record_id, run_key, source_kind, validate_record,
)

DEFAULT_PATH = Path("results") / "leaderboard.sqlite"

metadata = MetaData()

records_table = Table(
    "records", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(64), nullable=False, unique=True),
    Column("schema_version", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("method", String(128), nullable=False, index=True),
    Column("dataset", String(64), nullable=False, index=True),
    Column("task", String(32), nullable=False),
    Column("protocol", String(128)),
    Column("fold", Integer),
    Column("split", String(16)),
    Column("selected_on", String(16)),
    Column("data_source", String(128)),
    Column("synthetic", Boolean, nullable=False),
    Column("main_metric", Float),
    Column("seed", Integer),
    Column("git_commit", String(64)),
    Column("config_hash", String(64)),
    Column("sweep_id", String(128), index=True),
    Column("wandb_run_id", String(128)),
    Column("host", String(256)),
    Column("timestamp", String(64)),
    Column("inserted_at", String(64), nullable=False),
    Column("body", Text, nullable=False),
    # one record per (run directory, evaluated stage): see records.run_key; NULL for cv aggregates
    Column("run_key", String(64)),
    Index("uq_records_run_key", "run_key", unique=True),
)

trials_table = Table(
    "sweep_trials", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trial_id", String(64), nullable=False, unique=True),
    Column("sweep_id", String(128), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("metric", Float),
    Column("run_dir", Text),
    Column("inserted_at", String(64), nullable=False),
    Column("body", Text, nullable=False),
)

meta_table = Table(
    "board_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)


def default_url(results_dir: str | Path | None = None) -> str:
    path = Path(results_dir) / DEFAULT_PATH.name if results_dir else DEFAULT_PATH
    return f"sqlite:///{path}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def sqlite_file(url: str) -> Path | None:
    """The database file of a file-based SQLite URL; None for other databases and in-memory SQLite."""
    if not url.startswith("sqlite"):
        return None
    db_path = url.split("///", 1)[-1]
    return Path(db_path) if db_path and db_path != ":memory:" and db_path != url else None


def check_url(url: str) -> None:
    """A RecordError when ``url`` is no SQLAlchemy database URL (so a typo fails before a run trains)."""
    try:
        make_url(url)
    except ArgumentError:
        raise RecordError(f"leaderboard URL {url!r} cannot be parsed; expected e.g. "
                          "sqlite:///results/leaderboard.sqlite or postgresql://user:password@host/db") from None


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        db_file = sqlite_file(url)
        if db_file is not None:
            db_file.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 120})

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_conn, _record):  # pragma: no cover - driver hook
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn):  # pragma: no cover - driver hook
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


class Store:
    """The leaderboard's records on one SQLAlchemy URL (append-only)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        check_url(self.url)
        self.engine = _make_engine(self.url)
        try:
            self._create_schema()
        except (DatabaseError, OperationalError) as err:  # not a database file, server unreachable, no rights
            self.engine.dispose()
            detail = str(getattr(err, "orig", err)).splitlines()[0]
            raise RecordError(f"leaderboard at {self.url} cannot be opened: {detail}") from None

    def _create_schema(self) -> None:
        # Several processes may open a fresh board at once: CREATE races are retried.
        for attempt in range(10):
            try:
                metadata.create_all(self.engine, checkfirst=True)
                self._add_run_keys()
                break
            except (OperationalError, ProgrammingError, IntegrityError):
                if attempt == 9:
                    raise
                time.sleep(0.1 * (attempt + 1))
        with self.engine.begin() as conn:
            row = conn.execute(select(meta_table.c.value).where(meta_table.c.key == "schema_version")).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(insert(meta_table).values(key="schema_version", value=str(SCHEMA_VERSION)))
                except IntegrityError:
                    pass
            elif int(row[0]) > SCHEMA_VERSION:
                raise RecordError(
                    f"leaderboard at {self.url} has schema version {row[0]}, newer than this affectlab "
                    f"({SCHEMA_VERSION}); upgrade affectlab to write to it"
                )

    def _add_run_keys(self) -> None:
        """Give a board made before run keys existed the ``run_key`` column and its unique index.
        Its rows get their keys, oldest first; a later duplicate of a run (what re-testing a
        finished run used to add) keeps no key and stays on the board as it was."""
        with self.engine.begin() as conn:
            if "run_key" in {c["name"] for c in inspect(conn).get_columns("records")}:
                return
            conn.exec_driver_sql("ALTER TABLE records ADD COLUMN run_key VARCHAR(64)")
            seen: set[str] = set()
            rows = conn.execute(select(records_table.c.id, records_table.c.body).order_by(records_table.c.id)).all()
            for row_id, body in rows:
                key = run_key(json.loads(body))
                if key and key not in seen:
                    seen.add(key)
                    conn.execute(update(records_table).where(records_table.c.id == row_id).values(run_key=key))
            conn.exec_driver_sql("CREATE UNIQUE INDEX IF NOT EXISTS uq_records_run_key ON records (run_key)")

    # ------------------------------------------------------------------ writing
    def _row(self, record: dict[str, Any]) -> dict[str, Any]:
        metric = record["metrics"].get(main_metric(record["task"]))
        fold = record.get("fold")
        return dict(
            record_id=record_id(record),
            schema_version=record["schema_version"],
            kind=record["kind"],
            method=record["method"],
            dataset=record["dataset"],
            task=record["task"],
            protocol=record.get("protocol"),
            fold=int(fold) if isinstance(fold, int) else None,
            split=record.get("split"),
            selected_on=record.get("selected_on"),
            data_source=record.get("data_source"),
            synthetic=source_kind(record) == "synthetic",
            main_metric=metric,
            seed=record.get("seed") if isinstance(record.get("seed"), int) else None,
            git_commit=record.get("git_commit"),
            config_hash=record.get("config_hash"),
            sweep_id=record.get("sweep_id"),
            wandb_run_id=record.get("wandb_run_id"),
            host=record.get("host"),
            timestamp=record.get("timestamp"),
            inserted_at=_now(),
            body=canonical_json(record),
            run_key=run_key(record),
        )

    def add(self, record: dict[str, Any]) -> bool:
        """Append one record; False when the board already holds it (same ``record_id``) or a record
        of the same run directory and stage."""
        return self._add_row(self._row(validate_record(record)))

    def add_many(self, records: Iterable[dict[str, Any]]) -> int:
        """Append records not yet on the board (all in one transaction); returns how many were new."""
        rows = [self._row(validate_record(r, where=f"record {i + 1}")) for i, r in enumerate(records)]
        try:
            with self.engine.begin() as conn:
                ids = [r["record_id"] for r in rows]
                known = set()
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    known.update(conn.execute(
                        select(records_table.c.record_id).where(records_table.c.record_id.in_(chunk))
                    ).scalars())
                new, seen = [], set(known)
                for row in rows:
                    if row["record_id"] not in seen:
                        seen.add(row["record_id"])
                        new.append(row)
                if new:
                    conn.execute(insert(records_table), new)
                return len(new)
        except IntegrityError:  # a concurrent writer inserted one of them meanwhile
            return sum(self._add_row(row) for row in rows)

    def _add_row(self, row: dict[str, Any]) -> bool:
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(records_table).values(**row))
        except IntegrityError:
            return False
        return True

    def add_trial(self, sweep_id: str, trial: dict[str, Any]) -> bool:
        """Append the outcome of one sweep trial (finished, failed or stopped)."""
        body = canonical_json(trial)
        row = dict(
            trial_id=record_id({"sweep_id": sweep_id, **trial}),
            sweep_id=sweep_id,
            name=str(trial["name"]),
            state=str(trial["state"]),
            metric=trial.get("metric"),
            run_dir=trial.get("run_dir"),
            inserted_at=_now(),
            body=body,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(trials_table).values(**row))
        except IntegrityError:
            return False
        return True

    # ------------------------------------------------------------------ reading
    def records(self, dataset: str | None = None, method: str | None = None,
                sweep_id: str | None = None) -> list[dict[str, Any]]:
        """All records (oldest first), optionally filtered; each is the stored JSON body."""
        query = select(records_table.c.body).order_by(records_table.c.id)
        if dataset:
            query = query.where(records_table.c.dataset == dataset)
        if method:
            query = query.where(records_table.c.method == method)
        if sweep_id:
            query = query.where(records_table.c.sweep_id == sweep_id)
        with self.engine.connect() as conn:
            return [json.loads(body) for body in conn.execute(query).scalars()]

    def trials(self, sweep_id: str | None = None) -> list[dict[str, Any]]:
        query = select(trials_table.c.body).order_by(trials_table.c.id)
        if sweep_id:
            query = query.where(trials_table.c.sweep_id == sweep_id)
        with self.engine.connect() as conn:
            return [json.loads(body) for body in conn.execute(query).scalars()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(records_table.c.id)).all())

    # ------------------------------------------------------------------ JSONL
    def export_jsonl(self, path: str | Path) -> int:
        """Write every record as one JSON line (oldest first); returns the number written."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rows = self.records()
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w") as fh:
            for record in rows:
                record.setdefault("record_id", record_id(record))
                fh.write(canonical_json(record) + "\n")
        tmp.replace(path)
        return len(rows)

    def import_jsonl(self, path: str | Path) -> int:
        """Append the records of a JSONL file (or of one run's ``results.json``) that are not yet on
        the board; returns how many."""
        return self.add_many(read_records(path))

    def close(self) -> None:
        self.engine.dispose()


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Validated records of a JSONL file (one per line) or of one run's ``results.json``."""
    path = Path(path)
    single = path.suffix == ".json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {'results' if single else 'JSONL'} file")
    text = path.read_text()
    chunks = [(str(path), text)] if single else [
        (f"{path}:{lineno}", line) for lineno, line in enumerate(text.splitlines(), 1) if line.strip()]
    for where, chunk in chunks:
        try:
            record = json.loads(chunk)
        except json.JSONDecodeError as err:
            raise RecordError(f"{where}: not valid JSON ({err.msg})") from None
        yield validate_record(record, where=where)
