"""``feedback tagger|sentiment|topics list|promote``: the model store's commands, shared by every family.

Each family's ``promote`` measures the candidate and the promoted version on the same evaluation (its
own function) and hands both reports to :meth:`pipeline.model_store.ModelStore.promote`; listing and the
decision's output are the same for every family.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import Any

from pipeline.cli.options import add_config, add_json, add_warehouse, echo, write_json
from pipeline.model_gates import GATES, MAX_DROP_POINTS, PromotionDecision
from pipeline.model_store import ModelStore, open_store


def add_store_options(parser: argparse.ArgumentParser, family: str) -> None:
    """Where the family's store is: ``--registry`` (a folder), else the config's ``model_store``."""
    parser.add_argument(
        "--registry", default=None, help=f"a {family} registry folder (default: the config's model_store)"
    )
    if not any("--config" in a.option_strings for a in parser._actions):
        add_config(parser)
    if not any("--warehouse" in a.option_strings for a in parser._actions):
        add_warehouse(parser)


def add_promote_options(parser: argparse.ArgumentParser, family: str) -> None:
    """The options every family's ``promote`` takes."""
    metrics = ", ".join(m.name for m in GATES[family])
    parser.add_argument("--force", action="store_true", help="promote even when the gate refuses")
    parser.add_argument(
        "--max-drop",
        type=float,
        default=MAX_DROP_POINTS,
        help=f"largest worsening in points of any gate metric ({metrics}; default {MAX_DROP_POINTS:g})",
    )
    add_json(parser, "write the decision and both reports here")
    add_store_options(parser, family)


@contextlib.contextmanager
def store_of(args: argparse.Namespace, family: str) -> Iterator[ModelStore]:
    """The family's store from ``--registry`` or the config (the warehouse is opened when it holds it)."""
    from pipeline.config import load_config

    config = load_config(getattr(args, "config", None), warehouse=getattr(args, "warehouse", None))
    registry = getattr(args, "registry", None)
    if registry is None and family in config.model_store.in_warehouse:
        from pipeline.warehouse import open_warehouse

        with open_warehouse(config.warehouse, config=config) as wh:
            yield open_store(config, family, wh)
        return
    yield open_store(config, family, registry=registry)


def cmd_list(args: argparse.Namespace) -> int:
    """List a family's versions (``*`` marks the promoted one) with their own metrics."""
    family = args.family
    with store_of(args, family) as store:
        rows = store.versions()
        where = store.describe()
    if not rows:
        echo(f"no {family} versions in {where} yet (feedback {family} train, or a nightly run for topics)")
    for r in rows:
        metrics = r.get("metrics") or {}
        shown = "  ".join(
            f"{m.name} {float(metrics[m.name]):.3f}"
            for key in (family, f"{family}-self-trained")
            for m in GATES.get(key, ())
            if isinstance(metrics.get(m.name), int | float)
        )
        rows_n = (r.get("training_data") or {}).get("rows")
        echo(
            f"{'*' if r['promoted'] else ' '} {r['version']}  {r.get('mode')}  {r.get('created_at')}  "
            f"{'' if rows_n is None else f'{rows_n} rows  '}{shown}"
        )
    return 0


def report_decision(decision: PromotionDecision, reports: dict[str, Any], json_path: str | None) -> int:
    """Print a promotion decision (exit 0 promoted, 1 refused) and write it with both reports as JSON."""
    write_json(json_path, {"decision": decision.as_dict(), "reports": reports}, default=str)
    if decision.promoted:
        echo(f"promoted {decision.candidate_version}: {decision.reason} -> {decision.pointer}")
        return 0
    echo(f"refused {decision.candidate_version}: {decision.reason}")
    return 1


def add_list_command(sub: Any, family: str) -> None:
    """Register ``feedback <family> list``."""
    ls = sub.add_parser("list", help=f"list the {family} versions of the model store")
    add_store_options(ls, family)
    ls.set_defaults(func=cmd_list, family=family)
