"""Scoring of every benchmark path, and the percentile and input-file helpers."""

import pytest

from bench.paths import percentile
from bench.quality import score_answers, score_entities
from bench.workload import Workload, engine_input_data, ensemble_input_data
from instructner.method.labels import get_verbalizer
from instructner.research.data import make_sentence

SENTENCE = make_sentence(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"])
VERBALIZER = get_verbalizer("conll2003")


def test_entities_are_scored_by_label_word_mapped_to_the_corpus_tag():
    predicted = [[(0, 2, "organization"), (11, 17, "miscellaneous")]]
    quality = score_entities([SENTENCE], predicted, VERBALIZER)
    assert (quality.tp, quality.fp, quality.fn) == (2, 0, 0)
    assert quality.f1 == pytest.approx(1.0)


def test_unknown_label_words_and_empty_spans_count_as_false_positives():
    predicted = [[(0, 2, "organization"), (3, 3, "person"), (11, 17, "food")]]
    quality = score_entities([SENTENCE], predicted, VERBALIZER)
    assert (quality.tp, quality.fp, quality.fn) == (1, 2, 1)
    assert quality.precision == pytest.approx(1 / 3)


def test_answers_go_through_the_project_parser():
    answer = "EU is an organization, German is a miscellaneous."
    assert score_answers([SENTENCE], [answer], VERBALIZER).f1 == pytest.approx(1.0)
    assert score_answers([SENTENCE], ["None"], VERBALIZER).fn == 2


def test_scoring_needs_one_prediction_per_sentence():
    with pytest.raises(ValueError, match="0 predictions for 1 sentences"):
        score_entities([SENTENCE], [], VERBALIZER)


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile([3.0, 1.0], 99) == 3.0
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_input_files_hold_one_step_per_sentence_with_shapes_without_batch():
    workload = Workload(
        sentences=(SENTENCE,),
        verbalizer=VERBALIZER,
        prompt_ids=((5, 6, 1),),
        max_new_tokens=24,
        end_id=1,
    )
    (step,) = ensemble_input_data(workload)["data"]
    assert step["TEXT"] == ["EU rejects German call"]
    assert step["TASK"] == ["ner"]
    assert step["LABELS"] == {"content": list(VERBALIZER.words), "shape": [4]}
    (engine_step,) = engine_input_data(workload)["data"]
    # the engine alone is asked for log-probabilities, as instruction_ner asks it by default
    assert engine_step == {
        "input_ids": {"content": [5, 6, 1], "shape": [3]},
        "input_lengths": [3],
        "request_output_len": [24],
        "end_id": [1],
        "return_log_probs": [True],
    }
    (without,) = engine_input_data(workload, log_probs=False)["data"]
    assert "return_log_probs" not in without
