"""Cities consistent with each user's country: the real largest cities first, then a Zipf tail of generated names.

The tail sizes are set so that the full-scale world has about as many distinct cities as the real one (3,915);
:func:`expected_distinct_cities` computes that number exactly from the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from batch.world.dist import FloatArray, IntArray, zipf_weights

# Share of the country's users living in each named city. Russia's first four are the real counts / 143,035.
_NAMED_CITIES: dict[str, tuple[tuple[str, float], ...]] = {
    "Russia": (
        ("Moscow", 0.15293),
        ("Saint Petersburg", 0.04827),
        ("Novosibirsk", 0.01389),
        ("Yekaterinburg", 0.01345),
        ("Kazan", 0.0112),
        ("Nizhny Novgorod", 0.0106),
        ("Chelyabinsk", 0.0101),
        ("Samara", 0.0096),
        ("Omsk", 0.0093),
        ("Rostov-on-Don", 0.0091),
        ("Ufa", 0.0088),
        ("Krasnoyarsk", 0.0085),
        ("Voronezh", 0.0081),
        ("Perm", 0.0079),
        ("Volgograd", 0.0075),
    ),
    "Ukraine": (("Kyiv", 0.22), ("Kharkiv", 0.08), ("Odesa", 0.07), ("Dnipro", 0.06), ("Lviv", 0.05)),
    "Belarus": (("Minsk", 0.33), ("Gomel", 0.07), ("Mogilev", 0.06), ("Vitebsk", 0.05), ("Grodno", 0.05)),
    "Kazakhstan": (("Almaty", 0.2), ("Nur-Sultan", 0.14), ("Shymkent", 0.06), ("Karaganda", 0.05)),
    "Turkey": (("Istanbul", 0.3), ("Ankara", 0.1), ("Izmir", 0.08), ("Antalya", 0.05)),
    "Finland": (("Helsinki", 0.3), ("Espoo", 0.08), ("Tampere", 0.07), ("Turku", 0.05)),
    "Azerbaijan": (("Baku", 0.45), ("Ganja", 0.07), ("Sumqayit", 0.06)),
    "Estonia": (("Tallinn", 0.45), ("Tartu", 0.1), ("Narva", 0.06)),
    "Latvia": (("Riga", 0.5), ("Daugavpils", 0.08)),
    "Cyprus": (("Nicosia", 0.3), ("Limassol", 0.25), ("Larnaca", 0.1)),
    "Switzerland": (("Zurich", 0.25), ("Geneva", 0.18), ("Basel", 0.1), ("Bern", 0.08)),
}

_TAIL_EXPONENT = 1.05
# Generated tail names per country: about this times the country's full-scale user count ** 0.75.
_TAIL_NAMES_PER_USER_POWER = 0.397
_TAIL_POWER = 0.75
_ONSETS = ("Bel", "Kras", "Nov", "Zel", "Sos", "Lip", "Ber", "Dub", "Ozer", "Kam", "Vol", "Pet", "Sev", "Yar")
_MIDDLES = ("o", "e", "a", "ino", "ovo", "en", "ar", "ush", "ol", "yan", "ir", "et")
_ENDINGS: dict[str, tuple[str, ...]] = {
    "Russia": ("sk", "gorsk", "grad", "ovka", "insk", "ovo", "yevo", "ozersk", "ino", "zavodsk"),
    "Ukraine": ("ivka", "opil", "ske", "ychi", "iv", "horod"),
    "Belarus": ("ichi", "ovichi", "sk", "yany", "avy"),
    "Kazakhstan": ("tau", "bulak", "kol", "ata", "su"),
    "Turkey": ("köy", "li", "hisar", "kale", "dere"),
    "Finland": ("lahti", "järvi", "koski", "salo", "niemi"),
    "Azerbaijan": ("abad", "lar", "kend", "chay"),
    "Estonia": ("küla", "maa", "vere", "pere"),
    "Latvia": ("ciems", "pils", "muiža", "kalns"),
    "Cyprus": ("kori", "chori", "ia", "os"),
    "Switzerland": ("wil", "ingen", "dorf", "berg", "ikon"),
}


@dataclass(frozen=True, slots=True)
class CityTable:
    """One country's cities and the probability of each."""

    names: tuple[str, ...]
    weights: FloatArray


def city_table(country: str, full_count: int) -> CityTable:
    """The named cities then the generated tail of one country, with probabilities summing to 1."""
    named = _NAMED_CITIES[country]
    tail_share = 1.0 - sum(share for _, share in named)
    tail_size = max(1, round(_TAIL_NAMES_PER_USER_POWER * full_count**_TAIL_POWER))
    names = (*(name for name, _ in named), *_tail_names(country, tail_size))
    weights = np.concatenate([[share for _, share in named], tail_share * zipf_weights(tail_size, _TAIL_EXPONENT)])
    return CityTable(names, weights)


def _tail_names(country: str, count: int) -> list[str]:
    endings = _ENDINGS[country]
    names: list[str] = []
    for number in range(count):
        onset = _ONSETS[number % len(_ONSETS)]
        middle = _MIDDLES[(number // len(_ONSETS)) % len(_MIDDLES)]
        ending = endings[(number // (len(_ONSETS) * len(_MIDDLES))) % len(endings)]
        cycle = number // (len(_ONSETS) * len(_MIDDLES) * len(endings))
        names.append(f"{onset}{middle}{ending}" + (f"-{cycle + 1}" if cycle else ""))
    return names


def sample_cities(rng: np.random.Generator, table: CityTable, count: int) -> IntArray:
    """Indices into ``table.names`` for ``count`` users of that country."""
    return rng.choice(len(table.names), size=count, p=table.weights)


def expected_distinct_cities(tables: dict[str, CityTable], counts: dict[str, int]) -> float:
    """Expected number of distinct cities among users drawn independently from the tables."""
    return float(sum(np.sum(1.0 - (1.0 - tables[c].weights) ** counts[c]) for c in counts))
