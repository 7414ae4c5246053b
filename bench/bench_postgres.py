"""PostgreSQL at volume: loading a 1,000,000-row source table, the pending-row query, and a run with no new
rows as a share of an enrichment run (issue 20).

Steps, all in one fresh database of the server at ``--url`` (dropped at the end):

1. ``--enrich-rows`` rows loaded and enriched by a real run (the default models): rows/s of enrichment.
2. The table grown to 100,000 rows, the others marked done (a row in ``feedback_enriched`` with the
   source row's content hash, written in SQL: what a run would leave, without spending hours encoding);
   then a run with no new rows, timed, and the pending query's plan (EXPLAIN ANALYZE).
3. The same at ``--rows`` (1,000,000): the load timed (the pipeline's own path: ``load_export``'s
   ``Warehouse.upsert``, binary COPY into a temporary table, then one INSERT .. ON CONFLICT), the first
   run's pending query (EXPLAIN ANALYZE), then the no-new-rows run.
4. Load alternatives on their own schemas: plain ``COPY .. FROM STDIN (FORMAT CSV)`` into a fresh table
   (the floor), and SQLAlchemy ``executemany`` INSERTs on ``--insert-rows`` rows.

Usage (a throw-away server from .ci/postgres.sh):
  source .ci/postgres.sh && pg_start && .venv/bin/python bench/bench_postgres.py --url "$FEEDBACK_TEST_PG_URL"; pg_stop
Writes bench/results/postgres.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "throughput_dev_texts.parquet"
SOURCE = "survey_responses"


def frame(start: int, stop: int, texts: list[str], now: pd.Timestamp) -> pd.DataFrame:
    """Rows ``start..stop`` of the synthetic source (fixed seed per row range: the same rows every time)."""
    rng = np.random.default_rng(start)
    n = stop - start
    return pd.DataFrame(
        {
            "response_id": [f"R{i:08d}" for i in range(start, stop)],
            "survey_type": "nps",
            "score": rng.integers(0, 11, n).astype(float),
            "comment": [texts[i % len(texts)] for i in range(start, stop)],
            "submitted_at": (now - pd.to_timedelta(rng.integers(3600, 80 * 86400, n), unit="s")).as_unit(
                "us"
            ),
            "channel": rng.choice(["web", "app", "store"], n),
        }
    )


def sa_url(url: str) -> str:
    return (
        "postgresql+psycopg://" + url.split("://", 1)[1]
        if url.startswith(("postgresql://", "postgres://"))
        else url
    )


def database_url(url: str, name: str) -> str:
    """``url`` pointing at the database ``name`` on the same server."""
    base, _, query = sa_url(url).partition("?")
    return base.rsplit("/", 1)[0] + "/" + name + (f"?{query}" if query else "")


def admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
        conn.execute(statement)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def mark_done(wh, config) -> int:
    """Mark every pending source row done: an enriched row with its content hash (SQL, in the database)."""
    from pipeline.ingest.pending import _hash_sql, _source_types

    types = _source_types(wh, config.tables.source)
    q = wh._quote
    sql = (
        f"INSERT INTO {wh._qualified(config.tables.enriched)} ({q('response_id')}, {q('survey_type')}, "
        f"{q('score')}, {q('submitted_at')}, {q('language')}, {q('is_non_answer')}, "
        f"{q('text_redacted')}, {q('sentiment_label')}, {q('sentiment_score')}, {q('run_id')}, {q('source_hash')}) "
        f"SELECT s.{q('response_id')}, s.{q('survey_type')}, s.{q('score')}, s.{q('submitted_at')}, 'en', false, s.{q('comment')}, 'neutral', 0.0, 'synthetic', "
        f"{_hash_sql(wh, list(types), 's')} FROM {wh._qualified(config.tables.source)} s "
        f"ON CONFLICT ({q('response_id')}) DO NOTHING"
    )
    import sqlalchemy as sa

    with wh._engine.begin() as conn:
        return conn.execute(sa.text(sql)).rowcount


def explain_pending(wh, config, page_size: int) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of the first page of the pending-row query (pipeline.ingest.pending)."""
    import sqlalchemy as sa

    from pipeline.ingest.pending import KEY, _pending_sql, _source_types

    types = _source_types(wh, config.tables.source)
    inner, conditions = _pending_sql(wh, config, types)
    key = wh._key_expr(f"x.{wh._quote(KEY)}", types[KEY])
    query = (
        f"SELECT x.* FROM ({inner}) x WHERE {' AND '.join(conditions)} ORDER BY {key} LIMIT {int(page_size)}"
    )
    with wh._engine.connect() as conn:
        t0 = time.perf_counter()
        rows = conn.execute(sa.text(query)).fetchall()
        seconds = time.perf_counter() - t0
        plan = [r[0] for r in conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + query))]
    return {"seconds": round(seconds, 3), "rows": len(rows), "plan": plan}


def noop_run(config) -> dict:
    """A whole run with nothing pending, then its queries one by one (where its time goes)."""
    from pipeline.ingest.pending import iter_pending, removed_ids
    from pipeline.runner import run_enrichment, update_alerts
    from pipeline.warehouse import open_warehouse

    seconds, summary = timed(run_enrichment, config)
    assert summary.rows_in == 0, f"expected no pending rows, found {summary.rows_in}"
    parts = {k: round(v, 3) for k, v in summary.timings.items()}
    with open_warehouse(config.warehouse, config=config) as wh:
        parts["removed_ids (extract)"] = round(timed(removed_ids, wh, config)[0], 3)
        parts["pending query (all pages)"] = round(timed(lambda: list(iter_pending(wh, config)))[0], 3)
        parts["alerts"] = round(timed(update_alerts, wh, config)[0], 3)
    return {"seconds": round(seconds, 3), "parts": parts}


def load_alternatives(url: str, df: pd.DataFrame, insert_rows: int) -> dict:
    """Plain CSV COPY into a fresh table, and executemany INSERTs, each on a schema of its own."""
    import psycopg
    import sqlalchemy as sa

    out = {}
    schema = f"bench_alt_{uuid.uuid4().hex[:8]}"
    ddl = (
        f"CREATE TABLE {schema}.src (response_id text PRIMARY KEY, survey_type text, score double precision, "
        "comment text, submitted_at timestamp, channel text)"
    )
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(ddl)
            buf = io.StringIO()
            df.to_csv(buf, index=False, header=False)
            t0 = time.perf_counter()
            with conn.cursor() as cur, cur.copy(f"COPY {schema}.src FROM STDIN (FORMAT CSV)") as copy:
                copy.write(buf.getvalue())
            out["copy_csv"] = {"rows": len(df), "seconds": round(time.perf_counter() - t0, 2)}
            conn.execute(f"TRUNCATE {schema}.src")
        engine = sa.create_engine(sa_url(url), poolclass=sa.pool.NullPool)
        part = df.head(insert_rows)
        rows = part.to_dict("records")
        stmt = sa.text(
            f"INSERT INTO {schema}.src VALUES (:response_id, :survey_type, :score, :comment, :submitted_at, :channel)"
        )
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(stmt, rows)
        out["insert_executemany"] = {"rows": len(part), "seconds": round(time.perf_counter() - t0, 2)}
        engine.dispose()
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    for v in out.values():
        v["rows_per_s"] = round(v["rows"] / max(v["seconds"], 1e-9))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=os.environ.get("FEEDBACK_TEST_PG_URL"))
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--mid-rows", type=int, default=100_000)
    ap.add_argument("--enrich-rows", type=int, default=2000)
    ap.add_argument("--insert-rows", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=100_000, help="rows per upsert call of the load")
    ap.add_argument("--embedder", default=None, help="override the default encoder (e.g. hashing)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "postgres.json"))
    args = ap.parse_args()
    if not args.url:
        raise SystemExit("no --url and no FEEDBACK_TEST_PG_URL (source .ci/postgres.sh && pg_start)")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    import sqlalchemy as sa

    from pipeline.config import load_config
    from pipeline.warehouse import open_warehouse

    texts = (
        pd.read_parquet(DATA)["text"].astype(str).tolist()
        if DATA.exists()
        else [f"Answer number {i}: the delivery was late and support did not help." for i in range(997)]
    )
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    schema = f"bench_pg_{uuid.uuid4().hex[:8]}"
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / schema
    workdir.mkdir(parents=True)
    overrides = {}
    if args.embedder:
        overrides["embedder"] = {"name": args.embedder}
    admin(args.url, f"CREATE DATABASE {schema}")  # a fresh database, dropped at the end
    config = load_config(None, warehouse=database_url(args.url, schema), state_dir=str(workdir), **overrides)
    config = config.model_copy(
        update={"model_store": config.model_store.model_copy(update={"path": workdir / "ms"})}
    )
    result: dict = {"rows": args.rows, "schema": schema, "embedder": config.embedder.name}
    try:
        with open_warehouse(config.warehouse, config=config) as wh:
            # 1. a real enrichment run
            wh.upsert(SOURCE, frame(0, args.enrich_rows, texts, now), key=["response_id"])
        from pipeline.runner import run_enrichment

        seconds, s = timed(run_enrichment, config)
        pages_s = sum(
            v for k, v in s.timings.items() if k not in ("load_models", "topics_fit", "write_topics")
        )
        result["enrich"] = {
            "rows": s.rows_in,
            "seconds": round(seconds, 2),
            # the topic fit is capped (topics.fit_sample), so it does not grow with the rows: left out of
            # the rate, which makes the extrapolated run shorter and the no-op share larger (conservative)
            "rows_per_s": round(s.rows_in / pages_s, 1),
            "rows_per_s_whole_run": round(s.rows_in / seconds, 1),
            "stages": {k: round(v, 2) for k, v in s.timings.items()},
        }
        print("enrich", result["enrich"], flush=True)
        for n in (args.mid_rows, args.rows):
            with open_warehouse(config.warehouse, config=config) as wh:
                have = int(
                    wh._query(f"SELECT COUNT(*) AS n FROM {wh._qualified(SOURCE)}", None, {"n": "bigint"})[
                        "n"
                    ].iloc[0]
                )
                load_s = 0.0
                for start in range(have, n, args.chunk):
                    part = frame(start, min(n, start + args.chunk), texts, now)
                    dt, _ = timed(wh.upsert, SOURCE, part, key=["response_id"])
                    load_s += dt
                with wh._engine.begin() as conn:  # what autovacuum does after a bulk load
                    conn.execute(sa.text("ANALYZE"))
                step = {"loaded": n - have, "load_seconds": round(load_s, 2)}
                step["load_rows_per_s"] = round((n - have) / max(load_s, 1e-9))
                step["first_run_page"] = explain_pending(wh, config, config.batch_size)
                dt, marked = timed(mark_done, wh, config)
                step["marked_done"] = marked
                step["noop_page"] = explain_pending(wh, config, config.batch_size)
            step["noop_run"] = noop_run(config)
            result[f"at_{n}"] = step
            print(n, {k: v for k, v in step.items() if "page" not in k}, flush=True)
            print(
                "  first-run page:",
                step["first_run_page"]["seconds"],
                "s; no-op page:",
                step["noop_page"]["seconds"],
                "s",
            )
        enrich_rate = result["enrich"]["rows_per_s"]
        for n in (args.mid_rows, args.rows):
            full = n / enrich_rate  # a first run over n rows at the measured rate
            result[f"at_{n}"]["noop_share_of_enrichment_of_100k"] = round(
                result[f"at_{n}"]["noop_run"]["seconds"] / (args.mid_rows / enrich_rate), 4
            )
            result[f"at_{n}"]["extrapolated_enrichment_s"] = round(full)
        result["load_alternatives"] = load_alternatives(
            args.url, frame(0, args.rows, texts, now), args.insert_rows
        )
        print("alternatives", result["load_alternatives"], flush=True)
    finally:
        admin(args.url, f"DROP DATABASE IF EXISTS {schema} WITH (FORCE)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
