"""`feedback serve` for real: a local Prefect server on loopback, every deployment of prefect.yaml served with
its cron and run once through the API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
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


def declared() -> dict[str, str]:
    import yaml

    spec = yaml.safe_load((Path(__file__).resolve().parent.parent / "prefect.yaml").read_text())
    return {d["name"]: d["schedules"][0]["cron"] for d in spec["deployments"]}


# The codes Prefect's own client retries (prefect.client.base): the server answers 503 for errors it calls
# retryable, such as SQLite being locked while the served process writes run states on a busy machine.
RETRYABLE = {408, 429, 502, 503}


def call(url: str, body: dict | None = None, attempts: int = 8) -> dict:
    """GET (or POST ``body``) and decode the JSON answer, retrying what the server marks as retryable."""
    data = None if body is None else json.dumps(body).encode()
    for attempt in range(attempts):
        req = urllib.request.Request(
            url,
            data=data,
            headers={"Content-Type": "application/json"},
            method="GET" if data is None else "POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRYABLE or attempt == attempts - 1:
                raise
        time.sleep(min(2**attempt * 0.25, 4))
    raise AssertionError("unreachable")


def run_once(api: str, deployment_id: str, timeout: float = 300) -> str:
    """Start a run of a served deployment through the API and wait for its final state."""
    run = call(f"{api}/deployments/{deployment_id}/create_flow_run", {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = call(f"{api}/flow_runs/{run['id']}")["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(2)
    return "TIMED OUT"


def test_serve_serves_every_deployment_and_runs_each_once(tmp_path):
    from pipeline.config import load_config
    from pipeline.demo.sample import generate_survey, write_export
    from pipeline.ingest.load import load_export
    from pipeline.warehouse import open_warehouse
    from tests.conftest import write_config

    warehouse = str(tmp_path / "wh.duckdb")
    learn = {"learn_from_scores": {"min_rows": 50, "members": ["embedding"], "cv_folds": 2}}
    cfg = write_config(tmp_path, warehouse, sentiment={"name": "sentiment.prototype.v1", "options": learn})
    config = load_config(cfg)
    with open_warehouse(warehouse) as wh:
        load_export(write_export(generate_survey(n=150, seed=3), tmp_path / "s.parquet"), wh, config)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_RUNNER_POLL_FREQUENCY="2",
    )
    feedback = Path(sys.executable).parent / "feedback"
    # Output to a file, not a pipe: a pipe nobody reads can fill up and block serve.
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(feedback), "serve", "--port", str(port), "--config", str(cfg), "--warehouse", warehouse],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wanted = declared()
        assert {"nightly", "refit-topics", "retrain-tagger", "retrain-sentiment"} <= set(wanted)
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
            assert found[name]["parameters"]["warehouse"] == warehouse
        # Each deployment runs once, through the served process: the nightly first (it fills the
        # warehouse the weekly ones read).
        order = ["nightly", *[n for n in wanted if n != "nightly"]]
        states = {name: run_once(api, found[name]["id"]) for name in order}
        assert set(states.values()) == {"COMPLETED"}, (states, log.read_text(errors="replace")[-4000:])
    finally:
        proc.send_signal(signal.SIGINT)  # serve stops and stops the server it started
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    with open_warehouse(warehouse) as wh:
        runs = wh.read(config.tables.runs)
    done = runs[runs["status"] == "success"]
    assert set(done["flow"]) >= {
        "nightly-enrichment",
        "refit-topics",
        "retrain-tagger",
        "retrain-sentiment",
    }, runs
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
