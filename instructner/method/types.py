"""Plain data types shared by every part of the core package."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class Entity:
    """A typed span of a text.

    ``start``/``end`` are end-exclusive character offsets (spaCy's ``start_char``/``end_char``),
    so ``text == sentence[start:end]`` always holds. ``label`` is a label *word* as it appears
    in the prompt options (``None`` for the extraction task, which has no types).
    """

    start: int
    end: int
    text: str
    label: str | None = None

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape used by the CLI and the server: text, label, start, end."""
        return {"text": self.text, "label": self.label, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class TokenSpan:
    """A typed mention over tokens: ``tokens[start:end]`` (end-exclusive), with the corpus tag."""

    start: int
    end: int
    tag: str


@dataclass(frozen=True)
class Sentence:
    """One annotated sentence: tokens, BIO tags and the mentions derived from them.

    The sentence text is the tokens joined by single spaces; ``char_spans`` are the mentions
    as character offsets into that text, labelled with the corpus *tag* (``PER``), not the word.
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    spans: tuple[TokenSpan, ...] = field(default=())
    source: str = ""  # "file:line" of the sentence's first token, for error messages

    @property
    def text(self) -> str:
        """The sentence as a string: tokens joined by single spaces."""
        return " ".join(self.tokens)

    def token_char_offsets(self) -> list[tuple[int, int]]:
        """Return each token's (start, end) character offsets in :attr:`text`."""
        offsets: list[tuple[int, int]] = []
        pos = 0
        for token in self.tokens:
            offsets.append((pos, pos + len(token)))
            pos += len(token) + 1
        return offsets

    def char_spans(self) -> list[Entity]:
        """Return the mentions as character-offset entities labelled with their tag."""
        offsets = self.token_char_offsets()
        text = self.text
        result = []
        for span in self.spans:
            start, end = offsets[span.start][0], offsets[span.end - 1][1]
            result.append(Entity(start=start, end=end, text=text[start:end], label=span.tag))
        return result
