import numpy as np
import pytest

from instructner.serving.engine import Generated
from instructner.serving.engine_contract import engine_outputs, read_engine_call, run_engine_calls
from instructner.serving.errors import RequestError
from instructner.serving.limits import Limits


class RecordingEngine:
    kind = "recording"
    vocab_size = 100
    decoder_start_token_id = 0
    eos_token_id = 1

    def __init__(self):
        self.calls = []

    def generate(self, inputs, max_new_tokens, end_id, return_log_probs=False):
        self.calls.append((inputs, max_new_tokens, end_id, return_log_probs))
        pairs = zip(inputs, max_new_tokens, strict=True)
        return [
            Generated(list(ids[:n]), True, [-0.5] * len(ids[:n]) if return_log_probs else None)
            for ids, n in pairs
        ]


def i32(rows):
    return np.array(rows, dtype=np.int32)


def base(**overrides):
    arrays = {
        "input_ids": i32([[5, 6, 7, 1], [8, 1, 0, 0]]),
        "input_lengths": i32([[4], [2]]),
        "request_output_len": i32([[3], [2]]),
    }
    arrays.update(overrides)
    return arrays


LIMITS = Limits(max_input_tokens=8, max_output_tokens=4)


def test_read_engine_call_unpads_rows_by_their_lengths():
    call = read_engine_call(base().get, RecordingEngine(), LIMITS)
    assert call.input_ids == [[5, 6, 7, 1], [8, 1]]
    assert call.max_new_tokens == [3, 2]
    assert call.end_id == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"input_lengths": i32([[5], [2]])}, "input_lengths: row 0 is 5, expected 1..4"),
        ({"request_output_len": i32([[5], [2]])}, "request_output_len: row 0 is 5, expected 1..4"),
        (
            {"input_ids": i32([[5, 6, 7, 100], [8, 1, 0, 0]])},
            "input_ids: row 0 holds a token id outside 0..99",
        ),
        ({"beam_width": i32([[2], [1]])}, "beam_width: only greedy decoding (1) is served"),
        ({"end_id": i32([[1], [2]])}, "end_id: must be the same for every row"),
        ({"input_lengths": i32([[4]])}, "input_lengths: has batch size 1, but TEXT has 2"),
        (
            {
                "input_ids": np.array([[0.5]]),
                "input_lengths": i32([[1]]),
                "request_output_len": i32([[1]]),
            },
            "input_ids: expected INT32",
        ),
    ],
)
def test_read_engine_call_rejects_bad_tensors_naming_them(overrides, message):
    with pytest.raises(RequestError) as info:
        read_engine_call(base(**overrides).get, RecordingEngine(), LIMITS)
    assert str(info.value).startswith(message)


def test_read_engine_call_rejects_inputs_over_the_token_limit():
    arrays = base(input_ids=i32([[5] * 9]), input_lengths=i32([[9]]), request_output_len=i32([[1]]))
    with pytest.raises(
        RequestError, match="input_ids: row 0 has 9 tokens, over the engine's limit of 8"
    ):
        read_engine_call(arrays.get, RecordingEngine(), LIMITS)


def test_read_engine_call_requires_the_lengths():
    arrays = base()
    del arrays["request_output_len"]
    with pytest.raises(RequestError, match="^request_output_len: is required"):
        read_engine_call(arrays.get, RecordingEngine(), LIMITS)


def test_run_engine_calls_batches_requests_per_end_id():
    engine = RecordingEngine()
    calls = [
        read_engine_call(base().get, engine, LIMITS),
        read_engine_call(base(end_id=i32([[7], [7]])).get, engine, LIMITS),
        read_engine_call(base().get, engine, LIMITS),
    ]
    results = run_engine_calls(engine, calls)
    assert [len(engine.calls[0][0]), len(engine.calls[1][0])] == [4, 2]
    assert [[g.token_ids for g in r] for r in results] == [[[5, 6, 7], [8, 1]]] * 3


def test_engine_outputs_have_a_beam_dimension_and_pad_with_the_end_id():
    outputs = engine_outputs([Generated([4, 5, 6], True), Generated([7], False)], end_id=1)
    assert outputs["output_ids"].dtype == np.int32
    assert outputs["output_ids"].tolist() == [[[4, 5, 6]], [[7, 1, 1]]]
    assert outputs["sequence_length"].tolist() == [[3], [1]]


def test_read_engine_call_asks_for_log_probs_only_when_return_log_probs_is_set():
    engine = RecordingEngine()
    assert not read_engine_call(base().get, engine, LIMITS).return_log_probs
    off = np.array([[False], [False]])
    assert not read_engine_call(base(return_log_probs=off).get, engine, LIMITS).return_log_probs
    on = np.array([[True], [False]])
    assert read_engine_call(base(return_log_probs=on).get, engine, LIMITS).return_log_probs


def test_read_engine_call_rejects_a_return_log_probs_that_is_not_bool():
    with pytest.raises(RequestError, match="^return_log_probs: expected BOOL, got dtype int32"):
        read_engine_call(base(return_log_probs=i32([[1], [1]])).get, RecordingEngine(), LIMITS)


def test_run_engine_calls_computes_log_probs_for_a_batch_when_any_call_wants_them():
    engine = RecordingEngine()
    calls = [
        read_engine_call(base().get, engine, LIMITS),
        read_engine_call(base(return_log_probs=np.array([[True], [True]])).get, engine, LIMITS),
    ]
    run_engine_calls(engine, calls)
    assert [call[3] for call in engine.calls] == [True]


def test_engine_outputs_carry_log_probs_aligned_with_the_ids_and_their_sum():
    generated = [Generated([4, 5, 6], True, [-0.1, -0.2, -0.3]), Generated([7], False, [-1.0])]
    outputs = engine_outputs(generated, end_id=1, return_log_probs=True)
    assert outputs["output_log_probs"].dtype == np.float32
    assert outputs["output_log_probs"].shape == outputs["output_ids"].shape
    assert np.allclose(outputs["output_log_probs"], [[[-0.1, -0.2, -0.3]], [[-1.0, 0.0, 0.0]]])
    assert np.allclose(outputs["cum_log_probs"], [[-0.6], [-1.0]])


def test_engine_outputs_are_zero_log_probs_when_not_asked_for():
    generated = [Generated([4, 5], True, [-0.1, -0.2])]
    outputs = engine_outputs(generated, end_id=1)
    assert outputs["output_log_probs"].tolist() == [[[0.0, 0.0]]]
    assert outputs["cum_log_probs"].tolist() == [[0.0]]
