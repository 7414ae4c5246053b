"""Column contracts of the warehouse tables (names of tables are configuration; columns are not).

The source table may carry any number of extra *segment* columns (channel, region, plan, ...); they are
kept and carried through to ``feedback_enriched``.
"""

from __future__ import annotations

SURVEY_TYPES: dict[str, tuple[float, float]] = {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}

SOURCE_REQUIRED = ["response_id", "survey_type", "score", "comment", "submitted_at"]

# Key columns of every table written by the pipeline (used for idempotent upserts).
TABLE_KEYS: dict[str, list[str]] = {
    "survey_responses": ["response_id"],
    "feedback_enriched": ["response_id"],
    "feedback_tags": ["response_id", "tag"],
    "feedback_sentences": ["response_id", "sentence_id"],
    "topics": ["topic_id"],
    "topic_history": ["model_version", "event", "topic_id"],
    "alerts": ["alert_id"],
    "pipeline_runs": ["run_id"],
    "quarantine": ["response_id"],
    "embedding_cache": ["model_id", "text_hash"],
}

ENRICHED_COLUMNS = [
    "response_id",
    "survey_type",
    "score",
    "submitted_at",
    # segment columns go here
    "language",
    "language_confidence",
    "is_non_answer",
    "text_redacted",
    "text_truncated",
    "pii_found",
    "n_sentences",
    "sentiment_label",
    "sentiment_score",
    "topic_id",
    "topic_label",
    "tags",
    "run_id",
    "embedder_id",
    "sentiment_model_version",
    "sentiment_source",
    "tagger_version",
    "taxonomy_version",
    "topic_model_version",
    "enriched_at",
]

TAG_COLUMNS = [
    "response_id",
    "tag",
    "parent_tag",
    "score",
    "sentiment_label",
    "sentiment_score",
    "source",
    "tagger_version",
    "run_id",
]

SENTENCE_COLUMNS = [
    "response_id",
    "sentence_id",
    "text_redacted",
    "sentiment_label",
    "sentiment_score",
    "tags",
    "run_id",
]

# What a fitted topic model says of each topic (StableTopicModel.topic_info); the registry adds the rest.
TOPIC_INFO_COLUMNS = [
    "topic_id",
    "label",
    "keywords",
    "representative_quotes",
    "suggested_tag",
    "tag_share",
    "candidate_new_tag",
    "size",
]

TOPIC_COLUMNS = [
    *TOPIC_INFO_COLUMNS,
    "first_seen",
    "last_seen",
    "model_version",
    "status",
]

TOPIC_HISTORY_COLUMNS = [
    "model_version",
    "event",
    "topic_id",
    "related_ids",
    "overlap",
    "detail",
    "created_at",
]

ALERT_COLUMNS = [
    "alert_id",
    "kind",
    "key",
    "label",
    "period",
    "period_start",
    "period_end",
    "count",
    "baseline",
    "ratio",
    "reason",
    "evidence",
    "created_at",
]

QUARANTINE_COLUMNS = ["response_id", "reason", "detail", "raw", "run_id", "quarantined_at"]

RUN_COLUMNS = [
    "run_id",
    "flow",
    "started_at",
    "finished_at",
    "seconds",
    "timings",
    "rows_in",
    "rows_enriched",
    "rows_quarantined",
    "quarantine_reasons",
    "watermark_submitted_at",
    "watermark_response_id",
    "embedder_id",
    "sentiment_model_version",
    "sentiment_source",
    "tagger_version",
    "taxonomy_version",
    "topic_model_version",
    "status",
]
