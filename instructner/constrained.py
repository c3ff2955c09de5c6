"""Constrained decoding of NER answers: only spans of the sentence and only the given labels.

The answer grammar ``None`` | ``E is a L(, E is a L)*.`` becomes a token automaton over the
task tokenizer's pieces. Words are segmented on their own (whitespace-splitting tokenizers,
:mod:`instructner.vocab`), so an entity that is a word-bounded span of the sentence has the
same pieces in the answer as in the sentence: the automaton lets the decoder write only

* ``None`` and the end token, or
* the pieces of a contiguous run of sentence words (any start, any length up to
  ``max_entity_words``), then `` is a``/`` is an``, then the pieces of one label, then ``,``
  (another entity follows) or ``.`` and the end token;

with a (span, label) pair never written more often than the span occurs in the sentence, so
answers cannot loop, invent text or use labels outside the options. Evaluation passes
:meth:`NerAnswerGrammar.allowed` to ``instructner.modeling.generate`` (transformers'
``prefix_allowed_tokens_fn``); CTranslate2 has no per-step hook in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ENTITY_WORDS = 12


@dataclass
class _Trie:
    children: dict[int, _Trie] = field(default_factory=dict)
    terminal: bool = False
    ends: str = ""  # label trie: "," or "." when this node completes "label," / "label."

    def add(self, ids: Sequence[int], ends: str = "") -> None:
        node = self
        for token in ids:
            node = node.children.setdefault(token, _Trie())
        node.terminal = True
        node.ends = ends

    def walk(self, ids: Sequence[int]) -> _Trie | None:
        node: _Trie | None = self
        for token in ids:
            node = node.children.get(token) if node else None
        return node


class NerAnswerGrammar:
    """Allowed next tokens of an NER answer for one sentence and label list."""

    def __init__(
        self,
        tokenizer: Any,
        sentence: str,
        labels: Sequence[str],
        max_entity_words: int = MAX_ENTITY_WORDS,
    ) -> None:
        def pieces(text: str) -> list[int]:
            return list(tokenizer(text, add_special_tokens=False)["input_ids"])

        words = sentence.split()
        self.words = [pieces(word) for word in words]
        self.eos = int(tokenizer.eos_token_id)
        self.none = pieces("None")
        marker = pieces("is")
        if len(marker) != 1:
            raise ValueError(f"the tokenizer writes 'is' as {len(marker)} pieces; expected one")
        self.is_ = marker[0]
        self.articles = {t for word in ("a", "an") for t in pieces(word)[:1]}
        # "label," and "label." as the tokenizer segments them (a piece may hold the mark)
        self.labels = _Trie()
        for label in labels:
            for mark in (",", "."):
                self.labels.add(pieces(label.strip() + mark), mark)
        self.spans = _Trie()  # every word-bounded span, as pieces
        self.span_count: dict[tuple[int, ...], int] = {}
        for start in range(len(words)):
            ids: list[int] = []
            for end in range(start, min(len(words), start + max_entity_words)):
                ids = ids + self.words[end]
                self.spans.add(ids)
                key = tuple(ids)
                self.span_count[key] = self.span_count.get(key, 0) + 1

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Return the tokens that may follow ``prefix`` (generated ids, no start token)."""
        prefix = list(prefix)
        if not prefix:
            return sorted((set(self.spans.children) - {self.is_}) | {self.none[0]})
        if prefix[: len(self.none)] == self.none[: len(prefix)]:
            if len(prefix) < len(self.none):
                return [self.none[len(prefix)]]
            if prefix == self.none:
                return [self.eos]
        return self._after_entities(prefix)

    def _after_entities(self, prefix: list[int]) -> list[int]:
        """Walk ``E is a L,`` units; return what may follow the last, partial one."""
        used: dict[tuple[int, ...], int] = {}
        position = 0
        while True:
            # entity: the longest run consumed up to "is" (an entity may not contain "is")
            end = position
            while end < len(prefix) and prefix[end] != self.is_:
                end += 1
            entity = tuple(prefix[position:end])
            node = self.spans.walk(entity)
            if end == len(prefix):  # still inside the entity
                options = set(node.children) - {self.is_} if node else set()
                if node and node.terminal and self._free(entity, used):
                    options.add(self.is_)
                return sorted(options) or [self.eos]
            used[entity] = used.get(entity, 0) + 1
            position = end + 1
            if position == len(prefix):
                return sorted(self.articles)
            position += 1  # the article
            label = self.labels
            while position < len(prefix) and not label.terminal:
                label = label.children.get(prefix[position], _Trie())
                position += 1
            if not label.terminal:  # inside "label," or "label."
                return sorted(label.children) or [self.eos]
            if label.ends == ".":
                return [self.eos]
            if position == len(prefix):
                return sorted(set(self.spans.children) - {self.is_}) or [self.eos]

    def _free(self, entity: tuple[int, ...], used: dict[tuple[int, ...], int]) -> bool:
        return used.get(entity, 0) < self.span_count.get(entity, 0)
