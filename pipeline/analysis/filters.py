"""What an analysis looks at (:class:`Filters`) and the SQL that selects it (:class:`Scope`).

Every query of :mod:`pipeline.analysis` starts from the same two common table expressions, built here:

* ``base``: one row per enriched response inside the filters, with the *effective* sentiment (a human
  correction from ``sentiment_labels`` over the model's label), the per-response score value ``v``
  (+100/0/-100 for NPS, 100/0 for CSAT, the score for CES; its mean is the score), and flags ``det``
  / ``pro`` (detractor / promoter on the row's own scale).
* ``etags``: one row per (response, theme) for the responses of ``base``: the human themes of
  ``tag_labels`` for a corrected answer (all of them, none when a person removed every theme), the
  model's ``feedback_tags`` rows otherwise; ``parent_tag`` comes from the taxonomy as the tags table
  records it.

The SQL is plain and portable (DuckDB and PostgreSQL read the same text): ``:name`` placeholders with
scalar values (lists are expanded into one placeholder per value), ``CAST`` not ``::``,
``date_trunc`` for periods. Only aggregated rows leave the database, except in
:func:`pipeline.analysis.answers.answers`, which pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from pipeline.config import EnrichmentConfig
from pipeline.errors import ConfigError
from pipeline.schema import SURVEY_TYPES
from pipeline.warehouse.base import Warehouse

DETRACTOR_MAX: dict[str, float] = {"nps": 6, "csat": 2, "ces": 3}
"""Highest score that still counts as a detractor, per survey type."""
PROMOTER_MIN: dict[str, float] = {"nps": 9, "csat": 4, "ces": 6}
"""Lowest score that counts as a promoter (NPS), satisfied (CSAT) or easy (CES)."""
SCORE_NAMES: dict[str, str] = {"nps": "NPS", "csat": "CSAT", "ces": "CES"}
FREQS: dict[str, str] = {"D": "day", "W": "week", "M": "month", "Q": "quarter"}
SENTIMENT_VALUES: dict[str, float] = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
ROW_KEY = "feedback_row_key"
"""An integer key of each answer that the dashboard's snapshot adds to the enriched, tags and tag-labels
tables (:func:`pipeline.dashboard.snapshot.publish_snapshot`). Where all three carry it, the queries join
answers to their themes on it instead of the text ``response_id``: 5x faster at 1M answers
(bench/README.md, "Dashboard"). Every CTE here exposes the join key under this name."""


@dataclass(frozen=True)
class Filters:
    """The slice of responses every analysis function looks at (None / empty: no restriction).

    Attributes:
        start: First day (or moment) included, on ``submitted_at``.
        end: Last day included (a ``date`` includes the whole day; a ``datetime`` is exclusive).
        survey_type: ``nps``, ``csat`` or ``ces``. Score-based results need one type; None picks the
            dominant type of the slice (:func:`pipeline.analysis.scores.dominant_survey_type`).
        segments: Segment column -> allowed values, e.g. ``{"channel": ["app", "web"]}``; the columns
            must be declared segment columns of the enriched table (``source.segments``).
        languages: Detected languages.
        themes: Answers carrying at least one of these themes (or a child of one).
        sentiments: Effective sentiment labels (human correction over the model's).
        topics: Topic ids.
    """

    start: date | datetime | None = None
    end: date | datetime | None = None
    survey_type: str | None = None
    segments: dict[str, list[str]] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)
    themes: list[str] = field(default_factory=list)
    sentiments: list[str] = field(default_factory=list)
    topics: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.survey_type is not None and self.survey_type not in SURVEY_TYPES:
            raise ConfigError(
                f"Filters.survey_type {self.survey_type!r}: expected one of {list(SURVEY_TYPES)} or None."
            )
        if not isinstance(self.segments, dict):
            raise ConfigError("Filters.segments: expected {column: [values]}, e.g. {'channel': ['app']}.")
        bad = [s for s in self.sentiments if s not in SENTIMENT_VALUES]
        if bad:
            raise ConfigError(f"Filters.sentiments {bad}: expected values of {list(SENTIMENT_VALUES)}.")

    def with_period(self, start: date | datetime | None, end: date | datetime | None) -> Filters:
        """The same filters over another period."""
        return replace(self, start=start, end=end)

    def with_type(self, survey_type: str | None) -> Filters:
        """The same filters for one survey type."""
        return replace(self, survey_type=survey_type)

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """``[start, end)`` as datetimes (a ``date`` end includes its day)."""
        return _as_start(self.start), _as_end(self.end)

    def previous(self) -> Filters | None:
        """The period of the same length just before this one; None without both bounds."""
        lo, hi = self.bounds()
        if lo is None or hi is None:
            return None
        length = hi - lo
        return replace(self, start=lo - length, end=lo)


def _as_start(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return pd.Timestamp(value).tz_localize(None).to_pydatetime() if value.tzinfo else value
    return datetime(value.year, value.month, value.day)


def _as_end(value: date | datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return _as_start(value)
    return datetime(value.year, value.month, value.day) + timedelta(days=1)


class Params:
    """Collects placeholder values while SQL text is built."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        """A new ``:pN`` placeholder bound to ``value``."""
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"

    def many(self, values: list[Any]) -> str:
        """``(:p1, :p2, ...)`` for a list (``(NULL)`` for an empty one: matches nothing)."""
        if not values:
            return "(NULL)"
        return "(" + ", ".join(self.add(v) for v in values) + ")"


def value_expr(col: str = "e.score", type_col: str = "e.survey_type") -> str:
    """SQL of the per-response score value whose mean is the row's score (see the module docstring)."""
    return (
        f"CASE WHEN {type_col} = 'nps' THEN (CASE WHEN {col} >= 9 THEN 100.0 WHEN {col} <= 6 THEN -100.0 "
        f"ELSE 0.0 END) WHEN {type_col} = 'csat' THEN (CASE WHEN {col} >= 4 THEN 100.0 ELSE 0.0 END) "
        f"ELSE CAST({col} AS DOUBLE PRECISION) END"
    )


def _group_expr(kind: str, col: str = "e.score", type_col: str = "e.survey_type") -> str:
    limits = DETRACTOR_MAX if kind == "det" else PROMOTER_MIN
    op = "<=" if kind == "det" else ">="
    parts = " ".join(f"WHEN {type_col} = '{t}' THEN {col} {op} {limits[t]:g}" for t in SURVEY_TYPES)
    return f"COALESCE(CASE {parts} END, FALSE)"


@dataclass
class Scope:
    """The tables of one warehouse that the analysis reads, and what exists in it.

    Build one with :meth:`of`; every analysis function does, from its ``wh`` and ``config``.
    """

    wh: Warehouse
    config: EnrichmentConfig
    enriched_columns: list[str]
    has_tags: bool
    has_tag_labels: bool
    has_sentiment_labels: bool
    tag_columns: list[str] = field(default_factory=list)
    label_columns: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, wh: Warehouse, config: EnrichmentConfig | None = None) -> Scope:
        """The scope of ``wh`` with the table names of ``config`` (default: the default names)."""
        config = config or EnrichmentConfig()
        t = config.tables
        cols = wh.columns(t.enriched) if wh.table_exists(t.enriched) else []
        return cls(
            wh,
            config,
            cols,
            wh.table_exists(t.tags),
            wh.table_exists(t.tag_labels),
            wh.table_exists(t.sentiment_labels),
            wh.columns(t.tags) if wh.table_exists(t.tags) else [],
            wh.columns(t.tag_labels) if wh.table_exists(t.tag_labels) else [],
        )

    @property
    def empty(self) -> bool:
        """No enriched table yet."""
        return not self.enriched_columns

    @property
    def key(self) -> str:
        """The column answers and their theme rows join on: :data:`ROW_KEY` where the enriched, tags and
        tag-labels tables (where there is one) all carry it (a dashboard snapshot), else ``response_id``."""
        carried = (
            ROW_KEY in self.enriched_columns
            and ROW_KEY in self.tag_columns
            and (not self.has_tag_labels or ROW_KEY in self.label_columns)
        )
        return ROW_KEY if carried else "response_id"

    def q(self, table: str) -> str:
        """A table of the config, qualified and quoted."""
        return self.wh._qualified(table)

    def col(self, name: str) -> str:
        """A quoted column name."""
        return self.wh._quote(name)

    def segment_columns(self) -> list[str]:
        """Segment columns that are real columns of the enriched table (usable in filters and cross-tabs)."""
        from pipeline.warehouse.tables import declared_columns

        own = set(declared_columns("enriched"))
        customer = self.config.source.customer_id or "customer_id"
        skip = (customer, "segments_extra", ROW_KEY)
        return [c for c in self.enriched_columns if c not in own and c not in skip]

    def run(self, sql: str, params: Params) -> pd.DataFrame:
        """Run a read-only query."""
        return self.wh.sql(sql, params.values)

    # ---- the common table expressions ---------------------------------------------------------------

    def base_cte(self, filters: Filters, p: Params, extra: list[str] | None = None) -> str:
        """``base AS (...)``: the responses inside ``filters`` (see the module docstring)."""
        t = self.config.tables
        cols = [
            "e.response_id",
            f"e.{self.key} AS {ROW_KEY}",
            "e.survey_type",
            "e.score",
            "e.submitted_at",
            "e.is_non_answer",
            "e.language" if "language" in self.enriched_columns else "CAST(NULL AS TEXT) AS language",
            "e.topic_id" if "topic_id" in self.enriched_columns else "CAST(NULL AS BIGINT) AS topic_id",
        ]
        for name in extra or []:
            cols.append(f"e.{self.col(name)}")
        join = ""
        if self.has_sentiment_labels:
            join = f" LEFT JOIN {self.q(t.sentiment_labels)} sl ON sl.response_id = e.response_id"
            cols.append("COALESCE(sl.sentiment_label, e.sentiment_label) AS sentiment_label")
            cases = " ".join(f"WHEN '{k}' THEN {v}" for k, v in SENTIMENT_VALUES.items())
            cols.append(
                "CASE WHEN sl.sentiment_label IS NULL THEN e.sentiment_score "
                f"ELSE CASE sl.sentiment_label {cases} END END AS sentiment_score"
            )
            cols.append("sl.sentiment_label IS NOT NULL AS sentiment_human")
        else:
            cols += ["e.sentiment_label", "e.sentiment_score", "FALSE AS sentiment_human"]
        cols += [f"{value_expr()} AS v", f"{_group_expr('det')} AS det", f"{_group_expr('pro')} AS pro"]
        where = self.where(filters, p)
        return f"base AS (SELECT {', '.join(cols)} FROM {self.q(t.enriched)} e{join}{where})"

    def where(self, filters: Filters, p: Params) -> str:
        """The WHERE clause of ``base`` (on alias ``e``)."""
        conds: list[str] = []
        lo, hi = filters.bounds()
        if lo is not None:
            conds.append(f"e.submitted_at >= {p.add(lo)}")
        if hi is not None:
            conds.append(f"e.submitted_at < {p.add(hi)}")
        if filters.survey_type:
            conds.append(f"e.survey_type = {p.add(filters.survey_type)}")
        if filters.languages:
            conds.append(f"e.language IN {p.many(list(filters.languages))}")
        if filters.topics:
            conds.append(f"e.topic_id IN {p.many([int(x) for x in filters.topics])}")
        usable = self.segment_columns()
        for column, values in filters.segments.items():
            if column not in usable:
                raise ConfigError(
                    f"Filters.segments: {column!r} is not a segment column of {self.config.tables.enriched} "
                    f"(usable: {usable}); name it in source.segments to make it a column."
                )
            conds.append(f"CAST(e.{self.col(column)} AS TEXT) IN {p.many([str(v) for v in values])}")
        if filters.sentiments:
            label = "e.sentiment_label"
            if self.has_sentiment_labels:
                label = "COALESCE(sl.sentiment_label, e.sentiment_label)"
            conds.append(f"{label} IN {p.many(list(filters.sentiments))}")
        if filters.themes:
            inner = self.etags_select(p, restrict=None)
            names = p.many(list(filters.themes))
            conds.append(
                f"e.{self.key} IN (SELECT x.{ROW_KEY} FROM ({inner}) x "
                f"WHERE x.tag IN {names} OR x.parent_tag IN {names})"
            )
        return (" WHERE " + " AND ".join(conds)) if conds else ""

    def etags_select(self, p: Params, restrict: str | None = "base") -> str:
        """SELECT of the effective (response, theme) rows; ``restrict``: a CTE of allowed responses."""
        parts = [x for x in self._etags_parts(p, restrict) if x]
        if not parts:
            return (
                f"SELECT CAST(NULL AS TEXT) AS response_id, CAST(NULL AS TEXT) AS {ROW_KEY}, "
                "CAST(NULL AS TEXT) AS tag, CAST(NULL AS TEXT) "
                "AS parent_tag, CAST(NULL AS TEXT) AS tag_sentiment_label, CAST(NULL AS DOUBLE PRECISION) "
                "AS tag_sentiment_score, FALSE AS human WHERE 1 = 0"
            )
        return " UNION ALL ".join(parts)

    def _etags_parts(self, p: Params, restrict: str | None) -> tuple[str, str]:
        """The model's rows (responses without a human correction) and the human rows, as two SELECTs
        (each "" when its table is missing)."""
        t = self.config.tables
        model = human_rows = ""
        key = self.key
        only = f" AND t.{key} IN (SELECT {ROW_KEY} FROM {restrict})" if restrict else ""
        if self.has_tags:
            human = (
                f" AND NOT EXISTS (SELECT 1 FROM {self.q(t.tag_labels)} l WHERE l.id = t.response_id)"
                if self.has_tag_labels
                else ""
            )

            def tcol(name: str, kind: str) -> str:
                return f"t.{name}" if name in self.tag_columns else f"CAST(NULL AS {kind})"

            model = (
                f"SELECT t.response_id, t.{key} AS {ROW_KEY}, t.tag, {tcol('parent_tag', 'TEXT')} AS parent_tag, "
                f"{tcol('sentiment_label', 'TEXT')} AS tag_sentiment_label, "
                f"{tcol('sentiment_score', 'DOUBLE PRECISION')} AS tag_sentiment_score, FALSE AS human "
                f"FROM {self.q(t.tags)} t WHERE t.tag IS NOT NULL{human}{only}"
            )
        if self.has_tag_labels:
            with_parents = self.has_tags and "parent_tag" in self.tag_columns
            parents = (
                f"LEFT JOIN (SELECT tag, MAX(parent_tag) AS parent_tag FROM {self.q(t.tags)} GROUP BY tag) pt "
                "ON pt.tag = u.tag"
                if with_parents
                else ""
            )
            parent = "pt.parent_tag" if with_parents else "CAST(NULL AS TEXT)"
            only_u = f" WHERE u.{ROW_KEY} IN (SELECT {ROW_KEY} FROM {restrict})" if restrict else ""
            lkey = "id" if key == "response_id" else key
            human_rows = (
                f"SELECT u.response_id, u.{ROW_KEY}, u.tag, {parent} AS parent_tag, "
                "CAST(NULL AS TEXT) AS tag_sentiment_label, CAST(NULL AS DOUBLE PRECISION) AS tag_sentiment_score, "
                f"TRUE AS human FROM (SELECT l.id AS response_id, l.{lkey} AS {ROW_KEY}, unnest(l.tags) AS tag "
                f"FROM {self.q(t.tag_labels)} l) u {parents}{only_u}"
            )
        return model, human_rows

    def theme_rows(self, p: Params, level: str = "theme", detail: bool = False) -> str:
        """SELECT of one row per (response, theme key): :data:`ROW_KEY` (the answer's join key, see
        :attr:`key`), ``tag`` (the theme, or its parent for ``level="parent"``); with ``detail`` also
        ``parent_tag``, ``tss`` / ``tsl`` (per-theme sentiment score / label) and ``human`` (1 when a
        person set the response's themes, else 0).

        On the theme level the model's rows are unique by the tags table's key (response_id, tag), so
        only the (small) human branch is grouped; grouping 1.3M (text id, theme) rows was most of the time
        of the theme queries at 1M responses (bench/README.md, "Analysis"). Parents always group.
        """
        if level not in ("theme", "parent"):
            raise ConfigError(f"Unknown theme level {level!r}: expected 'theme' or 'parent'.")
        more = (
            ", MAX(parent_tag) AS parent_tag, AVG(tag_sentiment_score) AS tss, MAX(tag_sentiment_label) AS tsl, "
            "MAX(CASE WHEN human THEN 1 ELSE 0 END) AS human"
            if detail
            else ""
        )
        if level == "parent":
            return (
                f"SELECT {ROW_KEY}, COALESCE(parent_tag, tag) AS tag{more} "
                f"FROM ({self.etags_select(p, None)}) x GROUP BY {ROW_KEY}, COALESCE(parent_tag, tag)"
            )
        model, human = self._etags_parts(p, None)
        parts: list[str] = []
        if model:
            cols = (
                ", parent_tag, tag_sentiment_score AS tss, tag_sentiment_label AS tsl, 0 AS human"
                if detail
                else ""
            )
            parts.append(f"SELECT {ROW_KEY}, tag{cols} FROM ({model}) m")
        if human:
            parts.append(f"SELECT {ROW_KEY}, tag{more} FROM ({human}) h GROUP BY {ROW_KEY}, tag")
        if not parts:
            cols = (
                ", CAST(NULL AS TEXT) AS parent_tag, CAST(NULL AS DOUBLE PRECISION) AS tss, "
                "CAST(NULL AS TEXT) AS tsl, 0 AS human"
                if detail
                else ""
            )
            return f"SELECT CAST(NULL AS TEXT) AS {ROW_KEY}, CAST(NULL AS TEXT) AS tag{cols} WHERE 1 = 0"
        return " UNION ALL ".join(parts)

    def ctes(self, filters: Filters, p: Params, extra: list[str] | None = None, tags: bool = True) -> str:
        """``WITH base AS (...), etags AS (...)`` (``etags`` only when ``tags``)."""
        out = "WITH " + self.base_cte(filters, p, extra)
        if tags:
            # Not restricted to base: every consumer joins base anyway, and a second semi-join on text ids
            # doubles the cost on millions of rows (bench/README.md, "Analysis").
            out += f", etags AS ({self.etags_select(p, restrict=None)})"
        return out


def period_expr(freq: str, column: str = "submitted_at") -> str:
    """``date_trunc`` of a pandas-style period alias (D, W, M, Q); weeks start on Monday."""
    unit = FREQS.get(str(freq).upper())
    if unit is None:
        raise ConfigError(
            f"Unknown period {freq!r}: expected one of {list(FREQS)} (day, week, month, quarter)."
        )
    return f"date_trunc('{unit}', {column})"
