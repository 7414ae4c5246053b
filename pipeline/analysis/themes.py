"""Themes: volume, share, score with and without, impact with a bootstrap interval, sentiment, trend.

``impact = score(all) - score(all without the theme)``: the points the theme costs (negative) or earns
(positive). "All" is every scored response of the analysed survey type in the slice. The interval is a
bootstrap over the aggregated value counts (:func:`pipeline.analysis.stats.bootstrap_impact`), so it
stays fast on millions of rows; themes on fewer than ``config.analysis.small_sample`` responses are
flagged ``small_sample``. ``level="parent"`` rolls themes up to their parent themes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.filters import ROW_KEY, Filters, Params, Scope, period_expr
from pipeline.analysis.scores import dominant_survey_type
from pipeline.analysis.stats import NAN, bootstrap_impact
from pipeline.config import EnrichmentConfig
from pipeline.errors import ConfigError
from pipeline.warehouse.base import Warehouse

THEME_IMPACT_COLUMNS = [
    "tag",
    "parent_tag",
    "volume",
    "share",
    "score_with",
    "score_without",
    "impact",
    "impact_low",
    "impact_high",
    "detractor_share",
    "mean_sentiment",
    "negative_share",
    "human_share",
    "small_sample",
]
THEME_TREND_COLUMNS = ["period", "tag", "count", "share", "n_answered"]


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def theme_key(level: str) -> str:
    """SQL of the theme a row counts for: the theme itself, or its parent (itself when it has none)."""
    if level == "theme":
        return "tag"
    if level == "parent":
        return "COALESCE(parent_tag, tag)"
    raise ConfigError(f"Unknown theme level {level!r}: expected 'theme' or 'parent'.")


def theme_impact(
    wh: Warehouse,
    filters: Filters | None = None,
    *,
    level: str = "theme",
    min_count: int = 1,
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """Every theme's volume, score with and without it, impact with interval, and sentiment.

    Args:
        wh: The warehouse.
        filters: The slice; its survey type (None: the dominant one) decides the score.
        level: ``theme`` or ``parent`` (parents roll up their children).
        min_count: Leave out themes on fewer responses.
        config: Table names and ``analysis`` settings.

    Returns:
        :data:`THEME_IMPACT_COLUMNS`, worst impact first: ``volume`` (responses with the theme),
        ``share`` (of answered responses), ``score_with``/``score_without``, ``impact`` with
        ``impact_low``/``impact_high``, ``detractor_share`` (0..1 of scored tagged responses),
        ``mean_sentiment`` (per-theme sentiment where the tagger wrote one, else the response's),
        ``negative_share`` (0..1), ``human_share`` (0..1 of the theme's answers labelled by a person),
        ``small_sample``.
    """
    config = config or EnrichmentConfig()
    filters = (filters or Filters()).with_type(dominant_survey_type(wh, filters, config=config))
    scope = Scope.of(wh, config)
    if scope.empty:
        return _empty(THEME_IMPACT_COLUMNS)
    a = config.analysis
    p = Params()
    # One pass: per (theme, score value) the counts every column is summed from, and per score value
    # the counts of the whole slice (tag NULL); the bootstrap needs exactly these value counts.
    cells = scope.run(
        f"{scope.ctes(filters, p, tags=False)}, tt AS ({scope.theme_rows(p, level, detail=True)}) "
        "SELECT tt.tag, b.v, MAX(tt.parent_tag) AS parent_tag, COUNT(*) AS n, "
        "SUM(CASE WHEN b.det THEN 1 ELSE 0 END) AS det, "
        "SUM(COALESCE(tt.tss, b.sentiment_score)) AS sent_sum, COUNT(COALESCE(tt.tss, b.sentiment_score)) AS sent_n, "
        "SUM(CASE WHEN COALESCE(tt.tsl, b.sentiment_label) = 'negative' THEN 1 ELSE 0 END) AS neg, "
        "COUNT(COALESCE(tt.tsl, b.sentiment_label)) AS known, SUM(tt.human) AS human, 0 AS answered "
        f"FROM tt JOIN base b ON b.{ROW_KEY} = tt.{ROW_KEY} GROUP BY tt.tag, b.v UNION ALL "
        "SELECT CAST(NULL AS TEXT), v, CAST(NULL AS TEXT), COUNT(*), 0, CAST(NULL AS DOUBLE PRECISION), 0, 0, 0, 0, "
        "SUM(CASE WHEN is_non_answer THEN 0 ELSE 1 END) FROM base GROUP BY v",
        p,
    )
    tagged = cells[cells["tag"].notna()]
    if tagged.empty:
        return _empty(THEME_IMPACT_COLUMNS)
    overall = cells[cells["tag"].isna()]
    answered = int(pd.to_numeric(overall["answered"]).sum())
    overall = overall[overall["v"].notna()]
    values = np.sort(overall["v"].to_numpy(dtype=float))
    all_counts = overall.set_index("v")["n"].reindex(values).fillna(0).to_numpy(dtype=np.int64)
    scored = tagged[tagged["v"].notna()]
    wide = (
        scored.pivot_table(index="tag", columns="v", values="n", aggfunc="sum", fill_value=0).reindex(
            columns=values, fill_value=0
        )
        if len(scored)
        else pd.DataFrame(columns=values)
    )
    num = ["n", "det", "sent_sum", "sent_n", "neg", "known", "human"]
    tagged = tagged.assign(**{c: pd.to_numeric(tagged[c]) for c in num})
    per = tagged.groupby("tag", sort=True).agg(
        parent_tag=("parent_tag", "max"),
        volume=("n", "sum"),
        sent_sum=("sent_sum", "sum"),
        sent_n=("sent_n", "sum"),
        neg=("neg", "sum"),
        known=("known", "sum"),
        human=("human", "sum"),
    )
    sc = scored.assign(**{c: pd.to_numeric(scored[c]) for c in ("n", "det")}).groupby("tag")
    per["scored"] = sc["n"].sum().reindex(per.index, fill_value=0)
    per["det"] = sc["det"].sum().reindex(per.index, fill_value=0)
    per["mean_sentiment"] = (per["sent_sum"] / per["sent_n"].where(per["sent_n"] > 0)).astype(float)
    stats = per.reset_index()
    rows = []
    for r in stats.itertuples(index=False):
        cw = (
            wide.loc[r.tag].to_numpy(dtype=np.int64)
            if r.tag in wide.index
            else np.zeros(len(values), np.int64)
        )
        nw, no = int(cw.sum()), int(all_counts.sum() - cw.sum())
        impact, low, high = bootstrap_impact(
            values, cw, all_counts, a.bootstrap_samples, a.seed, a.confidence
        )
        rows.append(
            {
                "tag": r.tag,
                "parent_tag": None if level == "parent" or pd.isna(r.parent_tag) else r.parent_tag,
                "volume": int(r.volume),
                "share": int(r.volume) / answered if answered else NAN,
                "score_with": float(values @ cw) / nw if nw else NAN,
                "score_without": float(values @ (all_counts - cw)) / no if no else NAN,
                "impact": impact,
                "impact_low": low,
                "impact_high": high,
                "detractor_share": int(r.det) / int(r.scored) if int(r.scored) else NAN,
                "mean_sentiment": NAN if pd.isna(r.mean_sentiment) else float(r.mean_sentiment),
                "negative_share": int(r.neg) / int(r.known) if int(r.known) else NAN,
                "human_share": int(r.human) / int(r.volume),
                "small_sample": int(r.volume) < a.small_sample,
            }
        )
    out = pd.DataFrame(rows, columns=THEME_IMPACT_COLUMNS)
    out = out[out["volume"] >= min_count]
    out = out.sort_values(["impact", "volume", "tag"], ascending=[True, False, True], na_position="last")
    return out.reset_index(drop=True)


def theme_trend(
    wh: Warehouse,
    filters: Filters | None = None,
    freq: str = "W",
    *,
    themes: list[str] | None = None,
    level: str = "theme",
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """Theme volume per period (long form), zeros filled in between the first and the last period.

    Counts every survey type (a volume involves no score).

    Args:
        wh: The warehouse.
        filters: The slice.
        freq: D, W (weeks from Monday), M or Q.
        themes: Only these themes (None: every theme).
        level: ``theme`` or ``parent``.
        config: Table names.

    Returns:
        :data:`THEME_TREND_COLUMNS`: ``period``, ``tag``, ``count`` (responses with the theme), ``share``
        (of the period's answered responses), ``n_answered``; by period, then theme.
    """
    scope = Scope.of(wh, config)
    if scope.empty:
        return _empty(THEME_TREND_COLUMNS)
    p = Params()
    only = f" WHERE x.tag IN {p.many(list(themes))}" if themes else ""
    head = scope.ctes(filters or Filters(), p, tags=False)
    per = period_expr(freq, "b.submitted_at")
    rows = scope.run(
        f"{head}, tt AS (SELECT {ROW_KEY}, tag FROM ({scope.theme_rows(p, level)}) x{only}) "
        f"SELECT {per} AS period, tt.tag, COUNT(*) AS n FROM tt JOIN base b ON b.{ROW_KEY} = tt.{ROW_KEY} "
        f"WHERE b.submitted_at IS NOT NULL GROUP BY 1, 2 UNION ALL SELECT {per}, CAST(NULL AS TEXT), "
        "SUM(CASE WHEN b.is_non_answer THEN 0 ELSE 1 END) FROM base b WHERE b.submitted_at IS NOT NULL GROUP BY 1",
        p,
    )
    if rows.empty or rows["tag"].notna().sum() == 0:
        return _empty(THEME_TREND_COLUMNS)
    rows["period"] = pd.to_datetime(rows["period"])
    totals = rows[rows["tag"].isna()].set_index("period")["n"]
    counts = rows[rows["tag"].notna()]
    alias = {"D": "D", "W": "7D", "M": "MS", "Q": "QS"}[freq.upper()]
    periods = pd.date_range(rows["period"].min(), rows["period"].max(), freq=alias)
    grid = pd.MultiIndex.from_product([periods, sorted(counts["tag"].unique())], names=["period", "tag"])
    out = counts.set_index(["period", "tag"])["n"].reindex(grid, fill_value=0).rename("count").reset_index()
    out["n_answered"] = out["period"].map(totals).fillna(0).astype(int)
    out["count"] = out["count"].astype(int)
    out["share"] = out["count"] / out["n_answered"].where(out["n_answered"] > 0)
    return out[THEME_TREND_COLUMNS]
