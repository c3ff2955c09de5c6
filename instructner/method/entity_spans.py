"""Typing by position: the entities to type given as (start, end) spans of the text.

The typing prompt names each entity by its words only, so in ``Paris Hilton visited Paris``
the answer ``Paris is a location`` says nothing about which ``Paris`` it means; the parser
would place it at the first free occurrence. When the caller gives spans, the answer's
mentions are pinned to them instead: the k-th mention of a word (in answer order) types the
k-th given span of that word (in text order), and a word's spans beyond its mentions take the
label of its last mention. A word the answer never names leaves its spans untyped; a mention
beyond the given spans of its word is dropped. Linear in the number of mentions and spans.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Hashable, Sequence

from instructner.method.spans import Span, on_word_boundaries


def pin_to_spans(
    mentions: Sequence[Hashable], given: Sequence[tuple[Hashable, Span]]
) -> list[list[Span]]:
    """Return, for each mention (its word key, in answer order), the given spans it types.

    ``given`` pairs each given span with the word key of its text; keys compare the way the
    parser compares entity words. The k-th mention of a word takes the k-th given span of
    that word; the last mention of a word also takes the word's spans the answer named no
    more (the prompt names a word once, so one mention often speaks for all its spans); a
    mention with no span left gets none.
    """
    spans_of: defaultdict[Hashable, deque[Span]] = defaultdict(deque)
    for key, span in sorted(given, key=lambda pair: pair[1]):
        spans_of[key].append(span)
    pinned: list[list[Span]] = []
    last: dict[Hashable, int] = {}
    for index, key in enumerate(mentions):
        queue = spans_of.get(key)
        pinned.append([queue.popleft()] if queue else [])
        last[key] = index
    for key, index in last.items():
        pinned[index].extend(spans_of.get(key, ()))
    return pinned


def span_problem(text: str, span: Span) -> str | None:
    """Describe why ``span`` cannot name an entity of ``text``, or None when it can.

    A span is a non-empty range of character offsets (Python string indices, as in results)
    inside the text, without whitespace at its ends, that does not cut through a word.
    """
    start, end = span
    if not 0 <= start < end <= len(text):
        return (
            f"{start}:{end} is not a span of TEXT, which has {len(text)} characters "
            "(0 <= start < end <= length)"
        )
    if text[start].isspace() or text[end - 1].isspace():
        return f"{start}:{end} ({text[start:end]!r}) starts or ends with whitespace"
    if not on_word_boundaries(text, start, end):
        return f"{start}:{end} ({text[start:end]!r}) cuts through a word of TEXT"
    return None


def overlap(spans: Sequence[Span]) -> tuple[int, int] | None:
    """Return the indices (earlier, later) of two spans that share a character, or None.

    ``spans`` in any order; sorted once, so linear after the sort.
    """
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    for before, after in zip(order, order[1:], strict=False):
        if spans[after][0] < spans[before][1]:
            return (min(before, after), max(before, after))
    return None
