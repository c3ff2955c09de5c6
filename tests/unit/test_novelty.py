"""Recall split by whether a gold mention was seen in training."""

from __future__ import annotations

from instructner.research.data import make_sentence
from instructner.research.novelty import recall_by_novelty, training_mentions


def _gold(text: str, start: int, tag: str) -> dict[str, object]:
    return {"text": text, "start": start, "end": start + len(text), "tag": tag}


def test_training_mentions_are_the_mention_words_joined_by_spaces():
    sentences = [
        make_sentence(["Angela", "Merkel", "in", "Paris"], ["B-PER", "I-PER", "O", "B-LOC"]),
        make_sentence(["Paris", "won"], ["B-ORG", "O"]),
    ]
    assert training_mentions(sentences) == {"Angela Merkel", "Paris"}


def test_recall_is_split_into_seen_and_unseen_mentions_with_strict_matching():
    records = [
        {
            "gold": [_gold("Paris", 0, "LOC"), _gold("Kobaru", 10, "PER")],
            "predicted": [_gold("Paris", 0, "LOC"), _gold("Kobaru", 10, "ORG")],  # wrong tag
        },
        {"gold": [_gold("Lyon", 0, "LOC")], "predicted": [_gold("Lyon", 0, "LOC")]},
    ]
    result = recall_by_novelty(records, {"Paris", "Berlin"})
    assert result["seen"] == {"mentions": 1, "found": 1, "recall": 1.0}
    assert result["unseen"] == {"mentions": 2, "found": 1, "recall": 0.5}


def test_a_group_without_mentions_has_no_recall():
    records = [{"gold": [_gold("Paris", 0, "LOC")], "predicted": []}]
    result = recall_by_novelty(records, {"Paris"})
    assert result["unseen"] == {"mentions": 0, "found": 0, "recall": None}
    assert result["seen"]["recall"] == 0.0
