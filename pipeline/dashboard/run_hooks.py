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
