"""The same store on a real PostgreSQL server (started by tests/leaderboard/start_postgres.sh).

Set AFFECTLAB_TEST_POSTGRES_URL to the URL that script prints; otherwise the default loopback URL
is tried and the test skips, saying why, when no server answers there.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import uuid

import pytest

from tests.leaderboard.conftest import make_record

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
