"""The backend-neutral ``Warehouse`` interface.

A backend (DuckDB, any SQLAlchemy database) implements a few primitives (``_query``, ``_write``,
``_read``, ``_delete``, ``_column_types`` ...). Everything that must behave the same everywhere lives
here or in :mod:`pipeline.warehouse.types` (the type rules) and :mod:`pipeline.warehouse.tables` (the
declared tables and the one upsert statement): identifier checks, how values are cleaned before they
are written, how results are normalised after they are read, transactions and the embedding cache.

Conventions every backend follows:

* The pipeline's tables are created from their declaration (:func:`pipeline.warehouse.tables.declare`,
  attached with :meth:`Warehouse.use_tables`); other tables from the frame's dtypes.
* Upserts are one ``INSERT ... ON CONFLICT (key) DO UPDATE``: a replaced row takes the frame's values,
  and the columns the frame lacks become NULL.
* Timestamps are stored as naive UTC (``TIMESTAMP`` without time zone). Tz-aware input is converted
  to UTC; tz-aware columns read from a table created elsewhere come back converted to naive UTC.
* Missing values: NaN, None, ``pd.NA`` and ``NaT`` are all written as SQL NULL.
* Reading returns int64 / bool columns when they hold no NULL and the nullable ``Int64`` / ``boolean``
  dtypes when they do; floats as float64 (NULL as NaN); text with pandas' default string dtype; list
  columns as Python lists; binary columns as ``bytes``; timestamps as naive ``datetime64``.
* ``dict`` values (and lists of mixed or nested values) are stored as JSON text, read back as text.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd

from pipeline.errors import SchemaError, missing_columns
from pipeline.warehouse.tables import Declaration, TableSpec, build_table
from pipeline.warehouse.types import (  # JSON, LIST_ITEM_TYPES, TEXT: re-exported for callers
    JSON,  # noqa: F401
    LIST_ITEM_TYPES,  # noqa: F401
    SEGMENTS_EXTRA,
    TEXT,  # noqa: F401
    TIMESTAMP,
    check_identifier,
    check_values,
    coerce_series,
    infer_type,
    is_null,
    pack_extras,
)
from pipeline.warehouse.vectors import VectorCache

if TYPE_CHECKING:
    import sqlalchemy as sa

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------------
# The interface.


@dataclass
class PreparedFrame:
    """A frame cleaned for writing, with the logical type of every column.

    Attributes:
        frame: The cleaned frame (see :func:`coerce_series`): every column of the table, NULL where the
            caller's frame had none.
        types: Logical type of every column of ``frame``, in order.
        exists: Whether the target table exists already.
        new_columns: Columns of ``frame`` that the (existing) table lacks (undeclared tables only).
        table: The table's definition (created from it when missing).
    """

    frame: pd.DataFrame
    types: dict[str, str]
    exists: bool
    new_columns: list[str] = field(default_factory=list)
    table: sa.Table | None = None


class Warehouse(VectorCache, ABC):
    """A warehouse: tables of survey responses and of everything the pipeline writes.

    One interface for every backend, so that no other part of the pipeline knows whether it talks to
    an embedded DuckDB file or a multi-user PostgreSQL server. Open one with
    :func:`pipeline.warehouse.open_warehouse`; use it as a context manager (or call :meth:`close`).

    Names of tables and columns must match ``[A-Za-z_][A-Za-z0-9_]*`` (see :func:`check_identifier`);
    they are always quoted in generated SQL. Writes are transactional: an upsert either lands whole or
    not at all.

    With the DuckDB backend only one process may have the file open for writing: route all writes of
    a flow through one task (and keep warehouse objects short-lived), or use PostgreSQL when several
    processes must write at once.
    """

    # ---- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    @contextmanager
    def small_cache(self) -> Iterator[None]:
        """Within the block, the database client keeps less data cached in this process (DuckDB: a
        smaller buffer pool, so its cached blocks are evicted now). A no-op for client-server databases,
        whose cache lives in the server."""
        yield

    @abstractmethod
    def close(self) -> None:
        """Release the connection(s). Safe to call twice."""

    @property
    @abstractmethod
    def url(self) -> str:
        """The warehouse's URL, with any password masked: safe for logs and messages."""

    @abstractmethod
    def describe(self) -> str:
        """A one-line human description for messages (never contains a password)."""

    @property
    @abstractmethod
    def dialect(self) -> str:
        """The database's kind: ``duckdb``, ``postgresql``, ``sqlite``, ..."""

    @property
    def schema(self) -> str | None:
        """The schema the tables live in (None: the database's default)."""
        return getattr(self, "_schema", None)

    @property
    def declaration(self) -> Declaration:
        """The declared tables attached by :meth:`use_tables` (none until then: every table inferred)."""
        declared = getattr(self, "_declared", None)
        if declared is None:
            declared = self._declared = Declaration()
        return declared

    def use_tables(self, declaration: Declaration) -> None:
        """Attach the config's table declaration: its names, columns and keys are then the contract.

        Args:
            declaration: From :func:`pipeline.warehouse.tables.declare`.
        """
        self._declared = declaration

    @property
    def vector_table(self) -> str:
        """The embedding cache's table name (``tables.embedding_cache`` of the config)."""
        return self.declaration.vector_table

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A block whose writes (upserts, deletes, table creation) commit together or not at all.

        Use it as ``with wh.transaction(): ...``. Reads inside the block see its own writes. Nested
        blocks join the outer one. A process killed inside the block leaves the warehouse as it was.
        """

    # ---- primitives a backend implements ------------------------------------------------------------

    @abstractmethod
    def tables(self) -> list[str]:
        """Names of the tables in the warehouse (its schema), sorted."""

    @abstractmethod
    def _column_types(self, table: str) -> dict[str, str]:
        """Logical type of every column of ``table`` in table order; {} when the table is missing."""

    @abstractmethod
    def _quote(self, name: str) -> str:
        """Quote a (checked) column name."""

    @abstractmethod
    def _qualified(self, table: str) -> str:
        """Quote a (checked) table name, with its schema where the backend uses one."""

    @abstractmethod
    def _query(
        self, query: str, params: Mapping[str, Any] | None = None, types: Mapping[str, str] | None = None
    ) -> pd.DataFrame:
        """Run SQL written with ``:name`` placeholders; return the normalised result frame."""

    @abstractmethod
    def _read(
        self, table: str, columns: list[str], where: dict[str, list[Any]], types: dict[str, str]
    ) -> pd.DataFrame:
        """Select ``columns`` of an existing ``table`` filtered by ``where`` (value lists are cleaned);
        ``types`` holds the logical type of every column of the table."""

    @abstractmethod
    def _write(self, table: str, prepared: PreparedFrame, key: list[str] | None, *, replace: bool) -> None:
        """Write a prepared frame in ONE transaction: create or replace the table, add columns, replace
        rows by key, insert."""

    @abstractmethod
    def _execute(self, statement: str) -> None:
        """Run one statement that returns nothing (DDL), in the open transaction if there is one."""

    @abstractmethod
    def _delete(self, table: str, where: dict[str, list[Any]], types: dict[str, str]) -> int:
        """Delete matching rows of an existing table; return how many."""

    def _key_expr(self, expr: str, logical: str) -> str:
        """An expression that compares and sorts ``expr`` byte-wise (hook for collations)."""
        return expr

    # ---- schema -------------------------------------------------------------------------------------

    def table_exists(self, table: str) -> bool:
        """Return whether ``table`` exists.

        Args:
            table: Table name.
        """
        return bool(self._column_types(check_identifier(table, "table")))

    def columns(self, table: str) -> list[str]:
        """Return the column names of ``table`` in table order ([] when it does not exist).

        Args:
            table: Table name.
        """
        return list(self._column_types(check_identifier(table, "table")))

    def count(self, table: str) -> int:
        """Return the number of rows of ``table`` (0 when it does not exist).

        Args:
            table: Table name.
        """
        check_identifier(table, "table")
        if not self.table_exists(table):
            return 0
        frame = self._query(f"SELECT COUNT(*) AS n FROM {self._qualified(table)}")
        return int(frame["n"].iloc[0])

    # ---- reading ------------------------------------------------------------------------------------

    def _prepare_where(
        self, table: str, where: Mapping[str, object] | None, types: dict[str, str]
    ) -> dict[str, list[Any]]:
        clean: dict[str, list[Any]] = {}
        if where is None:
            return clean
        if not isinstance(where, Mapping):
            raise SchemaError(
                f"where must be a dict of column -> list of values, not {type(where).__name__}."
            )
        for column, values in where.items():
            check_identifier(column, "column")
            if column not in types:
                raise missing_columns(f"where on table {table!r}", list(where), list(types))
            raw = [v for v in check_values(column, values) if not is_null(v)]
            if not raw:
                clean[column] = []
                continue
            series = coerce_series(pd.Series(raw, dtype=object, name=column), types[column])
            values_clean = [None if is_null(v) else v for v in series.astype(object).tolist()]
            if types[column] == TIMESTAMP:
                values_clean = [v.to_pydatetime() for v in values_clean if v is not None]
            # Duplicates only cost time; order does not matter for IN.
            seen: dict[Any, None] = {}
            for v in values_clean:
                if v is not None:
                    seen.setdefault(v if not isinstance(v, list) else tuple(v), None)
            clean[column] = list(seen)
        return clean

    def read(
        self,
        table: str,
        columns: list[str] | None = None,
        where: dict[str, list] | None = None,
    ) -> pd.DataFrame:
        """Read rows of a table.

        Args:
            table: Table name.
            columns: Columns to return (all when None).
            where: ``{column: [values]}``: keep rows whose column is IN the values; several columns are
                ANDed. Lists may be long (100k values): they are joined, not inlined. NULL never
                matches. An empty list matches nothing.

        Returns:
            The rows, in no particular order. When the table does not exist: an empty frame with
            ``columns`` (no columns when ``columns`` is None).

        Raises:
            SchemaError: For invalid names, or columns the table does not have.
        """
        check_identifier(table, "table")
        for column in columns or []:
            check_identifier(column, "column")
        types = self._column_types(table)
        if not types:
            return pd.DataFrame(columns=list(columns or []))
        if columns is None:
            columns = list(types)
        stored = _stored_columns(f"read of table {table!r}", columns, types)
        clean_where = self._prepare_where(table, where, types)
        return _wanted(self._read(table, stored, clean_where, types), columns)

    def read_range(
        self,
        table: str,
        column: str,
        start: object = None,
        end: object = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Read the rows of a table whose ``column`` lies between two bounds (a SQL WHERE, not pandas).

        For reading a recent stretch of a large table (e.g. the last weeks of ``submitted_at``)
        without moving the whole table out of the database.

        Args:
            table: Table name.
            column: The column the bounds apply to (typically a timestamp).
            start: Inclusive lower bound, or None for none. Timestamps may be tz-aware (compared in
                UTC).
            end: Inclusive upper bound, or None for none.
            columns: Columns to return (all when None).

        Returns:
            The rows with ``start <= column <= end``, in no particular order; rows whose ``column``
            is NULL match only when neither bound is given. When the table does not exist: an empty
            frame with ``columns``.

        Raises:
            SchemaError: For invalid names, or columns the table does not have.
        """
        check_identifier(table, "table")
        check_identifier(column, "column")
        for name in columns or []:
            check_identifier(name, "column")
        types = self._column_types(table)
        if not types:
            return pd.DataFrame(columns=list(columns or []))
        if columns is None:
            columns = list(types)
        if column not in types:
            raise missing_columns(f"read_range of table {table!r}", [column], list(types))
        wanted, columns = columns, _stored_columns(f"read_range of table {table!r}", columns, types)
        conditions: list[str] = []
        params: dict[str, Any] = {}
        for name, bound, op in (("lo", start, ">="), ("hi", end, "<=")):
            if bound is None or is_null(bound):
                continue
            # The same cleaning as read(where=...): tz-aware -> naive UTC, numpy scalars -> Python.
            params[name] = self._prepare_where(table, {column: [bound]}, types)[column][0]
            conditions.append(f"t.{self._quote(column)} {op} :{name}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        selected = ", ".join(f"t.{self._quote(c)}" for c in columns)
        query = f"SELECT {selected} FROM {self._qualified(table)} t{where}"
        return _wanted(self._query(query, params, {c: types[c] for c in columns}), wanted)

    def max_value(self, table: str, column: str) -> Any:
        """The largest non-NULL value of a column (``MAX`` in the database), or None.

        Args:
            table: Table name.
            column: Column name.

        Returns:
            The value (a ``pd.Timestamp`` for timestamp columns), or None when the table does not
            exist, is empty or holds only NULLs in ``column``.
        """
        check_identifier(table, "table")
        check_identifier(column, "column")
        types = self._column_types(table)
        if not types:
            return None
        if column not in types:
            raise missing_columns(f"max_value of table {table!r}", [column], list(types))
        query = (
            f"SELECT MAX(t.{self._quote(column)}) AS {self._quote(column)} FROM {self._qualified(table)} t"
        )
        value = self._query(query, None, {column: types[column]})[column].iloc[0]
        return None if is_null(value) else value

    def sql(self, query: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a read-only SQL query (for analysis) and return its result.

        Write portable SQL: placeholders as ``:name`` with ``params={"name": value}`` (scalars only),
        no ``::`` casts (use ``CAST(x AS type)``). The query runs in a read-only transaction that is
        rolled back, so it cannot change the warehouse.

        Args:
            query: One SELECT (or WITH ... SELECT) statement.
            params: Values of the ``:name`` placeholders.

        Returns:
            The result, normalised (lists as lists, timestamps naive UTC).
        """
        return self._sql(query, dict(params or {}))

    @abstractmethod
    def _sql(self, query: str, params: dict[str, Any]) -> pd.DataFrame:
        """Run a read-only query (see :meth:`sql`)."""

    # ---- writing ------------------------------------------------------------------------------------

    def _prepare(
        self, table: str, df: pd.DataFrame, key: list[str] | None, *, keep_existing_types: bool = True
    ) -> PreparedFrame:
        check_identifier(table, "table")
        if not isinstance(df, pd.DataFrame):
            raise SchemaError(f"Expected a pandas DataFrame to write to {table!r}, got {type(df).__name__}.")
        names = list(df.columns)
        for column in names:
            check_identifier(column, "column")
        lowered = [c.lower() for c in names]
        if len(set(lowered)) != len(lowered):
            dupes = sorted({c for c in names if lowered.count(c.lower()) > 1})
            raise SchemaError(
                f"Frame for {table!r} has duplicate column names {dupes} (names are compared "
                "case-insensitively: DuckDB does). Rename or drop the duplicates."
            )
        existing = self._column_types(table)
        if key is not None:
            if missing := [c for c in key if c not in names]:
                raise missing_columns(f"key of the frame written to {table!r}", list(key), names)
            if existing and keep_existing_types and (missing := [c for c in key if c not in existing]):
                raise SchemaError(
                    f"Table {table!r} has no key column(s) {missing} (found {list(existing)}): it was "
                    "created with another key. Write with the table's key, or replace the table."
                )
            if len(df) and df[key].isna().to_numpy().any():
                bad = [c for c in key if df[c].isna().any()]
                raise SchemaError(
                    f"Key column(s) {bad} of the frame written to {table!r} hold missing values."
                )
            # Duplicate keys inside one batch: the last occurrence wins.
            df = df.drop_duplicates(subset=list(key), keep="last")
        spec = self.declaration.get(table)
        if spec is not None and existing and any(c not in existing for c in spec.types):
            # Written before its declaration (a source table of your own, or a table of an earlier
            # release before `feedback enrich` upgrades it): written by its own columns.
            spec = None
        if spec is not None:
            if key is not None and key != spec.key:
                raise SchemaError(
                    f"Table {table!r} is declared with the key {spec.key}, not {key}: write it with its "
                    "declared key (pipeline/warehouse/tables.py)."
                )
            types, df = self._declared_types(spec, df)
            new_columns: list[str] = []
            key = spec.key
        else:
            if not keep_existing_types:
                existing = {c: t for c, t in existing.items() if c in names}
            # Columns of the table the frame lacks are written as NULL (a replaced row takes the frame's
            # values), so every column of the table is in the prepared frame.
            types = {**existing, **{c: existing.get(c) or infer_type(df[c]) for c in names}}
            new_columns = [c for c in names if c not in existing] if existing else []
        frame = pd.DataFrame(
            {c: coerce_series(df[c] if c in df else _nulls(df.index, c), t) for c, t in types.items()},
            columns=list(types),
        ).reset_index(drop=True)
        target = build_table(table, types, key, self.dialect, self.schema)
        return PreparedFrame(frame, types, bool(existing), new_columns, target)

    def _declared_types(self, spec: TableSpec, df: pd.DataFrame) -> tuple[dict[str, str], pd.DataFrame]:
        """The declared column types for a frame written to a declared table (extras packed)."""
        if spec.extras:
            df = pack_extras(df, spec.types)
        elif unknown := [c for c in df.columns if c not in spec.types]:
            raise SchemaError(
                f"Table {spec.name!r} has no column(s) {unknown}: its columns are declared in "
                f"pipeline/warehouse/tables.py ({list(spec.types)}). Drop them from the frame, or declare them."
            )
        return dict(spec.types), df

    def upsert(self, table: str, df: pd.DataFrame, key: list[str]) -> int:
        """Insert or replace rows by key, idempotently (one ``INSERT ... ON CONFLICT DO UPDATE``).

        Creates a missing table from its declaration (the pipeline's tables) or from the frame's dtypes
        (other tables), adds the columns the frame has and an undeclared table lacks, and replaces rows
        whose key is in the frame (a replaced row takes the frame's values; columns the frame lacks
        become NULL). A declared table with a ``segments_extra`` column keeps the frame's undeclared
        columns there. All of it happens in one transaction. Within the frame, the last row of a
        duplicated key wins.

        Args:
            table: Table name.
            df: Rows to write. Supported: text, int, float (NaN -> NULL), bool, datetime64 (tz-aware ->
                naive UTC), nullable ints, lists, dicts (JSON text), bytes.
            key: Key columns.

        Returns:
            The number of rows written (after removing duplicate keys).

        Raises:
            SchemaError: For invalid names, missing key columns, missing key values, values the
                table's column types cannot hold, or columns a declared table does not have.
        """
        key = _check_key(key)
        prepared = self._prepare(table, df, key)
        self._write(table, prepared, key, replace=False)
        if not prepared.exists:
            logger.info(
                "Created table %s (%d columns, key %s) in %s.",
                table,
                len(prepared.types),
                key,
                self.describe(),
            )
        elif prepared.new_columns:
            logger.info("Added column(s) %s to table %s.", prepared.new_columns, table)
        logger.debug("Upserted %d row(s) into %s.", len(prepared.frame), table)
        return len(prepared.frame)

    def replace_table(self, table: str, df: pd.DataFrame, key: list[str] | None = None) -> None:
        """Atomically replace the whole content (and columns) of a table.

        Readers see either the old or the new table, never a mix. Columns that exist in both keep their
        column types (so an empty frame does not turn a list column into text).

        Args:
            table: Table name.
            df: The new content.
            key: Key columns (primary key; duplicates keep the last row), or None for no key.
        """
        key = _check_key(key) if key is not None else None
        prepared = self._prepare(table, df, key, keep_existing_types=False)
        self._write(table, prepared, key, replace=True)
        logger.debug("Replaced table %s with %d row(s).", table, len(prepared.frame))

    def delete(self, table: str, where: dict[str, list]) -> int:
        """Delete rows matching ``where`` (same form as in :meth:`read`).

        Args:
            table: Table name.
            where: ``{column: [values]}``, ANDed; must not be empty (to empty a table, use
                :meth:`replace_table` with an empty frame).

        Returns:
            Number of rows deleted (0 when the table does not exist).
        """
        check_identifier(table, "table")
        if not where:
            raise SchemaError(
                f"delete() on {table!r} needs at least one condition; to empty the table, call "
                "replace_table(table, empty_frame)."
            )
        types = self._column_types(table)
        if not types:
            return 0
        clean = self._prepare_where(table, where, types)
        if any(not values for values in clean.values()):
            return 0
        return self._delete(table, clean, types)


def _stored_columns(what: str, columns: list[str], types: Mapping[str, str]) -> list[str]:
    """The stored columns to select for ``columns``: segments kept in ``segments_extra`` come from it."""
    missing = [c for c in columns if c not in types]
    if missing and SEGMENTS_EXTRA not in types:
        raise missing_columns(what, missing, list(types))
    stored = [c for c in columns if c in types]
    return [*stored, SEGMENTS_EXTRA] if missing and SEGMENTS_EXTRA not in stored else stored


def _wanted(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame's ``columns`` in order (a segment no row has: all NULL); unpacked extras when all."""
    if SEGMENTS_EXTRA in columns or list(frame.columns) == columns:
        return frame
    out = {c: frame[c] if c in frame else _nulls(frame.index, c) for c in columns}
    return pd.DataFrame(out, columns=columns)


def _nulls(index: pd.Index, name: str) -> pd.Series:
    return pd.Series(None, index=index, dtype=object, name=name)


def _check_key(key: object) -> list[str]:
    if isinstance(key, str) or not isinstance(key, Sequence) or not key:
        raise SchemaError(f"key must be a non-empty list of column names, e.g. ['response_id'], got {key!r}.")
    return [check_identifier(column, "key column") for column in key]
