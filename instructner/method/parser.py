"""Turn the model's answer sentence back into typed spans of the input sentence.

The answer is the wire format between model and server, so this is where served quality is
won or lost. Rules (docs/design.md):

* Literal matching: entity text is searched with ``str.find`` (a whitespace-run-insensitive
  fallback escapes every character), never compiled into a regex, so ``C++`` or ``(1999)``
  match themselves.
* Word boundaries: a match may not start or end inside a word (``Paris`` is not found in
  ``Parisian``); entity text that starts or ends with punctuation has no boundary to break.
  The rule is :mod:`instructner.method.spans`, shared with request validation and windows.
* Sentence order: the k-th mention of a repeated entity takes the first unused occurrence
  after the previous entity, falling back to the first unused occurrence anywhere; an answer
  that names an entity more often than the sentence holds it loses the extras.
* Segmentation: ``" is a "`` and ``", "`` may occur inside entity text, so an NER answer is
  split by dynamic programming over the ``is a/an <label>`` markers: the split with the most
  valid entities (found in the sentence, label in the options) wins, then the one covering
  most characters. Extraction answers (``e1, e2.``) are split at commas, preferring the split
  whose found entities cover most characters (a comma inside an entity is kept when the
  merged text occurs in the sentence as written).
* Linear time: an entity may hold at most :data:`MAX_SEPARATORS_IN_ENTITY` commas (extraction)
  or ``is a`` markers (NER), so each split point considers a bounded number of next ones and
  no answer, however repetitive, costs more than linear work (property-tested).
* Labels map back case-insensitively to the option as the caller wrote it; labels outside the
  options and entities not in the sentence are dropped. No input string makes it raise.
* Provenance: :func:`locate_answer` also says where in the answer each entity's mention and
  label were written, so the tokens that produced an entity can be found (confidence scores).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from instructner.method.prompts import NONE_ANSWER
from instructner.method.spans import Span, on_word_boundaries
from instructner.method.types import Entity


@dataclass(frozen=True)
class LocatedEntity:
    """An entity of the sentence and the answer ranges it was read from.

    ``mention`` is where the entity text was written in the answer, ``label`` where its label
    word was (None for extraction answers, which have no labels).
    """

    entity: Entity
    mention: Span
    label: Span | None = None


# The project's own fixed pattern; user text is never compiled into a regex.
# Every "is a"/"is an" marker, overlapping ones included ("X is a, is a is an L": the entity
# "is a" sits between two markers): a zero-width match at the start of each whitespace run.
_MARKER = re.compile(r"(?<!\s)(?=(\s++is\s++an?\s++))")
# Commas (extraction answers) or "is a" markers (NER answers) one entity text may contain:
# "Crosby, Stills, Nash & Young" holds two. Bounds the work per split point.
MAX_SEPARATORS_IN_ENTITY = 8


class _SentenceIndex:
    """Occurrences of candidate entity texts in one sentence, cached per text."""

    def __init__(self, sentence: str) -> None:
        self.sentence = sentence
        self._cache: dict[str, list[tuple[int, int]]] = {}
        self._squeezed: str | None = None  # the sentence with whitespace runs as one space

    def occurrences(self, text: str) -> list[tuple[int, int]]:
        """Return the (start, end) of every word-bounded occurrence of ``text``, in order."""
        found = self._cache.get(text)
        if found is None:
            found = self._literal(text) or self._whitespace_flexible(text)
            self._cache[text] = found
        return found

    def _literal(self, text: str) -> list[tuple[int, int]]:
        hits = []
        pos = self.sentence.find(text)
        while pos != -1:
            if on_word_boundaries(self.sentence, pos, pos + len(text)):
                hits.append((pos, pos + len(text)))
            pos = self.sentence.find(text, pos + 1)
        return hits

    def _whitespace_flexible(self, text: str) -> list[tuple[int, int]]:
        # Tokenizers may change runs of whitespace; every other character must match as is.
        parts = text.split()
        if len(parts) < 2:
            return []
        if self._squeezed is None:
            self._squeezed = " ".join(self.sentence.split())
        if " ".join(parts) not in self._squeezed:
            return []  # cheap test first: most candidate texts of a long answer occur nowhere
        pattern = re.compile(r"\s+".join(re.escape(part) for part in parts))
        return [
            (m.start(), m.end())
            for m in pattern.finditer(self.sentence)
            if on_word_boundaries(self.sentence, m.start(), m.end())
        ]


def _is_none_answer(answer: str) -> bool:
    return answer.strip().rstrip(".").strip().casefold() == NONE_ANSWER.casefold()


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _locate(
    index: _SentenceIndex,
    texts: Iterable[tuple[str, str | None, Span, Span | None]],
) -> list[LocatedEntity]:
    """Assign each (text, label, ...) to an unused occurrence, in sentence order with fallback.

    Each item also carries the answer ranges of its mention and label, kept with the entity.

    Used spans never overlap, so they are kept sorted and an overlap test is a bisection; a
    text whose occurrences are all taken is skipped without a scan.
    """
    used_starts: list[int] = []
    used_ends: list[int] = []
    taken: dict[str, int] = {}
    cursor = 0
    entities = []

    def free(span: tuple[int, int]) -> bool:
        before = bisect.bisect_left(used_starts, span[1]) - 1  # last used span starting before
        return before < 0 or used_ends[before] <= span[0]

    for text, label, mention, label_span in texts:
        occurrences = index.occurrences(text)
        if taken.get(text, 0) >= len(occurrences):
            continue  # hallucinated, or named more often than the sentence holds it
        first = bisect.bisect_left(occurrences, (cursor, -1))
        chosen = next((o for o in occurrences[first:] if free(o)), None)
        if chosen is None:
            chosen = next((o for o in occurrences[:first] if free(o)), None)
        if chosen is None:
            continue
        taken[text] = taken.get(text, 0) + 1
        at = bisect.bisect_left(used_starts, chosen[0])
        used_starts.insert(at, chosen[0])
        used_ends.insert(at, chosen[1])
        cursor = chosen[1]
        start, end = chosen
        entity = Entity(start=start, end=end, text=index.sentence[start:end], label=label)
        entities.append(LocatedEntity(entity, mention, label_span))
    return sorted(entities, key=lambda located: located.entity)


@dataclass(frozen=True)
class _Marker:
    """One ``<entity> is a <label>`` boundary in an NER answer."""

    entity_end: int  # where the entity text before the marker ends
    label: str | None  # the matching option as given by the caller; None if not an option
    next_start: int  # where the next entity text begins
    label_span: Span | None = None  # where the option word was written (None: not an option)


def _terminator(answer: str, pos: int) -> int | None:
    """Return where the next entity starts if a label may end at ``pos``, else None."""
    while pos < len(answer) and answer[pos].isspace():
        pos += 1
    if pos == len(answer):
        return len(answer)
    if answer[pos] in ",.":
        nxt = pos + 1
        while nxt < len(answer) and answer[nxt].isspace():
            nxt += 1
        return nxt
    return None


def _markers(answer: str, labels: Sequence[str]) -> list[_Marker]:
    # Longest option first so "restaurant name" wins over "restaurant".
    options = sorted(
        ((label.strip(), label) for label in labels if label.strip()),
        key=lambda pair: -len(pair[0]),
    )
    markers = []
    for match in _MARKER.finditer(answer):
        start = match.end(1)
        marker = None
        for word, original in options:
            end = start + len(word)
            if answer[start:end].casefold() == word.casefold():
                nxt = _terminator(answer, end)
                if nxt is not None:
                    marker = _Marker(match.start(1), original, nxt, (start, end))
                    break
        if marker is None:  # a label outside the options: it runs to the next comma
            comma = answer.find(",", start)
            marker = _Marker(match.start(1), None, len(answer) if comma == -1 else comma + 1)
        markers.append(marker)
    return markers


def parse_ner_answer(answer: str, sentence: str, labels: Sequence[str]) -> list[Entity]:
    """Parse ``"X is a person, Y is a location."`` into entities of ``sentence``.

    Returns entities sorted by start whose label is one of ``labels`` (as the caller wrote
    it) and whose text occurs in the sentence; ``sentence[e.start:e.end] == e.text``.
    """
    return [located.entity for located in _locate_ner(answer, sentence, labels)]


def _locate_ner(answer: str, sentence: str, labels: Sequence[str]) -> list[LocatedEntity]:
    if not isinstance(answer, str) or not isinstance(sentence, str) or _is_none_answer(answer):
        return []
    index = _SentenceIndex(sentence)
    return _locate(index, _ner_mentions(answer, index, labels))


Mention = tuple[str, str | None, Span, Span | None]  # text, label, its answer ranges


def _ner_mentions(answer: str, index: _SentenceIndex, labels: Sequence[str]) -> list[Mention]:
    """Return the answer's valid (entity text, label) mentions in answer order, not placed."""
    sentence = index.sentence
    markers = _markers(answer, labels)
    budget = len("".join(sentence.split()))  # an entity has at most this many visible chars

    # best[start] = (valid count, covered chars, segments), chosen markers; filled right to left
    Best = tuple[tuple[int, int, int], list[tuple[int, int, _Marker, bool]]]
    best: dict[int, Best] = {}
    states = sorted({0} | {m.next_start for m in markers}, reverse=True)
    ends = [m.entity_end for m in markers]  # ascending: markers come in answer order
    for state in states:
        result: Best = ((0, 0, 0), [])
        first = bisect.bisect_right(ends, state)
        for marker in markers[first : first + MAX_SEPARATORS_IN_ENTITY + 1]:
            ent_start, ent_end = _strip_span(answer, state, marker.entity_end)
            if ent_start == ent_end:
                continue
            text = answer[ent_start:ent_end]
            if len("".join(text.split())) > budget:
                break  # longer entities only get longer
            valid = marker.label is not None and bool(index.occurrences(text))
            if marker.next_start <= state:
                continue
            (sub_valid, sub_chars, sub_segments), sub_chain = best.get(
                marker.next_start, ((0, 0, 0), [])
            )
            score = (
                sub_valid + int(valid),
                sub_chars + (len(text) if valid else 0),
                sub_segments + 1,
            )
            if score > result[0]:
                result = (score, [(ent_start, ent_end, marker, valid), *sub_chain])
        best[state] = result
    chain = best[0][1] if markers else []
    return [
        (answer[s:e], m.label, (s, e), m.label_span)
        for s, e, m, valid in chain
        if valid and m.label
    ]


def parse_extract_answer(answer: str, sentence: str) -> list[Entity]:
    """Parse ``"X, Y."`` into untyped entities (label ``None``) of ``sentence``."""
    return [located.entity for located in _locate_extract(answer, sentence)]


def _locate_extract(answer: str, sentence: str) -> list[LocatedEntity]:
    if not isinstance(answer, str) or not isinstance(sentence, str) or _is_none_answer(answer):
        return []
    body = answer.strip()
    shift = len(answer) - len(answer.lstrip())  # body[i] is answer[i + shift]
    index = _SentenceIndex(sentence)
    commas = [i for i, ch in enumerate(body) if ch == ","]

    def found(start: int, end: int) -> tuple[int, int] | None:
        s, e = _strip_span(body, start, end)
        return (s, e) if s < e and index.occurrences(body[s:e]) else None

    def last_segment(start: int) -> tuple[int, int] | None:
        # Convention: the answer ends with "."; keep the dot only if that is what matches.
        if body.endswith(".") and (span := found(start, len(body) - 1)):
            return span
        return found(start, len(body))

    # best[start] = (covered chars, segments), chosen spans; start is 0 or just after a comma
    Best = tuple[tuple[int, int], list[tuple[int, int]]]
    best: dict[int, Best] = {}
    for state in sorted({0} | {c + 1 for c in commas}, reverse=True):
        tail = last_segment(state)
        result: Best = ((tail[1] - tail[0], 1), [tail]) if tail else ((0, 0), [])
        first = bisect.bisect_left(commas, state)
        for comma in commas[first : first + MAX_SEPARATORS_IN_ENTITY + 1]:
            span = found(state, comma)
            (sub_chars, sub_segments), sub_chain = best[comma + 1]
            gain = (span[1] - span[0]) if span else 0
            score = (sub_chars + gain, sub_segments + 1)
            if score > result[0]:
                result = (score, ([span] if span else []) + sub_chain)
        best[state] = result
    return _locate(index, ((body[s:e], None, (s + shift, e + shift), None) for s, e in best[0][1]))


def parse_type_answer(
    answer: str, sentence: str, entities: Sequence[str], labels: Sequence[str]
) -> list[Entity]:
    """Parse a typing answer; keeps only the entity words the prompt asked to type."""
    return [located.entity for located in _locate_type(answer, sentence, entities, labels)]


def _locate_type(
    answer: str, sentence: str, entities: Sequence[str], labels: Sequence[str]
) -> list[LocatedEntity]:
    wanted = {" ".join(e.split()) for e in entities}
    return [
        located
        for located in _locate_ner(answer, sentence, labels)
        if " ".join(located.entity.text.split()) in wanted
    ]


def type_mentions(
    answer: str, sentence: str, entities: Sequence[str], labels: Sequence[str]
) -> list[Mention]:
    """Return a typing answer's mentions of the given words in answer order, not placed.

    For typing by position (:mod:`instructner.method.entity_spans`): the caller's spans say
    where each word is, so mentions are not assigned to occurrences here, and two mentions
    whose first occurrences overlap (``Paris`` and ``Paris Hilton``) are both kept.
    """
    if not isinstance(answer, str) or not isinstance(sentence, str) or _is_none_answer(answer):
        return []
    wanted = {" ".join(e.split()) for e in entities}
    mentions = _ner_mentions(answer, _SentenceIndex(sentence), labels)
    return [m for m in mentions if " ".join(m[0].split()) in wanted]


def parse_answer(
    task: str,
    answer: str,
    sentence: str,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
) -> list[Entity]:
    """Parse the answer of ``task`` (``ner``, ``extract`` or ``type``)."""
    return [located.entity for located in locate_answer(task, answer, sentence, labels, entities)]


def locate_answer(
    task: str,
    answer: str,
    sentence: str,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
) -> list[LocatedEntity]:
    """Parse like :func:`parse_answer`, keeping where in the answer each entity was written."""
    if task == "ner":
        return _locate_ner(answer, sentence, labels)
    if task == "extract":
        return _locate_extract(answer, sentence)
    if task == "type":
        return _locate_type(answer, sentence, entities, labels)
    raise ValueError(f"unknown task {task!r}: expected one of ner, extract, type")
