"""The label words and options of one training example: caller words, subsets, distractors.

:func:`example_labels` decides, per example, which word names each tag (the corpus word or,
with ``augment.label_words``, a word of :data:`instructner.method.label_words.TRAIN_WORDS`; tags
sharing a word merge), which words the prompt lists (a random subset, with
``augment.option_subset``), and which labels of other corpora are listed beside them that the
answer never uses (``augment.distractors``). A distractor is never a word of the same kind
as one of the corpus's own types (:func:`word_group`): "actor" is not offered to a CoNLL-2003
sentence whose people are "person", since either answer would be right.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from instructner.method.label_words import train_words
from instructner.method.labels import CORPORA, Verbalizer, get_verbalizer
from instructner.research.augment import AugmentConfig, option_subset
from instructner.research.names import base_tag, fine_word

_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("person", ("person", "name", "people", "human", "actor", "actress", "cast", "star",
                "character", "role", "director", "individual", "performer")),
    ("place", ("city", "state", "airport", "country", "location", "place", "area", "address",
               "loc", "region", "neighborhood", "town")),
    ("organization", ("organization", "organisation", "company", "org", "institution",
                      "restaurant", "business", "airline", "firm", "carrier", "eatery")),
    ("time", ("time", "hour", "day", "date", "month", "year", "week", "period", "schedule",
              "today")),
    ("price", ("price", "cost", "fare", "budget", "charge")),
    ("rating", ("rating", "stars", "score", "review", "opinion", "certificate", "quality")),
    ("food", ("dish", "food", "cuisine", "meal", "menu")),
    ("misc", ("miscellaneous", "misc", "other", "title", "song", "genre", "movie", "film",
              "soundtrack", "music")),
)  # fmt: skip


def word_group(word: str) -> str | None:
    """Return the kind of thing a label word names (person, place, time, ...), if known."""
    parts = word.lower().split()
    for group, keys in _GROUPS:
        if any(key in parts for key in keys):
            return group
    return None


@cache
def distractor_pool(corpus: str) -> tuple[str, ...]:
    """Words of the other corpora (their own and training-list words) safe to offer ``corpus``."""
    own = set(get_verbalizer(corpus).words) if corpus in CORPORA else set()
    for words in train_words(corpus).values():
        own.update(words)
    taken = {word_group(word) for word in own} - {None}
    pool: set[str] = set()
    for other in CORPORA:
        if other == corpus:
            continue
        candidates = set(get_verbalizer(other).words)
        for words in train_words(other).values():
            candidates.update(words)
        pool.update(w for w in candidates if w not in own and word_group(w) not in taken)
    return tuple(sorted(pool))


@dataclass(frozen=True)
class ExampleLabels:
    """The listed options of an example and the word of each of its entities' tags."""

    options: list[str]
    words: dict[str, str]  # tag (possibly fine-grained, LOC|city) -> word

    def word(self, tag: str) -> str:
        """Return the answer word of ``tag``."""
        return self.words[tag]


def _tag_words(
    verbalizer: Verbalizer, corpus: str, augment: AugmentConfig | None, rng: random.Random
) -> dict[str, str]:
    mapping = dict(verbalizer.mapping())
    if augment is None or augment.label_words <= 0 or rng.random() >= augment.label_words:
        return mapping
    chosen: dict[tuple[str, ...], str] = {}  # tags with one synonym list share one word
    for tag, synonyms in train_words(corpus).items():
        if tag in mapping and synonyms:
            if synonyms not in chosen:
                chosen[synonyms] = synonyms[rng.randrange(len(synonyms))]
            mapping[tag] = chosen[synonyms]
    return mapping


def example_labels(
    verbalizer: Verbalizer,
    corpus: str,
    gold_tags: Sequence[str],
    augment: AugmentConfig | None,
    rng: random.Random | None,
    keep_all_gold: bool = False,
) -> ExampleLabels:
    """Return the options and tag words of one example (module docstring).

    Without ``rng`` the corpus words in corpus order. A fine-grained tag (``LOC|city``) is
    answered with its fine word when the options list it: they do when every mention of its
    base tag in the sentence is fine-grained and the label-words draw replaced the base word
    by the fine words (``city``, ``country``). ``keep_all_gold`` (typing) lists every gold word.
    """
    if rng is None:
        words = dict(verbalizer.mapping())
        words.update({t: verbalizer.word(base_tag(t)) for t in gold_tags if t not in words})
        return ExampleLabels(list(verbalizer.words), words)
    words = _tag_words(verbalizer, corpus, augment, rng)
    fine = _fine_words(gold_tags, words, verbalizer, augment, rng)
    for tag in gold_tags:
        if tag not in words:
            base = base_tag(tag)
            words[tag] = fine.get(tag) or words.get(base) or verbalizer.word(base)
    listed = list(dict.fromkeys(words[tag] for tag in verbalizer.tags))
    for tag in fine:
        listed = [w for w in listed if w != words[base_tag(tag)]]
    listed.extend(dict.fromkeys(w for w in fine.values() if w not in listed))
    gold_words = [words[tag] for tag in gold_tags]
    if augment is not None:
        if keep_all_gold:
            augment = _keep_gold(augment)
        options = option_subset(listed, gold_words, augment, rng)
        if augment.distractors > 0 and rng.random() < augment.distractors:
            pool = [w for w in distractor_pool(corpus) if w not in options]
            options.extend(rng.sample(pool, min(len(pool), rng.randint(1, 4))))
            rng.shuffle(options)
    else:
        options = list(listed)
        rng.shuffle(options)
    return ExampleLabels(options, words)


def _keep_gold(augment: AugmentConfig) -> AugmentConfig:
    return dataclasses.replace(augment, subset_keep_gold=1.0)


def _fine_words(
    gold_tags: Sequence[str],
    words: dict[str, str],
    verbalizer: Verbalizer,
    augment: AugmentConfig | None,
    rng: random.Random,
) -> dict[str, str]:
    """Return the fine words of the fine tags when they replace their base word, else {}."""
    fine_tags = [tag for tag in gold_tags if fine_word(tag)]
    if not fine_tags or augment is None or augment.label_words <= 0:
        return {}
    bases = {base_tag(tag) for tag in fine_tags}
    if any(tag in bases for tag in gold_tags):  # a mention of unknown kind stays coarse
        return {}
    if rng.random() >= augment.label_words:
        return {}
    fine = {tag: str(fine_word(tag)) for tag in fine_tags}
    # both fine words are listed, so the model must tell a city from a country
    for base in bases:
        for word in ("city", "country"):
            fine.setdefault(f"{base}|{word}", word)
    return fine
