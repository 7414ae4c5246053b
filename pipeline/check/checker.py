"""The check's results (:class:`Violation`, :class:`CheckResult`), the list of invariants, and the small
query helper each invariant runs on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import JSON, LIST_ITEM_TYPES, TEXT, Warehouse, check_identifier, is_null

#: Every invariant code, in the order violations are reported.
INVARIANTS = (
    "sentences_missing",
    "tags_missing",
    "orphan_tags",
    "orphan_sentences",
    "orphan_enriched",
    "orphan_quarantined",
    "enriched_and_quarantined",
    "pending",
    "run_unbalanced",
    "run_dead",
)

#: The invariants over the data tables: skipped while a run is writing them.
DATA_INVARIANTS = INVARIANTS[:8]

#: Statuses of a run that has ended (a ``running`` run older than one of these was killed).
FINISHED_STATUSES = ("success", "failed", "abandoned")

#: At most this many example ids per violation leave the database.
EXAMPLES = 5

RID = "response_id"


@dataclass(frozen=True)
class Violation:
    """One broken invariant.

    Attributes:
        invariant: Its stable code (one of :data:`INVARIANTS`), e.g. ``"sentences_missing"``.
        count: How many rows (or runs) break it.
        message: One line: what is wrong, a few example ids, and how to fix it.
    """

    invariant: str
    count: int
    message: str


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check_warehouse`.

    Attributes:
        violations: The broken invariants, in the order of :data:`INVARIANTS`.
        skipped: Invariants that were not checked, each as ``"<invariant>: <why>"``.
        counts: Rows per table (``source``, ``enriched``, ``quarantined``, ``tags``, ``sentences``,
            ``runs``; 0 for a missing table) and ``pending`` when it was computed.
    """

    violations: list[Violation]
    skipped: list[str]
    counts: dict[str, int]

    @property
    def ok(self) -> bool:
        """True when no invariant is broken (skipped ones are not violations)."""
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``ok``, ``counts``, ``violations`` (as dicts) and ``skipped``."""
        return {
            "ok": self.ok,
            "counts": dict(self.counts),
            "violations": [asdict(v) for v in self.violations],
            "skipped": list(self.skipped),
        }


PendingCounter = Callable[[Warehouse, EnrichmentConfig], int]


class _Skip(Exception):
    """An invariant cannot be checked (say why)."""


@dataclass(frozen=True)
class _Found:
    """What one violation query found: rows, distinct ids, and the first few ids with details."""

    rows: int
    ids: int
    examples: list[dict[str, Any]]


def _dialect(wh: Warehouse) -> str:
    """``duckdb``, the SQLAlchemy dialect name (``postgresql``, ``sqlite`` ...), or the class name."""
    from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

    if isinstance(wh, DuckDBWarehouse):
        return "duckdb"
    engine = getattr(wh, "engine", None)
    return str(engine.dialect.name) if engine is not None else type(wh).__name__


class _Checker:
    """The warehouse, the config's tables and their column types (looked up once)."""

    def __init__(self, wh: Warehouse, config: EnrichmentConfig) -> None:
        self.wh = wh
        self.tables = config.tables
        self.dialect = _dialect(wh)
        self._types: dict[str, dict[str, str]] = {}

    def types(self, table: str) -> dict[str, str]:
        if table not in self._types:
            # Names from the config reach SQL text: only safe identifiers (SchemaError says how to fix).
            self._types[table] = self.wh._column_types(check_identifier(table, "table"))
        return self._types[table]

    def exists(self, table: str) -> bool:
        return bool(self.types(table))

    def require(self, table: str, columns: Sequence[str]) -> None:
        have = self.types(table)
        if missing := [c for c in columns if c not in have]:
            raise _Skip(f"table {table} has no column(s) {missing} (found {list(have)})")

    def q(self, name: str) -> str:
        return self.wh._quote(name)

    def t(self, table: str) -> str:
        return self.wh._qualified(table)

    def count(self, table: str) -> int:
        if not self.exists(table):
            return 0
        frame = self.wh._query(f"SELECT COUNT(*) AS n FROM {self.t(table)}")
        return int(frame["n"].iloc[0])

    def find(self, inner: str) -> _Found:
        """Run a violation query: ``inner`` selects ``x_id`` and ``x_rows`` (+ detail columns)."""
        query = (
            "SELECT v.*, COUNT(*) OVER () AS x_ids, SUM(v.x_rows) OVER () AS x_total "
            f"FROM ({inner}) v ORDER BY v.x_id LIMIT {EXAMPLES}"
        )
        frame = self.wh._query(query)
        if frame.empty:
            return _Found(0, 0, [])
        first = frame.iloc[0]
        return _Found(int(first["x_total"]), int(first["x_ids"]), frame.to_dict("records"))

    def tags_length(self, expr: str) -> str:
        """SQL for the number of entries of the ``tags`` list column ``expr`` on this backend."""
        logical = self.types(self.tables.enriched).get("tags")
        if logical in LIST_ITEM_TYPES:
            native = {"duckdb": f"len({expr})", "postgresql": f"cardinality({expr})"}
            if self.dialect in native:
                return native[self.dialect]
        elif logical in (JSON, TEXT):  # JSON text (SQLite, tables made by other tools)
            as_json = {
                "duckdb": f"json_array_length(CAST({expr} AS JSON))",
                "postgresql": f"json_array_length(CAST({expr} AS json))",
                "sqlite": f"json_array_length({expr})",
                "mysql": f"JSON_LENGTH({expr})",
                "mariadb": f"JSON_LENGTH({expr})",
            }
            if self.dialect in as_json:
                return as_json[self.dialect]
        raise _Skip(
            f"the length of a {logical} tags column cannot be computed on {self.dialect} (supported: "
            "lists on DuckDB and PostgreSQL, JSON text on DuckDB, PostgreSQL, SQLite and MySQL)"
        )


def _ids(found: _Found, detail: Callable[[dict[str, Any]], str] | None = None) -> str:
    """``"e.g. a, b, c"`` (with details when given), marking that there are more."""
    shown = [f"{row['x_id']}{detail(row) if detail else ''}" for row in found.examples]
    more = ", ..." if found.ids > len(shown) else ""
    return "e.g. " + ", ".join(shown) + more


def _num(value: Any) -> str:
    return "NULL" if is_null(value) else str(int(value))


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"
