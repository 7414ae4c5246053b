import numpy as np
import pandas as pd
import pytest

from pipeline.config import SourceConfig
from pipeline.errors import SchemaError
from pipeline.ingest.source import MISSING_ID_PREFIX, conform, dedupe, read_export, segment_columns, validate


def frame(**over):
    base = {
        "response_id": ["r1", "r2", "r3"],
        "survey_type": ["nps", "NPS ", "csat"],
        "score": [9, 3, 4],
        "comment": ["great", None, "ok"],
        "submitted_at": ["2026-10-01 10:00", "2026-10-02T11:00:00Z", "2026-10-03"],
        "channel": ["web", "app", "web"],
    }
    base.update(over)
    return pd.DataFrame(base)


def test_missing_columns_error_names_expected_and_found():
    with pytest.raises(SchemaError) as err:
        conform(frame().drop(columns=["score", "comment"]))
    msg = str(err.value)
    assert "['score', 'comment']" in msg and "found" in msg and "channel" in msg


def test_column_mapping_and_default_survey_type():
    df = frame().rename(columns={"comment": "why"}).drop(columns=["survey_type"])
    out = conform(df, SourceConfig(columns={"why": "comment"}, default_survey_type="nps"))
    assert list(out["survey_type"]) == ["nps"] * 3 and out["comment"].iloc[0] == "great"


def test_conform_does_not_mutate_and_normalises_types():
    df = frame()
    before = df.copy(deep=True)
    out = conform(df)
    pd.testing.assert_frame_equal(df, before)
    assert list(out["survey_type"]) == ["nps", "nps", "csat"]
    assert str(out["submitted_at"].dtype).startswith("datetime64")
    assert out["submitted_at"].iloc[1] == pd.Timestamp("2026-10-02 11:00")


def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost():
    df = conform(
        frame(
            response_id=["r1", None, "r3", "r4", "r5", "r6"],
            survey_type=["nps", "nps", "weird", "nps", "csat", "nps"],
            score=[9, 5, 7, 11, "ten", 8],
            comment=["a", "b", "c", "d", "e", None],
            submitted_at=["2026-10-01", "2026-10-01", "2026-10-01", "2026-10-01", "2026-10-01", "not a date"],
            channel=list("abcdef"),
        )
    )
    v = validate(df)
    assert len(v.valid) + len(v.quarantined) == len(df)
    reasons = dict(zip(v.quarantined["response_id"], v.quarantined["reason"], strict=True))
    generated = [r for r in reasons if r.startswith(MISSING_ID_PREFIX)]
    assert len(generated) == 1 and reasons[generated[0]] == "missing_response_id"
    assert reasons["r3"] == "unknown_survey_type"
    assert reasons["r4"] == "score_out_of_range"
    assert reasons["r5"] == "missing_score"
    assert reasons["r6"] == "missing_submitted_at"
    assert list(v.valid["response_id"]) == ["r1"]
    assert v.quarantined["raw"].str.contains('"channel"').all()


def test_blank_comment_is_not_an_error():
    v = validate(conform(frame()))
    assert "r2" in set(v.valid["response_id"])


def test_dedupe_counts_exact_and_conflicting_repeats():
    df = conform(
        frame(
            response_id=["r1", "r1", "r1"],
            score=[9, 9, 3],
            comment=["a", "a", "b"],
            submitted_at=["2026-10-01"] * 3,
        )
    )
    out, exact, conflicting = dedupe(df)
    assert len(out) == 1 and out["score"].iloc[0] == 3
    assert exact == 0 and conflicting == 2
    df2 = pd.concat([conform(frame()), conform(frame()).iloc[[0]]])
    out2, exact2, conflicting2 = dedupe(df2)
    assert len(out2) == 3 and exact2 == 1 and conflicting2 == 0


def test_csv_with_undecodable_bytes_is_read(tmp_path):
    f = tmp_path / "export.csv"
    f.write_bytes(
        b"response_id,survey_type,score,comment,submitted_at\n"
        b"r1,nps,9,bom \xff\xfe atendimento,2026-10-01\n"
        b"r2,nps,,,2026-10-02\n"
    )
    df = conform(read_export(f))
    assert "\ufffd" in df["comment"].iloc[0]
    assert df["comment"].iloc[1] is None and np.isnan(df["score"].iloc[1])


def test_unknown_export_type(tmp_path):
    f = tmp_path / "x.xlsx"
    f.write_text("")
    with pytest.raises(SchemaError, match="parquet"):
        read_export(f)


def test_segments_default_to_extra_columns_and_check_configured_ones():
    df = conform(frame())
    assert segment_columns(df, SourceConfig()) == ["channel"]
    with pytest.raises(SchemaError, match="region"):
        segment_columns(df, SourceConfig(segments=["region"]))


def test_a_windows_1252_csv_keeps_its_accents_and_says_so(tmp_path, caplog):
    f = tmp_path / "export.csv"
    text = "response_id,survey_type,score,comment,submitted_at\nr1,nps,3,Très déçu, café froid,2026-10-01\n"
    f.write_bytes(text.replace("Très déçu, café froid", '"Très déçu, café froid"').encode("cp1252"))
    with caplog.at_level("WARNING"):
        df = read_export(f)
    assert df["comment"].iloc[0] == "Très déçu, café froid"
    assert "not UTF-8" in caplog.text
    f.write_bytes(text.replace("Très déçu, café froid", '"Très déçu, café froid"').encode("utf-8"))
    assert read_export(f)["comment"].iloc[0] == "Très déçu, café froid"


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\n\n", "is empty"),
        ("semicolons.csv", b"id;text\n1;late, and rude\n2;ok; fine, thanks\n", "double quotes"),
        ("empty.parquet", b"", "as Parquet"),
        ("csv.parquet", b"id,text\n1,a\n", "as Parquet"),
    ],
)
def test_a_file_that_cannot_be_parsed_is_one_clear_error(tmp_path, name, content, message):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(SchemaError, match=message):
        read_export(f)
