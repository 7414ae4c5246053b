"""Helpers of the black-box fault tests (tests/test_faults.py).

They drive real ``feedback`` processes (``python -m pipeline.cli``) against real warehouses: a DuckDB
file, or a fresh PostgreSQL database per scenario. Every process started here is bounded in time and
killed (with whatever it started) when it outlives its time or the test; each carries a unique
``FEEDBACK_TEST_TAG`` in its environment, which its children inherit, so that the processes a run left
behind can be found in ``/proc`` without touching anybody else's.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import DEFAULT_CONFIG
from pipeline.schema import TABLE_KEYS
from pipeline.warehouse import open_warehouse

REPO_ROOT = Path(__file__).resolve().parent.parent
#: "Now" of every run (FEEDBACK_NOW), so that runs of different scenarios agree.
NOW = "2026-03-01T00:00:00"
#: The end of the sample surveys' window: just before NOW.
SAMPLE_END = datetime(2026, 2, 28)
CLI_TIMEOUT = 300
TAG_ENV = "FEEDBACK_TEST_TAG"

#: Fault-hook step names, in the order a run passes them.
STEPS = [
    "run_start",
    "extract",
    "prepare",
    "embed",
    "topics_fit",
    "write_batch",
    "write_topics",
    "record_run",
    "alerts",
]
#: The tables an interrupted-then-resumed run must leave equal to an uninterrupted one.
DATA_TABLES = ["feedback_enriched", "feedback_tags", "feedback_sentences", "quarantine", "topics"]
#: Columns that name or time a run (not data): ignored when comparing tables.
RUN_COLUMNS = {"run_id", "enriched_at", "quarantined_at", "created_at", "updated_at", "fitted_at"}
#: Model versions embed their fit time and a random suffix: compared by identity within a warehouse.
VERSION_COLUMNS = ("model_version", "topic_model_version")


# ----------------------------------------------------------------------------------------------------
# Processes
# ----------------------------------------------------------------------------------------------------


@dataclass
class CliResult:
    """One finished ``feedback`` process."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    pid: int
    tag: str
    env: dict[str, str] = field(repr=False, default_factory=dict)

    def describe(self) -> str:
        """The command, its exit code and the tail of its output (for assertion messages)."""
        fault = self.env.get("FEEDBACK_FAULT")
        return (
            f"`feedback {' '.join(self.args)}`{f' with FEEDBACK_FAULT={fault}' if fault else ''} exited "
            f"{self.returncode} after {self.seconds:.1f}s\n--- stdout (tail) ---\n{self.stdout[-1500:]}"
            f"\n--- stderr (tail) ---\n{self.stderr[-3000:]}"
        )


_LIVE: dict[int, subprocess.Popen] = {}
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def cli_env(fault: str | None = None, extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """The environment of a ``feedback`` process: this one's, with a fixed clock and no stray fault."""
    env = {k: v for k, v in os.environ.items() if k not in ("FEEDBACK_FAULT", "FEEDBACK_NOW", TAG_ENV)}
    env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        FEEDBACK_NOW=NOW,
        FEEDBACK_TRACEBACK="1",  # an unexpected error still exits 1, with its traceback in stderr
        PYTHONUNBUFFERED="1",
    )
    if fault:
        env["FEEDBACK_FAULT"] = fault
    for key, value in (extra or {}).items():  # None unsets a variable
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@dataclass
class Started:
    """A ``feedback`` process started by :func:`start_cli`.

    Its output goes to temporary files, not pipes: a process killed by SIGKILL may leave children
    (a Prefect server) that still hold its stdout and stderr, and reading a pipe to its end would
    then wait for them.
    """

    proc: subprocess.Popen
    env: dict[str, str]
    t0: float
    out: Any
    err: Any

    @property
    def tag(self) -> str:
        return self.env[TAG_ENV]

    def stop(self) -> None:
        """Kill the process if it still runs, and forget it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        with _LIVE_LOCK:
            _LIVE.pop(self.proc.pid, None)

    def output(self) -> tuple[str, str]:
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read().decode("utf-8", errors="replace"))
            f.close()
        return texts[0], texts[1]


def start_cli(
    args: list[str], fault: str | None = None, extra_env: dict[str, str | None] | None = None
) -> Started:
    """Start ``feedback ARGS`` in the repository root, its output captured in temporary files."""
    if _STOPPING.is_set():
        raise RuntimeError("the fault tests are stopping: no new process is started")
    env = cli_env(fault, extra_env)
    env[TAG_ENV] = uuid.uuid4().hex
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()  # noqa: SIM115 (closed by Started.output)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=err,
    )
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
    return Started(proc, env, time.perf_counter(), out, err)


def finish_cli(started: Started, timeout: float = CLI_TIMEOUT, reap_children: bool = True) -> CliResult:
    """Wait (bounded) for a process started by :func:`start_cli`; kill it if it outlives ``timeout``.

    Args:
        reap_children: Also kill what the process left running (its tagged descendants). False keeps
            them, for a test that checks what a killed run leaves behind (it must clean up itself).

    Raises:
        TimeoutError: when the process had to be killed.
    """
    proc = started.proc
    try:
        proc.wait(timeout=max(1.0, timeout - (time.perf_counter() - started.t0)))
    except subprocess.TimeoutExpired:
        started.stop()
        _, err = started.output()
        raise TimeoutError(
            f"`feedback {' '.join(map(str, proc.args[3:]))}` ran over {timeout:.0f}s and was killed; "
            f"stderr tail:\n{err[-3000:]}"
        ) from None
    finally:
        started.stop()
        if reap_children:
            kill_tagged(started.tag)
    out, err = started.output()
    return CliResult(
        [str(a) for a in proc.args[3:]],
        proc.returncode,
        out,
        err,
        time.perf_counter() - started.t0,
        proc.pid,
        started.tag,
        started.env,
    )


def run_cli(
    args: list[str],
    fault: str | None = None,
    extra_env: dict[str, str | None] | None = None,
    timeout: float = CLI_TIMEOUT,
    reap_children: bool = True,
) -> CliResult:
    """Run ``feedback ARGS`` to its end (at most ``timeout`` seconds) and capture its output."""
    return finish_cli(start_cli(args, fault, extra_env), timeout, reap_children)


def run_together(commands: list[list[str]], timeout: float = CLI_TIMEOUT) -> list[CliResult]:
    """Start several ``feedback`` processes at once and wait for all (each bounded by ``timeout``)."""
    started: list[Started] = []
    try:
        for args in commands:
            started.append(start_cli(args))
        return [finish_cli(s, timeout) for s in started]
    finally:
        for s in started:
            s.stop()
            kill_tagged(s.tag)


def stop_all() -> None:
    """Refuse new processes and kill every live one started here (and what each started)."""
    _STOPPING.set()
    with _LIVE_LOCK:
        live = list(_LIVE.values())
    for proc in live:
        tag = proc_env_tag(proc.pid)
        if proc.poll() is None:
            proc.kill()
        if tag:
            kill_tagged(tag)


def proc_env_tag(pid: int) -> str | None:
    """The FEEDBACK_TEST_TAG of a process, or None (not ours, gone, or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = f"{TAG_ENV}=".encode()
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


def cmdline(pid: int) -> str:
    """A process's command line, spaces between arguments ("" when gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def tagged_pids(tag: str) -> list[int]:
    """Live processes that carry this tag: one started here and whatever it started."""
    return [pid for pid in _pids() if pid != os.getpid() and proc_env_tag(pid) == tag and _alive(pid)]


def kill_tagged(tag: str) -> None:
    """SIGKILL every live process that carries this tag (all were started by a test's process)."""
    for pid in tagged_pids(tag):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def prefect_server_pids() -> set[int]:
    """Live Prefect server processes (``prefect ... server`` or uvicorn) on this machine, anybody's."""
    found = set()
    for pid in _pids():
        line = cmdline(pid)
        if (("prefect" in line and "server" in line) or "uvicorn" in line) and _alive(pid):
            found.add(pid)
    return found


# ----------------------------------------------------------------------------------------------------
# Warehouses, configs, exports
# ----------------------------------------------------------------------------------------------------


def _admin_url(pg_url: str) -> str:
    if pg_url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + pg_url.split("://", 1)[1]
    return pg_url


@contextmanager
def pg_database(pg_url: str, prefix: str = "fault") -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the test server; yields its URL, drops it afterwards."""
    import sqlalchemy as sa

    admin = sa.engine.make_url(_admin_url(pg_url))
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield admin.set(database=name).render_as_string(hide_password=False)
        finally:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def write_config(folder: Path, warehouse: str, **overrides: Any) -> Path:
    """A config file for the fault tests (JSON is YAML).

    Fast settings: the hashing embedder, English only (language detection of five languages costs
    seconds per process), batches of 40 rows (several per run), topics from 30 answers, alerts on.
    ``overrides`` replace top-level sections (``embedder=None`` drops the key: the default embedder).
    """
    folder.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {
        "warehouse": warehouse,
        "state_dir": str(folder / "state"),
        "report_dir": str(folder / "report"),
        "tagger": {"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml")},
        "embedder": {"name": "hashing"},
        "languages": ["en"],
        "topics": {"min_docs": 30},
        "batch_size": 40,
        "alerts": {"enabled": True},
    }
    for key, value in overrides.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    path = folder / "enrichment.yaml"
    path.write_text(json.dumps(body, indent=2))
    return path


def sample_survey(n: int = 120, seed: int = 5, end: datetime = SAMPLE_END, prefix: str = "", days: int = 90):
    """A generated survey (with its data-quality issues) minus the 50,000-character answer.

    That one answer costs seconds of sentence splitting in every process; it is not what these tests
    are about (tests/test_pipeline_e2e.py covers it).
    """
    from pipeline.sample import generate_survey

    df = generate_survey(n=n, seed=seed, end=end, days=days)
    df = df[df["comment"].fillna("").str.len() < 5000].reset_index(drop=True)
    if prefix:
        df["response_id"] = prefix + df["response_id"].astype(str)
    return df


def write_sample(df: pd.DataFrame, path: Path) -> Path:
    """Write a survey frame as an export (Parquet or CSV by suffix)."""
    from pipeline.sample import write_export

    return write_export(df, path)


@dataclass
class Target:
    """A warehouse with its config, and the commands that drive it."""

    warehouse: str
    config: Path
    folder: Path

    def enrich(
        self,
        *sources: Path,
        fault: str | None = None,
        prefect: bool = False,
        extra_env: dict[str, str | None] | None = None,
        reap_children: bool = True,
        json_out: bool = True,
    ) -> tuple[CliResult, dict | None]:
        """``feedback enrich`` (loading ``sources`` first); returns the process and its --json summary."""
        args = ["enrich", "--warehouse", self.warehouse, "--config", str(self.config)]
        if sources:
            args += ["--source", *map(str, sources)]
        if not prefect:
            args.append("--no-prefect")
        out = self.folder / f"run-{uuid.uuid4().hex[:8]}.json"
        if json_out:
            args += ["--json", str(out)]
        res = run_cli(args, fault=fault, extra_env=extra_env, reap_children=reap_children)
        summary = json.loads(out.read_text()) if json_out and out.exists() else None
        return res, summary

    def enrich_args(self, *sources: Path) -> list[str]:
        args = ["enrich", "--warehouse", self.warehouse, "--config", str(self.config), "--no-prefect"]
        return args + (["--source", *map(str, sources)] if sources else [])

    def check(self) -> CliResult:
        """``feedback check``."""
        return run_cli(["check", "--warehouse", self.warehouse, "--config", str(self.config)])

    def report(self) -> CliResult:
        """``feedback report`` into this target's folder."""
        out = self.folder / "report-out"
        return run_cli(
            ["report", "--warehouse", self.warehouse, "--config", str(self.config), "--out", str(out)]
        )

    def read(self, table: str) -> pd.DataFrame:
        """A whole table (empty when it does not exist)."""
        with open_warehouse(self.warehouse) as wh:
            return wh.read(table) if wh.table_exists(table) else pd.DataFrame()

    def count(self, table: str) -> int:
        with open_warehouse(self.warehouse) as wh:
            return wh.count(table) if wh.table_exists(table) else 0

    def snapshot(self) -> dict[str, pd.DataFrame]:
        return snapshot(self.warehouse)


@contextmanager
def target(backend: str, folder: Path, pg_url: str | None, **config: Any) -> Iterator[Target]:
    """A fresh warehouse of the backend ("duckdb": a file in folder; "postgres": a new database)."""
    folder.mkdir(parents=True, exist_ok=True)
    if backend == "duckdb":
        wh = str(folder / "wh.duckdb")
        yield Target(wh, write_config(folder, wh, **config), folder)
        return
    if not pg_url:
        raise RuntimeError("a PostgreSQL scenario needs FEEDBACK_TEST_PG_URL")
    with pg_database(pg_url) as url:
        yield Target(url, write_config(folder, url, **config), folder)


# ----------------------------------------------------------------------------------------------------
# Snapshots and their comparison
# ----------------------------------------------------------------------------------------------------


def snapshot(warehouse: str, tables: list[str] = DATA_TABLES) -> dict[str, pd.DataFrame]:
    """The data tables, without run columns, sorted by key; model versions as v0, v1, ...

    Versions are named by the order of their first use (sorted by key), so two warehouses whose rows
    share one topic model per row compare equal, whatever the model's random version string.
    """
    out: dict[str, pd.DataFrame] = {}
    with open_warehouse(warehouse) as wh:
        for table in tables:
            df = wh.read(table) if wh.table_exists(table) else pd.DataFrame()
            drop = [c for c in df.columns if _is_run_column(c)]
            df = df.drop(columns=drop)
            key = [c for c in TABLE_KEYS.get(table, []) if c in df.columns]
            if len(df) and key:
                df = df.sort_values(key, kind="stable").reset_index(drop=True)
            out[table] = df
    versions: dict[str, str] = {}
    for table in tables:
        df = out[table]
        for col in VERSION_COLUMNS:
            if col in df.columns:
                df[col] = [
                    None if _missing(v) else versions.setdefault(str(v), f"v{len(versions)}") for v in df[col]
                ]
        if "raw" in df.columns:  # the raw source row, as JSON: without any load or run time in it
            df["raw"] = [_strip_raw(v) for v in df["raw"]]
    return out


def _is_run_column(name: str) -> bool:
    return (
        name in RUN_COLUMNS or name.endswith("_run_id") or (name.endswith("_at") and name != "submitted_at")
    )


def _strip_raw(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        data = json.loads(value)
    except ValueError:
        return value
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if not _is_run_column(k)}
    return data


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list | tuple | np.ndarray | dict):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _norm(value: Any) -> Any:
    if _missing(value):
        return None
    if isinstance(value, np.ndarray | list | tuple):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, pd.Timestamp | datetime | np.datetime64):
        return pd.Timestamp(value)
    return value


def same_value(a: Any, b: Any, tol: float = 1e-6) -> bool:
    """Equal cells: floats within ``tol``, lists and dicts element by element, missing == missing."""
    a, b = _norm(a), _norm(b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k], tol) for k in a)
    if isinstance(a, bool | str) or isinstance(b, bool | str):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(float(a), float(b), rel_tol=0.0, abs_tol=tol)
    return a == b


def table_differences(
    actual: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame], limit: int = 5
) -> list[str]:
    """What differs between two snapshots, one line per difference (empty: equal)."""
    problems: list[str] = []
    for table, exp in expected.items():
        act = actual.get(table, pd.DataFrame())
        if set(act.columns) != set(exp.columns):
            problems.append(
                f"{table}: columns differ: only actual {sorted(set(act.columns) - set(exp.columns))}, "
                f"only expected {sorted(set(exp.columns) - set(act.columns))}"
            )
            continue
        key = [c for c in TABLE_KEYS.get(table, []) if c in exp.columns]
        if key:
            a_keys = set(map(tuple, act[key].astype(str).to_numpy()))
            e_keys = set(map(tuple, exp[key].astype(str).to_numpy()))
            if a_keys != e_keys:
                problems.append(
                    f"{table}: {len(act)} rows vs {len(exp)} expected; missing keys "
                    f"{sorted(e_keys - a_keys)[:limit]}, extra keys {sorted(a_keys - e_keys)[:limit]}"
                )
                continue
        if len(act) != len(exp):
            problems.append(f"{table}: {len(act)} rows vs {len(exp)} expected")
            continue
        for col in exp.columns:
            bad = [
                i
                for i, (x, y) in enumerate(zip(act[col].tolist(), exp[col].tolist(), strict=True))
                if not same_value(x, y)
            ]
            if bad:
                where = [
                    f"{dict(zip(key, exp.loc[i, key].tolist(), strict=True)) if key else i}: "
                    f"{_short(act.at[i, col])} != {_short(exp.at[i, col])}"
                    for i in bad[:limit]
                ]
                problems.append(f"{table}.{col}: {len(bad)} rows differ, e.g. {'; '.join(where)}")
    return problems


def _short(value: Any, n: int = 80) -> str:
    text = repr(_norm(value))
    return text if len(text) <= n else text[: n - 3] + "..."


# ----------------------------------------------------------------------------------------------------
# A background pool: the scenarios of the module run two at a time
# ----------------------------------------------------------------------------------------------------


class ScenarioPool:
    """Runs the fault scenarios in worker threads, each driving its own processes.

    On this 2-core machine most of a ``feedback`` process's life is imports and model loading; two
    scenarios at a time make the module about 1.7x faster than one after the other. The tests submit
    their scenarios up front (in collection order) and each test waits for its own: a failure shows
    the scenario's own assertion and traceback.
    """

    def __init__(self, workers: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        _STOPPING.clear()
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="fault")
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()

    def submit(self, key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Queue ``fn`` under ``key`` (once: a second submit of the key returns the first future)."""
        with self._lock:
            if key not in self._futures:
                self._futures[key] = self._pool.submit(fn, *args, **kwargs)
            return self._futures[key]

    def result(self, key: str, timeout: float | None = None) -> Any:
        with self._lock:
            future = self._futures[key]
        return future.result(timeout=timeout)

    def has(self, key: str) -> bool:
        with self._lock:
            return key in self._futures

    def close(self) -> None:
        """Cancel what has not started, kill the live processes, wait for the workers."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        self._pool.shutdown(wait=True)
