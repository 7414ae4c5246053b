"""Analysis at scale: every analysis query, the report and the alerts on N generated enriched responses.

The warehouse is generated directly into the declared tables with DuckDB SQL (``range``), not by
running enrichment: N responses over 180 days, 3 segments, 12 themes (about 1.4 per answer, parents),
sentiment, topics. Modes (each in its own process, so that peak memory is the mode's own):

* ``generate --n N --wh FILE``: write the warehouse.
* ``new --wh FILE``: each analysis query (median of ``--repeat``), ``build_summary`` + HTML, alerts.
* ``old --wh FILE``: the pandas code of main (run with PYTHONPATH pointing at a checkout of main):
  read the enriched and tags tables into pandas, ``summarise`` + ``write_report``, ``compute_alerts``.
* ``topg --wh FILE --pg URL``: copy a generated DuckDB warehouse into PostgreSQL (``COPY``, then
  ``ANALYZE``), so that ``new --wh URL`` measures the same rows there.

    python bench/bench_analysis.py generate --n 1000000 --wh /tmp/a.duckdb
    python bench/bench_analysis.py new --wh /tmp/a.duckdb --json bench/results/analysis_new.json
    PYTHONPATH=../main python bench/bench_analysis.py old --wh /tmp/a.duckdb --json bench/results/analysis_old.json
    source .ci/postgres.sh && pg_start && python bench/bench_analysis.py topg --wh /tmp/a.duckdb \
        --pg "$FEEDBACK_TEST_PG_URL" && python bench/bench_analysis.py new --wh "$FEEDBACK_TEST_PG_URL"; pg_stop
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

THEMES = [
    "billing",
    "refund",
    "delivery",
    "tracking",
    "app_crash",
    "login",
    "staff",
    "wait_time",
    "price",
    "quality",
    "returns",
    "website",
]
PARENTS = [
    "money",
    "money",
    "logistics",
    "logistics",
    "digital",
    "digital",
    "service",
    "service",
    "money",
    "product",
    "logistics",
    "digital",
]


def generate(n: int, path: str) -> None:
    import pandas as pd

    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse import open_warehouse
    from pipeline.warehouse.tables import declared_columns

    cfg = EnrichmentConfig(source={"segments": ["channel", "region", "plan"]})
    with open_warehouse(path, config=cfg) as wh:
        for field in ("enriched", "tags"):
            table = getattr(cfg.tables, field)
            cols = declared_columns(field) + (["channel", "region", "plan"] if field == "enriched" else [])
            wh.upsert(
                table,
                pd.DataFrame({c: pd.Series(dtype=object) for c in cols}),
                key=["response_id"] if field == "enriched" else ["response_id", "tag"],
            )
        themes = "[" + ", ".join(f"'{t}'" for t in THEMES) + "]"
        parents = "[" + ", ".join(f"'{t}'" for t in PARENTS) + "]"
        wh._execute(
            f"""INSERT INTO feedback_enriched (response_id, survey_type, score, submitted_at, channel, region, plan,
            language, is_non_answer, text_redacted, sentiment_label, sentiment_score, topic_id, topic_label, tags,
            taxonomy_version)
            SELECT 'r' || i, 'nps', CAST(floor(random() * 11) AS DOUBLE),
              TIMESTAMP '2025-07-01' + to_seconds(CAST(floor(random() * 180 * 86400) AS BIGINT)),
              (['app', 'web', 'phone', 'store'])[1 + CAST(floor(random() * 4) AS INT)],
              (['north', 'south', 'east', 'west', 'central'])[1 + CAST(floor(random() * 5) AS INT)],
              (['free', 'basic', 'pro'])[1 + CAST(floor(random() * 3) AS INT)],
              (['en', 'pt', 'es', 'fr', 'nl'])[1 + CAST(floor(random() * 5) AS INT)],
              random() < 0.05, 'answer number ' || i,
              (['negative', 'neutral', 'positive'])[1 + CAST(floor(random() * 3) AS INT)], random() * 2 - 1,
              CAST(floor(random() * 40) AS BIGINT) - 1, 'topic', [], 'v1'
            FROM range({n}) t(i)"""
        )
        # themes: detractors carry billing/wait_time more often, so impact and drivers have signal
        wh._execute(
            f"""INSERT INTO feedback_tags (response_id, tag, parent_tag, score, sentiment_label, sentiment_score, source)
            SELECT DISTINCT ON (response_id, tag) response_id, tag, parent, 0.9, NULL, NULL, 'model' FROM (
              SELECT e.response_id, {themes}[k] AS tag, {parents}[k] AS parent FROM (
                SELECT response_id, score, 1 + CAST(floor(random() * 12) AS INT) AS k FROM feedback_enriched
                  WHERE NOT is_non_answer
                UNION ALL SELECT response_id, score, CASE WHEN score <= 6 THEN 1 ELSE 9 END FROM feedback_enriched
                  WHERE NOT is_non_answer AND random() < 0.4) e)"""
        )
        print(
            f"generated {wh.count('feedback_enriched'):,} responses, {wh.count('feedback_tags'):,} tag rows"
        )


ENRICHED_COLUMNS = (
    "response_id, survey_type, score, submitted_at, channel, region, plan, language, is_non_answer, "
    "text_redacted, sentiment_label, sentiment_score, topic_id, topic_label, taxonomy_version"
)
TAG_COLUMNS = "response_id, tag, parent_tag, score, sentiment_label, sentiment_score, source"


def to_postgres(path: str, url: str) -> None:
    """Copy the generated tables of the DuckDB file ``path`` into the PostgreSQL warehouse ``url``."""
    import duckdb
    import pandas as pd
    import psycopg

    from pipeline.config import EnrichmentConfig
    from pipeline.warehouse import open_warehouse

    cfg = EnrichmentConfig(source={"segments": ["channel", "region", "plan"]})
    src = duckdb.connect(path, read_only=True)
    with open_warehouse(url, config=cfg) as wh:  # creates the declared tables (and their keys)
        for table, key in (("feedback_enriched", ["response_id"]), ("feedback_tags", ["response_id", "tag"])):
            cols = [row[0] for row in src.execute(f"DESCRIBE {table}").fetchall()]
            wh.upsert(table, pd.DataFrame({c: pd.Series(dtype=object) for c in cols}), key=key)
    with tempfile.TemporaryDirectory() as tmp, psycopg.connect(url.replace("+psycopg", "")) as pg:
        for table, cols in (("feedback_enriched", ENRICHED_COLUMNS), ("feedback_tags", TAG_COLUMNS)):
            csv = Path(tmp) / f"{table}.csv"
            src.execute(f"COPY (SELECT {cols} FROM {table}) TO '{csv}' (HEADER false)")
            copy = f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)"
            with pg.cursor() as cur, cur.copy(copy) as cp, csv.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    cp.write(chunk)
        pg.execute("UPDATE feedback_enriched SET tags = '{}'")
        pg.commit()
        pg.autocommit = True
        pg.execute("ANALYZE")


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def run_new(path: str, repeat: int) -> dict:
    from pipeline import analysis as an
    from pipeline.config import EnrichmentConfig
    from pipeline.report import build_summary, format_summary, write_report
    from pipeline.warehouse import open_warehouse

    cfg = EnrichmentConfig(source={"segments": ["channel", "region", "plan"]})
    out: dict = {"queries": {}}
    with open_warehouse(path, config=cfg) as wh:
        f = an.Filters(survey_type="nps")
        last = an.Filters(survey_type="nps", start=pd_date("2025-11-28"), end=pd_date("2025-12-27"))
        queries = {
            "score_summary (with period change)": lambda: an.score_summary(wh, last, config=cfg),
            "overview": lambda: an.overview(wh, f, config=cfg),
            "score_trend (weekly)": lambda: an.score_trend(wh, f, config=cfg),
            "theme_impact (bootstrap 1000)": lambda: an.theme_impact(wh, f, config=cfg),
            "theme_impact (parents)": lambda: an.theme_impact(wh, f, level="parent", config=cfg),
            "theme_trend (weekly)": lambda: an.theme_trend(wh, f, config=cfg),
            "drivers (logit)": lambda: an.drivers(wh, f, config=cfg),
            "segment_scores (channel)": lambda: an.segment_scores(wh, "channel", f, config=cfg),
            "segment_theme_crosstab (region, BH)": lambda: an.segment_theme_crosstab(
                wh, "region", f, config=cfg
            ),
            "answers (page of 50, theme filter)": lambda: an.answers(
                wh, an.Filters(themes=["billing"]), limit=50, config=cfg
            ),
            "emerging (alerts)": lambda: an.emerging(wh, config=cfg),
            "pipeline_status": lambda: an.pipeline_status(wh, config=cfg),
        }
        for name, fn in queries.items():
            out["queries"][name] = round(_timed(fn, repeat)[0], 4)
        t0 = time.perf_counter()
        data = build_summary(wh, cfg)
        with tempfile.TemporaryDirectory() as tmp:
            write_report(data, tmp, config=cfg)
        format_summary(data)
        out["report_s"] = round(time.perf_counter() - t0, 2)
    return out


def pd_date(text: str):
    from datetime import date

    return date.fromisoformat(text)


def run_old(path: str) -> dict:
    import pandas as pd

    from pipeline.alerts import compute_alerts
    from pipeline.analysis import format_summary, summarise
    from pipeline.report import write_report
    from pipeline.warehouse import open_warehouse

    out: dict = {}
    with open_warehouse(path) as wh:
        t0 = time.perf_counter()
        enriched = wh.read("feedback_enriched")
        tags = wh.read("feedback_tags")
        out["read_s"] = round(time.perf_counter() - t0, 2)
        s = summarise(enriched, tags=tags, segments=["channel", "region", "plan"])
        with tempfile.TemporaryDirectory() as tmp:
            write_report(s, tmp)
        format_summary(s)
        out["report_s"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        lists = tags.groupby("response_id")["tag"].agg(list)
        frame = enriched[
            ["response_id", "submitted_at", "topic_id", "topic_label", "is_non_answer", "text_redacted"]
        ]
        frame = frame.assign(
            tags=frame["response_id"].map(lists).map(lambda v: v if isinstance(v, list) else [])
        )
        end = pd.Timestamp(frame["submitted_at"].max())
        compute_alerts(frame[frame["submitted_at"] >= end - pd.Timedelta(days=35)], now=end)
        out["alerts_s"] = round(time.perf_counter() - t1, 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["generate", "new", "old", "topg"])
    p.add_argument("--pg", default=None, help="PostgreSQL URL (topg)")
    p.add_argument("--wh", required=True)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    if args.mode == "generate":
        generate(args.n, args.wh)
        return
    if args.mode == "topg":
        to_postgres(args.wh, args.pg)
        return
    result = run_new(args.wh, args.repeat) if args.mode == "new" else run_old(args.wh)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["mode"] = args.mode
    text = json.dumps(result, indent=2)
    print(text)  # noqa: T201 (a bench script, not the library)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
