"""Emerging themes: topics and tags that are new or grow beyond their trailing baseline.

The current period is the last ``period_days`` days up to ``now``; the baseline is the
``baseline_periods`` periods before it. A key (a topic id or a theme) raises an alert when, in the
current period,

* it has at least ``min_count`` answers (small numbers never alert), and
* it is new (no answer in the baseline periods), or its share of the period's answers is at least
  ``min_ratio`` times its baseline share and it has at least ``min_increase`` answers more than the
  baseline share predicts.

Shares, not raw counts, are compared, so a busy week does not make every theme "grow". The counts per
key and period are computed in the warehouse (:func:`alert_counts`, one grouped query); only the few
example answers of each alert are read as rows. :func:`compute_alerts` applies the same rules to a
frame (for data that is not in a warehouse). Alert ids are ``kind:key:period_end``, so re-running the
same night replaces, never duplicates.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from pipeline.analysis.filters import ROW_KEY, Params, Scope
from pipeline.config import EnrichmentConfig
from pipeline.errors import missing_columns
from pipeline.schema import ALERT_COLUMNS
from pipeline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertRules:
    """When a theme counts as emerging (see the module docstring)."""

    period_days: int = 7
    baseline_periods: int = 4
    min_count: int = 10
    min_ratio: float = 2.0
    min_increase: int = 5
    n_examples: int = 3

    def __post_init__(self) -> None:
        if self.period_days < 1 or self.baseline_periods < 1:
            raise ValueError("period_days and baseline_periods must be at least 1")
        if self.min_count < 1 or self.min_ratio <= 1:
            raise ValueError("min_count must be >= 1 and min_ratio > 1 (else every theme alerts)")

    @property
    def lookback(self) -> timedelta:
        """The current period plus the baseline periods."""
        return timedelta(days=self.period_days * (self.baseline_periods + 1))

    def edges(self, end: pd.Timestamp) -> list[pd.Timestamp]:
        """Period boundaries, oldest first: period ``i`` is ``(edges[i], edges[i + 1]]``."""
        start = end - self.lookback
        period = timedelta(days=self.period_days)
        return [start + i * period for i in range(self.baseline_periods + 2)]


def alert_frame(rows: list[dict]) -> pd.DataFrame:
    """Alert rows as a frame with the table's column types (also when empty)."""
    out = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    out["count"] = pd.to_numeric(out["count"]).astype("int64")
    for col in ("baseline", "ratio"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("period_start", "period_end", "created_at"):
        out[col] = pd.to_datetime(out[col]).astype("datetime64[us]")
    return out


Examples = Callable[[str, str], list[tuple[str, str]]]


def alerts_from_counts(
    counts: pd.DataFrame,
    totals: list[int],
    end: pd.Timestamp,
    rules: AlertRules,
    examples: Examples,
    created_at: datetime | None = None,
) -> pd.DataFrame:
    """Apply the rules to per-period counts.

    Args:
        counts: ``kind``, ``key``, ``label``, ``period`` (0 = oldest; ``baseline_periods`` = current),
            ``n`` (distinct answers).
        totals: Answers per period, oldest first.
        end: End of the current period.
        rules: The thresholds.
        examples: ``(kind, key) -> [(response_id, text)]``: recent answers of the current period.
        created_at: Stamp of the alerts (default: now).
    """
    edges = rules.edges(end)
    start = edges[-2]
    current = rules.baseline_periods
    total_now, total_base = totals[current], sum(totals[:current])
    if total_now == 0 or counts.empty:
        return alert_frame([])
    made = pd.Timestamp(created_at or datetime.now()).as_unit("us")
    rows: list[dict] = []
    for (kind, key), grp in counts.groupby(["kind", "key"], sort=True):
        per = grp.groupby("period")["n"].sum().reindex(range(current + 1), fill_value=0).astype(int).tolist()
        count, base_count = per[current], sum(per[:current])
        if count < rules.min_count:
            continue
        base_share = base_count / total_base if total_base else 0.0
        expected = base_share * total_now
        if base_count == 0:
            reason, ratio = "new", None
        else:
            ratio = (count / total_now) / base_share
            if ratio < rules.min_ratio or count - expected < rules.min_increase:
                continue
            reason = "growth"
        labels = grp["label"].dropna()
        label = (
            str(labels.max()) if kind == "topic" and len(labels) else (None if kind == "topic" else str(key))
        )
        evidence = {
            "reason": reason,
            "share_now": round(count / total_now, 4),
            "share_baseline": round(base_share, 4),
            "answers_now": total_now,
            "answers_baseline": total_base,
            "periods": [
                {"start": a.isoformat(), "end": b.isoformat(), "count": c, "answers": n}
                for a, b, c, n in zip(edges, edges[1:], per, totals, strict=False)
            ],
            "examples": [{"response_id": r, "text": t[:300]} for r, t in examples(str(kind), str(key))],
        }
        rows.append(
            {
                "alert_id": f"{kind}:{key}:{end:%Y-%m-%d}",
                "kind": kind,
                "key": str(key),
                "label": label,
                "period": f"{start:%Y-%m-%d}..{end:%Y-%m-%d}",
                "period_start": start.as_unit("us"),
                "period_end": end.as_unit("us"),
                "count": count,
                "baseline": round(float(expected), 3),
                "ratio": None if ratio is None else round(float(ratio), 3),
                "reason": reason,
                "evidence": json.dumps(evidence, ensure_ascii=False),
                "created_at": made,
            }
        )
    out = alert_frame(rows)
    log.info("alerts: %d emerging theme(s) in %s", len(out), f"{start:%Y-%m-%d}..{end:%Y-%m-%d}")
    return out


def _pick_examples(frame: pd.DataFrame, n: int) -> list[tuple[str, str]]:
    frame = frame.sort_values(["submitted_at", "response_id"], ascending=[False, True]).drop_duplicates(
        "text"
    )
    return list(zip(frame["response_id"].astype(str), frame["text"].astype(str), strict=True))[:n]


def _period_case(edges: list[pd.Timestamp], p: Params, column: str) -> str:
    whens = " ".join(
        f"WHEN {column} > {p.add(edges[i].to_pydatetime())} THEN {i}" for i in range(len(edges) - 2, -1, -1)
    )
    return f"CASE {whens} END"


def alert_counts(
    wh: Warehouse,
    end: pd.Timestamp,
    rules: AlertRules,
    kinds: tuple[str, ...],
    *,
    config: EnrichmentConfig | None = None,
) -> tuple[pd.DataFrame, list[int]]:
    """Per (kind, key, period) answer counts and per-period answer totals, computed in the warehouse."""
    scope = Scope.of(wh, config)
    edges = rules.edges(end)
    n_periods = rules.baseline_periods + 1
    if scope.empty:
        return pd.DataFrame(columns=["kind", "key", "label", "period", "n"]), [0] * n_periods
    p = Params()
    lo, hi = p.add(edges[0].to_pydatetime()), p.add(end.to_pydatetime())
    case = _period_case(edges, p, "submitted_at")
    label = "e.topic_label" if "topic_label" in scope.enriched_columns else "CAST(NULL AS TEXT)"
    t = scope.config.tables
    win = (
        f"win AS (SELECT e.response_id, e.{scope.key} AS {ROW_KEY}, e.topic_id, {label} AS topic_label, {case.replace('submitted_at', 'e.submitted_at')} AS period "
        f"FROM {scope.q(t.enriched)} e WHERE e.submitted_at > {lo} AND e.submitted_at <= {hi} "
        "AND NOT COALESCE(e.is_non_answer, FALSE))"
    )
    branches = [
        "SELECT 'total' AS kind, CAST(NULL AS TEXT) AS key, CAST(NULL AS TEXT) AS label, period, COUNT(*) AS n FROM win GROUP BY period"
    ]
    if "topic" in kinds and "topic_id" in scope.enriched_columns:
        branches.append(
            "SELECT 'topic', CAST(topic_id AS TEXT), MAX(topic_label), period, COUNT(DISTINCT response_id) "
            "FROM win WHERE topic_id >= 0 GROUP BY topic_id, period"
        )
    etags = ""
    if "tag" in kinds:
        # one row per (response, theme): the join to the window restricts and a plain count is distinct
        etags = f", tt AS ({scope.theme_rows(p)})"
        branches.append(
            "SELECT 'tag', x.tag, x.tag, w.period, COUNT(*) FROM tt x "
            f"JOIN win w ON w.{ROW_KEY} = x.{ROW_KEY} GROUP BY x.tag, w.period"
        )
    rows = scope.run(f"WITH {win}{etags} {' UNION ALL '.join(branches)}", p)
    rows["period"] = rows["period"].astype(int)
    totals = (
        rows[rows["kind"] == "total"].groupby("period")["n"].sum().reindex(range(n_periods), fill_value=0)
    )
    return rows[rows["kind"] != "total"].reset_index(drop=True), [int(x) for x in totals]


def emerging(
    wh: Warehouse,
    *,
    config: EnrichmentConfig | None = None,
    now: datetime | None = None,
    kinds: tuple[str, ...] = ("topic", "tag"),
    created_at: datetime | None = None,
) -> pd.DataFrame:
    """The alerts of the period ending ``now`` (default: the latest answer), computed in the warehouse."""
    config = config or EnrichmentConfig()
    rules = AlertRules(**config.alerts.model_dump(exclude={"enabled"}))
    scope = Scope.of(wh, config)
    if scope.empty:
        return alert_frame([])
    end = pd.Timestamp(now) if now is not None else wh.max_value(config.tables.enriched, "submitted_at")
    if end is None:
        return alert_frame([])
    end = pd.Timestamp(end)
    counts, totals = alert_counts(wh, end, rules, kinds, config=config)
    start = rules.edges(end)[-2]

    def examples(kind: str, key: str) -> list[tuple[str, str]]:
        p = Params()
        if kind == "topic":
            cond = f"e.topic_id = {p.add(int(key))}"
        else:
            inner = scope.etags_select(p, restrict=None)
            cond = f"e.response_id IN (SELECT response_id FROM ({inner}) x WHERE x.tag = {p.add(key)})"
        rows = scope.run(
            f"SELECT e.response_id, COALESCE(e.text_redacted, '') AS text, e.submitted_at FROM "
            f"{scope.q(config.tables.enriched)} e WHERE {cond} AND e.submitted_at > {p.add(start.to_pydatetime())} "
            f"AND e.submitted_at <= {p.add(end.to_pydatetime())} AND NOT COALESCE(e.is_non_answer, FALSE) "
            "ORDER BY e.submitted_at DESC, e.response_id LIMIT 50",
            p,
        )
        return _pick_examples(rows, rules.n_examples)

    return alerts_from_counts(counts, totals, end, rules, examples, created_at)


def compute_alerts(
    enriched: pd.DataFrame,
    now: datetime | None = None,
    rules: AlertRules | None = None,
    kinds: tuple[str, ...] = ("topic", "tag"),
    created_at: datetime | None = None,
) -> pd.DataFrame:
    """The same rules over a frame of enriched rows (``response_id``, ``submitted_at``, ``topic_id``,
    ``topic_label``, ``tags`` as lists, ``is_non_answer``, ``text_redacted``)."""
    rules = rules or AlertRules()
    if enriched.empty:
        return alert_frame([])
    df = enriched
    if "is_non_answer" in df.columns:
        df = df[~df["is_non_answer"].astype(bool)]
    times = pd.to_datetime(df["submitted_at"], errors="coerce")
    if pd.to_datetime(enriched["submitted_at"], errors="coerce").notna().sum() == 0:
        return alert_frame([])
    end = pd.Timestamp(now) if now is not None else pd.to_datetime(enriched["submitted_at"]).max()
    edges = rules.edges(end)
    period = pd.Series(np.nan, index=df.index)
    for i in range(len(edges) - 1):
        period[(times > edges[i]) & (times <= edges[i + 1])] = i
    df = df.assign(_period=period, _t=times)[period.notna()]
    totals = [int((df["_period"] == i).sum()) for i in range(rules.baseline_periods + 1)]
    parts = []
    text = (
        df["text_redacted"].fillna("").astype(str)
        if "text_redacted" in df.columns
        else pd.Series("", index=df.index)
    )
    longs: dict[str, pd.DataFrame] = {}
    for kind in kinds:
        need = "topic_id" if kind == "topic" else "tags"
        if need not in df.columns:
            raise missing_columns(f"alerts ({kind})", ["response_id", "submitted_at", need], list(df.columns))
        base = pd.DataFrame(
            {
                "response_id": df["response_id"].astype(str),
                "submitted_at": df["_t"],
                "text": text,
                "period": df["_period"].astype(int),
            }
        )
        if kind == "topic":
            ids = pd.to_numeric(df["topic_id"], errors="coerce").fillna(-1).astype(int)
            long = base.assign(
                key=ids.astype(str), label=df["topic_label"] if "topic_label" in df.columns else None
            )[ids.to_numpy() >= 0]
        else:
            tags = [list(t) if isinstance(t, list | tuple | np.ndarray) else [] for t in df["tags"]]
            long = base.assign(key=tags).explode("key")
            long = long[long["key"].notna()].assign(key=lambda f: f["key"].astype(str))
            long["label"] = long["key"]
        longs[kind] = long
        parts.append(
            long.groupby(["key", "period"])
            .agg(n=("response_id", "nunique"), label=("label", "max"))
            .reset_index()
            .assign(kind=kind)
        )
    counts = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["kind", "key", "label", "period", "n"])
    )
    start = edges[-2]

    def examples(kind: str, key: str) -> list[tuple[str, str]]:
        long = longs[kind]
        cur = long[(long["key"] == key) & (long["submitted_at"] > start)]
        return _pick_examples(cur, rules.n_examples)

    return alerts_from_counts(counts, totals, end, rules, examples, created_at)


def update_alerts(wh: Warehouse, config: EnrichmentConfig, now: datetime | None = None) -> int:
    """Compute the alerts in the warehouse and upsert them into ``alerts``; returns how many.

    A quiet night still creates the (empty) table, so that readers can always query it.
    """
    from pipeline.clock import utcnow
    from pipeline.schema import TABLE_KEYS

    t = config.tables
    if not config.alerts.enabled or not wh.table_exists(t.enriched):
        return 0
    kinds = ("topic",) if "topic_id" in wh.columns(t.enriched) else ()
    kinds += ("tag",) if (wh.table_exists(t.tags) or wh.table_exists(t.tag_labels)) else ()
    alerts = emerging(wh, config=config, now=now, kinds=kinds, created_at=utcnow())
    if alerts.empty and wh.table_exists(t.alerts):
        return 0
    return wh.upsert(t.alerts, alerts, key=TABLE_KEYS["alerts"])
