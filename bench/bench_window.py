"""Memory of drawing the topic fit sample from a large window: the whole window in pandas
(``fit_sample(topic_window(...))``) against the page-by-page draw the run uses (``window_sample``).

    python bench/bench_window.py build  --workdir /tmp/win143   # 143,394 answers of throughput_dev_texts
    python bench/bench_window.py whole  --workdir /tmp/win143   # one process per measurement
    python bench/bench_window.py pages  --workdir /tmp/win143

Each measurement prints one JSON line: the sample size, the process's resident memory before the draw and
the peak it reached (ru_maxrss), and the seconds the draw took. Alternate whole/pages and take medians.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "throughput_dev_texts.parquet"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["build", "whole", "pages"])
    p.add_argument("--workdir", type=Path, required=True)
    args = p.parse_args()
    from pipeline.config import load_config
    from pipeline.warehouse import open_warehouse

    cfg = args.workdir / "enrichment.yaml"
    if args.mode == "build":
        args.workdir.mkdir(parents=True, exist_ok=True)
        cfg.write_text(
            json.dumps(
                {
                    "warehouse": str(args.workdir / "wh.duckdb"),
                    "state_dir": str(args.workdir / "state"),
                    "embedder": {"name": "hashing"},
                }
            )
        )
        config = load_config(cfg)
        d = pd.read_parquet(DATA)
        n = len(d)
        rng = np.random.default_rng(0)
        rows = pd.DataFrame(
            {
                "response_id": "T" + d["id"].astype(str),
                "text_redacted": d["text"],
                "submitted_at": pd.Timestamp("2026-10-01")
                + pd.to_timedelta(rng.integers(0, 80 * 86400, n), unit="s"),
                "is_non_answer": False,
                "language": d["lang"],
                "tags": [["price"] if i % 3 else [] for i in range(n)],
            }
        )
        with open_warehouse(config.warehouse) as wh:
            for i in range(0, n, 20_000):
                wh.upsert(config.tables.enriched, rows.iloc[i : i + 20_000], key=["response_id"])
        print(json.dumps({"built": n}))
        return 0
    from pipeline.topics.window import fit_sample, topic_window, window_sample

    config = load_config(cfg)
    with open_warehouse(config.warehouse) as wh:
        wh.table_exists(config.tables.enriched)
        before = rss_mb()
        t0 = time.perf_counter()
        if args.mode == "whole":
            sample = fit_sample(topic_window(wh, config), config.topics.fit_sample)
        else:
            sample = window_sample(wh, config, config.topics.fit_sample)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "mode": args.mode,
                "sample": len(sample),
                "rss_before_mb": round(before),
                "peak_mb": round(peak),
                "added_mb": round(peak - before),
                "seconds": round(seconds, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
