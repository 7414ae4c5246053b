"""PII test set: positives of every kind and hard negatives, in en/pt/es/fr/nl.

Written for this project: the sentences are made up here (survey "why" answers), and the numbers are
generated from a fixed seed with their published checksums (Luhn, ISO 13616 mod 97, CPF/CNPJ mod 11,
DNI/NIE control letter, Spanish company NIF, Portuguese NIF), implemented here independently of
``pipeline.prepare.pii``. No third-party data. The same set comes out on every import.

- :data:`POSITIVES`: one secret per answer; the answer is the template with the secret in it, and a
  redactor finds it when its output is the template with the kind's placeholder in the secret's place.
- :data:`NEGATIVES`: answers with numbers and dotted words that are *not* personal data (order and
  tracking numbers, postcodes, prices, dates, versions, flight numbers, times, quantities,
  percentages, product codes, years, bare domains, invalid check digits); a redactor must leave them
  exactly as they are.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

__all__ = ["NEGATIVES", "POSITIVES", "Negative", "Positive"]

LANGS = ("en", "pt", "es", "fr", "nl")


@dataclass(frozen=True)
class Positive:
    """An answer with one secret of one kind.

    Attributes:
        kind: The PII kind (``"email"``, ``"url"``, ``"phone"``, ``"card"``, ``"handle"``, ``"iban"``,
            ``"tax_id"``).
        sub: A finer kind (``"cpf"``, ``"nie"``, ``"scheme-less"``, ``"BR"``...), for messages.
        lang: The language of the sentence.
        template: The answer with ``{}`` where the secret goes.
        secret: The personal data.
    """

    kind: str
    sub: str
    lang: str
    template: str
    secret: str

    @property
    def text(self) -> str:
        """The answer as written."""
        return self.template.format(self.secret)

    def expected(self, placeholder: str) -> str:
        """The answer with ``placeholder`` in the secret's place."""
        return self.template.format(placeholder)


@dataclass(frozen=True)
class Negative:
    """An answer with no personal data that looks like it may hold some.

    Attributes:
        category: What the look-alike is (``"order"``, ``"postcode"``, ``"price"``...).
        lang: The language of the sentence.
        text: The answer.
    """

    category: str
    lang: str
    text: str


_rng = random.Random(20240312)


def _digits(n: int, first: str = string.digits) -> str:
    return _rng.choice(first) + "".join(_rng.choice(string.digits) for _ in range(n - 1))


def _fill(pattern: str) -> str:
    """``#`` -> any digit, ``N`` -> 2-9."""
    return "".join(
        _rng.choice(string.digits) if c == "#" else _rng.choice("23456789") if c == "N" else c
        for c in pattern
    )


# --------------------------------------------------------------------------------------------------------
# Checksums (independent of pipeline.prepare.pii)
# --------------------------------------------------------------------------------------------------------


def luhn_complete(body: str) -> str:
    """``body`` + the digit that makes it Luhn-valid."""
    for check in string.digits:
        number = body + check
        total = 0
        for i, c in enumerate(reversed(number)):
            d = int(c) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable")


def iban_complete(country: str, bban: str) -> str:
    """The IBAN of ``bban`` in ``country`` (ISO 13616 check digits)."""
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def cpf_complete(nine: str) -> str:
    digits = nine
    for size in (9, 10):
        total = sum(int(d) * (size + 1 - i) for i, d in enumerate(digits))
        remainder = total % 11
        digits += str(0 if remainder < 2 else 11 - remainder)
    return digits


def cnpj_complete(twelve: str) -> str:
    digits = twelve
    for weights in ((5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2), (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)):
        remainder = sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
        digits += str(0 if remainder < 2 else 11 - remainder)
    return digits


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def company_nif_control(seven: str) -> int:
    odd = sum(sum(divmod(int(seven[i]) * 2, 10)) for i in (0, 2, 4, 6))
    even = sum(int(seven[i]) for i in (1, 3, 5))
    return (10 - (odd + even) % 10) % 10


def pt_nif_complete(eight: str) -> str:
    total = sum(int(d) * (9 - i) for i, d in enumerate(eight))
    check = 11 - total % 11
    return eight + str(0 if check >= 10 else check)


# --------------------------------------------------------------------------------------------------------
# Secrets
# --------------------------------------------------------------------------------------------------------


def _emails() -> list[tuple[str, str]]:
    locals_ = [
        "maria.silva", "jdupont", "jan.devries", "carlos_garcia88", "ana+encuesta", "o.brien", "sophie.martin",
        "pieter-jan", "joao.pereira2", "lucia.fdez", "Marc.Lefebvre", "s.jansen", "ines_costa", "tom.h",
        "m.rodriguez.1985", "ELODIE.BERNARD", "k.vandenberg", "felipe+nps", "camila.souza", "ruben.vd",
    ]  # fmt: skip
    domains = [
        "gmail.com", "hotmail.com", "outlook.fr", "sapo.pt", "uol.com.br", "yahoo.es", "ziggo.nl",
        "kpnmail.nl", "orange.fr", "free.fr", "example.co.uk", "empresa.com.br", "telefonica.es",
        "bol.com.br", "icloud.com", "protonmail.ch", "mail.example.org", "eircom.net", "live.be", "gmx.de",
    ]  # fmt: skip
    out = []
    for i in range(50):
        out.append(("email", f"{locals_[i % len(locals_)]}@{domains[(i * 7) % len(domains)]}"))
    return out


def _urls() -> list[tuple[str, str]]:
    schemed = [
        "https://www.loja.com.br/pedido/98213?cliente=jsilva", "http://example.com/help/ticket?id=47094",
        "https://drive.google.com/file/d/1AbCdEfGh/view", "www.example.org/account/82059",
        "https://imgur.com/a/Xy7Zq2", "https://www.amazon.es/gp/your-account/order-details?orderID=405-1234",
        "http://t.co/abc123", "https://docs.google.com/forms/d/e/1FAIpQL/viewform",
        "www.fnac.com/compte/commande/FR-20240312", "https://mijn.bol.com/account/overzicht",
    ]  # fmt: skip
    bare = [
        "bit.ly/3xYzAb", "example.org/account/jsmith", "t.co/AbC123xyz", "goo.gl/maps/Ab12Cd", "tinyurl.com/y7abc123",
        "youtu.be/dQw4w9WgXcQ", "instagram.com/maria.silva", "linkedin.com/in/jan-devries", "facebook.com/carlos.garcia.77",
        "amzn.to/3AbCdEf", "wa.me/34612345678", "forms.gle/AbCd123", "loja.com.br/conta/jsilva", "twitter.com/elodie_b/status/1767",
        "tiktok.com/@ana.paula", "photos.app.goo.gl/XyZ123", "dropbox.com/s/abc123/factura.pdf", "mercadolivre.com.br/perfil/JSILVA",
        "booking.com/mybooking/7731", "canva.com/design/DAF1/view", "ow.ly/Ab12", "is.gd/xYz12", "github.com/jdupont/issues",
        "trustpilot.com/users/65f0a1", "maps.app.goo.gl/Ab12Cd34", "vinted.fr/member/12345-sophie", "marktplaats.nl/u/jan/123",
        "wallapop.com/user/lucia-98", "example.nl/klant/s.jansen", "shop.example.be/nl/account?id=88",
        "my.example.ie/profile/tom", "example.fr/suivi/colis?nom=lefebvre", "example.mx/cuenta/m.rodriguez",
        "example.com.ar/usuario/felipe", "example.pt/cliente/ines", "example.ca/en/account/obrien", "pinterest.com/camila_souza/",
        "reddit.com/u/ruben_vd", "medium.com/@sophie.martin/review", "spoti.fi/3AbC",
    ]  # fmt: skip
    return [("https", u) for u in schemed] + [("scheme-less", u) for u in bare]


# Per country: formats of numbers people write (# any digit, N 2-9).
PHONE_FORMATS: dict[str, list[str]] = {
    "GB": ["07911 ######", "+44 7400 ######", "07823 ######", "020 7946 ####", "+44 20 7### ####", "0161 496 ####"],
    "US": ["(212) N##-####", "+1 415-N##-####", "617.N##.####", "+1 (305) N##-####", "1-800-N##-####"],
    "IE": ["087 ### ####", "+353 86 ### ####", "01 N## ####"],
    "CA": ["(416) N##-####", "514-N##-####"],
    "BR": ["(11) 9####-####", "+55 21 9####-####", "11 9####-####", "(21) 3###-####", "+55 (31) 9 ####-####", "(11)9 ####-####"],
    "PT": ["91# ### ###", "+351 93# ### ###", "21# ### ###", "96#######"],
    "ES": ["6## ## ## ##", "6## ### ###", "+34 6## ### ###", "91 ### ## ##", "0034 6########", "93 ### ## ##"],
    "MX": ["+52 55 #### ####", "55 #### ####", "(33) N###-####"],
    "AR": ["+54 9 11 ####-####", "011 15-4###-####", "(011) 4###-####"],
    "FR": ["06 ## ## ## ##", "07 ## ## ## ##", "+33 6 ## ## ## ##", "06.##.##.##.##", "01 ## ## ## ##", "+33 (0)6 ## ## ## ##", "0612######"],
    "BE": ["0470 ## ## ##", "+32 470 ## ## ##", "02 N## ## ##", "0475/## ## ##"],
    "NL": ["06-########", "06 ########", "+31 6 ########", "020-N######", "010 N## ####", "0031 6########"],
    # numbers of other countries, written with their country code
    "INT": ["+49 151 ########", "+39 347 ### ####", "+41 79 ### ## ##", "+48 512 ### ###", "+1 (212) N##-####"],
}  # fmt: skip
# Mobile subscriber numbers that start 06-0 / 06-9 are not issued in NL; keep the generated ones plausible.
_NL_MOBILE_FIRST = "12345"


def _phone(pattern: str) -> str:
    number = _fill(pattern)
    if pattern.startswith(("06-", "06 ", "+31 6 ", "0031 6")) and "########" in pattern:
        i = len(pattern) - 8
        number = number[:i] + _rng.choice(_NL_MOBILE_FIRST) + number[i + 1 :]
    return number


def _phones() -> dict[str, list[tuple[str, str]]]:
    by_lang_regions = {
        "en": ("GB", "US", "IE", "CA", "INT"),
        "pt": ("BR", "PT", "INT"),
        "es": ("ES", "MX", "AR", "INT"),
        "fr": ("FR", "BE", "CA", "INT"),
        "nl": ("NL", "BE", "INT"),
    }
    out: dict[str, list[tuple[str, str]]] = {}
    for lang, regions in by_lang_regions.items():  # two numbers of each format
        out[lang] = [
            (region, _phone(p)) for region in regions for p in PHONE_FORMATS[region] for _ in range(2)
        ]
    return out


def _cards() -> list[tuple[str, str]]:
    out = []
    prefixes = ["4", "4", "51", "52", "53", "54", "55", "2221", "2720", "6011", "34", "37"]
    for i in range(48):
        prefix = prefixes[i % len(prefixes)]
        if prefix in ("34", "37"):
            number = luhn_complete(prefix + _digits(12))
            shown = (
                f"{number[:4]} {number[4:10]} {number[10:]}" if i % 3 else number
            )  # Amex: 4-6-5 or contiguous
            out.append(("amex", shown))
            continue
        number = luhn_complete(prefix + _digits(15 - len(prefix)))
        sep = ("", " ", "-")[i % 3]
        shown = sep.join(number[j : j + 4] for j in range(0, 16, 4))
        out.append(("card", shown))
    return out


def _handles() -> list[tuple[str, str]]:
    names = [
        "maria_silva", "KLM", "jan.devries", "Carlos_G88", "ana.paula.r", "sophie_mrt", "pieterjan_",
        "JoaoP", "lucia.fdz", "marc_lfb", "sanne.j", "ines.c", "tomh_dublin", "Mrodriguez85", "elodie.b",
        "koen_vdb", "felipe_nps", "camila.souza", "ruben_vd", "_Todd_Young", "Iberia", "TAP_Portugal",
        "bolcom", "fnac_fr", "meli_br",
    ]  # fmt: skip
    return [("handle", "@" + names[i % len(names)] + ("" if i < len(names) else str(i))) for i in range(50)]


def _ibans() -> list[tuple[str, str]]:
    def bban(country: str) -> str:
        letters = "".join(_rng.choice(string.ascii_uppercase) for _ in range(4))
        return {
            "NL": letters + _digits(10),
            "BE": _digits(12),
            "FR": _digits(10) + _digits(11) + _digits(2),
            "ES": _digits(20),
            "PT": "0035" + _digits(17),
            "GB": letters + _digits(14),
            "IE": letters + _digits(14),
            "DE": _digits(18),
            "LU": _digits(3) + _digits(13),
            "BR": _digits(8) + _digits(5) + _digits(10) + "C1",
        }[country]

    out = []
    countries = ["NL", "BE", "FR", "ES", "PT", "GB", "IE", "DE", "LU", "BR"]
    for i in range(50):
        country = countries[i % len(countries)]
        iban = iban_complete(country, bban(country))
        style = i % 5
        if style in (0, 1, 2):  # the printed form, groups of four
            shown = " ".join(iban[j : j + 4] for j in range(0, len(iban), 4))
        elif style == 3:
            shown = iban
        else:
            shown = " ".join(iban[j : j + 4] for j in range(0, len(iban), 4)).lower()
        out.append((country, shown))
    return out


def _tax_ids() -> list[tuple[str, str]]:
    out = []
    for i in range(16):  # CPF
        digits = cpf_complete(_digits(9, "123456789"))
        shown = f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}" if i % 4 else digits
        out.append(("cpf", shown))
    for i in range(12):  # CNPJ
        digits = cnpj_complete(_digits(8, "123456789") + "0001")
        shown = f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}" if i % 4 else digits
        out.append(("cnpj", shown))
    for i in range(14):  # DNI
        number = _digits(8, "0123456789")
        letter = DNI_LETTERS[int(number) % 23]
        out.append(("dni", f"{number}{letter}" if i % 3 else f"{number}-{letter}"))
    for i in range(12):  # NIE
        head = "XYZ"[i % 3]
        body = _digits(7)
        letter = DNI_LETTERS[int(str("XYZ".index(head)) + body) % 23]
        out.append(("nie", f"{head}{body}{letter}" if i % 4 else f"{head}-{body}-{letter}"))
    for i in range(10):  # Spanish NIF: K/L/M persons, companies
        body = _digits(7)
        if i % 3 == 0:
            out.append(("nif_es", f"{'KLM'[i % 3]}{body}{DNI_LETTERS[int(body) % 23]}"))
        else:
            head = "ABGBHB"[i % 6]
            control = company_nif_control(body)
            out.append(("nif_es", f"{head}{body}{control}"))
    for _ in range(8):  # Portuguese NIF (announced by "NIF"/"contribuinte")
        out.append(("nif_pt", pt_nif_complete(_digits(8, "125"))))
    return out


# --------------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------------

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "email": {
        "en": ["Send the invoice to {} please.", "My email is {}, nobody replied in 2 weeks.", "Contact me at {} about the refund."],
        "pt": ["Mandem a nota fiscal para {}.", "Meu e-mail é {} e não recebi nada até hoje."],
        "es": ["Escríbanme a {} por favor.", "Mi correo es {} y no me llegó la factura."],
        "fr": ["Envoyez la facture à {} merci.", "Mon adresse mail est {}, toujours rien reçu."],
        "nl": ["Stuur de factuur naar {} alsjeblieft.", "Mijn e-mailadres is {}."],
    },
    "url": {
        "en": ["Screenshot of the error: {}", "The product page {} still shows the old price.", "I posted a review at {} last week."],
        "pt": ["O link {} não abre no celular.", "Segue o print: {}"],
        "es": ["El enlace {} da error 404.", "Mi perfil es {} por si quieren verlo."],
        "fr": ["Le lien {} ne fonctionne pas.", "Voici la capture : {}"],
        "nl": ["De link {} werkt niet.", "Zie mijn profiel: {}"],
    },
    "phone": {
        "en": ["Please call me back on {}, I've been waiting for 3 weeks.", "My mobile is {} if you need more details.",
               "Reach me at {} any time after 5pm.", "You can text {} once the parcel ships.",
               "Nobody picked up, I'm on {} until Friday.", "{} is my work line, use it."],
        "pt": ["Me liguem no {} para resolver isso.", "Meu celular: {} (só WhatsApp).",
               "Podem contactar-me pelo {} depois das 18h.", "Estou no {} o dia todo.",
               "Já deixei o {} três vezes com a atendente.", "Falem comigo: {}"],
        "es": ["Llámenme al {} por favor.", "Mi móvil es {} y nadie me ha llamado.",
               "Pueden escribirme por WhatsApp al {}.", "Estoy disponible en el {} de 9 a 14.",
               "Dejé el {} en el formulario y nada.", "Aquí mi contacto: {}"],
        "fr": ["Merci de me rappeler au {} rapidement.", "Mon portable : {}.",
               "Vous pouvez me joindre au {} après 18h.", "J'ai laissé mon numéro {} au vendeur.",
               "Toujours rien, je suis au {} en semaine.", "Joignable au {} ou par mail."],
        "nl": ["Bel me alstublieft op {} over mijn bestelling.", "Mijn mobiele nummer is {}.",
               "Ik ben bereikbaar op {} na 17.00 uur.", "Stuur een sms naar {} als het pakket komt.",
               "Niemand nam op, ik zit op {} tot vrijdag.", "Graag contact via {}."],
    },
    "card": {
        "en": ["They charged my card {} twice for the same order.", "I paid with {} and never got a receipt."],
        "pt": ["Cobraram duas vezes no cartão {}.", "Usei o cartão {} e a compra não foi aprovada."],
        "es": ["Me cobraron dos veces en la tarjeta {}.", "Pagué con la tarjeta {} y no llegó nada."],
        "fr": ["Ma carte {} a été débitée deux fois.", "J'ai payé avec la carte {} sans recevoir de confirmation."],
        "nl": ["Mijn kaart {} is twee keer belast.", "Betaald met creditcard {} maar geen bevestiging."],
    },
    "handle": {
        "en": ["I complained to {} on Twitter but got no answer.", "Tagged you {} in my story, 0 replies."],
        "pt": ["Marquei {} no Instagram e nada.", "Me segue lá: {}"],
        "es": ["Les escribí a {} por Twitter.", "Mi usuario es {} en Instagram."],
        "fr": ["J'ai écrit à {} sur X sans réponse.", "Mon compte Insta : {}"],
        "nl": ["Ik heb {} op Twitter getagd.", "Mijn Instagram is {}."],
    },
    "iban": {
        "en": ["Please refund to my IBAN {} as soon as possible.", "Refund account: {}."],
        "pt": ["O reembolso deve ir para o IBAN {}.", "Meu IBAN é {}, ainda não recebi."],
        "es": ["Devuélvanme el dinero a la cuenta {} por favor.", "IBAN: {} (titular yo mismo)."],
        "fr": ["Remboursez-moi sur le compte {} s'il vous plaît.", "Mon IBAN est {}."],
        "nl": ["Graag terugstorten op {} t.n.v. mij.", "Mijn rekeningnummer is {}."],
    },
}  # fmt: skip
TAX_TEMPLATES: dict[str, list[tuple[str, str]]] = {
    "cpf": [("pt", "Meu CPF é {} e mesmo assim não consigo me cadastrar."), ("pt", "Coloquei o CPF {} e deu erro."),
            ("en", "The site rejects my CPF {} every time."), ("es", "Puse mi CPF {} y la web no lo aceptó.")],
    "cnpj": [("pt", "A nota saiu com o CNPJ {} errado."), ("pt", "Compramos pela empresa, CNPJ {}, e a fatura não veio."),
             ("en", "Our company CNPJ is {} but the invoice shows another one.")],
    "dni": [("es", "Mi DNI es {} y no me deja registrarme."), ("es", "Les di el DNI {} tres veces."),
            ("fr", "J'ai donné mon DNI {} au guichet."), ("nl", "Mijn DNI {} werd niet geaccepteerd."),
            ("en", "My Spanish ID {} was refused at checkout.")],
    "nie": [("es", "Soy extranjero, NIE {}, y la web no lo acepta."), ("fr", "Mon NIE est {} et ça bloque."),
            ("nl", "Met mijn NIE {} lukt de registratie niet."), ("en", "My NIE {} is valid, fix your form.")],
    "nif_es": [("es", "Factura a nombre de la empresa, NIF {}."), ("es", "El NIF {} aparece mal en el recibo.")],
    "nif_pt": [("pt", "O meu NIF é {} e a fatura veio sem ele."), ("pt", "Pedi fatura com contribuinte {} e não puseram.")],
}  # fmt: skip


def _positives() -> list[Positive]:
    out: list[Positive] = []

    def spread(kind: str, secrets: list[tuple[str, str]]) -> None:
        pairs = [(lang, t) for lang in LANGS for t in TEMPLATES[kind][lang]]
        for i, (sub, secret) in enumerate(secrets):
            lang, template = pairs[(i * 5 + i // len(pairs)) % len(pairs)]
            out.append(Positive(kind, sub, lang, template, secret))

    spread("email", _emails())
    spread("url", _urls())
    spread("card", _cards())
    spread("handle", _handles())
    spread("iban", _ibans())
    for lang, numbers in _phones().items():
        templates = TEMPLATES["phone"][lang]
        for i, (region, number) in enumerate(numbers):
            out.append(Positive("phone", region, lang, templates[i % len(templates)], number))
    counters: dict[str, int] = {}
    for sub, secret in _tax_ids():
        i = counters[sub] = counters.get(sub, -1) + 1
        lang, template = TAX_TEMPLATES[sub][i % len(TAX_TEMPLATES[sub])]
        out.append(Positive("tax_id", sub, lang, template, secret))
    return out


# Formats written by hand, one answer each: (kind, sub, lang, template, secret).
_EXTRA_POSITIVES: list[tuple[str, str, str, str, str]] = [
    ("phone", "PT", "pt", "O meu número é {} e ninguém liga.", "(+351) 912 345 678"),
    ("phone", "GB", "en", "Office number {} but nobody answers.", "+44 (0) 20 7946 0958"),
    ("phone", "BR", "pt", "Meu pix é {}, podem devolver por lá.", "11987654321"),
    ("phone", "BR", "pt", "Whats: {}", "+55 11 9 8765 4321"),
    ("phone", "ES", "es", "Mi teléfono, {}, no recibe los SMS.", "+34 699 123 456"),
    ("phone", "FR", "fr", "Rappelez-moi vite ({}).", "06 98 76 54 32"),
    ("phone", "NL", "nl", "Bellen kan op {}.", "+31 (0)6 12345678"),
    ("url", "scheme-less", "en", "Details are here (see {}).", "bit.ly/3kTrP9x"),
    ("url", "scheme-less", "en", "Login fails at {} every morning.", "intranet.example.com:8080/login"),
    ("url", "https", "fr", "La page {}, erreur 500.", "https://example.fr/compte?id=12&nom=dupont"),
    ("tax_id", "dni", "es", "DNI con puntos: {}.", "12.345.678-Z"),
    ("tax_id", "cpf", "pt", "CPF {} sem pontos.", "123456789-09"),
    ("tax_id", "cnpj", "pt", "CNPJ {} sem pontos.", "12345678/0001-95"),
    ("iban", "PT", "pt", "NIB/IBAN {} para o reembolso.", "PT50 0002 0123 1234 5678 9015 4"),
    ("email", "email", "en", "Reply to {}.", "Jane.Doe@Example.COM"),
    ("handle", "handle", "pt", "Falei com a {}.", "@meli_ajuda"),
]

POSITIVES: list[Positive] = _positives() + [Positive(*fields) for fields in _EXTRA_POSITIVES]

# fmt: off
_NEGATIVE_TEXTS: dict[str, list[tuple[str, str]]] = {
    "order": [
        ("en", "Order #123456789 never arrived."),
        ("en", "My order 4501234567 was cancelled without notice."),
        ("en", "Order number 612345678, still waiting after 3 weeks."),
        ("en", "Invoice 2024-000123 shows the wrong amount."),
        ("en", "Ticket 00012345 was closed without an answer."),
        ("en", "Case ref 30012345678 has been open since March."),
        ("pt", "Pedido 12345678 chegou incompleto."),
        ("pt", "O pedido nº 987654321 está parado há 10 dias."),
        ("pt", "Protocolo 2024031200123 e ninguém resolve."),
        ("pt", "Abri o chamado 11987654 e nada."),
        ("pt", "Número do pedido: 912345678, até hoje nada."),
        ("es", "Mi pedido 1122334455 llegó roto."),
        ("es", "El pedido 612345678 sigue sin enviarse."),
        ("es", "Número de pedido 4053216789, ¿dónde está?"),
        ("es", "Localizador de reserva 7HX9KQ y el vuelo cambió."),
        ("fr", "Ma commande n° 20240312-5567 est bloquée."),
        ("fr", "Commande 4567891234 livrée en retard."),
        ("fr", "Facture 0612345678 introuvable dans mon espace."),
        ("fr", "Dossier 2023-118734, toujours pas de réponse."),
        ("nl", "Bestelling 1234567890 is nooit aangekomen."),
        ("nl", "Bestelnummer 500123456 klopt niet."),
        ("nl", "Ordernummer 0612345678 staat nog op verwerking."),
        ("nl", "Factuur 2024-00087 had de verkeerde btw."),
        ("en", "Reservation 0031612345 was lost by the hotel."),
    ],
    "tracking": [
        ("en", "Tracking 1Z999AA10123456784 has not moved in a week."),
        ("pt", "Código de rastreio AB123456789BR parado em Curitiba."),
        ("pt", "O objeto LX123456789PT ainda não saiu de Lisboa."),
        ("es", "Seguimiento PQ4B6V0712345670128001X sin novedades."),
        ("fr", "Colis CP123456785FR bloqué depuis lundi."),
        ("nl", "Track & trace 3SABCD1234567 blijft op 'onderweg'."),
        ("en", "DHL says JVGL0123456789012345 was delivered, it was not."),
        ("en", "USPS 9400 1000 0000 0000 0000 00 shows no scans."),
        ("nl", "Pakket 3SXYZW9876543 ligt al 5 dagen in het depot."),
        ("es", "Envío 0034 5678 9012 sin actualizar."),
    ],
    "postcode": [
        ("pt", "Moro no CEP 01310-100 e o frete é caro."),
        ("pt", "Entrega para 04538-133 demorou 9 dias."),
        ("fr", "Livraison au 75008 Paris impossible."),
        ("nl", "Ik woon in 1012 AB Amsterdam, bezorging faalde."),
        ("en", "Delivered to SW1A 1AA London instead of my address."),
        ("es", "Envío a 28013 Madrid en 48h, muy bien."),
        ("pt", "Código postal 1000-001 Lisboa não é aceite."),
        ("en", "My Eircode D02 X285 is not accepted by the form."),
        ("fr", "Code postal H3Z 2Y7 refusé, je suis à Montréal."),
        ("fr", "Livré à B-1000 Bruxelles avec 2 jours de retard."),
        ("es", "CP 06700 CDMX, el repartidor no encontró la casa."),
        ("es", "Vivo en C1425 CABA y el envío tardó un mes."),
        ("en", "Shipping to 90210 took 10 days."),
        ("nl", "Postcode 3011 BD Rotterdam werd niet herkend."),
        ("pt", "CEP 20040-020, Rio de Janeiro/RJ."),
    ],
    "price": [
        ("pt", "Paguei R$ 1.299,90 e veio com defeito."),
        ("en", "It cost €1,299.00 and broke after a month."),
        ("en", "The premium plan is 49.99 a month, too much."),
        ("en", "They quoted $1,234,567.89 for the fleet, absurd."),
        ("es", "Pagué 1.299,00 € por un móvil que no funciona."),
        ("fr", "Facturé 12 345,67 € au lieu de 1 234,56 €."),
        ("es", "Cuesta MX$ 12,999.00 y en otra tienda menos."),
        ("es", "Me cobraron ARS 1.250.000 por la reparación."),
        ("en", "£29.99/month for this service is a joke."),
        ("pt", "R$ 89,90/mês e a internet cai todo dia."),
        ("pt", "10x de R$ 129,90 sem juros, ok."),
        ("nl", "Ik betaalde € 249,95 voor een kapotte stofzuiger."),
        ("fr", "Le forfait passe de 19,99 € à 24,99 € sans prévenir."),
        ("en", "Prices went from 9.99 to 14.99 overnight."),
        ("pt", "Cobraram 2.450,00 reais a mais."),
        ("es", "El total fue de 3.499.000 pesos."),
        ("nl", "Prijzen: 49.90 59.90 69.90 79.90, te duur."),
        ("en", "Refund of USD 2,499.00 still pending."),
    ],
    "date": [
        ("pt", "Comprei em 12/03/2024 e até agora nada."),
        ("en", "Ordered on 2024-03-12, arrived 2024-04-02."),
        ("nl", "Besteld op 12.03.2024, geleverd op 02.04.2024."),
        ("es", "Entre el 12-03-2024 y el 15-03-2024 nadie contestó."),
        ("en", "Delivery promised for 03/12/24, never came."),
        ("fr", "Rendez-vous du 12.3.2024 annulé sans prévenir."),
        ("en", "Charged on 2024/03/12 and again on 2024/03/19."),
        ("pt", "Ligaram dia 12/03 e dia 15/03, ninguém resolveu."),
        ("es", "Desde el 01/02/2023 hasta el 28/02/2023 sin servicio."),
        ("nl", "Van 1-3-2024 tot 15-3-2024 geen internet."),
        ("fr", "Livraison prévue le 12 03 2024, rien reçu."),
    ],
    "version": [
        ("en", "Since v2.3.1 the app crashes on login."),
        ("en", "iOS 17.4.1 broke the widget."),
        ("pt", "Na versão 3.12.0 o app fecha sozinho."),
        ("es", "Con la versión 5.0.12 (build 20240312) no abre."),
        ("fr", "La mise à jour 17.4.1 a tout cassé."),
        ("nl", "Sinds versie 10.2.15.3 werkt het niet meer."),
        ("en", "Firmware 1.0.0.128 made the router worse."),
        ("pt", "Atualizei para a 2024.03.1 e piorou."),
    ],
    "flight": [
        ("nl", "Vlucht KL1234 had 4 uur vertraging."),
        ("pt", "O voo TP 1023 foi cancelado."),
        ("es", "El vuelo IB3456 salió con 3 horas de retraso."),
        ("fr", "Le vol AF 1234 a été annulé deux fois."),
        ("en", "Flight FR8421 left 2 hours late."),
        ("es", "Vuelo AR1302 a Bariloche sin equipaje."),
        ("en", "UX 1094 and then HV 5131, both delayed."),
        ("pt", "Voo LA 8084 atrasou 5h."),
    ],
    "time": [
        ("en", "I called at 14:30 and again at 16:45."),
        ("fr", "Ouvert de 9h30 à 18h, mais personne au téléphone."),
        ("pt", "Atendimento das 9h às 18h é pouco."),
        ("en", "Waited from 2:45pm to 5:10pm."),
        ("nl", "Bezorgd tussen 20:00-22:00, veel te laat."),
        ("es", "Llegué a las 10:30 y me atendieron a las 12:15."),
        ("en", "Open 24/7 they said."),
    ],
    "quantity": [
        ("en", "Ordered 2 x 500 ml and got 1 x 250 ml."),
        ("pt", "Pedi 12 unidades e vieram 10."),
        ("es", "Compré 3 kg y pesaba 2,5 kg."),
        ("fr", "Pack de 24 bouteilles de 1,5 litre, 3 cassées."),
        ("nl", "2 pakken van 1 kg, één was open."),
        ("en", "Waited 45 minutes, called 5 times, sent 3 emails."),
        ("pt", "Demorou 1 hora e 20 minutos na fila."),
        ("en", "We have 12 345 678 reasons to leave."),
        ("es", "Más de 1 234 567 usuarios y ningún soporte."),
        ("en", "Internet at 100 Mbps, paying for 500 Mbps."),
    ],
    "percentage": [
        ("en", "99.9% uptime my foot."),
        ("pt", "Desconto de 15% que não foi aplicado."),
        ("es", "Prometieron un 20% de descuento y nada."),
        ("fr", "Batterie à 50 % après 2 heures."),
        ("nl", "Slechts 0,5% rente, teleurstellend."),
        ("en", "Only 3 stars out of 5, 100% because of support."),
    ],
    "product": [
        ("en", "SKU 100-200-3000 is always out of stock."),
        ("fr", "Réf. AB-1234-CD introuvable en magasin."),
        ("en", "The WH-1000XM4 headphones broke after 2 months."),
        ("nl", "Artikelnummer 8712345678906 was niet op voorraad."),
        ("pt", "Código de barras 7891234567895 não passa no caixa."),
        ("es", "Modelo SM-A546B con la pantalla rota."),
        ("en", "Part no. 45-6789-01 was missing from the box."),
        ("fr", "Le modèle 55OLED806/12 a un pixel mort."),
        ("pt", "Produto 1234567 veio errado."),
        ("en", "Serial SN 4CE0460D0G, warranty refused."),
        ("nl", "Type 12345678 van de wasmachine lekt."),
        ("es", "Referencia 12345678, talla 42."),
    ],
    "year": [
        ("en", "Customer since 2015, again in 2019 and 2020-2023."),
        ("pt", "Cliente desde 2008, nunca vi isso."),
        ("es", "Desde 1999/2000 compro aquí."),
        ("fr", "2019 2020 2021 2022, toujours les mêmes soucis."),
        ("nl", "Al klant sinds 1998."),
    ],
    "score": [
        ("en", "I rate it 10 10 10 10."),
        ("pt", "Nota 10/10, atendimento top."),
        ("es", "Le doy un 3.5/5."),
        ("fr", "Note 9 sur 10, très bien."),
        ("nl", "Een 8 van de 10, prima."),
        ("en", "NPS 9, CSAT 4, CES 2 from me."),
        ("pt", "Notas: 10 9 8 7 6 5 4 3"),
    ],
    "address": [
        ("pt", "Rua Augusta, 1500 - apto 42, ninguém entregou."),
        ("es", "Calle Mayor 12, 3º B, y el repartidor no subió."),
        ("nl", "Prinsengracht 263-267 is geen woonadres."),
        ("fr", "Au 2ème étage, porte 12, personne n'est venu."),
        ("en", "Unit 4, 221B Baker Street, wrong door again."),
    ],
    "dotted": [
        ("en", "Too many steps, e.g. the login and the captcha etc."),
        ("en", "I attached invoice.pdf and foto.jpg, i.e. the proof."),
        ("en", "I always book through booking.com, never again."),
        ("pt", "Comprei no amazon.com.br e no Mercado Livre."),
        ("es", "Pagué con PayPal y/o tarjeta, p.ej. ayer."),
        ("fr", "Il faut 3G/4G/5G, c.-à-d. du réseau."),
        ("nl", "Via bol.com ging het sneller, bijv. vorige week."),
        ("en", "TCP/IP settings, and/or the DNS, were wrong."),
        ("pt", "Cartão e/ou boleto, tanto faz."),
        ("en", "Speed was 30 km/h on the bike, w/o the motor."),
        ("fr", "J'ai envoyé le fichier facture_2024.pdf hier."),
        ("es", "La web de Zara.com no carga."),
        ("en", "A/B test versions are confusing, N/A for me."),
        ("pt", "São Paulo/SP, entrega em 2 dias úteis."),
        ("nl", "Zie bijlage scan.jpg en bon.pdf."),
        ("en", "Emailed support@ the usual address, no reply."),
        ("en", "Meet @ 5pm or @10 they said."),
        ("fr", "Le site fnac.com ne marche pas sur mobile."),
    ],
    "code": [
        ("en", "ISBN 978-3-16-148410-0 was the wrong edition."),
        ("en", "Gift card code 1234-5678-9012 did not work."),
        ("en", "Voucher ABCD-1234-EFGH expired a day early."),
        ("fr", "Le code promo NOEL2024 ne marche pas."),
        ("es", "El cupón 2x1 no se aplicó en la caja 3."),
        ("nl", "Kortingscode ZOMER25 werkt niet."),
        ("pt", "Lote 230512 veio com validade vencida."),
        ("en", "VIN WVWZZZ1JZXW000001 is on the invoice, not my car."),
        ("en", "Seat 14C, gate B12, platform 9, room 1203."),
        ("pt", "Senha 0457 no painel e ninguém chamou."),
        ("es", "Turno número 153 y esperé 2 horas."),
        ("fr", "Ticket de caisse n° 0045 1234 5678 perdu."),
        ("nl", "Klantnummer 1234567 staat verkeerd."),
        ("en", "Account 12345678 was locked for no reason."),
        ("pt", "Matrícula 2019123456 no sistema errada."),
        ("en", "Error code 0x80070005 on every update."),
        ("es", "Error 500 y luego 404 en la página."),
        ("fr", "Erreur E-1234-5678 sur la box."),
        ("nl", "Foutcode 0-3001-0012 bij het inloggen."),
        ("en", "Model number 2024-05-12-0042, batch 7."),
        ("pt", "Chave de acesso 3524 0312 3456 7800 0195 5500 1000 0012 3410 0001 2345 não consta."),
        ("pt", "Boleto 23793.38128 60000.000003 00000.000400 1 84340000010000 vencido."),
        ("en", "Reference 0044 1234 5678 on the statement."),
        ("es", "Factura F-2024-000123, importe 1.234,56 €."),
        ("fr", "Numéro de série 4CE0 460D 0G12."),
        ("nl", "Zendingnummer 3S 1234 5678 9012."),
    ],
    "invalid_check": [
        ("pt", "CPF 123.456.789-00 deu inválido, com razão."),
        ("pt", "Testei 111.111.111-11 e o site aceitou, estranho."),
        ("es", "Puse 12345678A por error y lo aceptó."),
        ("nl", "IBAN NL00 ABNA 0417 1643 00 is fout ingevuld."),
        ("en", "Card 4111 1111 1111 1112 was declined, fair."),
        ("pt", "NIF 123456780 é inválido."),
        ("pt", "CNPJ 12.345.678/0001-00 não existe."),
        ("es", "NIE X1234567A rechazado."),
    ],
}
# fmt: on

NEGATIVES: list[Negative] = [
    Negative(category, lang, text) for category, items in _NEGATIVE_TEXTS.items() for lang, text in items
]
