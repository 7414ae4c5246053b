"""The type rules every backend shares: logical column types, cleaning before writing, normalising
after reading.

Column types are tracked as a small set of *logical* types (the module constants ``TEXT``, ``BIGINT``
...); :mod:`pipeline.warehouse.tables` maps them to SQLAlchemy types, which each backend compiles to its
own DDL.

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
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import FeedbackError, SchemaError

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

VECTOR_TABLE = "embedding_cache"  # the default name (TablesConfig.embedding_cache)
VECTOR_KEY = ["model_id", "text_hash"]

#: The JSON text column that carries a row's undeclared segment columns (see pipeline.warehouse.tables).
SEGMENTS_EXTRA = "segments_extra"

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
    if SEGMENTS_EXTRA in result.columns:
        result = unpack_extras(result)
    return result.reset_index(drop=True)


def pack_extras(frame: pd.DataFrame, declared: Iterable[str]) -> pd.DataFrame:
    """Move the columns of ``frame`` that are not ``declared`` into one JSON text column.

    Each row's value is a JSON object of its non-missing extra values (None when it has none).
    """
    known = set(declared)
    extra = [c for c in frame.columns if c not in known and c != SEGMENTS_EXTRA]
    if not extra:
        return frame
    rows = frame[extra].astype(object).to_numpy().tolist()
    packed = [{c: v for c, v in zip(extra, row, strict=True) if not is_null(v)} for row in rows]
    values = [to_json(d) if d else None for d in packed]
    return frame.drop(columns=extra).assign(
        **{SEGMENTS_EXTRA: pd.Series(values, index=frame.index, dtype=object)}
    )


def unpack_extras(frame: pd.DataFrame) -> pd.DataFrame:
    """The inverse of :func:`pack_extras`: the JSON column's keys become columns again."""
    dicts = []
    for value in frame[SEGMENTS_EXTRA].astype(object).tolist():
        try:
            parsed = json.loads(value) if isinstance(value, str) else None
        except ValueError:
            parsed = None
        dicts.append(parsed if isinstance(parsed, dict) else {})
    names = list(dict.fromkeys(k for d in dicts for k in d if k not in frame.columns))
    out = frame.drop(columns=[SEGMENTS_EXTRA])
    for name in names:
        column = pd.Series([d.get(name) for d in dicts], index=frame.index, dtype=object, name=name)
        out[name] = normalise_column(column, infer_type(column))
    return out


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


def check_values(column: str, values: object) -> list[Any]:
    """A ``where`` value list (or hash list) as a list; a lone string or scalar is refused."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise SchemaError(
            f"where[{column!r}] must be a list of values, not {type(values).__name__} ({values!r}); "
            f"write where={{{column!r}: [{values!r}]}} for a single value."
        )
    if isinstance(values, pd.Series | pd.Index | np.ndarray):
        values = values.tolist()
    return list(values)
