"""The PII kinds, their placeholders, the phone regions, and the context words that say what a number is."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pipeline.errors import ConfigError

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


_DIGITS_RE = re.compile(r"\d+")
