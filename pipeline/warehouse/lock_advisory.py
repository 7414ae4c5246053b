"""The run lock on PostgreSQL: a session-level advisory lock on one dedicated connection, held for the run."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from pipeline.warehouse.lock_parts import ADVISORY, _Refusal, _utc_text

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

# PostgreSQL keeps application_name in a NAMEDATALEN (64) byte buffer, terminator included.
_APP_NAME_MAX_BYTES = 63


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
