"""Column contracts of the warehouse tables, read from their one declaration.

The tables themselves are declared in :mod:`pipeline.warehouse.tables` (names are configuration;
columns are not); the lists here are views of that declaration for the stages that build frames. The
source table may carry any number of extra *segment* columns (channel, region, plan, ...); they are
kept and carried through to ``feedback_enriched``.
"""

from __future__ import annotations

from pipeline.warehouse.tables import DEFAULT_NAMES, declared_columns, declared_key

SURVEY_TYPES: dict[str, tuple[float, float]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

SOURCE_REQUIRED = ["response_id", "survey_type", "score", "comment", "submitted_at"]

# Key columns of every table written by the pipeline (used for idempotent upserts), by default name.
TABLE_KEYS: dict[str, list[str]] = {name: declared_key(field) for field, name in DEFAULT_NAMES.items()}

# The enriched table's own columns (segment columns sit between submitted_at and language).
ENRICHED_COLUMNS = declared_columns("enriched")
TAG_COLUMNS = declared_columns("tags")
SENTENCE_COLUMNS = declared_columns("sentences")
TOPIC_COLUMNS = declared_columns("topics")
# What a fitted topic model says of each topic (StableTopicModel.topic_info); the registry adds the rest.
TOPIC_INFO_COLUMNS = TOPIC_COLUMNS[: TOPIC_COLUMNS.index("first_seen")]
TOPIC_HISTORY_COLUMNS = declared_columns("topic_history")
ALERT_COLUMNS = declared_columns("alerts")
QUARANTINE_COLUMNS = declared_columns("quarantine")
RUN_COLUMNS = declared_columns("runs")
