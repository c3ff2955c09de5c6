import fake_pb_utils as pb
import numpy as np
import pytest
from serving_models import LABELS, load

from instructner.serving.protos import ExtractionResult
from instructner.serving.tokenizer import PromptTokenizer

TEXT = "Peter Blackburn visited Brussels ."
ANSWER = "Peter Blackburn is a person, Brussels is a location."


@pytest.fixture(scope="module")
def model():
    return load("postprocessing")


def engine_output(answers, pad=1):
    tokenizer = PromptTokenizer()
    rows = [tokenizer.encode(a)[:-1] for a in answers]
    width = max(len(r) for r in rows)
    tokens = np.full((len(rows), 1, width), pad, dtype=np.int32)
    for i, row in enumerate(rows):
        tokens[i, 0, : len(row)] = row
    lengths = np.array([[len(r)] for r in rows], dtype=np.int32)
    return tokens, lengths


def test_postprocessing_parses_the_answer_into_a_result_with_offsets(model):
    tokens, lengths = engine_output([ANSWER])
    request = pb.request(
        TOKENS_BATCH=tokens,
        SEQUENCE_LENGTH=lengths,
        TEXT=pb.strings([TEXT]),
        LABELS=pb.strings(list(LABELS)),
        REQUEST_INPUT_LEN=np.array([[30]], dtype=np.int32),
        REQUEST_OUTPUT_LEN=np.array([[40]], dtype=np.int32),
    )
    out = pb.outputs(model.execute([request])[0])
    result = ExtractionResult.FromString(out["RESULT"][0, 0])
    assert out["GENERATED_TEXT"][0, 0].decode() == ANSWER
    assert [(e.text, e.label, e.start, e.end) for e in result.entities] == [
        ("Peter Blackburn", "person", 0, 15),
        ("Brussels", "location", 24, 32),
    ]
    assert result.windows[0].input_tokens == 30
    assert result.windows[0].output_tokens == int(lengths[0, 0])
    assert not result.windows[0].output_limit_reached


def test_postprocessing_flags_an_answer_that_used_the_whole_output_budget(model):
    tokens, lengths = engine_output([ANSWER])
    request = pb.request(
        TOKENS_BATCH=tokens,
        SEQUENCE_LENGTH=lengths,
        TEXT=pb.strings([TEXT]),
        LABELS=pb.strings(list(LABELS)),
        REQUEST_OUTPUT_LEN=lengths.copy(),
    )
    result = ExtractionResult.FromString(pb.outputs(model.execute([request])[0])["RESULT"][0, 0])
    assert result.windows[0].output_limit_reached


def test_postprocessing_reads_only_sequence_length_tokens_of_a_padded_batch(model):
    tokens, lengths = engine_output([ANSWER, "Brussels is a location."])
    request = pb.request(
        TOKENS_BATCH=tokens,
        SEQUENCE_LENGTH=lengths,
        TEXT=pb.strings([TEXT], [TEXT]),
        LABELS=pb.strings(list(LABELS), list(LABELS)),
    )
    out = pb.outputs(model.execute([request])[0])
    assert [t.decode() for t in out["GENERATED_TEXT"][:, 0]] == [ANSWER, "Brussels is a location."]


def test_postprocessing_rejects_missing_or_misshapen_engine_output(model):
    tokens, lengths = engine_output([ANSWER])
    missing = pb.request(TEXT=pb.strings([TEXT]), LABELS=pb.strings(list(LABELS)))
    flat = pb.request(
        TOKENS_BATCH=tokens[:, 0, :],
        SEQUENCE_LENGTH=lengths,
        TEXT=pb.strings([TEXT]),
        LABELS=pb.strings(list(LABELS)),
    )
    first, second = model.execute([missing, flat])
    assert first.error().message() == "TOKENS_BATCH: and SEQUENCE_LENGTH are required"
    assert second.error().code() == pb.TritonError.INVALID_ARG
    assert second.error().message().startswith("TOKENS_BATCH: expected shape [1, beams, len]")


def _scored_request(log_probs):
    tokens, lengths = engine_output([ANSWER])
    return pb.request(
        TOKENS_BATCH=tokens,
        SEQUENCE_LENGTH=lengths,
        TEXT=pb.strings([TEXT]),
        LABELS=pb.strings(list(LABELS)),
        OUTPUT_LOG_PROBS=log_probs(tokens.shape[2]),
    )


def test_postprocessing_scores_entities_from_log_probs_padded_past_the_answer(model):
    def padded(width):  # an engine may pad to its own width, with anything past the answer
        values = np.full((1, 1, width + 5), -np.inf, dtype=np.float32)
        values[0, 0, :width] = np.log(0.5)
        return values

    out = pb.outputs(model.execute([_scored_request(padded)])[0])
    result = ExtractionResult.FromString(out["RESULT"][0, 0])
    assert [round(e.score, 4) for e in result.entities] == [0.5, 0.5]


@pytest.mark.parametrize(
    ("log_probs", "message"),
    [
        (lambda w: np.full((1, 1, w), np.nan, dtype=np.float32), "row 0: every value must be"),
        (lambda w: np.full((1, 1, w), 0.5, dtype=np.float32), "row 0: every value must be"),
        (lambda w: np.zeros((1, 1, 2), dtype=np.float32), "row 0 holds 2 values for"),
        (lambda w: np.zeros((1, 2, w), dtype=np.float32), "expected shape [1, 1, at most"),
        (lambda w: np.zeros((1, 1, w), dtype=np.int32), "expected FP32, got dtype int32"),
    ],
)
def test_postprocessing_refuses_bad_log_probs_naming_the_input(model, log_probs, message):
    response = model.execute([_scored_request(log_probs)])[0]
    assert response.error().code() == pb.TritonError.INVALID_ARG
    assert response.error().message().startswith("OUTPUT_LOG_PROBS: ")
    assert message in response.error().message()
