"""The root-cause report: one self-contained HTML file (plots embedded as PNG) and a JSON summary.

Customer text only ever reaches the page through Jinja2's autoescaping, so a comment that contains
markup is shown as text. Plots are drawn with matplotlib's Agg canvas on standalone ``Figure`` objects:
no ``pyplot``, no global backend switch, nothing shown on screen, safe in a notebook or a worker thread.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from jinja2 import Environment, StrictUndefined

from pipeline.analysis import RootCauseSummary, _fmt_num, _fmt_pct, jsonable

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DEFAULT_TITLE = "Customer feedback root-cause report"
MAX_BARS = 15
TREND_TAGS = 5
NEGATIVE_COLOUR = "#c0392b"
POSITIVE_COLOUR = "#27ae60"

# --------------------------------------------------------------------------------------------------
# Plots (each returns a base64 PNG, or None when there is nothing to draw)
# --------------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure  # lazy: matplotlib is slow to import and only needed here

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig: Figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches the Agg canvas; no global backend is touched
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(text: Any, width: int = 40) -> str:
    s = str(text)
    return s if len(s) <= width else s[: width - 1] + "\u2026"


def plot_theme_impact(theme_impact: pd.DataFrame, score_name: str = "NPS") -> str | None:
    """Horizontal bars of each theme's score impact (the largest effects, worst at the top).

    Args:
        theme_impact: From :func:`pipeline.analysis.theme_impact`.
        score_name: Axis label of the score.

    Returns:
        A base64 PNG, or None when there are no themes with a known impact.
    """
    ti = theme_impact[theme_impact["nps_impact"].notna()] if len(theme_impact) else theme_impact
    if len(ti) == 0:
        return None
    ti = ti.assign(_abs=ti["nps_impact"].abs()).sort_values("_abs", ascending=False).head(MAX_BARS)
    ti = ti.sort_values("nps_impact", ascending=False)  # barh draws bottom-up: worst ends on top
    fig = _figure(8, 0.38 * len(ti) + 1.2)
    ax = fig.add_subplot()
    impact = ti["nps_impact"].astype(float)
    colours = [NEGATIVE_COLOUR if v < 0 else POSITIVE_COLOUR for v in impact]
    ax.barh([_label(t) for t in ti["tag"]], impact, color=colours)
    ax.axvline(0, color="#555", linewidth=0.8)
    for y, (v, n) in enumerate(zip(impact, ti["volume"], strict=True)):
        ax.annotate(
            f"{v:+.{1 if abs(v) >= 1 else 2}f} (n={int(n):,})",
            (v, y),
            xytext=(4 if v >= 0 else -4, 0),
            textcoords="offset points",
            ha="left" if v >= 0 else "right",
            va="center",
            fontsize=8,
        )
    lo, hi = float(min(impact.min(), 0)), float(max(impact.max(), 0))
    pad = 0.25 * (hi - lo or 1.0)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel(f"{score_name} impact (points; negative drags the score down)")
    ax.set_title(f"Theme impact on {score_name}")
    ax.tick_params(axis="y", labelsize=9)
    return _png(fig)


def plot_theme_trends(trends: pd.DataFrame, top: int = TREND_TAGS) -> str | None:
    """Lines of weekly (per period) volume for the ``top`` most frequent themes.

    Args:
        trends: Long form from :func:`pipeline.analysis.trends`.
        top: Number of themes drawn.

    Returns:
        A base64 PNG, or None when there is no tagged response with a date.
    """
    if len(trends) == 0 or int(trends["count"].sum()) == 0:
        return None
    totals = trends.groupby("tag")["count"].sum()
    totals = totals.sort_index().sort_values(ascending=False, kind="stable")
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    for tag in totals.index[:top]:
        part = trends[trends["tag"] == tag].sort_values("period")
        ax.plot(part["period"], part["count"], marker="o", markersize=3, label=_label(tag, 30))
    ax.set_ylabel("responses")
    ax.set_title(f"Volume of the top {min(top, len(totals))} themes per period")
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def plot_score_trend(score_trend: pd.DataFrame, score_name: str = "NPS") -> str | None:
    """The score per period (a line) over the number of responses (bars).

    Returns:
        A base64 PNG, or None with fewer than two periods.
    """
    st = score_trend[score_trend["n"] > 0] if len(score_trend) else score_trend
    if len(st) < 2:
        return None
    fig = _figure(8, 3.2)
    ax = fig.add_subplot()
    ax2 = ax.twinx()
    gaps = st["period"].diff().dt.total_seconds().dropna() / 86400
    width = 0.7 * float(gaps.median()) if len(gaps) else 1.0  # bars as wide as the periods (days)
    ax2.bar(st["period"], st["n"], width=width, color="#bbb", alpha=0.5)
    ax2.set_ylabel("responses")
    ax.plot(st["period"], st["nps"].astype(float), color="#2c3e50", marker="o", markersize=3)
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_ylabel(score_name)
    ax.set_title(f"{score_name} per period")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def plot_heatmap(matrix: pd.DataFrame, segment: str) -> str | None:
    """Segment value x theme heatmap of the share of answered responses with the theme.

    Returns:
        A base64 PNG, or None for an empty matrix.
    """
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        return None
    values = matrix.to_numpy(dtype=float) * 100
    fig = _figure(max(6.0, 0.7 * matrix.shape[1] + 2.5), 0.45 * matrix.shape[0] + 2.2)
    ax = fig.add_subplot()
    image = ax.imshow(values, aspect="auto", cmap="Reds", vmin=0)
    ax.set_xticks(
        range(matrix.shape[1]), [_label(c, 24) for c in matrix.columns], rotation=40, ha="right", fontsize=8
    )
    ax.set_yticks(range(matrix.shape[0]), [_label(i, 24) for i in matrix.index], fontsize=9)
    top = values.max() if values.size else 0
    digits = 0 if top >= 10 else 1
    for (i, j), v in pd.DataFrame(values).stack().items():
        ax.text(
            j,
            i,
            f"{v:.{digits}f}",
            ha="center",
            va="center",
            fontsize=7,
            color="white" if v > 0.6 * top else "black",
        )
    ax.set_title(f"Share of answered responses with each theme (%), by {segment}")
    fig.colorbar(image, ax=ax, shrink=0.8, label="%")
    return _png(fig)


def _safe_plot(name: str, func: Callable[..., str | None], *args: Any) -> str | None:
    # A plot is a nice-to-have: one that fails must not cost the whole nightly report.
    try:
        return func(*args)
    except Exception:
        log.warning("report: the %s plot failed; the report goes on without it", name, exc_info=True)
        return None


# --------------------------------------------------------------------------------------------------
# Tables: formatted as text here, escaped by the template
# --------------------------------------------------------------------------------------------------

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
theme: negative values drag the score down. Share is of answered responses.</p>
{{ plot(impact_png, "Theme impact bar chart") }}
{{ table(themes) }}
{% else %}
<p class="empty">No themes to rank: no response carries a tag (or none on enough responses).</p>
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
{% else %}
<p class="empty">No segment with enough responses.</p>
{% endif %}

{% if topics.rows %}
<h2>Topics</h2>
{{ table(topics) }}
{% endif %}

<h2>Close the loop</h2>
{% if callbacks.rows %}
<p class="note">{{ callbacks_note }}</p>
{{ table(callbacks) }}
{% else %}
<p class="empty">No detractor with negative sentiment and a theme to call back.</p>
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


def _context(
    summary: RootCauseSummary, title: str, lineage: dict[str, str] | None, generated_at: str
) -> dict[str, Any]:
    name = summary.score_name
    score_fmt = _score_fmt(summary.score_type)
    period = f"{summary.n_responses:,} responses"
    if summary.period_start is not None and summary.period_end is not None:
        period += f", {_day(summary.period_start)} to {_day(summary.period_end)}"
    ctx: dict[str, Any] = {
        "title": title,
        "period": period,
        "empty": summary.n_responses == 0,
        "generated_at": generated_at,
        "lineage": [(str(k), _text(v)) for k, v in (lineage or {}).items()],
        "score_name": name,
    }
    if ctx["empty"]:
        return ctx
    o = summary.overall
    cards = [(f"{name} (n={_int(o.get('n'))})", score_fmt(o.get("score")))]
    for key, label in (("promoter_share", "promoters"), ("detractor_share", "detractors")):
        if key in o:
            cards.append((label, f"{_fmt_num(o[key], 0)}%"))
    cards += [
        ("responses", _int(summary.n_responses)),
        ("answered", _int(summary.n_answered)),
        ("non-answers", _int(summary.n_non_answer)),
        ("answered with a theme", _fmt_pct(summary.tagged_share, 0)),
        ("to call back", _int(summary.close_the_loop_total)),
    ]
    ctx["cards"] = cards
    ctx["other_types"] = ", ".join(
        f"{t.upper()} {_fmt_num(b.get('score'))} (n={_int(b.get('n'))})"
        for t, b in summary.overall_by_type.items()
        if t != summary.score_type
    )
    total = sum(summary.languages.values()) or 1
    ctx["languages"] = ", ".join(f"{k} {v:,} ({100 * v / total:.0f}%)" for k, v in summary.languages.items())
    ctx["sentiment"] = ", ".join(f"{k} {v:,}" for k, v in summary.sentiment.items())
    ti = summary.theme_impact
    theme_cols: list[Column] = [
        ("tag", "theme", _text, False),
        ("parent_tag", "parent", _text, False),
        ("volume", "volume", _int, True),
        ("share", "share", _fmt_pct, True),
        ("nps_with", f"{name} with", score_fmt, True),
        ("nps_impact", "impact", _signed, True),
        ("detractor_share", "detractors", lambda v: _fmt_pct(v, 0), True),
        ("mean_sentiment", "sentiment", lambda v: _fmt_num(v, 2, signed=True), True),
        ("negative_share", "negative", lambda v: _fmt_pct(v, 0), True),
    ]
    if len(ti) == 0 or ti["parent_tag"].isna().all():  # a flat taxonomy: no empty "parent" column
        theme_cols = [c for c in theme_cols if c[0] != "parent_tag"]
    ctx["themes"] = _table(ti, theme_cols)
    ctx["segments"] = _table(
        summary.segments,
        [
            ("segment", "segment", _text, False),
            ("value", "value", _text, False),
            ("n", "n", _int, True),
            ("nps", name, score_fmt, True),
            ("nps_delta", "vs. overall", _signed, True),
            ("mean_sentiment", "sentiment", lambda v: _fmt_num(v, 2, signed=True), True),
            ("top_negative_tag", "top negative theme", _text, False),
            ("top_negative_impact", "its impact", _signed, True),
        ],
    )
    ctx["topics"] = _table(
        summary.top_topics,
        [
            ("topic_id", "topic", _text, True),
            ("label", "label", _text, False),
            ("keywords", "keywords", lambda v: _text(list(v)[:8] if v is not None else None), False),
            ("n", "responses", _int, True),
            ("share", "share", _fmt_pct, True),
            ("nps", name, score_fmt, True),
            ("mean_sentiment", "sentiment", lambda v: _fmt_num(v, 2, signed=True), True),
            ("negative_share", "negative", lambda v: _fmt_pct(v, 0), True),
        ],
    )
    # Only the redacted text is ever shown; any raw comment column is simply not listed here.
    ctx["callbacks"] = _table(
        summary.close_the_loop,
        [
            ("response_id", "response", _text, False),
            ("customer_id", "customer", _text, False),
            ("survey_type", "survey", lambda v: _text(v).upper(), False),
            ("score", "score", lambda v: _fmt_num(v, 0), True),
            ("submitted_at", "submitted", _when, False),
            ("sentiment_score", "sentiment", lambda v: _fmt_num(v, 2, signed=True), True),
            ("tags", "themes", _text, False),
            ("text_redacted", "answer (redacted)", _text, False),
        ],
    )
    shown = len(summary.close_the_loop)
    ctx["callbacks_note"] = (
        f"{summary.close_the_loop_total:,} detractor(s) with negative sentiment and at least one theme"
        + (
            f"; the {shown:,} most recent and most negative are listed."
            if shown < summary.close_the_loop_total
            else "."
        )
    )
    ctx["impact_png"] = _safe_plot("theme impact", plot_theme_impact, summary.theme_impact, name)
    ctx["score_png"] = _safe_plot("score trend", plot_score_trend, summary.score_trend, name)
    ctx["trend_png"] = _safe_plot("theme trend", plot_theme_trends, summary.trends)
    ctx["heatmap_png"] = (
        _safe_plot("heatmap", plot_heatmap, summary.tag_matrix, summary.heatmap_segment)
        if summary.heatmap_segment
        else None
    )
    return ctx


def _write_atomic(path: Path, text: str) -> None:
    # Write then rename, so a reader (or a crashed run) never sees half a report.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(
    summary: RootCauseSummary,
    out_dir: Path | str,
    title: str = DEFAULT_TITLE,
    lineage: dict[str, str] | None = None,
) -> Path:
    """Write ``report.html`` (self-contained, plots embedded) and ``summary.json`` into ``out_dir``.

    Args:
        summary: From :func:`pipeline.analysis.summarise`.
        out_dir: Folder to write into (created when missing); existing files are replaced.
        title: Page title.
        lineage: Shown in the footer and stored in the JSON: run id, model and taxonomy versions, ...

    Returns:
        The path of ``report.html``.
    """
    if not isinstance(summary, RootCauseSummary):
        raise TypeError(
            f"write_report() expects a RootCauseSummary, got {type(summary).__name__}: "
            "build one with pipeline.analysis.summarise(enriched, ...)."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated_at = datetime.now(UTC).replace(microsecond=0).isoformat()
    html = _env().from_string(_TEMPLATE).render(**_context(summary, title, lineage, generated_at))
    html_path = out / "report.html"
    _write_atomic(html_path, html)
    payload = {
        "title": title,
        "generated_at": generated_at,
        "lineage": jsonable(dict(lineage or {})),
        **summary.to_dict(),
    }
    _write_atomic(out / "summary.json", json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False))
    log.info("report: wrote %s and summary.json (%d responses)", html_path, summary.n_responses)
    return html_path
