"""The project's own synthetic sample survey: NPS "why" answers in five languages, with known truth.

This is the demo data of ``feedback demo`` and the fixture of many tests. Every phrase in this module was
written for this project; nothing is copied from any dataset.

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
# Segments and volumes
# --------------------------------------------------------------------------------------------------------

DEFAULT_END = datetime(2026, 11, 1)
"""Default end of the survey window: fixed, so that a seed gives the same frame on every day."""

LANGUAGES = ("en", "pt", "es", "fr", "nl")
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

# Hand-written phrase templates: PHRASES[tag][language]. Slots: {days} {weeks} {fast_days} {n} {minutes}
# {amount} {product} {agent} {device} {version}. Products are singular, masculine in pt/es/fr and de-words
# in nl, so templates may put an article or a pronoun with them.
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "delivery_delay": {
        "en": (
            "My order took {days} days to arrive, way longer than promised.",
            "Delivery was {days} days late and nobody told me why.",
            "The {product} still hasn't arrived after {weeks} weeks.",
            "Shipping is painfully slow, I waited almost {weeks} weeks.",
            "The parcel sat at the depot for {days} days.",
            "You promised next-day delivery and it came {days} days later.",
            "Tracking said out for delivery three times but nothing showed up.",
        ),
        "pt": (
            "Meu pedido demorou {days} dias para chegar, muito mais do que o prometido.",
            "A entrega atrasou {days} dias e ninguém me avisou.",
            "Já se passaram {weeks} semanas e o {product} ainda não chegou.",
            "O frete é lento demais, esperei quase {weeks} semanas.",
            "A encomenda ficou parada na transportadora por {days} dias.",
            "Prometeram entrega em 24 horas e chegou {days} dias depois.",
            "O rastreio dizia saiu para entrega, mas nada chegou.",
        ),
        "es": (
            "Mi pedido tardó {days} días en llegar, mucho más de lo prometido.",
            "La entrega llegó con {days} días de retraso y nadie me avisó.",
            "Llevo {weeks} semanas esperando el {product}.",
            "El envío es lentísimo, esperé casi {weeks} semanas.",
            "El paquete estuvo parado en el almacén {days} días.",
            "Me prometieron entrega al día siguiente y llegó {days} días después.",
            "El seguimiento decía en reparto pero nunca llegó nada.",
        ),
        "fr": (
            "Ma commande a mis {days} jours à arriver, bien plus que prévu.",
            "La livraison avait {days} jours de retard et personne ne m'a prévenu.",
            "J'attends toujours le {product} depuis {weeks} semaines.",
            "L'expédition est beaucoup trop lente, j'ai attendu presque {weeks} semaines.",
            "Le colis est resté bloqué au dépôt pendant {days} jours.",
            "Livraison express promise, reçue {days} jours plus tard.",
            "Le suivi indiquait en cours de livraison mais rien n'est arrivé.",
        ),
        "nl": (
            "Mijn bestelling deed er {days} dagen over, veel langer dan beloofd.",
            "De levering was {days} dagen te laat en niemand liet iets weten.",
            "Na {weeks} weken wacht ik nog steeds op mijn {product}.",
            "De verzending is echt traag, ik heb bijna {weeks} weken gewacht.",
            "Het pakket lag {days} dagen stil in het depot.",
            "Morgen in huis beloofd, maar het kwam pas {days} dagen later.",
            "Volgens de track & trace was het onderweg, maar er kwam niks.",
        ),
    },
    "damaged_item": {
        "en": (
            "The {product} arrived broken.",
            "Box was crushed and the {product} inside was damaged.",
            "My {product} came with a cracked part, clearly damaged in transit.",
            "Half of the items in the parcel were smashed.",
            "The packaging was ripped open and the {product} was scratched all over.",
            "Received a damaged {product} and had to send it back.",
        ),
        "pt": (
            "O {product} chegou quebrado.",
            "A caixa veio amassada e o {product} estava danificado.",
            "Recebi o {product} com uma peça trincada, estragou no transporte.",
            "Metade dos itens do pacote chegou em pedaços.",
            "A embalagem estava rasgada e o {product} todo arranhado.",
            "Veio avariado e tive que devolver.",
        ),
        "es": (
            "El {product} llegó roto.",
            "La caja vino aplastada y el {product} estaba dañado.",
            "Me llegó el {product} con una pieza rajada, se dañó en el transporte.",
            "La mitad de los artículos del paquete llegaron hechos pedazos.",
            "El embalaje estaba abierto y el {product} todo rayado.",
            "Recibí el {product} dañado y tuve que devolverlo.",
        ),
        "fr": (
            "Le {product} est arrivé cassé.",
            "Le carton était écrasé et le {product} à l'intérieur abîmé.",
            "Une pièce du {product} était fendue à la réception, abîmée pendant le transport.",
            "La moitié des articles du colis étaient en morceaux.",
            "L'emballage était déchiré et le {product} tout rayé.",
            "J'ai reçu le {product} endommagé et j'ai dû le renvoyer.",
        ),
        "nl": (
            "Mijn {product} kwam kapot aan.",
            "De doos was ingedeukt en de {product} erin beschadigd.",
            "Er zat een barst in de {product}, duidelijk beschadigd tijdens het transport.",
            "De helft van de spullen in het pakket was stuk.",
            "De verpakking was opengescheurd en de {product} zat vol krassen.",
            "Ik kreeg een beschadigde {product} en moest hem terugsturen.",
        ),
    },
    "fast_delivery": {
        "en": (
            "Delivery was super fast, got it the next day.",
            "My {product} arrived in just {fast_days} days, earlier than expected.",
            "Really quick shipping and the courier was on time.",
            "Ordered in the evening and it was at my door the next morning.",
            "Fast delivery, and tracking was accurate the whole way.",
            "The parcel came a day early, great job.",
        ),
        "pt": (
            "A entrega foi super rápida, chegou no dia seguinte.",
            "O {product} chegou em apenas {fast_days} dias, antes do previsto.",
            "Frete muito rápido e o entregador foi pontual.",
            "Comprei à noite e na manhã seguinte já estava em casa.",
            "Entrega rápida e o rastreio foi certinho do início ao fim.",
            "A encomenda chegou um dia antes do prazo, parabéns.",
        ),
        "es": (
            "La entrega fue rapidísima, me llegó al día siguiente.",
            "El {product} llegó en solo {fast_days} días, antes de lo previsto.",
            "Envío muy rápido y el repartidor fue puntual.",
            "Pedí por la noche y a la mañana siguiente ya lo tenía en casa.",
            "Entrega rápida y el seguimiento fue exacto en todo momento.",
            "El paquete llegó un día antes, muy bien.",
        ),
        "fr": (
            "Livraison ultra rapide, reçu dès le lendemain.",
            "Le {product} est arrivé en seulement {fast_days} jours, plus tôt que prévu.",
            "Expédition très rapide et le livreur était ponctuel.",
            "Commandé le soir, livré le lendemain matin.",
            "Livraison rapide et le suivi était précis du début à la fin.",
            "Le colis est arrivé avec un jour d'avance, bravo.",
        ),
        "nl": (
            "Supersnelle levering, de volgende dag al binnen.",
            "Mijn {product} was er binnen {fast_days} dagen, eerder dan verwacht.",
            "Heel snelle verzending en de bezorger was op tijd.",
            "'s Avonds besteld en de volgende ochtend stond het al voor de deur.",
            "Snel geleverd en de track & trace klopte precies.",
            "Het pakket kwam een dag eerder dan gepland, top.",
        ),
    },
    "billing_error": {
        "en": (
            "I was charged twice for the same order.",
            "My invoice shows {amount} more than what I agreed to.",
            "You keep billing me for a plan I never signed up for.",
            "There's a charge of {amount} on my card that I don't recognise.",
            "The discount code was not applied to my bill.",
            "I was billed {n} times for a single purchase.",
        ),
        "pt": (
            "Fui cobrado duas vezes pelo mesmo pedido.",
            "A fatura veio com {amount} a mais do que o combinado.",
            "Continuam me cobrando por um plano que eu nunca contratei.",
            "Apareceu uma cobrança de {amount} no cartão que eu não reconheço.",
            "O cupom de desconto não foi aplicado na cobrança.",
            "Cobraram {n} vezes por uma única compra.",
        ),
        "es": (
            "Me cobraron dos veces el mismo pedido.",
            "La factura trae {amount} más de lo acordado.",
            "Me siguen cobrando un plan que nunca contraté.",
            "Hay un cargo de {amount} en mi tarjeta que no reconozco.",
            "No me aplicaron el código de descuento en la factura.",
            "Me cobraron {n} veces por una sola compra.",
        ),
        "fr": (
            "J'ai été débité deux fois pour la même commande.",
            "Ma facture affiche {amount} de plus que prévu.",
            "Vous continuez à me facturer un abonnement que je n'ai jamais souscrit.",
            "Il y a un prélèvement de {amount} sur ma carte que je ne reconnais pas.",
            "Le code promo n'a pas été appliqué sur ma facture.",
            "On m'a prélevé {n} fois pour un seul achat.",
        ),
        "nl": (
            "Ik heb twee keer betaald voor dezelfde bestelling.",
            "Op mijn factuur staat {amount} meer dan afgesproken.",
            "Jullie blijven kosten rekenen voor een abonnement dat ik nooit heb afgesloten.",
            "Er staat een afschrijving van {amount} op mijn rekening die ik niet herken.",
            "De kortingscode is niet verwerkt op mijn factuur.",
            "Er is {n} keer geld afgeschreven voor één aankoop.",
        ),
    },
    "refund": {
        "en": (
            "Still waiting for my refund after {weeks} weeks.",
            "I returned the {product} a month ago and haven't seen my money back.",
            "The refund process is a nightmare.",
            "They promised a refund of {amount} but it never came.",
            "Returned the item on time, refund was refused without explanation.",
            "Getting my money back took {n} emails and {weeks} weeks.",
        ),
        "pt": (
            "Ainda estou esperando o reembolso depois de {weeks} semanas.",
            "Devolvi o {product} há um mês e até agora nada do meu dinheiro.",
            "O processo de reembolso é um pesadelo.",
            "Prometeram devolver {amount} e nunca caiu na conta.",
            "Fiz a devolução no prazo e recusaram o estorno sem explicação.",
            "Para receber o estorno precisei mandar {n} e-mails e esperar {weeks} semanas.",
        ),
        "es": (
            "Sigo esperando el reembolso después de {weeks} semanas.",
            "Devolví el {product} hace un mes y el dinero no aparece.",
            "El proceso de reembolso es una pesadilla.",
            "Me prometieron un reembolso de {amount} que nunca llegó.",
            "Devolví el artículo a tiempo y me denegaron el reembolso sin explicación.",
            "Recuperar mi dinero me costó {n} correos y {weeks} semanas.",
        ),
        "fr": (
            "J'attends toujours mon remboursement depuis {weeks} semaines.",
            "J'ai renvoyé le {product} il y a un mois et toujours pas remboursé.",
            "La procédure de remboursement est un cauchemar.",
            "On m'a promis un remboursement de {amount} que je n'ai jamais reçu.",
            "Retour fait dans les délais, remboursement refusé sans explication.",
            "Il m'a fallu {n} mails et {weeks} semaines pour être remboursé.",
        ),
        "nl": (
            "Na {weeks} weken wacht ik nog steeds op mijn terugbetaling.",
            "Ik heb mijn {product} een maand geleden teruggestuurd en nog geen geld terug.",
            "Het terugbetalingsproces is een drama.",
            "Er werd een terugbetaling van {amount} beloofd maar die is nooit gekomen.",
            "Op tijd geretourneerd, maar de terugbetaling werd zonder uitleg geweigerd.",
            "Ik moest {n} mails sturen en {weeks} weken wachten om mijn geld terug te krijgen.",
        ),
    },
    "price": {
        "en": (
            "Way too expensive for what you get.",
            "The subscription went up to {amount} a month, that's too much.",
            "Prices keep going up every few months.",
            "Shipping costs of {amount} on a small order are ridiculous.",
            "Competitors offer the same thing for much less.",
            "The premium plan is not worth the money.",
        ),
        "pt": (
            "Caro demais pelo que oferece.",
            "A assinatura subiu para {amount} por mês, ficou caro.",
            "Os preços sobem a cada poucos meses.",
            "Pagar {amount} de frete num pedido pequeno é um absurdo.",
            "A concorrência oferece o mesmo por bem menos.",
            "O plano premium não vale o que custa.",
        ),
        "es": (
            "Demasiado caro para lo que ofrece.",
            "La suscripción subió a {amount} al mes, es demasiado.",
            "Los precios suben cada pocos meses.",
            "Cobrar {amount} de envío en un pedido pequeño es ridículo.",
            "La competencia ofrece lo mismo por mucho menos.",
            "El plan premium no vale lo que cuesta.",
        ),
        "fr": (
            "Beaucoup trop cher pour ce que c'est.",
            "L'abonnement est passé à {amount} par mois, c'est trop.",
            "Les prix n'arrêtent pas d'augmenter.",
            "Des frais de port de {amount} pour une petite commande, c'est abusé.",
            "La concurrence propose la même chose pour bien moins cher.",
            "L'offre premium ne vaut pas son prix.",
        ),
        "nl": (
            "Veel te duur voor wat je krijgt.",
            "Het abonnement is omhoog gegaan naar {amount} per maand, dat is te veel.",
            "De prijzen gaan om de paar maanden omhoog.",
            "Verzendkosten van {amount} voor een kleine bestelling is belachelijk.",
            "Bij de concurrent krijg je hetzelfde voor veel minder.",
            "Het premium abonnement is het geld niet waard.",
        ),
    },
    "support_wait": {
        "en": (
            "I was on hold for {minutes} minutes before anyone picked up.",
            "Customer service took {days} days to answer my email.",
            "The chat queue is endless, I gave up after {minutes} minutes.",
            "Nobody ever replies to support tickets.",
            "I had to call {n} times to get through to someone.",
            "Waiting times on the hotline are unacceptable.",
        ),
        "pt": (
            "Fiquei {minutes} minutos na espera até alguém atender.",
            "O atendimento levou {days} dias para responder meu e-mail.",
            "A fila do chat não anda, desisti depois de {minutes} minutos.",
            "Ninguém responde os chamados do suporte.",
            "Tive que ligar {n} vezes para conseguir falar com alguém.",
            "O tempo de espera no telefone é inaceitável.",
        ),
        "es": (
            "Estuve {minutes} minutos en espera hasta que alguien contestó.",
            "Atención al cliente tardó {days} días en responder a mi correo.",
            "La cola del chat es eterna, me rendí a los {minutes} minutos.",
            "Nadie responde a las incidencias de soporte.",
            "Tuve que llamar {n} veces para poder hablar con alguien.",
            "Los tiempos de espera al teléfono son inaceptables.",
        ),
        "fr": (
            "Je suis resté {minutes} minutes en attente avant qu'on décroche.",
            "Le service client a mis {days} jours à répondre à mon mail.",
            "La file d'attente du chat est interminable, j'ai abandonné au bout de {minutes} minutes.",
            "Personne ne répond jamais aux tickets du support.",
            "J'ai dû appeler {n} fois pour avoir quelqu'un.",
            "Les temps d'attente au téléphone sont inacceptables.",
        ),
        "nl": (
            "Ik hing {minutes} minuten in de wacht voordat er iemand opnam.",
            "De klantenservice deed er {days} dagen over om mijn mail te beantwoorden.",
            "De wachtrij van de chat is eindeloos, na {minutes} minuten heb ik het opgegeven.",
            "Er wordt nooit gereageerd op supporttickets.",
            "Ik moest {n} keer bellen voordat ik iemand aan de lijn kreeg.",
            "De wachttijden aan de telefoon zijn onacceptabel.",
        ),
    },
    "support_helpful": {
        "en": (
            "The agent on the phone was really friendly and sorted it out in minutes.",
            "{agent} from customer service was so helpful, thank you!",
            "Support staff are patient and know what they're talking about.",
            "The chat assistant solved my problem right away.",
            "Great service in the store, the staff went out of their way to help.",
            "Friendly people who actually listen to you.",
        ),
        "pt": (
            "O atendente foi muito simpático e resolveu tudo em minutos.",
            "A {agent} do atendimento foi super prestativa, obrigado!",
            "A equipe de suporte é paciente e sabe do que está falando.",
            "No chat resolveram meu problema na hora.",
            "Ótimo atendimento na loja, os funcionários fizeram de tudo para ajudar.",
            "Pessoal atencioso que realmente escuta o cliente.",
        ),
        "es": (
            "El agente fue muy amable y lo resolvió en minutos.",
            "{agent}, de atención al cliente, fue muy resolutiva. ¡Gracias!",
            "El equipo de soporte es paciente y sabe de lo que habla.",
            "Por el chat me solucionaron el problema al momento.",
            "Muy buena atención en la tienda, el personal se desvivió por ayudar.",
            "Gente amable que de verdad te escucha.",
        ),
        "fr": (
            "Le conseiller était très aimable et a tout réglé en quelques minutes.",
            "{agent} du service client a été super serviable, merci !",
            "L'équipe support est patiente et compétente.",
            "Sur le chat, on m'a résolu le problème tout de suite.",
            "Super accueil en magasin, le personnel s'est plié en quatre.",
            "Des gens sympathiques qui vous écoutent vraiment.",
        ),
        "nl": (
            "De medewerker aan de telefoon was heel vriendelijk en had het binnen een paar minuten opgelost.",
            "{agent} van de klantenservice was super behulpzaam, dank je!",
            "De supportmedewerkers zijn geduldig en weten waar ze het over hebben.",
            "Via de chat was mijn probleem meteen opgelost.",
            "Geweldige service in de winkel, het personeel deed echt alles om te helpen.",
            "Vriendelijke mensen die echt naar je luisteren.",
        ),
    },
    "app_crash": {
        "en": (
            "The app crashes every time I open my orders.",
            "Since the last update (version {version}) the app keeps closing on its own.",
            "App freezes at checkout on my {device}.",
            "The app crashed {n} times while I was trying to pay.",
            "Can't use the app anymore, it just shows a white screen and shuts down.",
            "The new app version is full of bugs and crashes constantly.",
        ),
        "pt": (
            "O app fecha sozinho toda vez que abro meus pedidos.",
            "Desde a última atualização (versão {version}) o aplicativo vive travando.",
            "O app trava na hora de finalizar a compra no meu {device}.",
            "O aplicativo caiu {n} vezes enquanto eu tentava pagar.",
            "Não consigo mais usar o app, fica com a tela branca e fecha.",
            "A nova versão do app está cheia de bugs e trava o tempo todo.",
        ),
        "es": (
            "La app se cierra cada vez que abro mis pedidos.",
            "Desde la última actualización (versión {version}) la aplicación se cuelga sin parar.",
            "La app se queda congelada al pagar en mi {device}.",
            "La aplicación se cerró {n} veces mientras intentaba pagar.",
            "Ya no puedo usar la app, se queda en blanco y se cierra.",
            "La nueva versión de la app está llena de fallos y se bloquea constantemente.",
        ),
        "fr": (
            "L'appli plante à chaque fois que j'ouvre mes commandes.",
            "Depuis la dernière mise à jour (version {version}) l'application se ferme toute seule.",
            "L'appli se fige au moment de payer sur mon {device}.",
            "L'application a planté {n} fois pendant que j'essayais de payer.",
            "Impossible d'utiliser l'appli, écran blanc puis elle se ferme.",
            "La nouvelle version de l'appli est pleine de bugs et plante sans arrêt.",
        ),
        "nl": (
            "De app crasht elke keer als ik mijn bestellingen open.",
            "Sinds de laatste update (versie {version}) sluit de app zichzelf steeds af.",
            "De app bevriest bij het afrekenen op mijn {device}.",
            "De app is {n} keer gecrasht terwijl ik probeerde te betalen.",
            "Ik kan de app niet meer gebruiken, wit scherm en dan sluit hij af.",
            "De nieuwe versie van de app zit vol bugs en loopt constant vast.",
        ),
    },
    "login_issue": {
        "en": (
            "I can't log in, it says my password is wrong even after resetting it.",
            "The password reset email never arrives.",
            "Got locked out of my account for no reason.",
            "The verification code never comes through, so I can't sign in.",
            "Every time I log in it sends me back to the login page.",
            "I had to reset my password {n} times this month.",
        ),
        "pt": (
            "Não consigo entrar, diz que a senha está errada mesmo depois de redefinir.",
            "O e-mail de redefinição de senha nunca chega.",
            "Minha conta foi bloqueada sem motivo.",
            "O código de verificação não chega e não consigo fazer login.",
            "Toda vez que faço login volta para a tela de entrada.",
            "Tive que trocar a senha {n} vezes este mês.",
        ),
        "es": (
            "No puedo iniciar sesión, dice que la contraseña es incorrecta aunque la he cambiado.",
            "El correo para restablecer la contraseña nunca llega.",
            "Me bloquearon la cuenta sin motivo.",
            "El código de verificación no llega y no puedo entrar.",
            "Cada vez que inicio sesión me devuelve a la pantalla de acceso.",
            "He tenido que cambiar la contraseña {n} veces este mes.",
        ),
        "fr": (
            "Impossible de me connecter, mot de passe refusé même après l'avoir réinitialisé.",
            "Le mail de réinitialisation du mot de passe n'arrive jamais.",
            "Mon compte a été bloqué sans raison.",
            "Le code de vérification n'arrive pas, donc je ne peux pas me connecter.",
            "À chaque connexion je suis renvoyé sur la page d'identification.",
            "J'ai dû réinitialiser mon mot de passe {n} fois ce mois-ci.",
        ),
        "nl": (
            "Ik kan niet inloggen, mijn wachtwoord zou fout zijn, ook na het resetten.",
            "De mail om mijn wachtwoord te resetten komt nooit aan.",
            "Mijn account werd zomaar geblokkeerd.",
            "De verificatiecode komt niet binnen, dus ik kan niet inloggen.",
            "Elke keer als ik inlog word ik teruggestuurd naar het inlogscherm.",
            "Ik heb deze maand {n} keer mijn wachtwoord moeten resetten.",
        ),
    },
    "website_usability": {
        "en": (
            "The website is really easy to use.",
            "Finding what I need on the site takes seconds.",
            "Checkout is quick and simple.",
            "Love how clean and intuitive the app is.",
            "Ordering online was smooth from start to finish.",
            "The search and filters work great, very user-friendly.",
        ),
        "pt": (
            "O site é muito fácil de usar.",
            "Encontro o que preciso no site em segundos.",
            "Finalizar a compra é rápido e simples.",
            "Adoro como o app é limpo e intuitivo.",
            "Comprar pelo site foi tranquilo do início ao fim.",
            "A busca e os filtros funcionam muito bem, bem prático.",
        ),
        "es": (
            "La web es muy fácil de usar.",
            "Encuentro lo que busco en la web en segundos.",
            "El proceso de pago es rápido y sencillo.",
            "Me encanta lo limpia e intuitiva que es la app.",
            "Comprar online fue muy cómodo de principio a fin.",
            "El buscador y los filtros funcionan genial, muy intuitivo.",
        ),
        "fr": (
            "Le site est vraiment facile à utiliser.",
            "Je trouve ce que je cherche sur le site en quelques secondes.",
            "Le paiement est rapide et simple.",
            "J'adore l'appli, claire et intuitive.",
            "Commander en ligne s'est fait sans accroc du début à la fin.",
            "La recherche et les filtres marchent super bien, très pratique.",
        ),
        "nl": (
            "De website is echt makkelijk in gebruik.",
            "Op de site vind ik binnen een paar seconden wat ik zoek.",
            "Afrekenen gaat snel en eenvoudig.",
            "Ik vind de app heel overzichtelijk en intuïtief.",
            "Online bestellen ging van begin tot eind soepel.",
            "Zoeken en filteren werkt top, heel gebruiksvriendelijk.",
        ),
    },
    "product_quality": {
        "en": (
            "The {product} is excellent quality, feels like it will last for years.",
            "Products are well made and exactly as described.",
            "Really impressed with the quality of the {product}.",
            "Great materials, much better than what I had before.",
            "Everything I've bought here has been top quality.",
            "The {product} works perfectly, very happy with it.",
        ),
        "pt": (
            "O {product} é de ótima qualidade, parece que vai durar anos.",
            "Os produtos são bem feitos e exatamente como descritos.",
            "Fiquei impressionado com a qualidade do {product}.",
            "Materiais excelentes, muito melhor do que o que eu tinha antes.",
            "Tudo o que comprei aqui tem sido de primeira.",
            "O {product} funciona perfeitamente, estou muito satisfeito.",
        ),
        "es": (
            "El {product} es de muy buena calidad, parece que durará años.",
            "Los productos están bien hechos y son tal como se describen.",
            "Me ha impresionado la calidad del {product}.",
            "Materiales excelentes, mucho mejores que lo que tenía antes.",
            "Todo lo que he comprado aquí es de primera calidad.",
            "El {product} funciona perfectamente, estoy muy contento.",
        ),
        "fr": (
            "Le {product} est d'excellente qualité, on sent qu'il va durer des années.",
            "Les produits sont bien finis et conformes à la description.",
            "Vraiment impressionné par la qualité du {product}.",
            "Matériaux top, bien mieux que ce que j'avais avant.",
            "Tout ce que j'ai acheté ici est de très bonne qualité.",
            "Le {product} fonctionne parfaitement, très content.",
        ),
        "nl": (
            "De {product} is van uitstekende kwaliteit, gaat vast jaren mee.",
            "De producten zijn goed gemaakt en precies zoals beschreven.",
            "Echt onder de indruk van de kwaliteit van de {product}.",
            "Prima materialen, veel beter dan wat ik eerst had.",
            "Alles wat ik hier heb gekocht is topkwaliteit.",
            "De {product} werkt perfect, ik ben er heel blij mee.",
        ),
    },
    "cancellation": {
        "en": (
            "Cancelling my subscription is way too hard.",
            "There's no cancel button anywhere, I had to call to end my plan.",
            "I cancelled {weeks} weeks ago but my subscription is still active.",
            "They make you jump through hoops to cancel.",
            "Tried to end my membership online {n} times, it never goes through.",
            "The cancellation process is deliberately confusing.",
        ),
        "pt": (
            "Cancelar a assinatura é difícil demais.",
            "Não tem botão de cancelar em lugar nenhum, tive que ligar para encerrar o plano.",
            "Pedi o cancelamento há {weeks} semanas e a assinatura continua ativa.",
            "Dificultam de todo jeito para a gente cancelar.",
            "Tentei cancelar pelo site {n} vezes e nunca funciona.",
            "O processo de cancelamento é confuso de propósito.",
        ),
        "es": (
            "Darse de baja de la suscripción es demasiado difícil.",
            "No hay botón para cancelar por ningún lado, tuve que llamar para dar de baja el plan.",
            "Pedí la baja hace {weeks} semanas y la suscripción sigue activa.",
            "Te ponen mil trabas para cancelar.",
            "Intenté cancelar por la web {n} veces y nunca funciona.",
            "El proceso de baja es confuso a propósito.",
        ),
        "fr": (
            "Résilier l'abonnement est beaucoup trop compliqué.",
            "Aucun bouton pour résilier, j'ai dû appeler pour mettre fin à mon forfait.",
            "J'ai demandé la résiliation il y a {weeks} semaines et l'abonnement est toujours actif.",
            "Ils vous mettent des bâtons dans les roues pour résilier.",
            "J'ai essayé de résilier en ligne {n} fois, ça ne passe jamais.",
            "La procédure de résiliation est volontairement floue.",
        ),
        "nl": (
            "Opzeggen van het abonnement is veel te moeilijk.",
            "Nergens een knop om op te zeggen, ik moest bellen om mijn abonnement te stoppen.",
            "Ik heb {weeks} weken geleden opgezegd en mijn abonnement loopt nog steeds.",
            "Ze maken het je expres lastig om op te zeggen.",
            "Ik heb {n} keer online geprobeerd op te zeggen, het lukt nooit.",
            "Het opzegproces is bewust onduidelijk.",
        ),
    },
}

# Sentences that carry a tone but no theme.
GENERIC: dict[str, dict[str, tuple[str, ...]]] = {
    "positive": {
        "en": (
            "Would definitely recommend!",
            "Overall a great experience.",
            "Very happy customer.",
            "Keep up the good work!",
            "Best online shop I've used.",
            "Love it.",
        ),
        "pt": (
            "Recomendo com certeza!",
            "No geral, uma ótima experiência.",
            "Cliente muito satisfeito.",
            "Continuem assim!",
            "Melhor loja online que já usei.",
            "Adoro.",
        ),
        "es": (
            "¡Lo recomiendo sin duda!",
            "En general, una experiencia genial.",
            "Cliente muy satisfecho.",
            "¡Seguid así!",
            "La mejor tienda online que he probado.",
            "Me encanta.",
        ),
        "fr": (
            "Je recommande sans hésiter !",
            "Globalement une super expérience.",
            "Client très satisfait.",
            "Continuez comme ça !",
            "La meilleure boutique en ligne que je connaisse.",
            "J'adore.",
        ),
        "nl": (
            "Zeker een aanrader!",
            "Al met al een prima ervaring.",
            "Zeer tevreden klant.",
            "Ga zo door!",
            "Beste webshop die ik ken.",
            "Helemaal top.",
        ),
    },
    "negative": {
        "en": (
            "Very disappointed.",
            "Never again.",
            "Not what I expected from you.",
            "Really frustrating experience.",
            "I'm thinking of switching to another store.",
            "Terrible.",
        ),
        "pt": (
            "Muito decepcionado.",
            "Nunca mais compro.",
            "Esperava mais de vocês.",
            "Experiência muito frustrante.",
            "Estou pensando em trocar de loja.",
            "Péssimo.",
        ),
        "es": (
            "Muy decepcionado.",
            "Nunca más.",
            "Esperaba más de vosotros.",
            "Una experiencia muy frustrante.",
            "Me estoy planteando cambiarme a otra tienda.",
            "Fatal.",
        ),
        "fr": (
            "Très déçu.",
            "Plus jamais.",
            "Je m'attendais à mieux de votre part.",
            "Expérience vraiment frustrante.",
            "Je pense aller voir ailleurs.",
            "Nul.",
        ),
        "nl": (
            "Erg teleurgesteld.",
            "Nooit meer.",
            "Ik had meer van jullie verwacht.",
            "Echt een frustrerende ervaring.",
            "Ik denk erover om naar een andere winkel te gaan.",
            "Slecht.",
        ),
    },
    "neutral": {
        "en": (
            "It's fine, nothing special.",
            "Average experience.",
            "Does the job.",
            "No strong feelings either way.",
            "Haven't used it enough to say.",
            "It was okay.",
        ),
        "pt": (
            "Tudo certo, nada de especial.",
            "Experiência mediana.",
            "Cumpre o que promete.",
            "Nem bom nem ruim.",
            "Ainda usei pouco para opinar.",
            "Foi ok.",
        ),
        "es": (
            "Está bien, nada especial.",
            "Experiencia normalita.",
            "Cumple su función.",
            "Ni bien ni mal.",
            "Aún lo he usado poco para opinar.",
            "Correcto.",
        ),
        "fr": (
            "Ça va, rien de spécial.",
            "Expérience moyenne.",
            "Ça fait le travail.",
            "Ni bien ni mal.",
            "Pas encore assez utilisé pour juger.",
            "Correct, sans plus.",
        ),
        "nl": (
            "Prima, niets bijzonders.",
            "Gemiddelde ervaring.",
            "Doet wat het moet doen.",
            "Niet goed, niet slecht.",
            "Nog te weinig gebruikt om te oordelen.",
            "Het was oké.",
        ),
    },
}

# Connectors put before a sentence whose tone differs from the one before it (mixed answers).
CONNECTORS: dict[str, dict[str, tuple[str, ...]]] = {
    "negative": {
        "en": ("But", "However,", "Only downside:", "That said,"),
        "pt": ("Mas", "Porém,", "Ponto negativo:", "Por outro lado,"),
        "es": ("Pero", "Sin embargo,", "Lo malo:", "Por otro lado,"),
        "fr": ("Mais", "Par contre,", "En revanche,", "Seul bémol :"),
        "nl": ("Maar", "Minpunt:", "Nadeel:", "Aan de andere kant:"),
    },
    "positive": {
        "en": ("But", "On the plus side,", "That said,", "To be fair,"),
        "pt": ("Mas", "Por outro lado,", "Ponto positivo:", "Em compensação,"),
        "es": ("Pero", "Por otro lado,", "Lo bueno:", "Eso sí,"),
        "fr": ("Mais", "Par contre,", "Point positif :", "En revanche,"),
        "nl": ("Maar", "Pluspunt:", "Wel positief:", "Aan de andere kant:"),
    },
}

# --------------------------------------------------------------------------------------------------------
# Slot values
# --------------------------------------------------------------------------------------------------------

PRODUCTS: dict[str, tuple[str, ...]] = {
    "en": (
        "headset",
        "blender",
        "phone charger",
        "desk lamp",
        "backpack",
        "coffee machine",
        "winter jacket",
    ),
    "pt": (
        "fone de ouvido",
        "liquidificador",
        "tênis de corrida",
        "abajur",
        "carregador",
        "casaco",
        "ventilador",
    ),
    "es": ("secador", "microondas", "abrigo", "cargador", "ventilador", "altavoz", "reloj"),
    "fr": ("casque", "mixeur", "sac à dos", "chargeur", "ventilateur", "manteau", "grille-pain"),
    "nl": ("koptelefoon", "blender", "rugzak", "oplader", "ventilator", "winterjas", "stofzuiger"),
}
AGENTS: dict[str, tuple[str, ...]] = {  # female names: pt/es templates agree in gender
    "en": ("Sarah", "Emma", "Olivia", "Grace"),
    "pt": ("Ana", "Juliana", "Carla", "Beatriz"),
    "es": ("Lucía", "Marta", "Carmen", "Elena"),
    "fr": ("Julie", "Camille", "Sophie", "Claire"),
    "nl": ("Sanne", "Lotte", "Eva", "Fleur"),
}
DEVICES = ("iPhone", "Android", "Samsung", "Pixel", "iPad")
EMOJI = {"positive": ("😊", "👍", "❤️", "🙌"), "negative": ("😡", "👎", "😤", "🙄"), "mixed": ("🤷", "😐")}

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

NON_ANSWERS: tuple[str | None, ...] = (
    "n/a",
    "N/A",
    "nada",
    "-",
    "rien",
    "nothing",
    "geen",
    "sem comentários",
    "...",
    "",
    None,
    "no comment",
    "none",
    "sin comentarios",
    "pas de commentaire",
    "geen opmerkingen",
    ".",
    "?",
    "x",
)
SHORT_ANSWERS: dict[str, tuple[tuple[str, str], ...]] = {
    "en": (
        ("ok", "neutral"),
        ("good", "positive"),
        ("great", "positive"),
        ("fine", "neutral"),
        ("bad", "negative"),
    ),
    "pt": (
        ("top", "positive"),
        ("bom", "positive"),
        ("ótimo", "positive"),
        ("ruim", "negative"),
        ("ok", "neutral"),
    ),
    "es": (("bien", "positive"), ("genial", "positive"), ("regular", "neutral"), ("malo", "negative")),
    "fr": (("bien", "positive"), ("top", "positive"), ("bof", "neutral"), ("nul", "negative")),
    "nl": (("prima", "positive"), ("top", "positive"), ("goed", "positive"), ("matig", "neutral")),
}
# Answers in a language outside the configured five: (text, language, tags, sentiment).
FOREIGN_ANSWERS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("Die Lieferung kam eine Woche zu spät.", "de", ("delivery_delay",), "negative"),
    ("Sehr freundlicher Kundenservice, vielen Dank!", "de", ("support_helpful",), "positive"),
    ("La consegna è arrivata con dieci giorni di ritardo.", "it", ("delivery_delay",), "negative"),
    ("Il sito è facilissimo da usare, complimenti.", "it", ("website_usability",), "positive"),
    ("Die App stürzt beim Bezahlen ständig ab.", "de", ("app_crash",), "negative"),
    ("Troppo caro per quello che offre.", "it", ("price",), "negative"),
)

# Personal data. "#" is replaced by a random digit. All of it is invented.
PII_SENTENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "email": {
        "en": ("You can reach me at {email}.", "Email me: {email}"),
        "pt": ("Meu e-mail é {email}.", "Respondam para {email} por favor"),
        "es": ("Mi correo es {email}.", "Escribidme a {email}"),
        "fr": ("Mon mail : {email}.", "Répondez-moi sur {email} svp"),
        "nl": ("Mijn e-mail is {email}.", "Mail me op {email}"),
    },
    "phone": {
        "en": ("Call me back on {phone}.", "My number is {phone}, please call."),
        "pt": ("Me liguem no {phone}.", "Meu telefone: {phone}"),
        "es": ("Llamadme al {phone}.", "Mi teléfono: {phone}"),
        "fr": ("Rappelez-moi au {phone}.", "Mon numéro : {phone}"),
        "nl": ("Bel me terug op {phone}.", "Mijn nummer is {phone}."),
    },
    "card": {
        "en": ("The card I used is {card}.",),
        "pt": ("O cartão usado foi {card}.",),
        "es": ("La tarjeta que usé es la {card}.",),
        "fr": ("La carte utilisée est la {card}.",),
        "nl": ("Ik heb betaald met kaart {card}.",),
    },
    "url": {
        "en": ("Screenshot here: {url}",),
        "pt": ("Print aqui: {url}",),
        "es": ("Captura aquí: {url}",),
        "fr": ("Capture ici : {url}",),
        "nl": ("Screenshot: {url}",),
    },
    "handle": {
        "en": ("DM me on Twitter {handle}.",),
        "pt": ("Me chama no Insta {handle}.",),
        "es": ("Escribidme en Twitter {handle}.",),
        "fr": ("Contactez-moi sur Insta {handle}.",),
        "nl": ("Stuur me een DM op Instagram {handle}.",),
    },
}
PII_KIND_WEIGHTS = {"email": 0.35, "phone": 0.35, "card": 0.1, "url": 0.1, "handle": 0.1}
PHONE_FORMATS: dict[str, tuple[str, ...]] = {
    "en": ("+44 7700 900###", "07700 900###", "(555) 01#-####"),
    "pt": ("(11) 9####-####", "+55 21 9####-####", "+351 91# ### ###"),
    "es": ("+34 6## ### ###", "6########", "+34 91 ### ## ##"),
    "fr": ("06 ## ## ## ##", "+33 6 ## ## ## ##", "07.##.##.##.##"),
    "nl": ("06-########", "+31 6 ########", "020 ### ####"),
}
CARD_NUMBERS = ("4111 1111 1111 1111", "5500-0000-0000-0004", "4012888888881881", "3782 822463 10005")
URL_FORMATS = (
    "https://www.example.com/orders/#######",
    "http://example.com/help/ticket?id=#####",
    "www.example.org/account/#####",
)
FIRST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("james", "emma", "oliver", "sophie"),
    "pt": ("joana", "pedro", "mariana", "lucas"),
    "es": ("lucía", "javier", "carmen", "diego"),
    "fr": ("camille", "julien", "manon", "hugo"),
    "nl": ("sanne", "daan", "lotte", "bram"),
}
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "en": ("smith", "walker", "taylor", "brown"),
    "pt": ("silva", "souza", "oliveira", "costa"),
    "es": ("garcía", "lópez", "martín", "ruiz"),
    "fr": ("martin", "bernard", "dubois", "moreau"),
    "nl": ("jansen", "devries", "bakker", "visser"),
}
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "gmail.com", "hotmail.com")
CONTROL_CHARS = ("\x07", "\x0b", "\x0c", "\x1b", "\x7f")

TRUTH_COLUMNS = ["true_language", "true_sentiment", "true_tags", "true_issue", "true_pii"]
"""Hidden columns added with ``with_truth=True``."""

_KEEP_CASE = {"I", "I'm", "I've", "I'd"} | {name for names in AGENTS.values() for name in names}


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
