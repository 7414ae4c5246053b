"""Start the Streamlit server on the dashboard app (``feedback dashboard``).

The app runs in a child process (``python -m streamlit run pipeline/dashboard/app.py``) headless, bound to
127.0.0.1 unless told otherwise, with Streamlit's usage statistics off and nothing fetched from the
network. The config reaches the app through environment variables (Streamlit passes script arguments,
but environment variables also reach every rerun of every session).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
ENV_CONFIG = "FEEDBACK_DASHBOARD_CONFIG"
ENV_WAREHOUSE = "FEEDBACK_DASHBOARD_WAREHOUSE"


def streamlit_command(host: str, port: int) -> list[str]:
    """The command line that serves the app."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",
        f"--server.address={host}",
        f"--server.port={port}",
        "--browser.gatherUsageStats=false",
        "--server.fileWatcherType=none",
        "--server.runOnSave=false",
        "--global.developmentMode=false",
        "--client.toolbarMode=minimal",
        "--client.showErrorDetails=false",
        "--theme.base=light",
    ]


def dashboard_env(config_path: str | None, warehouse: str) -> dict[str, str]:
    """The environment of the server process: the config and the warehouse the app opens."""
    env = dict(os.environ)
    env[ENV_WAREHOUSE] = warehouse
    if config_path:
        env[ENV_CONFIG] = str(Path(config_path).resolve())
    else:
        env.pop(ENV_CONFIG, None)
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    # The app imports the package by name: make sure the child finds the same one as this process.
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env
