"""Plain values returned by the client: entities and whole extraction results."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Entity", "Extraction", "ModelInfo", "TypedEntity", "Window"]


@dataclass(frozen=True, slots=True, eq=False)
class Entity:
    """A span of the text the caller sent.

    ``start``/``end`` are end-exclusive character offsets (spaCy's ``start_char``/``end_char``),
    so ``text == sent_text[start:end]``. ``label`` is the label word as the caller passed it;
    ``None`` for the extraction task, which finds spans without types. ``score`` in [0, 1] says
    how sure the model was (from the probabilities of the answer tokens that wrote the entity,
    combined by the formula the served model's calibration chose); ``None`` when the server
    returned no score (an older server). ``model_label``: the word the model answered with when
    the server asked it with a word it knows instead of ``label`` (a WordNet alias of a word
    it never saw: "firm" asked as "organization"); ``None`` when it was asked with ``label``.
    """

    text: str
    label: str | None
    start: int
    end: int
    score: float | None = None
    model_label: str | None = None

    def _key(self) -> tuple[str, str | None, int, int, float | None, str | None]:
        return (self.text, self.label, self.start, self.end, self.score, self.model_label)

    def __eq__(self, other: object) -> bool:
        """Compare the fields; an :class:`Entity` equals a :class:`TypedEntity` with the same."""
        if not isinstance(other, Entity):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        """Hash the fields (entities can be set members and dict keys)."""
        return hash(self._key())

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape used by the CLI: text, label, start, end, score.

        ``model_label`` is added when the model was asked with another word than ``label``.
        """
        shape: dict[str, object] = {
            "text": self.text,
            "label": self.label,
            "start": self.start,
            "end": self.end,
            "score": self.score,
        }
        if self.model_label is not None:
            shape["model_label"] = self.model_label
        return shape


@dataclass(frozen=True, slots=True, eq=False)
class TypedEntity(Entity):
    """An entity of the ``ner`` or ``type`` task: its ``label`` is always one of the labels sent.

    A subclass of :class:`Entity` (code written for ``Entity`` keeps working) whose ``label`` is
    a ``str``, so type checkers need no ``None`` check for these tasks.
    """

    label: str


@dataclass(frozen=True, slots=True)
class Window:
    """One engine call of a request: the part of the text the model read and what it answered.

    A short text is one window; a long document is split into several.
    """

    start: int
    end: int
    generated_text: str
    input_tokens: int
    output_tokens: int
    output_limit_reached: bool

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape used by the CLI."""
        return {
            "start": self.start,
            "end": self.end,
            "generated_text": self.generated_text,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "output_limit_reached": self.output_limit_reached,
        }


@dataclass(frozen=True, slots=True)
class Extraction:
    """Everything the server answered for one text: entities, raw answer and windows."""

    task: str
    text: str
    entities: tuple[Entity, ...]
    generated_text: str
    windows: tuple[Window, ...] = ()

    @property
    def output_limit_reached(self) -> bool:
        """True when some window's answer was cut at the output token limit.

        Entities after the cut are then missing from :attr:`entities`.
        """
        return any(window.output_limit_reached for window in self.windows)

    def to_dict(self) -> dict[str, object]:
        """Return the JSON shape used by the CLI."""
        return {
            "task": self.task,
            "text": self.text,
            "entities": [entity.to_dict() for entity in self.entities],
            "generated_text": self.generated_text,
            "windows": [window.to_dict() for window in self.windows],
        }


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the served model knows (:meth:`InstructNERClient.model_info`).

    ``label_words``: per training corpus, the label words the model answers with when asked
    with them. ``also_trained_words``: per corpus, corpus word -> other words training used for
    the same type (ask with these too). Words outside both are new to the model: it may still
    answer them, less reliably.
    """

    tasks: tuple[str, ...]
    corpora: tuple[str, ...]
    label_words: dict[str, tuple[str, ...]]
    also_trained_words: dict[str, dict[str, tuple[str, ...]]]

    def known_words(self) -> set[str]:
        """Return every label word the model was trained on, over all corpora."""
        words = {w for ws in self.label_words.values() for w in ws}
        for by_word in self.also_trained_words.values():
            words.update(w for ws in by_word.values() for w in ws)
        return words
