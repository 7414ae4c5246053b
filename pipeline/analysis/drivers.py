"""Drivers: which themes explain detractors, with intervals.

A logistic regression ``detractor ~ theme_1 + ... + theme_k`` over the scored responses of one survey
type, for the ``config.analysis.driver_themes`` most frequent themes (or parent themes). The warehouse
returns one row per distinct (theme set, detractor) pattern with its count; statsmodels fits the model
on those patterns with frequency weights, which gives the same estimates as a fit on every response
(tests/test_analysis_stats.py) at a cost that does not grow with the rows. Odds ratios above 1 make a
detractor more likely; ``significant`` is after Benjamini-Hochberg over the themes.
"""

from __future__ import annotations

import pandas as pd

from pipeline.analysis.filters import Filters, Params, Scope
from pipeline.analysis.scores import dominant_survey_type
from pipeline.analysis.stats import DRIVER_COLUMNS, logistic_drivers
from pipeline.analysis.themes import theme_key
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import Warehouse

SEP = "\x1f"  # joins the themes of a pattern; not a character a theme name holds


def driver_patterns(
    wh: Warehouse,
    filters: Filters | None = None,
    *,
    level: str = "theme",
    config: EnrichmentConfig | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The weighted patterns the driver model is fitted on: (frame, themes).

    The frame has a 0/1 column per theme, ``det`` and ``weight``.
    """
    config = config or EnrichmentConfig()
    filters = (filters or Filters()).with_type(dominant_survey_type(wh, filters, config=config))
    scope = Scope.of(wh, config)
    if scope.empty:
        return pd.DataFrame(columns=["det", "weight"]), []
    p = Params()
    head = (
        f"{scope.ctes(filters, p)}, tt AS (SELECT DISTINCT response_id, {theme_key(level)} AS tag FROM etags)"
    )
    top = scope.run(
        f"{head} SELECT tt.tag, COUNT(*) AS n FROM tt JOIN base b ON b.response_id = tt.response_id "
        "WHERE b.v IS NOT NULL GROUP BY tt.tag",
        p,
    )
    if top.empty:
        return pd.DataFrame(columns=["det", "weight"]), []
    top = top.sort_values(["n", "tag"], ascending=[False, True]).head(config.analysis.driver_themes)
    themes = sorted(top["tag"].astype(str))
    p2 = Params()
    head2 = f"{scope.ctes(filters, p2)}, tt AS (SELECT DISTINCT response_id, {theme_key(level)} AS tag FROM etags)"
    names = p2.many(themes)
    rows = scope.run(
        f"{head2}, pat AS (SELECT b.response_id, CASE WHEN b.det THEN 1 ELSE 0 END AS det, "
        f"STRING_AGG(tt.tag, '{SEP}' ORDER BY tt.tag) AS pattern FROM base b LEFT JOIN tt ON "
        f"tt.response_id = b.response_id AND tt.tag IN {names} WHERE b.v IS NOT NULL "
        "GROUP BY b.response_id, b.det) SELECT pattern, det, COUNT(*) AS weight FROM pat GROUP BY pattern, det",
        p2,
    )
    frame = pd.DataFrame(
        {
            t: [
                int(t in str(x).split(SEP)) if x is not None and not pd.isna(x) else 0
                for x in rows["pattern"]
            ]
            for t in themes
        }
    )
    frame["det"] = rows["det"].astype(int).to_numpy()
    frame["weight"] = rows["weight"].astype(int).to_numpy()
    return frame, themes


def drivers(
    wh: Warehouse,
    filters: Filters | None = None,
    *,
    level: str = "theme",
    config: EnrichmentConfig | None = None,
) -> pd.DataFrame:
    """Themes that explain detractors: odds ratios with intervals (see the module docstring).

    Returns:
        :data:`pipeline.analysis.stats.DRIVER_COLUMNS`: ``theme``, ``n`` (scored responses with it),
        ``coef`` (log odds), ``odds_ratio``, ``low``, ``high``, ``p_value``, ``p_adjusted``,
        ``significant``; strongest driver first; empty when the model cannot be fitted.
    """
    config = config or EnrichmentConfig()
    frame, themes = driver_patterns(wh, filters, level=level, config=config)
    if not themes:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DRIVER_COLUMNS})
    return logistic_drivers(frame, themes, config.analysis.confidence, config.analysis.fdr)
