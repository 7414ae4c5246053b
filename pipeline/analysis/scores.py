"""Scores with their intervals, the period-over-period change, the score trend, and the overview counts.

All computed in the warehouse (:mod:`pipeline.analysis.filters`); the statistics run on the aggregated
counts (:mod:`pipeline.analysis.stats`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.analysis.filters import ROW_KEY, SCORE_NAMES, Filters, Params, Scope, period_expr
from pipeline.analysis.stats import NAN, Change, Estimate, change_test, score_interval
from pipeline.config import EnrichmentConfig
from pipeline.schema import SURVEY_TYPES
from pipeline.warehouse.base import Warehouse

SCORE_TREND_COLUMNS = ["period", "n", "n_answered", "score", "low", "high", "small_sample"]
_TYPE_ORDER = list(SURVEY_TYPES)
_AGG = (
    "COUNT(v) AS n, SUM(v) AS s, SUM(v * v) AS ss, SUM(CASE WHEN det THEN 1 ELSE 0 END) AS det, "
    "SUM(CASE WHEN pro THEN 1 ELSE 0 END) AS pro, SUM(CASE WHEN NOT det AND NOT pro THEN 1 ELSE 0 END) AS pas"
)


def _num(value: Any) -> float:
    return NAN if value is None or pd.isna(value) else float(value)


def _int(value: Any) -> int:
    return 0 if value is None or pd.isna(value) else int(value)


@dataclass(frozen=True)
class ScoreSummary:
    """The score of one survey type over a slice, with its interval and its change.

    Attributes:
        survey_type: nps, csat or ces.
        n: Scored responses.
        score: The score (NPS -100..100, CSAT 0..100, CES 1..7); NaN without responses.
        low: Lower bound of the interval (``config.analysis.confidence``).
        high: Upper bound.
        se: Standard error.
        promoter_share: % promoters (NPS) / satisfied (CSAT) / easy, 6-7 (CES).
        passive_share: % of the rest.
        detractor_share: % detractors (NPS 0-6, CSAT 1-2, CES 1-3).
        small_sample: ``n`` is below ``config.analysis.small_sample``.
        previous: The score of the period just before (same length), when the filters have both bounds.
        change: current - previous with its z test, when ``previous`` exists.
    """

    survey_type: str
    n: int
    score: float
    low: float
    high: float
    se: float
    promoter_share: float
    passive_share: float
    detractor_share: float
    small_sample: bool
    previous: Estimate | None = None
    change: Change | None = None

    @property
    def score_name(self) -> str:
        """NPS, CSAT or CES."""
        return SCORE_NAMES[self.survey_type]

    def as_dict(self) -> dict[str, Any]:
        """A flat dict (for JSON and tables)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k not in ("previous", "change")}
        out["previous"] = self.previous.value if self.previous else None
        if self.change:
            out |= {
                "change": self.change.delta,
                "change_low": self.change.low,
                "change_high": self.change.high,
            }
            out["change_p_value"] = self.change.p_value
        return out


def dominant_survey_type(
    wh: Warehouse, filters: Filters | None = None, *, config: EnrichmentConfig | None = None
) -> str:
    """The survey type with the most responses in the slice (ties: nps, csat, ces); ``nps`` when empty."""
    filters = filters or Filters()
    if filters.survey_type:
        return filters.survey_type
    scope = Scope.of(wh, config)
    if scope.empty:
        return "nps"
    p = Params()
    rows = scope.run(
        f"{scope.ctes(filters, p, tags=False)} SELECT survey_type, COUNT(*) AS n FROM base GROUP BY survey_type",
        p,
    )
    counts = {str(r.survey_type): int(r.n) for r in rows.itertuples() if r.survey_type in SURVEY_TYPES}
    if not counts:
        return "nps"
    best = max(counts.values())
    return next(t for t in _TYPE_ORDER if counts.get(t, 0) == best)


def _estimate(survey_type: str, row: Any, confidence: float) -> Estimate:
    return score_interval(
        survey_type,
        _int(row["n"]),
        _num(row["s"]) if _int(row["n"]) else 0.0,
        _num(row["ss"]) if _int(row["n"]) else 0.0,
        _int(row["pro"]),
        confidence,
    )


def _aggregate(scope: Scope, filters: Filters) -> pd.Series:
    p = Params()
    return scope.run(f"{scope.ctes(filters, p, tags=False)} SELECT {_AGG} FROM base", p).iloc[0]


def score_summary(
    wh: Warehouse, filters: Filters | None = None, *, config: EnrichmentConfig | None = None
) -> ScoreSummary:
    """The score of the slice with its interval, shares, small-sample flag and period-over-period change.

    Args:
        wh: The warehouse.
        filters: The slice; its ``survey_type`` (None: the dominant one) decides the score.
        config: Table names and ``analysis`` settings (default: the defaults).
    """
    config = config or EnrichmentConfig()
    filters = filters or Filters()
    st = dominant_survey_type(wh, filters, config=config)
    filters = filters.with_type(st)
    a = config.analysis
    scope = Scope.of(wh, config)
    if scope.empty:
        e = Estimate(NAN, NAN, NAN, NAN, 0)
        return ScoreSummary(st, 0, NAN, NAN, NAN, NAN, NAN, NAN, NAN, True)
    row = _aggregate(scope, filters)
    e = _estimate(st, row, a.confidence)
    n = _int(row["n"])

    def pct(key: str) -> float:
        return 100.0 * _int(row[key]) / n if n else NAN

    previous = change = None
    before = filters.previous()
    if before is not None:
        previous = _estimate(st, _aggregate(scope, before), a.confidence)
        change = change_test(e, previous, a.confidence)
    return ScoreSummary(
        st,
        n,
        e.value,
        e.low,
        e.high,
        e.se,
        pct("pro"),
        pct("pas"),
        pct("det"),
        n < a.small_sample,
        previous,
        change,
    )


def score_trend(
    wh: Warehouse, filters: Filters | None = None, freq: str = "W", *, config: EnrichmentConfig | None = None
) -> pd.DataFrame:
    """The score per period with its interval band.

    Returns:
        :data:`SCORE_TREND_COLUMNS`: ``period`` (start; weeks start on Monday), ``n`` (scored responses),
        ``n_answered``, ``score``, ``low``, ``high``, ``small_sample``; one row per period from the first
        to the last response, empty periods included (n = 0, score NaN).
    """
    config = config or EnrichmentConfig()
    filters = (filters or Filters()).with_type(dominant_survey_type(wh, filters, config=config))
    scope = Scope.of(wh, config)
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in SCORE_TREND_COLUMNS})
    if scope.empty:
        return empty
    p = Params()
    sql = (
        f"{scope.ctes(filters, p, tags=False)} SELECT {period_expr(freq)} AS period, {_AGG}, "
        "SUM(CASE WHEN is_non_answer THEN 0 ELSE 1 END) AS n_answered "
        "FROM base WHERE submitted_at IS NOT NULL GROUP BY 1 ORDER BY 1"
    )
    rows = scope.run(sql, p)
    if rows.empty:
        return empty
    a = config.analysis
    est = [_estimate(filters.survey_type or "nps", r, a.confidence) for _, r in rows.iterrows()]
    out = pd.DataFrame(
        {
            "period": pd.to_datetime(rows["period"]),
            "n": rows["n"].fillna(0).astype(int),
            "n_answered": rows["n_answered"].fillna(0).astype(int),
            "score": [e.value for e in est],
            "low": [e.low for e in est],
            "high": [e.high for e in est],
        }
    )
    alias = {"D": "D", "W": "W-SUN", "M": "MS", "Q": "QS"}[freq.upper()]
    full = pd.date_range(out["period"].min(), out["period"].max(), freq=alias if alias != "W-SUN" else "7D")
    out = out.set_index("period").reindex(full).rename_axis("period").reset_index()
    out["n"] = out["n"].fillna(0).astype(int)
    out["n_answered"] = out["n_answered"].fillna(0).astype(int)
    out["small_sample"] = out["n"] < a.small_sample
    return out[SCORE_TREND_COLUMNS]


@dataclass
class Overview:
    """Counts of a slice, every survey type together.

    Attributes:
        n_responses: Responses.
        n_answered: Responses that are not non-answers.
        n_non_answer: Non-answers.
        languages: Answered responses per language, most frequent first.
        sentiment: Answered responses per effective sentiment label.
        tagged_share: Share (0..1) of answered responses with at least one (effective) theme.
        period_start: Earliest ``submitted_at``.
        period_end: Latest ``submitted_at``.
        by_type: Responses per survey type.
        taxonomy_versions: Answered responses per taxonomy version (several: tags of several codeframes).
    """

    n_responses: int = 0
    n_answered: int = 0
    n_non_answer: int = 0
    languages: dict[str, int] = field(default_factory=dict)
    sentiment: dict[str, int] = field(default_factory=dict)
    tagged_share: float = NAN
    period_start: pd.Timestamp | None = None
    period_end: pd.Timestamp | None = None
    by_type: dict[str, int] = field(default_factory=dict)
    taxonomy_versions: dict[str, int] = field(default_factory=dict)


def _counts(rows: pd.DataFrame, key: str) -> dict[str, int]:
    rows = rows[rows[key].notna()]
    rows = rows.sort_values(["n", key], ascending=[False, True])
    return {str(k): int(v) for k, v in zip(rows[key], rows["n"], strict=True)}


def overview(
    wh: Warehouse, filters: Filters | None = None, *, config: EnrichmentConfig | None = None
) -> Overview:
    """Volumes, language and sentiment mix, tagged share and dates of the slice (all survey types)."""
    scope = Scope.of(wh, config)
    filters = filters or Filters()
    if scope.empty:
        return Overview()
    p = Params()
    head = scope.ctes(filters, p)
    # The tagged count is a semi-join in WHERE: an IN (subquery) inside CASE is a per-row subplan on
    # PostgreSQL (hours at 1M rows), a semi-join only in WHERE.
    sql = (
        f"{head} SELECT a.*, g.tagged FROM (SELECT COUNT(*) AS n, "
        "SUM(CASE WHEN is_non_answer THEN 1 ELSE 0 END) AS na, MIN(submitted_at) AS lo, MAX(submitted_at) AS hi "
        "FROM base) a CROSS JOIN (SELECT COUNT(*) AS tagged FROM base WHERE NOT is_non_answer "
        f"AND {ROW_KEY} IN (SELECT {ROW_KEY} FROM etags)) g"
    )
    top = scope.run(sql, p).iloc[0]
    n, na = _int(top["n"]), _int(top["na"])
    p2 = Params()
    mix = scope.run(
        f"{scope.ctes(filters, p2, tags=False)} SELECT 'language' AS k, language AS key, COUNT(*) AS n FROM base "
        "WHERE NOT is_non_answer GROUP BY language UNION ALL SELECT 'sentiment', sentiment_label, COUNT(*) "
        "FROM base WHERE NOT is_non_answer GROUP BY sentiment_label UNION ALL SELECT 'type', survey_type, "
        "COUNT(*) FROM base GROUP BY survey_type",
        p2,
    )
    versions: dict[str, int] = {}
    if "taxonomy_version" in scope.enriched_columns:
        p3 = Params()
        rows = scope.run(
            f"{scope.ctes(filters, p3, extra=['taxonomy_version'], tags=False)} SELECT taxonomy_version AS key, "
            "COUNT(*) AS n FROM base WHERE NOT is_non_answer GROUP BY taxonomy_version",
            p3,
        )
        versions = _counts(rows, "key")
    answered = n - na
    return Overview(
        n_responses=n,
        n_answered=answered,
        n_non_answer=na,
        languages=_counts(mix[mix["k"] == "language"], "key"),
        sentiment=_counts(mix[mix["k"] == "sentiment"], "key"),
        tagged_share=_int(top["tagged"]) / answered if answered else NAN,
        period_start=None if pd.isna(top["lo"]) else pd.Timestamp(top["lo"]),
        period_end=None if pd.isna(top["hi"]) else pd.Timestamp(top["hi"]),
        by_type=_counts(mix[mix["k"] == "type"], "key"),
        taxonomy_versions=versions,
    )


def scores_by_type(
    wh: Warehouse, filters: Filters | None = None, *, config: EnrichmentConfig | None = None
) -> dict[str, ScoreSummary]:
    """:func:`score_summary` of every survey type present in the slice."""
    present = overview(wh, filters, config=config).by_type
    base = filters or Filters()
    return {t: score_summary(wh, base.with_type(t), config=config) for t in _TYPE_ORDER if present.get(t)}


def finite(x: float) -> bool:
    """Whether a number is a real number (not NaN/inf)."""
    return (
        x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x))) and np.isfinite(x)
    )
