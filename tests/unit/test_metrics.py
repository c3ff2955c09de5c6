"""Strict span-level metrics: hand cases, and agreement with seqeval on real corpora."""

from __future__ import annotations

import random
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from instructner.method.types import Entity, Sentence, TokenSpan
from instructner.research.data import bio_to_spans, load_corpus
from instructner.research.metrics import (
    Scores,
    TypeScores,
    entities_to_token_spans,
    score_sentences,
    score_spans,
    score_tags,
    spans_to_tags,
)
from tests.shared_data import DATA_ROOT, needs_data

# --- hand cases -----------------------------------------------------------------------------


def test_score_spans_gives_perfect_scores_when_prediction_equals_gold() -> None:
    gold = [[(0, 1, "PER"), (3, 5, "LOC")], [(2, 3, "ORG")]]
    scores = score_spans(gold, gold)
    assert (scores.precision, scores.recall, scores.f1) == (1.0, 1.0, 1.0)
    assert (scores.tp, scores.fp, scores.fn) == (3, 0, 0)


def test_score_spans_counts_spurious_prediction_as_false_positive() -> None:
    scores = score_spans([[(0, 1, "PER")]], [[(0, 1, "PER"), (4, 6, "LOC")]])
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 0)
    assert scores.precision == 0.5
    assert scores.recall == 1.0
    assert scores.f1 == pytest.approx(2 / 3)
    assert scores.per_type["LOC"] == TypeScores(0.0, 0.0, 0.0, support=0, tp=0, fp=1, fn=0)


def test_score_spans_counts_type_mismatch_as_false_positive_and_false_negative() -> None:
    scores = score_spans([[(0, 2, "PER")]], [[(0, 2, "ORG")]])
    assert (scores.tp, scores.fp, scores.fn) == (0, 1, 1)
    assert scores.per_type["PER"].fn == 1
    assert scores.per_type["ORG"].fp == 1
    assert scores.f1 == 0.0


@pytest.mark.parametrize("pred_span", [(0, 1, "PER"), (0, 3, "PER"), (1, 2, "PER")])
def test_score_spans_counts_boundary_mismatch_as_false_positive_and_false_negative(
    pred_span: tuple[int, int, str],
) -> None:
    scores = score_spans([[(0, 2, "PER")]], [[pred_span]])
    assert (scores.tp, scores.fp, scores.fn) == (0, 1, 1)
    assert scores.per_type["PER"] == TypeScores(0.0, 0.0, 0.0, support=1, tp=0, fp=1, fn=1)


def test_score_spans_gives_zeros_and_no_types_when_gold_and_prediction_are_empty() -> None:
    scores = score_spans([[], []], [[], []])
    assert scores == Scores(0.0, 0.0, 0.0, tp=0, fp=0, fn=0, per_type={})


def test_score_spans_gives_zero_precision_when_nothing_is_predicted() -> None:
    scores = score_spans([[(0, 1, "PER")]], [[]])
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)
    assert scores.fn == 1


def test_score_spans_gives_zero_recall_when_gold_is_empty() -> None:
    scores = score_spans([[]], [[(0, 1, "PER")]])
    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)
    assert scores.fp == 1


def test_score_spans_counts_duplicate_prediction_once_as_true_positive_then_false_positive() -> (
    None
):
    scores = score_spans([[(0, 1, "PER")]], [[(0, 1, "PER"), (0, 1, "PER"), (0, 1, "PER")]])
    assert (scores.tp, scores.fp, scores.fn) == (1, 2, 0)
    assert scores.precision == pytest.approx(1 / 3)


def test_score_spans_does_not_match_spans_across_sentences() -> None:
    scores = score_spans([[(0, 1, "PER")], []], [[], [(0, 1, "PER")]])
    assert (scores.tp, scores.fp, scores.fn) == (0, 1, 1)


def test_score_spans_reports_per_type_scores_sorted_by_type() -> None:
    gold = [[(0, 1, "PER"), (2, 3, "LOC"), (4, 5, "LOC")], [(0, 2, "ORG")]]
    pred = [[(0, 1, "PER"), (2, 3, "LOC"), (4, 5, "PER")], [(0, 2, "MISC")]]
    scores = score_spans(gold, pred)
    assert list(scores.per_type) == ["LOC", "MISC", "ORG", "PER"]
    assert scores.per_type["LOC"] == TypeScores(1.0, 0.5, pytest.approx(2 / 3), 2, 1, 0, 1)
    assert scores.per_type["PER"] == TypeScores(0.5, 1.0, pytest.approx(2 / 3), 1, 1, 1, 0)
    assert scores.per_type["ORG"] == TypeScores(0.0, 0.0, 0.0, 1, 0, 0, 1)
    assert scores.per_type["MISC"] == TypeScores(0.0, 0.0, 0.0, 0, 0, 1, 0)
    assert (scores.tp, scores.fp, scores.fn) == (2, 2, 2)
    assert (scores.precision, scores.recall, scores.f1) == (0.5, 0.5, 0.5)


def test_scores_to_dict_has_the_json_shape() -> None:
    scores = score_spans([[(0, 1, "PER")]], [[(0, 1, "PER"), (1, 2, "LOC")]])
    assert scores.to_dict() == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "tp": 1,
        "fp": 1,
        "fn": 0,
        "per_type": {
            "LOC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "tp": 0, "fp": 1,
                    "fn": 0},
            "PER": {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1, "tp": 1, "fp": 0,
                    "fn": 0},
        },
    }  # fmt: skip


def test_score_spans_rejects_different_sentence_counts() -> None:
    with pytest.raises(ValueError, match="gold has 2 sentences but predictions have 1"):
        score_spans([[], []], [[]])


@pytest.mark.parametrize(
    ("span", "message"),
    [
        ((0, 1), r"predicted sentence 1: expected a \(start, end, type\) span, got \(0, 1\)"),
        ((2, 2, "PER"), r"predicted sentence 1: span \(2, 2, 'PER'\) needs 0 <= start < end"),
        ((0, 1, None), r"expected a \(start, end, type\) span, got \(0, 1, None\)"),
    ],
)
def test_score_spans_rejects_malformed_span_naming_the_sentence(span: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        score_spans([[], []], [[], [span]])  # type: ignore[list-item]


def test_score_tags_rejects_tag_sequences_of_different_length_naming_the_sentence() -> None:
    with pytest.raises(ValueError, match="sentence 1: gold has 3 tags but prediction has 2"):
        score_tags([["O"], ["O", "B-PER", "O"]], [["O"], ["O", "B-PER"]])


def test_score_tags_rejects_different_sentence_counts() -> None:
    with pytest.raises(ValueError, match="gold has 1 sentences but predictions have 2"):
        score_tags([["O"]], [["O"], ["O"]])


def test_score_tags_starts_a_mention_at_i_tag_after_o_like_seqeval() -> None:
    scores = score_tags([["O", "B-PER", "I-PER"]], [["O", "I-PER", "I-PER"]])
    assert (scores.tp, scores.fp, scores.fn) == (1, 0, 0)


def test_score_tags_splits_mention_where_the_type_changes() -> None:
    scores = score_tags([["B-PER", "B-LOC"]], [["B-PER", "I-LOC"]])
    assert (scores.tp, scores.fp, scores.fn) == (2, 0, 0)


def _sentence(tokens: str, tags: str, source: str) -> Sentence:
    tag_list = tuple(tags.split())
    return Sentence(tuple(tokens.split()), tag_list, tuple(bio_to_spans(list(tag_list))), source)


def test_score_sentences_scores_tags_when_tokens_agree() -> None:
    gold = [_sentence("John lives here", "B-PER O O", "g:1")]
    pred = [_sentence("John lives here", "B-PER O B-LOC", "p:1")]
    scores = score_sentences(gold, pred)
    assert (scores.tp, scores.fp, scores.fn) == (1, 1, 0)


def test_score_sentences_names_first_sentence_with_different_tokens_and_its_lines() -> None:
    gold = [_sentence("a b", "O O", "gold.txt:1"), _sentence("c d e", "O O O", "gold.txt:4")]
    pred = [_sentence("a b", "O O", "pred.txt:1"), _sentence("c x e", "O O O", "pred.txt:4")]
    with pytest.raises(
        ValueError,
        match="sentence 1 differs: gold gold.txt:4 vs predicted pred.txt:4: "
        "token 1 is 'd' in gold but 'x' in predictions",
    ):
        score_sentences(gold, pred)


def test_score_sentences_names_sentence_whose_token_count_differs() -> None:
    gold = [_sentence("a b c", "O O O", "gold.txt:1")]
    pred = [_sentence("a b", "O O", "pred.txt:1")]
    with pytest.raises(ValueError, match="gold has 3 tokens but predictions have 2"):
        score_sentences(gold, pred)


# --- char entities to tokens ----------------------------------------------------------------


def test_entities_to_token_spans_maps_aligned_entities_with_label_to_tag() -> None:
    sentence = _sentence("John Smith visited New York .", "O O O O O O", "s:1")
    entities = [
        Entity(0, 10, "John Smith", "person"),
        Entity(19, 27, "New York", "location"),
    ]
    alignment = entities_to_token_spans(
        entities, sentence, {"person": "PER", "location": "LOC"}.get
    )
    assert alignment.spans == (TokenSpan(0, 2, "PER"), TokenSpan(3, 5, "LOC"))
    assert alignment.unaligned == ()


def test_entities_to_token_spans_reports_entities_off_token_boundaries() -> None:
    sentence = _sentence("the U.S. team", "O O O", "s:1")
    inside_token = Entity(4, 7, "U.S", "LOC")
    across_tokens = Entity(5, 13, ".S. team", "ORG")
    aligned = Entity(4, 8, "U.S.", "LOC")
    alignment = entities_to_token_spans([inside_token, aligned, across_tokens], sentence)
    assert alignment.spans == (TokenSpan(1, 2, "LOC"),)
    assert alignment.unaligned == (inside_token, across_tokens)


def test_entities_to_token_spans_rejects_entity_without_label() -> None:
    sentence = _sentence("John runs", "O O", "s:1")
    with pytest.raises(ValueError, match="entity 'John' at 0:4 has no label"):
        entities_to_token_spans([Entity(0, 4, "John", None)], sentence)


def test_spans_to_tags_round_trips_through_bio_to_spans() -> None:
    spans = [TokenSpan(3, 4, "LOC"), TokenSpan(0, 2, "PER"), TokenSpan(2, 3, "PER")]
    tags = spans_to_tags(spans, 5)
    assert tags == ["B-PER", "I-PER", "B-PER", "B-LOC", "O"]
    assert sorted(bio_to_spans(tags), key=lambda s: s.start) == sorted(spans, key=lambda s: s.start)


def test_spans_to_tags_rejects_overlapping_spans() -> None:
    with pytest.raises(ValueError, match="overlaps another span"):
        spans_to_tags([TokenSpan(0, 2, "PER"), TokenSpan(1, 3, "LOC")], 4)


def test_spans_to_tags_rejects_span_outside_sentence() -> None:
    with pytest.raises(ValueError, match="lies outside a sentence of 2 tokens"):
        spans_to_tags([TokenSpan(1, 3, "PER")], 2)


# --- agreement with seqeval -----------------------------------------------------------------


def _seqeval_scores(
    gold: list[list[str]], pred: list[list[str]]
) -> tuple[dict, float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on every 0/0; we compare the values
        report = classification_report(gold, pred, output_dict=True)
        micro = (precision_score(gold, pred), recall_score(gold, pred), f1_score(gold, pred))
    per_type = {
        name: values
        for name, values in report.items()
        if name not in ("micro avg", "macro avg", "weighted avg")
    }
    return per_type, *micro


def _assert_agrees_with_seqeval(gold: list[list[str]], pred: list[list[str]]) -> Scores:
    ours = score_tags(gold, pred)
    per_type, precision, recall, f1 = _seqeval_scores(gold, pred)
    assert ours.precision == pytest.approx(precision, abs=1e-9, rel=0)
    assert ours.recall == pytest.approx(recall, abs=1e-9, rel=0)
    assert ours.f1 == pytest.approx(f1, abs=1e-9, rel=0)
    assert sorted(ours.per_type) == sorted(per_type)
    for name, theirs in per_type.items():
        mine = ours.per_type[name]
        assert mine.precision == pytest.approx(theirs["precision"], abs=1e-9, rel=0), name
        assert mine.recall == pytest.approx(theirs["recall"], abs=1e-9, rel=0), name
        assert mine.f1 == pytest.approx(theirs["f1-score"], abs=1e-9, rel=0), name
        assert mine.support == theirs["support"], name
    return ours


def _perturb(tags: list[str], types: list[str], rng: random.Random) -> list[str]:
    """Return a noisy prediction: mentions dropped, shifted, retyped, spurious ones added."""
    n = len(tags)
    spans = []
    for span in bio_to_spans(tags):
        start, end, tag = span.start, span.end, span.tag
        roll = rng.random()
        if roll < 0.15:
            continue  # missed mention
        if roll < 0.30:
            start = max(0, min(end - 1, start + rng.choice((-1, 1))))
        elif roll < 0.40:
            end = max(start + 1, min(n, end + rng.choice((-1, 1))))
        elif roll < 0.55:
            tag = rng.choice(types)
        spans.append((start, end, tag))
    if rng.random() < 0.3:
        start = rng.randrange(n)
        spans.append((start, min(n, start + rng.randint(1, 3)), rng.choice(types)))
    pred = ["O"] * n
    for start, end, tag in spans:
        if any(t != "O" for t in pred[start:end]):
            continue  # keep predictions flat, as BIO requires
        # sometimes open the mention with I- (seqeval reads it as a start after O)
        first = "I" if rng.random() < 0.1 and (start == 0 or pred[start - 1] == "O") else "B"
        pred[start] = f"{first}-{tag}"
        for position in range(start + 1, end):
            pred[position] = f"I-{tag}"
    return pred


@needs_data
@pytest.mark.parametrize(("corpus", "mentions"), [("conll2003", 5648), ("mit_restaurant", 3151)])
def test_score_tags_agrees_with_seqeval_on_perturbed_real_test_sets(
    corpus: str, mentions: int
) -> None:
    sentences = load_corpus(corpus, "test", data_root=DATA_ROOT)
    gold = [list(s.tags) for s in sentences]
    types = sorted({span.tag for s in sentences for span in s.spans})
    rng = random.Random(20240531)
    pred = [_perturb(tags, types, rng) for tags in gold]

    perfect = _assert_agrees_with_seqeval(gold, gold)
    assert (perfect.tp, perfect.fp, perfect.fn) == (mentions, 0, 0)

    ours = _assert_agrees_with_seqeval(gold, pred)
    assert ours.tp + ours.fn == mentions
    # the noise must be strong enough to exercise every kind of count
    assert ours.tp > 0 and ours.fp > 0 and ours.fn > 0
    assert 0.4 < ours.f1 < 0.9


_TAGS = st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B", "B-long.type_name", "I-long.type_name"])


@st.composite
def _gold_and_pred(draw: st.DrawFn) -> tuple[list[list[str]], list[list[str]]]:
    # seqeval rejects an empty list of sentences, so draw at least one (it may be empty)
    lengths = draw(st.lists(st.integers(min_value=0, max_value=8), min_size=1, max_size=6))
    gold = [draw(st.lists(_TAGS, min_size=n, max_size=n)) for n in lengths]
    pred = [draw(st.lists(_TAGS, min_size=n, max_size=n)) for n in lengths]
    return gold, pred


@settings(max_examples=300, deadline=None)
@given(_gold_and_pred())
def test_score_tags_agrees_with_seqeval_on_random_tag_sequences(
    data: tuple[list[list[str]], list[list[str]]],
) -> None:
    gold, pred = data
    _assert_agrees_with_seqeval(gold, pred)


def test_score_tags_rejects_non_bio_tag_naming_sentence_and_position() -> None:
    with pytest.raises(ValueError, match="predicted sentence 1: tag 2 is 'S-PER'"):
        score_tags([["O"], ["O", "O", "O"]], [["O"], ["O", "O", "S-PER"]])
