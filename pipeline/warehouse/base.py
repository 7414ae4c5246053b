"""The backend-neutral ``Warehouse`` interface and the type rules both backends share.

A backend (DuckDB, any SQLAlchemy database) implements a few primitives (``_query``, ``_write``,
``_read``, ``_delete``, ``_column_types`` ...). Everything that must behave the same everywhere lives
here: identifier checks, how a pandas column maps to a column type, how values are cleaned before they
are written (tz-aware timestamps to naive UTC, NaN to NULL, numpy arrays to lists ...), how results are
normalised after they are read, transactions and the embedding cache.

Column types are tracked as a small set of *logical* types (the module constants ``TEXT``, ``BIGINT``
...); each backend maps them to its own DDL types and back.

Conventions every backend follows:

* Timestamps are stored as naive UTC (``TIMESTAMP`` without time zone). Tz-aware input is converted
  to UTC; tz-aware columns read from a table created elsewhere come back converted to naive UTC.
* Missing values: NaN, None, ``pd.NA`` and ``NaT`` are all written as SQL NULL.
* Reading returns int64 / bool columns when they hold no NULL and the nullable ``Int64`` / ``boolean``
  dtypes when they do; floats as float64 (NULL as NaN); text with pandas' default string dtype; list
  columns as Python lists; binary columns as ``bytes``; timestamps as naive ``datetime64``.
* ``dict`` values (and lists of mixed or nested values) are stored as JSON text and read back as
  that text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import FeedbackError, SchemaError, missing_columns

logger = logging.getLogger(__name__)

# Logical column types.
TEXT = "text"
BIGINT = "bigint"
DOUBLE = "double"
BOOLEAN = "boolean"
TIMESTAMP = "timestamp"
DATE = "date"
BLOB = "blob"
JSON = "json"  # a column the database itself types as JSON (generic SQL list columns)
LIST_TEXT = "list_text"
LIST_BIGINT = "list_bigint"
LIST_DOUBLE = "list_double"
OTHER = "other"  # a type this module does not manage (created by someone else): passed through

LIST_ITEM_TYPES: dict[str, str] = {LIST_TEXT: TEXT, LIST_BIGINT: BIGINT, LIST_DOUBLE: DOUBLE}

VECTOR_TABLE = "embedding_cache"
VECTOR_KEY = ["model_id", "text_hash"]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def check_identifier(name: object, what: str = "column") -> str:
    """Return ``name`` if it is a safe SQL identifier, else raise.

    Only ``[A-Za-z_][A-Za-z0-9_]*`` is accepted: such names can always be quoted safely, and they mean
    the same thing in DuckDB, PostgreSQL and other databases.

    Args:
        name: The table, column or schema name to check.
        what: What the name is, for the message ("table", "column", "schema").

    Returns:
        The name, unchanged.

    Raises:
        SchemaError: If the name is not a string or has characters outside the allowed set.
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise SchemaError(
            f"Invalid {what} name {name!r}: warehouse names must match [A-Za-z_][A-Za-z0-9_]* "
            "(letters, digits and underscores, not starting with a digit). Rename it, e.g. "
            f"{_suggest_identifier(name)!r}."
        )
    return name


def _suggest_identifier(name: object) -> str:
    text = re.sub(r"[^A-Za-z0-9_]+", "_", str(name)).strip("_") or "col"
    return text if re.match(r"[A-Za-z_]", text) else f"_{text}"


def is_null(value: object) -> bool:
    """Return True for the scalar missing-value markers (None, NaN, pd.NA, NaT); False for containers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    return False


def _value_kind(value: object) -> str:
    # bool before int: bool is an int subclass.
    if isinstance(value, bool | np.bool_):
        return "bool"
    if isinstance(value, int | np.integer):
        return "int"
    if isinstance(value, float | np.floating | decimal.Decimal):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes"
    if isinstance(value, dt.datetime | np.datetime64):  # pd.Timestamp is a datetime
        return "datetime"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, list | tuple | np.ndarray):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return "other"


def _infer_list_type(values: Iterable[Any]) -> str:
    kinds: set[str] = set()
    for value in values:
        items = value.tolist() if isinstance(value, np.ndarray) else value
        for item in items:
            if not is_null(item):
                kinds.add(_value_kind(item))
    if not kinds or kinds == {"str"}:
        return LIST_TEXT
    if kinds == {"int"}:
        return LIST_BIGINT
    if kinds <= {"int", "float"}:
        return LIST_DOUBLE
    # Nested, mixed or exotic items: keep them losslessly as JSON text.
    return TEXT


def infer_type(series: pd.Series) -> str:
    """Infer the logical column type of a pandas column.

    Args:
        series: The column.

    Returns:
        One of the logical type constants of this module.

    Raises:
        SchemaError: For dtypes the warehouse cannot store (timedelta, complex, period, interval).
    """
    dtype = series.dtype
    name = series.name
    if isinstance(dtype, pd.CategoricalDtype):
        return infer_type(series.astype(object))
    if pd.api.types.is_bool_dtype(dtype):
        return BOOLEAN
    if pd.api.types.is_integer_dtype(dtype):
        return BIGINT
    if pd.api.types.is_float_dtype(dtype):
        return DOUBLE
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return TIMESTAMP
    if (
        pd.api.types.is_timedelta64_dtype(dtype)
        or pd.api.types.is_complex_dtype(dtype)
        or isinstance(dtype, pd.PeriodDtype | pd.IntervalDtype)
    ):
        raise SchemaError(
            f"Column {name!r} has dtype {dtype}, which the warehouse cannot store. Convert it first "
            "(e.g. timedeltas to seconds with `.dt.total_seconds()`, periods to timestamps)."
        )
    if isinstance(dtype, pd.StringDtype):
        return TEXT
    # object (and anything else, e.g. pyarrow-backed dtypes): look at the values.
    values = [v for v in series.astype(object).tolist() if not is_null(v)]
    kinds = {_value_kind(v) for v in values}
    if not kinds or kinds == {"str"}:
        return TEXT
    if kinds == {"bool"}:
        return BOOLEAN
    if kinds == {"int"}:
        return BIGINT
    if kinds <= {"int", "float"}:
        return DOUBLE
    if kinds == {"bytes"}:
        return BLOB
    if kinds == {"datetime"} or kinds == {"datetime", "date"}:
        return TIMESTAMP
    if kinds == {"date"}:
        return DATE
    if kinds == {"list"}:
        return _infer_list_type(values)
    if kinds <= {"list", "dict"}:
        return TEXT  # JSON text
    logger.warning("Column %r mixes value types %s: storing it as text.", name, sorted(kinds))
    return TEXT


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def to_json(value: object) -> str:
    """Serialise a value as JSON text (numpy values, timestamps and sets included)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _to_text(value: object) -> str | None:
    if is_null(value):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict | np.ndarray | set | frozenset):
        return to_json(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _to_list(value: object, item_type: str, column: str) -> list[Any] | None:
    if value is None or (not isinstance(value, list | tuple | np.ndarray) and is_null(value)):
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise SchemaError(
            f"Column {column!r} is a list column but holds a {type(value).__name__} value ({value!r}). "
            "Put lists (or None) in every row."
        )
    out: list[Any] = []
    for item in value:
        if is_null(item):
            out.append(None)
        elif item_type == TEXT:
            out.append(_to_text(item))
        elif item_type == BIGINT:
            out.append(int(item))
        else:
            out.append(float(item))
    return out


def _to_blob(value: object, column: str) -> bytes | None:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, np.ndarray):
        return value.tobytes()
    if is_null(value):
        return None
    raise SchemaError(
        f"Column {column!r} is a binary column but holds a {type(value).__name__} value. Encode it to "
        "bytes first."
    )


def _to_date(value: object, column: str) -> dt.date | None:
    if is_null(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return pd.Timestamp(value).date()
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"Column {column!r} holds {value!r}, which is not a date.") from exc


def _container_or_none(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple | dict):
        return value
    return None if is_null(value) else value


def _to_timestamp(series: pd.Series) -> pd.Series:
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(dtype):
        # Objects may mix naive and aware values: utc=True converts aware ones and reads naive ones as
        # UTC already (the warehouse convention).
        series = pd.to_datetime(series.astype(object), utc=True, format="mixed").dt.tz_localize(None)
    return series.astype("datetime64[us]")


def coerce_series(series: pd.Series, logical: str) -> pd.Series:
    """Clean a column for writing into a column of the given logical type.

    Args:
        series: The column to clean.
        logical: The logical type of the target column.

    Returns:
        A new column: ``Int64`` for BIGINT, ``float64`` for DOUBLE, ``boolean`` for BOOLEAN, naive UTC
        ``datetime64[us]`` for TIMESTAMP, and object columns of ``str`` / ``bytes`` / ``list`` /
        ``datetime.date`` (missing values as None) for the others.

    Raises:
        SchemaError: If the values cannot be converted to the target type.
    """
    name = str(series.name)
    try:
        if logical == BIGINT:
            if pd.api.types.is_bool_dtype(series.dtype):
                series = series.astype("Int64")
            return series.astype(object).where(series.notna(), None).astype("Int64")
        if logical == DOUBLE:
            return pd.to_numeric(series.astype(object).where(series.notna(), None)).astype("float64")
        if logical == BOOLEAN:
            return series.astype(object).where(series.notna(), None).astype("boolean")
        if logical == TIMESTAMP:
            return _to_timestamp(series)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SchemaError(
            f"Column {name!r} cannot be stored as {logical} (its type in the table, or the type "
            f"inferred from the frame): {exc}. Convert the values, or write them to a new column."
        ) from exc
    values = series.astype(object).tolist()
    if logical == TEXT:
        out: list[Any] = [_to_text(v) for v in values]
    elif logical in LIST_ITEM_TYPES:
        try:
            out = [_to_list(v, LIST_ITEM_TYPES[logical], name) for v in values]
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"Column {name!r} cannot be stored as {logical}: {exc}.") from exc
    elif logical == BLOB:
        out = [_to_blob(v, name) for v in values]
    elif logical == DATE:
        out = [_to_date(v, name) for v in values]
    else:  # JSON (the driver serialises) and OTHER (passed through)
        out = [_container_or_none(v) for v in values]
    return pd.Series(out, index=series.index, name=series.name, dtype=object)


# ----------------------------------------------------------------------------------------------------
# Normalising what comes back from a database.


def _default_string_dtype() -> Any:
    # pandas >= 3 infers its "str" dtype for text; pandas 2 keeps object. Follow whichever is installed.
    return pd.Series(["x"]).dtype


def _list_value(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return list(value)
    return None if is_null(value) else value


def _bytes_value(value: object) -> object:
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return None if not isinstance(value, bytes) and is_null(value) else value


def _json_value(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _generic_value(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    return value


def normalise_column(series: pd.Series, logical: str | None) -> pd.Series:
    """Bring a column read from a backend to the dtypes documented in this module.

    Args:
        series: The column as the driver returned it.
        logical: Its logical type, or None when unknown (ad-hoc queries).

    Returns:
        The normalised column.
    """
    dtype = series.dtype
    if logical in (BIGINT, BOOLEAN):
        nullable = "Int64" if logical == BIGINT else "boolean"
        plain = "int64" if logical == BIGINT else "bool"
        if not pd.api.types.is_numeric_dtype(dtype) or series.isna().any():
            series = series.astype(object).where(series.notna(), None).astype(nullable)
        return series.astype(plain) if not series.isna().any() else series.astype(nullable)
    if logical == DOUBLE:
        return pd.to_numeric(series.astype(object).where(series.notna(), None)).astype("float64")
    if logical in (TIMESTAMP, DATE):
        if isinstance(dtype, pd.DatetimeTZDtype):
            return series.dt.tz_convert("UTC").dt.tz_localize(None)
        if pd.api.types.is_datetime64_dtype(dtype):
            return series
        return (
            pd.to_datetime(series.astype(object), utc=True, format="mixed")
            .dt.tz_localize(None)
            .astype("datetime64[us]")
        )
    if logical == TEXT:
        target = _default_string_dtype()
        if dtype == target:
            return series
        if isinstance(target, pd.StringDtype):
            return series.astype(object).where(series.notna(), None).astype(target)
        return series.astype(object).where(series.notna(), None)
    if logical in LIST_ITEM_TYPES:
        return series.astype(object).map(_list_value)
    if logical == BLOB:
        return series.astype(object).map(_bytes_value)
    if logical == JSON:
        return series.astype(object).map(_json_value)
    # Unknown: fix what drivers commonly return (numpy arrays for lists, bytearray for blobs, tz).
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_object_dtype(dtype):
        series = series.map(_generic_value)
        present = [v for v in series if v is not None]
        # Drivers return timestamptz values as aware datetimes in an object column.
        if present and all(isinstance(v, dt.datetime) and v.tzinfo is not None for v in present):
            return pd.to_datetime(series, utc=True).dt.tz_localize(None)
    return series


def normalise_frame(frame: pd.DataFrame, types: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Normalise every column of a result frame (see :func:`normalise_column`).

    Args:
        frame: The result as the driver returned it.
        types: Logical types by column name; columns not in it are normalised generically.

    Returns:
        A new frame with a fresh RangeIndex.
    """
    types = types or {}
    out = {col: normalise_column(frame[col], types.get(col)) for col in frame.columns}
    result = pd.DataFrame(out, columns=list(frame.columns))
    return result.reset_index(drop=True)


# ----------------------------------------------------------------------------------------------------
# Vectors.


def pack_vectors(vectors: np.ndarray) -> list[bytes]:
    """Encode each row of a 2-d array as little-endian float32 bytes."""
    matrix = np.ascontiguousarray(vectors, dtype="<f4")
    return [row.tobytes() for row in matrix]


def unpack_vector(blob: bytes | bytearray | memoryview, dim: int | None = None) -> np.ndarray:
    """Decode bytes written by :func:`pack_vectors` into a float32 vector (a fresh, writable array)."""
    vector = np.frombuffer(blob, dtype="<f4").astype(np.float32)
    if dim is not None and vector.shape[0] != dim:
        raise FeedbackError(
            f"Embedding cache entry holds {vector.shape[0]} floats but says dim={dim}; the cache is "
            "corrupt. Delete the model's rows from embedding_cache to rebuild them."
        )
    return vector


# ----------------------------------------------------------------------------------------------------
# The interface.


@dataclass
class PreparedFrame:
    """A frame cleaned for writing, with the logical type of every column.

    Attributes:
        frame: The cleaned frame (see :func:`coerce_series`).
        types: Logical type of every column of ``frame``, in order.
        exists: Whether the target table exists already.
        new_columns: Columns of ``frame`` that the (existing) table lacks.
    """

    frame: pd.DataFrame
    types: dict[str, str]
    exists: bool
    new_columns: list[str] = field(default_factory=list)


def _check_values(column: str, values: object) -> list[Any]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise SchemaError(
            f"where[{column!r}] must be a list of values, not {type(values).__name__} ({values!r}); "
            f"write where={{{column!r}: [{values!r}]}} for a single value."
        )
    if isinstance(values, pd.Series | pd.Index | np.ndarray):
        values = values.tolist()
    return list(values)


class Warehouse(ABC):
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
            raw = [v for v in _check_values(column, values) if not is_null(v)]
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
        elif missing := [c for c in columns if c not in types]:
            raise missing_columns(f"read of table {table!r}", missing, list(types))
        clean_where = self._prepare_where(table, where, types)
        return self._read(table, list(columns), clean_where, types)

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
        if missing := [c for c in [*columns, column] if c not in types]:
            raise missing_columns(f"read_range of table {table!r}", missing, list(types))
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
        return self._query(query, params, {c: types[c] for c in columns})

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
        if not keep_existing_types:
            existing_for_types = {c: t for c, t in existing.items() if c in names}
        else:
            existing_for_types = existing
        types = {c: existing_for_types.get(c) or infer_type(df[c]) for c in names}
        frame = pd.DataFrame({c: coerce_series(df[c], types[c]) for c in names}, columns=names).reset_index(
            drop=True
        )
        new_columns = [c for c in names if c not in existing] if existing else []
        return PreparedFrame(frame=frame, types=types, exists=bool(existing), new_columns=new_columns)

    def upsert(self, table: str, df: pd.DataFrame, key: list[str]) -> int:
        """Insert or replace rows by key, idempotently.

        Creates the table from the frame's dtypes when it is missing (primary key on ``key``), adds the
        columns the frame has and the table lacks, and replaces rows whose key is in the frame (a
        replaced row takes the frame's values; columns the frame lacks become NULL). All of it happens
        in one transaction. Within the frame, the last row of a duplicated key wins.

        Args:
            table: Table name.
            df: Rows to write. Supported: text, int, float (NaN -> NULL), bool, datetime64 (tz-aware ->
                naive UTC), nullable ints, lists, dicts (JSON text), bytes.
            key: Key columns.

        Returns:
            The number of rows written (after removing duplicate keys).

        Raises:
            SchemaError: For invalid names, missing key columns, missing key values or values the
                table's column types cannot hold.
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

    # ---- embedding cache ----------------------------------------------------------------------------

    def read_vectors(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Read cached embeddings.

        Args:
            model_id: The embedder's id (vectors of different models never mix).
            hashes: Text hashes to look up.

        Returns:
            ``{hash: float32 vector}`` for the hashes found; missing ones are absent.
        """
        if not isinstance(model_id, str) or not model_id:
            raise SchemaError(f"model_id must be a non-empty string, got {model_id!r}.")
        hashes = _check_values("hashes", hashes)
        if not hashes or not self.table_exists(VECTOR_TABLE):
            return {}
        unique = list(dict.fromkeys(str(h) for h in hashes))
        return self._read_vectors(model_id, unique)

    def _read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        # Generic path; backends override with something faster when they can.
        frame = self.read(
            VECTOR_TABLE, ["text_hash", "dim", "vector"], {"model_id": [model_id], "text_hash": hashes}
        )
        return {
            h: unpack_vector(blob, int(dim))
            for h, dim, blob in zip(frame["text_hash"], frame["dim"], frame["vector"], strict=True)
        }

    def write_vectors(self, model_id: str, hashes: Sequence[str], vectors: np.ndarray) -> int:
        """Store embeddings in the cache (table ``embedding_cache``, key ``(model_id, text_hash)``).

        Vectors are stored as little-endian float32 bytes, so they read back exactly. Writing a key
        that exists overwrites it; a hash given twice keeps its last vector.

        Args:
            model_id: The embedder's id.
            hashes: One text hash per row of ``vectors``.
            vectors: 2-d array (n, dim); converted to float32.

        Returns:
            The number of vectors written.
        """
        if not isinstance(model_id, str) or not model_id:
            raise SchemaError(f"model_id must be a non-empty string, got {model_id!r}.")
        hashes = [str(h) for h in _check_values("hashes", hashes)]
        matrix = np.asarray(vectors)
        if matrix.ndim != 2 or matrix.shape[0] != len(hashes):
            raise SchemaError(
                f"write_vectors expects a 2-d array with one row per hash: got shape {matrix.shape} for "
                f"{len(hashes)} hash(es)."
            )
        if not len(hashes):
            return 0
        matrix = np.ascontiguousarray(matrix, dtype="<f4")
        last = {h: i for i, h in enumerate(hashes)}  # the last occurrence wins
        if len(last) != len(hashes):
            index = sorted(last.values())
            hashes, matrix = [hashes[i] for i in index], matrix[index]
        return self._write_vectors(model_id, hashes, matrix)

    def _vector_prepared(self, frame: pd.DataFrame) -> PreparedFrame:
        """A PreparedFrame for the embedding cache (types known: no inference over 100k rows)."""
        existing = self._column_types(VECTOR_TABLE)
        types = {"model_id": TEXT, "text_hash": TEXT, "dim": BIGINT, "vector": BLOB}
        return PreparedFrame(
            frame=frame,
            types={c: existing.get(c, t) for c, t in types.items()},
            exists=bool(existing),
            new_columns=[c for c in types if existing and c not in existing],
        )

    def _write_vectors(self, model_id: str, hashes: list[str], matrix: np.ndarray) -> int:
        frame = pd.DataFrame(
            {
                "model_id": pd.Series([model_id] * len(hashes), dtype=object),
                "text_hash": pd.Series(hashes, dtype=object),
                "dim": pd.Series(np.full(len(hashes), matrix.shape[1], dtype=np.int64), dtype="Int64"),
                "vector": pd.Series(pack_vectors(matrix), dtype=object),
            }
        )
        self._write(VECTOR_TABLE, self._vector_prepared(frame), VECTOR_KEY, replace=False)
        return len(hashes)


def _check_key(key: object) -> list[str]:
    if isinstance(key, str) or not isinstance(key, Sequence) or not key:
        raise SchemaError(f"key must be a non-empty list of column names, e.g. ['response_id'], got {key!r}.")
    return [check_identifier(column, "key column") for column in key]
