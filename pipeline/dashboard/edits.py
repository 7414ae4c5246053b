"""Where the dashboard's writes go: follow-up status/owner/note, and theme / sentiment corrections.

Every write goes through the analysis layer's writers (:func:`pipeline.analysis.followups.set_followup`,
:func:`pipeline.analysis.corrections.correct_themes` / ``correct_sentiment``), which work on any
warehouse object. Which one:

* DuckDB warehouse: a run holds the file for hours, so the dashboard never writes it. Edits go to a small
  side DuckDB file next to it, ``<warehouse>.dashboard-edits.duckdb`` (the same tables, opened per write
  and closed at once, so that the run can open it too). The next run merges them into the warehouse at
  its start (:func:`import_edits`, with :func:`pipeline.analysis.corrections.merge_edits`: newer wins,
  so the nightly rules never overwrite them), publishes its snapshot at its end, and only then deletes
  the merged edits from the side file (:func:`prune_edits`) unless they were edited again meanwhile. At
  every moment an edit is in the side file or in the snapshot the dashboard reads, never in neither; the
  dashboard shows the side file's edits over the snapshot (:meth:`EditStore.pending_followups`).
* PostgreSQL and other SQL warehouses: readers and writers do not block each other, so edits go straight
  into the warehouse (tables ``followups``, ``tag_labels``, ``sentiment_labels``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.dashboard.snapshot import duckdb_file
from pipeline.errors import FeedbackError

if TYPE_CHECKING:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

EDITS_SUFFIX = ".dashboard-edits.duckdb"
Stamps = dict[str, dict[str, pd.Timestamp]]
"""table -> {key: the edit's time} of what a run merged."""


def edits_path(warehouse_file: Path) -> Path:
    """``/x/feedback.duckdb`` -> ``/x/feedback.dashboard-edits.duckdb``."""
    return warehouse_file.with_name(warehouse_file.stem + EDITS_SUFFIX)


@contextmanager
def open_side(path: Path, config: EnrichmentConfig, wait_s: float = 15.0) -> Iterator[Warehouse]:
    """The side file as a warehouse, waiting while another process has it open (each holds it briefly)."""
    from pipeline.warehouse import open_warehouse

    deadline = time.monotonic() + wait_s
    while True:
        try:
            wh = open_warehouse(str(path), config=config)
            break
        except FeedbackError as exc:
            if "in use" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    try:
        yield wh
    finally:
        wh.close()


def _tables(config: EnrichmentConfig) -> list[tuple[str, str, str]]:
    """(table, key, time column) of each kind of edit, as merge_edits reads them."""
    t = config.tables
    return [
        (t.tag_labels, "id", "labelled_at"),
        (t.sentiment_labels, "response_id", "labelled_at"),
        (t.followups, "response_id", "updated_at"),
    ]


class EditStore:
    """The dashboard's writes for one warehouse (see the module docstring for where they go)."""

    def __init__(self, config: EnrichmentConfig) -> None:
        self.config = config
        file = duckdb_file(config.warehouse)
        self.side: Path | None = edits_path(file) if file is not None else None

    @contextmanager
    def target(self) -> Iterator[Warehouse]:
        """The warehouse object edits are written to."""
        if self.side is not None:
            with open_side(self.side, self.config) as wh:
                yield wh
            return
        from pipeline.warehouse import open_warehouse

        with open_warehouse(self.config.warehouse, config=self.config) as wh:
            yield wh

    def set_followup(self, response_id: str, *, status: str, owner: str, note: str, who: str) -> None:
        """Set a follow-up's status, owner and note."""
        from pipeline.analysis.followups import set_followup

        with self.target() as wh:
            set_followup(
                wh, str(response_id), who=who, status=status, owner=owner, note=note, config=self.config
            )

    def correct_themes(self, response_id: str, themes: list[str], who: str) -> None:
        """Replace an answer's themes by a person's (an empty list: no theme applies)."""
        from pipeline.analysis.corrections import correct_themes

        with self.target() as wh:
            correct_themes(wh, str(response_id), list(themes), who=who, config=self.config)

    def correct_sentiment(self, response_id: str, label: str, who: str) -> None:
        """Set an answer's sentiment by hand."""
        from pipeline.analysis.corrections import correct_sentiment

        with self.target() as wh:
            correct_sentiment(wh, str(response_id), label, who=who, config=self.config)

    def pending_followups(self) -> pd.DataFrame:
        """Follow-up edits not yet in the snapshot (DuckDB only; empty otherwise)."""
        from pipeline.analysis.followups import FOLLOWUP_COLUMNS, followups

        if self.side is None or not self.side.is_file():
            return pd.DataFrame(columns=FOLLOWUP_COLUMNS)
        with open_side(self.side, self.config) as wh:
            return followups(wh, config=self.config)

    def pending_corrections(self) -> pd.DataFrame:
        """Corrections not yet in the snapshot (DuckDB only; empty otherwise), newest first."""
        from pipeline.analysis.corrections import CORRECTION_COLUMNS, corrections

        if self.side is None or not self.side.is_file():
            return pd.DataFrame(columns=CORRECTION_COLUMNS)
        with open_side(self.side, self.config) as wh:
            return corrections(wh, config=self.config)


def _side_of(wh: Warehouse) -> Path | None:
    file = duckdb_file(wh.url) if wh.dialect == "duckdb" else None
    side = edits_path(file) if file is not None else None
    return side if side is not None and side.is_file() else None


def import_edits(wh: Warehouse, config: EnrichmentConfig) -> Stamps:
    """At a run's start: merge the dashboard's edits into the warehouse. Returns what was merged.

    Never fails the run: a side file that stays locked, or edits that cannot be merged, are logged and
    left for the next run.
    """
    from pipeline.analysis.corrections import merge_edits

    side = _side_of(wh)
    if side is None:
        return {}
    stamps: Stamps = {}
    try:
        with open_side(side, config) as edits:
            for table, key, stamp in _tables(config):
                if edits.table_exists(table):
                    rows = edits.read(table, [key, stamp])
                    stamps[table] = dict(zip(rows[key].astype(str), rows[stamp], strict=True))
            with wh.transaction():
                copied = merge_edits(edits, wh, config=config)
    except Exception:
        log.exception("dashboard edits: merging %s failed; they stay there for the next run", side)
        return {}
    log.info("dashboard edits merged from %s: %s", side, copied)
    return stamps


def prune_edits(wh: Warehouse, config: EnrichmentConfig, merged: Stamps) -> None:
    """After the snapshot that holds them is published: delete merged edits not edited again since."""
    side = _side_of(wh)
    if side is None or not any(merged.values()):
        return
    try:
        with open_side(side, config) as edits:
            for table, key, stamp in _tables(config):
                done = merged.get(table) or {}
                if not done or not edits.table_exists(table):
                    continue
                now = edits.read(table, [key, stamp], where={key: list(done)})
                same = [k for k, s in zip(now[key].astype(str), now[stamp], strict=True) if done.get(k) == s]
                if same:
                    edits.delete(table, {key: same})
    except Exception:  # they stay; merging them again changes nothing (newer wins)
        log.exception("dashboard edits: could not delete merged edits from %s", side)
