"""The text the model reads: the caller's text folded to the training data's form, with offsets.

Every training corpus is pre-tokenized ASCII: a space before each punctuation mark, ``'s`` and
``n't`` split off, no diacritics, no emoji. :func:`model_view` rewrites any text into that
form and remembers, for each character it writes, the range of the original it came from, so
an entity found in the view maps back to exact offsets of the caller's text
(:meth:`TextView.to_original`): the model reads ``Jurgen Klopp visited Paris .`` and the caller
gets ``Jürgen Klopp`` and ``Paris`` (no period) at their own positions.

The rewrite, one pass over the text (linear time):

* Latin letters lose their diacritics (NFKD without combining marks) or take a fixed ASCII
  spelling (``ß`` ss, ``ł`` l, ``ø`` o, ``æ`` ae, ``œ`` oe, ``đ``/``ð`` d, ``þ`` th, ``ı`` i);
  letters of other scripts (CJK, Cyrillic, Greek, ...) are kept as they are;
* typographic quotes, dashes and the ellipsis become ASCII (``“”„`` ", ``‘’‚`` ', ``–—`` -);
* every kind of space (no-break, thin, ideographic) becomes one plain space; runs collapse;
* emoji, pictographs, other symbols, variation selectors and zero-width joiners are word
  separators (a space);
* punctuation that ends a word (``, . ; : ! ? % ) ] } "``) is split from it, except a period
  of an abbreviation or initial (``U.S.``, ``Inc.``, ``J.``) or inside a number (``3.5``,
  ``1,000``); ``( [ {`` and an opening quote are split from the word they open; ``'s``,
  ``'re``, ``'ll``, ``'ve``, ``'m``, ``'d`` and ``n't`` are split as the corpora split them.

Text that is already in the corpora's form maps to itself.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

_enabled = True  # the served default; raw_text() turns it off to measure what it does

# Letters NFKD leaves whole: their usual ASCII spelling.
_LETTERS: dict[str, str] = {
    "ß": "ss", "ẞ": "SS", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE",
    "œ": "oe", "Œ": "OE", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
    "ı": "i", "ħ": "h", "Ħ": "H", "ŧ": "t", "Ŧ": "T", "ŋ": "ng", "Ŋ": "NG", "ĸ": "k",
    "ſ": "s",
}  # fmt: skip
_PUNCTUATION: dict[str, str] = {
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\u2026": "...", "\u00b4": "'", "`": "'",
}  # fmt: skip
_LOOSE = set(".,;:!?\"'")  # a split-off mark that never ends or starts an entity
_CLOSERS = set(',;:!?%)]}"')
_OPENERS = set("([{")
_CLITICS = ("'s", "'re", "'ll", "'ve", "'m", "'d", "'S", "'RE", "'LL", "'VE", "'M", "'D")
_WHOLE_CLITICS = frozenset({"'s", "'re", "'ll", "'ve", "'m", "'d", "n't", "'t"})
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr inc ltd co corp bros no vs etc jan feb mar apr jun jul aug "
    "sep sept oct nov dec mt ft gen col lt sgt capt gov sen rep rev dept univ assn est approx "
    "a.m p.m u.s u.k e.g i.e ala ariz ark calif colo conn fla ga ill ind kan ky md mass mich "
    "minn miss mo mont neb nev okla ore pa tenn tex va vt wash wis wyo".split()
)


def _fold_char(char: str) -> str:
    """Return the ASCII form of one character, ``" "`` for a separator, or the char itself."""
    if char.isascii():
        return " " if char.isspace() else char
    if char in _LETTERS:
        return _LETTERS[char]
    if char in _PUNCTUATION:
        return _PUNCTUATION[char]
    if char.isspace():
        return " "
    category = unicodedata.category(char)
    if category[0] == "L" or category == "Nd":
        base = "".join(
            c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
        )
        return base if base and base.isascii() else char
    if category in ("Mn", "Me"):
        return ""  # a combining mark written on its own: its letter is already folded
    if category in ("So", "Sk", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp", "Cc"):
        return " "  # emoji, pictographs, joiners, variation selectors: word separators
    return char


@dataclass(frozen=True)
class TextView:
    """A rewritten text and, per character of it, the original range it came from.

    ``starts[i]``/``ends[i]`` bound the original characters that produced ``text[i]``; an
    inserted space has ``starts[i] == ends[i]`` (a point between two original characters).
    """

    original: str
    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    @property
    def identity(self) -> bool:
        """Whether the view is the original text unchanged."""
        return self.text == self.original

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Return the original (start, end) of the view's ``text[start:end]`` (non-empty).

        Punctuation tokens that the view split off and that open or close the span
        (``Paris .``) are left out: an entity never ends in a sentence's period.
        """
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span {start}:{end} is not a non-empty span of the view")
        text = self.text
        while end - start > 2 and text[end - 1] in _LOOSE and text[end - 2] == " ":
            end -= 2
        while end - start > 2 and text[start] in _LOOSE and text[start + 1] == " ":
            start += 2
        return self.starts[start], self.ends[end - 1]


class _Writer:
    """Accumulates view characters with their original ranges; one space between words."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.starts: list[int] = []
        self.ends: list[int] = []

    def space(self, at: int) -> None:
        if self.chars and self.chars[-1] != " ":
            self.chars.append(" ")
            self.starts.append(at)
            self.ends.append(at)

    def write(self, text: str, start: int, end: int) -> None:
        for char in text:
            if char == " ":
                self.space(start)
            else:
                self.chars.append(char)
                self.starts.append(start)
                self.ends.append(end)

    def view(self, original: str) -> TextView:
        while self.chars and self.chars[-1] == " ":
            for column in (self.chars, self.starts, self.ends):
                column.pop()
        return TextView(original, "".join(self.chars), tuple(self.starts), tuple(self.ends))


def _fold(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Fold every character; return the folded pieces and their original ranges."""
    pieces: list[str] = []
    ranges: list[tuple[int, int]] = []
    for index, char in enumerate(text):
        folded = _fold_char(char)
        if folded:
            pieces.append(folded)
            ranges.append((index, index + 1))
        elif ranges and ranges[-1][1] == index:
            # a combining mark belongs to the character before it: "e" + U+0301 maps to both
            ranges[-1] = (ranges[-1][0], index + 1)
    return pieces, ranges


def _is_abbreviation(word: str) -> bool:
    """Whether ``word`` (without its final period) keeps the period: ``U.S``, ``Inc``, ``J``."""
    if len(word) > 24:
        return False  # bounded, so a word of many periods is split in linear time
    word = word.rsplit("-", 1)[-1]  # "then-U.S."
    if word.lower() in _ABBREVIATIONS:
        return True
    if len(word) == 1 and word.isalpha():
        return True  # an initial
    parts = word.split(".")
    return len(parts) > 1 and all(len(p) == 1 and p.isalpha() for p in parts)


def _split_word(word: str, first: bool = False) -> list[tuple[int, int]]:
    """Return the token ranges of one space-free ``word`` (ASCII punctuation split off).

    ``first``: the word opens the text or a line, where ``1.`` numbers a list item.

    Linear: opening brackets/quotes are peeled from the front and closing punctuation from
    the back, each by one pointer move.
    """
    if word.lower() in _WHOLE_CLITICS:
        return [(0, len(word))]  # already split off its word, as the corpora write it
    if first and 2 <= len(word) <= 4 and word[-1] == "." and word[:-1].isdigit():
        return [(0, len(word))]  # a list item's number
    start, end = 0, len(word)
    head: list[tuple[int, int]] = []
    while start < end - 1 and (word[start] in _OPENERS or word[start] in "\"'"):
        head.append((start, start + 1))
        start += 1
    tail: list[tuple[int, int]] = []
    while end - start > 1:
        char = word[end - 1]
        if char in _CLOSERS or (char == "'" and word[start] != "'"):
            tail.append((end - 1, end))
            end -= 1
        elif char == "." and not _is_abbreviation(word[start : end - 1]):
            dots = end - 1
            while dots > start and word[dots - 1] == ".":
                dots -= 1
            if dots == start:
                break  # the word is only periods
            tail.append((dots, end))
            end = dots
        else:
            break
    middle = _split_clitic(word, start, end)
    return head + middle + tail[::-1]


def _split_clitic(word: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split ``'s``-like endings and ``n't`` off ``word[start:end]`` as the corpora do."""
    body = word[start:end]
    lower = body.lower()
    if lower.endswith("n't") and len(body) > 3:
        return [(start, end - 3), (end - 3, end)]
    for clitic in _CLITICS:
        if body.endswith(clitic) and len(body) > len(clitic) and body[-len(clitic) - 1].isalnum():
            cut = end - len(clitic)
            return [(start, cut), (cut, end)]
    if body.endswith("s'") and len(body) > 2:
        return [(start, end - 1), (end - 1, end)]
    return [(start, end)]


@contextmanager
def raw_text() -> Iterator[None]:
    """Within the block the model reads the caller's text unchanged (for measurements only)."""
    global _enabled
    saved, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = saved


def identity_view(text: str) -> TextView:
    """Return the view that is ``text`` itself."""
    positions = tuple(range(len(text)))
    return TextView(text, text, positions, tuple(p + 1 for p in positions))


def model_view(text: str) -> TextView:
    """Return ``text`` as the model reads it, with the map back to ``text`` (module docstring)."""
    if not _enabled:
        return identity_view(text)
    pieces, ranges = _fold(text)
    writer = _Writer()
    word: list[str] = []  # folded characters of the current space-free word
    word_ranges: list[tuple[int, int]] = []  # their original ranges, one per character
    line_start = True  # the next word opens the text or a line

    def flush() -> None:
        nonlocal line_start
        folded = "".join(word)
        opens_line, line_start = line_start, False
        for token_start, token_end in _split_word(folded, first=opens_line):
            writer.space(word_ranges[token_start][0])
            for position in range(token_start, token_end):
                lo, hi = word_ranges[position]
                writer.write(folded[position], lo, hi)
        word.clear()
        word_ranges.clear()

    for piece, (lo, hi) in zip(pieces, ranges, strict=True):
        for char in piece:
            if char == " ":
                if word:
                    flush()
                writer.space(lo)
                line_start = line_start or text[lo] == "\n"
            else:
                word.append(char)
                word_ranges.append((lo, hi))
    if word:
        flush()
    return writer.view(text)


def view_entities(entities: Sequence[str]) -> list[str]:
    """Return each given entity text as the model reads it."""
    return [model_view(entity).text for entity in entities]


def fold_text(text: str) -> str:
    """Return ``text`` with diacritics and typographic characters folded, spacing kept.

    Used where offsets are not needed (training names drawn from name lists).
    """
    pieces, _ = _fold(text)
    return "".join(pieces)
