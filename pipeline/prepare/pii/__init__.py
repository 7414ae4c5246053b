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

A plain library package: no I/O, ``phonenumbers`` imported on first use. Modules: ``kinds`` (kinds,
placeholders, context words), ``numbers`` (URLs, e-mails, IBANs, tax ids, cards), ``phones``; the entry
point :func:`redact_pii` is here.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.prepare.pii.kinds import (
    _DIGITS_RE,
    PHONE_REGIONS,
    PII_KINDS,
    PLACEHOLDER_RE,
    PLACEHOLDERS,
    check_kinds,
)
from pipeline.prepare.pii.numbers import (
    _EMAIL_RE,
    _HANDLE_RE,
    _redact_cards,
    _redact_ibans,
    _redact_tax_ids,
    _redact_urls,
    cnpj_ok,
    cpf_ok,
    iban_ok,
    luhn_ok,
    portuguese_nif_ok,
    spanish_id_ok,
)
from pipeline.prepare.pii.phones import _redact_phones

__all__ = [
    "PHONE_REGIONS",
    "PII_KINDS",
    "PLACEHOLDERS",
    "PLACEHOLDER_RE",
    "check_kinds",
    "cnpj_ok",
    "cpf_ok",
    "iban_ok",
    "luhn_ok",
    "portuguese_nif_ok",
    "redact_pii",
    "spanish_id_ok",
]


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
