"""PII redaction: personal data in a survey answer replaced by placeholders before any model sees it.

Kinds, in the order :func:`redact_pii` applies them (an earlier kind never leaves a piece that a later one
misreads: a URL may hold an e-mail or digits, an IBAN or a tax id holds digit groups a card or phone rule
would take):

============  ============  ====================================================================
kind          placeholder   what
============  ============  ====================================================================
``url``       ``[URL]``     ``http(s)://...``, ``www....``, and a domain with a known TLD followed
                            by a path (``bit.ly/3xYzAb``, ``example.org/account/jsmith``)
``email``     ``[EMAIL]``   ``name@domain.tld``
``iban``      ``[IBAN]``    country code + check digits + BBAN, with or without spaces; the length
                            of the country's IBAN and the mod-97 checksum must hold
``tax_id``    ``[TAX_ID]``  Brazil: CPF (``123.456.789-09``, 11 bare digits), CNPJ
                            (``12.345.678/0001-95``, 14 bare digits); Spain: DNI (``12345678Z``),
                            NIE (``X1234567L``), NIF (``K1234567S``, company ``B12345674``);
                            Portugal: NIF (9 digits) only after "NIF", "NIPC" or "contribuinte".
                            Check digits / control letter must hold
``card``      ``[CARD]``    13-19 digits, card-grouped or contiguous, Luhn-valid, issuer digit 2-6
``phone``     ``[PHONE]``   what ``phonenumbers`` (``PhoneNumberMatcher``, leniency ``VALID``)
                            accepts in the countries of the five languages (see
                            :data:`PHONE_REGIONS`), plus ``+``/``00`` international numbers of any
                            country; see :func:`redact_pii` for the guards on top
``handle``    ``[HANDLE]``  ``@`` + a word with a letter (``@united``, ``@john.doe``)
============  ============  ====================================================================

What is *not* redacted, by decision: a bare domain without a path (``booking.com``, ``amazon.com.br``:
it names a company, not a person); dotted words and numbers (``e.g.``, ``etc.``, ``v2.3.1``,
``invoice.pdf``: a file extension is not a TLD, and only a path after a known TLD makes a URL);
postcodes, order and tracking numbers, prices, dates, versions, flight numbers, times; a tax id or IBAN
whose check digits fail (a typo'd number is left as it is, like a Luhn-invalid card).

Why some of it is hand-written: ``phonenumbers`` (the maintained library) decides what a phone number is;
the regular expressions here only find the digit spans to ask it about (one linear scan, so a text
without a long digit run never reaches it) and keep the guards it lacks (amounts, dates, thousands,
order-number context). The checksums of IBAN/CPF/CNPJ/DNI/NIE/NIF are the published algorithms, a few
lines each; ``python-stdnum`` has them too but is not a dependency of the project, and these numbers must
be found inside free text anyway (stdnum validates a string you already isolated).
``bench/bench_pii.py`` measures the cost (``bench/README.md``, "PII redaction").

This is a plain library module: no I/O, ``phonenumbers`` imported on first use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pipeline.errors import ConfigError, MissingDependencyError

__all__ = [
    "PHONE_REGIONS",
    "PII_KINDS",
    "PLACEHOLDERS",
    "PLACEHOLDER_RE",
    "check_kinds",
    "redact_pii",
]

#: PII kinds that :func:`redact_pii` knows, in the order they are applied.
PII_KINDS: tuple[str, ...] = ("url", "email", "iban", "tax_id", "card", "phone", "handle")

#: The placeholder that replaces each kind.
PLACEHOLDERS: dict[str, str] = {
    "url": "[URL]",
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "tax_id": "[TAX_ID]",
    "card": "[CARD]",
    "phone": "[PHONE]",
    "handle": "[HANDLE]",
}

#: Any placeholder written by :func:`redact_pii`.
PLACEHOLDER_RE: re.Pattern[str] = re.compile(r"\[(?:EMAIL|URL|IBAN|TAX_ID|PHONE|CARD|HANDLE)\]")

#: Regions (ISO 3166-1) in which national phone formats are recognised, per survey language. Numbers
#: written with ``+`` or ``00`` and a country code are recognised for every country.
PHONE_REGIONS: dict[str, tuple[str, ...]] = {
    "en": ("GB", "US", "IE"),
    "pt": ("BR", "PT"),
    "es": ("ES", "MX", "AR"),
    "fr": ("FR", "BE", "CA"),
    "nl": ("NL", "BE"),
}
_REGIONS: tuple[str, ...] = tuple(dict.fromkeys(r for regions in PHONE_REGIONS.values() for r in regions))


def check_kinds(name: str, kinds: Iterable[str]) -> tuple[str, ...]:
    """Validate PII kinds and return them as a lower-cased tuple.

    Args:
        name: What is being checked, for the message (``"redact_pii(kinds)"``).
        kinds: A sequence of kind names.

    Returns:
        The kinds, stripped and lower-cased, in the given order.

    Raises:
        ConfigError: If ``kinds`` is a bare string or holds an unknown kind; the message lists the valid
            options.
    """
    if isinstance(kinds, str):
        raise ConfigError(f"{name} must be a sequence of codes, e.g. ({kinds!r},), not the string {kinds!r}.")
    try:
        wanted = tuple(str(kind).strip().lower() for kind in kinds)
    except TypeError as exc:
        raise ConfigError(f"{name} must be a sequence of codes; found {type(kinds).__name__}.") from exc
    bad = [kind for kind in wanted if kind not in PLACEHOLDERS]
    if bad:
        raise ConfigError(f"{name}: unknown PII kind(s) {bad}. Valid options: {list(PII_KINDS)}.")
    return wanted


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
# Context words (what a number is announced as)
# --------------------------------------------------------------------------------------------------------

# Words before a number that say what it is, in en/pt/es/fr/nl. The nearest one within 40 characters
# wins: "my order is late, call me on 612 345 678" is a phone, "pedido 612345678" is not.
_CONTEXT_RE = re.compile(
    r"\b(?:"
    # phone words
    r"(?P<phone>tel|tel[eé]f\w*|phone\w*|fone|mobile|cel|cell\w*|whats\w*|zap|wpp|sms|pix|celular|telem[oó]vel"
    r"|m[oó]vil|portable|gsm\w*|mobiel\w*|bel|bellen|belt|call|ring|lig(?:ar|ue|uem|a|em)|ll[aá]m\w*"
    r"|appel\w*|rappel\w*|contact\w*|contat\w*)"
    # what else a number is: an order, a parcel, an invoice, a product, a booking, a postcode
    r"|(?P<order>orders?|order\s?(?:no|nr|number)|tracking|track|parcel|package|invoice|ticket|case|ref"
    r"|reference|booking|reservation|sku|ean|serial|model|item|article|product|flight|postcode|zip"
    r"|pedidos?|compras?|encomendas?|fatura|factura|protocolos?|rastreio|rastreamento|c[oó]digo|refer[eê]ncia"
    r"|reserva|localizador|seguimiento|env[ií]o|art[ií]culo|producto|produto|modelo|vuelo|voo|cep"
    r"|commandes?|colis|suivi|facture|r[eé]f[eé]rence|dossier|r[eé]servation|produit|vol|article"
    r"|\w*code|\w+nummer|bestel\w*|zending|pakket|factuur|referentie|reservering|artikel|vlucht)"
    # tax words
    r"|(?P<tax>cpf|cnpj|nif|nipc|nie|dni|cif|contribuinte|fiscal|documento|identidad)"
    r")\b",
    re.IGNORECASE,
)
# "number", "número"... announce a phone only when nothing more specific (an order word) is near.
_WEAK_PHONE_RE = re.compile(r"\b(?:numbers?|n[uú]meros?|nummer|num[eé]ro|nro)\b", re.IGNORECASE)
_CONTEXT_WINDOW = 40


def _context(text: str, start: int) -> str | None:
    """What the words just before ``text[start]`` announce: "phone", "order", "tax" or None."""
    window = text[max(0, start - _CONTEXT_WINDOW) : start]
    last = None
    for match in _CONTEXT_RE.finditer(window):
        last = match
    if last is not None:
        return last.lastgroup
    return "phone" if _WEAK_PHONE_RE.search(window) else None


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


# --------------------------------------------------------------------------------------------------------
# Phones
# --------------------------------------------------------------------------------------------------------

# A span of digits with phone-like separators: the candidates handed to phonenumbers.
_PHONE_SPAN_RE = re.compile(r"(?<![\w+@#/.,-])(?:\(\+|[+(])?\d(?:[ .()/\-]{1,3}\d|\d)*\)?")
_DIGITS_RE = re.compile(r"\d+")
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
    try:
        import phonenumbers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(
            "Phone redaction needs phonenumbers: pip install 'phonenumbers>=8.13'."
        ) from exc
    return phonenumbers


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


# --------------------------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------------------------


def redact_pii(text: str, kinds: Iterable[str] = PII_KINDS) -> tuple[str, dict[str, int]]:
    """Replace personal data in ``text`` with placeholders.

    Applied in this order, so that one kind never eats another: URLs -> ``[URL]``; e-mails ->
    ``[EMAIL]``; IBANs -> ``[IBAN]``; tax ids -> ``[TAX_ID]``; payment cards -> ``[CARD]``; phones ->
    ``[PHONE]``; @handles -> ``[HANDLE]``.

    * URLs: ``http(s)://...``, ``www....``, and a domain with a known TLD followed by a path
      (``bit.ly/3xYzAb``, ``example.org/account/jsmith``). A bare domain (``booking.com``) and dotted
      words (``e.g.``, ``v2.3.1``, ``invoice.pdf``) stay.
    * IBANs: the country's length and the mod-97 checksum must hold; with or without spaces.
    * Tax ids: CPF, CNPJ (formatted, or bare when no phone or order word announces them), Spanish DNI,
      NIE and NIF (control letter or digit), Portuguese NIF after "NIF"/"NIPC"/"contribuinte"; check
      digits must hold.
    * Cards: 13-19 digits, contiguous or grouped like a card (4-4-4-4, 4-6-5...) with spaces or dashes,
      and Luhn-valid, and not a piece of a longer run of digit groups. A digit string that fails the Luhn
      check is *not* a card (order numbers, tracking codes) and is left as it is: 16 digits or more are
      never a phone either; nor is an unbroken digit run announced by an order word ("protocolo
      2518042350787").
    * Phones: a digit span is a phone when ``phonenumbers.PhoneNumberMatcher`` (leniency ``VALID``) finds
      it valid in one of :data:`PHONE_REGIONS` (any country with ``+``/``00``), or, when it is written with
      ``+``/``00`` or follows a phone word ("tel", "whatsapp", "call me", "ligue", "llámame", "appelez",
      "bel"...), when its length is possible for a phone (fictional ``555`` numbers). On top: 8-15 digits;
      a bare digit run needs a trunk prefix (``0612345678``) or a phone word; unless it starts with ``+``,
      never after an order, tracking, invoice, postcode or product word nearer than any phone word
      ("pedido 612345678"); never an amount (``R$ 1.299,90``, ``123 456 789 €``), a date (``26/04 2018``),
      thousands (``12.345.678``), years, a CEP (``01310-100``), a piece of a longer number
      (``23793.38128``), or a span followed by a letter (``12345678Z``). A run of digits and separators
      longer than 64 characters (a list or a table) is not searched.
    * Handles: ``@`` followed by a word that contains a letter (``@united``, ``@john.doe``).

    Args:
        text: Normalised text.
        kinds: PII kinds to redact; any of :data:`PII_KINDS`.

    Returns:
        The redacted text and the number of replacements per requested kind (zeros included).

    Raises:
        ConfigError: If a kind is unknown.
    """
    wanted = check_kinds("redact_pii(kinds)", kinds)
    counts = dict.fromkeys(wanted, 0)
    if not text:
        return text, counts
    # cheap pre-checks skip the patterns that cannot match
    has_at = "@" in text
    has_digit = _DIGITS_RE.search(text) is not None
    if "url" in counts and ("/" in text or "www." in text.lower()):
        text, counts["url"] = _redact_urls(text)
    if "email" in counts and has_at:
        text, counts["email"] = _EMAIL_RE.subn(PLACEHOLDERS["email"], text)
    if "iban" in counts and has_digit:
        text, counts["iban"] = _redact_ibans(text)
    if "tax_id" in counts and has_digit:
        text, counts["tax_id"] = _redact_tax_ids(text)
    if "card" in counts and has_digit:
        text, counts["card"] = _redact_cards(text)
    if "phone" in counts and has_digit:
        text, counts["phone"] = _redact_phones(text)
    if "handle" in counts and has_at:
        text, counts["handle"] = _HANDLE_RE.subn(PLACEHOLDERS["handle"], text)
    return text, counts
