"""`feedback serve` for real: a local Prefect server on loopback, the nightly deployment with its cron."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_deployments(api: str) -> dict[str, dict]:
    req = urllib.request.Request(
        f"{api}/deployments/filter", data=b"{}", headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        deployments = json.loads(resp.read())
    return {d["name"]: d for d in deployments}


def test_serve_registers_the_nightly_and_weekly_deployments(tmp_path):
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    feedback = Path(sys.executable).parent / "feedback"
    # Output to a file, not a pipe: a pipe nobody reads can fill up and block serve.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(feedback), "serve", "--port", str(port), "--warehouse", str(tmp_path / "wh.duckdb")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wanted = {"nightly": "0 2 * * *", "refit-topics": "0 1 * * 1", "retrain-tagger": "0 3 * * 0"}
        found: dict[str, dict] = {}
        deadline = time.monotonic() + 240
        while set(found) < set(wanted) and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            with contextlib.suppress(OSError):  # the server is still starting
                found = find_deployments(api)
            time.sleep(2)
        assert set(found) >= set(wanted), f"deployments found: {sorted(found)}"
        for name, cron in wanted.items():  # the weekly ones too: one box runs everything
            crons = [s["schedule"].get("cron") for s in found[name].get("schedules", [])]
            assert crons == [cron], name
            assert found[name]["parameters"]["warehouse"] == str(tmp_path / "wh.duckdb")
    finally:
        proc.send_signal(signal.SIGINT)  # serve stops and stops the server it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    # Nothing we started is still listening. A server that is still closing its connections on a busy
    # machine may hold the port for a moment after serve returns: allow it a bounded while.
    deadline = time.monotonic() + 30
    while listening(port) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not listening(port), (
        "the Prefect server was still listening 30 s after serve stopped:\n"
        + (log.read_text(errors="replace")[-3000:])
    )


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            return False
        return True
