"""The report's HTML page: one self-contained file (plots embedded as PNG).

Customer text only ever reaches the page through Jinja2's autoescaping, so a comment that contains
markup is shown as text. The page formats :class:`pipeline.report.summary.ReportData` and computes
nothing of its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from jinja2 import Environment, StrictUndefined

from pipeline.report.plots import (
    _safe_plot,
    plot_heatmap,
    plot_score_trend,
    plot_theme_impact,
    plot_theme_trends,
)
from pipeline.report.summary import ReportData
from pipeline.report.terminal import fmt_interval, fmt_num, fmt_pct

_fmt_num, _fmt_pct = fmt_num, fmt_pct

Column = tuple[str, str, Callable[[Any], str], bool]  # (column, header, formatter, numeric)


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    if hasattr(value, "tolist") and not isinstance(value, str):
        return _text(value.tolist())
    return str(value)


def _int(value: Any) -> str:
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "-"


def _when(value: Any) -> str:
    ts = pd.Timestamp(value) if value is not None else pd.NaT
    return "-" if pd.isna(ts) else f"{ts:%Y-%m-%d %H:%M}"


def _day(value: Any) -> str:
    ts = pd.Timestamp(value) if value is not None else pd.NaT
    return "-" if pd.isna(ts) else f"{ts:%Y-%m-%d}"


def _signed(value: Any) -> str:
    return _fmt_num(value, signed=True)


def _score_fmt(score_type: str) -> Callable[[Any], str]:
    return _signed if score_type == "nps" else _fmt_num


def _table(df: pd.DataFrame, columns: Sequence[Column]) -> dict[str, Any]:
    cols = [c for c in columns if c[0] in df.columns]
    return {
        "headers": [(header, numeric) for _, header, _, numeric in cols],
        "rows": [
            [(fmt(row[name]), numeric) for name, _, fmt, numeric in cols]
            for row in df.to_dict(orient="records")
        ],
    }


# --------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #222; line-height: 1.4; }
h1 { margin-bottom: .2rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .3rem; }
.sub { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.card .v { font-size: 1.6rem; font-weight: 600; } .card .k { color: #666; font-size: .85rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; margin: .8rem 0; }
th, td { border-bottom: 1px solid #eee; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f6f6; } td.num, th.num { text-align: right; white-space: nowrap; }
img { max-width: 100%; height: auto; display: block; margin: .8rem 0; }
.empty { color: #888; font-style: italic; }
.note { color: #666; font-size: .85rem; }
footer { margin-top: 3rem; color: #777; font-size: .8rem; border-top: 1px solid #ddd; padding-top: .6rem; }
</style>
</head>
<body>
{%- macro table(t) -%}
<table>
<thead><tr>{% for h, num in t.headers %}<th{% if num %} class="num"{% endif %}>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{%- for row in t.rows %}
<tr>{% for v, num in row %}<td{% if num %} class="num"{% endif %}>{{ v }}</td>{% endfor %}</tr>
{%- endfor %}
</tbody>
</table>
{%- endmacro %}
{%- macro plot(png, alt) -%}
{% if png %}<img src="data:image/png;base64,{{ png }}" alt="{{ alt }}">{% endif %}
{%- endmacro %}
<h1>{{ title }}</h1>
<p class="sub">{{ period }}</p>

{% if empty %}
<p class="empty">No responses in this report's data: nothing to analyse yet.</p>
{% else %}
<div class="cards">
{% for k, v in cards %}<div class="card"><div class="v">{{ v }}</div><div class="k">{{ k }}</div></div>
{% endfor %}
</div>
{% if other_types %}<p class="note">Other survey types, analysed separately: {{ other_types }}.
The tables below use the {{ score_name }} responses only.</p>{% endif %}
<p><strong>Languages:</strong> {{ languages or "-" }}<br>
<strong>Sentiment:</strong> {{ sentiment or "-" }}</p>

<h2>Themes and their impact on {{ score_name }}</h2>
{% if themes.rows %}
<p class="note">Impact = {{ score_name }} of all responses minus {{ score_name }} of the responses without the
theme: negative values drag the score down; the interval is a {{ confidence }} bootstrap. Share is of answered
responses. &quot;small&quot; marks themes on fewer than {{ small_n }} responses: read them with care.</p>
{{ plot(impact_png, "Theme impact bar chart") }}
{{ table(themes) }}
{% else %}
<p class="empty">No themes to rank: no response carries a tag (or none on enough responses).</p>
{% endif %}

{% if parents.rows %}
<h3>Parent themes (children rolled up)</h3>
{{ table(parents) }}
{% endif %}

<h2>What explains detractors</h2>
{% if drivers.rows %}
<p class="note">Logistic regression of &quot;detractor&quot; on the themes: an odds ratio above 1 makes a
detractor more likely. Significance after Benjamini-Hochberg.</p>
{{ table(drivers) }}
{% else %}
<p class="empty">Not enough scored, tagged responses for the driver model.</p>
{% endif %}

<h2>Trends</h2>
{% if score_png or trend_png %}
{{ plot(score_png, "Score per period") }}
{{ plot(trend_png, "Theme volume per period") }}
{% else %}
<p class="empty">Not enough dated responses for a trend.</p>
{% endif %}

<h2>Segments</h2>
{% if segments.rows %}
{{ plot(heatmap_png, "Segment by theme heatmap") }}
{{ table(segments) }}
{% if cells.rows %}
<p class="note">Segment x theme cells whose share differs significantly from the other values of
{{ heatmap_segment }} (two-proportion test, Benjamini-Hochberg at {{ fdr }}):</p>
{{ table(cells) }}
{% endif %}
{% else %}
<p class="empty">No segment with enough responses.</p>
{% endif %}


{% if alerts.rows %}
<h2>Emerging themes</h2>
{{ table(alerts) }}
{% endif %}

<h2>Close the loop</h2>
{% if callbacks.rows %}
<p class="note">{{ callbacks_note }}</p>
{{ table(callbacks) }}
{% else %}
<p class="empty">The follow-up queue is empty.</p>
{% endif %}
{% endif %}

<footer>
Generated {{ generated_at }}{% for k, v in lineage %} &middot; {{ k }}: {{ v }}{% endfor %}
</footer>
</body>
</html>
"""


def _env() -> Environment:
    # autoescape=True escapes every {{ }} value: all customer text (comments, tags, segment values,
    # topic labels) and the title and lineage the caller passes in.
    return Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _interval_of(row_low: Any, row_high: Any) -> str:
    return fmt_interval(row_low, row_high)


def _with_interval(df: pd.DataFrame, low: str, high: str, name: str = "interval") -> pd.DataFrame:
    if df.empty:
        return df
    return df.assign(**{name: [fmt_interval(a, b) for a, b in zip(df[low], df[high], strict=True)]})


def render_context(
    data: ReportData,
    title: str,
    lineage: dict[str, str] | None,
    generated_at: str,
    confidence: float = 0.95,
    small_n: int = 30,
    fdr: float = 0.05,
) -> dict[str, Any]:
    """The template's values (all text, formatted from ``data``)."""
    o, s, name = data.overview, data.score, data.score_name
    score_fmt = _score_fmt(data.score_type)
    period = f"{o.n_responses:,} responses"
    if o.period_start is not None and o.period_end is not None:
        period += f", {_day(o.period_start)} to {_day(o.period_end)}"
    ctx: dict[str, Any] = {
        "title": title,
        "period": period,
        "empty": o.n_responses == 0,
        "generated_at": generated_at,
        "lineage": [(str(k), _text(v)) for k, v in (lineage or {}).items()],
        "score_name": name,
        "confidence": f"{100 * confidence:.0f}%",
        "small_n": small_n,
        "fdr": fdr,
        "heatmap_segment": data.heatmap_segment or "-",
    }
    if ctx["empty"]:
        return ctx
    cards = [
        (f"{name} (n={_int(s.n)}){' small sample' if s.small_sample else ''}", score_fmt(s.score)),
        (f"{ctx['confidence']} interval", fmt_interval(s.low, s.high)),
        ("promoters", f"{fmt_num(s.promoter_share, 0)}%"),
        ("detractors", f"{fmt_num(s.detractor_share, 0)}%"),
    ]
    r = data.recent
    if r is not None and r.change is not None:
        cards.append(
            (
                f"change, last 28 days (p={fmt_num(r.change.p_value, 3)})",
                f"{_signed(r.change.delta)} {fmt_interval(r.change.low, r.change.high)}",
            )
        )
    cards += [
        ("responses", _int(o.n_responses)),
        ("answered", _int(o.n_answered)),
        ("non-answers", _int(o.n_non_answer)),
        ("answered with a theme", fmt_pct(o.tagged_share, 0)),
        ("follow-ups open", _int(data.followups_open)),
    ]
    ctx["cards"] = cards
    ctx["other_types"] = ", ".join(
        f"{t.upper()} {fmt_num(b.score)} {fmt_interval(b.low, b.high)} (n={_int(b.n)})"
        for t, b in data.by_type.items()
        if t != data.score_type
    )
    total = sum(o.languages.values()) or 1
    ctx["languages"] = ", ".join(f"{k} {v:,} ({100 * v / total:.0f}%)" for k, v in o.languages.items())
    ctx["sentiment"] = ", ".join(f"{k} {v:,}" for k, v in o.sentiment.items())
    ti = _with_interval(data.theme_impact, "impact_low", "impact_high")
    sent = lambda v: fmt_num(v, 2, signed=True)  # noqa: E731
    theme_cols: list[Column] = [
        ("tag", "theme", _text, False),
        ("parent_tag", "parent", _text, False),
        ("volume", "volume", _int, True),
        ("share", "share", fmt_pct, True),
        ("score_with", f"{name} with", score_fmt, True),
        ("impact", "impact", _signed, True),
        ("interval", "interval", _text, True),
        ("small_sample", "", lambda v: "small" if v else "", False),
        ("detractor_share", "detractors", lambda v: fmt_pct(v, 0), True),
        ("mean_sentiment", "sentiment", sent, True),
        ("negative_share", "negative", lambda v: fmt_pct(v, 0), True),
    ]
    if len(ti) == 0 or ti["parent_tag"].isna().all():
        theme_cols = [c for c in theme_cols if c[0] != "parent_tag"]
    ctx["themes"] = _table(ti, theme_cols)
    parents = data.parent_impact
    has_parents = len(parents) and len(parents) < len(data.theme_impact)
    ctx["parents"] = _table(
        _with_interval(parents, "impact_low", "impact_high") if has_parents else parents.head(0),
        [c for c in theme_cols if c[0] != "parent_tag"],
    )
    dr = _with_interval(data.drivers, "low", "high")
    ctx["drivers"] = _table(
        dr,
        [
            ("theme", "theme", _text, False),
            ("n", "responses", _int, True),
            ("odds_ratio", "odds ratio", lambda v: fmt_num(v, 2), True),
            ("interval", "interval", _text, True),
            ("p_adjusted", "p (BH)", lambda v: fmt_num(v, 3), True),
            ("significant", "", lambda v: "significant" if v else "", False),
        ],
    )
    ctx["segments"] = _table(
        _with_interval(data.segments, "low", "high"),
        [
            ("segment", "segment", _text, False),
            ("value", "value", _text, False),
            ("n", "n", _int, True),
            ("score", name, score_fmt, True),
            ("interval", "interval", _text, True),
            ("delta", "vs. overall", _signed, True),
            ("small_sample", "", lambda v: "small" if v else "", False),
        ],
    )
    cells = data.crosstab[data.crosstab["significant"].astype(bool)] if len(data.crosstab) else data.crosstab
    ctx["cells"] = _table(
        cells,
        [
            ("value", "value", _text, False),
            ("tag", "theme", _text, False),
            ("n", "n", _int, True),
            ("share", "share", fmt_pct, True),
            ("share_rest", "other values", fmt_pct, True),
            ("lift", "lift", lambda v: fmt_num(v, 2), True),
            ("p_adjusted", "p (BH)", lambda v: fmt_num(v, 4), True),
        ],
    )
    ctx["alerts"] = _table(
        data.alerts,
        [
            ("kind", "kind", _text, False),
            ("label", "theme / topic", _text, False),
            ("period", "period", _text, False),
            ("count", "answers", _int, True),
            ("baseline", "expected", lambda v: fmt_num(v, 1), True),
            ("reason", "why", _text, False),
        ],
    )
    ctx["callbacks"] = _table(
        data.followups,
        [
            ("response_id", "response", _text, False),
            ("customer_id", "customer", _text, False),
            ("survey_type", "survey", lambda v: _text(v).upper(), False),
            ("score", "score", lambda v: fmt_num(v, 0), True),
            ("submitted_at", "submitted", _when, False),
            ("reason", "reason", _text, False),
            ("action", "action", _text, False),
            ("status", "status", _text, False),
            ("owner", "owner", _text, False),
        ],
    )
    shown = len(data.followups)
    ctx["callbacks_note"] = f"{data.followups_open:,} open follow-up(s)" + (
        f"; the {shown:,} most recent are listed (feedback followups export writes them all)."
        if shown < data.followups_open
        else "."
    )
    ctx["impact_png"] = _safe_plot("theme impact", plot_theme_impact, data.theme_impact, name)
    ctx["score_png"] = _safe_plot("score trend", plot_score_trend, data.score_trend, name)
    ctx["trend_png"] = _safe_plot("theme trend", plot_theme_trends, data.theme_trend)
    ctx["heatmap_png"] = (
        _safe_plot("heatmap", plot_heatmap, data.tag_matrix, data.heatmap_segment)
        if data.heatmap_segment
        else None
    )
    return ctx


def render(
    data: ReportData, title: str, lineage: dict[str, str] | None, generated_at: str, **settings: Any
) -> str:
    """The page's HTML."""
    return (
        _env().from_string(_TEMPLATE).render(**render_context(data, title, lineage, generated_at, **settings))
    )


_ = math  # kept for formatters that test NaN
