"""The warehouse's tables, declared once as SQLAlchemy ``Table`` objects built from the config.

Every table the pipeline writes is declared here, with its columns, their types and its key; every
backend creates a table from this declaration (DuckDB runs the DDL SQLAlchemy compiles for PostgreSQL,
which DuckDB speaks; PostgreSQL and SQLite get it from SQLAlchemy directly) and writes it with one
``INSERT ... ON CONFLICT (key) DO UPDATE`` statement, also built here. Table names are configuration
(:class:`pipeline.config.TablesConfig`); columns are not.

Segment columns: the ones named in ``source.segments`` and the customer column (``source.customer_id``,
default ``customer_id``) are declared text
columns of the source and enriched tables; any other extra column of a source row travels in one JSON
text column, :data:`SEGMENTS_EXTRA`, which the warehouse packs on write and unpacks on read (callers
see the columns, never the JSON).

Tables that are not declared (a user's own, the tests' scratch tables) are still written: their
columns are inferred from the frame (:func:`pipeline.warehouse.types.infer_type`) into the same kind
of ``Table`` object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.warehouse.types import (
    BIGINT,
    BLOB,
    BOOLEAN,
    DATE,
    DOUBLE,
    JSON,
    LIST_BIGINT,
    LIST_DOUBLE,
    LIST_ITEM_TYPES,
    LIST_TEXT,
    OTHER,
    SEGMENTS_EXTRA,
    TEXT,
    TIMESTAMP,
)

if TYPE_CHECKING:
    import sqlalchemy as sa

    from pipeline.config import EnrichmentConfig

_T, _I, _F, _B, _TS, _BLOB, _LT = TEXT, BIGINT, DOUBLE, BOOLEAN, TIMESTAMP, BLOB, LIST_TEXT
_LINEAGE = [
    ("run_id", _T),
    ("embedder_id", _T),
    ("sentiment_model_version", _T),
    ("sentiment_source", _T),
    ("tagger_version", _T),
    ("taxonomy_version", _T),
    ("topic_model_version", _T),
]
_SOURCE_HEAD = [("response_id", _T), ("survey_type", _T), ("score", _F), ("submitted_at", _TS)]

# TablesConfig field -> (key, columns before the segments, columns after them, carries segments).
_COLUMNS: dict[str, tuple[list[str], list[tuple[str, str]], list[tuple[str, str]], bool]] = {
    "source": (["response_id"], [*_SOURCE_HEAD[:3], ("comment", _T), _SOURCE_HEAD[3]], [], True),
    "enriched": (
        ["response_id"],
        _SOURCE_HEAD,
        [
            ("language", _T),
            ("language_confidence", _F),
            ("is_non_answer", _B),
            ("text_redacted", _T),
            ("text_truncated", _B),
            ("pii_found", _LT),
            ("n_sentences", _I),
            ("sentiment_label", _T),
            ("sentiment_score", _F),
            ("topic_id", _I),
            ("topic_label", _T),
            ("tags", _LT),
            *_LINEAGE,
            ("enriched_at", _TS),
            ("source_hash", _T),
        ],
        True,
    ),
    "tags": (
        ["response_id", "tag"],
        [
            ("response_id", _T),
            ("tag", _T),
            ("parent_tag", _T),
            ("score", _F),
            ("sentiment_label", _T),
            ("sentiment_score", _F),
            ("source", _T),
            ("tagger_version", _T),
            ("run_id", _T),
        ],
        [],
        False,
    ),
    "sentences": (
        ["response_id", "sentence_id"],
        [
            ("response_id", _T),
            ("sentence_id", _I),
            ("text_redacted", _T),
            ("sentiment_label", _T),
            ("sentiment_score", _F),
            ("tags", _LT),
            ("run_id", _T),
        ],
        [],
        False,
    ),
    "topics": (
        ["topic_id"],
        [
            ("topic_id", _I),
            ("label", _T),
            ("keywords", _LT),
            ("representative_quotes", _LT),
            ("suggested_tag", _T),
            ("tag_share", _F),
            ("candidate_new_tag", _T),
            ("size", _I),
            ("first_seen", _TS),
            ("last_seen", _TS),
            ("model_version", _T),
            ("status", _T),
        ],
        [],
        False,
    ),
    "topic_history": (
        ["model_version", "event", "topic_id"],
        [
            ("model_version", _T),
            ("event", _T),
            ("topic_id", _I),
            ("related_ids", _T),
            ("overlap", _F),
            ("detail", _T),
            ("created_at", _TS),
        ],
        [],
        False,
    ),
    "alerts": (
        ["alert_id"],
        [
            ("alert_id", _T),
            ("kind", _T),
            ("key", _T),
            ("label", _T),
            ("period", _T),
            ("period_start", _TS),
            ("period_end", _TS),
            ("count", _I),
            ("baseline", _F),
            ("ratio", _F),
            ("reason", _T),
            ("evidence", _T),
            ("created_at", _TS),
        ],
        [],
        False,
    ),
    "runs": (
        ["run_id"],
        [
            ("run_id", _T),
            ("flow", _T),
            ("started_at", _TS),
            ("finished_at", _TS),
            ("seconds", _F),
            ("timings", _T),
            ("rows_in", _I),
            ("rows_enriched", _I),
            ("rows_quarantined", _I),
            ("rows_removed", _I),
            ("column_names", _T),
            ("quarantine_reasons", _T),
            ("watermark_submitted_at", _TS),
            ("watermark_response_id", _T),
            ("embedded_new", _I),
            *_LINEAGE[1:],
            ("status", _T),
            ("error", _T),
            ("host", _T),
            ("pid", _I),
            ("prefect_server_pid", _I),
        ],
        [],
        False,
    ),
    "quarantine": (
        ["response_id"],
        [
            ("response_id", _T),
            ("reason", _T),
            ("detail", _T),
            ("raw", _T),
            ("run_id", _T),
            ("quarantined_at", _TS),
            ("source_hash", _T),
        ],
        [],
        False,
    ),
    "lock": (
        ["name"],
        [
            ("name", _T),
            ("holder", _T),
            ("host", _T),
            ("pid", _I),
            ("acquired_at", _TS),
            ("heartbeat_at", _TS),
            ("expires_at", _TS),
        ],
        [],
        False,
    ),
    "meta": (["key"], [("key", _T), ("value", _T), ("updated_at", _TS)], [], False),
    "erasures": (
        ["id_hash"],
        [("id_hash", _T), ("erasure_id", _T), ("reason", _T), ("who", _T), ("erased_at", _TS)],
        [],
        False,
    ),
    "model_files": (
        ["family", "version", "name"],
        [("family", _T), ("version", _T), ("name", _T), ("content", _BLOB), ("created_at", _TS)],
        [],
        False,
    ),
    "model_pointers": (["family"], [("family", _T), ("pointer", _T), ("updated_at", _TS)], [], False),
    "embedding_cache": (
        ["model_id", "text_hash"],
        [("model_id", _T), ("text_hash", _T), ("dim", _I), ("vector", _BLOB)],
        [],
        False,
    ),
    "tag_labels": (
        ["id"],
        [
            ("id", _T),
            ("text", _T),
            ("tags", _LT),
            ("lang", _T),
            ("labeller", _T),
            ("labelled_at", _TS),
        ],
        [],
        False,
    ),
    # The close-the-loop queue (pipeline.analysis.followups): the nightly run inserts new candidates,
    # people edit status/owner/note; a row is never rewritten by a run.
    "followups": (
        ["response_id"],
        [
            ("response_id", _T),
            ("customer_id", _T),
            ("survey_type", _T),
            ("score", _F),
            ("submitted_at", _TS),
            ("reason", _T),
            ("action", _T),
            ("status", _T),
            ("owner", _T),
            ("note", _T),
            ("created_at", _TS),
            ("created_by", _T),
            ("updated_at", _TS),
            ("updated_by", _T),
        ],
        [],
        False,
    ),
    # Human sentiment corrections (pipeline.analysis.corrections): shown over the model's label.
    "sentiment_labels": (
        ["response_id"],
        [
            ("response_id", _T),
            ("sentiment_label", _T),
            ("note", _T),
            ("labeller", _T),
            ("labelled_at", _TS),
        ],
        [],
        False,
    ),
}


def _default_names() -> dict[str, str]:
    from pipeline.config import TablesConfig

    return TablesConfig().model_dump()


#: Default table name of each TablesConfig field.
DEFAULT_NAMES: dict[str, str] = {field: name for field, name in _default_names().items() if field in _COLUMNS}


def declared_columns(field_name: str) -> list[str]:
    """The declared columns of a table (by its TablesConfig field), without segment columns."""
    _, head, tail, _ = _COLUMNS[field_name]
    return [c for c, _ in [*head, *tail]]


def declared_key(field_name: str) -> list[str]:
    """The declared key of a table (by its TablesConfig field)."""
    return list(_COLUMNS[field_name][0])


def sa_type(logical: str, backend: str, *, key: bool = False) -> Any:
    """The SQLAlchemy type of a logical column type on a backend (``duckdb``, ``postgresql``, ...).

    Lists are ``ARRAY`` on DuckDB and PostgreSQL, JSON elsewhere (text in SQLite).
    """
    import sqlalchemy as sa

    if logical in LIST_ITEM_TYPES:
        if backend in ("postgresql", "duckdb"):
            from sqlalchemy.dialects.postgresql import ARRAY

            return ARRAY(sa_type(LIST_ITEM_TYPES[logical], backend))
        return sa.JSON(none_as_null=True)
    if logical == TEXT and key and backend in ("mysql", "mariadb"):
        return sa.String(255)  # MySQL cannot index TEXT without a length
    if logical == JSON:
        return sa.JSON(none_as_null=True)
    types = {
        TEXT: sa.Text,
        BIGINT: sa.BigInteger,
        DOUBLE: sa.Double,
        BOOLEAN: sa.Boolean,
        TIMESTAMP: sa.DateTime,
        DATE: sa.Date,
        BLOB: sa.LargeBinary,
        OTHER: sa.Text,
    }
    return types[logical]()


def logical_type(column_type: Any) -> str:
    """The logical type of a (reflected) SQLAlchemy column type; ``OTHER`` for unmanaged ones."""
    import sqlalchemy.types as st

    if isinstance(column_type, st.ARRAY):
        item = logical_type(column_type.item_type)
        return {TEXT: LIST_TEXT, BIGINT: LIST_BIGINT, DOUBLE: LIST_DOUBLE}.get(item, OTHER)
    checks = [
        (st.JSON, JSON),
        (st.LargeBinary | st._Binary, BLOB),
        (st.Boolean, BOOLEAN),
        (st.Integer, BIGINT),
        (st.Float | st.Numeric, DOUBLE),
        (st.DateTime, TIMESTAMP),
        (st.Date, DATE),
        (st.String, TEXT),
    ]
    return next((logical for kind, logical in checks if isinstance(column_type, kind)), OTHER)


def build_table(
    name: str,
    types: dict[str, str],
    key: list[str] | None,
    backend: str,
    schema: str | None = None,
    metadata: sa.MetaData | None = None,
) -> sa.Table:
    """A ``Table`` of logical column types (the primary key on ``key``)."""
    import sqlalchemy as sa

    keys = set(key or [])
    columns = [
        sa.Column(c, sa_type(t, backend, key=c in keys), primary_key=c in keys, autoincrement=False)
        for c, t in types.items()
    ]
    return sa.Table(name, metadata if metadata is not None else sa.MetaData(), *columns, schema=schema)


@dataclass
class TableSpec:
    """One declared table.

    Attributes:
        name: The table's name (from the config).
        key: Its key (the primary key; upserts replace rows by it).
        types: Logical type of every column, in table order.
        extras: Whether undeclared columns travel in :data:`SEGMENTS_EXTRA`.
    """

    name: str
    key: list[str]
    types: dict[str, str]
    extras: bool = False


@dataclass
class Declaration:
    """The pipeline's tables, by name (see :func:`declare`)."""

    tables: dict[str, TableSpec] = field(default_factory=dict)
    vector_table: str = "embedding_cache"

    def get(self, name: str) -> TableSpec | None:
        """The declared table called ``name``, or None when it is not one of the pipeline's."""
        return self.tables.get(name)

    def metadata(self, backend: str, schema: str | None = None) -> sa.MetaData:
        """Every declared table as SQLAlchemy ``Table`` objects of one ``MetaData``."""
        import sqlalchemy as sa

        metadata = sa.MetaData()
        for spec in self.tables.values():
            build_table(spec.name, spec.types, spec.key, backend, schema, metadata)
        return metadata


def declare(config: EnrichmentConfig | None = None) -> Declaration:
    """Declare the pipeline's tables with the config's names and segment columns.

    Args:
        config: The enrichment config (``tables``, ``source.segments``, ``source.customer_id``); None:
            the defaults.

    Returns:
        The declaration.
    """
    from pipeline.config import EnrichmentConfig

    config = config or EnrichmentConfig()
    names = config.tables.model_dump()
    # The customer column (erasure finds customers by it) is always a column of its own.
    segments = [config.source.customer_id or "customer_id"]
    segments += [s for s in config.source.segments or [] if s not in segments]
    out = Declaration(vector_table=names["embedding_cache"])
    for field_name, (key, head, tail, extras) in _COLUMNS.items():
        types = dict(head)
        if extras:
            types |= {s: TEXT for s in segments if s not in types}
        types |= dict(tail)
        if extras:
            types[SEGMENTS_EXTRA] = TEXT
        out.tables[names[field_name]] = TableSpec(names[field_name], list(key), types, extras)
    return out


def create_ddl(table: sa.Table) -> str:
    """``CREATE TABLE`` of a declared table as PostgreSQL writes it (DuckDB reads the same DDL)."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    return str(CreateTable(table).compile(dialect=postgresql.dialect())).strip()


def add_column_ddl(table: sa.Table, column: str, dialect: Any) -> str:
    """``ALTER TABLE ... ADD COLUMN`` for a column of ``table`` (undeclared tables grow with the frame)."""
    preparer = dialect.identifier_preparer
    col = table.c[column]
    return (
        f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN {preparer.format_column(col)} "
        f"{col.type.compile(dialect=dialect)}"
    )


def upsert_statement(target: sa.Table, source: str, columns: list[str], key: list[str], dialect: Any) -> str:
    """``INSERT INTO target SELECT ... FROM source ON CONFLICT (key) DO UPDATE SET ...`` as SQL text.

    Rows whose key exists take the source's values for every column in ``columns`` (give all the
    table's columns, NULL where the frame had none, for "a replaced row takes exactly the new values").

    Args:
        target: The table written.
        source: The (unqualified) name of the table or view holding the new rows.
        columns: The columns written.
        key: The table's key.
        dialect: A SQLAlchemy dialect with ``INSERT ... ON CONFLICT`` (PostgreSQL, SQLite); DuckDB uses
            PostgreSQL's.
    """
    import sqlalchemy as sa

    if dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    rows = sa.table(source, *[sa.column(c) for c in columns])
    # WHERE true: SQLite's parser needs it to tell ON CONFLICT from a join constraint after SELECT.
    select = sa.select(*[rows.c[c] for c in columns]).where(sa.true())
    statement = insert(target).from_select(columns, select)
    update = {c: statement.excluded[c] for c in columns if c not in key}
    if update:
        statement = statement.on_conflict_do_update(index_elements=key, set_=update)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=key)
    return str(statement.compile(dialect=dialect))
