"""Entity scores: token provenance, the score formulas, filtering, options, the proto field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reliability_linear import grows_linearly

from instructner.method.confidence import SCORE_METHODS, TokenProb, entity_scores, token_probs
from instructner.method.parser import locate_answer
from instructner.serving.errors import RequestError
from instructner.serving.pipeline import Pipeline
from instructner.serving.protos import Entity, ExtractionResult
from instructner.serving.requests import ScoreOptions, score_options_from_inputs
from instructner.serving.results import keep_confident, window_result
from instructner.serving.tokenizer import PromptTokenizer
from tests.harness import DEFAULT_TOKEN_PROB, GazetteerEngine

LABELS = ("person", "location", "organization")
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"
SENTENCE = "Peter Blackburn met the EU in Brussels ."


@pytest.fixture(scope="module")
def tokenizer():
    return PromptTokenizer()


def answer_tokens(tokenizer, answer, probs_by_text):
    """Token probabilities for ``answer``: tokens inside a key's text get its probability."""
    ids = tokenizer.encode(answer)[:-1]
    text, spans = tokenizer.decode_with_spans(ids)
    assert text == answer
    log_probs = []
    for span in spans:
        prob = 0.99
        for key, value in probs_by_text.items():
            at = answer.find(key)
            if span is not None and at != -1 and span[0] < at + len(key) and span[1] > at:
                prob = value
        log_probs.append(math.log(prob))
    return token_probs(spans, log_probs)


@pytest.mark.parametrize(
    ("task", "entities"), [("ner", ()), ("extract", ()), ("type", ("EU", "Brussels"))]
)
def test_every_entity_of_every_task_gets_a_score_in_zero_one(tokenizer, task, entities):
    engine = GazetteerEngine(tokenizer, confidence={"EU": 0.3, "Brussels": 0.999})
    labels = () if task == "extract" else LABELS
    result = Pipeline(engine, tokenizer).run(SENTENCE, task, labels, entities)
    assert len(result.entities) == (2 if task == "type" else 3)
    assert all(e.HasField("score") and 0.0 <= e.score <= 1.0 for e in result.entities)


def test_an_entity_written_with_low_probability_scores_below_a_confident_one(tokenizer):
    answer = "Peter Blackburn is a person, EU is an organization, Brussels is a location."
    probs = answer_tokens(tokenizer, answer, {"Peter Blackburn": 0.95, "EU": 0.2})
    found = locate_answer("ner", answer, SENTENCE, LABELS)
    scores = dict(zip([f.entity.text for f in found], entity_scores(probs, found), strict=True))
    assert scores["EU"] < scores["Brussels"]
    assert scores["EU"] < scores["Peter Blackburn"]


def test_an_uncertain_label_lowers_the_score_of_a_certain_mention(tokenizer):
    answer = "EU is an organization, Brussels is a location."
    probs = answer_tokens(tokenizer, answer, {"organization": 0.3})
    found = locate_answer("ner", answer, SENTENCE, LABELS)
    eu, brussels = entity_scores(probs, found)
    assert eu < brussels


def test_score_formulas_combine_the_mention_and_label_tokens():
    # "EU is an organization." written as four tokens with known ranges
    tokens = [
        TokenProb(0, 2, math.log(0.5)),  # EU
        TokenProb(2, 5, math.log(0.1)),  # " is" (not the entity's: left out)
        TokenProb(5, 8, math.log(0.1)),  # " an"
        TokenProb(8, 21, math.log(0.8)),  # " organization"
    ]
    (located,) = locate_answer("ner", "EU is an organization.", "The EU .", ["organization"])
    expected = {
        "geometric_mean": math.sqrt(0.5 * 0.8),
        "minimum": 0.5,
        "product": 0.5 * 0.8,
    }
    for method, value in expected.items():
        assert entity_scores(tokens, [located], method) == [pytest.approx(value)]
    assert set(SCORE_METHODS) == set(expected)


def test_an_unknown_score_method_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="unknown score method 'mean': expected one of"):
        entity_scores([], [], "mean")


def test_bytes_of_one_character_all_count_for_the_entity():
    tokenizer = PromptTokenizer(SHIPPED_MODEL)  # a byte-fallback tokenizer
    answer = "Zoë is a person."
    ids = tokenizer.encode(answer)[:-1]
    text, spans = tokenizer.decode_with_spans(ids)
    assert text == answer
    names = [tokenizer._tokenizer.id_to_token(i) for i in ids]
    byte_tokens = [i for i, name in enumerate(names) if name.startswith("<0x")]
    assert len(byte_tokens) == 2, names
    log_probs = [0.0] * len(ids)
    log_probs[byte_tokens[0]] = math.log(0.25)  # the first byte: no text of its own
    (located,) = locate_answer("ner", answer, "Zoë came .", ["person"])
    (score,) = entity_scores(token_probs(spans, log_probs), [located], "minimum")
    assert score == pytest.approx(0.25)


@pytest.mark.parametrize(
    "answer",
    [
        "Reuters is an organization, Peter Blackburn is a person.",
        "Zoë Ñandú is a person, 東京 is a location, 🤖 x.",
        " a  b ",
        "None",
    ],
)
def test_token_ranges_join_up_to_the_decoded_answer(tokenizer, answer):
    ids = [tokenizer.pad_token_id, *tokenizer.encode(answer)]  # start and end tokens too
    text, spans = tokenizer.decode_with_spans(ids)
    assert text == tokenizer.decode(ids)
    assert spans[0] is None and spans[-1] is None  # special tokens write nothing
    written = [s for s in spans if s is not None]
    assert written[0][0] == 0 and written[-1][1] == len(text)
    assert all(a[1] <= b[0] or a == b for a, b in zip(written, written[1:], strict=False))


def test_an_answer_cut_inside_a_character_still_maps_every_token(tokenizer):
    ids = tokenizer.encode("東")[:-1]
    partial = ids[:-1]  # the last byte of the character never came
    text, spans = tokenizer.decode_with_spans(partial)
    assert text == tokenizer.decode(partial)
    assert all(span is not None for span in spans[1:])


def test_token_probs_refuses_lengths_that_differ():
    with pytest.raises(ValueError, match="2 token spans but 1 log-probabilities"):
        token_probs([(0, 1), (1, 2)], [-0.1])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=-50, max_value=0.0), min_size=1, max_size=30))
def test_scores_stay_in_zero_one_for_any_log_probabilities(log_probs):
    tokens = [TokenProb(i, i + 1, lp) for i, lp in enumerate(log_probs)]
    answer = "x" * len(log_probs)
    located = locate_answer("extract", answer + ".", answer)
    for method in SCORE_METHODS:
        assert all(0.0 <= s <= 1.0 for s in entity_scores(tokens, located, method))


def test_scoring_many_entities_takes_linear_time():
    def work(n):
        answer = ", ".join(["EU is an organization"] * n) + "."
        sentence = " ".join(["EU"] * n)
        tokens = [TokenProb(i, i + 1, -0.1) for i in range(len(answer))]
        located = locate_answer("ner", answer, sentence, ["organization"])
        return lambda: entity_scores(tokens, located)

    grows_linearly(work, 64)


def result_with_scores(*scores):
    result = ExtractionResult(task="ner")
    for index, score in enumerate(scores):
        entity = result.entities.add(text=f"e{index}", start=index, end=index + 1)
        if score is not None:
            entity.score = score
    return result


def test_min_score_drops_lower_scores_and_keeps_the_order():
    result = result_with_scores(0.95, 0.2, 0.9, 0.5, 0.91)
    kept = keep_confident(result, 0.9)
    assert [e.text for e in kept.entities] == ["e0", "e2", "e4"]
    assert kept.task == "ner"


def test_min_score_zero_keeps_everything_and_unscored_entities_are_never_dropped():
    result = result_with_scores(0.1, None)
    assert keep_confident(result, 0.0) == result
    assert [e.text for e in keep_confident(result, 0.5).entities] == ["e1"]


def f32(*values):
    return np.array([[v] for v in values], dtype=np.float32)


def test_score_options_default_to_scores_on_and_nothing_filtered():
    assert score_options_from_inputs({}.get, 2) == [ScoreOptions(True, 0.0)] * 2


def test_score_options_read_one_value_per_row():
    inputs = {"MIN_SCORE": f32(0.5, 0.0), "RETURN_SCORES": np.array([[True], [False]])}
    assert score_options_from_inputs(inputs.get, 2) == [
        ScoreOptions(True, 0.5),
        ScoreOptions(False, 0.0),
    ]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"MIN_SCORE": f32(1.5)}, "MIN_SCORE: row 0 is 1.5, expected a number in [0, 1]"),
        ({"MIN_SCORE": f32(-0.1)}, "MIN_SCORE: row 0 is -0.10000000149011612, expected"),
        ({"MIN_SCORE": f32(float("nan"))}, "MIN_SCORE: row 0 is nan, expected a finite number"),
        ({"MIN_SCORE": f32(float("inf"))}, "MIN_SCORE: row 0 is inf, expected a finite number"),
        ({"MIN_SCORE": np.array([[1]], dtype=np.int32)}, "MIN_SCORE: expected FP32, got dtype"),
        ({"MIN_SCORE": np.zeros((1, 2), np.float32)}, "MIN_SCORE: expected shape [batch, 1]"),
        (
            {"MIN_SCORE": f32(0.5), "RETURN_SCORES": np.array([[False]])},
            "MIN_SCORE: row 0 is 0.5 but RETURN_SCORES is false: no scores to compare",
        ),
        ({"RETURN_SCORES": f32(1.0)}, "RETURN_SCORES: expected BOOL, got dtype float32"),
    ],
)
def test_bad_score_options_are_refused_naming_the_input(inputs, message):
    with pytest.raises(RequestError) as info:
        score_options_from_inputs(inputs.get, 1)
    assert str(info.value).startswith(message)


def old_entity_class():
    """The Entity message as readers built before ``score`` existed see it."""
    proto = descriptor_pb2.FileDescriptorProto()
    Entity.DESCRIPTOR.file.CopyToProto(proto)
    proto.name = "old/extraction.proto"
    proto.package = "old.v1"
    (entity,) = [m for m in proto.message_type if m.name == "Entity"]
    del proto.message_type[:]
    proto.message_type.add().CopyFrom(entity)
    (entity,) = proto.message_type
    kept = [f for f in entity.field if f.name != "score"]
    del entity.field[:]
    entity.field.extend(kept)
    entity.ClearField("oneof_decl")
    for field in entity.field:
        field.ClearField("oneof_index")
        field.ClearField("proto3_optional")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("old.v1.Entity"))


def test_a_reader_built_before_score_existed_reads_new_entities():
    old = old_entity_class()
    assert "score" not in old.DESCRIPTOR.fields_by_name
    new = Entity(text="EU", label="organization", start=4, end=6, score=0.75)
    read = old.FromString(new.SerializeToString())
    assert (read.text, read.label, read.start, read.end) == ("EU", "organization", 4, 6)
    # and an old writer's entity reads back with no score
    back = Entity.FromString(
        old(text="EU", label="organization", start=4, end=6).SerializeToString()
    )
    assert not back.HasField("score")


def test_window_result_without_log_probs_leaves_scores_unset(tokenizer):
    result = window_result("ner", "The EU .", "EU is an organization.", ["organization"])
    assert [e.HasField("score") for e in result.entities] == [False]


def test_gazetteer_engine_default_probability_gives_that_score(tokenizer):
    result = Pipeline(GazetteerEngine(tokenizer), tokenizer).run("The EU .", "ner", LABELS)
    assert [round(e.score, 6) for e in result.entities] == [round(DEFAULT_TOKEN_PROB, 6)]
