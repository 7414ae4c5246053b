"""``feedback dashboard``: the CX workspace (Streamlit) on 127.0.0.1."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from pipeline.cli.options import add_config_and_warehouse


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Publish a snapshot if needed, then become the Streamlit server (until Ctrl-C or SIGTERM)."""
    from pipeline.config import load_config
    from pipeline.dashboard.server import dashboard_env, streamlit_command
    from pipeline.dashboard.snapshot import ensure_snapshot

    config = load_config(args.config, warehouse=args.warehouse)
    snap = ensure_snapshot(config)
    print(
        f"dashboard on http://{args.host}:{args.port} (reads {snap or config.warehouse}; Ctrl-C to stop)",
        flush=True,
    )
    command = streamlit_command(args.host, args.port)
    env = dashboard_env(args.config, config.warehouse)
    sys.stderr.flush()
    if hasattr(os, "execve"):
        # The server takes this process's place: one PID to stop, no child left behind.
        os.execve(command[0], command, env)
    return subprocess.call(command, env=env)  # pragma: no cover (platforms without exec)


def add_dashboard_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``feedback dashboard``."""
    d = sub.add_parser("dashboard", help="the CX workspace (web dashboard) on 127.0.0.1")
    add_config_and_warehouse(d)
    d.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    d.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    d.set_defaults(func=cmd_dashboard)
