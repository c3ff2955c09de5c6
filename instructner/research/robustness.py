"""Robustness variants: the test sets rewritten as callers write text and labels.

Every corpus is pre-tokenized (a space before each punctuation mark), nearly pure ASCII, and
asked with its own fixed label words. A variant rewrites each annotated sentence into a
:class:`Case`: the text a caller would send, the gold entities at their offsets in that text
(labelled with the words the caller asks for), and the option lists the caller sends (the
predictions of several requests are unioned). Every transform is deterministic: a sentence's
draws come from an RNG seeded by the variant, the corpus and the sentence's index.

========================  ==================================================================
variant                   what changes
========================  ==================================================================
``plain``                 nothing: the corpus text and its label words in corpus order
``natural``               text detokenized as people write it (``sacremoses``' Moses
                          detokenizer: no space before ``, . ; : ! ? % )``, none after ``(``,
                          ``'s``/``n't`` attached, quotes attached)
``accents``               the natural text with person mentions replaced by real accented
                          names (:data:`ACCENTED_NAMES`), diacritics put on other mentions and
                          on a fifth of the other words (:data:`DIACRITICS`, first mappable
                          letter), and emoji, typographic quotes or a no-break space next to
                          a third of the entities
``case-lower``            the text in lower case
``case-upper``            the text in capitals
``case-title``            every word capitalized
``label-words``           label words from the training list
                          (:func:`instructner.method.label_words.caller_word`); types sharing a word
                          merge into it
``label-words-unseen``    label words from the evaluation-only list (never trained on)
``options-shuffled``      the corpus's options in a random order
``options-distractors``   the options plus 5 labels of other corpora, shuffled
``options-single``        one request per label, listing only that label; answers unioned
``options-all``           every corpus's labels in one request (the corpus's words win ties)
========================  ==================================================================
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from instructner.method.label_words import caller_word, eval_words
from instructner.method.labels import CORPORA, get_verbalizer
from instructner.method.types import Sentence
from instructner.research import augment
from instructner.research.example_labels import distractor_pool

VARIANTS: tuple[str, ...] = (
    "plain",
    "natural",
    "accents",
    "case-lower",
    "case-upper",
    "case-title",
    "label-words",
    "label-words-unseen",
    "options-shuffled",
    "options-distractors",
    "options-single",
    "options-all",
)

# Real names with diacritics (footballers, politicians, writers, scientists), first and last.
ACCENTED_NAMES: tuple[str, ...] = (
    "Jürgen Klopp", "François Hollande", "José Mourinho", "Zlatan Ibrahimović",
    "Łukasz Piszczek", "Søren Kierkegaard", "Gabriel García Márquez", "Antonín Dvořák",
    "Björn Borg", "Mesut Özil", "Luís Figo", "Renée Zellweger", "Penélope Cruz",
    "Nicolás Maduro", "Recep Tayyip Erdoğan", "Sebastián Piñera", "Dóra Szabó",
    "Émile Zola", "Ángel Di María", "Thomas Müller", "Gérard Depardieu", "Miloš Zeman",
    "Lech Wałęsa", "Bjørn Dæhlie", "João Félix", "Zoë Kravitz", "Beyoncé Knowles",
    "Andrés Iniesta", "Ýmir Þórsson", "Jiří Menzel", "Göran Persson", "Ana Ivanović",
    "Frédéric Chopin", "Nikola Đurić", "Éric Cantona", "Tomáš Berdych", "Agnès Varda",
    "Mónica Seles", "Kimi Räikkönen", "Sinéad O'Connor",
)  # fmt: skip
# The letter each plain letter becomes when a word takes a diacritic (first mappable letter).
DIACRITICS: dict[str, str] = {
    "a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü", "n": "ñ", "c": "ç", "s": "š", "z": "ž",
    "A": "Á", "E": "É", "I": "Í", "O": "Ö", "U": "Ü", "N": "Ñ", "C": "Ç", "S": "Š", "Z": "Ž",
}  # fmt: skip
_PERSON_TAGS = frozenset({"PER", "ACTOR", "DIRECTOR"})
_DECORATIONS = ("emoji", "quotes", "nbsp")
_EMOJI = ("🎉", "👍", "🔥", "😀", "🇫🇷", "⭐", "👍🏽", "❤️")


@dataclass(frozen=True)
class Case:
    """One sentence as a variant sends it.

    ``gold`` holds (start, end, label word) in ``text``; ``requests`` the option lists sent
    (one request each); the predictions of all requests are unioned before scoring.
    """

    text: str
    gold: tuple[tuple[int, int, str], ...]
    requests: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class _Rendered:
    """A sentence's text and its mentions' offsets in it, with their corpus tags."""

    text: str
    spans: tuple[tuple[int, int, str], ...]


def _render(tokens: Sequence[str], sentence: Sentence, text: str) -> _Rendered:
    """Locate ``tokens`` in order in ``text``; return the mention spans (or raise)."""
    offsets: list[tuple[int, int]] = []
    cursor = 0
    for token in tokens:
        at = text.find(token, cursor)
        if at < 0 or text[cursor:at].strip():
            raise ValueError(f"token {token!r} not found in order in {text!r}")
        offsets.append((at, at + len(token)))
        cursor = at + len(token)
    spans = tuple((offsets[s.start][0], offsets[s.end - 1][1], s.tag) for s in sentence.spans)
    return _Rendered(text, spans)


def plain(sentence: Sentence) -> _Rendered:
    """Return the corpus text (tokens joined by single spaces) and its mention spans."""
    spans = tuple((e.start, e.end, str(e.label)) for e in sentence.char_spans())
    return _Rendered(sentence.text, spans)


@cache
def _detokenizer() -> Callable[[list[str]], str]:
    from sacremoses import MosesDetokenizer

    detokenizer = MosesDetokenizer(lang="en")
    return lambda tokens: str(detokenizer.detokenize(tokens, unescape=False))


def natural(sentence: Sentence) -> _Rendered:
    """Return the sentence as people write it (Moses detokenizer), gold spans carried over.

    The rare sentence whose tokens the detokenizer rewrites (not only respaces) keeps its
    corpus text, so gold offsets are always exact.
    """
    text = _detokenizer()(list(sentence.tokens))
    try:
        return _render(sentence.tokens, sentence, text)
    except ValueError:
        return plain(sentence)


def _accent_word(word: str) -> str:
    for index, char in enumerate(word):
        if char in DIACRITICS:
            return word[:index] + DIACRITICS[char] + word[index + 1 :]
    return word


def accents(sentence: Sentence, rng: random.Random) -> _Rendered:
    """Return the natural text with accented names, diacritics and non-ASCII decorations."""
    tokens = list(sentence.tokens)
    spans = list(sentence.spans)
    in_mention = {i for s in spans for i in range(s.start, s.end)}
    for index in range(len(tokens)):
        if index not in in_mention and rng.random() < 0.2:
            tokens[index] = _accent_word(tokens[index])
    # person mentions become real accented names; other mentions take diacritics
    mentions: list[tuple[str, ...]] = []
    for span in spans:
        mention = tokens[span.start : span.end]
        if span.tag in _PERSON_TAGS:
            name = ACCENTED_NAMES[rng.randrange(len(ACCENTED_NAMES))]
            mention = name.lower().split() if " ".join(mention).islower() else name.split()
        else:
            mention = [_accent_word(word) for word in mention]
        mentions.append(tuple(mention))
    accented = Sentence(tuple(tokens), sentence.tags, sentence.spans, sentence.source)
    rendered = natural(augment.with_mentions(accented, mentions))
    return _decorate(rendered, rng)


def _decorate(rendered: _Rendered, rng: random.Random) -> _Rendered:
    """Put emoji, typographic quotes or a no-break space next to a third of the entities."""
    text = rendered.text
    out: list[str] = []
    length = 0
    spans: list[tuple[int, int, str]] = []
    cursor = 0
    for start, end, tag in rendered.spans:  # in text order, never overlapping
        mention, prefix, suffix = text[start:end], "", ""
        if rng.random() < 1 / 3:
            kind = _DECORATIONS[rng.randrange(len(_DECORATIONS))]
            if kind == "emoji":
                suffix = " " + _EMOJI[rng.randrange(len(_EMOJI))]
            elif kind == "quotes":
                prefix, suffix = "\u201c", "\u201d"
            elif " " in mention:
                mention = mention.replace(" ", "\u00a0", 1)
            else:
                suffix = " \u2728"
        for piece in (text[cursor:start], prefix):
            out.append(piece)
            length += len(piece)
        spans.append((length, length + len(mention), tag))
        out.extend((mention, suffix))
        length += len(mention) + len(suffix)
        cursor = end
    out.append(text[cursor:])
    return _Rendered("".join(out), tuple(spans))


def recase(sentence: Sentence, case: str) -> _Rendered:
    """Return the corpus text in ``lower``, ``upper`` or ``title`` case (lengths kept)."""
    return plain(augment.recase(sentence, case))


def _case(rendered: _Rendered, words: dict[str, str], requests: list[list[str]]) -> Case:
    gold = tuple((s, e, words[tag]) for s, e, tag in rendered.spans)
    return Case(rendered.text, gold, tuple(tuple(r) for r in requests))


def _all_labels() -> list[str]:
    labels: dict[str, None] = {}
    for corpus in CORPORA:
        labels.update(dict.fromkeys(get_verbalizer(corpus).words))
    return list(labels)


def make_case(sentence: Sentence, corpus: str, variant: str, index: int) -> Case:
    """Return ``sentence`` (the ``index``-th of ``corpus``'s split) as ``variant`` sends it.

    Raises:
        ValueError: an unknown variant or corpus.

    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    verbalizer = get_verbalizer(corpus)
    words = verbalizer.mapping()
    options = list(verbalizer.words)
    rng = random.Random(f"{variant}/{corpus}/{index}")
    rendered = plain(sentence)
    if variant == "natural":
        rendered = natural(sentence)
    elif variant == "accents":
        rendered = accents(sentence, rng)
    elif variant.startswith("case-"):
        rendered = recase(sentence, variant.removeprefix("case-"))
    elif variant in ("label-words", "label-words-unseen"):
        if variant == "label-words":
            words = {tag: caller_word(corpus, tag) or word for tag, word in words.items()}
        else:
            unseen = eval_words(corpus)
            words = {tag: unseen.get(tag, word) for tag, word in words.items()}
        options = list(dict.fromkeys(words.values()))
    elif variant == "options-shuffled":
        rng.shuffle(options)
    elif variant == "options-distractors":
        pool = [w for w in distractor_pool(corpus) if w not in options]
        options += rng.sample(pool, min(5, len(pool)))
        rng.shuffle(options)
    elif variant == "options-single":
        return _case(rendered, words, [[word] for word in options])
    elif variant == "options-all":
        options = _all_labels()
    return _case(rendered, words, [options])
