"""The project's own synthetic sample survey: NPS "why" answers in five languages, with known truth.

This is the demo data of ``feedback demo`` and the fixture of many tests. Every phrase it writes (the
tables in ``pipeline/demo/data/*.json``) was written for this project; nothing is copied from any dataset.

What it simulates: an e-commerce / subscription company asks "How likely are you to recommend us?" (0-10)
and "Why?". Answers are in English, Portuguese, Spanish, French and Dutch, mention one to three themes of
the taxonomy (``configs/taxonomy.yaml``), and their scores agree with their tone. The theme mix has
structure that root-cause analysis should find:

* ``app_crash`` is concentrated in ``channel == "app"`` and grows over the last three weeks (a bad app
  release, version 6.0.x), which also pushes app detractors up;
* ``delivery_delay`` is much more frequent in ``region == "South"``;
* ``billing_error`` spikes in a one-week incident window 38-45 days before ``end``;
* ``support_wait`` is a phone-channel problem, ``price`` a premium-plan one, ``cancellation`` a basic-plan one.

It also carries the data-quality problems of a real export (shares of all rows, for the default ``n``):
non-answers ~5%, personal data in the comment ~4%, very short answers ~1.5%, exact duplicate submissions
~1%, malformed rows ~1% (score 11 or -3, NaN score, survey_type "unknown", NaT submitted_at), a few answers
in German or Italian, one 50,000-character comment and three comments with U+FFFD and control characters
(written as real invalid UTF-8 bytes by :func:`write_export` for CSV).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.demo.tables import (
    _KEEP_CASE,
    AGENTS,
    APP_RELEASE_DAYS,
    BASE_THEME_WEIGHTS,
    BILLING_INCIDENT_DAYS,
    CARD_NUMBERS,
    CHANNEL_WEIGHTS,
    CHANNELS,
    CONNECTORS,
    CONTROL_CHARS,
    DEFAULT_END,
    DEVICES,
    EMAIL_DOMAINS,
    EMOJI,
    FIRST_NAMES,
    FIXED_ISSUE_COUNTS,
    FOREIGN_ANSWERS,
    GENERIC,
    HOUR_WEIGHTS,
    HUGE_COMMENT_CHARS,
    ISSUE_SHARES,
    LANGUAGE_WEIGHTS,
    LANGUAGES,
    LAST_NAMES,
    MILD_TAGS,
    NEGATIVE_TAGS,
    NON_ANSWERS,
    OUT_OF_RANGE_SCORES,
    PHONE_FORMATS,
    PHRASES,
    PII_KIND_WEIGHTS,
    PII_SENTENCES,
    PLAN_WEIGHTS,
    PLANS,
    POSITIVE_TAGS,
    PRODUCTS,
    REGION_WEIGHTS,
    REGIONS,
    SCORE_WEIGHTS,
    SHORT_ANSWERS,
    TAG_POLARITY,
    TRUTH_COLUMNS,
    URL_FORMATS,
    WEEKDAY_WEIGHTS,
)
from pipeline.errors import ConfigError

__all__ = [
    "DEFAULT_END",
    "ISSUE_SHARES",
    "LANGUAGES",
    "NON_ANSWERS",
    "PHRASES",
    "TAG_POLARITY",
    "TRUTH_COLUMNS",
    "generate_survey",
    "write_export",
]

# --------------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------------


def generate_survey(
    n: int = 2400,
    seed: int = 42,
    days: int = 90,
    end: datetime | None = None,
    with_truth: bool = False,
) -> pd.DataFrame:
    """Generate the synthetic NPS survey export.

    Args:
        n: Number of rows, duplicates included (about 1% of the rows repeat another row exactly).
        seed: Seed of ``numpy.random.default_rng``; the same seed gives the same frame.
        days: Length of the window, in days before ``end``, over which answers are spread.
        end: End of the window (exclusive). Defaults to :data:`DEFAULT_END`, a fixed date, so the output
            does not depend on when it is generated. Timezone-aware values are converted to naive UTC.
        with_truth: Also return the hidden truth: ``true_language`` (ISO 639-1, None for non-answers),
            ``true_sentiment`` (negative/neutral/positive/mixed, None for non-answers), ``true_tags``
            (list of taxonomy tags), ``true_issue`` (the data-quality issue injected into the row, or None)
            and ``true_pii`` (the personal-data strings inserted into the comment).

    Returns:
        A DataFrame with columns ``response_id``, ``survey_type``, ``score``, ``comment``,
        ``submitted_at`` (naive UTC), ``customer_id``, ``channel``, ``region``, ``plan`` (+ truth columns).
        Rows are in submission order.

    Raises:
        ConfigError: if ``n`` or ``days`` is not a positive integer.
    """
    if int(n) != n or n < 1:
        raise ConfigError(f"generate_survey: n must be a positive integer, got {n!r}.")
    if int(days) != days or days < 1:
        raise ConfigError(f"generate_survey: days must be a positive integer, got {days!r}.")
    end_ts = pd.Timestamp(DEFAULT_END if end is None else end)
    if end_ts.tzinfo is not None:
        end_ts = end_ts.tz_convert("UTC").tz_localize(None)
    rng = np.random.default_rng(seed)

    counts = _issue_counts(int(n))
    n_unique = int(n) - counts["duplicate"]
    rows = _base_rows(rng, n_unique, int(days), end_ts)
    _inject_issues(rng, rows, counts)

    # Webhook resends: exact copies with the same response_id, right after the original.
    clean = [i for i, r in enumerate(rows) if r["true_issue"] is None]
    k = min(counts["duplicate"], len(clean))
    dup_idx = np.sort(rng.choice(clean, size=k, replace=False)) if k else np.array([], dtype=int)
    for i in dup_idx:
        rows[int(i)]["true_issue"] = "duplicate"
    order = np.sort(np.concatenate([np.arange(len(rows)), dup_idx]).astype(int), kind="stable")

    df = pd.DataFrame([rows[i] for i in order])
    df["score"] = df["score"].astype("float64")
    df["submitted_at"] = pd.to_datetime(df["submitted_at"]).astype("datetime64[ns]")
    df["true_tags"] = [list(t) for t in df["true_tags"]]
    df["true_pii"] = [list(p) for p in df["true_pii"]]
    columns = [
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
    return df[columns + TRUTH_COLUMNS] if with_truth else df[columns]


def write_export(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a survey frame as a Parquet or CSV export, as a survey platform would.

    For CSV (UTF-8), every U+FFFD in the frame is written as the invalid byte ``0xFF``: the file then
    holds real undecodable bytes, and decoding it with ``errors="replace"`` gives the frame's text back.
    List columns (the truth columns) are written as "|"-separated strings in CSV.

    Args:
        df: The frame, e.g. from :func:`generate_survey`.
        path: Target file; its suffix (``.parquet`` or ``.csv``) chooses the format. Parent folders are
            created.

    Returns:
        The path written.

    Raises:
        ConfigError: if the suffix is neither ``.parquet`` nor ``.csv``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(
            f"write_export: cannot write {path.name!r}: expected a '.parquet' or '.csv' suffix, "
            f"found {path.suffix!r}. Rename the target file."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.to_parquet(path, index=False)
        return path
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, list | tuple)).any():
            out[col] = out[col].map(lambda v: "|".join(v) if isinstance(v, list | tuple) else v)
    data = out.to_csv(index=False, lineterminator="\n").encode("utf-8")
    # What undecodable bytes became in the frame goes back to being undecodable bytes in the file.
    path.write_bytes(data.replace("\ufffd".encode(), b"\xff"))
    return path


# --------------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, seq: Sequence[Any]) -> Any:
    return seq[int(rng.integers(len(seq)))]


def _pick_weighted(rng: np.random.Generator, items: Sequence[Any], weights: Sequence[float]) -> Any:
    cum = np.cumsum(weights)
    return items[int(np.searchsorted(cum, rng.random() * cum[-1], side="right"))]


def _digits(rng: np.random.Generator, pattern: str) -> str:
    return "".join(str(int(rng.integers(10))) if c == "#" else c for c in pattern)


def _issue_counts(n: int) -> dict[str, int]:
    counts = {}
    for issue, share in ISSUE_SHARES.items():
        c = int(round(share * n))
        counts[issue] = max(c, 1) if n >= 100 else c
    for issue, c in FIXED_ISSUE_COUNTS.items():
        counts[issue] = c if n >= 100 else 0
    return counts


def _timestamps(rng: np.random.Generator, n: int, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Sorted submission times in [start, end), with weekday and hour-of-day patterns and slight growth."""
    first = start.normalize()
    n_days = int((end.normalize() - first).days) + 1
    dates = pd.date_range(first, periods=n_days, freq="D")
    weights = WEEKDAY_WEIGHTS[dates.day_of_week] * (1.0 + 0.3 * np.linspace(0.0, 1.0, n_days))
    p_day = weights / weights.sum()
    p_hour = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
    base = np.datetime64(first.to_datetime64(), "s")
    lo, hi = np.datetime64(start.to_datetime64(), "s"), np.datetime64(end.to_datetime64(), "s")
    parts: list[np.ndarray] = []
    have = 0
    while have < n:
        m = 2 * (n - have) + 16
        secs = (
            rng.choice(n_days, size=m, p=p_day) * 86400
            + rng.choice(24, size=m, p=p_hour) * 3600
            + rng.integers(0, 3600, size=m)
        )
        ts = base + secs.astype("timedelta64[s]")
        ts = ts[(ts >= lo) & (ts < hi)]
        parts.append(ts)
        have += len(ts)
    return np.sort(np.concatenate(parts)[:n])


def _base_rows(rng: np.random.Generator, n: int, days: int, end: pd.Timestamp) -> list[dict[str, Any]]:
    """Clean answers, in submission order, with ids assigned in that order."""
    n_cust = max(1, int(round(n * 0.8)))
    cust_num = rng.choice(max(900_000, 2 * n_cust), size=n_cust, replace=False) + 100_000
    cust_lang = rng.choice(len(LANGUAGES), size=n_cust, p=LANGUAGE_WEIGHTS)
    cust_region = rng.choice(len(REGIONS), size=n_cust, p=REGION_WEIGHTS)
    cust_plan = rng.choice(len(PLANS), size=n_cust, p=PLAN_WEIGHTS)
    who = rng.integers(n_cust, size=n)
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_WEIGHTS)
    ts = _timestamps(rng, n, end - pd.Timedelta(days=days), end)
    days_before = (np.datetime64(end.to_datetime64(), "s") - ts) / np.timedelta64(1, "D")

    rows = []
    for i in range(n):
        c = int(who[i])
        lang = LANGUAGES[cust_lang[c]]
        text, tags, sentiment, score = _compose(
            rng,
            lang,
            CHANNELS[channel[i]],
            REGIONS[cust_region[c]],
            PLANS[cust_plan[c]],
            float(days_before[i]),
        )
        rows.append(
            {
                "response_id": f"R{i + 1:06d}",
                "survey_type": "nps",
                "score": score,
                "comment": text,
                "submitted_at": pd.Timestamp(ts[i]),
                "customer_id": f"C{int(cust_num[c]):06d}",
                "channel": CHANNELS[channel[i]],
                "region": REGIONS[cust_region[c]],
                "plan": PLANS[cust_plan[c]],
                "true_language": lang,
                "true_sentiment": sentiment,
                "true_tags": tags,
                "true_issue": None,
                "true_pii": [],
            }
        )
    return rows


def _stance_probs(channel: str, region: str, plan: str, days_before: float) -> np.ndarray:
    """Probabilities of (negative, positive, mixed, neutral) for one answer's segment and time."""
    neg, pos, mixed, neutral = 0.30, 0.45, 0.16, 0.09
    shift = 0.0
    if channel == "app":
        shift += 0.22 * _release_ramp(days_before)
    if region == "South":
        shift += 0.07
    if BILLING_INCIDENT_DAYS[0] <= days_before < BILLING_INCIDENT_DAYS[1]:
        shift += 0.08
    if plan == "premium":
        shift -= 0.04
    neg, pos = neg + shift, max(pos - shift, 0.05)
    p = np.array([neg, pos, mixed, neutral])
    return p / p.sum()


def _release_ramp(days_before: float) -> float:
    """0 before the bad app release, rising to 1 at `end`."""
    return float(np.clip((APP_RELEASE_DAYS - days_before) / APP_RELEASE_DAYS, 0.0, 1.0))


def _theme_weights(
    tags: Sequence[str], channel: str, region: str, plan: str, days_before: float
) -> np.ndarray:
    """How likely each theme is for this segment and time: the structure root-cause analysis should find."""
    ramp = _release_ramp(days_before)
    w = {t: BASE_THEME_WEIGHTS[t] for t in tags}
    factors: dict[str, float] = {
        "delivery_delay": (2.6 if region == "South" else 1.0) * (0.5 if channel == "store" else 1.0),
        "app_crash": {"app": 4.0 * (1.0 + 4.0 * ramp), "web": 0.4}.get(channel, 0.15),
        "login_issue": {"app": 1.3, "web": 1.3, "store": 0.4}.get(channel, 0.8),
        "support_wait": {"phone": 2.5, "store": 0.4}.get(channel, 1.0),
        "billing_error": 4.0 if BILLING_INCIDENT_DAYS[0] <= days_before < BILLING_INCIDENT_DAYS[1] else 1.0,
        "price": {"premium": 1.8, "basic": 0.8}.get(plan, 1.0),
        "cancellation": 1.5 if plan == "basic" else 1.0,
        "fast_delivery": {"North": 1.8, "South": 0.5}.get(region, 1.0) * (0.4 if channel == "store" else 1.0),
        "support_helpful": {"store": 2.2, "phone": 1.8, "app": 0.7}.get(channel, 1.0),
        "website_usability": {"web": 1.6, "store": 0.4, "app": 1.0 - 0.7 * ramp}.get(channel, 0.8),
        "product_quality": 1.6 if plan == "premium" else 1.0,
    }
    return np.array([w[t] * factors.get(t, 1.0) for t in tags])


def _choose_themes(rng: np.random.Generator, pool: Sequence[str], k: int, weights: np.ndarray) -> list[str]:
    weights = weights.astype(float).copy()
    chosen: list[str] = []
    for _ in range(min(k, len(pool))):
        j = _pick_weighted(rng, range(len(pool)), weights)
        chosen.append(pool[j])
        weights[j] = 0.0
    return chosen


def _fill(rng: np.random.Generator, template: str, lang: str, days_before: float) -> str:
    """Fill a phrase template's slots with plausible, language-appropriate values."""
    if "{" not in template:
        return template
    values: dict[str, str] = {}
    if "{days}" in template:
        values["days"] = str(int(rng.integers(3, 16)))
    if "{weeks}" in template:
        values["weeks"] = str(int(rng.integers(2, 6)))
    if "{fast_days}" in template:
        values["fast_days"] = str(int(rng.integers(2, 4)))
    if "{n}" in template:
        values["n"] = str(int(rng.integers(2, 6)))
    if "{minutes}" in template:
        values["minutes"] = str(5 * int(rng.integers(4, 20)))
    if "{amount}" in template:
        amount = int(rng.integers(5, 60)) + _pick(rng, (0.99, 0.9, 0.0, 0.49))
        values["amount"] = _format_amount(amount, lang)
    if "{product}" in template:
        values["product"] = _pick(rng, PRODUCTS[lang])
    if "{agent}" in template:
        values["agent"] = _pick(rng, AGENTS[lang])
    if "{device}" in template:
        values["device"] = _pick(rng, DEVICES)
    if "{version}" in template:
        if days_before < APP_RELEASE_DAYS:
            values["version"] = f"6.0.{int(rng.integers(0, 3))}"
        else:
            values["version"] = f"5.{int(rng.integers(7, 10))}.{int(rng.integers(0, 5))}"
    return template.format(**values)


def _format_amount(amount: float, lang: str) -> str:
    if lang == "en":
        return f"€{amount:.2f}"
    text = f"{amount:.2f}".replace(".", ",")
    return {"pt": f"R$ {text}", "nl": f"€ {text}"}.get(lang, f"{text} €")


def _lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0].rstrip(",.!:")
    if first in _KEEP_CASE or not sentence:
        return sentence
    return sentence[0].lower() + sentence[1:]


def _score(rng: np.random.Generator, kind: str) -> float:
    return float(_pick_weighted(rng, range(11), SCORE_WEIGHTS[kind]))


def _compose(
    rng: np.random.Generator, lang: str, channel: str, region: str, plan: str, days_before: float
) -> tuple[str, list[str], str, float]:
    """One clean answer: (text, tags, sentiment, score)."""
    stance = _pick_weighted(
        rng, ("negative", "positive", "mixed", "neutral"), _stance_probs(channel, region, plan, days_before)
    )
    # Each block is (polarity, [sentences]); a connector goes before a block whose tone changes.
    blocks: list[tuple[str, list[str]]] = []
    tags: list[str] = []
    if stance in ("negative", "positive"):
        pool = NEGATIVE_TAGS if stance == "negative" else POSITIVE_TAGS
        k = 0 if rng.random() < 0.06 else _pick_weighted(rng, (1, 2, 3), (0.70, 0.24, 0.06))
        tags = _choose_themes(rng, pool, k, _theme_weights(pool, channel, region, plan, days_before))
        sentences = [_fill(rng, _pick(rng, PHRASES[t][lang]), lang, days_before) for t in tags]
        if not tags or rng.random() < 0.3:
            sentences.append(_pick(rng, GENERIC[stance][lang]))
        blocks.append((stance, sentences))
    elif stance == "mixed":
        n_pos, n_neg = _pick(rng, ((1, 1), (1, 1), (1, 1), (2, 1), (1, 2)))
        pos = _choose_themes(
            rng, POSITIVE_TAGS, n_pos, _theme_weights(POSITIVE_TAGS, channel, region, plan, days_before)
        )
        neg = _choose_themes(
            rng, NEGATIVE_TAGS, n_neg, _theme_weights(NEGATIVE_TAGS, channel, region, plan, days_before)
        )
        pos_block = ("positive", [_fill(rng, _pick(rng, PHRASES[t][lang]), lang, days_before) for t in pos])
        neg_block = ("negative", [_fill(rng, _pick(rng, PHRASES[t][lang]), lang, days_before) for t in neg])
        blocks = [pos_block, neg_block] if rng.random() < 0.6 else [neg_block, pos_block]
        tags = pos + neg if blocks[0] is pos_block else neg + pos
    else:
        k = 2 if rng.random() < 0.2 else 1
        picked = _choose_themes(rng, GENERIC["neutral"][lang], k, np.ones(len(GENERIC["neutral"][lang])))
        blocks.append(("neutral", picked))

    sentences: list[str] = []
    for b, (polarity, block) in enumerate(blocks):
        for s, sentence in enumerate(block):
            if b > 0 and s == 0:
                sentence = f"{_pick(rng, CONNECTORS[polarity][lang])} {_lower_first(sentence)}"
            sentences.append(sentence)

    style = rng.random()
    if style < 0.08 and len(sentences) > 1:  # typed in a hurry: no capitals, no full stops
        text = ", ".join(_lower_first(s).rstrip(".") for s in sentences)
    elif style < 0.18:
        text = "\n".join(sentences)
    elif style < 0.19 and channel == "web":  # a web form that kept its line breaks as HTML
        text = "<br>".join(sentences)
    else:
        text = " ".join(sentences)
    if stance == "negative" and rng.random() < 0.015:
        text = text.upper()
    if stance in EMOJI and rng.random() < 0.04:
        text = f"{text} {_pick(rng, EMOJI[stance])}"

    if stance == "negative" and tags and all(t in MILD_TAGS for t in tags) and rng.random() < 0.5:
        score = _score(rng, "mild_negative")
    else:
        score = _score(rng, stance)
    return text, tags, stance, score


# --------------------------------------------------------------------------------------------------------
# Data-quality issues
# --------------------------------------------------------------------------------------------------------


def _inject_issues(rng: np.random.Generator, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    """Turn disjoint random subsets of the clean rows into the problem rows of a real export (in place)."""
    perm = rng.permutation(len(rows))
    plan = [
        "bad_bytes",
        "huge_comment",
        "foreign_language",
        "non_answer",
        "very_short",
        "pii",
        "score_out_of_range",
        "score_nan",
        "unknown_survey_type",
        "missing_submitted_at",
    ]
    # Bad bytes come from accented letters written in Latin-1: take those rows from answers that have some.
    bad = [int(i) for i in perm if any(128 <= ord(c) < 256 for c in rows[int(i)]["comment"])]
    bad = bad[: counts["bad_bytes"]]
    taken = set(bad)
    queue = bad + [int(i) for i in perm if int(i) not in taken]
    pos = 0
    for issue in plan:
        k = min(counts[issue], len(queue) - pos)
        for j, i in enumerate(queue[pos : pos + k]):
            _apply_issue(rng, rows[i], issue, j)
        pos += k


def _apply_issue(rng: np.random.Generator, row: dict[str, Any], issue: str, j: int) -> None:
    """Apply one issue to one row; ``j`` counts rows of this issue, to cycle through its variants."""
    row["true_issue"] = issue
    lang = row["true_language"]
    if issue == "non_answer":
        row["comment"] = NON_ANSWERS[j % len(NON_ANSWERS)]
        row.update(true_tags=[], true_sentiment=None, true_language=None)
    elif issue == "very_short":
        word, sentiment = _pick(rng, SHORT_ANSWERS[lang])
        row.update(comment=word, true_tags=[], true_sentiment=sentiment, score=_score(rng, sentiment))
    elif issue == "foreign_language":
        text, foreign, tags, sentiment = FOREIGN_ANSWERS[j % len(FOREIGN_ANSWERS)]
        row.update(comment=text, true_language=foreign, true_tags=list(tags), true_sentiment=sentiment)
        row["score"] = _score(rng, sentiment)
    elif issue == "pii":
        kinds = list(PII_KIND_WEIGHTS)  # one of each kind first, then by weight
        kind = kinds[j] if j < len(kinds) else _pick_weighted(rng, kinds, list(PII_KIND_WEIGHTS.values()))
        value = _pii_value(rng, kind, lang)
        sentence = _pick(rng, PII_SENTENCES[kind][lang]).format(**{kind: value})
        comment = row["comment"]
        row["comment"] = f"{sentence} {comment}" if rng.random() < 0.3 else f"{comment} {sentence}"
        row["true_pii"] = [value]
    elif issue == "huge_comment":
        base = row["comment"] + " "
        row["comment"] = (base * (HUGE_COMMENT_CHARS // len(base) + 1))[:HUGE_COMMENT_CHARS]
    elif issue == "bad_bytes":
        row["comment"] = _mangle(rng, row["comment"])
    elif issue == "score_out_of_range":
        row["score"] = OUT_OF_RANGE_SCORES[j % len(OUT_OF_RANGE_SCORES)]
    elif issue == "score_nan":
        row["score"] = float("nan")
    elif issue == "unknown_survey_type":
        row["survey_type"] = "unknown"
    elif issue == "missing_submitted_at":
        row["submitted_at"] = pd.NaT


def _pii_value(rng: np.random.Generator, kind: str, lang: str) -> str:
    first, last = _pick(rng, FIRST_NAMES[lang]), _pick(rng, LAST_NAMES[lang])
    first, last = _ascii(first), _ascii(last)
    if kind == "email":
        local = _pick(
            rng,
            (
                f"{first}.{last}",
                f"{first}{last}{int(rng.integers(10, 99))}",
                f"{first[0]}{last}",
                f"{first}_{last}",
            ),
        )
        return f"{local}@{_pick(rng, EMAIL_DOMAINS)}"
    if kind == "phone":
        return _digits(rng, _pick(rng, PHONE_FORMATS[lang]))
    if kind == "card":
        return _pick(rng, CARD_NUMBERS)
    if kind == "url":
        return _digits(rng, _pick(rng, URL_FORMATS))
    return f"@{first}_{last[:3]}{int(rng.integers(1, 99))}"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def _mangle(rng: np.random.Generator, text: str) -> str:
    """What a Latin-1 answer looks like after a UTF-8 decode with errors="replace", plus control chars."""
    out = "".join("\ufffd" if ord(c) > 127 else c for c in text)
    if "\ufffd" not in out:
        words = out.split(" ")
        words.insert(max(1, len(words) - 1), "\ufffd\ufffd")
        out = " ".join(words)
    cut = int(rng.integers(1, max(2, len(out))))
    return f"{out[:cut]}{_pick(rng, CONTROL_CHARS)}{out[cut:]}{_pick(rng, CONTROL_CHARS)}"
