"""A pipeline that says when it is sick: the checks behind ``feedback status``.

* ``last_success``: the last successful run is older than ``status.max_age_hours`` (or there is none).
* ``quarantine``: the last run quarantined more than ``status.quarantine_share`` of its rows, or more
  than ``status.quarantine_spike`` times the share of the runs before it.
* ``tag_coverage``, ``language_mix``, ``sentiment_mix``: the last week of answers (by
  ``submitted_at``, up to the latest) against the ``status.baseline_weeks`` weeks before it: the
  tagged share moved more than ``status.tag_coverage_drift``, or the language / sentiment mix moved
  more than its bound in total-variation distance (half the sum of the absolute share changes).
  Skipped (not failed) when the last week has fewer than ``status.min_week_answers`` answers.

All counts are computed in the warehouse; :class:`StatusReport` carries the last runs and each check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from pipeline.analysis.filters import ROW_KEY, Params, Scope
from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.base import Warehouse

RUN_COLUMNS = [
    "run_id",
    "flow",
    "status",
    "started_at",
    "finished_at",
    "rows_in",
    "rows_enriched",
    "rows_quarantined",
]


@dataclass(frozen=True)
class Check:
    """One health check: ``status`` is ``ok``, ``fail`` or ``skipped``; ``detail`` says why."""

    name: str
    status: str
    value: float | None
    bound: float | None
    detail: str


@dataclass
class StatusReport:
    """What ``feedback status`` prints: the last runs and the checks (``ok`` when none failed)."""

    runs: pd.DataFrame
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(c.status != "fail" for c in self.checks)

    def failures(self) -> list[Check]:
        """The failed checks."""
        return [c for c in self.checks if c.status == "fail"]

    def message(self) -> str:
        """A short text for a notification."""
        if self.ok:
            return "feedback pipeline: all checks pass"
        return "feedback pipeline is unwell:\n" + "\n".join(
            f"- {c.name}: {c.detail}" for c in self.failures()
        )


def _runs(wh: Warehouse, config: EnrichmentConfig, limit: int) -> pd.DataFrame:
    t = config.tables.runs
    if not wh.table_exists(t):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in RUN_COLUMNS})
    cols = ", ".join(wh._quote(c) for c in RUN_COLUMNS)
    return wh.sql(f"SELECT {cols} FROM {wh._qualified(t)} ORDER BY started_at DESC LIMIT {int(limit)}")


def _last_success(runs: pd.DataFrame, wh: Warehouse, config: EnrichmentConfig, now: datetime) -> Check:
    bound = config.status.max_age_hours
    t = config.tables.runs
    last = None
    if wh.table_exists(t):
        rows = wh.sql(f"SELECT MAX(finished_at) AS last FROM {wh._qualified(t)} WHERE status = 'success'")
        last = rows["last"].iloc[0]
    if last is None or pd.isna(last):
        return Check("last_success", "fail", None, bound, "no successful run recorded")
    age = (pd.Timestamp(now) - pd.Timestamp(last)).total_seconds() / 3600
    status = "fail" if age > bound else "ok"
    return Check(
        "last_success",
        status,
        round(age, 2),
        bound,
        f"last success {pd.Timestamp(last):%Y-%m-%d %H:%M} ({age:.1f} h ago; limit {bound:g} h)",
    )


def _quarantine(runs: pd.DataFrame, config: EnrichmentConfig) -> Check:
    s = config.status
    done = runs[(runs["status"] == "success") & (pd.to_numeric(runs["rows_in"], errors="coerce") > 0)]
    if done.empty:
        return Check("quarantine", "skipped", None, s.quarantine_share, "no run with rows yet")
    last, before = done.iloc[0], done.iloc[1:]
    share = float(last["rows_quarantined"]) / float(last["rows_in"])
    base_in = float(pd.to_numeric(before["rows_in"]).sum())
    base = float(pd.to_numeric(before["rows_quarantined"]).sum()) / base_in if base_in else None
    spike = (
        base is not None
        and base > 0
        and share > s.quarantine_spike * base
        and int(last["rows_quarantined"]) >= 10
    )
    status = "fail" if share > s.quarantine_share or spike else "ok"
    shown = f"{100 * base:.1f}%" if base is not None else "-"
    return Check(
        "quarantine",
        status,
        round(share, 4),
        s.quarantine_share,
        f"last run quarantined {100 * share:.1f}% of {int(last['rows_in']):,} rows (previous runs {shown}; "
        f"limit {100 * s.quarantine_share:.0f}% or {s.quarantine_spike:g}x)",
    )


def _tvd(last: dict[str, int], base: dict[str, int]) -> float:
    n1, n2 = sum(last.values()) or 1, sum(base.values()) or 1
    keys = set(last) | set(base)
    return 0.5 * sum(abs(last.get(k, 0) / n1 - base.get(k, 0) / n2) for k in keys)


def _drift(wh: Warehouse, config: EnrichmentConfig) -> list[Check]:
    s = config.status
    scope = Scope.of(wh, config)
    names = ("tag_coverage", "language_mix", "sentiment_mix")
    if scope.empty:
        return [Check(n, "skipped", None, None, "no enriched answers yet") for n in names]
    end = wh.max_value(config.tables.enriched, "submitted_at")
    if end is None:
        return [Check(n, "skipped", None, None, "no dated answers") for n in names]
    end = pd.Timestamp(end)
    p = Params()
    split = p.add((end - timedelta(days=7)).to_pydatetime())
    lo = p.add((end - timedelta(days=7 * (s.baseline_weeks + 1))).to_pydatetime())
    from pipeline.analysis.filters import Filters

    head = scope.ctes(Filters(), p)
    rows = scope.run(
        f"{head}, w AS (SELECT {ROW_KEY}, language, sentiment_label, CASE WHEN submitted_at > {split} THEN 1 ELSE 0 END "
        f"AS last FROM base WHERE NOT is_non_answer AND submitted_at > {lo}) "
        "SELECT 'language' AS k, last, language AS key, COUNT(*) AS n FROM w GROUP BY last, language UNION ALL "
        "SELECT 'sentiment', last, sentiment_label, COUNT(*) FROM w GROUP BY last, sentiment_label UNION ALL "
        "SELECT 'tagged', last, 'all', COUNT(*) FROM w GROUP BY last UNION ALL "
        f"SELECT 'tagged', last, 'yes', COUNT(*) FROM w WHERE {ROW_KEY} IN (SELECT {ROW_KEY} FROM etags) "
        "GROUP BY last",
        p,
    )
    # tagged / untagged from the total and a semi-join in WHERE (an IN (subquery) inside CASE is a
    # per-row subplan on PostgreSQL)
    tag_rows = rows[rows["k"] == "tagged"]
    tagged_rows = []
    for last in (0, 1):
        part = tag_rows[tag_rows["last"] == last].set_index("key")["n"]
        total, yes = int(part.get("all", 0)), int(part.get("yes", 0))
        if total:
            tagged_rows += [("tagged", last, "yes", yes), ("tagged", last, "no", total - yes)]
    rows = pd.concat(
        [rows[rows["k"] != "tagged"], pd.DataFrame(tagged_rows, columns=["k", "last", "key", "n"])],
        ignore_index=True,
    )

    def mix(kind: str, last: int) -> dict[str, int]:
        part = rows[(rows["k"] == kind) & (rows["last"] == last)]
        return {str(k): int(n) for k, n in zip(part["key"], part["n"], strict=True)}

    n_last, n_base = sum(mix("tagged", 1).values()), sum(mix("tagged", 0).values())
    if n_last < s.min_week_answers or n_base == 0:
        why = f"{n_last} answers in the last week (need {s.min_week_answers}) and {n_base} before"
        return [Check(n, "skipped", None, None, why) for n in names]
    out = []
    cov_last = mix("tagged", 1).get("yes", 0) / n_last
    cov_base = mix("tagged", 0).get("yes", 0) / n_base
    moved = abs(cov_last - cov_base)
    out.append(
        Check(
            "tag_coverage",
            "fail" if moved > s.tag_coverage_drift else "ok",
            round(moved, 4),
            s.tag_coverage_drift,
            f"{100 * cov_last:.1f}% of last week's answers carry a theme vs {100 * cov_base:.1f}% before",
        )
    )
    for kind, name, bound in (
        ("language", "language_mix", s.language_drift),
        ("sentiment", "sentiment_mix", s.sentiment_drift),
    ):
        d = _tvd(mix(kind, 1), mix(kind, 0))
        out.append(
            Check(
                name,
                "fail" if d > bound else "ok",
                round(d, 4),
                bound,
                f"{kind} mix moved {d:.2f} (total variation) vs the {s.baseline_weeks} weeks before",
            )
        )
    return out


def pipeline_status(
    wh: Warehouse, *, config: EnrichmentConfig | None = None, now: datetime | None = None, n_runs: int = 10
) -> StatusReport:
    """The last runs and every health check (see the module docstring).

    Args:
        wh: The warehouse.
        config: ``status`` bounds and table names.
        now: The clock (default: :func:`pipeline.clock.utcnow`).
        n_runs: Runs listed.
    """
    config = config or EnrichmentConfig()
    now = now or utcnow()
    runs = _runs(wh, config, max(n_runs, 20))
    checks = [_last_success(runs, wh, config, now), _quarantine(runs, config), *_drift(wh, config)]
    return StatusReport(runs.head(n_runs).reset_index(drop=True), checks)


def notify(report: StatusReport, block: str) -> None:
    """Send a failed status through a Prefect notification block (``slug/name``)."""
    from prefect.blocks.core import Block

    Block.load(block).notify(body=report.message(), subject="feedback pipeline status")
