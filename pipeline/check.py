"""Check the warehouse invariants that every run must leave true (``feedback check``).

Each invariant is one SQL aggregate run in the database (``COUNT`` / ``GROUP BY`` / ``NOT EXISTS``): only
counts and at most :data:`EXAMPLES` example ids per invariant leave it, so a check of a warehouse with
millions of rows reads no table into memory. The SQL is portable across DuckDB, PostgreSQL and SQLite;
table names come from the config, and tables that do not exist count as empty.

The invariants (their codes are stable; see :data:`INVARIANTS`):

* ``sentences_missing``: every enriched answer (``is_non_answer`` false) has exactly ``n_sentences``
  rows in the sentences table.
* ``tags_missing``: every enriched row has exactly one tag row per entry of its ``tags`` list.
* ``orphan_tags`` / ``orphan_sentences``: tag / sentence rows of responses that are not enriched.
* ``orphan_enriched`` / ``orphan_quarantined``: enriched / quarantined responses not in the source.
* ``enriched_and_quarantined``: a response both enriched and quarantined.
* ``pending``: source rows neither enriched nor quarantined (or, with :mod:`pipeline.pending`, also
  those changed since they were enriched).
* ``run_unbalanced``: a finished run whose ``rows_in`` is not ``rows_enriched + rows_quarantined``.
* ``run_dead``: a run left ``running`` although a later run has finished: it was killed.

While a run is really in progress (``running`` and newer than every finished run), the data invariants
(the first eight) may be mid-write: they are skipped, and :attr:`CheckResult.skipped` says why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.errors import ConfigError, FeedbackError
from pipeline.warehouse import open_warehouse
from pipeline.warehouse.base import JSON, LIST_ITEM_TYPES, TEXT, Warehouse, check_identifier, is_null

logger = logging.getLogger(__name__)

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


# ----------------------------------------------------------------------------------------------------
# The invariants. Each returns a Violation, None (holds) or raises _Skip.


def _sentences_missing(c: _Checker) -> Violation | None:
    e, s = c.tables.enriched, c.tables.sentences
    if not c.exists(e):
        return None
    c.require(e, [RID, "is_non_answer", "n_sentences"])
    rid = c.q(RID)
    found_n, join = "0", ""
    if c.exists(s):
        c.require(s, [RID])
        join = f" LEFT JOIN (SELECT {rid}, COUNT(*) AS n FROM {c.t(s)} GROUP BY {rid}) s ON s.{rid} = e.{rid}"
        found_n = "COALESCE(s.n, 0)"
    expected = f"COALESCE(e.{c.q('n_sentences')}, 0)"
    found = c.find(
        f"SELECT e.{rid} AS x_id, 1 AS x_rows, {expected} AS x_expected, {found_n} AS x_found "
        f"FROM {c.t(e)} e{join} WHERE e.{c.q('is_non_answer')} = FALSE AND {found_n} <> {expected}"
    )
    if not found.rows:
        return None
    detail = _ids(found, lambda r: f" ({_num(r['x_expected'])} expected, {_num(r['x_found'])} found)")
    return Violation(
        "sentences_missing",
        found.rows,
        f"{_plural(found.rows, 'answered response')} in {e} do not have n_sentences rows in {s} "
        f"({detail}): run `feedback enrich` to complete them",
    )


def _tags_missing(c: _Checker) -> Violation | None:
    e, tg = c.tables.enriched, c.tables.tags
    if not c.exists(e):
        return None
    c.require(e, [RID, "tags"])
    rid = c.q(RID)
    expected = f"COALESCE({c.tags_length('e.' + c.q('tags'))}, 0)"
    found_n, join = "0", ""
    if c.exists(tg):
        c.require(tg, [RID])
        join = (
            f" LEFT JOIN (SELECT {rid}, COUNT(*) AS n FROM {c.t(tg)} GROUP BY {rid}) t ON t.{rid} = e.{rid}"
        )
        found_n = "COALESCE(t.n, 0)"
    found = c.find(
        f"SELECT e.{rid} AS x_id, 1 AS x_rows, {expected} AS x_expected, {found_n} AS x_found "
        f"FROM {c.t(e)} e{join} WHERE {found_n} <> {expected}"
    )
    if not found.rows:
        return None
    detail = _ids(found, lambda r: f" ({_num(r['x_expected'])} expected, {_num(r['x_found'])} found)")
    return Violation(
        "tags_missing",
        found.rows,
        f"{_plural(found.rows, 'response')} in {e} do not have one row in {tg} per entry of their tags "
        f"({detail}): run `feedback enrich` to complete them",
    )


def _orphans(c: _Checker, invariant: str, child: str, parent: str, what: str, fix: str) -> Violation | None:
    if not c.exists(child):
        return None
    c.require(child, [RID])
    rid = c.q(RID)
    where = ""
    if c.exists(parent):  # a missing parent table is empty: every child row is an orphan
        c.require(parent, [RID])
        where = f" WHERE NOT EXISTS (SELECT 1 FROM {c.t(parent)} p WHERE p.{rid} = c.{rid})"
    found = c.find(f"SELECT c.{rid} AS x_id, COUNT(*) AS x_rows FROM {c.t(child)} c{where} GROUP BY c.{rid}")
    if not found.rows:
        return None
    of = f" of {_plural(found.ids, 'response')}" if found.ids != found.rows else ""
    return Violation(
        invariant,
        found.rows,
        f"{_plural(found.rows, what)} in {child}{of} whose response_id is not in {parent} "
        f"({_ids(found)}): {fix}",
    )


def _orphan_tags(c: _Checker) -> Violation | None:
    t = c.tables
    return _orphans(
        c,
        "orphan_tags",
        t.tags,
        t.enriched,
        "tag row",
        f"re-enrich the responses with `feedback enrich` (it replaces their tags), or delete the rows "
        f"(DELETE FROM {t.tags} WHERE response_id NOT IN (SELECT response_id FROM {t.enriched}))",
    )


def _orphan_sentences(c: _Checker) -> Violation | None:
    t = c.tables
    return _orphans(
        c,
        "orphan_sentences",
        t.sentences,
        t.enriched,
        "sentence row",
        f"re-enrich the responses with `feedback enrich` (it replaces their sentences), or delete the rows "
        f"(DELETE FROM {t.sentences} WHERE response_id NOT IN (SELECT response_id FROM {t.enriched}))",
    )


def _orphan_enriched(c: _Checker) -> Violation | None:
    t = c.tables
    return _orphans(
        c,
        "orphan_enriched",
        t.enriched,
        t.source,
        "enriched row",
        f"their source rows were deleted: load the export again (`feedback enrich --source FILE`), or "
        f"delete these rows and their rows in {t.tags} and {t.sentences}",
    )


def _orphan_quarantined(c: _Checker) -> Violation | None:
    t = c.tables
    return _orphans(
        c,
        "orphan_quarantined",
        t.quarantine,
        t.source,
        "quarantined row",
        f"their source rows were deleted: load the export again (`feedback enrich --source FILE`), or "
        f"delete them (DELETE FROM {t.quarantine} WHERE response_id NOT IN (SELECT response_id FROM "
        f"{t.source}))",
    )


def _enriched_and_quarantined(c: _Checker) -> Violation | None:
    e, qt = c.tables.enriched, c.tables.quarantine
    if not (c.exists(e) and c.exists(qt)):
        return None
    c.require(e, [RID])
    c.require(qt, [RID])
    rid = c.q(RID)
    found = c.find(
        f"SELECT e.{rid} AS x_id, 1 AS x_rows FROM {c.t(e)} e "
        f"WHERE EXISTS (SELECT 1 FROM {c.t(qt)} q WHERE q.{rid} = e.{rid})"
    )
    if not found.rows:
        return None
    return Violation(
        "enriched_and_quarantined",
        found.rows,
        f"{_plural(found.rows, 'response')} both in {e} and in {qt} ({_ids(found)}): keep one; when the "
        f"enrichment is current, delete the quarantine rows (DELETE FROM {qt} WHERE response_id IN "
        f"(SELECT response_id FROM {e}))",
    )


def _plain_pending(c: _Checker) -> _Found:
    """Source rows in neither the enriched table nor the quarantine (missing tables are empty)."""
    src = c.tables.source
    c.require(src, [RID])
    rid = c.q(RID)
    conditions = []
    for i, table in enumerate((c.tables.enriched, c.tables.quarantine)):
        if c.exists(table):
            c.require(table, [RID])
            conditions.append(f"NOT EXISTS (SELECT 1 FROM {c.t(table)} p{i} WHERE p{i}.{rid} = s.{rid})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return c.find(f"SELECT s.{rid} AS x_id, 1 AS x_rows FROM {c.t(src)} s{where}")


def _default_pending() -> PendingCounter | None:
    try:
        from pipeline.pending import count_pending
    except ImportError:
        return None
    return count_pending


def _pending(
    c: _Checker, counter: PendingCounter | None, config: EnrichmentConfig, counts: dict[str, int]
) -> Violation | None:
    src = c.tables.source
    if not c.exists(src):
        counts["pending"] = 0
        return None
    if counter is None:
        found = _plain_pending(c)
        n, what = found.rows, "neither enriched nor quarantined"
    else:
        n = int(counter(c.wh, config))
        what = "pending (new, or changed since they were enriched)"
        # Examples come from the plain query; rows that only changed have none to show.
        found = _plain_pending(c) if n else _Found(0, 0, [])
    counts["pending"] = n
    if not n:
        return None
    examples = f" ({_ids(found)})" if found.examples else ""
    return Violation(
        "pending",
        n,
        f"{_plural(n, 'source row')} of {src} {'is' if n == 1 else 'are'} {what}{examples}: run "
        "`feedback enrich` to complete them",
    )


def _run_unbalanced(c: _Checker) -> Violation | None:
    runs = c.tables.runs
    if not c.exists(runs):
        return None
    c.require(runs, ["run_id", "status", "rows_in", "rows_enriched", "rows_quarantined"])
    r_in, r_enr, r_qua = (f"r.{c.q(n)}" for n in ("rows_in", "rows_enriched", "rows_quarantined"))
    status = f"r.{c.q('status')}"
    unequal = f"{r_in} <> {r_enr} + {r_qua}"
    any_null = f"{r_in} IS NULL OR {r_enr} IS NULL OR {r_qua} IS NULL"
    # Only a successful run must balance: a failed one records how far it got.
    found = c.find(
        f"SELECT r.{c.q('run_id')} AS x_id, 1 AS x_rows, {status} AS x_status, {r_in} AS x_in, "
        f"{r_enr} AS x_enriched, {r_qua} AS x_quarantined FROM {c.t(runs)} r "
        f"WHERE {status} = 'success' AND ({any_null} OR {unequal})"
    )
    if not found.rows:
        return None
    detail = _ids(
        found,
        lambda r: (
            f" ({r['x_status']}: {_num(r['x_in'])} in, {_num(r['x_enriched'])} enriched + "
            f"{_num(r['x_quarantined'])} quarantined)"
        ),
    )
    t = c.tables
    return Violation(
        "run_unbalanced",
        found.rows,
        f"{_plural(found.rows, 'run')} in {runs} break rows_in = rows_enriched + rows_quarantined "
        f"({detail}): rows were lost or miscounted; compare with that run_id's rows in {t.enriched} and "
        f"{t.quarantine}, and run `feedback enrich` to complete pending rows",
    )


def _running(c: _Checker, dead: bool) -> _Found:
    """Runs with status ``running``: the dead ones (a later run has finished) or the live ones."""
    runs = c.tables.runs
    c.require(runs, ["run_id", "status", "started_at"])
    status, started = c.q("status"), c.q("started_at")
    finished = ", ".join(f"'{s}'" for s in FINISHED_STATUSES)
    # A running row with no start time cannot be newer than a finished run: dead if one exists.
    later = (
        f"EXISTS (SELECT 1 FROM {c.t(runs)} f WHERE f.{status} IN ({finished}) "
        f"AND (r.{started} IS NULL OR f.{started} > r.{started}))"
    )
    return c.find(
        f"SELECT r.{c.q('run_id')} AS x_id, 1 AS x_rows, r.{started} AS x_started FROM {c.t(runs)} r "
        f"WHERE r.{status} = 'running' AND {'' if dead else 'NOT '}{later}"
    )


def _started(value: object) -> str:
    return "at an unknown time" if is_null(value) else f"{pd.Timestamp(value):%Y-%m-%d %H:%M:%S} UTC"


def _run_dead(found: _Found) -> Violation:
    ids = ", ".join(str(r["x_id"]) for r in found.examples) + (", ..." if found.ids > EXAMPLES else "")
    one = found.rows == 1
    return Violation(
        "run_dead",
        found.rows,
        f"{'run' if one else 'runs'} {ids} {'was' if one else 'were'} left running: "
        f"{'it was' if one else 'they were'} killed; the next `feedback enrich` marks "
        f"{'it' if one else 'them'} abandoned and completes {'its' if one else 'their'} rows",
    )


def _lock_held(wh: Warehouse, config: EnrichmentConfig) -> bool:
    """Whether a live run holds the warehouse's run lock (True when it cannot be told)."""
    from pipeline.warehouse.lock import lock_is_held

    try:
        return lock_is_held(wh, table=config.tables.lock)
    except Exception:  # a check must not fail on the probe: assume a run may be writing
        logger.debug("could not tell whether a run holds the lock", exc_info=True)
        return True


def check_warehouse(
    wh: Warehouse,
    config: EnrichmentConfig,
    *,
    pending: PendingCounter | None = None,
) -> CheckResult:
    """Check the warehouse invariants (see the module docstring), each with one SQL aggregate.

    Args:
        wh: The warehouse (only read).
        config: The enrichment config (its ``tables`` name the tables).
        pending: Counts the pending source rows; default ``pipeline.pending.count_pending`` (which also
            counts rows changed since they were enriched) when importable, else the source rows in
            neither the enriched table nor the quarantine.

    Returns:
        The violations, the invariants skipped (e.g. while a run is still writing) and row counts.
    """
    c = _Checker(wh, config)
    t = config.tables
    counts = {
        name: c.count(table)
        for name, table in (
            ("source", t.source),
            ("enriched", t.enriched),
            ("quarantined", t.quarantine),
            ("tags", t.tags),
            ("sentences", t.sentences),
            ("runs", t.runs),
        )
    }
    found: dict[str, Violation] = {}
    skipped: list[str] = []

    def attempt(invariant: str, check: Callable[[], Violation | None]) -> None:
        try:
            violation = check()
        except _Skip as why:
            skipped.append(f"{invariant}: {why}")
            return
        if violation is not None:
            found[invariant] = violation

    live = _Found(0, 0, [])
    if c.exists(t.runs):
        try:
            dead = _running(c, dead=True)
            live = _running(c, dead=False)
        except _Skip as why:
            skipped.append(f"run_dead: {why}")
        else:
            if live.rows and not _lock_held(wh, config):
                # Nobody holds the run lock, so no run is writing: a `running` record is a killed run.
                dead = _Found(dead.rows + live.rows, dead.ids + live.ids, dead.examples + live.examples)
                live = _Found(0, 0, [])
            if dead.rows:
                found["run_dead"] = _run_dead(dead)
    if live.rows:
        newest = live.examples[-1]  # run ids sort by start time
        others = f" (and {_plural(live.rows - 1, 'other run')})" if live.rows > 1 else ""
        reason = (
            f"run {newest['x_id']} is still running (started {_started(newest['x_started'])}){others}; "
            "check again when it has finished"
        )
        skipped.extend(f"{invariant}: {reason}" for invariant in DATA_INVARIANTS)
    else:
        attempt("sentences_missing", lambda: _sentences_missing(c))
        attempt("tags_missing", lambda: _tags_missing(c))
        attempt("orphan_tags", lambda: _orphan_tags(c))
        attempt("orphan_sentences", lambda: _orphan_sentences(c))
        attempt("orphan_enriched", lambda: _orphan_enriched(c))
        attempt("orphan_quarantined", lambda: _orphan_quarantined(c))
        attempt("enriched_and_quarantined", lambda: _enriched_and_quarantined(c))
        counter = pending if pending is not None else _default_pending()
        attempt("pending", lambda: _pending(c, counter, config, counts))
    attempt("run_unbalanced", lambda: _run_unbalanced(c))
    violations = [found[name] for name in INVARIANTS if name in found]
    result = CheckResult(violations=violations, skipped=skipped, counts=counts)
    logger.info(
        "check of %s: %s, %d skipped (%s)",
        wh.describe(),
        "ok" if result.ok else f"{len(violations)} invariant(s) broken",
        len(skipped),
        format_counts(counts),
    )
    return result


def format_counts(counts: dict[str, int]) -> str:
    """``"source=10 enriched=8 ..."``: counts on one line."""
    return " ".join(f"{name}={n}" for name, n in counts.items())


def require_consistent(wh: Warehouse, config: EnrichmentConfig) -> None:
    """Raise when the warehouse breaks an invariant (for commands that read it, e.g. ``feedback report``).

    Args:
        wh: The warehouse.
        config: The enrichment config.

    Raises:
        FeedbackError: Whose message has one line per violation, then "run `feedback check` for
            details".
    """
    result = check_warehouse(wh, config)
    if not result.ok:
        lines = [v.message for v in result.violations]
        raise FeedbackError("\n".join([*lines, "run `feedback check` for details"]))


def _duckdb_file(target: str) -> Path | None:
    """The file a DuckDB target names (a plain path or ``duckdb:///``), None for memory and other URLs."""
    if "://" not in target:
        return None if target == ":memory:" else Path(target).expanduser()
    scheme, rest = target.split("://", 1)
    if scheme.lower() != "duckdb":
        return None
    # SQLAlchemy convention (as open_warehouse reads it): duckdb:///relative, duckdb:////absolute.
    path = rest[1:] if rest.startswith("/") else rest
    return None if path in ("", ":memory:") else Path(path).expanduser()


def open_for_reading(target: str | os.PathLike[str]) -> Warehouse:
    """Open a warehouse for reading: a DuckDB file read-only, anything else as ``open_warehouse`` does.

    Read-only, a DuckDB file can be checked while other processes read it too, and a check can never
    create or change it.

    Args:
        target: A DuckDB file path, ``duckdb:///path``, or any URL :func:`open_warehouse` accepts.

    Returns:
        The warehouse; close it (or use it as a context manager).

    Raises:
        ConfigError: When a DuckDB target names a file that does not exist (nothing is created).
        FeedbackError: When another process holds the DuckDB file's write lock.
    """
    text = os.fspath(target).strip() if isinstance(target, os.PathLike) else str(target).strip()
    path = _duckdb_file(text)
    if path is None:
        return open_warehouse(text)
    if not path.is_file():
        raise ConfigError(
            f"No DuckDB warehouse file at {path}. Pass --warehouse PATH|URL (or set `warehouse` in the "
            "config), or create it first with `feedback enrich --source FILE`."
        )
    from pipeline.warehouse.duckdb_backend import DuckDBWarehouse

    return DuckDBWarehouse(path, read_only=True)
