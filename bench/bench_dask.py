"""A first run on the local path beside the same run on Dask workers (issue 20): rows/s, peak memory of the
flow process and of each worker, and the scheduler's overhead per batch.

Each round runs the three modes one after the other, in an order that rotates every round (so load on
the shared machine falls on every mode alike): ``local`` (the nightly Prefect flow, batches in process),
``dask1`` and ``dask2`` (the same flow with ``--dask tcp://...`` on a fresh LocalCluster of 1 or 2 worker
processes, one thread and one math-library thread each, started by this script before the run, so the
cluster's start is not timed, but the workers' model loading is). Each run is a fresh DuckDB file with
the same export loaded, then ``feedback enrich --json``.

rows/s is over the run's page loop (the flow's stage timings without model loading and the topic stage,
which run in the flow in every mode); the run's wall time is reported too. Overhead per task: a no-op
Prefect task through DaskTaskRunner, and a no-op plain dask task, round trips timed on the same cluster
(a batch is two tasks: prepare, embed + score).

Usage:
  .venv/bin/python bench/bench_dask.py --rows 2000 --rounds 3
Writes bench/results/dask.json. Reads ../shared/data/throughput_dev_texts.parquet (skips if absent).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_pipeline import DATA, survey_frame  # noqa: E402

FLOW_ONLY = {"load_models", "topics_fit", "write_topics", "worker_score"}


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def prepare(workdir: Path, rows: int, batch_size: int) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    export = workdir / "export.parquet"
    survey_frame(rows).to_parquet(export)
    cfg = workdir / "enrichment.yaml"
    cfg.write_text(
        json.dumps(
            {
                "warehouse": str(workdir / "wh.duckdb"),
                "state_dir": str(workdir / "state"),
                "report_dir": str(workdir / "report"),
                "model_store": {"path": str(workdir / "ms")},
                "tagger": {"taxonomy": str(ROOT / "configs" / "taxonomy.yaml")},
                "batch_size": batch_size,
            }
        )
    )
    load = (
        "import sys\nfrom pipeline.config import load_config\nfrom pipeline.ingest.load import load_export\n"
        "from pipeline.warehouse import open_warehouse\nc = load_config(sys.argv[1])\n"
        "with open_warehouse(c.warehouse, config=c) as wh: load_export(sys.argv[2], wh, c)\n"
    )
    subprocess.run([sys.executable, "-c", load, str(cfg), str(export)], check=True, env=env(), cwd=ROOT)
    return cfg


def run_enrich(cfg: Path, dask: str | None) -> dict:
    out = cfg.parent / "run.json"
    cmd = [sys.executable, "-m", "pipeline.cli", "enrich", "--config", str(cfg), "--json", str(out)]
    if dask:
        cmd += ["--dask", dask]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env(), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"enrich failed ({status}): {proc.stderr.read().decode()[-3000:]}")
    result = json.loads(out.read_text())
    timings = result["timings"]
    pages = sum(v for k, v in timings.items() if k not in FLOW_ONLY)
    return {
        "rows_in": result["rows_in"],
        "wall_s": round(wall, 2),
        "pages_s": round(pages, 2),
        "rows_per_s": round(result["rows_in"] / pages, 1),
        "flow_peak_mb": round(usage.ru_maxrss / 1024),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "load": os.getloadavg()[0],
    }


def worker_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def overhead(address: str, n: int = 20) -> dict:
    """Round trip of a no-op task: plain dask, and a Prefect task through DaskTaskRunner."""
    from distributed import Client
    from prefect import flow, task
    from prefect.cache_policies import NONE
    from prefect_dask import DaskTaskRunner

    with Client(address) as client:
        client.submit(int, 0, pure=False).result()
        t0 = time.perf_counter()
        for i in range(n):
            client.submit(int, i, pure=False).result()
        raw = (time.perf_counter() - t0) / n

    @task(cache_policy=NONE)
    def noop(i: int) -> int:
        return i

    @flow(task_runner=DaskTaskRunner(address=address))
    def probe() -> float:
        noop.submit(0).result()
        t0 = time.perf_counter()
        for i in range(n):
            noop.submit(i).result()
        return (time.perf_counter() - t0) / n

    return {"dask_task_ms": round(raw * 1000, 1), "prefect_task_ms": round(probe() * 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dask.json"))
    args = ap.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from distributed import Client, LocalCluster

    from pipeline.distributed import MATH_THREAD_ENV

    modes = ["local", "dask1", "dask2"]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    extra: dict = {"uptime_start": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    for r in range(args.rounds):
        order = modes[r % 3 :] + modes[: r % 3]
        for mode in order:
            cfg = prepare(Path(tempfile.mkdtemp(prefix=f"bdask_{mode}_")), args.rows, args.batch_size)
            if mode == "local":
                res = run_enrich(cfg, None)
            else:
                n = int(mode[-1])
                kw = {"n_workers": n, "threads_per_worker": 1, "processes": True, "host": "127.0.0.1"}
                with LocalCluster(**kw, dashboard_address=None, env=MATH_THREAD_ENV) as cluster:
                    res = run_enrich(cfg, cluster.scheduler_address)
                    with Client(cluster) as client:
                        res["worker_peak_mb"] = sorted(round(v) for v in client.run(worker_peak_mb).values())
                    if r == 0 and n == 2:
                        extra["overhead_per_task"] = overhead(cluster.scheduler_address)
            runs[mode].append(res)
            print(r, mode, {k: v for k, v in res.items() if k != "timings"}, flush=True)
    med = {m: statistics.median(x["rows_per_s"] for x in runs[m]) for m in modes}
    pairs = [b["rows_per_s"] / a["rows_per_s"] for a, b in zip(runs["dask1"], runs["dask2"], strict=True)]
    summary = {
        "rows": args.rows,
        "batch_size": args.batch_size,
        "median_rows_per_s": med,
        "dask2_over_dask1_median_of_rounds": round(statistics.median(pairs), 2),
        "dask2_over_dask1_per_round": [round(p, 2) for p in pairs],
        "dask1_over_local": round(med["dask1"] / med["local"], 2),
        **extra,
        "uptime_end": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
