"""URLs, e-mails, handles, IBANs, tax ids and cards: the patterns and the published checksums."""

from __future__ import annotations

import re

from pipeline.prepare.pii.kinds import PLACEHOLDERS, _context

# --------------------------------------------------------------------------------------------------------
# URLs and e-mails
# --------------------------------------------------------------------------------------------------------

# URLs first: they may hold an e-mail or digits. Not inside an e-mail ("john@www.x.com").
_URL_RE = re.compile(r"(?<![\w@.])(?:https?://|www\.)[^\s<>\"'\[\]{}]+", re.IGNORECASE)
# Top-level domains that make "label.tld/path" a URL without a scheme: the generic ones, the link
# shorteners' (bit.ly, t.co, goo.gl, youtu.be, amzn.to, wa.me, lnkd.in...) and the country codes of the
# survey's markets and their neighbours. File extensions that are also TLDs (.zip, .mov, .md, .py, .sh,
# .pl) are left out on purpose: "invoice.zip/..." is rarer than a file name next to a slash.
# fmt: off
_TLDS: tuple[str, ...] = (
    "com", "net", "org", "info", "biz", "edu", "gov", "int", "io", "co", "me", "ly", "gl", "gd", "be", "to",
    "tv", "cc", "ws", "fm", "am", "gg", "ai", "app", "dev", "page", "site", "online", "shop", "store",
    "link", "news", "blog", "cloud", "gle", "xyz", "top", "club", "live", "world", "tech", "eu", "uk", "us", "ie",
    "br", "pt", "es", "mx", "ar", "fr", "ca", "nl", "de", "it", "ch", "at", "se", "no", "dk", "fi", "lu",
    "cl", "pe", "uy", "ve", "ec", "bo", "py", "co", "ao", "mz", "cv", "ma", "sn", "ci", "re", "in", "au",
    "nz", "za", "jp", "cn", "ru", "cz", "gr", "tr", "fi", "is",
)
# fmt: on
_TLD_ALTERNATION = "|".join(sorted(set(_TLDS), key=lambda t: (-len(t), t)))
# A domain (labels of letters, digits and inner hyphens), a known TLD, an optional port, then a path.
# The lookbehind lets a match start only at the start of a run of domain characters, which keeps the
# scan linear on 50,000-character strings like "a.a.a.a...".
_BARE_URL_RE = re.compile(
    r"(?<![\w@.\-/:])(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:" + _TLD_ALTERNATION + r")"
    r"(?::\d{1,5})?/[^\s<>\"'\[\]{}]*",
    re.IGNORECASE,
)
_URL_TRAILING = ".,;:!?)]}'\"…»"
# Lookbehind: a match starts only at the start of a run of address characters, which keeps the scan
# linear on 50,000-character strings without spaces.
_EMAIL_RE = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
# @handles (Twitter, Instagram): must contain a letter, so "@ 5" or "@10" stay.
_HANDLE_RE = re.compile(r"(?<![\w@.])@(?=\w*[^\W\d_])\w+(?:\.\w+)*")


def _url_replacement(match: re.Match[str]) -> str:
    url = match.group(0)
    stripped = url.rstrip(_URL_TRAILING)
    # keep a closing parenthesis that belongs to the URL (Wikipedia-style links)
    if url[len(stripped) : len(stripped) + 1] == ")" and stripped.count("(") > stripped.count(")"):
        stripped += ")"
    return PLACEHOLDERS["url"] + url[len(stripped) :]


def _redact_urls(text: str) -> tuple[str, int]:
    count = 0
    if "://" in text or "www." in text.lower():
        text, count = _URL_RE.subn(_url_replacement, text)
    if "/" in text:
        text, bare = _BARE_URL_RE.subn(_url_replacement, text)
        count += bare
    return text, count


# --------------------------------------------------------------------------------------------------------
# IBAN
# --------------------------------------------------------------------------------------------------------

# Length of the IBAN of each country in the SWIFT IBAN registry.
# fmt: off
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30,
    "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27,
    "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24,
    "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "XK": 20,
}
# fmt: on
# Country code, check digits, then groups of four (the printed form) or one run; the exact length is
# checked against the country afterwards, which also drops a word the groups ran into ("... 7034 fine").
_IBAN_RE = re.compile(r"(?<!\w)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?!\w)", re.IGNORECASE)


def iban_ok(iban: str) -> bool:
    """Whether ``iban`` (no spaces) has its country's length and a valid ISO 13616 mod-97 checksum."""
    iban = iban.upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_span(found: str) -> int:
    """Length of the valid IBAN at the start of a match of ``_IBAN_RE`` (0 when there is none)."""
    length = _IBAN_LENGTHS.get(found[:2].upper())
    if length is None:
        return 0
    # walk the printed form until the country's number of characters; it must end at a group boundary
    kept = 0
    cut = len(found)
    for i, char in enumerate(found):
        if char != " ":
            kept += 1
            if kept == length:
                cut = i + 1
                break
    if kept < length or (cut < len(found) and found[cut] != " "):
        return 0
    return cut if iban_ok(found[:cut].replace(" ", "")) else 0


def _redact_ibans(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        found = match.group(0)
        cut = _iban_span(found)
        if not cut:
            return found
        count += 1
        return PLACEHOLDERS["iban"] + found[cut:]

    return _IBAN_RE.sub(replace, text), count


# --------------------------------------------------------------------------------------------------------
# Tax ids
# --------------------------------------------------------------------------------------------------------

_TAX_ID_RE = re.compile(
    r"(?<![\w.,/-])(?:"
    r"(?P<cnpj>\d{2}\.\d{3}\.\d{3}/\d{4}-\d{2}|\d{8}/\d{4}-\d{2})"
    r"|(?P<cpf>\d{3}\.\d{3}\.\d{3}-\d{2}|\d{9}-\d{2})"
    r"|(?P<cnpj_bare>\d{14})"
    r"|(?P<cpf_bare>\d{11})"
    r"|(?P<nif_pt>\d{9}|\d{3} \d{3} \d{3})"
    r"|(?P<dni>(?:\d{8}|\d{2}\.\d{3}\.\d{3})-?[A-Za-z])"
    r"|(?P<nie>[XYZxyz]-?\d{7}-?[A-Za-z])"
    r"|(?P<nif_klm>[KLM]\d{7}[A-Z])"
    r"|(?P<nif_company>[ABCDEFGHJNPQRSUVW]-?\d{7}[0-9A-J])"
    r")(?![\w]|[.,/-]\d)"
)
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def cpf_ok(digits: str) -> bool:
    """Whether an 11-digit string is a valid Brazilian CPF (two mod-11 check digits)."""
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    for size in (9, 10):
        total = sum(int(d) * w for d, w in zip(digits[:size], range(size + 1, 1, -1), strict=True))
        check = total * 10 % 11 % 10
        if check != int(digits[size]):
            return False
    return True


def cnpj_ok(digits: str) -> bool:
    """Whether a 14-digit string is a valid Brazilian CNPJ (two mod-11 check digits)."""
    if len(digits) != 14 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    weights = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
    for size in (12, 13):
        total = sum(int(d) * w for d, w in zip(digits[:size], weights[13 - size :], strict=True))
        check = 0 if total % 11 < 2 else 11 - total % 11
        if check != int(digits[size]):
            return False
    return True


def spanish_id_ok(value: str) -> bool:
    """Whether a Spanish DNI (8 digits + letter), NIE (X/Y/Z + 7 digits + letter), NIF of the K/L/M
    kind (letter + 7 digits + letter) or company NIF (letter + 7 digits + digit or letter) is valid."""
    value = value.upper().replace("-", "").replace(".", "")
    if len(value) != 9:
        return False
    head, body, control = value[0], value[1:8], value[8]
    if not body.isdigit():
        return False
    if head.isdigit():  # DNI
        return value[:8].isdigit() and control == _DNI_LETTERS[int(value[:8]) % 23]
    if head in "XYZ":  # NIE: X/Y/Z stand for 0/1/2
        return control == _DNI_LETTERS[int(str("XYZ".index(head)) + body) % 23]
    if head in "KLM":
        return control == _DNI_LETTERS[int(body) % 23]
    if head in "ABCDEFGHJNPQRSUVW":  # company NIF (the former CIF)
        total = 0
        for i, char in enumerate(body):
            if i % 2:  # 2nd, 4th, 6th digit
                total += int(char)
            else:  # 1st, 3rd, 5th, 7th digit: doubled, digits summed
                total += sum(divmod(int(char) * 2, 10))
        check = (10 - total % 10) % 10
        return control in (str(check), "JABCDEFGHI"[check])
    return False


def portuguese_nif_ok(digits: str) -> bool:
    """Whether a 9-digit string is a valid Portuguese NIF/NIPC (mod-11 check digit)."""
    if len(digits) != 9 or not digits.isdigit() or (digits[0] in "04" and digits[:2] != "45"):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
    check = 11 - total % 11
    return (0 if check >= 10 else check) == int(digits[8])


def _redact_tax_ids(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        kind = match.lastgroup
        value = match.group(0)
        digits = re.sub(r"\D", "", value)
        if kind == "cnpj":
            valid = cnpj_ok(digits)
        elif kind == "cpf":
            valid = cpf_ok(digits)
        elif kind in ("cnpj_bare", "cpf_bare"):
            # a bare digit run: not when a phone word (a Brazilian mobile is 11 digits too) or an order
            # word announces it
            valid = (cnpj_ok if kind == "cnpj_bare" else cpf_ok)(digits) and _context(
                text, match.start()
            ) not in ("phone", "order")
        elif kind == "nif_pt":  # 9 digits are often a phone or an order number: only after a tax word
            valid = _context(text, match.start()) == "tax" and portuguese_nif_ok(digits)
        else:
            valid = spanish_id_ok(value)
        if not valid:
            return value
        count += 1
        return PLACEHOLDERS["tax_id"]

    return _TAX_ID_RE.sub(replace, text), count


# --------------------------------------------------------------------------------------------------------
# Cards
# --------------------------------------------------------------------------------------------------------

# 13-19 digits: contiguous, or in the card groupings 4-4-4-4(-3), 4-6-5 (Amex), 4-6-4 (Diners), with one
# consistent separator, and not inside a longer run of groups (a 44-digit invoice key printed in fours).
# The Luhn check is applied on top.
_CARD_RE = re.compile(
    r"(?<![\w+.,-])(?<!\d[ -])(?:"
    r"\d{4}(?P<s1>[ -]?)\d{4}(?P=s1)\d{4}(?P=s1)\d{4}(?P=s1)\d{1,3}"
    r"|\d{4}(?P<s2>[ -]?)\d{4}(?P=s2)\d{4}(?P=s2)\d{1,7}"
    r"|\d{4}(?P<s3>[ -]?)\d{6}(?P=s3)\d{4,5}"
    r")(?![\w]|[ .,-]\d)"
)


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a digit string (what every payment card number satisfies)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _redact_cards(text: str) -> tuple[str, int]:
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        digits = re.sub(r"\D", "", match.group(0))
        if len(digits) == len(match.group(0)) and _context(text, match.start()) == "order":
            return match.group(0)  # "protocolo 2518042350787": an unbroken id announced as such
        # issuers' numbers start with 2-6 (Mastercard 2/5, Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6)
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_ok(digits):
            count += 1
            return PLACEHOLDERS["card"]
        return match.group(0)

    return _CARD_RE.sub(replace, text), count
