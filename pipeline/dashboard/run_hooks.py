"""What a run does for the dashboard: import its edits at the start, publish a snapshot at the end.

Both are called from :func:`pipeline.runner.run_steps` on the run's own warehouse connection, and
neither can fail the run: the enrichment is what the night is for.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def before_run(wh: Warehouse, config: EnrichmentConfig) -> dict:
    """Import the dashboard's pending edits (DuckDB side file); returns their ids for :func:`after_run`."""
    from pipeline.dashboard.edits import import_edits

    return import_edits(wh, config)


def after_run(wh: Warehouse, config: EnrichmentConfig, imported: dict) -> None:
    """Publish the dashboard snapshot, then forget the edits that it now holds."""
    from pipeline.dashboard.edits import prune_edits
    from pipeline.dashboard.snapshot import publish_snapshot

    try:
        publish_snapshot(wh, config)
    except Exception:
        log.exception("dashboard snapshot: publishing failed; the dashboard keeps reading the previous one")
        return
    prune_edits(wh, config, imported)


def after_erasure(wh: Warehouse, config: EnrichmentConfig, ids: list[str]) -> None:
    """After answers are erased on request: drop them from the dashboard's files too.

    The snapshot is published again when there is one (it would show the erased answers until the next
    run otherwise), and the side file's pending edits of those answers (follow-up notes, corrections)
    are deleted. Unlike the run's hooks this raises: an erasure must not leave a copy behind silently.
    """
    from pipeline.dashboard.edits import _side_of, _tables, open_side
    from pipeline.dashboard.snapshot import duckdb_file, publish_snapshot, snapshot_path

    file = duckdb_file(wh.url) if wh.dialect == "duckdb" else None
    if file is None or not ids:
        return
    side = _side_of(wh)
    if side is not None:
        with open_side(side, config) as edits:
            for table, _, _ in _tables(config):
                if edits.table_exists(table) and "response_id" in edits.columns(table):
                    edits.delete(table, {"response_id": list(ids)})
    if snapshot_path(file).is_file():
        publish_snapshot(wh, config)
