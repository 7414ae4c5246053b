"""The run lock (pipeline.warehouse.lock) on real warehouses.

Lease backend: a DuckDB file and a SQLite file in tmp_path. PostgreSQL (advisory lock): runs when
FEEDBACK_TEST_PG_URL is set (see tests/conftest.py), with a real second process that holds the lock and
is then killed with SIGKILL.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from pipeline.errors import ConfigError
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import Warehouse
from pipeline.warehouse.lock import default_holder, run_lock
from pipeline.warehouse.lock_parts import LockInfo, RunLockHeld
from tests.conftest import pg_schema

REPO = Path(__file__).resolve().parents[1]
TABLE = "pipeline_lock"
NAME = "feedback-pipeline"


@pytest.fixture(params=["duckdb", "sqlite"])
def wh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    target = (
        str(tmp_path / "wh.duckdb") if request.param == "duckdb" else f"sqlite:///{tmp_path / 'wh.sqlite'}"
    )
    with open_warehouse(target) as warehouse:
        yield warehouse


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def write_lease(
    wh: Warehouse, *, holder: str, host: str, pid: int, expires_in_s: float, name: str = NAME
) -> None:
    """Write a lease row as another run would have left it."""
    now = utcnow()
    frame = pd.DataFrame(
        {
            "name": pd.Series([name], dtype=object),
            "holder": pd.Series([holder], dtype=object),
            "host": pd.Series([host], dtype=object),
            "pid": pd.Series([pid], dtype="Int64"),
            "acquired_at": pd.Series([now - dt.timedelta(minutes=5)], dtype="datetime64[us]"),
            "heartbeat_at": pd.Series([now - dt.timedelta(seconds=1)], dtype="datetime64[us]"),
            "expires_at": pd.Series([now + dt.timedelta(seconds=expires_in_s)], dtype="datetime64[us]"),
        }
    )
    wh.upsert(TABLE, frame, key=["name"])


def dead_pid() -> int:
    """The pid of a process of this host that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    return proc.pid


def lease_row(wh: Warehouse, name: str = NAME) -> pd.Series | None:
    frame = wh.read(TABLE, where={"name": [name]})
    return None if frame.empty else frame.iloc[0]


def heartbeat_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("run-lock-heartbeat")]


# ---- lease backend (DuckDB, SQLite) ------------------------------------------------------------------


def test_second_holder_refused_then_free_after_exit(wh: Warehouse) -> None:
    with run_lock(wh, holder="run-a pid 1 on x") as info:
        assert info == LockInfo(name=NAME, holder="run-a pid 1 on x", backend="lease")
        row = lease_row(wh)
        assert row is not None and row["holder"] == "run-a pid 1 on x"
        assert row["host"] == socket.gethostname() and row["pid"] == os.getpid()
        with pytest.raises(RunLockHeld) as caught, run_lock(wh, holder="run-b"):
            pytest.fail("the second run must not get the lock")
        message = str(caught.value)
        assert caught.value.holder == "run-a pid 1 on x"
        assert "run-a pid 1 on x" in message and "since" in message and "\n" not in message
        assert "wait" in message.lower() and "taken over" in message

    assert lease_row(wh) is None
    assert not heartbeat_threads()
    with run_lock(wh, holder="run-b") as info:
        assert info.holder == "run-b"


def test_released_when_the_block_raises(wh: Warehouse) -> None:
    with pytest.raises(ValueError, match="boom"), run_lock(wh, holder="run-a"):
        raise ValueError("boom")
    assert lease_row(wh) is None
    with run_lock(wh, holder="run-b"):
        pass


def test_different_names_do_not_block_each_other(wh: Warehouse) -> None:
    with run_lock(wh, holder="run-a", name="enrich"), run_lock(wh, holder="run-b", name="retrain"):
        assert len(wh.read(TABLE)) == 2


def test_dead_process_on_this_host_taken_over_at_once(wh: Warehouse) -> None:
    write_lease(wh, holder="killed-run", host=socket.gethostname(), pid=dead_pid(), expires_in_s=3600)
    with run_lock(wh, holder="run-b"):
        row = lease_row(wh)
        assert row is not None and row["holder"] == "run-b"


def test_live_process_on_this_host_refused(wh: Warehouse) -> None:
    write_lease(wh, holder="live-run", host=socket.gethostname(), pid=os.getppid(), expires_in_s=3600)
    with pytest.raises(RunLockHeld, match="live-run"), run_lock(wh, holder="run-b"):
        pass
    assert lease_row(wh)["holder"] == "live-run"  # a refused run leaves the lease alone


def test_expired_lease_of_another_host_taken_over(wh: Warehouse) -> None:
    write_lease(wh, holder="old-run", host="other-host", pid=4242, expires_in_s=-1)
    with run_lock(wh, holder="run-b"):
        assert lease_row(wh)["holder"] == "run-b"


def test_fresh_lease_of_another_host_refused(wh: Warehouse) -> None:
    write_lease(
        wh, holder="remote-run pid 4242 on other-host", host="other-host", pid=4242, expires_in_s=3600
    )
    with pytest.raises(RunLockHeld) as caught, run_lock(wh, holder="run-b"):
        pass
    message = str(caught.value)
    assert caught.value.holder == "remote-run pid 4242 on other-host"
    assert "remote-run pid 4242 on other-host" in message and "since" in message
    assert "lease expires" in message and "\n" not in message


def test_own_holder_string_taken_over(wh: Warehouse) -> None:
    write_lease(wh, holder="run-a", host="other-host", pid=4242, expires_in_s=3600)
    with run_lock(wh, holder="run-a"):
        assert lease_row(wh)["host"] == socket.gethostname()


def test_wait_until_the_holder_releases(wh: Warehouse, caplog: pytest.LogCaptureFixture) -> None:
    holding = threading.Event()

    def hold() -> None:
        with run_lock(wh, holder="run-a"):
            holding.set()
            time.sleep(1.0)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        assert holding.wait(10)
        start = time.monotonic()
        with (
            caplog.at_level(logging.INFO, logger="pipeline.warehouse.lock"),
            run_lock(wh, holder="run-b", wait_s=10, poll_s=0.1),
        ):
            waited = time.monotonic() - start
            assert lease_row(wh)["holder"] == "run-b"
    finally:
        thread.join(10)
    assert 0.3 < waited < 5
    messages = [r.getMessage() for r in caplog.records]
    assert any("waiting up to 10 s" in m and "run-a" in m for m in messages)
    assert any(m.startswith("Took run lock") and "after waiting" in m for m in messages)


def test_wait_gives_up_after_wait_s(wh: Warehouse) -> None:
    write_lease(wh, holder="remote-run", host="other-host", pid=4242, expires_in_s=3600)
    start = time.monotonic()
    with (
        pytest.raises(RunLockHeld, match=r"still held by .* after waiting 0\.5 s") as caught,
        run_lock(wh, holder="run-b", wait_s=0.5, poll_s=0.1),
    ):
        pass
    assert 0.5 <= time.monotonic() - start < 5
    assert caught.value.holder == "remote-run"


def test_heartbeat_extends_the_lease(wh: Warehouse) -> None:
    with run_lock(wh, holder="run-a", lease_s=5, heartbeat_s=0.2):
        first = lease_row(wh)
        time.sleep(0.6)
        later = lease_row(wh)
        assert len(heartbeat_threads()) == 1
    assert later["expires_at"] > first["expires_at"]
    assert later["heartbeat_at"] > first["heartbeat_at"]
    assert later["acquired_at"] == first["acquired_at"]
    assert not heartbeat_threads()  # stopped on exit


def test_invalid_arguments(wh: Warehouse) -> None:
    with (
        pytest.raises(ConfigError, match="shorter than lease_s"),
        run_lock(wh, holder="a", lease_s=1, heartbeat_s=1),
    ):
        pass
    with pytest.raises(ConfigError, match="holder"), run_lock(wh, holder=" "):
        pass
    with pytest.raises(ConfigError, match="wait_s"), run_lock(wh, holder="a", wait_s=-1):
        pass
    assert not wh.table_exists(TABLE)


def test_default_holder_and_pickling() -> None:
    holder = default_holder("run-20260101")
    assert holder == f"run-20260101 pid {os.getpid()} on {socket.gethostname()}"
    assert default_holder() == f"pid {os.getpid()} on {socket.gethostname()}"
    copy = pickle.loads(pickle.dumps(RunLockHeld("held by x", holder="x")))
    assert isinstance(copy, RunLockHeld) and copy.holder == "x" and str(copy) == "held by x"


# ---- PostgreSQL: advisory lock -----------------------------------------------------------------------

HOLDER_SCRIPT = """
import sys, time
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.lock import run_lock

url, schema, holder = sys.argv[1:4]
with open_warehouse(url, schema=schema) as wh, run_lock(wh, holder=holder):
    print("locked", flush=True)
    time.sleep(60)
"""


def start_holder(url: str, schema: str, holder: str, log: Path) -> subprocess.Popen[str]:
    """Start a process that takes the lock; return once it says "locked"."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER_SCRIPT, url, schema, holder],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
            env=env,
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        line = proc.stdout.readline() if ready else ""
        if line.strip() == "locked":
            return proc
        if not line:
            break
    proc.kill()
    proc.wait(10)
    raise AssertionError(f"the holder process did not take the lock: {log.read_text()}")


def stop(proc: subprocess.Popen[str] | None) -> None:
    if proc is not None and proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def sessions_named(url: str, application_name: str) -> int:
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :a"),
                    {"a": application_name},
                ).scalar()
            )
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_pg_lock_of_a_killed_process_is_released(pg_url: str, tmp_path: Path) -> None:
    holder = f"holder-{uuid.uuid4().hex[:8]} pid ? on test"
    proc = None
    with pg_schema(pg_url, "lock") as schema, open_warehouse(pg_url, schema=schema) as wh:
        try:
            proc = start_holder(pg_url, schema, holder, tmp_path / "holder.log")
            with pytest.raises(RunLockHeld) as caught, run_lock(wh, holder="run-b"):
                pass
            message = str(caught.value)
            assert caught.value.holder == holder
            assert holder in message and "since" in message and "\n" not in message
            assert "session ends" in message

            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            start = time.monotonic()
            with run_lock(wh, holder="run-b", wait_s=10, poll_s=0.1) as info:
                assert info.backend == "advisory"
            assert time.monotonic() - start < 10
        finally:
            stop(proc)


@pytest.mark.postgres
def test_pg_schemas_do_not_block_each_other(pg_url: str) -> None:
    with (
        pg_schema(pg_url, "lock") as first,
        pg_schema(pg_url, "lock") as second,
        open_warehouse(pg_url, schema=first) as wh1,
        open_warehouse(pg_url, schema=first) as wh1_again,
        open_warehouse(pg_url, schema=second) as wh2,
    ):
        with run_lock(wh1, holder="run-a") as info, run_lock(wh2, holder="run-b"):
            assert info == LockInfo(name=NAME, holder="run-a", backend="advisory")
            # Same schema, another session: refused, and the holder is named.
            with pytest.raises(RunLockHeld, match="run-a") as caught, run_lock(wh1_again, holder="run-c"):
                pass
            assert caught.value.holder == "run-a"
        # Released on exit: the other warehouse object gets it now.
        with run_lock(wh1_again, holder="run-c"):
            pass


@pytest.mark.postgres
def test_pg_lock_connection_closed_on_exit(pg_url: str) -> None:
    holder = f"holder-{uuid.uuid4().hex[:8]}"
    with pg_schema(pg_url, "lock") as schema, open_warehouse(pg_url, schema=schema) as wh:
        with pytest.raises(RuntimeError), run_lock(wh, holder=holder):
            assert sessions_named(pg_url, holder) == 1
            raise RuntimeError("run failed")
        deadline = time.monotonic() + 5
        while sessions_named(pg_url, holder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sessions_named(pg_url, holder) == 0
        with run_lock(wh, holder="run-b"):
            pass
