"""The warehouse's write path per backend, before and after the one table contract, side by side.

Each side is a copy of ``pipeline/`` at a git revision (``--before``, default: where this branch left
main) or the working tree (after), run in its own process on the same machine, one after the other,
interleaved over ``--rounds`` rounds (the median is reported). Per backend (DuckDB file; PostgreSQL when
``FEEDBACK_TEST_PG_URL`` or ``--pg-url`` is set) it times:

* ``insert``: ``upsert`` of N rows shaped like ``feedback_enriched`` (text, floats, lists, timestamps,
  three segment columns) into a new table (the table is created by the call);
* ``upsert``: the same N rows again, every key present (each row replaced);
* ``vectors``: ``write_vectors`` of N 384-d float32 vectors into the embedding cache, then again (replace).

The "after" side opens the warehouse with the default config, so the rows go through the declared tables
(segments into ``segments_extra``), as the pipeline writes them.

    source .ci/postgres.sh && pg_start
    .venv/bin/python bench/bench_warehouse.py --rows 20000 --rounds 3
    pg_stop
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FRAME = r"""
import json, sys, time, uuid
import numpy as np, pandas as pd
from pipeline.warehouse import open_warehouse

target, schema, n = sys.argv[1], sys.argv[2] or None, int(sys.argv[3])
rng = np.random.default_rng(0)
ids = [f"r{i:08d}" for i in range(n)]
frame = pd.DataFrame({
    "response_id": ids,
    "survey_type": "nps",
    "score": rng.integers(0, 11, n).astype(float),
    "submitted_at": pd.Timestamp("2025-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
    "channel": rng.choice(["web", "app", "email"], n),
    "region": rng.choice(["eu", "us", "apac"], n),
    "plan": rng.choice(["free", "pro"], n),
    "language": "en",
    "language_confidence": rng.random(n),
    "is_non_answer": rng.random(n) < 0.1,
    "text_redacted": [f"answer {i} " + "the delivery was late and support did not answer " * 3 for i in range(n)],
    "text_truncated": False,
    "pii_found": [["email"] if i % 7 == 0 else [] for i in range(n)],
    "n_sentences": rng.integers(1, 4, n),
    "sentiment_label": rng.choice(["negative", "positive", "neutral"], n),
    "sentiment_score": rng.random(n) * 2 - 1,
    "topic_id": rng.integers(-1, 30, n),
    "topic_label": "delivery / late",
    "tags": [["delivery", "support"][: i % 3] for i in range(n)],
    "run_id": "run-1", "embedder_id": "e", "sentiment_model_version": "s", "sentiment_source": "model",
    "tagger_version": "t", "taxonomy_version": "x", "topic_model_version": "m",
    "enriched_at": pd.Timestamp("2025-06-01"),
    "source_hash": [uuid.uuid4().hex for _ in range(n)],
})
"""

WORKER = (
    FRAME
    + r"""
vectors = rng.standard_normal((n, 384)).astype(np.float32)
out = {}
with open_warehouse(target, schema=schema) as wh:
    if hasattr(wh, "use_tables"):  # the contract: the pipeline's tables from the default config
        from pipeline.config import EnrichmentConfig
        from pipeline.warehouse.tables import declare
        wh.use_tables(declare(EnrichmentConfig()))
    for name, call in (
        ("insert", lambda: wh.upsert("feedback_enriched", frame, key=["response_id"])),
        ("upsert", lambda: wh.upsert("feedback_enriched", frame, key=["response_id"])),
        ("vectors_insert", lambda: wh.write_vectors("m", ids, vectors)),
        ("vectors_upsert", lambda: wh.write_vectors("m", ids, vectors)),
    ):
        t0 = time.perf_counter()
        call()
        out[name] = n / (time.perf_counter() - t0)
    assert wh.count("feedback_enriched") == n
print(json.dumps(out))
"""
)

# The alternative for DuckDB: SQLAlchemy with the duckdb_engine dialect (the declared table created by
# metadata.create_all, rows as executemany of the same INSERT ... ON CONFLICT). Not a dependency: pass
# --duckdb-engine with a folder holding it (pip install --target DIR --no-deps duckdb-engine).
ENGINE_WORKER = (
    FRAME
    + r"""
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from pipeline.config import EnrichmentConfig
from pipeline.warehouse.sql_backend import _records
from pipeline.warehouse.tables import declare
from pipeline.warehouse.types import coerce_series, pack_extras
engine = sa.create_engine("duckdb:///" + target)
spec = declare(EnrichmentConfig()).get("feedback_enriched")
table = declare(EnrichmentConfig()).metadata("duckdb").tables["feedback_enriched"]
out = {}
for name in ("insert", "upsert"):
    t0 = time.perf_counter()  # the same cleaning as the warehouse's, then SQLAlchemy executemany
    packed = pack_extras(frame, spec.types)
    clean = pd.DataFrame({c: coerce_series(packed[c] if c in packed else pd.Series(None, index=packed.index, dtype=object, name=c), t) for c, t in spec.types.items()})
    rows = _records(clean, spec.types)
    with engine.begin() as conn:
        table.create(conn, checkfirst=True)
        statement = insert(table)
        statement = statement.on_conflict_do_update(
            index_elements=spec.key, set_={c: statement.excluded[c] for c in spec.types if c not in spec.key}
        )
        conn.execute(statement, rows)
    out[name] = n / (time.perf_counter() - t0)
print(json.dumps(out))
"""
)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def _tree_at(ref: str, folder: Path) -> Path:
    """``pipeline/`` as of ``ref`` in ``folder``."""
    archive = subprocess.run(["git", "archive", ref, "pipeline"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _run(tree: Path, target: str, schema: str, rows: int, extra_path: str = "") -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tree), extra_path) if p)}
    worker = ENGINE_WORKER if extra_path else WORKER
    result = subprocess.run(
        [sys.executable, "-c", worker, target, schema, str(rows)], env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"worker failed in {tree}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--before", default=None, help="git revision of the 'before' side (default: merge-base with main)"
    )
    parser.add_argument("--pg-url", default=os.environ.get("FEEDBACK_TEST_PG_URL", ""))
    parser.add_argument(
        "--duckdb-engine", default="", help="folder holding duckdb_engine: also time that path"
    )
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "warehouse.json"))
    args = parser.parse_args()
    before = args.before or _git("merge-base", "HEAD", "main")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        sides = {"before": _tree_at(before, Path(tmp)), "after": REPO}
        backends = ["duckdb"] + (["postgresql"] if args.pg_url else [])
        engine_side = "after_via_duckdb_engine"
        for round_no in range(args.rounds):
            for backend in backends:
                for side, tree in sides.items():
                    schema = f"bench_{side}_{round_no}"
                    if backend == "duckdb":
                        target, schema = str(Path(tmp) / f"{side}-{round_no}.duckdb"), ""
                    else:
                        target = args.pg_url
                    try:
                        figures = _run(tree, target, schema, args.rows)
                    finally:
                        if backend == "postgresql":
                            _drop_schema(args.pg_url, schema)
                    results.setdefault(backend, {}).setdefault(side, []).append(figures)
                    print(backend, side, round_no, {k: round(v) for k, v in figures.items()}, flush=True)
            if args.duckdb_engine:
                target = str(Path(tmp) / f"engine-{round_no}.duckdb")
                figures = _run(REPO, target, "", args.rows, args.duckdb_engine)
                results["duckdb"].setdefault(engine_side, []).append(figures)
                print("duckdb", engine_side, round_no, {k: round(v) for k, v in figures.items()}, flush=True)
    summary = {
        backend: {
            side: {k: round(statistics.median(r[k] for r in runs)) for k in runs[0]}
            for side, runs in sides_.items()
        }
        for backend, sides_ in results.items()
    }
    for sides_ in summary.values():
        sides_["ratio"] = {k: round(v / sides_["before"][k], 2) for k, v in sides_["after"].items()}
    report = {
        "what": "rows/s of the warehouse write path (median of rounds), before vs after the table contract",
        "rows": args.rows,
        "rounds": args.rounds,
        "before": _git("rev-parse", "--short", before),
        "after": _git("rev-parse", "--short", "HEAD")
        + (" + working tree" if _git("status", "--porcelain", "pipeline") else ""),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows_per_s": summary,
        "runs": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
