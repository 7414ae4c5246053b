"""``feedback check``: verify the warehouse invariants (see :mod:`pipeline.check`).

Prints ``ok: <counts>`` and exits 0, or prints one ``broken: <message>`` line per broken invariant on
stderr and exits 2. Invariants skipped (e.g. while a run is still writing) are printed as ``skipped:``
lines. ``--json OUT`` writes the whole result. A DuckDB file is opened read-only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_check(args: argparse.Namespace) -> int:
    """Check the warehouse of ``--config`` / ``--warehouse``; 0 when consistent, 2 when broken."""
    from pipeline.check import check_warehouse, format_counts
    from pipeline.config import load_config
    from pipeline.warehouse.reading import open_for_reading

    config = load_config(args.config, warehouse=args.warehouse)
    with open_for_reading(config.warehouse) as wh:
        result = check_warehouse(wh, config)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for reason in result.skipped:
        print(f"skipped: {reason}")
    if result.ok:
        print(f"ok: {format_counts(result.counts)}")
        return 0
    for violation in result.violations:
        print(f"broken: {violation.message}", file=sys.stderr)
    return 2


def add_check_commands(subparsers: Any) -> None:
    """Add ``feedback check`` to the CLI's sub-parsers."""
    c = subparsers.add_parser("check", help="verify the warehouse invariants (exit 2 when broken)")
    c.add_argument("--config", default=None, help="enrichment YAML (default: configs/enrichment.yaml)")
    c.add_argument("--warehouse", default=None, help="DuckDB file path or SQLAlchemy URL")
    c.add_argument("--json", default=None, metavar="OUT", help="also write the result as JSON here")
    c.set_defaults(func=cmd_check)
