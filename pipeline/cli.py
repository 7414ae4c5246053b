"""The ``feedback`` command line: its names, options and outputs are a contract that others rely on."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

from pydantic import ValidationError

from pipeline.errors import FeedbackError, first_line

log = logging.getLogger("feedback")


def _setup(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Quiet chatty libraries; keep Prefect's own run logs.
    for name in ("numba", "urllib3", "httpx", "matplotlib", "sentence_transformers", "BERTopic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # A loaded machine can take longer than Prefect's default 20 s to start its temporary server.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


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
        from flows.nightly_enrichment import nightly_enrichment

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
    from pipeline.runner import build_report, load_export
    from pipeline.sample import generate_survey, write_export
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
    from pipeline.analysis import format_summary

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
        from pipeline.runner import load_export
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
    from flows.serve import declared_crons, serve_all

    where = os.environ.get("PREFECT_API_URL") or f"a local Prefect server on http://127.0.0.1:{args.port}"
    crons = {**declared_crons(), "nightly": args.cron}
    listed = ", ".join(f"'{name}' ({cron})" for name, cron in crons.items())
    print(f"serving deployments {listed} with {where}; Ctrl-C to stop", flush=True)
    serve_all(args.config, args.warehouse, cron=args.cron, port=args.port)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Root-cause report: HTML with plots, summary in the terminal."""
    from pipeline.analysis import format_summary
    from pipeline.config import load_config
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
    from pipeline.source import read_export

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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``feedback``."""
    p = argparse.ArgumentParser(prog="feedback", description="Survey feedback enrichment pipeline.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, warehouse: bool = True) -> None:
        sp.add_argument("--config", default=None, help="enrichment YAML (default: configs/enrichment.yaml)")
        if warehouse:
            sp.add_argument("--warehouse", default=None, help="DuckDB file path or SQLAlchemy URL")

    d = sub.add_parser("demo", help="bundled sample survey -> DuckDB -> nightly flow -> report")
    common(d)
    d.add_argument("--rows", type=int, default=2400, help="sample size (default 2400)")
    d.add_argument("--seed", type=int, default=42)
    d.add_argument("--report-dir", default=None)
    d.add_argument("--no-prefect", action="store_true", help="run the steps without Prefect")
    d.set_defaults(func=cmd_demo)

    e = sub.add_parser("enrich", help="one incremental enrichment run")
    common(e)
    e.add_argument("--source", nargs="+", default=None, help="CSV/Parquet export(s) to upsert first")
    e.add_argument(
        "--full",
        action="store_true",
        help="kept for compatibility: every run checks every source row by its content",
    )
    e.add_argument("--no-prefect", action="store_true", help="run the steps without Prefect")
    e.add_argument(
        "--dask",
        default=None,
        metavar="ADDRESS",
        help="run the batches on a Dask cluster: tcp://HOST:PORT, or local:N worker processes",
    )
    e.add_argument("--json", default=None, help="write the run summary as JSON")
    e.set_defaults(func=cmd_enrich)

    s = sub.add_parser(
        "serve", help="serve every deployment of prefect.yaml (nightly and weekly) on this box"
    )
    common(s)
    s.add_argument("--cron", default="0 2 * * *", help="the nightly schedule (default: 02:00 every day)")
    s.add_argument(
        "--port",
        type=int,
        default=4200,
        help="port of the local Prefect server (when PREFECT_API_URL is unset)",
    )
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("report", help="root-cause report (HTML + terminal summary)")
    common(r)
    r.add_argument("--out", default=None, help="report folder (default: report_dir of the config)")
    r.add_argument("--json", default=None, help="also write the summary JSON here")
    r.set_defaults(func=cmd_report)

    f = sub.add_parser("forget", help="erase people's answers from every table (right to be forgotten)")
    common(f)
    f.add_argument("--response-id", nargs="+", default=None, metavar="ID", help="response ids to erase")
    f.add_argument(
        "--customer-id",
        nargs="+",
        default=None,
        metavar="ID",
        help="erase every answer of these customers (column source.customer_id, default customer_id)",
    )
    f.add_argument("--who", default=None, help="who asked, recorded (default: the OS user)")
    f.add_argument("--json", default=None, help="write what was erased as JSON")
    f.set_defaults(func=cmd_forget)

    m = sub.add_parser("embed", help="embed a file's texts with the default encoder")
    common(m, warehouse=False)
    m.add_argument("--data", required=True, help="CSV/Parquet file")
    m.add_argument("--out", required=True, help="output .npy (matrix) or .parquet (id, embedding)")
    m.add_argument("--text-column", default="text")
    m.add_argument("--embedder", default=None, help="registered name or alias (default: the config's)")
    m.set_defaults(func=cmd_embed)
    # Sub-command groups live in their own modules (each imports its heavy parts lazily).
    from pipeline.cli_check import add_check_commands
    from pipeline.cli_sentiment import add_sentiment_commands
    from pipeline.cli_tagger import add_tagger_commands
    from pipeline.cli_taxonomy import add_taxonomy_commands
    from pipeline.cli_topics import add_topics_commands

    add_check_commands(sub)
    add_topics_commands(sub)
    add_sentiment_commands(sub)
    add_tagger_commands(sub)
    add_taxonomy_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``feedback``."""
    args = build_parser().parse_args(argv)
    _setup(args.verbose)
    try:
        return int(args.func(args) or 0)
    except FeedbackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (
        FileNotFoundError,
        IsADirectoryError,
        NotADirectoryError,
        FileExistsError,
        PermissionError,
    ) as exc:
        # A path given on the command line that cannot be read or written: one line, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings given on the command line (--param KEY=VALUE and the like)
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"error: invalid {exc.title} settings: {problems}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, or input nothing above foresaw: still one line unless asked
        if os.environ.get("FEEDBACK_TRACEBACK"):
            raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(
            f"error: unexpected {type(exc).__name__}: {first_line(exc)} (at {Path(where.filename).name}:"
            f"{where.lineno}). Set FEEDBACK_TRACEBACK=1 for the traceback, and please report it.",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
