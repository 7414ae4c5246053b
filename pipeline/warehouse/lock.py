"""One enrichment / refit / retrain run at a time: a run lock kept in the warehouse.

Two runs writing the same warehouse at once would interleave their watermarks and overwrite each
other's outputs, so every run takes this lock first::

    with open_warehouse(url) as wh, run_lock(wh, holder=default_holder(run_id)):
        ...  # the run

How the lock is kept depends on the warehouse:

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) on one dedicated connection,
  held for the whole run. The connection's ``application_name`` is set to the holder string, so a
  refused run can say who holds the lock (``pg_locks`` joined to ``pg_stat_activity``). When the
  holding process dies, even by ``kill -9``, PostgreSQL ends its session and releases the lock: a
  stale lock cannot exist.
* Every other warehouse (DuckDB, SQLite ...): a lease row in a small table (``pipeline_lock``) that a
  background thread renews while the run lasts. A lease is free when it expired, when its process ran
  on this host and is gone (a killed run is taken over at once), or when it carries our own holder
  string. The check-and-take runs in one ``Warehouse.transaction()`` where the warehouse has one. Hosts
  compare their own UTC clocks with the lease times: keep ``lease_s`` well above any clock skew.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError
from pipeline.warehouse.base import check_identifier
from pipeline.warehouse.lock_advisory import _advisory_granted, _AdvisoryLock
from pipeline.warehouse.lock_lease import _LeaseLock
from pipeline.warehouse.lock_parts import (
    LockInfo,
    RunLockHeld,
    _check_seconds,
    _check_text,
    _Lock,
    _Refusal,
    _utcnow,
)

if TYPE_CHECKING:
    from pipeline.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

__all__ = ["LockInfo", "RunLockHeld", "default_holder", "run_lock"]


def default_holder(run_id: str | None = None) -> str:
    """A holder string that tells an operator which process holds the lock.

    Args:
        run_id: The run's id, put first when given.

    Returns:
        E.g. ``"run-20260102-0304 pid 1234 on myhost"``, or ``"pid 1234 on myhost"`` without a run id.
    """
    where = f"pid {os.getpid()} on {socket.gethostname()}"
    return f"{run_id} {where}" if run_id else where


@contextmanager
def run_lock(
    wh: Warehouse,
    *,
    holder: str,
    name: str = "feedback-pipeline",
    wait_s: float = 0.0,
    table: str = "pipeline_lock",
    lease_s: float = 120.0,
    heartbeat_s: float | None = None,
    poll_s: float = 1.0,
) -> Iterator[LockInfo]:
    """Hold the warehouse's run lock for the duration of a ``with`` block.

    The lock is released when the block ends, also on exceptions. It is not re-entrant: take it once
    per run.

    Args:
        wh: The warehouse the run writes to. PostgreSQL warehouses use an advisory lock; all others a
            lease row in ``table``.
        holder: Who we are, shown to refused runs (see :func:`default_holder`). On PostgreSQL at most
            63 bytes are kept.
        name: The lock's name: runs that take different names do not exclude each other.
        wait_s: 0 to try once; otherwise how long to keep trying (every ``poll_s``) before giving up.
        table: Lease table (created when missing); unused on PostgreSQL.
        lease_s: How long a lease stays valid without renewal; unused on PostgreSQL.
        heartbeat_s: How often the lease is renewed (default ``lease_s / 3``); unused on PostgreSQL.
        poll_s: Seconds between tries while waiting.

    Take the lock before, not inside, a ``wh.transaction()`` block: the lease must be visible to other
    runs at once, not when that transaction commits.

    Yields:
        A :class:`LockInfo` describing the lock held.

    Raises:
        RunLockHeld: If another run holds the lock (after ``wait_s`` seconds when waiting).
        ConfigError: For invalid arguments (empty holder, negative times, a heartbeat not shorter than
            the lease).
        SchemaError: For an invalid table name.
    """
    _check_text("holder", holder)
    _check_text("name", name)
    check_identifier(table, "table")
    _check_seconds("wait_s", wait_s, allow_zero=True)
    _check_seconds("poll_s", poll_s)
    _check_seconds("lease_s", lease_s)
    if heartbeat_s is None:
        heartbeat_s = lease_s / 3
    _check_seconds("heartbeat_s", heartbeat_s)
    if heartbeat_s >= lease_s:
        raise ConfigError(
            f"heartbeat_s ({heartbeat_s:g}) must be shorter than lease_s ({lease_s:g}), or the lease "
            f"expires between renewals; e.g. heartbeat_s={lease_s / 3:g}."
        )
    lock: _Lock
    if _is_postgres(wh):
        lock = _AdvisoryLock(wh, name=name, holder=holder)
    else:
        lock = _LeaseLock(wh, name=name, holder=holder, table=table, lease_s=lease_s, heartbeat_s=heartbeat_s)
    try:
        _acquire(lock, name=name, wh=wh, wait_s=float(wait_s), poll_s=float(poll_s))
    except BaseException:
        lock.release()  # closes the advisory lock's connection
        raise
    try:
        yield LockInfo(name=name, holder=holder, backend=lock.backend)
    finally:
        lock.release()
        logger.debug("Released run lock %r on %s.", name, wh.describe())


def _is_postgres(wh: Warehouse) -> bool:
    from pipeline.warehouse.sql_backend import SqlWarehouse

    return isinstance(wh, SqlWarehouse) and wh.engine.dialect.name == "postgresql"


def _acquire(lock: _Lock, *, name: str, wh: Warehouse, wait_s: float, poll_s: float) -> None:
    start = time.monotonic()
    refusal = lock.try_acquire()
    if refusal is not None and refusal.holder is None and wait_s == 0:
        # The holder was gone when we looked it up: it may just have released the lock.
        refusal = lock.try_acquire()
    if refusal is None:
        logger.info("Took run lock %r on %s (%s).", name, wh.describe(), lock.describe())
        return
    if wait_s == 0:
        raise RunLockHeld(_held_message(name, wh, refusal, waited_s=None), refusal.holder)
    logger.info(
        "Run lock %r on %s is held by %s (%s); waiting up to %g s for it.",
        name,
        wh.describe(),
        _who(refusal),
        refusal.details,
        wait_s,
    )
    deadline = start + wait_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RunLockHeld(_held_message(name, wh, refusal, waited_s=wait_s), refusal.holder)
        time.sleep(min(poll_s, remaining))
        attempt = lock.try_acquire()
        if attempt is None:
            logger.info(
                "Took run lock %r on %s after waiting %.1f s (%s).",
                name,
                wh.describe(),
                time.monotonic() - start,
                lock.describe(),
            )
            return
        refusal = attempt


def _who(refusal: _Refusal) -> str:
    return repr(refusal.holder) if refusal.holder else "another run (holder unknown)"


def _held_message(name: str, wh: Warehouse, refusal: _Refusal, *, waited_s: float | None) -> str:
    waited = f" after waiting {waited_s:g} s" if waited_s is not None else ""
    retry = "" if waited_s is not None else ", or retry with a wait (wait_s)"
    still = "still " if waited_s is not None else ""
    text = (
        f"Run lock {name!r} on {wh.describe()} is {still}held by {_who(refusal)} ({refusal.details})"
        f"{waited}. "
        f"Wait for that run to finish{retry}; {refusal.advice}"
    )
    return " ".join(text.split())  # one line, whatever the pieces hold


def lock_is_held(wh: Warehouse, *, name: str = "feedback-pipeline", table: str = "pipeline_lock") -> bool:
    """Whether some live process holds the run lock now (reads only; takes nothing).

    PostgreSQL: the advisory lock is granted to some session. Other warehouses: a lease row exists, has
    not expired, and its process is not known to be gone (a process on this host that no longer exists).
    """
    if _is_postgres(wh):
        probe = _AdvisoryLock(wh, name=name, holder="feedback check")
        try:
            return _advisory_granted(probe._connection(), probe._key)
        finally:
            probe.release()
    if not wh.table_exists(table):
        return False
    lease = _LeaseLock(wh, name=name, holder="\0feedback check", table=table, lease_s=60, heartbeat_s=20)
    row = lease._read_row()
    return row is not None and lease._assess(row, _utcnow()) is None
