"""Helpers of the dashboard tests: a small demo warehouse and a `feedback dashboard` process."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
XSS_ID = "RXSS0001"
XSS_TEXT = (
    'Delivery was late <script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=2"> ugh'
)


def build_warehouse(tmp: Path, n: int = 300, seed: int = 7) -> Path:
    """The demo survey (plus one answer carrying HTML) enriched into a DuckDB warehouse; returns the config."""
    from pipeline.config import load_config
    from pipeline.ingest.load import load_export
    from pipeline.runner import run_enrichment
    from pipeline.sample import generate_survey, write_export
    from pipeline.warehouse import open_warehouse
    from tests.conftest import write_config

    cfg = write_config(
        tmp,
        str(tmp / "wh.duckdb"),
        source={"segments": ["channel", "region", "plan"], "customer_id": "customer_id"},
    )
    config = load_config(cfg)
    survey = generate_survey(n=n, seed=seed)
    xss = survey.iloc[[0]].copy()
    xss["response_id"], xss["comment"], xss["score"] = XSS_ID, XSS_TEXT, 2.0
    xss["submitted_at"] = survey["submitted_at"].max()
    with open_warehouse(config.warehouse, config=config) as wh:
        load_export(write_export(pd.concat([survey, xss], ignore_index=True), tmp / "s.parquet"), wh, config)
    run_enrichment(config)
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dashboard:
    """`feedback dashboard` in a child process (its own session); stopped by its PID only."""

    def __init__(self, cfg: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "FEEDBACK_DASHBOARD_USER": "tester"}
        self._log = log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "dashboard", "--config", str(cfg), "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"feedback dashboard exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"the dashboard did not answer on {self.url} within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def chrome(download_dir: Path):
    """Headless Debian Chromium through Selenium; fails (never skips) when it is not installed."""
    import pytest
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = os.environ.get("FEEDBACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = (
        os.environ.get("FEEDBACK_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    )
    if not (Path(browser).is_file() and Path(driver).is_file()):
        pytest.fail(
            "Chromium and chromedriver are needed for the dashboard browser test: `source .ci/chromium.sh && "
            "chromium_ensure` installs Debian's chromium and chromium-driver (make test does it)."
        )
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    opts.add_experimental_option("prefs", {"download.default_directory": str(download_dir)})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)
