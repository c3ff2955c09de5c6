import json

import pytest

from instructner.serving.engine import (
    CTranslate2Engine,
    Generated,
    TransformersEngine,
    convert_to_ctranslate2,
    load_engine,
)
from instructner.serving.tokenizer import PromptTokenizer, encode_window

TEXTS = ["EU rejects German call to boycott British lamb .", "Peter Blackburn", "Japan won 2-1 ."]


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory):
    from instructner.modeling import load_tokenizer, new_t5_model, save_model

    root = tmp_path_factory.mktemp("engines")
    checkpoint = save_model(new_t5_model("tiny", seed=3), load_tokenizer(), root / "hf")
    return checkpoint, convert_to_ctranslate2(checkpoint, root / "ct2")


@pytest.fixture(scope="module")
def prompts():
    tokenizer = PromptTokenizer()
    return [encode_window(tokenizer, "ner", t, ["person", "location"], (), 512) for t in TEXTS]


def test_converted_vocabulary_maps_ids_one_to_one(model_dirs):
    _, ct2 = model_dirs
    tokens = json.loads((ct2 / "shared_vocabulary.json").read_text())
    assert len(tokens) == len(set(tokens)) == 32128
    assert tokens[:3] == ["<pad>", "</s>", "<unk>"]


def test_float32_ctranslate2_gives_the_reference_answers(model_dirs, prompts):
    checkpoint, ct2 = model_dirs
    reference = TransformersEngine(checkpoint, stop_loops=False).generate(prompts, [12] * 3, 1)
    fast = CTranslate2Engine(ct2, compute_type="float32", stop_loops=False).generate(
        prompts, [12] * 3, 1
    )
    assert fast == reference
    assert all(len(g.token_ids) == 12 and not g.finished for g in reference)


def test_each_row_stops_at_its_own_token_limit(model_dirs, prompts):
    _, ct2 = model_dirs
    out = CTranslate2Engine(ct2, compute_type="int8", inter_threads=2, stop_loops=False).generate(
        prompts, [1, 5, 9], 1
    )
    assert [len(g.token_ids) for g in out] == [1, 5, 9]


def test_both_engines_stop_a_looping_answer_at_the_same_token(model_dirs, prompts):
    from instructner.method.loops import ends_in_loop

    checkpoint, ct2 = model_dirs
    limit = [100] * len(prompts)
    reference = TransformersEngine(checkpoint).generate(prompts, limit, 1, return_log_probs=True)
    fast = CTranslate2Engine(ct2, compute_type="float32").generate(
        prompts, limit, 1, return_log_probs=True
    )
    assert [g.token_ids for g in fast] == [g.token_ids for g in reference]
    looping = [g for g in fast if not g.finished]
    assert looping, "the random-init model was expected to loop"
    for answer in looping:
        assert len(answer.token_ids) < 100 and ends_in_loop(answer.token_ids)
        assert not ends_in_loop(answer.token_ids[:-1])  # stopped at the first looping token
        assert len(answer.log_probs) == len(answer.token_ids)


def test_a_closed_engine_refuses_to_generate(model_dirs, prompts):
    _, ct2 = model_dirs
    engine = CTranslate2Engine(ct2, compute_type="int8")
    engine.close()
    with pytest.raises(RuntimeError, match="the CTranslate2 engine is closed"):
        engine.generate(prompts[:1], [4], 1)


def test_int8_engine_loads_and_decodes(model_dirs, prompts):
    _, ct2 = model_dirs
    engine = load_engine("ctranslate2", ct2, compute_type="int8")
    assert (engine.vocab_size, engine.decoder_start_token_id, engine.eos_token_id) == (32128, 0, 1)
    assert len(engine.generate(prompts[:1], [4], 1)) == 1


def test_engines_reject_token_ids_outside_the_vocabulary(model_dirs):
    checkpoint, ct2 = model_dirs
    for engine in (CTranslate2Engine(ct2, "float32"), TransformersEngine(checkpoint)):
        with pytest.raises(ValueError, match="token id out of range 0..32127"):
            engine.generate([[5, 40000, 1]], [3], 1)


def test_engines_reject_mismatched_batch_arguments(model_dirs):
    _, ct2 = model_dirs
    with pytest.raises(ValueError, match="got 1 inputs but 2 max_new_tokens values"):
        CTranslate2Engine(ct2, "float32").generate([[5, 1]], [3, 3], 1)


def test_load_engine_names_the_known_kinds():
    with pytest.raises(
        ValueError, match="unknown engine kind 'onnx': expected one of ctranslate2, transformers"
    ):
        load_engine("onnx", "/nowhere")


def test_ctranslate2_engine_explains_a_missing_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no CTranslate2 model in .*make engines"):
        CTranslate2Engine(tmp_path)


def test_convert_refuses_a_directory_without_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        convert_to_ctranslate2(tmp_path, tmp_path / "out")


def test_generated_answers_cut_at_the_end_token():
    from instructner.serving.engine import _cut

    assert _cut([5, 6, 1, 0, 0], 1, 10) == Generated([5, 6], True)
    assert _cut([5, 6, 7], 1, 2) == Generated([5, 6], False)


def test_a_constrained_engine_writes_only_what_the_answer_grammar_allows(model_dirs):
    from instructner.method.constrained import NerAnswerGrammar
    from instructner.modeling import load_tokenizer

    checkpoint, _ = model_dirs
    tokenizer = PromptTokenizer()
    labels = ["person", "location"]
    ner = [encode_window(tokenizer, "ner", t, labels, (), 512) for t in TEXTS]
    free = TransformersEngine(checkpoint).generate(ner, [40] * 3, 1)
    constrained = TransformersEngine(checkpoint, constrained=True).generate(
        ner, [40] * 3, 1, return_log_probs=True
    )
    hf_tokenizer = load_tokenizer()
    for text, answer in zip(TEXTS, constrained, strict=True):
        grammar = NerAnswerGrammar(hf_tokenizer, text, labels)
        for position, token in enumerate(answer.token_ids):
            assert token in grammar.allowed(answer.token_ids[:position]), (text, position)
        assert len(answer.log_probs) == len(answer.token_ids)
        assert all(lp <= 0.0 for lp in answer.log_probs)
    assert [g.token_ids for g in constrained] != [g.token_ids for g in free]


def test_a_constrained_engine_decodes_extraction_prompts_freely(model_dirs):
    checkpoint, _ = model_dirs
    prompts = [encode_window(PromptTokenizer(), "extract", TEXTS[0], (), (), 512)]
    free = TransformersEngine(checkpoint).generate(prompts, [12], 1)
    assert TransformersEngine(checkpoint, constrained=True).generate(prompts, [12], 1) == free
