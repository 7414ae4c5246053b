"""What the report shows, read from the analysis layer only (:mod:`pipeline.analysis`).

:func:`build_summary` calls the analysis functions once each and keeps their small results in a
:class:`ReportData`; the HTML page and the terminal summary format it and compute nothing, so every
number they show is the analysis layer's number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from pipeline import analysis as an
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import Warehouse

RECENT_DAYS = 28
N_FOLLOWUPS = 50
HEATMAP_THEMES = 12


@dataclass
class ReportData:
    """Everything the report and the terminal summary show (see :func:`build_summary`)."""

    overview: an.Overview
    score: an.ScoreSummary
    recent: an.ScoreSummary | None
    by_type: dict[str, an.ScoreSummary]
    theme_impact: pd.DataFrame
    parent_impact: pd.DataFrame
    drivers: pd.DataFrame
    score_trend: pd.DataFrame
    theme_trend: pd.DataFrame
    segments: pd.DataFrame
    crosstab: pd.DataFrame
    heatmap_segment: str | None
    followups: pd.DataFrame
    followups_open: int
    alerts: pd.DataFrame
    freq: str = "W"
    notes: list[str] = field(default_factory=list)

    @property
    def score_type(self) -> str:
        """The survey type of the score-based tables."""
        return self.score.survey_type

    @property
    def score_name(self) -> str:
        """NPS, CSAT or CES."""
        return self.score.score_name

    @property
    def tag_matrix(self) -> pd.DataFrame:
        """Share of answered responses with each theme per value of :attr:`heatmap_segment`."""
        if self.crosstab.empty:
            return pd.DataFrame()
        return self.crosstab.pivot(index="value", columns="tag", values="share")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict without customer-level data (no follow-up rows, no answers)."""
        o = self.overview
        return jsonable(
            {
                "n_responses": o.n_responses,
                "n_answered": o.n_answered,
                "n_non_answer": o.n_non_answer,
                "period_start": o.period_start,
                "period_end": o.period_end,
                "languages": o.languages,
                "sentiment": o.sentiment,
                "tagged_share": o.tagged_share,
                "score_type": self.score_type,
                "overall": self.score.as_dict(),
                "recent": self.recent.as_dict() if self.recent else None,
                "overall_by_type": {t: s.as_dict() for t, s in self.by_type.items()},
                "theme_impact": records(self.theme_impact),
                "parent_impact": records(self.parent_impact),
                "drivers": records(self.drivers),
                "segments": records(self.segments),
                "significant_cells": records(self.crosstab[self.crosstab["significant"].astype(bool)])
                if len(self.crosstab)
                else [],
                "score_trend": records(self.score_trend),
                "alerts": records(self.alerts.drop(columns=["evidence"], errors="ignore")),
                "followups_open": self.followups_open,
                "notes": self.notes,
            }
        )


def jsonable(value: Any) -> Any:
    """Convert ``value`` recursively into plain JSON types (NaN/NaT -> None, timestamps -> ISO)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray | pd.Series):
        return [jsonable(v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp | np.datetime64):
        ts = pd.Timestamp(value)
        return None if pd.isna(ts) else ts.isoformat()
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) or math.isinf(value) else float(value)
    if isinstance(value, str):
        return value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of ``df`` as JSON-ready dicts."""
    return [jsonable(r) for r in df.to_dict(orient="records")]


def _pick_heatmap_segment(segments: pd.DataFrame, max_values: int = 15) -> str | None:
    best, spread = None, -1.0
    for seg, part in segments.groupby("segment", sort=False):
        if not 2 <= len(part) <= max_values:
            continue
        s = part["score"].astype(float)
        value = float(s.max() - s.min()) if s.notna().sum() >= 2 else 0.0
        if value > spread:
            best, spread = str(seg), value
    return best


def build_summary(
    wh: Warehouse, config: EnrichmentConfig | None = None, filters: an.Filters | None = None, freq: str = "W"
) -> ReportData:
    """Read every table of the report from the analysis layer.

    Args:
        wh: The warehouse.
        config: Table names, ``analysis`` settings, ``source.segments``.
        filters: The slice reported (default: everything).
        freq: Period of the trends (D, W, M, Q).
    """
    config = config or EnrichmentConfig()
    filters = filters or an.Filters()
    ov = an.overview(wh, filters, config=config)
    st = an.dominant_survey_type(wh, filters, config=config)
    typed = filters.with_type(st)
    score = an.score_summary(wh, typed, config=config)
    recent = None
    if ov.period_end is not None:
        end = ov.period_end.to_pydatetime() + timedelta(microseconds=1)
        recent = an.score_summary(
            wh, typed.with_period(end - timedelta(days=RECENT_DAYS), end), config=config
        )
    by_type = an.scores_by_type(wh, filters, config=config)
    segs = [an.segment_scores(wh, s, typed, config=config) for s in an.segment_columns(wh, config=config)]
    segs = [s for s in segs if len(s)]
    segments = (
        pd.concat(segs, ignore_index=True)
        if segs
        else pd.DataFrame(columns=an.segments.SEGMENT_SCORE_COLUMNS)
    )
    heat = _pick_heatmap_segment(segments) if len(segments) else None
    crosstab = (
        an.segment_theme_crosstab(wh, heat, filters, max_themes=HEATMAP_THEMES, config=config)
        if heat
        else pd.DataFrame(columns=an.segments.CROSSTAB_COLUMNS)
    )
    queue = an.followups(wh, filters, statuses=an.OPEN_STATUSES, config=config)
    alerts = pd.DataFrame()
    if wh.table_exists(config.tables.alerts):
        alerts = an.emerging(wh, config=config, kinds=("topic", "tag"))
    notes = []
    if len(ov.taxonomy_versions) > 1:
        listed = ", ".join(f"{v} ({n:,} answers)" for v, n in ov.taxonomy_versions.items())
        notes.append(
            f"tags come from {len(ov.taxonomy_versions)} codeframe versions: {listed}. A tag whose definition "
            "changed counts answers tagged under each; the weekly retrain-tagger flow re-tags the stored answers."
        )
    return ReportData(
        overview=ov,
        score=score,
        recent=recent,
        by_type=by_type,
        theme_impact=an.theme_impact(wh, typed, config=config),
        parent_impact=an.theme_impact(wh, typed, level="parent", config=config),
        drivers=an.drivers(wh, typed, config=config),
        score_trend=an.score_trend(wh, typed, freq, config=config),
        theme_trend=an.theme_trend(wh, filters, freq, config=config),
        segments=segments,
        crosstab=crosstab,
        heatmap_segment=heat,
        followups=queue.head(N_FOLLOWUPS),
        followups_open=len(queue),
        alerts=alerts,
        freq=freq,
        notes=notes,
    )
