"""The sample survey's parameters and tables: segments, volumes, themes, and the phrases and slot values
(read from ``pipeline/demo/data/*.json``, the project's own text) that :mod:`pipeline.demo.sample` writes
answers with."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------------------
# Segments and volumes
# --------------------------------------------------------------------------------------------------------

DEFAULT_END = datetime(2026, 11, 1)
"""Default end of the survey window: fixed, so that a seed gives the same frame on every day."""

LANGUAGES = ("en", "pt", "es", "fr", "nl")  # the languages the phrase tables are written in
LANGUAGE_WEIGHTS = (0.35, 0.20, 0.20, 0.15, 0.10)
CHANNELS = ("web", "app", "store", "phone")
CHANNEL_WEIGHTS = (0.40, 0.30, 0.15, 0.15)
REGIONS = ("North", "South", "East", "West")
REGION_WEIGHTS = (0.28, 0.26, 0.24, 0.22)
PLANS = ("basic", "plus", "premium")
PLAN_WEIGHTS = (0.50, 0.32, 0.18)

# Responses arrive more on Mondays (weekend deliveries) and less at weekends; Monday is weekday 0.
WEEKDAY_WEIGHTS = np.array([1.25, 1.15, 1.05, 1.0, 0.9, 0.7, 0.8])
# Hour of day: a lunch peak and an evening peak, quiet nights.
HOUR_WEIGHTS = np.array(
    [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 2.0, 2.2, 2.3]
    + [2.6, 2.5, 2.2, 2.0, 2.0, 2.2, 2.6, 3.0, 3.1, 2.6, 1.6, 0.8]
)

APP_RELEASE_DAYS = 21  # the bad 6.0 app release shipped this many days before `end`
BILLING_INCIDENT_DAYS = (38.0, 45.0)  # days before `end` of the one-week billing incident

# --------------------------------------------------------------------------------------------------------
# Themes
# --------------------------------------------------------------------------------------------------------

TAG_POLARITY: dict[str, str] = {
    "delivery_delay": "negative",
    "damaged_item": "negative",
    "billing_error": "negative",
    "refund": "negative",
    "price": "negative",
    "support_wait": "negative",
    "app_crash": "negative",
    "login_issue": "negative",
    "cancellation": "negative",
    "fast_delivery": "positive",
    "support_helpful": "positive",
    "website_usability": "positive",
    "product_quality": "positive",
}
"""Every theme the generator writes, with the tone its phrases carry (complaint or praise)."""

NEGATIVE_TAGS = tuple(t for t, p in TAG_POLARITY.items() if p == "negative")
POSITIVE_TAGS = tuple(t for t, p in TAG_POLARITY.items() if p == "positive")

BASE_THEME_WEIGHTS: dict[str, float] = {
    "delivery_delay": 1.3,
    "damaged_item": 0.6,
    "billing_error": 0.6,
    "refund": 0.7,
    "price": 1.0,
    "support_wait": 0.9,
    "app_crash": 0.5,
    "login_issue": 0.6,
    "cancellation": 0.6,
    "fast_delivery": 1.0,
    "support_helpful": 1.1,
    "website_usability": 1.0,
    "product_quality": 1.2,
}

# Themes mild enough that a promoter may still mention them.
MILD_TAGS = frozenset({"price", "support_wait", "delivery_delay"})

# Probability of each score 0..10 given the tone of the text.
SCORE_WEIGHTS: dict[str, np.ndarray] = {
    "negative": np.array([8, 5, 6, 7, 7, 8, 6, 2, 1.2, 0.5, 0.3]),
    "mild_negative": np.array([2, 2, 3, 5, 6, 8, 8, 5, 3, 1, 0.5]),
    "mixed": np.array([0, 0, 0.3, 0.6, 1.5, 4, 6, 7, 5, 1.5, 0.6]),
    "neutral": np.array([0.1, 0.1, 0.2, 0.4, 0.8, 3, 5, 7, 5, 2, 1]),
    "positive": np.array([0, 0, 0, 0, 0.1, 0.3, 0.6, 2, 6, 9, 11]),
}

# --------------------------------------------------------------------------------------------------------
# Phrases and slot values: data files of this package (pipeline/demo/data/*.json), read once at import
# --------------------------------------------------------------------------------------------------------


def _tuples(value: Any) -> Any:
    """JSON lists back to the tuples the tables were written as (dict order is kept)."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def _table_file(name: str) -> dict[str, Any]:
    text = resources.files("pipeline.demo").joinpath("data", name).read_text(encoding="utf-8")
    return {key: _tuples(value) for key, value in json.loads(text).items()}


_PHRASE_FILE = _table_file("phrases.json")
_SLOT_FILE = _table_file("slots.json")
_ISSUE_FILE = _table_file("issues.json")

# Hand-written phrase templates: PHRASES[tag][language]. Slots: {days} {weeks} {fast_days} {n} {minutes}
# {amount} {product} {agent} {device} {version}. Products are singular, masculine in pt/es/fr and de-words
# in nl, so templates may put an article or a pronoun with them.
PHRASES: dict[str, dict[str, tuple[str, ...]]] = _PHRASE_FILE["PHRASES"]
# Sentences that carry a tone but no theme.
GENERIC: dict[str, dict[str, tuple[str, ...]]] = _PHRASE_FILE["GENERIC"]
# Connectors put before a sentence whose tone differs from the one before it (mixed answers).
CONNECTORS: dict[str, dict[str, tuple[str, ...]]] = _PHRASE_FILE["CONNECTORS"]

# Slot values. Agents are female names: pt/es templates agree in gender.
PRODUCTS: dict[str, tuple[str, ...]] = _SLOT_FILE["PRODUCTS"]
AGENTS: dict[str, tuple[str, ...]] = _SLOT_FILE["AGENTS"]
DEVICES: tuple[str, ...] = _SLOT_FILE["DEVICES"]
EMOJI: dict[str, tuple[str, ...]] = _SLOT_FILE["EMOJI"]

# --------------------------------------------------------------------------------------------------------
# Data-quality issues
# --------------------------------------------------------------------------------------------------------

ISSUE_SHARES: dict[str, float] = {
    "non_answer": 0.05,
    "pii": 0.04,
    "very_short": 0.015,
    "duplicate": 0.01,
    "foreign_language": 0.002,
    "score_out_of_range": 0.004,
    "score_nan": 0.002,
    "unknown_survey_type": 0.002,
    "missing_submitted_at": 0.002,
}
"""Share of rows per data-quality issue (at least one of each when n >= 100)."""
FIXED_ISSUE_COUNTS = {"huge_comment": 1, "bad_bytes": 3}
HUGE_COMMENT_CHARS = 50_000
OUT_OF_RANGE_SCORES = (11.0, -3.0)

NON_ANSWERS: tuple[str | None, ...] = _ISSUE_FILE["NON_ANSWERS"]
SHORT_ANSWERS: dict[str, tuple[tuple[str, str], ...]] = _ISSUE_FILE["SHORT_ANSWERS"]
# Answers in a language outside the configured five: (text, language, tags, sentiment).
FOREIGN_ANSWERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = _ISSUE_FILE["FOREIGN_ANSWERS"]

# Personal data. "#" is replaced by a random digit. All of it is invented.
PII_SENTENCES: dict[str, dict[str, tuple[str, ...]]] = _ISSUE_FILE["PII_SENTENCES"]
PII_KIND_WEIGHTS = {"email": 0.35, "phone": 0.35, "card": 0.1, "url": 0.1, "handle": 0.1}
PHONE_FORMATS: dict[str, tuple[str, ...]] = _ISSUE_FILE["PHONE_FORMATS"]
CARD_NUMBERS: tuple[str, ...] = _ISSUE_FILE["CARD_NUMBERS"]
URL_FORMATS: tuple[str, ...] = _ISSUE_FILE["URL_FORMATS"]
FIRST_NAMES: dict[str, tuple[str, ...]] = _ISSUE_FILE["FIRST_NAMES"]
LAST_NAMES: dict[str, tuple[str, ...]] = _ISSUE_FILE["LAST_NAMES"]
EMAIL_DOMAINS: tuple[str, ...] = _ISSUE_FILE["EMAIL_DOMAINS"]
CONTROL_CHARS = ("\x07", "\x0b", "\x0c", "\x1b", "\x7f")

TRUTH_COLUMNS = ["true_language", "true_sentiment", "true_tags", "true_issue", "true_pii"]
"""Hidden columns added with ``with_truth=True``."""

_KEEP_CASE = {"I", "I'm", "I've", "I'd"} | {name for names in AGENTS.values() for name in names}
