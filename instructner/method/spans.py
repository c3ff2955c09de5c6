"""Word-bounded occurrences of a literal text: the one rule shared by validation and parsing.

Request validation (an ENTITIES word must occur in TEXT), window planning (no window cuts
through a given entity) and the answer parser (an entity the model names must occur in the
sentence) must agree on what "occurs" means, so the rule lives here once: a literal match
(never a regex of user text) that neither starts nor ends inside a word. A word character is
a letter, a digit or ``_``; text that starts or ends with punctuation has no boundary to break
(``C++`` and ``(1999)`` match themselves).
"""

from __future__ import annotations

Span = tuple[int, int]  # end-exclusive character range


def is_word_char(ch: str) -> bool:
    """Return whether ``ch`` is part of a word (letter, digit or underscore)."""
    return ch.isalnum() or ch == "_"


def on_word_boundaries(text: str, start: int, end: int) -> bool:
    """Return whether ``text[start:end]`` neither starts nor ends inside a word."""
    if 0 < start < len(text) and is_word_char(text[start - 1]) and is_word_char(text[start]):
        return False
    return not (0 < end < len(text) and is_word_char(text[end - 1]) and is_word_char(text[end]))


def occurrences(text: str, part: str) -> list[Span]:
    """Return the (start, end) of each literal, word-bounded occurrence of ``part`` in ``text``.

    Occurrences may overlap (``"a a"`` in ``"a a a"``); they come in text order. An empty
    ``part`` occurs nowhere.
    """
    found = []
    pos = text.find(part) if part else -1
    while pos != -1:
        if on_word_boundaries(text, pos, pos + len(part)):
            found.append((pos, pos + len(part)))
        pos = text.find(part, pos + 1)
    return found
