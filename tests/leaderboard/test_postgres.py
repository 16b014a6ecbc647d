"""The same store on a real PostgreSQL server (started by tests/leaderboard/start_postgres.sh).

Set AFFECTLAB_TEST_POSTGRES_URL to the URL that script prints; otherwise the default loopback URL
is tried and the test skips, saying why, when no server answers there.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import uuid

import pytest

from tests.leaderboard.conftest import downgrade_to_pre_run_key_board, make_record

URL = os.environ.get("AFFECTLAB_TEST_POSTGRES_URL",
                     "postgresql+psycopg://affectlab:affectlab@127.0.0.1:54329/affectlab")

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def pg_url():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg", reason="psycopg (the PostgreSQL driver) is not installed")
    try:
        engine = sqlalchemy.create_engine(URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"no PostgreSQL server at {URL} (run tests/leaderboard/start_postgres.sh): "
                    f"{type(err).__name__}: {str(err).splitlines()[0]}")
    return URL


def _writer(url: str, tag: str, worker: int) -> None:
    from affectlab.leaderboard import Store

    store = Store(url)
    for i in range(10):
        store.add(make_record(method=f"{tag}-w{worker}", f1=i / 10))
        store.add(make_record(method=f"{tag}-shared", f1=i / 10))


def test_postgres_store_parallel_writers_and_round_trip(pg_url, tmp_path):
    from affectlab.leaderboard import Store

    tag = uuid.uuid4().hex[:8]  # the server's board is shared between test runs
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(pg_url, tag, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    store = Store(pg_url)
    mine = [r for r in store.records() if r["method"].startswith(tag)]
    assert len(mine) == 3 * 10 + 10
    assert sorted(r["metrics"]["f1_mean"] for r in mine if r["method"] == f"{tag}-shared") == [i / 10 for i in range(10)]
    store.export_jsonl(tmp_path / "pg.jsonl")
    assert store.import_jsonl(tmp_path / "pg.jsonl") == 0


def test_postgres_one_record_per_run_directory_and_stage_also_on_an_older_board(pg_url):
    """Issue #18 item 4 on PostgreSQL: the run_key index, and its addition to a board made before it
    (in a fresh schema, since the server's board is shared between test runs)."""
    import sqlalchemy

    from affectlab.leaderboard import Store

    schema = f"t{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    url = f"{pg_url}?options=-csearch_path%3D{schema}"
    try:
        store = Store(url)
        first = make_record(run_dir=f"/runs/{schema}", stage="supervised")
        assert store.add(first) and not store.add({**first, "timestamp": "later"})
        downgrade_to_pre_run_key_board(store, first)
        store = Store(url)
        assert store.count() == 2 and not store.add({**first, "timestamp": "even later"})
        store.close()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
