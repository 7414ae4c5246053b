"""The dashboard's writes into a warehouse: one edit of a follow-up, of an answer's themes or sentiment.

Thin adapters over the analysis layer's writers (:mod:`pipeline.analysis.followups`,
:mod:`pipeline.analysis.corrections`), which own the tables and the rule that a nightly run never
overwrites a human edit. :mod:`pipeline.dashboard.edits` calls these, from the dashboard (SQL
warehouses) or from the run that imports the side file's edits (DuckDB).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse.base import Warehouse


def set_followup(
    wh: Warehouse,
    config: EnrichmentConfig,
    response_id: str,
    *,
    status: str,
    owner: str | None,
    note: str | None,
    who: str,
    at: datetime,
) -> None:
    """Set a follow-up's status, owner and note (a row is added for an answer not yet in the queue)."""
    from pipeline.analysis import followups

    followups.update_followup(
        wh, response_id, status=status, owner=owner, note=note, who=who, at=at, config=config
    )


def correct_themes(
    wh: Warehouse, config: EnrichmentConfig, response_id: str, tags: list[str], who: str, at: datetime
) -> None:
    """A person's themes for an answer (shown over the model's, kept by re-enrichment)."""
    from pipeline.analysis import corrections

    corrections.correct_themes(wh, response_id, tags, who=who, at=at, config=config)


def correct_sentiment(
    wh: Warehouse, config: EnrichmentConfig, response_id: str, label: str, who: str, at: datetime
) -> None:
    """A person's sentiment for an answer."""
    from pipeline.analysis import corrections

    corrections.correct_sentiment(wh, response_id, label, who=who, at=at, config=config)
