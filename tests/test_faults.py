"""Black-box fault tests: nothing is lost, ever, whatever kills or breaks a run.

Real ``feedback`` processes (``python -m pipeline.cli``) against a real DuckDB file and a real
PostgreSQL database (a fresh one per scenario; FEEDBACK_TEST_PG_URL, see tests/conftest.py):

* ``FEEDBACK_FAULT=after:<step>[:<n>]`` makes a run SIGKILL itself right after a step (exit -9);
  ``fail:<step>[:<n>]`` raises there (exit 1). ``FEEDBACK_NOW`` fixes the run's clock.
* After a kill, ``feedback check`` must not crash; a plain rerun must succeed, pass ``feedback check``
  and leave the data tables equal to those of an uninterrupted run of the same export and config
  (run ids and run times aside); the killed run's record ends ``abandoned``, the rerun's ``success``.
* The six findings of the fault review, one test each (far-future timestamps, a kill during a write,
  late rows, edited source rows, PostgreSQL exclusivity, traces of failed and killed runs).

Speed: each process spends most of its life importing and loading models, so the scenarios run in a
background pool, two at a time (``FEEDBACK_FAULT_WORKERS``, default 2), submitted when the module
starts; each test waits for its own scenario and asserts on what it recorded. Run them with::

    source .ci/postgres.sh && pg_start && .venv/bin/python -m pytest -q -m faults tests/test_faults.py; pg_stop
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pipeline.warehouse import open_warehouse
from tests.conftest import PG_URL_ENV
from tests.fault_helpers import (
    STEPS,
    CliResult,
    ScenarioPool,
    Target,
    cmdline,
    kill_tagged,
    prefect_server_pids,
    run_cli,
    run_together,
    sample_survey,
    table_differences,
    tagged_pids,
    target,
    write_sample,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

KILLED = -signal.SIGKILL
IMPLAUSIBLE = "implausible_submitted_at"
#: The PostgreSQL part of the kill matrix (the whole matrix runs on DuckDB).
PG_STEPS = ["run_start", "embed", "write_batch", "record_run"]
#: Steps after which the killed run had already written its final record (status success).
FINISHED_STEPS = {"record_run", "alerts"}


def fault_of(step: str) -> str:
    """The kill for a step: the second batch for write_batch (so that one batch is committed before)."""
    return "after:write_batch:2" if step == "write_batch" else f"after:{step}"


# ----------------------------------------------------------------------------------------------------
# What a scenario records
# ----------------------------------------------------------------------------------------------------


@dataclass
class Observed:
    """The processes of one scenario and what the warehouse held at its end."""

    results: dict[str, CliResult] = field(default_factory=dict)
    summaries: dict[str, dict | None] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    snapshot: dict[str, pd.DataFrame] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> CliResult:
        return self.results[name]

    def run(self, name: str, t: Target, *sources: Path, **kwargs: Any) -> CliResult:
        """``feedback enrich`` on ``t``, recorded as ``name`` (its --json summary too)."""
        res, summary = t.enrich(*sources, **kwargs)
        self.results[name], self.summaries[name] = res, summary
        return res

    def finish(self, t: Target, tables: tuple[str, ...] = ()) -> None:
        """Record the end state: data tables (compared), runs, counts, and any extra tables."""
        self.snapshot = t.snapshot()
        for table in ("pipeline_runs", *tables):
            self.tables[table] = t.read(table)
        with open_warehouse(t.warehouse) as wh:
            for table in ("survey_responses", "feedback_enriched", "quarantine"):
                self.counts[table] = wh.count(table) if wh.table_exists(table) else 0


@dataclass
class Context:
    """What every scenario shares: a folder, the PostgreSQL server, the sample export."""

    base: Path
    pg_url: str | None
    export: Path

    def folder(self, name: str) -> Path:
        path = self.base / f"{name}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path


# ----------------------------------------------------------------------------------------------------
# Scenarios (run in the pool; they record, the tests assert)
# ----------------------------------------------------------------------------------------------------


def scenario_reference(ctx: Context, backend: str) -> Observed:
    """One uninterrupted run of the sample export."""
    obs = Observed()
    with target(backend, ctx.folder(f"ref-{backend}"), ctx.pg_url) as t:
        obs.run("run", t, ctx.export)
        obs.finish(t)
    return obs


def scenario_kill(ctx: Context, backend: str, step: str) -> Observed:
    """Load + run killed after ``step``; check; rerun without the fault; check."""
    obs = Observed()
    with target(backend, ctx.folder(f"kill-{backend}-{step}"), ctx.pg_url) as t:
        obs.run("killed", t, ctx.export, fault=fault_of(step))
        obs.results["check_after_kill"] = t.check()
        obs.run("rerun", t)
        obs.results["check"] = t.check()
        obs.finish(t)
    return obs


def scenario_fail(ctx: Context, backend: str) -> Observed:
    """Load + run that fails at the second batch; check; rerun; check."""
    obs = Observed()
    with target(backend, ctx.folder(f"fail-{backend}"), ctx.pg_url) as t:
        obs.run("failed", t, ctx.export, fault="fail:write_batch:2")
        obs.tables["runs_after_failure"] = t.read("pipeline_runs")
        obs.results["check_after_failure"] = t.check()
        obs.run("rerun", t)
        obs.results["check"] = t.check()
        obs.finish(t)
    return obs


def scenario_prefect_kill(ctx: Context) -> Observed:
    """With Prefect: killed after the second batch, then rerun with Prefect; what the kill left running."""
    obs = Observed()
    folder = ctx.folder("prefect")
    # A Prefect home of its own (its temporary server's database), and never a configured API server.
    env = {"PREFECT_HOME": str(folder / "prefect-home"), "PREFECT_API_URL": None}
    obs.notes["servers_before"] = prefect_server_pids()
    with target("duckdb", folder, None) as t:
        killed, summary = t.enrich(
            ctx.export, fault="after:write_batch:2", prefect=True, extra_env=env, reap_children=False
        )
        obs.results["killed"], obs.summaries["killed"] = killed, summary
        try:
            obs.notes["left_by_kill"] = {p: cmdline(p) for p in tagged_pids(killed.tag)}
            obs.results["check_after_kill"] = t.check()
            obs.run("rerun", t, prefect=True, extra_env=env)
            # What the killed run started and is still running once the rerun is over (a little grace
            # for a watchdog to notice).
            deadline = time.monotonic() + 15
            while True:
                left = {
                    p: cmdline(p) for p in tagged_pids(killed.tag) if p not in obs.notes["servers_before"]
                }
                if not left or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            obs.notes["left_after_rerun"] = left
            obs.results["check"] = t.check()
            obs.finish(t)
        finally:
            kill_tagged(killed.tag)  # only processes the killed run (started by this test) started
    return obs


def scenario_far_future(ctx: Context) -> Observed:
    """An export with rows dated 2099 and 9999; then an export of new normal rows."""
    obs = Observed()
    first = sample_survey(n=60, seed=11, end=datetime(2026, 2, 15))
    first["submitted_at"] = first["submitted_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    future = first.iloc[[0, 1]].copy()
    future["response_id"] = ["F2099", "F9999"]
    future["submitted_at"] = ["2099-01-01 00:00:00", "9999-12-31 00:00:00"]
    folder = ctx.folder("far-future")
    export1 = write_sample(pd.concat([first, future], ignore_index=True), folder / "first.csv")
    second = sample_survey(n=30, seed=12, end=datetime(2026, 2, 28), days=10, prefix="N")
    export2 = write_sample(second, folder / "second.parquet")
    obs.notes["new_ids"] = set(second["response_id"])
    with target("duckdb", folder, None) as t:
        obs.run("first", t, export1)
        obs.tables["quarantine_after_first"] = t.read("quarantine")
        obs.run("second", t, export2)
        obs.results["check"] = t.check()
        obs.finish(t, ("feedback_enriched", "quarantine"))
    return obs


def scenario_kill_during_write(ctx: Context, backend: str) -> Observed:
    """Killed after the first batch; report on the broken warehouse; rerun; check.

    DuckDB runs with the default embedder (the one case of the module that does), PostgreSQL with the
    fast one (so that it is also compared with the PostgreSQL reference).
    """
    obs = Observed()
    config = {"embedder": None} if backend == "duckdb" else {}
    with target(backend, ctx.folder(f"write-{backend}"), ctx.pg_url, **config) as t:
        obs.run("killed", t, ctx.export, fault="after:write_batch:1")
        obs.results["report_broken"] = t.report()
        obs.results["check_after_kill"] = t.check()
        obs.run("rerun", t)
        obs.results["check"] = t.check()
        obs.finish(t, ("feedback_enriched", "feedback_tags", "feedback_sentences"))
    return obs


def scenario_late_rows(ctx: Context) -> Observed:
    """After a first run, rows dated before all of its rows, some of them before any plausible date."""
    obs = Observed()
    folder = ctx.folder("late")
    first = write_sample(sample_survey(n=60, seed=21), folder / "first.parquet")
    late = sample_survey(n=30, seed=22, end=datetime(2025, 2, 28), prefix="L")
    late["submitted_at"] = late["submitted_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    odd = late.iloc[[0, 1, 2]].copy()
    odd["response_id"] = ["L2001", "L1900", "L0001"]
    odd["submitted_at"] = ["2001-06-01 09:00:00", "1900-01-01 00:00:00", "0001-01-01 00:00:00"]
    late = pd.concat([late, odd], ignore_index=True)
    obs.notes["late_ids"] = set(late["response_id"])
    export2 = write_sample(late, folder / "late.csv")
    with target("duckdb", folder, None) as t:
        obs.run("first", t, first)
        obs.run("late", t, export2)
        obs.results["check"] = t.check()
        obs.finish(t, ("feedback_enriched", "quarantine"))
    return obs


NEW_TEXT = (
    "The mobile app crashed twice during checkout. Nobody from support called me back about the refund."
)


def scenario_edited_rows(ctx: Context) -> Observed:
    """Source rows edited in place (same response_id) between two runs."""
    obs = Observed()
    folder = ctx.folder("edited")
    df = sample_survey(n=60, seed=31)
    fixed = df.index[df["comment"].fillna("").str.len() > 20][0]
    df.loc[fixed, "score"] = 11.0  # out of the NPS range: quarantined by the first run
    ids = {"fixed": df.at[fixed, "response_id"]}
    with target("duckdb", folder, None) as t:
        obs.run("first", t, write_sample(df, folder / "first.parquet"))
        enr = t.read("feedback_enriched")
        obs.tables["enriched_before"] = enr
        obs.tables["sentences_before"] = t.read("feedback_sentences")
        obs.tables["quarantine_before"] = t.read("quarantine")
        if enr.empty:
            return obs
        answered = enr[~enr["is_non_answer"].astype(bool) & enr["response_id"].ne(ids["fixed"])]
        answered = answered.sort_values(["n_sentences", "response_id"], ascending=[False, True])
        ids["text"] = answered["response_id"].iloc[0]  # the one with most sentences
        rest = sorted(answered["response_id"].iloc[1:])
        ids["score"], ids["broken"] = rest[0], rest[1]
        old = df.set_index("response_id")["score"]
        new_scores = {
            ids["text"]: (int(old[ids["text"]]) + 5) % 11,
            ids["score"]: (int(old[ids["score"]]) + 3) % 11,
            ids["fixed"]: 9,
            ids["broken"]: 42,
        }
        edited = df.copy()
        for rid, score in new_scores.items():
            edited.loc[edited["response_id"] == rid, "score"] = float(score)
        edited.loc[edited["response_id"] == ids["text"], "comment"] = NEW_TEXT
        obs.notes.update(ids=ids, new_scores=new_scores)
        obs.run("second", t, write_sample(edited, folder / "second.parquet"))
        obs.results["check"] = t.check()
        obs.finish(t, ("feedback_enriched", "feedback_tags", "feedback_sentences", "quarantine"))
    return obs


def scenario_pg_concurrent(ctx: Context) -> Observed:
    """Two ``feedback enrich`` processes started together on one empty PostgreSQL database."""
    obs = Observed()
    with target("postgres", ctx.folder("pg-concurrent"), ctx.pg_url) as t:
        a, b = run_together([t.enrich_args(ctx.export), t.enrich_args(ctx.export)])
        obs.results["a"], obs.results["b"] = a, b
        obs.results["check"] = t.check()
        obs.finish(t)
    return obs


def scenario_pg_lock_held(ctx: Context) -> Observed:
    """A manual ``feedback enrich`` while this test holds the run lock of the PostgreSQL database."""
    from pipeline.warehouse.lock import default_holder, run_lock

    obs = Observed()
    with target("postgres", ctx.folder("pg-lock"), ctx.pg_url) as t:
        holder = default_holder("fault-test-holder")
        obs.notes["holder"] = holder
        with open_warehouse(t.warehouse) as wh, run_lock(wh, holder=holder):
            obs.results["refused"] = run_cli(t.enrich_args(ctx.export), timeout=120)
        obs.finish(t)
    return obs


SCENARIOS: dict[str, Callable[..., Observed]] = {
    "reference": scenario_reference,
    "kill": scenario_kill,
    "fail": scenario_fail,
    "prefect_kill": scenario_prefect_kill,
    "far_future": scenario_far_future,
    "kill_during_write": scenario_kill_during_write,
    "late_rows": scenario_late_rows,
    "edited_rows": scenario_edited_rows,
    "pg_concurrent": scenario_pg_concurrent,
    "pg_lock_held": scenario_pg_lock_held,
}


def scenario_key(name: str, **params: Any) -> str:
    return name + "".join(f":{k}={v}" for k, v in sorted(params.items()))


def needs(*specs: Callable[[dict], tuple[str, dict]] | tuple[str, dict]):
    """Declare the scenarios a test reads (each a (name, params) pair, or a function of the test's
    parameters giving one), so that the module can start them all in the background up front."""

    def mark(fn):
        fn.scenarios = specs
        return fn

    return mark


def _specs_of(item: pytest.Item) -> list[tuple[str, dict]]:
    params = getattr(getattr(item, "callspec", None), "params", {})
    out = []
    for spec in getattr(getattr(item, "function", None), "scenarios", ()):
        out.append(spec(params) if callable(spec) else spec)
    return out


def _needs_pg(name: str, params: dict) -> bool:
    return name.startswith("pg_") or params.get("backend") == "postgres"


class Scenarios:
    """The module's scenarios, started in the background pool; ``get`` waits for one."""

    def __init__(self, ctx: Context, pool: ScenarioPool) -> None:
        self.ctx, self.pool = ctx, pool

    def submit(self, name: str, **params: Any) -> None:
        if _needs_pg(name, params) and not self.ctx.pg_url:
            return
        self.pool.submit(scenario_key(name, **params), SCENARIOS[name], self.ctx, **params)

    def get(self, name: str, **params: Any) -> Observed:
        self.submit(name, **params)
        return self.pool.result(scenario_key(name, **params))

    def reference(self, backend: str) -> dict[str, pd.DataFrame]:
        """The data tables of the uninterrupted run (which must have succeeded)."""
        ref = self.get("reference", backend=backend)
        assert ref["run"].returncode == 0, "the uninterrupted reference run failed:\n" + ref["run"].describe()
        return ref.snapshot


@pytest.fixture(scope="module")
def scenarios(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenarios]:
    base = tmp_path_factory.mktemp("faults")
    export = write_sample(sample_survey(), base / "survey.parquet")
    ctx = Context(base, os.environ.get(PG_URL_ENV, "").strip() or None, export)
    pool = ScenarioPool(int(os.environ.get("FEEDBACK_FAULT_WORKERS", "2")))
    found = Scenarios(ctx, pool)
    try:
        # Every scenario that a selected test of this module reads, in test order, references first.
        wanted = [
            s for item in request.session.items if item.module is request.module for s in _specs_of(item)
        ]
        for name, params in sorted(wanted, key=lambda s: s[0] != "reference"):
            found.submit(name, **params)
        yield found
    finally:
        pool.close()


def require_pg(request: pytest.FixtureRequest, backend: str = "postgres") -> None:
    """Skip a PostgreSQL case when no server is configured (the conftest's pg_url fixture decides)."""
    if backend == "postgres":
        request.getfixturevalue("pg_url")


# ----------------------------------------------------------------------------------------------------
# Shared assertions
# ----------------------------------------------------------------------------------------------------


def assert_ok(res: CliResult, code: int = 0) -> None:
    assert res.returncode == code, f"expected exit {code}:\n" + res.describe()


def assert_no_crash(res: CliResult) -> None:
    """A check of a broken warehouse reports (exit 0 or 2, one line per problem); it never crashes."""
    assert res.returncode in (0, 2), "feedback check crashed:\n" + res.describe()
    assert "Traceback" not in res.stderr, "feedback check crashed:\n" + res.describe()
    if res.returncode == 2:
        assert res.stderr.strip(), "exit 2 without saying what is broken:\n" + res.describe()


def assert_same_tables(obs: Observed, reference: dict[str, pd.DataFrame]) -> None:
    diffs = table_differences(obs.snapshot, reference)
    assert not diffs, "tables differ from the uninterrupted run:\n  " + "\n  ".join(diffs)


def assert_balanced(obs: Observed) -> None:
    c = obs.counts
    assert c["survey_responses"] == c["feedback_enriched"] + c["quarantine"], (
        f"rows lost: {c['survey_responses']} source rows != {c['feedback_enriched']} enriched + "
        f"{c['quarantine']} quarantined"
    )


def run_row(runs: pd.DataFrame, run_id: str) -> pd.Series:
    rows = runs[runs["run_id"] == run_id]
    assert len(rows) == 1, f"run {run_id}: {len(rows)} records in pipeline_runs\n{runs}"
    return rows.iloc[0]


def runs_text(runs: pd.DataFrame) -> str:
    cols = [
        c for c in ("run_id", "status", "rows_in", "rows_enriched", "rows_quarantined", "error") if c in runs
    ]
    return runs[cols].to_string() if len(runs) else "(no pipeline_runs rows)"


def assert_rerun_record(obs: Observed) -> str:
    """The rerun's record: success, rows in = enriched + quarantined. Returns its run id."""
    summary = obs.summaries.get("rerun")
    assert summary and summary.get("run_id"), "the rerun wrote no --json summary:\n" + obs["rerun"].describe()
    row = run_row(obs.tables["pipeline_runs"], summary["run_id"])
    assert row["status"] == "success", runs_text(obs.tables["pipeline_runs"])
    assert int(row["rows_in"]) == int(row["rows_enriched"]) + int(row["rows_quarantined"]), runs_text(
        obs.tables["pipeline_runs"]
    )
    return summary["run_id"]


def other_runs(obs: Observed, rerun_id: str) -> pd.DataFrame:
    runs = obs.tables["pipeline_runs"]
    return runs[runs["run_id"] != rerun_id]


# ----------------------------------------------------------------------------------------------------
# 1. Kill after every step, then rerun
# ----------------------------------------------------------------------------------------------------

MATRIX = [("duckdb", s) for s in STEPS] + [
    pytest.param("postgres", s, marks=pytest.mark.postgres) for s in PG_STEPS
]


@pytest.mark.parametrize(("backend", "step"), MATRIX)
@needs(lambda p: ("reference", {"backend": p["backend"]}), lambda p: ("kill", p))
def test_kill_after_step_then_rerun_equals_uninterrupted_run(request, scenarios, backend, step):
    require_pg(request, backend)
    obs = scenarios.get("kill", backend=backend, step=step)
    assert_ok(obs["killed"], KILLED)
    assert_no_crash(obs["check_after_kill"])
    assert_ok(obs["rerun"])
    assert_ok(obs["check"])
    rerun_id = assert_rerun_record(obs)
    killed = other_runs(obs, rerun_id)
    assert len(killed) == 1, "expected one record of the killed run:\n" + runs_text(
        obs.tables["pipeline_runs"]
    )
    allowed = {"abandoned", "success"} if step in FINISHED_STEPS else {"abandoned"}
    assert killed["status"].iloc[0] in allowed, runs_text(obs.tables["pipeline_runs"])
    assert_balanced(obs)
    assert_same_tables(obs, scenarios.reference(backend))


@needs(("reference", {"backend": "duckdb"}), ("prefect_kill", {}))
def test_kill_with_prefect_then_rerun_leaves_no_server_behind(scenarios):
    obs = scenarios.get("prefect_kill")
    assert_ok(obs["killed"], KILLED)
    assert_no_crash(obs["check_after_kill"])
    assert_ok(obs["rerun"])
    assert_ok(obs["check"])
    rerun_id = assert_rerun_record(obs)
    assert set(other_runs(obs, rerun_id)["status"]) == {"abandoned"}, runs_text(obs.tables["pipeline_runs"])
    assert_balanced(obs)
    assert_same_tables(obs, scenarios.reference("duckdb"))
    servers = {
        pid: line
        for pid, line in obs.notes["left_after_rerun"].items()
        if ("prefect" in line and "server" in line) or "uvicorn" in line
    }
    assert not servers, (
        f"the killed run's Prefect server is still running after the rerun: {servers} "
        f"(left at the kill: {obs.notes['left_by_kill']})"
    )


# ----------------------------------------------------------------------------------------------------
# 2. A failing step
# ----------------------------------------------------------------------------------------------------


@needs(("reference", {"backend": "duckdb"}), ("fail", {"backend": "duckdb"}))
def test_failed_step_is_recorded_and_rerun_completes(scenarios):
    obs = scenarios.get("fail", backend="duckdb")
    assert_ok(obs["failed"], 1)
    runs = obs.tables["runs_after_failure"]
    failed = runs[runs["status"] == "failed"] if "status" in runs else runs
    assert len(failed) == 1, "expected one failed run record:\n" + runs_text(runs)
    error = str(failed["error"].iloc[0]) if "error" in failed else ""
    assert error.strip() not in ("", "None", "nan"), "a failed run must record its error:\n" + runs_text(runs)
    assert_no_crash(obs["check_after_failure"])
    assert_ok(obs["rerun"])
    assert_ok(obs["check"])
    assert_balanced(obs)
    assert_same_tables(obs, scenarios.reference("duckdb"))


# ----------------------------------------------------------------------------------------------------
# 3. The six findings
# ----------------------------------------------------------------------------------------------------


@needs(("far_future", {}))
def test_far_future_timestamps_are_quarantined_and_do_not_block_later_rows(scenarios):
    obs = scenarios.get("far_future")
    assert_ok(obs["first"])
    q = obs.tables["quarantine_after_first"]
    reasons = dict(zip(q["response_id"], q["reason"], strict=True)) if len(q) else {}
    for rid in ("F2099", "F9999"):
        assert reasons.get(rid) == IMPLAUSIBLE, f"{rid}: quarantine reason {reasons.get(rid)!r}"
    assert_ok(obs["second"])
    assert (obs.summaries["second"] or {}).get("rows_in", 0) > 0, obs["second"].describe()
    enriched = set(obs.tables["feedback_enriched"]["response_id"])
    missing = sorted(obs.notes["new_ids"] - enriched)
    assert not missing, f"rows loaded after the far-future ones were never enriched: {missing[:10]}"
    assert_ok(obs["check"])
    assert_balanced(obs)


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
@needs(lambda p: ("kill_during_write", p), lambda p: ("reference", p))
def test_kill_during_write_leaves_no_half_written_response(request, scenarios, backend):
    require_pg(request, backend)
    obs = scenarios.get("kill_during_write", backend=backend)
    assert_ok(obs["killed"], KILLED)
    assert_ok(obs["report_broken"], 2)  # a report over a warehouse that fails check is refused
    assert "Traceback" not in obs["report_broken"].stderr, obs["report_broken"].describe()
    assert_no_crash(obs["check_after_kill"])
    assert_ok(obs["rerun"])
    assert_ok(obs["check"])
    enr, tags, sents = (obs.tables[t] for t in ("feedback_enriched", "feedback_tags", "feedback_sentences"))
    answered = set(enr.loc[~enr["is_non_answer"].astype(bool), "response_id"])
    without = sorted(answered - set(sents["response_id"]))
    assert not without, f"answered responses without sentences: {without[:10]}"
    wide = {(r, t) for r, ts in zip(enr["response_id"], enr["tags"], strict=True) for t in list(ts)}
    long = set(zip(tags["response_id"], tags["tag"], strict=True))
    assert wide == long, f"tags of feedback_enriched != feedback_tags: {sorted(wide ^ long)[:10]}"
    rerun_id = assert_rerun_record(obs)
    assert set(other_runs(obs, rerun_id)["status"]) == {"abandoned"}, runs_text(obs.tables["pipeline_runs"])
    assert_balanced(obs)
    if backend == "postgres":  # DuckDB ran with the default embedder: no reference of its own
        assert_same_tables(obs, scenarios.reference(backend))


@needs(("late_rows", {}))
def test_late_rows_are_enriched_or_quarantined_never_skipped(scenarios):
    obs = scenarios.get("late_rows")
    assert_ok(obs["first"])
    assert_ok(obs["late"])
    enr, q = obs.tables["feedback_enriched"], obs.tables["quarantine"]
    enriched = set(enr["response_id"])
    reasons = dict(zip(q["response_id"], q["reason"], strict=True)) if len(q) else {}
    lost = sorted(obs.notes["late_ids"] - enriched - set(reasons))
    assert not lost, f"late rows neither enriched nor quarantined: {lost[:10]}"
    assert "L2001" in enriched, f"a 2001 answer is plausible: {reasons.get('L2001')!r}"
    for rid in ("L1900", "L0001"):
        assert reasons.get(rid) == IMPLAUSIBLE, f"{rid}: quarantine reason {reasons.get(rid)!r}"
    assert_balanced(obs)
    assert_ok(obs["check"])


@needs(("edited_rows", {}))
def test_edited_source_rows_are_re_enriched_or_re_quarantined(scenarios):
    obs = scenarios.get("edited_rows")
    assert_ok(obs["first"])
    assert "ids" in obs.notes, "the first run enriched nothing"
    ids, scores = obs.notes["ids"], obs.notes["new_scores"]
    assert ids["fixed"] in set(obs.tables["quarantine_before"]["response_id"]), "score 11 must be quarantined"
    assert_ok(obs["second"])
    assert (obs.summaries["second"] or {}).get("rows_in") == 4, (
        "only the four edited rows have new content:\n" + obs["second"].describe()
    )
    enr = obs.tables["feedback_enriched"].set_index("response_id")
    tags, sents, q = (obs.tables[t] for t in ("feedback_tags", "feedback_sentences", "quarantine"))
    run2 = obs.summaries["second"]["run_id"]

    # a new comment and score: new text, new sentences and tags (none of the old text's left)
    rid = ids["text"]
    assert " ".join(str(enr.at[rid, "text_redacted"]).split()) == NEW_TEXT
    assert int(enr.at[rid, "score"]) == scores[rid]
    new_sents = sents[sents["response_id"] == rid]
    assert len(new_sents) and all(str(s).strip() in NEW_TEXT for s in new_sents["text_redacted"]), new_sents
    old = obs.tables["sentences_before"]
    stale = set(old.loc[old["response_id"] == rid, "text_redacted"]) & set(new_sents["text_redacted"])
    assert not stale, f"sentences of the old comment remain: {stale}"
    assert (new_sents["run_id"] == run2).all(), new_sents
    its_tags = tags[tags["response_id"] == rid]
    assert set(its_tags["tag"]) == set(enr.at[rid, "tags"]), its_tags
    assert (its_tags["run_id"] == run2).all(), its_tags

    # only the score changed
    rid = ids["score"]
    assert int(enr.at[rid, "score"]) == scores[rid]
    before = obs.tables["enriched_before"].set_index("response_id")
    assert enr.at[rid, "text_redacted"] == before.at[rid, "text_redacted"]

    # quarantined (score 11), fixed to 9: enriched, out of quarantine
    rid = ids["fixed"]
    assert rid in enr.index and int(enr.at[rid, "score"]) == 9
    assert rid not in set(q["response_id"])

    # enriched, broken to 42: quarantined, and gone from every enriched table
    rid = ids["broken"]
    reasons = dict(zip(q["response_id"], q["reason"], strict=True))
    assert reasons.get(rid) == "score_out_of_range", reasons.get(rid)
    assert rid not in enr.index
    assert rid not in set(tags["response_id"]) and rid not in set(sents["response_id"])

    assert_balanced(obs)
    assert_ok(obs["check"])


@pytest.mark.postgres
@needs(("pg_concurrent", {}), ("reference", {"backend": "postgres"}))
def test_postgres_two_runs_at_once_exclude_each_other(request, scenarios):
    require_pg(request)
    obs = scenarios.get("pg_concurrent")
    a, b = obs["a"], obs["b"]
    for res in (a, b):
        assert "DuplicateTable" not in res.stderr, res.describe()
    codes = sorted([a.returncode, b.returncode])
    assert codes in ([0, 0], [0, 2]), "expected one success and one refusal (or a wait):\n" + "\n".join(
        r.describe() for r in (a, b)
    )
    if codes == [0, 2]:
        refused = a if a.returncode == 2 else b
        assert re.search(r"\bpid\b", refused.stderr, re.I), (
            "the refusal must name the holder:\n" + refused.describe()
        )
    # Whether refused or made to wait, no row was processed by both runs.
    runs = obs.tables["pipeline_runs"]
    done = runs[runs["status"] == "success"]
    processed = obs.counts["feedback_enriched"] + obs.counts["quarantine"]
    assert int(done["rows_in"].sum()) == processed, "both runs processed the same rows:\n" + runs_text(runs)
    assert_ok(obs["check"])
    assert_balanced(obs)
    assert_same_tables(obs, scenarios.reference("postgres"))


@pytest.mark.postgres
@needs(("pg_lock_held", {}))
def test_postgres_manual_run_is_refused_at_once_while_the_lock_is_held(request, scenarios):
    require_pg(request)
    obs = scenarios.get("pg_lock_held")
    refused = obs["refused"]
    assert_ok(refused, 2)
    assert re.search(r"\bpid\b", refused.stderr, re.I), (
        "the refusal must name the holder:\n" + refused.describe()
    )
    assert refused.seconds < 60, f"refused only after {refused.seconds:.0f}s:\n" + refused.describe()
    assert obs.counts["feedback_enriched"] == 0, "a refused run must not enrich anything"


@needs(("kill", {"backend": "duckdb", "step": "embed"}), ("fail", {"backend": "duckdb"}))
def test_failed_and_killed_runs_leave_a_trace(scenarios):
    """The same processes as the matrix's embed case and the fail case: read here for their records."""
    killed = scenarios.get("kill", backend="duckdb", step="embed")
    assert_ok(killed["killed"], KILLED)
    assert_ok(killed["rerun"])
    rerun_id = assert_rerun_record(killed)
    first = other_runs(killed, rerun_id)
    assert list(first["status"]) == ["abandoned"], runs_text(killed.tables["pipeline_runs"])

    failed = scenarios.get("fail", backend="duckdb")
    assert_ok(failed["failed"], 1)
    assert_ok(failed["rerun"])
    rerun_id = assert_rerun_record(failed)
    first = other_runs(failed, rerun_id)
    assert list(first["status"]) == ["failed"], runs_text(failed.tables["pipeline_runs"])
    error = str(first["error"].iloc[0] if "error" in first else "") if len(first) else ""
    assert error.strip() not in ("", "None", "nan"), "the failure's error is kept:\n" + runs_text(first)


# Upgrades from the previous release's warehouse: tests/test_upgrade.py.
