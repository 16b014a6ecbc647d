"""Fixtures of the leaderboard, CV and sweep tests: a fake training command and fake records."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

FAKE_TRAIN = Path(__file__).with_name("fake_train.py")


@pytest.fixture
def fake_train_command() -> list[str]:
    return [sys.executable, str(FAKE_TRAIN)]


def make_record(method="m", dataset="disfa", task="au_occurrence", f1=0.5, fold=1, source="synthetic-tiny-seed0",
                **extra):
    aus = {"au01": f1 - 0.1, "au02": f1 + 0.1}
    metrics = {f"f1_{k}": v for k, v in aus.items()}
    metrics["f1_mean"] = f1
    if task == "expression":
        metrics = {"uar": f1, "war": f1 + 0.1, "recall_happy": f1 + 0.2, "recall_sad": f1 - 0.2}
    return {"schema_version": 1, "method": method, "dataset": dataset, "task": task,
            "protocol": f"{dataset}/3fold", "fold": fold, "split": "test", "selected_on": "val",
            "metrics": metrics, "seed": 0, "git_commit": None, "config_hash": "h", "data_source": source,
            "run_dir": f"runs/{method}/{fold}/{f1}", "timestamp": "2026-11-23T12:00:00+00:00", **extra}


def downgrade_to_pre_run_key_board(store, record: dict) -> None:
    """Turn ``store``'s board into the layout affectlab wrote before run keys, holding ``record``
    twice (the duplicate that layout allowed: a re-test of the same run); closes the store."""
    from sqlalchemy import insert

    from affectlab.leaderboard import validate_record
    from affectlab.leaderboard.store import records_table

    with store.engine.begin() as conn:
        row = store._row(validate_record({**record, "timestamp": "later"}))
        conn.execute(insert(records_table).values(**{**row, "run_key": None}))
        conn.exec_driver_sql("DROP INDEX uq_records_run_key")
        conn.exec_driver_sql("ALTER TABLE records DROP COLUMN run_key")
    store.close()


@pytest.fixture
def record_factory():
    return make_record
