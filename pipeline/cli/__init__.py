"""The ``feedback`` command line: its names, options and outputs are a contract that others rely on.

The package only parses arguments and calls the library: ``run`` (demo, enrich, serve, report, forget,
embed), ``check``, ``topics``, ``sentiment``, ``tagger``, ``taxonomy``, ``store`` (every family's list
and promote), ``options`` (the option blocks they share). ``python -m pipeline.cli`` runs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from pathlib import Path

from pydantic import ValidationError

from pipeline.cli.options import add_config_and_warehouse, add_embedder, add_json, add_text_column
from pipeline.cli.run import cmd_demo, cmd_embed, cmd_enrich, cmd_forget, cmd_report, cmd_serve
from pipeline.errors import FeedbackError, first_line


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``feedback``."""
    p = argparse.ArgumentParser(prog="feedback", description="Survey feedback enrichment pipeline.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    common = add_config_and_warehouse

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
    add_json(e, "write the run summary as JSON")
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
    add_json(r, "also write the summary JSON here")
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
    add_json(f, "write what was erased as JSON")
    f.set_defaults(func=cmd_forget)

    m = sub.add_parser("embed", help="embed a file's texts with the default encoder")
    common(m, warehouse=False)
    m.add_argument("--data", required=True, help="CSV/Parquet file")
    m.add_argument("--out", required=True, help="output .npy (matrix) or .parquet (id, embedding)")
    add_text_column(m)
    add_embedder(m, "registered name or alias (default: the config's)")
    m.set_defaults(func=cmd_embed)
    # Sub-command groups live in their own modules (each imports its heavy parts lazily).
    from pipeline.cli.analysis import add_analysis_commands
    from pipeline.cli.check import add_check_commands
    from pipeline.cli.dashboard import add_dashboard_commands
    from pipeline.cli.sentiment import add_sentiment_commands
    from pipeline.cli.tagger import add_tagger_commands
    from pipeline.cli.taxonomy import add_taxonomy_commands
    from pipeline.cli.topics import add_topics_commands

    add_check_commands(sub)
    add_topics_commands(sub)
    add_sentiment_commands(sub)
    add_tagger_commands(sub)
    add_taxonomy_commands(sub)
    add_analysis_commands(sub)
    add_dashboard_commands(sub)
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
