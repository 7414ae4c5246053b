"""``feedback demo | enrich | serve | report | forget | embed``: the run-level commands."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from pipeline.errors import FeedbackError


class _Bar:
    """A one-line progress bar on stderr for long steps."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.t0 = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        rate = done / max(time.perf_counter() - self.t0, 1e-9)
        width = 30
        fill = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {rate:,.0f}/s")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _run_flow(
    config_path: str | None, warehouse: str | None, full: bool, use_prefect: bool, dask: str | None = None
) -> dict:
    if use_prefect:
        from pipeline.deployments import NIGHTLY_ENTRYPOINT, flow_of

        # The nightly deployment's flow, through its entrypoint (flows/ is the app layer: the library
        # loads it as Prefect loads a deployment's entrypoint, it does not import it by name).
        nightly_enrichment = flow_of(NIGHTLY_ENTRYPOINT)
        # A manual run is refused at once when another run holds the warehouse (exit 2, naming it).
        kw = {"dask": dask} if dask else {}  # the batches on a Dask cluster (pipeline.distributed)
        return nightly_enrichment(
            config_path=config_path, warehouse=warehouse, full=full, wait_for_lock_s=0, **kw
        )
    from pipeline.config import load_config
    from pipeline.runner import run_enrichment

    config = load_config(config_path, warehouse=warehouse)
    if dask or config.executor.dask is not None:
        raise FeedbackError("a Dask executor (--dask, executor.dask) runs through Prefect: drop --no-prefect")
    s = run_enrichment(config, full=full, progress=_Bar("embedding"))
    return {
        "run_id": s.run_id,
        "rows_in": s.rows_in,
        "rows_enriched": s.rows_enriched,
        "rows_quarantined": s.rows_quarantined,
        "rows_removed": s.rows_removed,
        "quarantine_reasons": s.quarantine_reasons,
        "versions": s.versions,
        "timings": s.timings,
        "alerts": s.alerts,
        "warehouse": config.warehouse,
    }


def _print_run(result: dict) -> None:
    print(
        f"run {result['run_id']}: {result['rows_in']} rows in, {result['rows_enriched']} enriched, "
        f"{result['rows_quarantined']} quarantined {result['quarantine_reasons'] or ''}"
    )


def cmd_demo(args: argparse.Namespace) -> int:
    """Sample survey -> DuckDB -> nightly flow -> report."""
    from pipeline.config import load_config
    from pipeline.demo.sample import generate_survey, write_export
    from pipeline.ingest.load import load_export
    from pipeline.runner import build_report
    from pipeline.warehouse import open_warehouse

    config = load_config(args.config, warehouse=args.warehouse)
    state = Path(config.state_dir)
    export = write_export(generate_survey(n=args.rows, seed=args.seed), state / "sample_survey.parquet")
    with open_warehouse(config.warehouse, config=config) as wh:
        loaded = load_export(export, wh, config)
    print(
        f"sample survey: {loaded.rows_read} rows generated ({loaded.exact_duplicates} repeated submissions "
        f"collapsed) -> {export}"
    )
    result = _run_flow(args.config, config.warehouse, False, not args.no_prefect)
    _print_run(result)
    summary, html = build_report(config, args.report_dir)
    from pipeline.report import format_summary

    print()
    print(format_summary(summary))
    print()
    print("Where everything went:")
    print(f"  warehouse (DuckDB): {config.warehouse}")
    print("     tables: survey_responses, feedback_enriched, feedback_tags, feedback_sentences, topics,")
    print("             topic_history, alerts, quarantine, pipeline_runs, embedding_cache, model_files,")
    print("             model_pointers, warehouse_meta, pipeline_lock")
    print(f"  sample export:      {export}")
    print(f"  HTML report:        {html}")
    print(f"  summary JSON:       {html.parent / 'summary.json'}")
    print(f"Next: feedback enrich --warehouse {config.warehouse}   (incremental: adds only new responses)")
    return 0


def cmd_enrich(args: argparse.Namespace) -> int:
    """One incremental enrichment run (optionally loading an export first)."""
    from pipeline.config import load_config

    config = load_config(args.config, warehouse=args.warehouse)
    if args.source:
        from pipeline.ingest.load import load_export
        from pipeline.warehouse import open_warehouse

        with open_warehouse(config.warehouse, config=config) as wh:
            for src in args.source:
                rep = load_export(src, wh, config)
                print(
                    f"loaded {rep.rows_loaded} rows from {src} into {config.tables.source} "
                    f"({rep.exact_duplicates} exact and {rep.conflicting_duplicates} conflicting repeats collapsed)"
                    + (f"; columns renamed for the warehouse: {rep.renamed}" if rep.renamed else "")
                )
    result = _run_flow(args.config, config.warehouse, args.full, not args.no_prefect, args.dask)
    _print_run(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve every deployment of prefect.yaml on this box (blocks)."""
    from pipeline.deployments import declared_crons, serve_all

    where = os.environ.get("PREFECT_API_URL") or f"a local Prefect server on http://127.0.0.1:{args.port}"
    crons = {**declared_crons(), "nightly": args.cron}
    listed = ", ".join(f"'{name}' ({cron})" for name, cron in crons.items())
    print(f"serving deployments {listed} with {where}; Ctrl-C to stop", flush=True)
    serve_all(args.config, args.warehouse, cron=args.cron, port=args.port)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Root-cause report: HTML with plots, summary in the terminal."""
    from pipeline.config import load_config
    from pipeline.report import format_summary
    from pipeline.runner import build_report

    config = load_config(args.config, warehouse=args.warehouse)
    summary, html = build_report(config, args.out)
    print(format_summary(summary))
    print(f"\nHTML report: {html}")
    if args.json:
        Path(args.json).write_text(
            (html.parent / "summary.json").read_text(encoding="utf-8"), encoding="utf-8"
        )
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    """Erase people's answers from every table the pipeline writes, and record the erasure."""
    from pipeline.config import load_config
    from pipeline.erasure import forget
    from pipeline.warehouse import open_warehouse
    from pipeline.warehouse.lock import default_holder, run_lock

    if not args.response_id and not args.customer_id:
        raise FeedbackError("feedback forget needs --response-id ID... and/or --customer-id ID...")
    config = load_config(args.config, warehouse=args.warehouse)
    with (
        open_warehouse(config.warehouse, config=config) as wh,
        run_lock(wh, holder=default_holder("forget"), table=config.tables.lock),
    ):
        report = forget(wh, config, args.response_id or [], args.customer_id or [], who=args.who)
    print(
        f"erased {report.responses} response(s) ({report.erasure_id}): "
        + (", ".join(f"{t} {n}" for t, n in report.rows.items()) or "nothing stored")
    )
    for path in report.stale_reports:
        print(
            f"warning: {path} was written before the erasure and quotes an erased answer: delete it or "
            "run `feedback report` again",
            file=sys.stderr,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_dict(), indent=2), encoding="utf-8")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    """Embed a file's texts with the default (or named) encoder."""
    import numpy as np
    import pandas as pd

    from pipeline.config import load_config
    from pipeline.embed import build_embedder
    from pipeline.ingest.source import read_export

    config = load_config(args.config)
    name = args.embedder or config.embedder.name
    options = {} if args.embedder else config.embedder.options
    df = read_export(args.data)
    if args.text_column not in df.columns:
        raise FeedbackError(
            f"{args.data}: no column {args.text_column!r}; found {list(df.columns)}. Use --text-column."
        )
    texts = df[args.text_column].fillna("").astype(str).tolist()
    embedder = build_embedder(name, **options)
    t0 = time.perf_counter()
    vectors = embedder.embed(texts, progress=_Bar("embedding"))
    seconds = time.perf_counter() - t0
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, vectors)
    else:
        ids = df["id"].astype(str) if "id" in df.columns else pd.Series(range(len(df))).astype(str)
        pd.DataFrame({"id": ids, "embedding": list(vectors)}).to_parquet(out)
    print(
        f"{len(texts)} texts -> {out} ({embedder.model_id}, dim {vectors.shape[1]}, "
        f"{len(texts) / max(seconds, 1e-9):,.0f} texts/s)"
    )
    return 0
