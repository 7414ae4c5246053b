"""Phone numbers: digit spans handed to ``phonenumbers``, with the guards it lacks (amounts, dates, thousands,
order-number context)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pipeline.errors import optional_import
from pipeline.prepare.pii.kinds import _DIGITS_RE, _REGIONS, PLACEHOLDERS, _context

# --------------------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------------------

# A span of digits with phone-like separators: the candidates handed to phonenumbers.
_PHONE_SPAN_RE = re.compile(r"(?<![\w+@#/.,-])(?:\(\+|[+(])?\d(?:[ .()/\-]{1,3}\d|\d)*\)?")
# A written phone number is at most ~25 characters ("+55 (11) 9 8765-4321"); a longer run of digits and
# separators is a list or a table of numbers, and phonenumbers is not asked about it (this also keeps a
# 50,000-character digit string linear).
_MAX_PHONE_SPAN = 64
_CURRENCY_BEFORE_RE = re.compile(r"(?:[$€£¥]|\b(?:R\$|USD|EUR|BRL|GBP|MXN|ARS|CAD))\s?$", re.IGNORECASE)
_CURRENCY_AFTER_RE = re.compile(
    r"\s?(?:[$€£¥%]|(?:euros?|reais|real|pesos?|d[oó]lar(?:es)?|dollars?|eur|usd|brl|mxn|ars|cad)\b)",
    re.IGNORECASE,
)
_YEAR_RE = re.compile(r"(?:19|20)\d\d")
# "+1 " or "(11) " left before a part that phonenumbers accepted on its own
_PHONE_PREFIX_RE = re.compile(r"(?:\+\d{1,3}|\(\d{1,4}\))[ .-]?$")
_TRUNK_RE = re.compile(r"0[1-9]\d{7,10}")
_CEP_RE = re.compile(r"\d{5}-\d{3}")
_LONG_GROUP_RE = re.compile(r"\d{3}")
_BR_MOBILE_RE = re.compile(r"[1-9]\d 9\d{8}")
_SLASH_DATE_RE = re.compile(r"(?<!\d)\d{1,2}/\d{1,2}(?!\d)")
# The start of an IBAN (country, check digits, groups) right before a span: the span is the rest of an
# IBAN whose checksum failed ("NL00 ABNA 0417 1643 00"), not a phone.
_IBAN_HEAD_RE = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4})* ?$", re.IGNORECASE)


def _phonenumbers() -> Any:
    return optional_import(
        "phonenumbers",
        "Phone redaction needs phonenumbers: pip install 'phonenumbers>=8.13'.",
    )


@lru_cache(maxsize=8192)
def _valid_phones(candidate: str) -> tuple[tuple[int, int], ...]:
    """Spans (relative to ``candidate``) that phonenumbers finds valid in one of the regions."""
    pn = _phonenumbers()
    # a "+" number is parsed by its own country code whatever the region: one pass is enough
    regions = _REGIONS[:1] if candidate.lstrip("(").startswith("+") else _REGIONS
    found: set[tuple[int, int]] = set()
    for region in regions:
        for match in pn.PhoneNumberMatcher(candidate, region, leniency=pn.Leniency.VALID):
            found.add((match.start, match.end))
    return tuple(found)


@lru_cache(maxsize=8192)
def _possible_phone(candidate: str) -> bool:
    """Whether phonenumbers finds ``candidate`` of a possible length for a phone (valid or not: fictional
    ranges such as 555-01xx or 07700 900xxx, new ranges missing from its metadata)."""
    pn = _phonenumbers()
    if candidate.startswith("00"):
        candidate = "+" + candidate[2:]
    regions: tuple[str | None, ...] = (None,) if candidate.startswith("+") else _REGIONS
    for region in regions:
        try:
            number = pn.parse(candidate, region)
        except pn.NumberParseException:
            continue
        if pn.is_possible_number(number):
            return True
    return False


def _is_date(groups: list[str], seps: list[str]) -> bool:
    """True for 12-05-2023, 2023.05.12, 01 05 2023 and the like (same separator, day/month <= 31)."""
    if len(groups) != 3 or len(set(seps)) != 1:
        return False
    lengths = [len(g) for g in groups]
    if lengths[0] == 4 and lengths[1] <= 2 and lengths[2] <= 2:
        return int(groups[1]) <= 31 and int(groups[2]) <= 31
    if lengths[0] <= 2 and lengths[1] <= 2 and lengths[2] in (2, 4):
        return int(groups[0]) <= 31 and int(groups[1]) <= 31
    return False


def _phone_guards_pass(text: str, start: int, end: int, context: str | None) -> bool:
    """The rules phonenumbers lacks: amounts, dates, thousands, lists of numbers, order numbers."""
    candidate = text[start:end]
    before = text[max(0, start - 2) : start]
    after = text[end : end + 2]
    if before[-1:].isdigit() or after[:1].isdigit():
        return False  # a piece of a longer digit run
    if (len(before) == 2 and before[1] in ".,/:" and before[0].isdigit()) or (
        len(after) == 2 and after[0] in ".,/:" and after[1].isdigit()
    ):
        return False  # glued to other numbers: "23793.38128 60000.000003", "07/05/2018 15:21"
    if _SLASH_DATE_RE.search(candidate):
        return False  # "26/04 2018", "07/05/2018 15": a slash is a phone separator only after a prefix
    groups = _DIGITS_RE.findall(candidate.replace("(0)", ""))  # "+33 (0)6 ...": the trunk 0 is no group
    n_digits = sum(len(g) for g in groups)
    if not 8 <= n_digits <= 15:
        return False
    if sum(len(g) < 2 for g in groups[1:]) > 1:  # "1 2 3 4 5 6 7 8": a list of small numbers
        return False
    if len(groups) > 1 and all(_YEAR_RE.fullmatch(g) for g in groups):
        return False  # "2019 2020 2021"
    if _CURRENCY_BEFORE_RE.search(text, max(0, start - 5), start) or _CURRENCY_AFTER_RE.match(text, end):
        return False  # "123 456 789 €": an amount
    if candidate.lstrip("(").startswith("+"):
        return True  # written with a country code: a phone whatever is around it
    if context in ("order", "tax"):
        return False  # "pedido 612345678", "protocolo 02-657610648", "ticket n° 0045 1234 5678"
    if candidate.startswith("00") and n_digits >= 11:
        return True  # 00 + country code: the international prefix dialled from Europe
    if len(groups) == 1:  # a bare run of digits: only with a national trunk prefix or a phone word
        return context == "phone" or _TRUNK_RE.fullmatch(candidate) is not None
    seps = [s.strip() or " " for s in re.split(r"\d+", candidate)[1:-1]]
    if _is_date(groups, seps) or _CEP_RE.fullmatch(candidate):
        return False  # "12.03.2024", a Brazilian CEP "01310-100"
    if "." in seps:
        # "49.90 59.90", "123.456.789-09", "23793.38128": prices and ids, not phones
        if len(set(seps)) > 1 or any(len(g) > 4 for g in groups):
            return False
        if all(len(g) == 3 for g in groups[1:]):  # 12.345.678: thousands separators (dotted phones
            # come in groups of 2-4: 06.12.34.56.78, 555.123.4567)
            return False
    # "02-657610648": an order number. Only a Brazilian mobile after its area code ("21 964281762") has a
    # group of 9 digits; it is taken after a phone word.
    if context == "phone" and len(groups) == 2 and _BR_MOBILE_RE.fullmatch(groups[0] + " " + groups[1]):
        return True
    return not any(len(g) > 8 for g in groups)


def _find_phones(text: str, span: re.Match[str]) -> list[tuple[int, int]]:
    """Phone numbers inside one candidate span, longest first, not overlapping."""
    start, end = span.span()
    candidate = span.group(0)
    if end < len(text) and text[end].isalpha():
        return []  # "12345678Z", "600ml": a code or a quantity
    if _IBAN_HEAD_RE.search(text, max(0, start - 40), start):
        return []
    context = _context(text, start)
    found: list[tuple[int, int]] = []
    rejected: list[tuple[int, int]] = []
    for a, b in _valid_in_span(candidate):
        a, b = start + a, start + b
        if any(a < y and x < b for x, y in found) or any(x <= a and b <= y for x, y in rejected):
            continue  # overlaps a phone, or is a piece of a valid number rejected as a whole
        whole = (a, b)
        prefix = _PHONE_PREFIX_RE.search(text, start, a)
        if prefix and not any(prefix.start() < y and x < b for x, y in found):
            a = prefix.start()  # "+1 (555) 123-4567": the country code goes with the number
        a, b = _balance_parentheses(text, a, b)
        if _phone_guards_pass(text, a, b, context):
            found.append((a, b))
        else:
            rejected.append(whole)
    # Numbers phonenumbers does not call valid (fictional or new ranges) still count when written with a
    # country code or announced by a phone word, if their length is possible.
    a, b = _balance_parentheses(text, start, end)
    if (
        (candidate.startswith(("+", "(+", "00")) or context == "phone")
        and not any(start <= x < end for x, _ in found)
        and _possible_phone(text[a:b].replace("(+", "+", 1))
        and _phone_guards_pass(text, a, b, context)
    ):
        found.append((a, b))
    return sorted(found)


def _valid_in_span(candidate: str) -> list[tuple[int, int]]:
    """Valid numbers in a span, left-most first, then longest first. A span of more than 15 digits may hold two numbers
    ("31 3488 8004 31 9 8802 0306"), which the matcher does not split: its windows of whole digit groups
    with 8-15 digits are asked about too."""
    spans = set(_valid_phones(candidate))
    groups = list(_DIGITS_RE.finditer(candidate))
    if sum(g.end() - g.start() for g in groups) > 15:
        for i, first in enumerate(groups):
            digits = 0
            for j in range(i, len(groups)):
                digits += groups[j].end() - groups[j].start()
                if digits > 15:
                    break
                small = sum(g.end() - g.start() < 2 for g in groups[i + 1 : j + 1])
                window = candidate[first.start() : groups[j].end()]
                # a window must be one whole number, and either start with a trunk 0 or hold a group of
                # 3+ digits: a list of two-digit numbers ("10 23 45 67 89 12 ...") holds no phone
                if (
                    digits >= 8
                    and small <= 1
                    and (window[0] == "0" or _LONG_GROUP_RE.search(window))
                    and (0, len(window)) in _valid_phones(window)
                ):
                    spans.add((first.start(), groups[j].end()))
    return sorted(spans, key=lambda ab: (ab[0], ab[0] - ab[1]))


def _balance_parentheses(text: str, start: int, end: int) -> tuple[int, int]:
    """Drop an opening or closing parenthesis that belongs to the sentence ("(06 12 34 56 78)")."""
    span = text[start:end]
    if span.count("(") > span.count(")") and span.startswith("("):
        start += 1
    elif span.count(")") > span.count("(") and span.endswith(")"):
        end -= 1
    return start, end


def _redact_phones(text: str) -> tuple[str, int]:
    pieces: list[str] = []
    last = 0
    count = 0
    for span in _PHONE_SPAN_RE.finditer(text):
        if span.end() - span.start() > _MAX_PHONE_SPAN or span.end() - span.start() < 8:
            continue  # shorter than 8 characters: fewer than the 8 digits of the shortest phone
        for start, end in _find_phones(text, span):
            pieces.append(text[last:start])
            pieces.append(PLACEHOLDERS["phone"])
            last = end
            count += 1
    if not count:
        return text, 0
    pieces.append(text[last:])
    return "".join(pieces), count
