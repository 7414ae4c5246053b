"""The embedded default warehouse: one DuckDB file.

DuckDB lets ONE process open a file for writing (other processes get a lock error, even for reading),
so the pipeline routes every write through one task, and this class opens its connection when it is
created and releases the file on :meth:`DuckDBWarehouse.close`: keep warehouse objects short-lived
(``with open_warehouse(path) as wh: ...``). Within a process, the object serialises calls from several
threads with a lock (a DuckDB connection is not thread-safe).

Tables are created from their declaration (:mod:`pipeline.warehouse.tables`): DuckDB runs the DDL that
SQLAlchemy compiles for PostgreSQL, which it reads as its own (``TEXT[]`` is ``VARCHAR[]``, ``BYTEA``
``BLOB``), so no DuckDB SQLAlchemy dialect is needed and the rows never go through SQLAlchemy. Frames go
to DuckDB as Arrow tables with explicit column types (registered as views, never via SQL text) and are
written by one ``INSERT ... ON CONFLICT (key) DO UPDATE ... SELECT`` from that view, the statement
PostgreSQL runs too.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.errors import FeedbackError, optional_import
from pipeline.warehouse.base import PreparedFrame, Warehouse
from pipeline.warehouse.tables import add_column_ddl, create_ddl, upsert_statement
from pipeline.warehouse.types import (
    BIGINT,
    BLOB,
    BOOLEAN,
    DATE,
    DOUBLE,
    JSON,
    LIST_BIGINT,
    LIST_DOUBLE,
    LIST_TEXT,
    OTHER,
    TEXT,
    TIMESTAMP,
    VECTOR_KEY,
    check_identifier,
    normalise_frame,
    to_json,
    unpack_vector,
)

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

_INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "INT1",
    "INT2",
    "INT4",
    "INT8",
}


def _import_duckdb() -> Any:
    return optional_import(
        "duckdb",
        "The DuckDB warehouse needs the `duckdb` package, which is not installed. "
        "Install it with: pip install duckdb",
    )


def duckdb_logical_type(data_type: str) -> str:
    """Map a DuckDB type name (as in ``information_schema.columns``) to a logical type.

    Args:
        data_type: E.g. ``"VARCHAR"``, ``"VARCHAR[]"``, ``"TIMESTAMP WITH TIME ZONE"``.

    Returns:
        The logical type (``OTHER`` for types this module does not manage).
    """
    name = data_type.strip().upper()
    if name.endswith("[]"):
        inner = duckdb_logical_type(name[:-2])
        return {TEXT: LIST_TEXT, BIGINT: LIST_BIGINT, DOUBLE: LIST_DOUBLE}.get(inner, OTHER)
    base = name.split("(")[0].strip()
    if base in ("VARCHAR", "TEXT", "STRING", "CHAR", "BPCHAR"):
        return TEXT
    if base in _INTEGER_TYPES:
        return BIGINT
    if base in ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "NUMERIC", "FLOAT4", "FLOAT8"):
        return DOUBLE
    if base in ("BOOLEAN", "BOOL"):
        return BOOLEAN
    if base.startswith("TIMESTAMP") or base == "DATETIME":
        return TIMESTAMP
    if base == "DATE":
        return DATE
    if base in ("BLOB", "BYTEA", "VARBINARY"):
        return BLOB
    if base == "JSON":
        return JSON
    return OTHER


def dollar_params(query: str, params: Mapping[str, Any] | None) -> tuple[str, list[Any] | None]:
    """SQL with ``:name`` placeholders as DuckDB runs it: ``$1, $2 ...`` and the values in that order.

    SQLAlchemy parses the placeholders (``::`` casts are left alone; write ``\\:`` for a literal colon
    before a word), so there is one parser for every backend.
    """
    import sqlalchemy as sa

    compiled = sa.text(query).compile(dialect=_pg_dialect("numeric_dollar"))
    names = compiled.positiontup or []
    if not names:
        return str(compiled), None
    values = dict(params or {})
    if missing := [n for n in names if n not in values]:
        raise FeedbackError(f"The query needs a value for {missing} (pass params={{name: value}}).")
    return str(compiled), [values[n] for n in names]


def _pg_dialect(paramstyle: str | None = None) -> Any:
    """SQLAlchemy's PostgreSQL dialect: DuckDB reads its DDL and ``INSERT ... ON CONFLICT``."""
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect(paramstyle=paramstyle) if paramstyle else postgresql.dialect()


MEMORY_LIMIT = "256MB"
"""DuckDB's buffer pool cap. DuckDB's own default is 80% of the machine's memory, and it keeps the blocks
a run reads (the source, the embedding cache) cached up to it, so a process's memory would grow with the
warehouse; with a cap it stays flat (bench/README.md, "Pipeline") and larger work spills to disk. 256 MB
(512 MB until stop 24): a 143k-row first run's pages then stay at 1.3 GB instead of creeping to 1.55 GB,
at the same rows/s (bench/README.md, "Streamed batches, memory").
Override with the environment variable FEEDBACK_DUCKDB_MEMORY_LIMIT (e.g. "2GB")."""


SMALL_CACHE = "96MB"
"""DuckDB's buffer pool during a run's topic stage (:meth:`DuckDBWarehouse.small_cache`)."""


def memory_limit() -> str:
    """The buffer-pool cap for DuckDB connections (FEEDBACK_DUCKDB_MEMORY_LIMIT, else :data:`MEMORY_LIMIT`)."""
    return os.environ.get("FEEDBACK_DUCKDB_MEMORY_LIMIT", MEMORY_LIMIT)


class DuckDBWarehouse(Warehouse):
    """A warehouse in one DuckDB file (the embedded default).

    Args:
        path: Database file (created with its parent folders when missing), or ``":memory:"``.
        schema: Schema to keep the tables in (created when missing); default DuckDB's ``main``.
        read_only: Open the file read-only (several processes may then read it at once, provided no
            process has it open for writing).
        buffer_limit: DuckDB's buffer-pool cap for this connection (e.g. ``"512MB"``); None:
            :func:`memory_limit`.

    Raises:
        FeedbackError: If another process holds the file's write lock.
    """

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        schema: str | None = None,
        read_only: bool = False,
        buffer_limit: str | None = None,
    ) -> None:
        duckdb = _import_duckdb()
        self._memory = str(path) == ":memory:"
        self._path: Path | None = None if self._memory else Path(path).expanduser().resolve()
        self._schema = check_identifier(schema, "schema") if schema is not None else None
        self._read_only = read_only
        self._buffer_limit = buffer_limit or memory_limit()
        self._lock = threading.RLock()
        self._tx_depth = 0  # > 0 inside transaction(): writes join the open transaction
        if self._path is not None and not read_only:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con: Any = duckdb.connect(
                ":memory:" if self._path is None else str(self._path),
                read_only=read_only,
                config={"memory_limit": self._buffer_limit},
            )
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise FeedbackError(
                    f"The DuckDB file {self._path} is in use by another process ({exc}). DuckDB allows one "
                    "writing process per file: route writes through one task, close other sessions "
                    "(notebooks, CLI) on this file, or use a PostgreSQL warehouse for concurrent use."
                ) from exc
            raise FeedbackError(
                f"Cannot open {self._path} as a DuckDB warehouse: {str(exc).splitlines()[0]} Point "
                "--warehouse (or `warehouse:` in the config) at a DuckDB file written by this pipeline, or "
                "at a path that does not exist yet to start a new one."
            ) from exc
        except duckdb.Error as exc:  # a damaged file, a file of another DuckDB storage version ...
            raise FeedbackError(
                f"Cannot open {self._path} as a DuckDB warehouse ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0]}). Is it a DuckDB file, and not damaged?"
            ) from exc
        if self._schema is not None:
            if not read_only:
                self._con.execute(f"CREATE SCHEMA IF NOT EXISTS {self._quote(self._schema)}")
            self._con.execute(f"SET schema = '{self._schema}'")
        logger.debug("Opened %s.", self.describe())

    # ---- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection and release the file. Safe to call twice."""
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None
                logger.debug("Closed %s.", self.describe())

    @property
    def url(self) -> str:
        """``duckdb:///<path>`` (SQLAlchemy style: ``duckdb:////abs/path`` for an absolute path)."""
        return "duckdb:///:memory:" if self._path is None else f"duckdb:///{self._path}"

    @property
    def path(self) -> Path | None:
        """The database file (None in memory)."""
        return self._path

    @property
    def dialect(self) -> str:
        """``duckdb``."""
        return "duckdb"

    def describe(self) -> str:
        """E.g. ``DuckDB file /data/warehouse.duckdb``."""
        text = "DuckDB in memory" if self._path is None else f"DuckDB file {self._path}"
        if self._schema:
            text += f" (schema {self._schema})"
        return text + (" [read-only]" if self._read_only else "")

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        with self._lock:
            if self._con is None:
                raise FeedbackError(f"{self.describe()} is closed; open the warehouse again.")
            yield self._con

    @contextmanager
    def small_cache(self, limit: str = SMALL_CACHE) -> Iterator[None]:
        """A smaller buffer pool within the block (cached blocks evicted now), the usual cap after it.

        A run's topic stage runs under it: by then the pages have filled the pool with blocks of the
        source and the embedding cache that the stage reads again only once, in streamed pages.
        """
        with self._connection() as con:
            con.execute(f"SET memory_limit = '{limit}'")
        try:
            yield
        finally:
            with self._connection() as con:
                con.execute(f"SET memory_limit = '{self._buffer_limit}'")

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._connection() as con:
            if self._tx_depth:  # inside transaction(): the caller's transaction commits or rolls back
                yield con
                return
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every call inside the block one transaction: all of it commits, or none of it.

        The connection's lock is held for the whole block, so another thread's calls wait for the
        commit instead of joining the transaction. Nested blocks join the outer one.
        """
        with self._connection() as con:
            if self._tx_depth:
                self._tx_depth += 1
                try:
                    yield
                finally:
                    self._tx_depth -= 1
                return
            con.execute("BEGIN TRANSACTION")
            self._tx_depth = 1
            try:
                yield
            except BaseException:
                self._tx_depth = 0
                con.execute("ROLLBACK")
                raise
            self._tx_depth = 0
            con.execute("COMMIT")

    @contextmanager
    def _registered(self, con: Any, data: pa.Table) -> Iterator[str]:
        name = f"_wh_{uuid.uuid4().hex}"
        con.register(name, data)
        try:
            yield name
        finally:
            con.unregister(name)

    # ---- primitives ---------------------------------------------------------------------------------

    def _quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def _qualified(self, table: str) -> str:
        if self._schema:
            return f"{self._quote(self._schema)}.{self._quote(table)}"
        return self._quote(table)

    def tables(self) -> list[str]:
        """Names of the tables (and views) of the warehouse's schema, sorted."""
        with self._connection() as con:
            rows = con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_catalog = current_database() ORDER BY table_name"
            ).fetchall()
        return [r[0] for r in rows]

    def _column_types(self, table: str) -> dict[str, str]:
        with self._connection() as con:
            rows = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_catalog = current_database() "
                "AND lower(table_name) = lower($t) ORDER BY ordinal_position",
                {"t": table},
            ).fetchall()
        return {name: duckdb_logical_type(data_type) for name, data_type in rows}

    def _query(
        self, query: str, params: Mapping[str, Any] | None = None, types: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        with self._connection() as con:
            frame = con.execute(*dollar_params(query, params)).df()
        return normalise_frame(frame, types)

    def _execute(self, statement: str) -> None:
        """Run one statement that returns nothing (DDL), in the open transaction if there is one."""
        with self._transaction() as con:
            con.execute(statement)

    def _sql(self, query: str, params: dict[str, Any]) -> pd.DataFrame:
        if self._read_only:
            # A read-only file cannot change under us: each query runs on a cursor of its own (DuckDB's
            # per-thread handle on the same database), outside the lock, so that several threads (the
            # dashboard's sessions, a page's independent queries) read at the same time.
            with self._connection() as con:
                cursor = con.cursor()
            try:
                return normalise_frame(cursor.execute(*dollar_params(query, params)).df())
            finally:
                cursor.close()
        with self._connection() as con:
            if self._tx_depth:  # inside transaction(): read what it has written so far
                return normalise_frame(con.execute(*dollar_params(query, params)).df())
            con.execute("BEGIN TRANSACTION READ ONLY")
            try:
                frame = con.execute(*dollar_params(query, params)).df()
            finally:
                con.execute("ROLLBACK")
        return normalise_frame(frame)

    @contextmanager
    def _where(
        self, con: Any, where: dict[str, list[Any]], types: dict[str, str], target: str
    ) -> Iterator[str]:
        """Yield a WHERE clause; each value list is a registered Arrow table (no SQL-text inlining)."""
        if not where:
            yield ""
            return
        names: list[str] = []
        conditions: list[str] = []
        try:
            for column, values in where.items():
                if not values:
                    conditions.append("1 = 0")
                    continue
                name = f"_wh_{uuid.uuid4().hex}"
                con.register(name, _arrow_table({"v": _arrow_array(values, types[column])}))
                names.append(name)
                conditions.append(f"{target}.{self._quote(column)} IN (SELECT v FROM {name})")
            yield " WHERE " + " AND ".join(conditions)
        finally:
            for name in names:
                con.unregister(name)

    def _read(
        self, table: str, columns: list[str], where: dict[str, list[Any]], types: dict[str, str]
    ) -> pd.DataFrame:
        selected = ", ".join(f"t.{self._quote(c)}" for c in columns)
        with self._connection() as con, self._where(con, where, types, "t") as condition:
            frame = con.execute(f"SELECT {selected} FROM {self._qualified(table)} t{condition}").df()
        return normalise_frame(frame, types)

    def _delete(self, table: str, where: dict[str, list[Any]], types: dict[str, str]) -> int:
        qualified = self._qualified(table)
        with self._transaction() as con, self._where(con, where, types, qualified) as condition:
            count = con.execute(f"SELECT COUNT(*) FROM {qualified}{condition}").fetchone()[0]
            con.execute(f"DELETE FROM {qualified}{condition}")
        return int(count)

    def _write(self, table: str, prepared: PreparedFrame, key: list[str] | None, *, replace: bool) -> None:
        data = _arrow_table({c: _arrow_array(prepared.frame[c], t) for c, t in prepared.types.items()})
        self._write_arrow(table, data, prepared, key, replace=replace)

    def _write_arrow(
        self,
        table: str,
        data: pa.Table,
        prepared: PreparedFrame,
        key: list[str] | None,
        *,
        replace: bool,
        ddl: str | None = None,
    ) -> None:
        """The bulk path: the rows as a registered Arrow table, one INSERT ... ON CONFLICT from it.
        ``ddl``: the CREATE TABLE to use when the table is created (default: the declared one's)."""
        qualified = self._qualified(table)
        target = prepared.table
        with self._transaction() as con, self._registered(con, data) as source:
            if replace:
                con.execute(f"DROP TABLE IF EXISTS {qualified}")
            if replace or not prepared.exists:
                con.execute(ddl or create_ddl(target))
            for column in prepared.new_columns if not replace else []:
                con.execute(add_column_ddl(target, column, _pg_dialect()))
            if not data.num_rows:
                return
            columns = list(prepared.types)
            if key:
                con.execute(upsert_statement(target, source, columns, key, _pg_dialect()))
            else:
                names = ", ".join(self._quote(c) for c in columns)
                con.execute(f"INSERT INTO {qualified} ({names}) SELECT {names} FROM {source}")

    # ---- embedding cache fast paths -------------------------------------------------------------------

    def _write_vectors(self, model_id: str, hashes: list[str], matrix: np.ndarray) -> int:
        import pyarrow as pa

        n, dim = matrix.shape
        # Zero-copy: the float32 matrix buffer becomes a fixed-size binary column, one row per vector.
        blobs = pa.FixedSizeBinaryArray.from_buffers(pa.binary(dim * 4), n, [None, pa.py_buffer(matrix)])
        data = pa.table(
            {
                "model_id": pa.array([model_id] * n, type=pa.string()),
                "text_hash": pa.array(hashes, type=pa.string()),
                "dim": pa.array(np.full(n, dim, dtype=np.int64)),
                "vector": blobs.cast(pa.binary()),
            }
        )
        prepared = self._vector_prepared()
        ddl = None if prepared.exists else uncompressed(create_ddl(prepared.table), "vector")
        self._write_arrow(self.vector_table, data, prepared, VECTOR_KEY, replace=False, ddl=ddl)
        return n

    def _read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        import pyarrow as pa

        wanted = pa.table({"h": pa.array(hashes, type=pa.string())})
        with self._connection() as con, self._registered(con, wanted) as name:
            # A relation (con.sql), not a DB-API result: its Arrow output needs no extra copy.
            relation = con.sql(
                f"SELECT c.text_hash, c.dim, c.vector FROM {self._qualified(self.vector_table)} c "
                f"WHERE c.model_id = $m AND c.text_hash IN (SELECT h FROM {name})",
                params={"m": model_id},
            )
            data = _fetch_arrow(relation)
        found = data.column("text_hash").to_pylist()
        if not found:
            return {}
        dims = np.asarray(data.column("dim").to_numpy(zero_copy_only=False), dtype=np.int64)
        blobs = data.column("vector").combine_chunks()
        dim = int(dims[0])
        if blobs.null_count == 0 and (dims == dim).all():
            if not pa.types.is_large_binary(blobs.type):
                blobs = blobs.cast(pa.large_binary())  # one layout to read (binary views included)
            offsets = np.frombuffer(blobs.buffers()[1], dtype=np.int64)[
                blobs.offset : blobs.offset + len(blobs) + 1
            ]
            if (np.diff(offsets) == dim * 4).all():
                # All blobs are contiguous in one buffer: decode them in one go.
                flat = np.frombuffer(
                    blobs.buffers()[2], dtype="<f4", count=len(found) * dim, offset=int(offsets[0])
                )
                matrix = flat.reshape(len(found), dim).astype(np.float32)  # a writable copy
                return dict(zip(found, matrix, strict=True))
        return {
            h: unpack_vector(blob, int(d))
            for h, d, blob in zip(found, dims, data.column("vector").to_pylist(), strict=True)
            if blob is not None
        }


def uncompressed(ddl: str, column: str) -> str:
    """``ddl`` (a CREATE TABLE) with ``column`` stored ``USING COMPRESSION uncompressed``.

    For the embedding cache's vectors: float32 vectors do not compress (the file came out the same size),
    but DuckDB tries every codec on them at each checkpoint, which made writing them 2.3x slower (60k
    vectors: 3.3-3.8 s -> 1.4-1.6 s; ~15% of a first run's time went to cache writes,
    bench/README.md "Stop 25"). Tables created before keep DuckDB's default; they work the same.
    """
    import re

    pattern = re.compile(rf'(\n\s*"?{re.escape(column)}"? (?:BYTEA|BLOB))(,|\n)')
    out, n = pattern.subn(r"\1 USING COMPRESSION uncompressed\2", ddl, count=1)
    if n != 1:
        raise FeedbackError(f"internal: no column {column!r} of type BLOB in {ddl!r}")
    return out


def _fetch_arrow(result: Any) -> pa.Table:
    # duckdb 2 renamed fetch_arrow_table() to to_arrow_table().
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    return fetch()


def _arrow_table(columns: dict[str, pa.Array]) -> pa.Table:
    import pyarrow as pa

    return pa.table(columns)


def _arrow_array(values: pd.Series | list[Any], logical: str) -> pa.Array:
    """Build an Arrow array of the exact type a logical column needs (values cleaned by the base)."""
    import pyarrow as pa

    types = {
        TEXT: pa.string(),
        BIGINT: pa.int64(),
        DOUBLE: pa.float64(),
        BOOLEAN: pa.bool_(),
        TIMESTAMP: pa.timestamp("us"),
        DATE: pa.date32(),
        BLOB: pa.binary(),
        LIST_TEXT: pa.list_(pa.string()),
        LIST_BIGINT: pa.list_(pa.int64()),
        LIST_DOUBLE: pa.list_(pa.float64()),
    }
    if logical == JSON:
        items = values.tolist() if isinstance(values, pd.Series) else values
        return pa.array([None if v is None else to_json(v) for v in items], type=pa.string())
    if logical in (BIGINT, DOUBLE, BOOLEAN, TIMESTAMP) and isinstance(values, pd.Series):
        return pa.array(values, type=types[logical], from_pandas=True)
    items = values.tolist() if isinstance(values, pd.Series) else list(values)
    if logical in types:
        return pa.array(items, type=types[logical], from_pandas=True)
    return pa.array(items, from_pandas=True)  # OTHER: let Arrow infer, DuckDB casts on insert
