"""Where the dashboard's writes go: follow-up status/owner/note, and theme / sentiment corrections.

* DuckDB warehouse: a run holds the file for hours, so the dashboard never writes it. Edits go to a small
  side file next to it, ``<warehouse>.dashboard-edits.duckdb`` (opened per write and closed at once, so
  the run can open it too). The next run imports them at its start (:func:`import_edits`) into the
  warehouse through the analysis layer's writers (so the nightly rules never overwrite them), publishes
  its snapshot at the end, and only then deletes the imported edits from the side file
  (:func:`prune_edits`): at every moment an edit is in the side file or in the snapshot the dashboard
  reads, never in neither. The dashboard shows the side file's pending edits over the snapshot.
* PostgreSQL and other SQL warehouses: readers and writers do not block each other, so edits go straight
  into the warehouse's ``followups``, ``tag_labels`` and ``sentiment_labels`` tables.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.dashboard import writes
from pipeline.dashboard.snapshot import duckdb_file
from pipeline.errors import FeedbackError

if TYPE_CHECKING:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

EDITS_SUFFIX = ".dashboard-edits.duckdb"
FOLLOWUP_STATUSES = ("new", "contacted", "resolved", "won't fix")
_COLUMNS = ["edit_id", "kind", "response_id", "status", "owner", "note", "tags", "sentiment", "who", "at"]
_DDL = (
    "CREATE TABLE IF NOT EXISTS edits (edit_id TEXT PRIMARY KEY, kind TEXT NOT NULL, response_id TEXT "
    "NOT NULL, status TEXT, owner TEXT, note TEXT, tags TEXT[], sentiment TEXT, who TEXT, at TIMESTAMP)"
)


def edits_path(warehouse_file: Path) -> Path:
    """``/x/feedback.duckdb`` -> ``/x/feedback.dashboard-edits.duckdb``."""
    return warehouse_file.with_name(warehouse_file.stem + EDITS_SUFFIX)


@contextmanager
def _side(path: Path, wait_s: float = 10.0) -> Iterator[object]:
    """A short-lived connection to the side file, waiting while another process has it open."""
    import duckdb

    deadline = time.monotonic() + wait_s
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise FeedbackError(
                    f"The dashboard's edits file {path} stayed locked for {wait_s:.0f} s ({exc}); try again."
                ) from exc
            time.sleep(0.1)
    try:
        con.execute(_DDL)
        yield con
    finally:
        con.close()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class EditStore:
    """The dashboard's writes for one warehouse (see the module docstring for where they go)."""

    def __init__(self, config: EnrichmentConfig) -> None:
        self.config = config
        file = duckdb_file(config.warehouse)
        self.side: Path | None = edits_path(file) if file is not None else None

    def set_followup(self, response_id: str, *, status: str, owner: str, note: str, who: str) -> None:
        """Set a follow-up's status, owner and note."""
        if status not in FOLLOWUP_STATUSES:
            raise FeedbackError(f"follow-up status {status!r}: expected one of {list(FOLLOWUP_STATUSES)}")
        self._write("followup", response_id, who, status=status, owner=owner, note=note)

    def correct_themes(self, response_id: str, tags: list[str], who: str) -> None:
        """Replace an answer's themes by a person's (an empty list: the answer has no theme)."""
        self._write("themes", response_id, who, tags=sorted(set(tags)))

    def correct_sentiment(self, response_id: str, label: str, who: str) -> None:
        """Set an answer's sentiment by hand."""
        if label not in ("negative", "neutral", "positive"):
            raise FeedbackError(f"sentiment {label!r}: expected negative, neutral or positive")
        self._write("sentiment", response_id, who, sentiment=label)

    def _write(self, kind: str, response_id: str, who: str, **values: object) -> None:
        edit = {c: None for c in _COLUMNS} | values
        edit.update(edit_id=uuid.uuid4().hex, kind=kind, response_id=str(response_id), who=who, at=_now())
        if self.side is None:
            from pipeline.warehouse import open_warehouse

            with open_warehouse(self.config.warehouse, config=self.config) as wh:
                apply_edits(wh, self.config, pd.DataFrame([edit], columns=_COLUMNS))
            return
        with _side(self.side) as con:
            con.execute(
                f"INSERT INTO edits VALUES ({', '.join('?' for _ in _COLUMNS)})",
                [edit[c] for c in _COLUMNS],
            )

    def pending(self, kind: str | None = None) -> pd.DataFrame:
        """Edits not yet in the snapshot (only with a DuckDB warehouse), oldest first."""
        if self.side is None or not self.side.is_file():
            return pd.DataFrame(columns=_COLUMNS)
        with _side(self.side) as con:
            where = " WHERE kind = ?" if kind else ""
            frame = con.execute(
                f"SELECT * FROM edits{where} ORDER BY at, edit_id", [kind] if kind else []
            ).df()
        return frame


def apply_edits(wh: Warehouse, config: EnrichmentConfig, edits: pd.DataFrame) -> None:
    """Write edits (oldest first) into the warehouse through the analysis layer's writers."""
    for edit in edits.sort_values(["at", "edit_id"]).to_dict("records"):
        who = str(edit.get("who") or "dashboard")
        if edit["kind"] == "followup":
            writes.set_followup(
                wh, config, edit["response_id"], status=edit["status"], owner=edit["owner"],
                note=edit["note"], who=who, at=edit["at"],
            )  # fmt: skip
        elif edit["kind"] == "themes":
            writes.correct_themes(wh, config, edit["response_id"], list(edit["tags"] or []), who, edit["at"])
        elif edit["kind"] == "sentiment":
            writes.correct_sentiment(wh, config, edit["response_id"], edit["sentiment"], who, edit["at"])


def import_edits(wh: Warehouse, config: EnrichmentConfig) -> list[str]:
    """At a run's start: the dashboard's pending edits into the warehouse. Returns the imported edit ids.

    Never fails the run: a side file that stays locked or an edit that cannot be applied is logged and
    left for the next run.
    """
    file = duckdb_file(wh.url) if wh.dialect == "duckdb" else None
    side = edits_path(file) if file is not None else None
    if side is None or not side.is_file():
        return []
    try:
        with _side(side) as con:
            edits = con.execute("SELECT * FROM edits ORDER BY at, edit_id").df()
        if edits.empty:
            return []
        with wh.transaction():
            apply_edits(wh, config, edits)
    except Exception:
        log.exception("dashboard edits: import failed; they stay in %s for the next run", side)
        return []
    log.info("dashboard edits: %d imported from %s", len(edits), side)
    return [str(x) for x in edits["edit_id"]]


def prune_edits(wh: Warehouse, imported: list[str]) -> None:
    """After the snapshot that holds them is published: delete the imported edits from the side file."""
    file = duckdb_file(wh.url) if wh.dialect == "duckdb" else None
    if not imported or file is None:
        return
    try:
        with _side(edits_path(file)) as con:
            con.execute("DELETE FROM edits WHERE edit_id IN (SELECT unnest(?))", [imported])
    except Exception:  # they stay; importing them again sets the same values
        log.exception("dashboard edits: could not delete %d imported edits", len(imported))
