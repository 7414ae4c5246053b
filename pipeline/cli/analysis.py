"""``feedback status``, ``feedback followups ...`` and ``feedback correct ...``: the analysis layer's commands.

* ``feedback status [--json OUT]``: the last runs and the health checks (:mod:`pipeline.analysis.health`);
  exit 0 when every check passes, 1 when one fails.
* ``feedback followups export --out FILE.csv``: the open follow-up queue as CSV.
* ``feedback followups set RESPONSE_ID --who NAME [--status S] [--owner O] [--note N]``.
* ``feedback correct themes RESPONSE_ID --who NAME THEME...`` (no theme: none applies) and
  ``feedback correct sentiment RESPONSE_ID --who NAME LABEL``: corrections that stick.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline.cli.options import add_config_and_warehouse


def _config(args: argparse.Namespace) -> Any:
    from pipeline.config import load_config

    return load_config(args.config, warehouse=args.warehouse)


def _fmt(value: Any) -> str:
    import pandas as pd

    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "-"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def cmd_status(args: argparse.Namespace) -> int:
    """Print the last runs and the checks; 1 when a check fails."""
    from dataclasses import asdict

    from pipeline.analysis.health import pipeline_status
    from pipeline.warehouse.reading import open_for_reading

    config = _config(args)
    with open_for_reading(config.warehouse) as wh:
        report = pipeline_status(wh, config=config, n_runs=args.runs)
    print("Last runs:")
    if report.runs.empty:
        print("  (none)")
    for r in report.runs.itertuples(index=False):
        print(
            f"  {r.run_id}  {_fmt(r.flow):<10} {_fmt(r.status):<9} {_fmt(r.started_at)}  "
            f"in {_fmt(r.rows_in)} enriched {_fmt(r.rows_enriched)} quarantined {_fmt(r.rows_quarantined)}"
        )
    print("Checks:")
    for c in report.checks:
        print(f"  {c.status:<7} {c.name:<14} {c.detail}")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"ok": report.ok, "checks": [asdict(c) for c in report.checks]}
        out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if report.ok else 1


def cmd_followups_export(args: argparse.Namespace) -> int:
    """Write the open queue as CSV."""
    from pipeline.analysis.followups import export_open
    from pipeline.warehouse.reading import open_for_reading

    config = _config(args)
    with open_for_reading(config.warehouse) as wh:
        n = export_open(wh, args.out, config=config)
    print(f"{n} open follow-up(s) written to {args.out}")
    return 0


def cmd_followups_set(args: argparse.Namespace) -> int:
    """Change a follow-up's status, owner or note."""
    from pipeline.analysis.followups import set_followup
    from pipeline.warehouse import open_warehouse

    config = _config(args)
    with open_warehouse(config.warehouse, config=config) as wh:
        row = set_followup(
            wh,
            args.response_id,
            who=args.who,
            status=args.status,
            owner=args.owner,
            note=args.note,
            config=config,
        )
    print(f"{row['response_id']}: {row['status']} (owner {_fmt(row['owner'])}) by {row['updated_by']}")
    return 0


def cmd_correct(args: argparse.Namespace) -> int:
    """Record a human correction of an answer's themes or sentiment."""
    from pipeline.analysis.corrections import correct_sentiment, correct_themes
    from pipeline.warehouse import open_warehouse

    config = _config(args)
    with open_warehouse(config.warehouse, config=config) as wh:
        if args.what == "themes":
            row = correct_themes(wh, args.response_id, args.values, who=args.who, config=config)
            print(f"{args.response_id}: themes set to {row['tags'] or '(none)'} by {row['labeller']}")
        else:
            row = correct_sentiment(
                wh, args.response_id, args.values[0], who=args.who, note=args.note, config=config
            )
            print(f"{args.response_id}: sentiment set to {row['sentiment_label']} by {row['labeller']}")
    return 0


def add_analysis_commands(subparsers: Any) -> None:
    """Add ``status``, ``followups`` and ``correct`` to the CLI's sub-parsers."""
    s = subparsers.add_parser("status", help="last runs and health checks (exit 1 when the pipeline is sick)")
    add_config_and_warehouse(s)
    s.add_argument("--runs", type=int, default=10, help="runs listed")
    s.add_argument("--json", default=None, metavar="OUT", help="also write the checks as JSON here")
    s.set_defaults(func=cmd_status)

    f = subparsers.add_parser("followups", help="the close-the-loop queue")
    fsub = f.add_subparsers(dest="followups_command", required=True)
    e = fsub.add_parser("export", help="write the open queue (new, contacted) as CSV")
    add_config_and_warehouse(e)
    e.add_argument("--out", required=True, help="CSV file to write")
    e.set_defaults(func=cmd_followups_export)
    u = fsub.add_parser("set", help="change a follow-up's status, owner or note")
    add_config_and_warehouse(u)
    u.add_argument("response_id")
    u.add_argument("--who", required=True, help="who makes the change")
    u.add_argument("--status", choices=["new", "contacted", "resolved", "won't fix"], default=None)
    u.add_argument("--owner", default=None)
    u.add_argument("--note", default=None)
    u.set_defaults(func=cmd_followups_set)

    c = subparsers.add_parser(
        "correct", help="correct an answer's themes or sentiment (sticks over re-enrichment)"
    )
    csub = c.add_subparsers(dest="what", required=True)
    t = csub.add_parser("themes", help="set the themes of an answer (none given: no theme applies)")
    add_config_and_warehouse(t)
    t.add_argument("response_id")
    t.add_argument("values", nargs="*", metavar="THEME")
    t.add_argument("--who", required=True)
    t.set_defaults(func=cmd_correct, note=None)
    m = csub.add_parser("sentiment", help="set the sentiment of an answer")
    add_config_and_warehouse(m)
    m.add_argument("response_id")
    m.add_argument("values", nargs=1, metavar="LABEL", choices=["negative", "neutral", "positive"])
    m.add_argument("--who", required=True)
    m.add_argument("--note", default=None)
    m.set_defaults(func=cmd_correct)
