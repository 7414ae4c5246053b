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

WORKER = r"""
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


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True, text=True).stdout.strip()


def _tree_at(ref: str, folder: Path) -> Path:
    """``pipeline/`` as of ``ref`` in ``folder``."""
    archive = subprocess.run(["git", "archive", ref, "pipeline"], cwd=REPO, check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _run(tree: Path, target: str, schema: str, rows: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, target, schema, str(rows)], env=env, capture_output=True, text=True
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
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "warehouse.json"))
    args = parser.parse_args()
    before = args.before or _git("merge-base", "HEAD", "main")
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        sides = {"before": _tree_at(before, Path(tmp)), "after": REPO}
        backends = ["duckdb"] + (["postgresql"] if args.pg_url else [])
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
    summary = {
        backend: {
            side: {k: round(statistics.median(r[k] for r in runs)) for k in runs[0]}
            for side, runs in sides_.items()
        }
        for backend, sides_ in results.items()
    }
    for sides_ in summary.values():
        for key in sides_["after"]:
            sides_.setdefault("ratio", {})[key] = round(sides_["after"][key] / sides_["before"][key], 2)
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
