"""Results store: append-only, deduplicated, safe with parallel writers, JSONL round trip."""
from __future__ import annotations

import json
import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest

from affectlab.leaderboard import RecordError, Store, open_store, record_result
from tests.leaderboard.conftest import downgrade_to_pre_run_key_board, make_record


def _url(tmp_path):
    return f"sqlite:///{tmp_path / 'board.sqlite'}"


def test_add_is_append_only_and_deduplicated(tmp_path):
    store = Store(_url(tmp_path))
    rec = make_record(f1=0.4)
    assert store.add(rec) is True
    assert store.add(dict(rec)) is False  # same content: same record id
    assert store.add(make_record(f1=0.6)) is True
    assert store.count() == 2
    assert [r["metrics"]["f1_mean"] for r in store.records()] == [0.4, 0.6]
    assert not hasattr(store, "delete") and not hasattr(store, "update")


@pytest.mark.parametrize("bad, message", [
    ({"metrics": {}}, "non-empty"),
    ({"metrics": {"test/f1_mean": 0.5}}, "stage prefix"),
    ({"metrics": {"f1_mean": "high"}}, "non-numeric"),
    ({"task": "pose"}, "not one of"),
    ({"method": None}, "missing required"),
    ({"schema_version": 99}, "newer"),
])
def test_bad_records_are_refused_with_reason(tmp_path, bad, message):
    with pytest.raises(RecordError, match=message):
        Store(_url(tmp_path)).add({**make_record(), **bad})


def test_jsonl_export_import_round_trip(tmp_path):
    a, b = Store(f"sqlite:///{tmp_path / 'a.sqlite'}"), Store(f"sqlite:///{tmp_path / 'b.sqlite'}")
    for f1 in (0.1, 0.2, 0.3):
        a.add(make_record(f1=f1))
    b.add(make_record(f1=0.3))  # already on the other machine's board
    b.add(make_record(f1=0.9))
    assert a.export_jsonl(tmp_path / "a.jsonl") == 3
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["record_id"] for line in lines)
    assert b.import_jsonl(tmp_path / "a.jsonl") == 2
    assert b.import_jsonl(tmp_path / "a.jsonl") == 0
    assert sorted(r["metrics"]["f1_mean"] for r in b.records()) == [0.1, 0.2, 0.3, 0.9]


def test_import_names_the_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(make_record()) + "\n{not json\n")
    with pytest.raises(RecordError, match=r"x.jsonl:2"):
        Store(_url(tmp_path)).import_jsonl(path)


def test_import_one_runs_results_json(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.json").write_text(json.dumps(make_record(f1=0.42), indent=2))  # as the runner writes it
    board = Store(_url(tmp_path))
    assert board.import_jsonl(run / "results.json") == 1
    assert board.import_jsonl(run / "results.json") == 0
    assert [r["metrics"]["f1_mean"] for r in board.records()] == [0.42]
    (run / "broken.json").write_text("{")
    with pytest.raises(RecordError, match="broken.json"):
        board.import_jsonl(run / "broken.json")


def test_newer_board_schema_is_refused(tmp_path):
    store = Store(_url(tmp_path))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE board_meta SET value='7' WHERE key='schema_version'")
    with pytest.raises(RecordError, match="schema version 7"):
        Store(_url(tmp_path))


def _writer(url: str, worker: int, n: int) -> None:
    store = Store(url)
    for i in range(n):
        store.add(make_record(method=f"w{worker}", f1=i / 100))
        store.add(make_record(method="shared", f1=i / 100))  # every worker writes these: kept once
    store.add_many([make_record(method="bulk", f1=i / 100) for i in range(n)])


def test_parallel_writers_lose_and_duplicate_nothing(tmp_path):
    url = _url(tmp_path)
    workers, n = 4, 15
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, w, n)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    records = Store(url).records()
    by_method: dict[str, list[float]] = {}
    for r in records:
        by_method.setdefault(r["method"], []).append(r["metrics"]["f1_mean"])
    expected = sorted(i / 100 for i in range(n))
    for w in range(workers):
        assert sorted(by_method[f"w{w}"]) == expected
    assert sorted(by_method["shared"]) == expected
    assert sorted(by_method["bulk"]) == expected
    assert len(records) == (workers + 2) * n


def test_record_result_honours_config(tmp_path, monkeypatch):
    url = _url(tmp_path)
    cfg = {"sweep_id": "local-abc", "leaderboard": {"enabled": True, "url": url, "tags": ["smoke"]}}
    record_result(make_record(f1=0.1), cfg)
    record_result(make_record(f1=0.2), {**cfg, "leaderboard": {**cfg["leaderboard"], "enabled": False}})
    monkeypatch.setenv("RANK", "1")
    record_result(make_record(f1=0.3), cfg)  # not rank 0: nothing written
    monkeypatch.setenv("RANK", "0")
    records = open_store(url).records()
    assert [r["metrics"]["f1_mean"] for r in records] == [0.1]
    assert records[0]["sweep_id"] == "local-abc" and records[0]["tags"] == ["smoke"]


def test_record_result_with_omegaconf_cfg(tmp_path):
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({"sweep_id": None, "leaderboard": {"enabled": True, "url": _url(tmp_path), "tags": []}})
    record_result(make_record(), cfg)
    assert Store(_url(tmp_path)).count() == 1


def test_one_record_per_run_directory_and_stage(tmp_path):
    """Issue #18 item 4: re-testing a run (new timestamp, new metrics) must not add a second row."""
    store = Store(_url(tmp_path))
    first = make_record(run_dir="/runs/baseline/bp4d/r1", stage="supervised")
    assert store.add(first)
    retest = {**first, "timestamp": "2026-12-01T10:00:00+00:00", "metrics": {"f1_mean": 0.9}}
    assert not store.add(retest)
    assert store.add({**first, "stage": "probe"})  # another evaluated stage of the same run directory
    assert store.add_many([retest, {**first, "run_dir": "/runs/baseline/bp4d/r2"}]) == 1
    assert store.count() == 3


def test_board_made_before_run_keys_gets_the_unique_key(tmp_path):
    url = _url(tmp_path)
    store = Store(url)
    first = make_record(run_dir="/runs/x", stage="supervised")
    store.add(first)
    downgrade_to_pre_run_key_board(store, first)
    store = Store(url)
    assert store.count() == 2  # history kept as it was
    assert not store.add({**first, "timestamp": "even later"})
    assert store.add(make_record(run_dir="/runs/y", stage="supervised"))


def test_rank_zero_is_read_from_the_environment_without_importing_torch(monkeypatch):
    from affectlab.leaderboard import is_rank_zero

    code = "import sys; from affectlab.leaderboard import is_rank_zero; is_rank_zero(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": "src:.", "PATH": ""}, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"  # a leaderboard command does not pay the torch import
    for var in ("RANK", "SLURM_PROCID", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        monkeypatch.delenv(var, raising=False)
    assert is_rank_zero()
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert not is_rank_zero()
    monkeypatch.setenv("RANK", "0")  # RANK is read first
    assert is_rank_zero()
