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

import contextlib
import datetime as dt
import hashlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from pipeline.errors import ConfigError, FeedbackError
from pipeline.warehouse.base import check_identifier, is_null

if TYPE_CHECKING:
    from pipeline.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

__all__ = ["LockInfo", "RunLockHeld", "default_holder", "run_lock"]

ADVISORY = "advisory"
LEASE = "lease"

# PostgreSQL keeps application_name in a NAMEDATALEN (64) byte buffer, terminator included.
_APP_NAME_MAX_BYTES = 63

# Serialises check-and-take, renewal and release of leases between the threads of this process (a
# warehouse without transaction() cannot make them atomic by itself).
_LEASE_GUARD = threading.Lock()

_LEASE_COLUMNS = ["name", "holder", "host", "pid", "acquired_at", "heartbeat_at", "expires_at"]


class RunLockHeld(FeedbackError):
    """Another run holds the run lock.

    ``str(exc)`` is one line naming the holder and since when it holds the lock, and saying what to
    do about it.

    Attributes:
        holder: The holder string of the run that holds the lock, or None when it could not be found
            out (e.g. it released the lock while we looked).
    """

    def __init__(self, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.holder = holder

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep `holder` when the error is pickled (Prefect moves exceptions between processes).
        return (type(self), (str(self), self.holder))


@dataclass(frozen=True)
class LockInfo:
    """The run lock a ``with run_lock(...)`` block holds.

    Attributes:
        name: The lock's name.
        holder: Our holder string.
        backend: ``"advisory"`` (a PostgreSQL advisory lock) or ``"lease"`` (a lease row in a table).
    """

    name: str
    holder: str
    backend: str


def default_holder(run_id: str | None = None) -> str:
    """A holder string that tells an operator which process holds the lock.

    Args:
        run_id: The run's id, put first when given.

    Returns:
        E.g. ``"run-20260102-0304 pid 1234 on myhost"``, or ``"pid 1234 on myhost"`` without a run id.
    """
    where = f"pid {os.getpid()} on {socket.gethostname()}"
    return f"{run_id} {where}" if run_id else where


@dataclass(frozen=True)
class _Refusal:
    """Who holds the lock, as far as we could find out."""

    holder: str | None
    details: str  # e.g. "pid 1234 on host-b, since 2026-01-02 03:04:05 UTC"
    advice: str  # what to do when that process is dead


class _Lock(Protocol):
    backend: str

    def describe(self) -> str: ...

    def try_acquire(self) -> _Refusal | None: ...

    def release(self) -> None: ...


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


def _check_text(what: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"run_lock needs a non-empty string as {what}, got {value!r}"
            + (" (e.g. default_holder(run_id))." if what == "holder" else ".")
        )


def _check_seconds(what: str, value: object, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"run_lock: {what} must be a finite number of seconds {bound}, got {value!r}.")


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


def _utc_text(value: object) -> str:
    if value is None or is_null(value):
        return "an unknown time"
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return f"{stamp:%Y-%m-%d %H:%M:%S} UTC"


def _utcnow() -> dt.datetime:
    """Now, as naive UTC (the warehouse convention for timestamps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ----------------------------------------------------------------------------------------------------
# PostgreSQL: a session-level advisory lock.


def advisory_key(name: str, schema: str) -> int:
    """The signed 64-bit advisory-lock key of a run lock.

    Derived from the lock name and the warehouse's schema, so warehouses in different schemas of one
    database do not block each other; stable across processes and Python versions.

    Args:
        name: The lock's name.
        schema: The warehouse's schema.

    Returns:
        An int in the PostgreSQL ``bigint`` range.
    """
    text = f"feedback-pipeline.run_lock\0{schema}\0{name}"
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _split_key(key: int) -> tuple[int, int]:
    """``(classid, objid)`` as ``pg_locks`` shows a bigint advisory key: high and low 32 bits."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


def _application_name(holder: str) -> str:
    return holder.encode("utf-8")[:_APP_NAME_MAX_BYTES].decode("utf-8", errors="ignore")


class _AdvisoryLock:
    """``pg_try_advisory_lock`` on one dedicated connection, kept open while the lock is held."""

    backend = ADVISORY

    def __init__(self, wh: Any, *, name: str, holder: str) -> None:
        self._wh = wh
        self._name = name
        self._holder = holder
        self._conn: Any = None
        self._key: int | None = None
        self._held = False

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self._key}, held by this process's session"

    def _connection(self) -> Any:
        import sqlalchemy as sa

        if self._conn is None:
            # Autocommit: the session must sit idle while the run works, not idle in a transaction
            # (which would pin old row versions, and which idle_in_transaction_session_timeout ends).
            conn = self._wh.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                conn.execute(
                    sa.text("SELECT set_config('application_name', :v, false)"),
                    {"v": _application_name(self._holder)},
                )
                schema = self._wh._schema
                if schema is None:
                    schema = conn.execute(sa.text("SELECT current_schema()")).scalar() or ""
            except BaseException:
                conn.invalidate()
                conn.close()
                raise
            self._key = advisory_key(self._name, schema)
            self._conn = conn
        return self._conn

    def try_acquire(self) -> _Refusal | None:
        import sqlalchemy as sa

        conn = self._connection()
        got = conn.execute(
            sa.text("SELECT pg_try_advisory_lock(CAST(:k AS bigint))"), {"k": self._key}
        ).scalar()
        if got:
            self._held = True
            return None
        return self._holder_of_lock(conn)

    def _holder_of_lock(self, conn: Any) -> _Refusal:
        import sqlalchemy as sa

        assert self._key is not None
        classid, objid = _split_key(self._key)
        row = conn.execute(
            sa.text(
                "SELECT a.pid, a.application_name, a.backend_start, a.query_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid = CAST(CAST(:classid AS bigint) AS oid) "
                "AND l.objid = CAST(CAST(:objid AS bigint) AS oid) "
                "LIMIT 1"
            ),
            {"classid": classid, "objid": objid},
        ).first()
        advice = (
            "if that process is dead, PostgreSQL releases its lock as soon as its session ends (no "
            "stale lock is possible)."
        )
        if row is None:
            return _Refusal(
                holder=None, details="it released the lock or could not be looked up", advice=advice
            )
        pid, app_name, backend_start, query_start = row
        # The holder's connection last ran a statement when it took the lock (it sits idle after).
        since = query_start if query_start is not None else backend_start
        return _Refusal(
            holder=app_name or None,
            details=f"PostgreSQL backend pid {pid}, since {_utc_text(since)}",
            advice=advice,
        )

    def release(self) -> None:
        import sqlalchemy as sa

        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._held:
                released = conn.execute(
                    sa.text("SELECT pg_advisory_unlock(CAST(:k AS bigint))"), {"k": self._key}
                ).scalar()
                if not released:
                    logger.warning("Run lock %r was not held by our session any more at release.", self._name)
        except Exception:
            logger.warning(
                "Could not unlock run lock %r; closing its connection releases it.", self._name, exc_info=True
            )
        finally:
            self._held = False
            # Close the session instead of returning it to the pool: that releases anything left and
            # drops the application_name we set.
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()


# ----------------------------------------------------------------------------------------------------
# Every other warehouse: a lease row, renewed by a heartbeat thread.


@dataclass(frozen=True)
class _LeaseRow:
    holder: str | None
    host: str | None
    pid: int | None
    acquired_at: pd.Timestamp | None
    expires_at: pd.Timestamp | None


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is running (True when it cannot be told)."""
    if pid <= 0:
        return False  # not a process id (0 and negatives would signal process groups)
    if pid == os.getpid():
        return True
    if os.name == "nt":
        return True  # os.kill(pid, 0) would send CTRL_C_EVENT there: rely on the lease's expiry
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, run by another user
        return True
    # A killed child that its parent has not reaped yet is a zombie: dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _lease_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The lease table's rows with explicit dtypes (an empty frame creates the table right)."""
    return pd.DataFrame(
        {
            "name": pd.Series([r["name"] for r in rows], dtype=object),
            "holder": pd.Series([r["holder"] for r in rows], dtype=object),
            "host": pd.Series([r["host"] for r in rows], dtype=object),
            "pid": pd.Series([r["pid"] for r in rows], dtype="Int64"),
            **{
                column: pd.Series([r[column] for r in rows], dtype="datetime64[us]")
                for column in ("acquired_at", "heartbeat_at", "expires_at")
            },
        }
    )


def _timestamp(value: object) -> pd.Timestamp | None:
    return None if value is None or is_null(value) else pd.Timestamp(value)


class _LeaseLock:
    """A lease row in ``table``; a daemon thread renews it while it is held."""

    backend = LEASE

    def __init__(
        self, wh: Warehouse, *, name: str, holder: str, table: str, lease_s: float, heartbeat_s: float
    ) -> None:
        self._wh = wh
        self._name = name
        self._holder = holder
        self._table = table
        self._lease = dt.timedelta(seconds=lease_s)
        self._heartbeat_s = heartbeat_s
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._acquired_at: dt.datetime | None = None
        self._held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        return (
            f"lease in table {self._table}, {self._lease.total_seconds():g} s renewed every "
            f"{self._heartbeat_s:g} s"
        )

    # ---- warehouse access ---------------------------------------------------------------------------

    def _transaction(self) -> contextlib.AbstractContextManager[Any]:
        """One warehouse transaction around the calls inside, where the warehouse offers it."""
        transaction = getattr(self._wh, "transaction", None)
        return transaction() if callable(transaction) else contextlib.nullcontext()

    def _ensure_table(self) -> None:
        if self._wh.table_exists(self._table):
            return
        try:
            self._wh.upsert(self._table, _lease_frame([]), key=["name"])
        except Exception:
            # Another process may have created it at the same moment: then all is well.
            if not self._wh.table_exists(self._table):
                raise
            logger.debug("Lease table %s was created concurrently.", self._table)

    def _read_row(self) -> _LeaseRow | None:
        frame = self._wh.read(self._table, _LEASE_COLUMNS, {"name": [self._name]})
        if frame.empty:
            return None
        row = frame.iloc[0]
        pid = row["pid"]
        return _LeaseRow(
            holder=None if is_null(row["holder"]) else str(row["holder"]),
            host=None if is_null(row["host"]) else str(row["host"]),
            pid=None if is_null(pid) else int(pid),
            acquired_at=_timestamp(row["acquired_at"]),
            expires_at=_timestamp(row["expires_at"]),
        )

    def _write_row(self, acquired_at: dt.datetime, now: dt.datetime) -> None:
        row = {
            "name": self._name,
            "holder": self._holder,
            "host": self._host,
            "pid": self._pid,
            "acquired_at": acquired_at,
            "heartbeat_at": now,
            "expires_at": now + self._lease,
        }
        self._wh.upsert(self._table, _lease_frame([row]), key=["name"])

    def _is_ours(self, row: _LeaseRow | None) -> bool:
        return row is not None and (row.holder, row.host, row.pid) == (self._holder, self._host, self._pid)

    # ---- taking ---------------------------------------------------------------------------------------

    def _assess(self, row: _LeaseRow | None, now: dt.datetime) -> str | None:
        """Why the lease is free (None when it is held by someone else)."""
        if row is None:
            return "no lease"
        if row.holder == self._holder:
            return "our own holder string"
        if row.expires_at is None or row.expires_at < now:
            return f"its lease expired at {_utc_text(row.expires_at)}"
        if row.host == self._host and row.pid is not None and not pid_alive(row.pid):
            return f"its process {row.pid} on this host is gone"
        return None

    def _refusal(self, row: _LeaseRow | None) -> _Refusal:
        if row is None:  # taken and released between two reads
            return _Refusal(holder=None, details="it released the lock while we tried", advice="try again.")
        same_host = row.host == self._host
        return _Refusal(
            holder=row.holder,
            details=f"pid {row.pid} on {row.host}, since {_utc_text(row.acquired_at)}",
            advice=(
                "if that process is dead, its lock is taken over automatically "
                + ("at once (it ran on this host)." if same_host else "")
                + (f"when its lease expires at {_utc_text(row.expires_at)}." if not same_host else "")
            ),
        )

    def try_acquire(self) -> _Refusal | None:
        with _LEASE_GUARD:
            self._ensure_table()
            try:
                with self._transaction():
                    row = self._read_row()
                    now = _utcnow()
                    reason = self._assess(row, now)
                    if reason is None:
                        return self._refusal(row)
                    self._write_row(now, now)
            except Exception:
                # E.g. a concurrent writer on SQLite: if someone else has the lease now, say so.
                row = self._read_row()
                if row is not None and not self._is_ours(row) and self._assess(row, _utcnow()) is None:
                    logger.debug("Taking run lock %r failed; it is held.", self._name, exc_info=True)
                    return self._refusal(row)
                raise
            if not hasattr(self._wh, "transaction"):
                # Read and write were two transactions: make sure no other process wrote in between.
                check = self._read_row()
                if not self._is_ours(check):
                    return self._refusal(check)
        if row is not None and row.holder != self._holder:
            logger.warning(
                "Took over run lock %r from %r (pid %s on %s): %s.",
                self._name,
                row.holder,
                row.pid,
                row.host,
                reason,
            )
        self._acquired_at = now
        self._held = True
        self._start_heartbeat()
        return None

    # ---- holding --------------------------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._beat, name=f"run-lock-heartbeat-{self._name}", daemon=True
        )
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            try:
                if not self._renew():
                    return
            except Exception:
                logger.warning(
                    "Could not renew run lock %r (lease in table %s); retrying in %g s.",
                    self._name,
                    self._table,
                    self._heartbeat_s,
                    exc_info=True,
                )

    def _renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (renewal then stops)."""
        # Neither _LEASE_GUARD nor a transaction here: the heartbeat must not wait on them, nor clash
        # with a transaction the run keeps open on the same warehouse object. Only a taker that finds
        # the lease expired (or with our holder string) could slip in between this read and write.
        if self._stop.is_set():
            return False
        row = self._read_row()
        if not self._is_ours(row):
            if self._stop.is_set():  # released while we read
                return False
            logger.error(
                "Lost run lock %r: its lease is now %s. Another run may be writing the warehouse at the "
                "same time; use a longer lease_s if heartbeats are late.",
                self._name,
                "gone" if row is None else f"held by {row.holder!r} (pid {row.pid} on {row.host})",
            )
            return False
        assert self._acquired_at is not None
        self._write_row(self._acquired_at, _utcnow())
        logger.debug("Renewed run lock %r.", self._name)
        return True

    def release(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=max(5.0, 2 * self._heartbeat_s))
            if thread.is_alive():
                logger.warning("The heartbeat of run lock %r did not stop in time.", self._name)
        if not self._held:
            return
        self._held = False
        try:
            with _LEASE_GUARD, self._transaction():
                row = self._read_row()
                if self._is_ours(row):
                    self._wh.delete(self._table, {"name": [self._name]})
                else:
                    logger.warning("Run lock %r was no longer ours at release: left as it is.", self._name)
        except Exception:
            logger.warning(
                "Could not release run lock %r (lease in table %s); it is taken over when its lease expires.",
                self._name,
                self._table,
                exc_info=True,
            )


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


def _advisory_granted(conn: Any, key: int | None) -> bool:
    import sqlalchemy as sa

    if key is None:
        return False
    classid, objid = _split_key(key)
    return bool(
        conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                "AND classid = CAST(CAST(:c AS bigint) AS oid) AND objid = CAST(CAST(:o AS bigint) AS oid)"
            ),
            {"c": classid, "o": objid},
        ).scalar()
    )
