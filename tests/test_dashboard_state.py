"""The dashboard's URL state, and the library staying free of Streamlit (fast, no browser)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

from pipeline.analysis.filters import Filters
from pipeline.dashboard.state import ViewState, from_params, link, to_params


def test_a_view_survives_the_round_trip_through_the_url():
    state = ViewState(
        page="segments",
        filters=Filters(
            start=date(2026, 1, 1),
            end=date(2026, 3, 31),
            survey_type="nps",
            segments={"channel": ["app", "web"], "region": ["North"]},
            languages=["pt"],
            themes=["refund"],
            sentiments=["negative"],
            topics=[3, 7],
        ),
        query="late",
        response_id="R1",
    )
    assert from_params(to_params(state)) == state
    assert link(state).startswith("?page=segments&start=2026-01-01")


def test_unknown_or_malformed_url_values_are_ignored_not_fatal():
    state = from_params(
        {
            "page": "nope",
            "start": "yesterday",
            "type": "xyz",
            "sentiment": ["angry", "positive"],
            "topic": "a",
        },
        segment_columns=["channel"],
    )
    assert state.page == "overview" and state.filters.start is None and state.filters.survey_type is None
    assert state.filters.sentiments == ["positive"] and state.filters.topics == []
    assert from_params({"seg.secret": "x"}, segment_columns=["channel"]).filters.segments == {}


def test_markdown_is_made_inert():
    from pipeline.dashboard.ui import md_text

    assert md_text("![x](http://e/t.png) <b>") == "\\!\\[x\\]\\(http\\:\\/\\/e\\/t\\.png\\) \\<b\\>"


def test_the_library_and_the_run_path_do_not_import_streamlit():
    code = (
        "import sys, pipeline, pipeline.cli, pipeline.runner, pipeline.dashboard.edits, "
        "pipeline.dashboard.snapshot, pipeline.dashboard.state, pipeline.cli.dashboard; "
        "print('streamlit' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
