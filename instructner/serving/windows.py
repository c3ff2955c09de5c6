"""Split a document into windows that each fit one engine call, keeping character offsets.

The model was trained on single sentences, so a document is read one sentence per window:
sentences end at ``.``, ``!`` or ``?`` (plus closing quotes or brackets) before whitespace and
an upper-case letter, digit or opening quote, and at every line break. Common abbreviations and
initials (``Mr.``, ``U.S.``, ``J.``) do not end a sentence. A sentence whose prompt is longer
than the engine's input limit is cut between words into the fewest windows that fit. For the
typing task no window boundary may cut through a given entity (each occurrence of its word, or
the given span when the caller pinned it to one). Nothing is ever dropped: a
piece of text that cannot fit (a single enormous word, or labels that fill the prompt on their
own) is a request error.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from instructner.method.spans import occurrences
from instructner.serving.errors import RequestError

if TYPE_CHECKING:
    from instructner.serving.requests import ExtractionRequest

# prompt tokens of a window: (window text, entities to type in it) -> count incl. end token
Measure = Callable[[str, tuple[str, ...]], int]

# Linear on any input: a match may only begin where a run of end marks begins (lookbehind),
# and possessive quantifiers never give back what they consumed.
_SENTENCE_END = re.compile(r"(?<![.!?])[.!?]++[\"'”’)\]]*+(?=\s++[\"'“‘(\[]?[A-Z0-9])")
_LINE_BREAK = re.compile(r"\n")
_WORD = re.compile(r"\S+")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft no vs etc inc ltd co corp gen col lt sgt rep sen gov "
    "jan feb mar apr jun jul aug sep sept oct nov dec".split()
)


@dataclass(frozen=True)
class Window:
    """A part of the request text read by one engine call: ``text == document[start:end]``."""

    start: int
    end: int
    text: str
    entities: tuple[str, ...] = ()  # typing task: the given entities that occur in this window
    # typing by position: the pinned spans inside this window (offsets into ``text``), one
    # per entry of ``entities`` (a word may then repeat)
    spans: tuple[tuple[int, int], ...] = ()


def entity_occurrences(text: str, entity: str) -> list[tuple[int, int]]:
    """Return the word-bounded occurrences of ``entity`` (``spans.occurrences``)."""
    return occurrences(text, entity)


def _is_abbreviation(text: str, punct_start: int) -> bool:
    """Whether the period at ``punct_start`` belongs to an abbreviation or an initial."""
    if text[punct_start] != ".":
        return False
    word_start = punct_start
    while word_start > 0 and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:punct_start]
    if word.lower() in _ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha() and word.isupper():
        return True  # an initial: "J. Smith"
    return bool(re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", word))  # "U.S" of "U.S."


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) of each sentence of ``text``, without surrounding whitespace."""
    cuts = {m.end() for m in _SENTENCE_END.finditer(text) if not _is_abbreviation(text, m.start())}
    cuts |= {m.start() for m in _LINE_BREAK.finditer(text)}
    spans = []
    start = 0
    for cut in sorted(cuts) + [len(text)]:
        s, e = _strip(text, start, cut)
        if s < e:
            spans.append((s, e))
        start = cut
    return spans


def _merge_across(
    spans: list[tuple[int, int]], protected: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Merge neighbouring spans whose boundary falls inside a protected (entity) span.

    ``spans`` are in text order and ``protected`` is sorted by start. One sweep: the spans
    that start before a boundary's right side are consumed in order, keeping the furthest
    end among them, so the cost is linear in ``len(spans) + len(protected)``.
    """
    merged: list[tuple[int, int]] = []
    reach = -1  # furthest end of the protected spans starting before the current span
    next_protected = 0
    for start, end in spans:
        while next_protected < len(protected) and protected[next_protected][0] < start:
            reach = max(reach, protected[next_protected][1])
            next_protected += 1
        if merged and reach > merged[-1][1]:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


class _Planner:
    def __init__(
        self,
        request: ExtractionRequest,
        measure: Measure,
        max_tokens: int,
        max_windows: int | None = None,
    ) -> None:
        self.text = request.text
        self.max_windows = max_windows
        self.task = request.task
        self.measure = measure
        self.max_tokens = max_tokens
        # pinned spans never overlap (validated), so sorted by start they are sorted by end
        self.pinned = (
            sorted(zip(request.spans, request.entities, strict=True)) if request.spans else []
        )
        self.pin_starts = [span[0] for span, _ in self.pinned]
        words = () if self.pinned else request.entities
        self.occurrences = {e: entity_occurrences(self.text, e) for e in words}
        # an entity's occurrences share one length, so sorted starts also sort their ends
        self.starts = {e: [s for s, _ in spans] for e, spans in self.occurrences.items()}
        self.protected = sorted(span for spans in self.occurrences.values() for span in spans)
        self.protected += [span for span, _ in self.pinned]

    def pinned_in(self, start: int, end: int) -> list[tuple[tuple[int, int], str]]:
        """Return the pinned (span, entity) pairs inside [start, end), in text order."""
        found = []
        for index in range(bisect.bisect_left(self.pin_starts, start), len(self.pinned)):
            span, entity = self.pinned[index]
            if span[1] > end:
                break
            found.append((span, entity))
        return found

    def entities_in(self, start: int, end: int) -> tuple[str, ...]:
        """Return the entities with an occurrence inside [start, end) (log time per entity)."""
        if self.pinned:
            return tuple(dict.fromkeys(entity for _, entity in self.pinned_in(start, end)))
        found = []
        for entity, spans in self.occurrences.items():
            first = bisect.bisect_left(self.starts[entity], start)
            if first < len(spans) and spans[first][1] <= end:
                found.append(entity)
        return tuple(found)

    def tokens(self, start: int, end: int) -> int:
        return self.measure(self.text[start:end], self.entities_in(start, end))

    def window(self, start: int, end: int) -> Window:
        if not self.pinned:
            return Window(start, end, self.text[start:end], self.entities_in(start, end))
        pinned = self.pinned_in(start, end)
        return Window(
            start,
            end,
            self.text[start:end],
            tuple(entity for _, entity in pinned),
            tuple((s - start, e - start) for (s, e), _ in pinned),
        )

    def plan(self) -> list[Window]:
        spans = _merge_across(sentence_spans(self.text), self.protected)
        windows: list[Window] = []
        for start, end in spans:
            if self.task == "type" and not self.entities_in(start, end):
                continue  # nothing to type here: no engine call
            if self.tokens(start, end) <= self.max_tokens:
                windows.append(self.window(start, end))
            else:
                windows.extend(self.split(start, end))
            self.check_count(len(windows), end)
        if self.task == "type":  # word windows of a long sentence may hold no entity
            windows = [w for w in windows if w.entities]
        return windows

    def cut_points(self, start: int, end: int) -> list[tuple[int, int]]:
        """Return the word groups of a span: units a window may start or end with."""
        words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(self.text[start:end])]
        return _merge_across(words, self.protected)

    def split(self, start: int, end: int) -> list[Window]:
        units = self.cut_points(start, end)
        windows = []
        first = 0
        while first < len(units):
            # the largest last unit that still fits: token counts grow with every unit
            if self.tokens(units[first][0], units[first][1]) > self.max_tokens:
                self.fail(*units[first])
            # gallop, then bisect: every probe measures at most twice the window it finds, so
            # planning a long sentence costs O(length * log(window)) instead of O(length^2)
            lo, step = first, 1
            while lo + step < len(units) and (
                self.tokens(units[first][0], units[lo + step][1]) <= self.max_tokens
            ):
                lo, step = lo + step, step * 2
            hi = min(lo + step, len(units)) - 1
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if self.tokens(units[first][0], units[mid][1]) <= self.max_tokens:
                    lo = mid
                else:
                    hi = mid - 1
            windows.append(self.window(units[first][0], units[lo][1]))
            first = lo + 1
        return windows

    def check_count(self, count: int, end: int) -> None:
        """Refuse the request as soon as its windows pass ``max_windows`` (before any runs)."""
        if self.max_windows is not None and count > self.max_windows:
            raise RequestError(
                "TEXT",
                f"splits into more than {self.max_windows} windows (engine calls) by character "
                f"{end} of {len(self.text)}, over the limit of {self.max_windows} per request; "
                "send the document in several requests",
            )

    def fail(self, start: int, end: int) -> NoReturn:
        tokens = self.tokens(start, end)
        overhead = self.measure(".", self.entities_in(start, end))
        if self.task != "extract" and overhead > self.max_tokens // 2:
            inputs = "LABELS and ENTITIES" if self.task == "type" else "LABELS"
            raise RequestError(
                inputs.split()[0],
                f"the prompt's instruction and options alone take {overhead} tokens of the "
                f"engine's limit of {self.max_tokens}, so the text at characters {start}-{end} "
                f"does not fit ({tokens} tokens); send fewer or shorter {inputs.lower()}",
            )
        raise RequestError(
            "TEXT",
            f"characters {start}-{end} ({self.text[start : min(end, start + 30)]!r}…) form one "
            f"word of {tokens} prompt tokens with the instruction, over the engine's limit of "
            f"{self.max_tokens} tokens per window; break it up with spaces",
        )


def plan_windows(
    request: ExtractionRequest,
    measure: Measure,
    max_tokens: int,
    max_windows: int | None = None,
) -> list[Window]:
    """Return the windows of ``request.text``, in text order, each within ``max_tokens``.

    ``measure(window_text, window_entities)`` counts the prompt tokens of a window.

    Raises:
        RequestError: some part of the text cannot fit into one window, or the text needs
            more than ``max_windows`` windows.

    """
    return _Planner(request, measure, max_tokens, max_windows).plan()
