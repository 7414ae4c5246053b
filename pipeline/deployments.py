"""The deployments of ``prefect.yaml``, and serving them on one box.

``prefect.yaml`` declares each deployment's name, schedule and entrypoint (``flows/x.py:function``). The
library reaches a flow only through such an entrypoint (:func:`flow_of`, :data:`NIGHTLY_ENTRYPOINT`), the
way Prefect itself loads one: ``pipeline`` never imports the app layer (``flows/``) by name, and
``import pipeline.deployments`` imports no Prefect (it is imported inside :func:`serve_all` and by the
flows themselves).

:func:`serve_all` serves every deployment: against ``PREFECT_API_URL`` when it is set; otherwise a
Prefect server is started on 127.0.0.1 for the lifetime of the command (UI and API at
http://127.0.0.1:PORT) and stopped, by its PID, when serving ends.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def wait_healthy(api_url: str, timeout: float = 180.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until ``{api_url}/health`` answers, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f"the Prefect server exited with code {proc.returncode} before becoming healthy"
            )
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise TimeoutError(f"the Prefect server at {api_url} did not become healthy within {timeout:.0f} s")


def start_local_server(host: str = "127.0.0.1", port: int = 4200) -> tuple[subprocess.Popen, str]:
    """Start ``prefect server start`` on loopback; returns the process and the API URL."""
    prefect = Path(sys.executable).parent / "prefect"
    cmd = [str(prefect), "server", "start", "--host", host, "--port", str(port)]
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    api = f"http://{host}:{port}/api"
    try:
        wait_healthy(api, proc=proc)
    except Exception:
        stop(proc)
        raise
    log.info("Prefect server started (pid %d): %s", proc.pid, api.removesuffix("/api"))
    return proc, api


def stop(proc: subprocess.Popen) -> None:
    """Stop a process we started, by its PID."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


PREFECT_YAML = Path(__file__).resolve().parent.parent / "prefect.yaml"

NIGHTLY_ENTRYPOINT = "flows/nightly_enrichment.py:nightly_enrichment"
"""The nightly deployment's entrypoint as prefect.yaml declares it (``tests/test_flow.py`` checks that they
agree). ``feedback enrich`` and ``feedback demo`` run it through :func:`flow_of` without reading
prefect.yaml, so they need no prefect.yaml next to an installed package."""


def declared_deployments() -> list[dict]:
    """The deployments declared in prefect.yaml (one place for names, entrypoints and schedules)."""
    import yaml

    return list(yaml.safe_load(PREFECT_YAML.read_text(encoding="utf-8"))["deployments"])


def declared_crons() -> dict[str, str]:
    """The cron of each deployment declared in prefect.yaml."""
    return {d["name"]: d["schedules"][0]["cron"] for d in declared_deployments() if d.get("schedules")}


def flow_of(entrypoint: str) -> Any:
    """The flow object of a prefect.yaml entrypoint (``flows/x.py:function``)."""
    import importlib

    path, _, name = entrypoint.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def serve_all(
    config_path: str | None,
    warehouse: str | None,
    cron: str | None = None,
    port: int = 4200,
) -> None:
    """Serve every deployment of prefect.yaml on this box (blocks until interrupted), each with its own
    schedule (``cron`` overrides the nightly one). No work pool is needed: this process runs the flows.
    Scheduled runs wait for a running one (run lock) rather than collide."""
    from prefect import serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    params = {"config_path": config_path, "warehouse": warehouse}
    deployments = []
    for spec in declared_deployments():
        schedule = cron if (cron and spec["name"] == "nightly") else spec["schedules"][0]["cron"]
        flow = flow_of(spec["entrypoint"])
        deployments.append(flow.to_deployment(name=spec["name"], cron=schedule, parameters=params))  # type: ignore[attr-defined]
    api = os.environ.get("PREFECT_API_URL")
    proc = None
    if not api:
        proc, api = start_local_server(port=port)
    try:
        with temporary_settings(updates={PREFECT_API_URL: api}):
            serve(*deployments)
    finally:
        if proc is not None:
            stop(proc)
