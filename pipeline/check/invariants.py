"""The invariants of a warehouse, one function each: it returns a :class:`Violation`, None (it holds) or
raises ``_Skip`` (it cannot be checked here)."""

from __future__ import annotations

import logging

import pandas as pd

from pipeline.check.checker import (
    EXAMPLES,
    FINISHED_STATUSES,
    RID,
    PendingCounter,
    Violation,
    _Checker,
    _Found,
    _ids,
    _num,
    _plural,
)
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import Warehouse, is_null

logger = logging.getLogger(__name__)


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
        from pipeline.ingest.pending import count_pending
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
