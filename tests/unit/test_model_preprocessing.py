import fake_pb_utils as pb
import pytest
from serving_models import LABELS, LIMITS, load

from instructner.serving.tokenizer import PromptTokenizer, encode_window

TEXT = "Peter Blackburn visited Brussels ."


@pytest.fixture(scope="module")
def model():
    return load("preprocessing")


def test_preprocessing_returns_padded_prompt_ids_and_engine_parameters(model):
    request = pb.request(
        TEXT=pb.strings([TEXT], ["EU ."]), LABELS=pb.strings(list(LABELS), list(LABELS))
    )
    (response,) = model.execute([request])
    out = pb.outputs(response)
    tokenizer = PromptTokenizer()
    first = encode_window(tokenizer, "ner", TEXT, LABELS, (), 100)
    second = encode_window(tokenizer, "ner", "EU .", LABELS, (), 100)
    assert out["REQUEST_INPUT_LEN"].tolist() == [[len(first)], [len(second)]]
    assert out["INPUT_ID"][0].tolist() == first
    assert out["INPUT_ID"][1].tolist() == second + [0] * (len(first) - len(second))
    assert out["REQUEST_OUTPUT_LEN"].tolist() == [[LIMITS.max_output_tokens]] * 2
    assert out["END_ID"].tolist() == [[1], [1]] and out["PAD_ID"].tolist() == [[0], [0]]


def test_preprocessing_answers_a_bad_request_alone_with_invalid_arg(model):
    good = pb.request(TEXT=pb.strings([TEXT]), LABELS=pb.strings(list(LABELS)))
    bad = pb.request(TEXT=pb.strings([b"\xc3\x28 x"]), LABELS=pb.strings(list(LABELS)))
    missing = pb.request(TEXT=pb.strings([TEXT]))
    responses = model.execute([good, bad, missing])
    assert not responses[0].has_error()
    assert responses[1].error().code() == pb.TritonError.INVALID_ARG
    assert responses[1].error().message().startswith("TEXT: row 0 is not valid UTF-8")
    assert responses[2].error().message().startswith("LABELS: required for task 'ner'")


def test_preprocessing_rejects_a_prompt_over_the_engine_limit(model):
    request = pb.request(TEXT=pb.strings([" ".join(["word"] * 120)]), TASK=pb.strings(["extract"]))
    (response,) = model.execute([request])
    assert response.error().code() == pb.TritonError.INVALID_ARG
    assert "over the engine's limit of 100" in response.error().message()


def test_preprocessing_turns_an_unexpected_failure_into_internal_and_logs_it(model, monkeypatch):
    def broken(text):
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(model.tokenizer, "encode", broken)
    pb.LOG.clear()
    (response,) = model.execute([pb.request(TEXT=pb.strings(["x"]), TASK=pb.strings(["extract"]))])
    assert response.error().code() == pb.TritonError.INTERNAL
    assert response.error().message() == (
        "internal error in model preprocessing (RuntimeError); see the server log"
    )
    assert pb.LOG[-1][0] == "error" and "tokenizer exploded" in pb.LOG[-1][1]
    assert "Traceback" in pb.LOG[-1][1]
