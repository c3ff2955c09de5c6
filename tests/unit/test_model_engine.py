import fake_pb_utils as pb
import numpy as np
from serving_models import LABELS, gazetteer_patch, load

from instructner.serving.tokenizer import PromptTokenizer, encode_window


def engine_request(texts, output_len=40, **extra):
    tokenizer = PromptTokenizer()
    rows = [encode_window(tokenizer, "ner", t, LABELS, (), 100) for t in texts]
    ids = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return pb.request(
        input_ids=ids,
        input_lengths=np.array([[len(r)] for r in rows], dtype=np.int32),
        request_output_len=np.array([[output_len]] * len(rows), dtype=np.int32),
        **extra,
    )


def decode(out):
    tokenizer = PromptTokenizer()
    return [
        tokenizer.decode(out["output_ids"][i, 0, : out["sequence_length"][i, 0]])
        for i in range(len(out["output_ids"]))
    ]


def test_engine_decodes_all_valid_requests_of_a_batch_in_one_call():
    patch, made = gazetteer_patch()
    model = load("engine", **patch)
    bad = engine_request(["EU ."], beam_width=np.array([[3]], dtype=np.int32))
    responses = model.execute(
        [engine_request(["EU agrees ."]), bad, engine_request(["Brussels .", "Nothing ."])]
    )
    assert made[0].batches == [3]
    assert decode(pb.outputs(responses[0])) == ["EU is an organization."]
    assert responses[1].error().code() == pb.TritonError.INVALID_ARG
    assert responses[1].error().message().startswith("beam_width: only greedy decoding (1)")
    assert decode(pb.outputs(responses[2])) == ["Brussels is a location.", "None"]
    assert pb.outputs(responses[2])["output_ids"].shape[:2] == (2, 1)


def test_engine_cuts_each_request_at_its_own_output_length():
    patch, _ = gazetteer_patch()
    model = load("engine", **patch)
    long_answer, short = model.execute(
        [engine_request(["EU agrees ."], 40), engine_request(["EU agrees ."], 2)]
    )
    assert pb.outputs(short)["sequence_length"].tolist() == [[2]]
    assert pb.outputs(long_answer)["sequence_length"][0, 0] > 2


def test_engine_failure_answers_every_request_internal_and_logs_once(monkeypatch):
    patch, made = gazetteer_patch()
    model = load("engine", **patch)

    def broken(inputs, max_new_tokens, end_id, return_log_probs=False):
        raise MemoryError("out of memory")

    monkeypatch.setattr(made[0], "generate", broken)
    pb.LOG.clear()
    responses = model.execute([engine_request(["EU ."]), engine_request(["Brussels ."])])
    assert [r.error().code() for r in responses] == [pb.TritonError.INTERNAL] * 2
    assert "internal error in model engine (MemoryError)" in responses[0].error().message()
    assert [level for level, _ in pb.LOG] == ["error"]
