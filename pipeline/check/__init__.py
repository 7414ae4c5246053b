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
* ``pending``: source rows neither enriched nor quarantined (or, with :mod:`pipeline.ingest.pending`, also
  those changed since they were enriched).
* ``run_unbalanced``: a finished run whose ``rows_in`` is not ``rows_enriched + rows_quarantined``.
* ``run_dead``: a run left ``running`` although a later run has finished: it was killed.

While a run is really in progress (``running`` and newer than every finished run), the data invariants
(the first eight) may be mid-write: they are skipped, and :attr:`CheckResult.skipped` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pipeline.check.checker import (
    DATA_INVARIANTS,
    INVARIANTS,
    CheckResult,
    PendingCounter,
    Violation,
    _Checker,
    _Found,
    _plural,
    _Skip,
)
from pipeline.check.invariants import (
    _default_pending,
    _enriched_and_quarantined,
    _lock_held,
    _orphan_enriched,
    _orphan_quarantined,
    _orphan_sentences,
    _orphan_tags,
    _pending,
    _run_dead,
    _run_unbalanced,
    _running,
    _sentences_missing,
    _started,
    _tags_missing,
)
from pipeline.config import EnrichmentConfig
from pipeline.errors import FeedbackError
from pipeline.warehouse.base import Warehouse

logger = logging.getLogger(__name__)

__all__ = [
    "DATA_INVARIANTS",
    "INVARIANTS",
    "CheckResult",
    "Violation",
    "check_warehouse",
    "format_counts",
    "require_consistent",
]


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
        pending: Counts the pending source rows; default ``pipeline.ingest.pending.count_pending`` (which also
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
