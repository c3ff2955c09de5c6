import pytest

from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits
from instructner.serving.pipeline import Pipeline, Query
from instructner.serving.tokenizer import PromptTokenizer
from tests.harness import GazetteerEngine

LABELS = ("person", "location", "organization")


@pytest.fixture(scope="module")
def tokenizer():
    return PromptTokenizer()


def pipeline(tokenizer, **limits):
    return Pipeline(GazetteerEngine(tokenizer), tokenizer, Limits(**limits))


def test_pipeline_finds_entities_of_every_sentence_with_document_offsets(tokenizer):
    doc = "Peter Blackburn flew in .\n\nThen the EU met in Brussels . Nothing else ."
    result = pipeline(tokenizer).run(doc, labels=LABELS)
    assert [(e.text, e.label, doc[e.start : e.end]) for e in result.entities] == [
        ("Peter Blackburn", "person", "Peter Blackburn"),
        ("EU", "organization", "EU"),
        ("Brussels", "location", "Brussels"),
    ]
    assert len(result.windows) == 3
    assert result.generated_text.split("\n")[2] == "None"


def test_pipeline_splits_an_over_long_sentence_and_still_finds_its_entities(tokenizer):
    doc = " ".join(["word"] * 150 + ["EU"] + ["word"] * 150 + ["Brussels", "."])
    result = pipeline(tokenizer, max_input_tokens=100).run(doc, labels=LABELS)
    assert len(result.windows) >= 4
    assert all(w.input_tokens <= 100 for w in result.windows)
    assert [(e.text, doc[e.start : e.end]) for e in result.entities] == [
        ("EU", "EU"),
        ("Brussels", "Brussels"),
    ]


def test_pipeline_marks_answers_cut_by_the_output_limit(tokenizer):
    result = pipeline(tokenizer, max_output_tokens=4).run(
        "Peter Blackburn met the EU in Brussels .", labels=LABELS
    )
    assert result.windows[0].output_limit_reached
    assert result.windows[0].output_tokens == 4


def test_pipeline_types_only_the_given_entities(tokenizer):
    result = pipeline(tokenizer).run("The EU met in Brussels .", "type", LABELS, ("Brussels",))
    assert [(e.text, e.label) for e in result.entities] == [("Brussels", "location")]


def test_pipeline_batches_the_windows_of_several_documents_in_one_engine_call(tokenizer):
    runner = pipeline(tokenizer)
    results = runner.run_many(
        [Query("EU agrees . Brussels too .", None, LABELS), Query("Brussels .", "extract")]
    )
    assert runner.engine.batches == [3]
    assert [e.text for e in results[1].entities] == ["Brussels"]


def test_pipeline_rejects_invalid_requests_before_generating(tokenizer):
    runner = pipeline(tokenizer)
    with pytest.raises(RequestError, match="^LABELS: required"):
        runner.run("EU agrees .")
    assert runner.engine.batches == []
