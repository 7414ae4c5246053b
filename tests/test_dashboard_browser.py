"""`feedback dashboard` in a real headless Chromium (Debian's chromium + chromium-driver, via Selenium).

One module-scoped server on a small demo warehouse (127.0.0.1, a free port), stopped by its PID. The
browser is never skipped: without Chromium the tests fail and say how to install it (.ci/chromium.sh).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.dashboard_helpers import ROOT, XSS_ID, Dashboard, build_warehouse, chrome

WAIT_S = 90


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dash")
    cfg = build_warehouse(tmp, n=200)
    server = Dashboard(cfg, tmp / "server.log")
    driver = None
    try:
        server.wait_ready()
        driver = chrome(tmp)
        driver.set_page_load_timeout(WAIT_S)
        yield {"cfg": cfg, "url": server.url, "driver": driver, "tmp": tmp, "server": server}
    finally:
        if driver is not None:
            driver.quit()
        server.stop()


def _config(cfg: Path):
    from pipeline.config import load_config

    return load_config(cfg)


def _snapshot(cfg: Path):
    from pipeline.dashboard.snapshot import open_for_dashboard

    return open_for_dashboard(_config(cfg).warehouse)


def _visit(site, query: str, shot: str | None = None):
    """Open a view and wait until the page has rendered to its last element; fail on an app exception."""
    d = site["driver"]
    d.get(f"{site['url']}/?{query}")
    return _settle(site, shot)


def _settle(site, shot: str | None = None):
    from selenium.webdriver.common.by import By

    d = site["driver"]
    deadline = time.monotonic() + WAIT_S
    time.sleep(0.5)
    while time.monotonic() < deadline:
        if d.find_elements(By.CSS_SELECTOR, "[data-testid=stException]"):
            pytest.fail(
                "the app raised: " + d.find_element(By.CSS_SELECTOR, "[data-testid=stException]").text
            )
        done = d.find_elements(By.XPATH, "//*[contains(text(), 'Data as of')]")
        running = d.find_elements(By.CSS_SELECTOR, "[data-testid=stStatusWidget]")
        if done and not running:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"the page did not finish rendering within {WAIT_S} s")
    time.sleep(0.5)
    if shot:
        d.save_screenshot(str(site["tmp"] / f"{shot}.png"))
    return d


def _text(d, testid: str) -> str:
    from selenium.webdriver.common.by import By

    return "\n".join(e.text for e in d.find_elements(By.CSS_SELECTOR, f"[data-testid={testid}]"))


def _wait_for(root, css: str):
    """The first element under ``root`` matching ``css``, waiting for it (a loaded machine renders slowly)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = root.find_elements(By.CSS_SELECTOR, css)
        if found:
            return found[0]
        time.sleep(0.3)
    pytest.fail(f"no {css} within {WAIT_S} s")


def _click(d, element) -> None:
    """Click a button even while a dropdown list still covers it."""
    d.execute_script("arguments[0].click();", element)


def _severe(d) -> list[dict]:
    return [e for e in d.get_log("browser") if e["level"] == "SEVERE"]


def test_every_page_renders_without_console_errors(site):
    from pipeline.dashboard.state import PAGES

    for page, title in PAGES.items():
        d = _visit(site, f"page={page}", shot=page)
        assert title in _text(d, "stHeading")
    assert _severe(site["driver"]) == []


def test_a_segment_filter_changes_the_score_as_the_analysis_layer_says(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from pipeline.analysis import Filters, score_summary

    config = _config(site["cfg"])
    with _snapshot(site["cfg"]) as wh:
        overall = score_summary(wh, Filters(), config=config)
        per = {
            v: score_summary(wh, Filters(segments={"channel": [v]}), config=config) for v in ("app", "web")
        }
    value = max(per, key=lambda v: abs(per[v].score - overall.score))
    assert f"{per[value].score:.1f}" != f"{overall.score:.1f}"
    d = _visit(site, "page=overview")
    assert f"{overall.score:.1f}" in _text(d, "stMetricValue")
    # Apply the filter in the sidebar, as a person would.
    box = next(
        e
        for e in d.find_elements(By.CSS_SELECTOR, "[data-testid=stMultiSelect]")
        if e.text.startswith("channel")
    )
    box.find_element(By.CSS_SELECTOR, "input").send_keys(value, Keys.ENTER)
    deadline = time.monotonic() + WAIT_S
    while f"{per[value].score:.1f}" not in _text(d, "stMetricValue") and time.monotonic() < deadline:
        time.sleep(0.3)
    _settle(site, "overview_filtered")
    assert f"{per[value].score:.1f}" in _text(d, "stMetricValue")
    assert f"n = {per[value].n}" in _text(d, "stCaptionContainer")
    assert f"seg.channel={value}" in d.current_url  # the view is in the URL: a shareable link


def test_drill_from_a_theme_to_its_answers(site):
    from selenium.webdriver.common.by import By

    from pipeline.analysis import Filters, answer_count, theme_impact

    config = _config(site["cfg"])
    with _snapshot(site["cfg"]) as wh:
        theme = str(theme_impact(wh, Filters(), config=config).iloc[0]["tag"])
        expected = answer_count(wh, Filters(themes=[theme]), config=config)
    d = _visit(site, "page=themes")
    link = next(a for a in d.find_elements(By.CSS_SELECTOR, "a") if a.text.startswith(f"{theme}:"))
    assert link.text.endswith("answers")
    d.get(link.get_attribute("href"))
    _settle(site, "answers_of_theme")
    assert f"{expected:,} answers match" in _text(d, "stCaptionContainer")
    assert "theme=" in d.current_url and "page=answers" in d.current_url


def test_an_answer_with_html_shows_as_text(site):
    from selenium.webdriver.common.by import By

    d = _visit(site, "page=answers&q=onerror", shot="answers_html")
    cells = [c.text for c in d.find_elements(By.CSS_SELECTOR, "[data-testid=stTable] td")]
    assert any("<script>window.__pwned=1</script>" in c and "<img src=x onerror=" in c for c in cells), cells
    assert d.find_elements(By.CSS_SELECTOR, "[data-testid=stMain] img") == []
    assert d.execute_script("return window.__pwned") is None
    assert XSS_ID in "\n".join(cells)


def _save_followup(site, rid: str, status: str, owner: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = _visit(site, f"page=followups&rid={rid}")
    form = _wait_for(d, "[data-testid=stForm]")
    _wait_for(form, "[data-testid=stSelectbox] input").send_keys(status, Keys.ENTER)
    owner_box = form.find_element(By.CSS_SELECTOR, "[data-testid=stTextInput] input")
    owner_box.clear()
    owner_box.send_keys(owner)
    _click(d, form.find_element(By.CSS_SELECTOR, "[data-testid=stFormSubmitButton] button"))
    deadline = time.monotonic() + WAIT_S
    while f"{rid} is {status}" not in _text(d, "stAlert") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert f"{rid} is {status}" in _text(d, "stAlert")


def _queue_row(site, rid: str) -> str:
    d = _visit(site, f"page=followups&rid={rid}")
    from selenium.webdriver.common.by import By

    rows = [r.text for r in d.find_elements(By.CSS_SELECTOR, "[data-testid=stTable] tr") if rid in r.text]
    return rows[0] if rows else ""


def test_a_followup_status_is_set_and_read_back(site):
    _save_followup(site, "R000010", "contacted", "alice")
    row = _queue_row(site, "R000010")
    assert "contacted" in row and "alice" in row


def test_a_tag_fix_is_written_as_a_correction_and_read_back(site):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from pipeline.dashboard.edits import EditStore

    d = _visit(site, "page=review&rid=R000020")
    form = _wait_for(d, "[data-testid=stForm]")
    _wait_for(form, "[data-testid=stMultiSelect] input").send_keys("price", Keys.ENTER)
    _click(d, form.find_element(By.CSS_SELECTOR, "[data-testid=stFormSubmitButton] button"))
    time.sleep(1)
    d = _visit(site, "page=review&rid=R000020", shot="review")
    fixes = EditStore(_config(site["cfg"])).pending_corrections()
    mine = fixes[(fixes["response_id"] == "R000020") & (fixes["kind"] == "themes")]
    assert len(mine) == 1 and "price" in list(mine.iloc[0]["value"])
    tables = _text(d, "stTable")
    assert "R000020" in tables and "price" in tables and "human" in tables


def test_a_run_completes_while_the_dashboard_serves_and_keeps_an_edit_made_during_it(site):
    from pipeline.analysis import followups
    from pipeline.ingest.load import load_export
    from pipeline.sample import generate_survey, write_export
    from pipeline.warehouse import open_warehouse

    config = _config(site["cfg"])
    new = generate_survey(n=150, seed=99)
    new["response_id"] = "N" + new["response_id"].astype(str)
    with open_warehouse(config.warehouse, config=config) as wh:
        load_export(write_export(new, site["tmp"] / "new.parquet"), wh, config)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipeline.cli", "enrich", "--no-prefect", "--config", str(site["cfg"])]
    run = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _save_followup(site, "R000030", "resolved", "bob")  # while the run holds the warehouse
        during = run.poll() is None
        out, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, out.decode(errors="replace")[-2000:]
    assert during, "the run ended before the edit: make it longer to test this"
    # The dashboard still serves, now on the run's new snapshot, and still shows the edit.
    d = _visit(site, "page=answers&q=", shot="after_run")
    with _snapshot(site["cfg"]) as wh:
        from pipeline.analysis import Filters, answer_count

        n = answer_count(wh, Filters(), config=config)
    assert f"{n:,} answers match" in _text(d, "stCaptionContainer")
    row = _queue_row(site, "R000030")
    assert "resolved" in row and "bob" in row
    # The next run merges it into the warehouse (and the snapshot then holds it).
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, timeout=600)
    assert again.returncode == 0, again.stderr.decode(errors="replace")[-2000:]
    with _snapshot(site["cfg"]) as wh:
        queue = followups(wh, config=config)
    got = queue[queue["response_id"] == "R000030"].iloc[0]
    assert (got["status"], got["owner"]) == ("resolved", "bob")
    assert "resolved" in _queue_row(site, "R000030")
    assert _severe(site["driver"]) == []
