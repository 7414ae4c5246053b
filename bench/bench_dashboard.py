"""Dashboard speed at scale: each page's server-side render time and the process's peak memory.

On a warehouse of N generated enriched responses (bench/bench_analysis.py's generator, written straight
into the tables), the run's snapshot is published, then each page is rendered in process with
Streamlit's AppTest (streamlit.testing.v1: the same script ``feedback dashboard`` serves, without a
browser): one warm-up render per page (it fills the filter options and opens the snapshot, as the first
visitor does), then ``--repeat`` renders two ways:

* ``first``: the same session renders the page with the dashboard's cache of analysis results emptied
  first, so every number is queried again: a view nobody has opened since the last run.
* ``rerun``: the same session renders the page again, as Streamlit does on every widget interaction:
  numbers of the same snapshot and filters come from the cache.
* ``new_session``: a fresh AppTest per render (numbers from the cache the first renders filled). AppTest scans every installed package for Streamlit
  components on each run, which the server does once at start-up; that cost (``harness_s``, an empty
  script's fresh-AppTest render) is reported beside it.

Peak memory: the max RSS of this process, which hosts the app as the server process would. Goal: every
page < 1 s median (first), the process < 1 GB.

    .venv/bin/python bench/bench_dashboard.py --n 1000000 --json bench/results/dashboard_1m_duckdb.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--wh", default=None, help="an existing generated warehouse (else a temporary one)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from streamlit.testing.v1 import AppTest

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the bench package, from anywhere
    from bench.bench_analysis import generate
    from pipeline.config import EnrichmentConfig
    from pipeline.dashboard.server import APP, ENV_WAREHOUSE
    from pipeline.dashboard.snapshot import ensure_snapshot, snapshot_path
    from pipeline.dashboard.state import PAGES
    from pipeline.dashboard.ui import _analysis

    tmp = tempfile.TemporaryDirectory(prefix="bench_dashboard_")
    wh = args.wh or str(Path(tmp.name) / "wh.duckdb")
    if not Path(wh).exists():
        t0 = time.perf_counter()
        generate(args.n, wh)
        print(f"generated {args.n:,} responses in {time.perf_counter() - t0:.0f} s")
    snapshot_path(Path(wh).resolve()).unlink(missing_ok=True)  # publish for real: a run's last step
    t0 = time.perf_counter()
    ensure_snapshot(EnrichmentConfig(warehouse=wh, source={"segments": ["channel", "region", "plan"]}))
    publish_s = time.perf_counter() - t0
    os.environ[ENV_WAREHOUSE] = wh
    harness = []
    with tempfile.TemporaryDirectory() as empty_dir:
        empty = Path(empty_dir) / "empty.py"
        empty.write_text("import streamlit as st\nst.write('x')\n", encoding="utf-8")
        for _ in range(args.repeat + 1):
            at = AppTest.from_file(str(empty), default_timeout=120)
            t0 = time.perf_counter()
            at.run()
            harness.append(time.perf_counter() - t0)
    harness_s = statistics.median(harness[1:])
    print(f"harness: a fresh AppTest renders an empty script in {harness_s:.3f} s (median)")

    def render(at: AppTest, page: str) -> float:
        t0 = time.perf_counter()
        at.run()
        seconds = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].value}")
        return seconds

    results: dict[str, dict] = {}
    for page in PAGES:
        session = AppTest.from_file(str(APP), default_timeout=120)
        session.query_params["page"] = page
        render(session, page)  # warm-up: filter options, the snapshot opened
        first = []
        for _ in range(args.repeat):
            _analysis.clear()
            first.append(render(session, page))
        rerun = [render(session, page) for _ in range(args.repeat)]
        fresh = []
        for _ in range(args.repeat):
            at = AppTest.from_file(str(APP), default_timeout=120)
            at.query_params["page"] = page
            fresh.append(render(at, page))
        results[page] = {
            "median_s": statistics.median(first),
            "max_s": max(first),
            "rerun_median_s": statistics.median(rerun),
            "new_session_median_s": statistics.median(fresh),
        }
        print(
            f"{page:10s} first median {results[page]['median_s']:.3f} s (max {results[page]['max_s']:.3f}); "
            f"rerun {results[page]['rerun_median_s']:.3f} s; "
            f"new session {results[page]['new_session_median_s']:.3f} s (harness {harness_s:.3f})"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"snapshot publish {publish_s:.1f} s; peak RSS of the process {peak_mb:.0f} MB")
    out = {
        "n": args.n,
        "repeat": args.repeat,
        "pages": results,
        "peak_rss_mb": peak_mb,
        "publish_s": publish_s,
        "harness_s": harness_s,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
