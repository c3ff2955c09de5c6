"""Constrained decoding of NER answers: only spans of the sentence and only the given labels.

The answer grammar ``None`` | ``E is a L(, E is a L)*.`` becomes a token automaton over the
task tokenizer's pieces. Words are segmented on their own (whitespace-splitting tokenizers,
:mod:`instructner.research.vocab`), so an entity that is a word-bounded span of the sentence has the
same pieces in the answer as in the sentence: the automaton lets the decoder write only

* ``None`` and the end token, or
* the pieces of a contiguous run of sentence words (any start, any length up to
  ``max_entity_words``), then `` is a``/`` is an``, then the pieces of one label, then ``,``
  (another entity follows) or ``.`` and the end token;

where each entity takes the occurrence of its words the parser would give it (the first
free one after the previous entity, else the first free one anywhere; spans never overlap).
An entity with no free occurrence (a repeat, or a span overlapping one already named) may
still be written, since forbidding it pushes the model onto a span it did not want (dev:
precision fell from 59.7 to 33.3% on CoNLL-2003), but it must be the last: its label ends
the answer, and the parser drops it. Answers therefore cannot loop, invent text or use labels
outside the options, and hold at most one entity more than the sentence has words. Evaluation
passes :meth:`NerAnswerGrammar.allowed` to ``instructner.modeling.generate`` (transformers'
``prefix_allowed_tokens_fn``); CTranslate2 has no per-step hook in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_ENTITY_WORDS = 12


Words = tuple[int, int]  # first and last word index of a span (inclusive)


@dataclass
class _Trie:
    children: dict[int, _Trie] = field(default_factory=dict)
    terminal: bool = False
    ends: str = ""  # label trie: "," or "." when this node completes "label," / "label."
    complete: list[Words] = field(default_factory=list)  # span trie: the spans ending here

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
        self.last_labels = _Trie()  # after an entity the parser will drop: "label." only
        for label in labels:
            for mark in (",", "."):
                self.labels.add(pieces(label.strip() + mark), mark)
            self.last_labels.add(pieces(label.strip() + "."), ".")
        self.spans = _Trie()  # every word-bounded span, as pieces, with where it occurs
        for start in range(len(words)):
            node = self.spans
            for end in range(start, min(len(words), start + max_entity_words)):
                for token in self.words[end]:
                    node = node.children.setdefault(token, _Trie())
                node.terminal = True
                node.complete.append((start, end))
        # what may start an entity: the first pieces of the spans (an entity may not start
        # with "is"); asked after every entity, so computed once
        self.first_tokens = sorted(set(self.spans.children) - {self.is_})

    def allowed(self, prefix: Sequence[int]) -> list[int]:
        """Return the tokens that may follow ``prefix`` (generated ids, no start token)."""
        prefix = list(prefix)
        if not prefix:
            return sorted({*self.first_tokens, self.none[0]})
        if prefix[: len(self.none)] == self.none[: len(prefix)]:
            if len(prefix) < len(self.none):
                return [self.none[len(prefix)]]
            if prefix == self.none:
                return [self.eos]
        return self._after_entities(prefix)

    def _after_entities(self, prefix: list[int]) -> list[int]:
        """Walk ``E is a L,`` units; return what may follow the last, partial one."""
        taken: set[int] = set()  # words of the spans the answer's entities claimed
        cursor = 0  # the word after the previous entity
        position = 0
        while True:
            # entity: the longest run consumed up to "is" (an entity may not contain "is")
            end = position
            while end < len(prefix) and prefix[end] != self.is_:
                end += 1
            node = self.spans.walk(prefix[position:end])
            if end == len(prefix):  # still inside the entity
                if node is None:
                    return [self.eos]
                options = set(node.children) - {self.is_}
                if node.terminal:
                    options.add(self.is_)
                return sorted(options) or [self.eos]
            claimed = _claim(node.complete if node else [], taken, cursor)
            if claimed is not None:
                taken.update(range(claimed[0], claimed[1] + 1))
                cursor = claimed[1] + 1
            position = end + 1
            if position == len(prefix):
                return sorted(self.articles)
            position += 1  # the article
            label = self.labels if claimed is not None else self.last_labels
            while position < len(prefix) and not label.terminal:
                label = label.children.get(prefix[position], _Trie())
                position += 1
            if not label.terminal:  # inside "label," or "label."
                return sorted(label.children) or [self.eos]
            if label.ends == ".":
                return [self.eos]
            if position == len(prefix):
                return list(self.first_tokens) or [self.eos]


def _free(span: Words, taken: set[int]) -> bool:
    return not any(word in taken for word in range(span[0], span[1] + 1))


def _claim(spans: Sequence[Words], taken: set[int], cursor: int) -> Words | None:
    """Return the occurrence the parser would give: the first free one from ``cursor`` on."""
    free = [span for span in spans if _free(span, taken)]
    after = [span for span in free if span[0] >= cursor]
    return min(after) if after else min(free, default=None)
