"""The run lock on every other warehouse: a lease row in a small table, renewed by a heartbeat thread, taken
over at once when its process on this machine is gone."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.warehouse.base import is_null
from pipeline.warehouse.lock_parts import LEASE, _Refusal, _utc_text, _utcnow

if TYPE_CHECKING:
    from pipeline.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

# Serialises check-and-take, renewal and release of leases between the threads of this process (a
# warehouse without transaction() cannot make them atomic by itself).
_LEASE_GUARD = threading.Lock()

_LEASE_COLUMNS = ["name", "holder", "host", "pid", "acquired_at", "heartbeat_at", "expires_at"]


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
