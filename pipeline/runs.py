"""Every run recorded, one run at a time.

:func:`run_session` wraps a run (nightly enrichment, topic refit, tagger retrain): it takes the run
lock (:mod:`pipeline.warehouse.lock`), upgrades the warehouse's schema if needed
(:mod:`pipeline.migrations`), marks runs that a killed process left ``running`` as ``abandoned`` (and
stops the temporary Prefect server such a process left behind), writes this run's ``running`` record,
and on an exception rewrites it as ``failed`` with the error. The caller writes ``success`` with
:func:`write_run` when the run's work is done.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.clock import utcnow
from pipeline.config import EnrichmentConfig
from pipeline.errors import FeedbackError
from pipeline.faults import fault_point
from pipeline.schema import TABLE_KEYS
from pipeline.warehouse.base import Warehouse
from pipeline.warehouse.lock_lease import pid_alive
from pipeline.warehouse.tables import LINEAGE_KEYS

log = logging.getLogger(__name__)

RUNNING, SUCCESS, FAILED, ABANDONED = "running", "success", "failed", "abandoned"


def new_run_id() -> str:
    """A sortable, unique run id."""
    return f"run-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


@dataclass
class RunSummary:
    """The outcome of one run (also written to the runs table)."""

    run_id: str
    rows_in: int = 0
    rows_enriched: int = 0
    rows_quarantined: int = 0
    rows_removed: int = 0
    column_names: str | None = None  # JSON {export column: warehouse column} of the source's renames
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    watermark: tuple | None = None
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    embedded_new: int = 0
    alerts: int = 0
    status: str = SUCCESS
    error: str | None = None
    prefect_server_pid: int | None = None

    def check(self) -> None:
        """Rows in = rows enriched + rows quarantined, or the run is wrong."""
        if self.rows_in != self.rows_enriched + self.rows_quarantined:
            raise RuntimeError(
                f"row accounting broken: {self.rows_in} in != {self.rows_enriched} enriched + "
                f"{self.rows_quarantined} quarantined"
            )


def write_run(
    wh: Warehouse,
    config: EnrichmentConfig,
    summary: RunSummary,
    flow: str,
    started_at: datetime,
    status: str | None = None,
) -> None:
    """Write (or rewrite) the run's record in the runs table."""
    finished = utcnow()
    status = status or summary.status
    wm = summary.watermark
    record = {
        "run_id": summary.run_id,
        "flow": flow,
        "started_at": pd.Timestamp(started_at).as_unit("us"),
        "finished_at": pd.Timestamp(finished).as_unit("us") if status != RUNNING else pd.NaT,
        "seconds": (finished - started_at).total_seconds(),
        "timings": json.dumps({k: round(v, 3) for k, v in summary.timings.items()}),
        "rows_in": summary.rows_in,
        "rows_enriched": summary.rows_enriched,
        "rows_quarantined": summary.rows_quarantined,
        "rows_removed": summary.rows_removed,
        "column_names": summary.column_names,
        "quarantine_reasons": json.dumps(summary.quarantine_reasons),
        "watermark_submitted_at": pd.Timestamp(wm[0]).as_unit("us") if wm else pd.NaT,
        "watermark_response_id": wm[1] if wm else None,
        "embedded_new": summary.embedded_new,
        **{k: summary.versions.get(k) for k in LINEAGE_KEYS},
        "status": status,
        "error": summary.error,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "prefect_server_pid": summary.prefect_server_pid,
    }
    frame = pd.DataFrame([record])
    for column in ("finished_at", "watermark_submitted_at"):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    for column in ("error", "watermark_response_id", "column_names", *LINEAGE_KEYS):
        frame[column] = frame[column].astype(object)
    frame["prefect_server_pid"] = frame["prefect_server_pid"].astype("Int64")
    wh.upsert(config.tables.runs, frame, key=TABLE_KEYS["pipeline_runs"])


def mark_abandoned(wh: Warehouse, config: EnrichmentConfig) -> list[str]:
    """Mark the runs left ``running`` as ``abandoned``; call it only while holding the run lock.

    Holding the lock proves that no such run is alive: it was killed (or its machine died) before it
    could record how it ended. A temporary Prefect server it left behind on this machine is stopped.

    Returns:
        The abandoned run ids.
    """
    table = config.tables.runs
    if not wh.table_exists(table) or "status" not in wh.columns(table):
        return []
    rows = wh.read(table, where={"status": [RUNNING]})
    if rows.empty:
        return []
    now = pd.Timestamp(utcnow()).as_unit("us")
    rows = rows.assign(
        status=ABANDONED,
        finished_at=now,
        error="the run ended without recording how (its process was killed or its machine stopped); "
        "the next run completed what it left",
    )
    rows["finished_at"] = rows["finished_at"].astype("datetime64[us]")
    wh.upsert(table, rows, key=TABLE_KEYS["pipeline_runs"])
    for record in rows.to_dict(orient="records"):
        log.warning(
            "run %s (started %s) was left running: marked abandoned", record["run_id"], record["started_at"]
        )
        stop_orphan_prefect_server(record)
    return rows["run_id"].astype(str).tolist()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_orphan_prefect_server(record: dict[str, Any]) -> bool:
    """Stop the temporary Prefect server of a dead run, if it is still running on this machine.

    Only a process whose pid the run recorded, on this host, whose run process is gone, and whose
    command line is a Prefect/uvicorn server is stopped (SIGTERM, then SIGKILL after 10 s).
    """
    pid = record.get("prefect_server_pid")
    if pid is None or pd.isna(pid) or record.get("host") != socket.gethostname():
        return False
    pid, owner = int(pid), record.get("pid")
    if owner is not None and not pd.isna(owner) and pid_alive(int(owner)):
        return False
    command = _cmdline(pid)
    if not pid_alive(pid) or not ("prefect" in command or "uvicorn" in command):
        return False
    log.warning(
        "stopping the temporary Prefect server (pid %d) left behind by run %s", pid, record.get("run_id")
    )
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pid_alive(pid) and _cmdline(pid):
        time.sleep(0.1)
    if pid_alive(pid) and _cmdline(pid) == command:
        os.kill(pid, signal.SIGKILL)
    return True


@dataclass
class RunSession:
    """A run in progress: its id, start, flow name and summary."""

    run_id: str
    flow: str
    started_at: datetime
    summary: RunSummary
    abandoned: list[str] = field(default_factory=list)

    def succeed(self, wh: Warehouse, config: EnrichmentConfig) -> None:
        """Record the run as ``success`` (for runs that move no source rows: refit, retrain)."""
        self.summary.status = SUCCESS
        write_run(wh, config, self.summary, self.flow, self.started_at)


@contextmanager
def run_session(
    wh: Warehouse,
    config: EnrichmentConfig,
    flow: str,
    *,
    wait_s: float = 0.0,
    run_id: str | None = None,
    prefect_server_pid: int | None = None,
) -> Iterator[RunSession]:
    """Hold the run lock for a run and record it from start to end (see the module docstring).

    Args:
        wh: The warehouse.
        config: The config (table names, lock settings).
        flow: The flow's name, recorded.
        wait_s: How long to wait for a running run to finish (0: refuse at once, as a manual run does).
        run_id: The run's id (a new one when None).
        prefect_server_pid: The temporary Prefect server this run uses, if any (recorded so that the next
            run can stop it should this process be killed).

    Raises:
        RunLockHeld: When another run holds the lock (after ``wait_s``).
    """
    from pipeline.migrations import COLUMN_NAMES_KEY, read_meta, upgrade
    from pipeline.warehouse.lock import default_holder, run_lock

    run_id = run_id or new_run_id()
    started = utcnow()
    summary = RunSummary(run_id=run_id, status=RUNNING, prefect_server_pid=prefect_server_pid)
    with run_lock(
        wh,
        holder=default_holder(run_id),
        wait_s=wait_s,
        table=config.tables.lock,
        lease_s=config.run_lock.lease_seconds,
    ):
        upgrade(wh, config)
        summary.column_names = read_meta(wh, config, COLUMN_NAMES_KEY)
        abandoned = mark_abandoned(wh, config)
        write_run(wh, config, summary, flow, started, status=RUNNING)
        fault_point("run_start")
        session = RunSession(run_id, flow, started, summary, abandoned)
        try:
            yield session
        except BaseException as exc:
            summary.error = f"{type(exc).__name__}: {exc}"[:2000]
            try:
                write_run(wh, config, summary, flow, started, status=FAILED)
            except Exception:  # the original error matters more than a failed record
                log.exception("could not record the failure of run %s", run_id)
            raise
        if summary.status == RUNNING:
            raise FeedbackError(f"run {run_id} ended without recording its outcome (a bug: please report it)")
