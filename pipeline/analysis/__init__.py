"""Root-cause analysis in the warehouse: the one layer the report, the terminal summary and the dashboard read.

Every function takes a warehouse object first (:func:`pipeline.warehouse.open_warehouse`), a
:class:`Filters` (the slice: period, survey type, segment values, languages, themes, sentiments,
topics) and the keyword ``config`` (table names and the ``analysis`` / ``followups`` / ``status``
settings; default: the defaults). The aggregates are computed in the warehouse with portable SQL
(DuckDB and PostgreSQL); only aggregated counts leave it (and one page of answers for a drill-down).
Human corrections are read over the model's labels everywhere.

Reading (small DataFrames / dataclasses):

* :func:`score_summary` (score with interval, shares, small-sample flag, change vs the previous
  period of the same length with its z test), :func:`scores_by_type`, :func:`dominant_survey_type`
* :func:`overview` (volumes, language / sentiment mix, tagged share, dates)
* :func:`score_trend` (score per period with its interval band)
* :func:`theme_impact` (volume, share, score with/without, impact with bootstrap interval, small-sample
  flag, per-theme sentiment, human share; ``level="parent"`` rolls up), :func:`theme_trend`
* :func:`drivers` (logistic regression detractor ~ themes: odds ratios with intervals, BH)
* :func:`segment_columns`, :func:`segment_scores`, :func:`segment_theme_crosstab` (BH-corrected cells)
* :func:`emerging` (alerts of the period), :func:`answers` / :func:`answer_count` (drill-down page)
* :func:`followups` (the queue), :func:`corrections`, :func:`pipeline_status` (health checks)

Writing (any warehouse object, e.g. a small side DuckDB file; :func:`merge_edits` moves the edits):

* :func:`set_followup` (status / owner / note, with who and when), :func:`add_candidates` (nightly)
* :func:`correct_themes` (``tag_labels``), :func:`correct_sentiment` (``sentiment_labels``)

Example:
    >>> from pipeline.analysis import Filters, score_summary, theme_impact  # doctest: +SKIP
    >>> with open_warehouse("var/feedback.duckdb") as wh:  # doctest: +SKIP
    ...     s = score_summary(wh, Filters(start=date(2026, 1, 1), survey_type="nps"))
    ...     print(s.score, s.low, s.high, s.change.p_value)
"""

from __future__ import annotations

from typing import Any

from pipeline.analysis.alerts import AlertRules, compute_alerts, emerging, update_alerts
from pipeline.analysis.answers import ANSWER_COLUMNS, answer_count, answers
from pipeline.analysis.corrections import correct_sentiment, correct_themes, corrections, merge_edits
from pipeline.analysis.drivers import drivers
from pipeline.analysis.filters import DETRACTOR_MAX, SCORE_NAMES, Filters
from pipeline.analysis.followups import (
    OPEN_STATUSES,
    STATUSES,
    add_candidates,
    export_open,
    followups,
    set_followup,
)
from pipeline.analysis.health import StatusReport, pipeline_status
from pipeline.analysis.scores import (
    Overview,
    ScoreSummary,
    dominant_survey_type,
    overview,
    score_summary,
    score_trend,
    scores_by_type,
)
from pipeline.analysis.segments import segment_columns, segment_scores, segment_theme_crosstab
from pipeline.analysis.stats import Change, Estimate
from pipeline.analysis.themes import theme_impact, theme_trend

__all__ = [
    "ANSWER_COLUMNS",
    "DETRACTOR_MAX",
    "OPEN_STATUSES",
    "SCORE_NAMES",
    "STATUSES",
    "AlertRules",
    "Change",
    "Estimate",
    "Filters",
    "Overview",
    "ScoreSummary",
    "StatusReport",
    "add_candidates",
    "answer_count",
    "answers",
    "compute_alerts",
    "correct_sentiment",
    "correct_themes",
    "corrections",
    "dominant_survey_type",
    "drivers",
    "emerging",
    "export_open",
    "followups",
    "merge_edits",
    "overview",
    "pipeline_status",
    "score_summary",
    "score_trend",
    "scores_by_type",
    "segment_columns",
    "segment_scores",
    "segment_theme_crosstab",
    "set_followup",
    "theme_impact",
    "theme_trend",
    "update_alerts",
]


def __getattr__(name: str) -> Any:
    # The terminal summary lives with the report; kept reachable here for callers of the old module.
    if name == "format_summary":
        from pipeline.report.terminal import format_summary

        return format_summary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
