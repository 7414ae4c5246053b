"""Tests of the synthetic sample survey and of the taxonomy it is tagged against."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.demo.sample import (
    DEFAULT_END,
    LANGUAGES,
    NON_ANSWERS,
    PHRASES,
    TAG_POLARITY,
    TRUTH_COLUMNS,
    generate_survey,
    write_export,
)
from pipeline.errors import ConfigError
from pipeline.tagging.taxonomy import load_taxonomy

TAXONOMY_PATH = Path(__file__).resolve().parents[1] / "configs" / "taxonomy.yaml"
BASE_COLUMNS = [
    "response_id",
    "survey_type",
    "score",
    "comment",
    "submitted_at",
    "customer_id",
    "channel",
    "region",
    "plan",
]
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?:\+\d{1,3}[ ]?)?(?:\(\d{2,3}\)[ ]?)?\d{2,5}(?:[ .-]?\d{2,4}){2,4}")
CARD = re.compile(r"\b\d{4}[ -]?\d{4,6}[ -]?\d{4,5}(?:[ -]?\d{4})?\b")
URL = re.compile(r"(?:https?://|www\.)\S+")
HANDLE = re.compile(r"(?<![\w.])@\w{3,}")


@pytest.fixture(scope="module")
def survey() -> pd.DataFrame:
    return generate_survey(with_truth=True)


@pytest.fixture(scope="module")
def taxonomy() -> dict:
    return yaml.safe_load(TAXONOMY_PATH.read_text(encoding="utf-8"))


def _comments(df: pd.DataFrame) -> pd.Series:
    return df["comment"].fillna("").astype(str)


# ----------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_the_same_frame(survey: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(survey, generate_survey(with_truth=True))


def test_other_seed_gives_another_frame() -> None:
    a = generate_survey(n=300, seed=1)
    b = generate_survey(n=300, seed=2)
    assert len(a) == len(b) == 300
    assert (a["comment"].fillna("") != b["comment"].fillna("")).mean() > 0.5


def test_default_end_is_fixed_and_end_moves_the_window() -> None:
    df = generate_survey(n=200, seed=3, days=30)
    ts = df["submitted_at"].dropna()
    assert ts.max() < pd.Timestamp(DEFAULT_END)
    assert ts.min() >= pd.Timestamp(DEFAULT_END) - pd.Timedelta(days=30)
    moved = generate_survey(n=200, seed=3, days=30, end=pd.Timestamp("2025-01-01 12:30"))
    assert moved["submitted_at"].max() < pd.Timestamp("2025-01-01 12:30")
    assert moved["submitted_at"].min() >= pd.Timestamp("2024-12-02 12:30")


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        generate_survey(n=0)
    with pytest.raises(ConfigError, match="days"):
        generate_survey(n=10, days=0)


def test_tiny_surveys_work() -> None:
    assert len(generate_survey(n=1)) == 1
    assert len(generate_survey(n=10, seed=5)) == 10


# ----------------------------------------------------------------------------------------- shape


def test_columns_types_and_segments(survey: pd.DataFrame) -> None:
    assert len(survey) >= 2000
    assert list(survey.columns) == BASE_COLUMNS + TRUTH_COLUMNS
    assert list(generate_survey(n=50).columns) == BASE_COLUMNS
    assert survey["score"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(survey["submitted_at"])
    assert survey["response_id"].str.fullmatch(r"R\d{6}").all()
    assert survey["customer_id"].str.fullmatch(r"C\d{6,}").all()
    assert survey["customer_id"].duplicated().any()  # returning customers answer again
    assert set(survey["channel"]) == {"web", "app", "store", "phone"}
    assert set(survey["region"]) == {"North", "South", "East", "West"}
    assert set(survey["plan"]) == {"basic", "plus", "premium"}
    assert (survey["survey_type"] == "nps").mean() > 0.99


def test_all_languages_present_with_sensible_shares(survey: pd.DataFrame) -> None:
    shares = survey["true_language"].value_counts(normalize=True)
    assert set(LANGUAGES) <= set(shares.index)
    assert shares["en"] > shares["pt"] > shares["nl"]
    assert 0.05 < shares["nl"] < 0.15
    assert {"de", "it"} <= set(shares.index)  # a few answers outside the configured languages


def test_time_has_weekday_and_hour_patterns(survey: pd.DataFrame) -> None:
    ts = survey["submitted_at"].dropna()
    weekday = ts.dt.day_of_week.value_counts()
    hour = ts.dt.hour.value_counts()
    assert weekday[0] > 1.3 * weekday[5]  # Monday busier than Saturday
    assert hour.get(20, 0) > 5 * hour.get(3, 0)  # evening busier than the night


def test_answers_carry_one_to_three_themes_in_several_sentences(survey: pd.DataFrame) -> None:
    n_tags = survey["true_tags"].map(len)
    assert n_tags.max() == 3
    assert 0.4 < (n_tags == 1).mean() < 0.7
    assert 0.15 < (n_tags >= 2).mean() < 0.45
    assert (survey["true_sentiment"] == "mixed").mean() > 0.1
    assert _comments(survey).str.contains("\n").mean() > 0.05


def test_phrase_banks_are_complete_and_varied() -> None:
    for tag, by_lang in PHRASES.items():
        assert set(by_lang) == set(LANGUAGES), tag
        for lang, phrases in by_lang.items():
            assert len(set(phrases)) >= 6, (tag, lang)
    assert len(PHRASES) >= 12


# ----------------------------------------------------------------------------------------- truth


def test_scores_follow_the_tone_of_the_text(survey: pd.DataFrame) -> None:
    ok = survey[survey["score"].between(0, 10)]
    means = ok.groupby("true_sentiment")["score"].mean()
    assert means["positive"] > means["mixed"] > means["negative"]
    assert ok.loc[ok["true_sentiment"] == "positive", "score"].median() >= 8
    assert ok.loc[ok["true_sentiment"] == "negative", "score"].median() <= 5
    # Some noise: a few promoters still complain.
    assert (ok.loc[ok["true_sentiment"] == "negative", "score"] >= 7).any()


def test_truth_tags_exist_in_the_taxonomy(survey: pd.DataFrame, taxonomy: dict) -> None:
    names = {t["name"] for t in taxonomy["tags"]}
    used = {tag for tags in survey["true_tags"] for tag in tags}
    assert used <= names
    assert set(TAG_POLARITY) <= names
    assert len(used) >= 12
    polarity = {t["name"]: t["polarity"] for t in taxonomy["tags"]}
    assert all(polarity[tag] == p for tag, p in TAG_POLARITY.items())


def test_theme_mix_has_root_causes_to_find(survey: pd.DataFrame) -> None:
    df = survey.assign(
        app_crash=survey["true_tags"].map(lambda t: "app_crash" in t),
        delivery_delay=survey["true_tags"].map(lambda t: "delivery_delay" in t),
        recent=(pd.Timestamp(DEFAULT_END) - survey["submitted_at"]) < pd.Timedelta(days=21),
    )
    app = df[df["channel"] == "app"]
    assert app["app_crash"].mean() > 4 * df.loc[df["channel"] != "app", "app_crash"].mean()
    assert app.loc[app["recent"], "app_crash"].mean() > 1.5 * app.loc[~app["recent"], "app_crash"].mean()
    by_region = df.groupby("region")["delivery_delay"].mean()
    assert by_region.idxmax() == "South"
    assert by_region["South"] > 1.5 * by_region.drop("South").max()


# ----------------------------------------------------------------------------------------- data quality


def test_duplicate_submissions_are_exact_copies(survey: pd.DataFrame) -> None:
    dup = survey["response_id"].duplicated(keep=False)
    assert 0.005 < survey["response_id"].duplicated().mean() < 0.02
    rows = survey.loc[dup, BASE_COLUMNS]
    assert len(rows.astype(str).drop_duplicates()) == rows["response_id"].nunique()


def test_malformed_rows_are_present(survey: pd.DataFrame) -> None:
    assert {11.0, -3.0} <= set(survey["score"].dropna())
    assert survey["score"].isna().any()
    assert (survey["survey_type"] == "unknown").any()
    assert survey["submitted_at"].isna().any()
    malformed = (
        ~survey["score"].between(0, 10) | (survey["survey_type"] != "nps") | survey["submitted_at"].isna()
    )
    assert 0.005 < malformed.mean() < 0.02


def test_non_answers_and_very_short_answers(survey: pd.DataFrame) -> None:
    comments = survey["comment"]
    tokens = {"", "n/a", "nada", "-", "rien", "nothing", "geen", "sem comentários", "..."}
    assert tokens <= {a.lower() for a in NON_ANSWERS if a is not None}
    non_answer = comments.isna() | comments.fillna("").str.strip().str.lower().isin(
        {a.lower() for a in NON_ANSWERS if a is not None}
    )
    assert 0.04 < non_answer.mean() < 0.07
    assert comments.fillna("").str.lower().isin(tokens).sum() > 30
    assert comments.isna().any() and (comments == "").any()
    assert comments.isin(["ok", "good", "top"]).any()


def test_personal_data_is_present_and_matches_truth(survey: pd.DataFrame) -> None:
    comments = _comments(survey)
    for pattern in (EMAIL, PHONE, CARD, URL, HANDLE):
        assert comments.str.contains(pattern).any(), pattern.pattern
    pii_rows = survey[survey["true_pii"].map(len) > 0]
    assert 0.02 < len(pii_rows) / len(survey) < 0.06
    for comment, values in zip(pii_rows["comment"], pii_rows["true_pii"], strict=True):
        assert all(v in comment for v in values)
    assert comments.str.contains(EMAIL).mean() > 0.01


def test_huge_and_undecodable_comments(survey: pd.DataFrame) -> None:
    comments = _comments(survey)
    assert comments.str.len().max() == 50_000
    bad = comments[comments.str.contains("\ufffd")]
    assert 1 <= len(bad) <= 5
    assert bad.str.contains(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]").all()


def test_every_issue_appears_in_a_small_survey() -> None:
    df = generate_survey(n=150, seed=11, with_truth=True)
    assert len(df) == 150
    expected = {
        "non_answer",
        "pii",
        "very_short",
        "duplicate",
        "foreign_language",
        "score_out_of_range",
        "score_nan",
        "unknown_survey_type",
        "missing_submitted_at",
        "huge_comment",
        "bad_bytes",
    }
    assert expected <= set(df["true_issue"].dropna())


# ----------------------------------------------------------------------------------------- taxonomy


def test_taxonomy_has_the_required_fields(taxonomy: dict) -> None:
    assert taxonomy["version"] == "2026.11.1"
    names = [t["name"] for t in taxonomy["tags"]]
    assert len(names) == len(set(names))
    for tag in taxonomy["tags"]:
        assert set(tag) <= {"name", "description", "parent", "polarity", "examples", "threshold"}, tag
        assert re.fullmatch(r"[a-z][a-z_]*", tag["name"])
        assert isinstance(tag["description"], str) and tag["description"].endswith(".")
        assert tag["polarity"] in {"negative", "positive", "neutral"}
        assert 8 <= len(tag["examples"]) <= 15, tag["name"]
        assert all(isinstance(e, str) and e.strip() for e in tag["examples"])
        if "parent" in tag:
            assert tag["parent"] in names, tag["parent"]
            assert tag["parent"] != tag["name"]
    assert {t.get("parent") for t in taxonomy["tags"]} >= {"delivery", "billing", "support", "digital"}
    loaded = load_taxonomy(TAXONOMY_PATH)  # the loader the tagger uses accepts it too
    assert loaded.ancestors("app_crash") == ["digital"]


def test_taxonomy_examples_are_not_the_generator_templates(taxonomy: dict) -> None:
    def words(text: str) -> set[str]:
        return set(re.findall(r"\w+", re.sub(r"\{\w+\}", " ", text).lower()))

    templates = [t for by_lang in PHRASES.values() for ts in by_lang.values() for t in ts]
    template_words = [words(t) for t in templates]
    for tag in taxonomy["tags"]:
        for example in tag["examples"]:
            assert not any(example.lower() in t.lower() for t in templates), example
            ex = words(example)
            overlap = max(len(ex & tw) / len(ex | tw) for tw in template_words)
            assert overlap < 0.5, example


# ----------------------------------------------------------------------------------------- export


def test_parquet_export_round_trips(tmp_path: Path) -> None:
    df = generate_survey(n=300, seed=9)
    path = write_export(df, tmp_path / "out" / "survey.parquet")
    assert path.exists()
    pd.testing.assert_frame_equal(pd.read_parquet(path), df, check_dtype=False)


def test_csv_export_holds_invalid_utf8(tmp_path: Path, survey: pd.DataFrame) -> None:
    path = write_export(survey, tmp_path / "survey.csv")
    raw = path.read_bytes()
    assert b"\xff" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    back = pd.read_csv(io.StringIO(raw.decode("utf-8", errors="replace")), keep_default_na=False)
    assert len(back) == len(survey)
    bad = survey["comment"].fillna("").str.contains("\ufffd")
    assert back.loc[bad.to_numpy(), "comment"].tolist() == survey.loc[bad, "comment"].tolist()
    assert back["true_tags"].str.contains("|", regex=False).any()


def test_export_rejects_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.parquet"):
        write_export(generate_survey(n=5), tmp_path / "survey.xlsx")


# The sample's phrases live in pipeline/demo/data/*.json: moving them out of the module must not change a
# single generated value. Digests of the frames the module wrote before the move (seed and size fixed).
GOLDEN_SAMPLE_DIGESTS = {
    (2400, 42, False): "bc53b3e6ecd625a12effe1bf648905e02cd6a0fb2c4d485caa4b25f82e4ab5e2",
    (2400, 42, True): "b429ebc1fabab23c58d2658fbec0aa2ccfd08a2922d4385cbf2b60d00f51b3a5",
    (500, 7, True): "3dd50abc7e92f058c408e5a07385848ae0e8d4991f64b99789cce3655587bc08",
}


@pytest.mark.parametrize(("n", "seed", "with_truth"), list(GOLDEN_SAMPLE_DIGESTS))
def test_sample_is_byte_identical_to_the_golden_digest(n, seed, with_truth):
    import hashlib

    df = generate_survey(n=n, seed=seed, with_truth=with_truth)
    digest = hashlib.sha256(
        pd.util.hash_pandas_object(df.astype(str), index=True).to_numpy().tobytes()
    ).hexdigest()
    assert digest == GOLDEN_SAMPLE_DIGESTS[(n, seed, with_truth)]


def test_sample_tables_are_read_from_the_package_data():
    from importlib import resources

    from pipeline.demo import tables

    names = sorted(p.name for p in resources.files("pipeline.demo").joinpath("data").iterdir())
    assert names == ["issues.json", "phrases.json", "slots.json"]
    # Lists in the files come back as the tuples the generator indexes.
    assert isinstance(tables.PHRASES["app_crash"]["en"], tuple)
    assert tables.FOREIGN_ANSWERS[0][2] == ("delivery_delay",)
    assert None in tables.NON_ANSWERS
