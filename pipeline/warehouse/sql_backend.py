"""The multi-user warehouse: any SQLAlchemy database, PostgreSQL first.

PostgreSQL gets native types (``TEXT[]`` lists, ``BYTEA``, ``DOUBLE PRECISION``) and set-based
statements (value lists travel as one array parameter and are ``unnest``-ed, so a 100k-value filter is
one round trip). Other dialects get portable SQL: list columns as ``JSON`` (text in SQLite), long value
lists through a temporary table. Connections run with ``TimeZone=UTC`` on PostgreSQL, so
``TIMESTAMPTZ`` columns made elsewhere read back as naive UTC like everything else.

Only SQLite and PostgreSQL are tested; other dialects should work where they support ``ALTER TABLE ADD
COLUMN``, temporary tables and transactional DDL (MySQL has no transactional DDL: there a failed
``replace_table`` can leave the table dropped).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import ConfigError, FeedbackError, MissingDependencyError, optional_import
from pipeline.warehouse.base import PreparedFrame, Warehouse
from pipeline.warehouse.tables import add_column_ddl, build_table, logical_type, sa_type, upsert_statement
from pipeline.warehouse.types import (
    BIGINT,
    BLOB,
    BOOLEAN,
    DATE,
    DOUBLE,
    JSON,
    LIST_ITEM_TYPES,
    OTHER,
    TEXT,
    TIMESTAMP,
    check_identifier,
    is_null,
    normalise_frame,
    unpack_vector,
)

logger = logging.getLogger(__name__)

# Value lists up to this length are bound inline (IN (...)) on non-PostgreSQL dialects; longer ones go
# through a temporary table (SQLite caps bound parameters at 32766, other databases lower).
INLINE_VALUES_MAX = 500

_POSTGRES_HINT = "pip install 'feedback-pipeline[postgres]'"

# PostgreSQL type names as psycopg's COPY knows them.
_COPY_TYPES = {
    "double precision": "float8",
    "timestamp without time zone": "timestamp",
    "text[]": "text[]",
    "bigint[]": "int8[]",
    "double precision[]": "float8[]",
}


def _import_sqlalchemy() -> Any:
    return optional_import(
        "sqlalchemy",
        "SQL warehouses need SQLAlchemy 2.0, which is not installed. Install it with: "
        "pip install 'sqlalchemy>=2.0,<2.1'",
    )


def _valid_schemes_text() -> str:
    from pipeline.warehouse import VALID_SCHEMES

    return ", ".join(VALID_SCHEMES)


def _py(value: object) -> object:
    """A plain Python value for a DBAPI driver (numpy scalars, Timestamps and missing values fixed)."""
    if isinstance(value, list | dict | tuple | bytes):
        return value
    if is_null(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalar
        return value.item()
    return value


def _column_values(series: pd.Series, logical: str) -> list[Any]:
    """Driver-ready values of a column cleaned by ``coerce_series`` (vectorised where it matters)."""
    if logical in (BIGINT, DOUBLE, BOOLEAN):
        return series.astype(object).where(series.notna(), None).tolist()
    if logical == TIMESTAMP:
        return [
            None if v is pd.NaT or v is None else v.to_pydatetime() for v in series.astype(object).tolist()
        ]
    if logical in (TEXT, BLOB, DATE, JSON) or logical in LIST_ITEM_TYPES:
        return series.tolist()  # already plain Python values with None for missing
    return [_py(v) for v in series.tolist()]


def _records(frame: pd.DataFrame, types: Mapping[str, str]) -> list[dict[str, Any]]:
    names = list(frame.columns)
    columns = [_column_values(frame[c], types[c]) for c in names]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


class SqlWarehouse(Warehouse):
    """A warehouse in a SQLAlchemy database (PostgreSQL first).

    Args:
        url: SQLAlchemy URL. ``postgresql://`` and ``postgres://`` are opened with psycopg 3
            (``postgresql+psycopg://``).
        schema: Schema to keep the tables in (created when missing; PostgreSQL sets it first on the
            ``search_path`` so that :meth:`sql` finds the tables unqualified). None: the default schema.
        engine_options: Extra keyword arguments for ``sqlalchemy.create_engine``.

    Raises:
        ConfigError: For a URL whose dialect SQLAlchemy does not know (the message lists valid ones).
        MissingDependencyError: When the dialect's Python driver is not installed.
    """

    def __init__(
        self, url: str, *, schema: str | None = None, engine_options: Mapping[str, Any] | None = None
    ) -> None:
        sa = _import_sqlalchemy()
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        scheme = url.split("://", 1)[0] if "://" in url else url
        try:
            parsed = sa.make_url(url)
        except ArgumentError as exc:
            raise ConfigError(
                f"Could not parse the warehouse URL (scheme {scheme!r}): {exc}. Valid: {_valid_schemes_text()}."
            ) from exc
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self._url = parsed
        try:
            parsed.get_dialect()
        except NoSuchModuleError as exc:
            raise ConfigError(
                f"Unknown warehouse URL scheme {scheme!r} (in {self.url}). Valid: {_valid_schemes_text()}."
            ) from exc
        options: dict[str, Any] = {"pool_pre_ping": True}
        options.update(engine_options or {})
        try:
            self._engine: Any = sa.create_engine(parsed, **options)
        except ImportError as exc:
            missing = getattr(exc, "name", None) or str(exc)
            if parsed.get_backend_name() == "postgresql":
                hint = (
                    f"Install the PostgreSQL driver with: {_POSTGRES_HINT} (psycopg 3; then use "
                    "postgresql:// or postgresql+psycopg:// URLs)"
                )
            else:
                hint = f"Install the driver package for {parsed.drivername!r} (pip install {missing})"
            raise MissingDependencyError(
                f"The warehouse URL {self.url} needs the Python driver {missing!r}, which is not installed. "
                f"{hint}."
            ) from exc
        self._dialect = self._engine.dialect
        self._backend = parsed.get_backend_name()
        self._preparer = self._dialect.identifier_preparer
        self._schema = check_identifier(schema, "schema") if schema is not None else None
        self._closed = False
        # The connection of the open transaction() block, and the thread that owns it: calls from that
        # thread join the transaction; other threads (a lease heartbeat) get their own connections.
        self._tx: Any = None
        self._tx_thread: int | None = None
        self._tx_depth = 0
        if self._backend == "postgresql":
            self._install_postgres_session_settings()
        if self._schema is not None:
            self._create_schema()
        logger.debug("Opened %s.", self.describe())

    # ---- set-up -------------------------------------------------------------------------------------

    def _install_postgres_session_settings(self) -> None:
        from sqlalchemy import event

        statements = ["SET TIME ZONE 'UTC'"]
        if self._schema is not None:
            statements.append(f"SET search_path TO {self._preparer.quote_identifier(self._schema)}, public")

        # insert=True: run before SQLAlchemy's own first-connect set-up queries.
        @event.listens_for(self._engine, "connect", insert=True)
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # SET is transactional in PostgreSQL: run it in autocommit so no rollback undoes it.
            previous = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            cursor = dbapi_connection.cursor()
            try:
                for statement in statements:
                    cursor.execute(statement)
            finally:
                cursor.close()
                dbapi_connection.autocommit = previous

    def _create_schema(self) -> None:
        from sqlalchemy.schema import CreateSchema

        if self._backend == "sqlite":
            raise ConfigError(
                "SQLite has no schemas: leave `schema` unset and use one database file per warehouse."
            )
        with self._engine.begin() as conn:
            conn.execute(CreateSchema(self._schema, if_not_exists=True))

    # ---- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Dispose of the connection pool. Safe to call twice."""
        if not self._closed:
            self._engine.dispose()
            self._closed = True
            logger.debug("Closed %s.", self.describe())

    @property
    def url(self) -> str:
        """The URL with the password masked (``***``)."""
        return self._url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Any:
        """The SQLAlchemy engine (for callers that need SQLAlchemy itself)."""
        return self._engine

    def describe(self) -> str:
        """E.g. ``postgresql database postgresql+psycopg://me:***@db:5432/cx (schema feedback)``."""
        text = f"{self._backend} database {self.url}"
        return text + (f" (schema {self._schema})" if self._schema else "")

    def _check_open(self) -> None:
        if self._closed:
            raise FeedbackError(f"{self.describe()} is closed; open the warehouse again.")

    @property
    def dialect(self) -> str:
        """The SQLAlchemy backend name (``postgresql``, ``sqlite``, ...)."""
        return str(self._backend)

    def _in_transaction(self) -> bool:
        return self._tx is not None and self._tx_thread == threading.get_ident()

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        self._check_open()
        if self._in_transaction():
            yield self._tx
            return
        with self._engine.connect() as conn:
            yield conn

    @contextmanager
    def _begin(self) -> Iterator[Any]:
        self._check_open()
        if self._in_transaction():  # the transaction() block commits or rolls back
            yield self._tx
            return
        with self._engine.begin() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every call of this thread inside the block one transaction (see Warehouse)."""
        self._check_open()
        if self._in_transaction():
            self._tx_depth += 1
            try:
                yield
            finally:
                self._tx_depth -= 1
            return
        if self._tx is not None:
            raise FeedbackError(
                f"{self.describe()}: another thread has a transaction open on this warehouse object; "
                "open a warehouse per thread."
            )
        with self._engine.begin() as conn:
            self._tx, self._tx_thread, self._tx_depth = conn, threading.get_ident(), 1
            try:
                yield
            finally:
                self._tx, self._tx_thread, self._tx_depth = None, None, 0

    # ---- types --------------------------------------------------------------------------------------

    def _sa_type(self, logical: str, *, key: bool = False) -> Any:
        return sa_type(logical, self._backend, key=key)

    def _sql_type(self, logical: str) -> str:
        return self._sa_type(logical).compile(dialect=self._dialect)

    def _result_types(self, types: Mapping[str, str]) -> dict[str, Any]:
        # OTHER columns keep the driver's own conversion.
        return {c: self._sa_type(t) for c, t in types.items() if t != OTHER}

    # ---- primitives ---------------------------------------------------------------------------------

    def _quote(self, name: str) -> str:
        return self._preparer.quote_identifier(name)

    def _qualified(self, table: str) -> str:
        if self._schema:
            return f"{self._preparer.quote_identifier(self._schema)}.{self._quote(table)}"
        return self._quote(table)

    def _key_expr(self, expr: str, logical: str) -> str:
        # PostgreSQL compares text by the database's locale ('a' < 'B' < 'b' in en_US); the watermark
        # needs one fixed, byte-wise order, the one DuckDB, SQLite and Python use.
        if self._backend == "postgresql" and logical == TEXT:
            return f'{expr} COLLATE "C"'
        return expr

    def tables(self) -> list[str]:
        """Names of the tables in the warehouse's schema, sorted."""
        import sqlalchemy as sa

        with self._connect() as conn:
            return sorted(sa.inspect(conn).get_table_names(schema=self._schema))

    def _column_types(self, table: str) -> dict[str, str]:
        import sqlalchemy as sa
        from sqlalchemy.exc import NoSuchTableError

        with self._connect() as conn:
            try:
                columns = sa.inspect(conn).get_columns(table, schema=self._schema)
            except NoSuchTableError:
                return {}
        return {c["name"]: logical_type(c["type"]) for c in columns}

    def _param_binds(self, params: Mapping[str, Any]) -> list[Any]:
        import sqlalchemy as sa

        binds = []
        for name, value in params.items():
            # Typed binds: SQLite stores timestamps as text in SQLAlchemy's own format, so a datetime
            # parameter must go through the same conversion to compare equal.
            if isinstance(value, dt.datetime):
                binds.append(sa.bindparam(name, type_=sa.DateTime()))
            elif isinstance(value, dt.date):
                binds.append(sa.bindparam(name, type_=sa.Date()))
        return binds

    @staticmethod
    def _frame(result: Any, typed: bool) -> pd.DataFrame:
        keys = list(result.keys())
        rows = result.fetchall()
        if not typed:
            return pd.DataFrame([tuple(r) for r in rows], columns=keys)
        # Object columns: the logical types decide the dtypes (see normalise_frame).
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in keys]
        return pd.DataFrame({k: pd.Series(list(v), dtype=object) for k, v in zip(keys, columns, strict=True)})

    def _query(
        self, query: str, params: Mapping[str, Any] | None = None, types: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        import sqlalchemy as sa

        params = dict(params or {})
        statement = sa.text(query).bindparams(*self._param_binds(params))
        if types:
            statement = statement.columns(**self._result_types(types))
        with self._connect() as conn:
            frame = self._frame(conn.execute(statement, params), typed=bool(types))
        return normalise_frame(frame, types)

    def _execute(self, statement: str) -> None:
        """Run one statement that returns nothing (DDL), in the open transaction if there is one."""
        import sqlalchemy as sa

        with self._begin() as conn:
            conn.execute(sa.text(statement))

    def _sql(self, query: str, params: dict[str, Any]) -> pd.DataFrame:
        import sqlalchemy as sa

        statement = sa.text(query).bindparams(*self._param_binds(params))
        if self._in_transaction():  # read what the open transaction has written; no rollback here
            return normalise_frame(self._frame(self._tx.execute(statement, params), typed=False))
        with self._connect() as conn:
            if self._backend in ("postgresql", "mysql", "mariadb"):
                conn.execute(sa.text("SET TRANSACTION READ ONLY"))
            elif self._backend == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            try:
                frame = self._frame(conn.execute(statement, params), typed=False)
            finally:
                # Roll back whatever happened: even where read-only mode is not enforced, nothing sticks.
                conn.rollback()
                if self._backend == "sqlite":
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
                    conn.rollback()
        return normalise_frame(frame)

    @contextmanager
    def _where(
        self, conn: Any, where: dict[str, list[Any]], types: Mapping[str, str], target: str
    ) -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
        """Yield (WHERE clause, parameters, typed binds) for ``{column: values}``."""
        import sqlalchemy as sa

        conditions: list[str] = []
        params: dict[str, Any] = {}
        binds: list[Any] = []
        temp_tables: list[Any] = []
        try:
            for i, (column, values) in enumerate(where.items()):
                ref = f"{target}.{self._quote(column)}"
                logical = types[column]
                name = f"w{i}"
                if not values:
                    conditions.append("1 = 0")
                elif self._backend == "postgresql":
                    # One array parameter, unnest-ed: a hashed semi-join, however long the list.
                    if logical == OTHER:
                        ref, element = f"CAST({ref} AS TEXT)", "TEXT"
                        values = [str(v) for v in values]
                    else:
                        element = self._sql_type(logical)
                    conditions.append(f"{ref} IN (SELECT unnest(CAST(:{name} AS {element}[])))")
                    params[name] = [_py(v) for v in values]
                elif len(values) <= INLINE_VALUES_MAX:
                    conditions.append(f"{ref} IN :{name}")
                    binds.append(sa.bindparam(name, expanding=True, type_=self._sa_type(logical)))
                    params[name] = [_py(v) for v in values]
                else:
                    table = sa.Table(
                        f"_wh_in_{uuid.uuid4().hex[:16]}",
                        sa.MetaData(),
                        sa.Column("v", self._sa_type(logical)),
                        prefixes=["TEMPORARY"],
                    )
                    table.create(conn)
                    temp_tables.append(table)
                    conn.execute(table.insert(), [{"v": _py(v)} for v in values])
                    conditions.append(f"{ref} IN (SELECT v FROM {self._quote(table.name)})")
            clause = f" WHERE {' AND '.join(conditions)}" if conditions else ""
            yield clause, params, binds
        finally:
            for table in temp_tables:
                table.drop(conn)

    def _read(
        self, table: str, columns: list[str], where: dict[str, list[Any]], types: dict[str, str]
    ) -> pd.DataFrame:
        import sqlalchemy as sa

        selected = ", ".join(f"t.{self._quote(c)}" for c in columns)
        with self._connect() as conn, self._where(conn, where, types, "t") as (clause, params, binds):
            statement = sa.text(f"SELECT {selected} FROM {self._qualified(table)} t{clause}")
            statement = statement.bindparams(*binds).columns(**self._result_types(types))
            frame = self._frame(conn.execute(statement, params), typed=True)
        return normalise_frame(frame, types)

    def _delete(self, table: str, where: dict[str, list[Any]], types: dict[str, str]) -> int:
        import sqlalchemy as sa

        qualified = self._qualified(table)
        with self._begin() as conn, self._where(conn, where, types, qualified) as (clause, params, binds):
            result = conn.execute(sa.text(f"DELETE FROM {qualified}{clause}").bindparams(*binds), params)
            return int(result.rowcount)

    def _write(self, table: str, prepared: PreparedFrame, key: list[str] | None, *, replace: bool) -> None:
        import sqlalchemy as sa

        target = prepared.table
        with self._begin() as conn:
            if replace:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {self._qualified(table)}"))
            if replace or not prepared.exists:
                target.create(conn)
            for column in prepared.new_columns if not replace else []:
                conn.execute(sa.text(add_column_ddl(target, column, self._dialect)))
            if not len(prepared.frame):
                return
            if not key:
                conn.execute(target.insert(), _records(prepared.frame, prepared.types))
                return
            if self._backend not in ("postgresql", "sqlite"):
                raise FeedbackError(
                    f"Upserts need INSERT ... ON CONFLICT, which {self._backend} lacks: use PostgreSQL, "
                    "DuckDB or SQLite for the warehouse."
                )
            with self._staged(conn, prepared) as source:
                statement = upsert_statement(target, source, list(prepared.types), key, self._dialect)
                conn.execute(sa.text(statement))

    @contextmanager
    def _staged(self, conn: Any, prepared: PreparedFrame) -> Iterator[str]:
        """The rows in a temporary table (PostgreSQL: binary COPY; others: executemany); its name."""
        name = f"_wh_rows_{uuid.uuid4().hex[:16]}"
        temp = build_table(name, prepared.types, None, self._backend)
        temp._prefixes = ["TEMPORARY"]
        temp.create(conn)
        try:
            if self._psycopg():
                self._copy(conn, temp, prepared)
            else:
                conn.execute(temp.insert(), _records(prepared.frame, prepared.types))
            yield name
        finally:
            temp.drop(conn)

    def _copy(self, conn: Any, temp: Any, prepared: PreparedFrame) -> None:
        """Binary COPY of the prepared rows into ``temp`` (no SQL text, no per-row statement)."""
        names = list(prepared.types)
        columns = [_column_values(prepared.frame[c], prepared.types[c]) for c in names]
        pg_types = [self._element_type(temp.c[c].type).lower() for c in names]
        raw = conn.connection.driver_connection
        quoted = ", ".join(self._quote(c) for c in names)
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {self._quote(temp.name)} ({quoted}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types([_COPY_TYPES.get(t, t) for t in pg_types])
            for row in zip(*columns, strict=True):
                copy.write_row(row)

    def _element_type(self, sa_type: Any) -> str:
        """The SQL name of a column type (no COLLATE clause)."""
        if getattr(sa_type, "collation", None):
            sa_type = sa_type.copy()
            sa_type.collation = None
        return sa_type.compile(dialect=self._dialect)

    # ---- embedding cache fast paths (PostgreSQL + psycopg 3) -----------------------------------------

    def _psycopg(self) -> bool:
        return self._backend == "postgresql" and self._dialect.driver == "psycopg"

    def _read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        if not self._psycopg():
            return super()._read_vectors(model_id, hashes)
        qualified = self._qualified(self.vector_table)
        with self._connect() as conn:
            raw = conn.connection.driver_connection
            # Binary results: bytea arrives as bytes, not as hex text to decode.
            with raw.cursor(binary=True) as cursor:
                cursor.execute(
                    f"SELECT text_hash, dim, vector FROM {qualified} "
                    "WHERE model_id = %s AND text_hash IN (SELECT unnest(%s::text[]))",
                    (model_id, hashes),
                )
                rows = cursor.fetchall()
        if not rows:
            return {}
        found, dims, blobs = zip(*rows, strict=True)
        dim = int(dims[0])
        if all(d == dim for d in dims) and all(b is not None and len(b) == 4 * dim for b in blobs):
            matrix = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), dim).astype(np.float32)
            return dict(zip(found, matrix, strict=True))
        return {h: unpack_vector(b, int(d)) for h, d, b in rows if b is not None}
