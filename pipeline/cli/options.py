"""What every ``feedback`` sub-command shares: its option blocks (one helper per block), the config and
text options read from them, and the command's output (a line on stdout, a JSON file).

Only argument parsing and output: the work is the library's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipeline.errors import FeedbackError

CONFIG_HELP = "enrichment YAML (default: configs/enrichment.yaml)"
WAREHOUSE_HELP = "DuckDB file path or SQLAlchemy URL"
EMBEDDER_HELP = "embedder name or alias (default: the config's)"
EMBEDDINGS_HELP = "row-aligned .npy of the file's embeddings"
OUT_HELP = "output .parquet or .csv"


def add_config(parser: argparse.ArgumentParser, help: str = CONFIG_HELP) -> None:
    """``--config``: the enrichment YAML."""
    parser.add_argument("--config", default=None, help=help)


def add_warehouse(parser: argparse.ArgumentParser, help: str = WAREHOUSE_HELP) -> None:
    """``--warehouse``: a DuckDB file or an SQLAlchemy URL (overrides the config's)."""
    parser.add_argument("--warehouse", default=None, help=help)


def add_config_and_warehouse(parser: argparse.ArgumentParser, warehouse: bool = True) -> None:
    """``--config`` and (unless ``warehouse`` is false) ``--warehouse``."""
    add_config(parser)
    if warehouse:
        add_warehouse(parser)


def add_text_column(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--text-column``: the column of texts of ``--data`` (default ``text``)."""
    parser.add_argument("--text-column", default="text", help=help)


def add_embedder(parser: argparse.ArgumentParser, help: str = EMBEDDER_HELP) -> None:
    """``--embedder``: a registered embedder name or alias instead of the config's."""
    parser.add_argument("--embedder", default=None, help=help)


def add_embeddings(parser: argparse.ArgumentParser) -> None:
    """``--embeddings``: a row-aligned ``.npy`` of the file's vectors (nothing is encoded then)."""
    parser.add_argument("--embeddings", default=None, help=EMBEDDINGS_HELP)


def add_json(
    parser: argparse.ArgumentParser, help: str, required: bool = False, metavar: str | None = None
) -> None:
    """``--json``: where the command writes its result as JSON."""
    parser.add_argument("--json", required=required, default=None, help=help, metavar=metavar)


def add_out(parser: argparse.ArgumentParser, help: str = OUT_HELP) -> None:
    """``--out`` (required): the output file."""
    parser.add_argument("--out", required=True, help=help)


def config_of(args: argparse.Namespace) -> Any:
    """The enrichment config of ``--config``, with ``--warehouse`` when the command has it."""
    from pipeline.config import load_config

    return load_config(args.config, warehouse=getattr(args, "warehouse", None))


def prepare_of(args: argparse.Namespace) -> Any:
    """The run's text options from ``--config``: files are prepared as the nightly run prepares answers."""
    from pipeline.prepare import prepare_config_of

    return prepare_config_of(config_of(args))


def key_values(pairs: list[str] | None, option: str = "--param") -> dict[str, Any]:
    """``KEY=VALUE`` settings (``--param cv=3``) as a dict; values are read as JSON when they parse."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise FeedbackError(f"{option} expects KEY=VALUE, got {pair!r} (e.g. {option} cv=3)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def echo(message: str = "") -> None:
    """One line of the command's output on stdout."""
    sys.stdout.write(message + "\n")


def write_json(path: str | Path | None, payload: Any, end: str = "", **dumps: Any) -> None:
    """Write ``payload`` as JSON (indented by 2, then ``end``) to ``path``, creating its folder; nothing
    when ``path`` is None. ``dumps`` go to :func:`json.dumps` (``ensure_ascii``, ``default``)."""
    if not path:
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=2, **dumps) + end, encoding="utf-8")
