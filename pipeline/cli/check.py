"""``feedback check``: verify the warehouse invariants (see :mod:`pipeline.check`).

Prints ``ok: <counts>`` and exits 0, or prints one ``broken: <message>`` line per broken invariant on
stderr and exits 2. Invariants skipped (e.g. while a run is still writing) are printed as ``skipped:``
lines. ``--json OUT`` writes the whole result. A DuckDB file is opened read-only.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.cli.options import add_config_and_warehouse, add_json, write_json


def cmd_check(args: argparse.Namespace) -> int:
    """Check the warehouse of ``--config`` / ``--warehouse``; 0 when consistent, 2 when broken."""
    from pipeline.check import check_warehouse, format_counts
    from pipeline.config import load_config
    from pipeline.warehouse.reading import open_for_reading

    config = load_config(args.config, warehouse=args.warehouse)
    with open_for_reading(config.warehouse) as wh:
        result = check_warehouse(wh, config)
    write_json(args.json, result.to_dict(), end="\n", ensure_ascii=False)
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
    add_config_and_warehouse(c)
    add_json(c, "also write the result as JSON here", metavar="OUT")
    c.set_defaults(func=cmd_check)
