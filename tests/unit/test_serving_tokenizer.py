import pytest
from transformers import AutoTokenizer

from instructner.serving.errors import RequestError
from instructner.serving.tokenizer import (
    SHIPPED_TOKENIZER_DIR,
    PromptTokenizer,
    encode_window,
    tokenizer_dir_for,
)

SAMPLES = [
    "EU rejects German call to boycott British lamb .",
    "Ünïcödé délégués  met\tin ß ﬁ “quotes” ( 1999 )",
    "C++ , U.S. and 3.5 % ; x .",
    "  leading and trailing  ",
]


@pytest.fixture(scope="module")
def tokenizers():
    reference = AutoTokenizer.from_pretrained(str(SHIPPED_TOKENIZER_DIR), local_files_only=True)
    return PromptTokenizer(), reference


@pytest.mark.parametrize("text", SAMPLES)
def test_prompt_tokenizer_encodes_like_the_transformers_tokenizer(tokenizers, text):
    ours, reference = tokenizers
    assert ours.encode(text) == reference(text).input_ids


@pytest.mark.parametrize("text", SAMPLES)
def test_prompt_tokenizer_decodes_without_cleaning_up_spaces(tokenizers, text):
    ours, reference = tokenizers
    ids = reference(text).input_ids
    expected = reference.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert ours.decode(ids) == expected


def test_prompt_tokenizer_keeps_the_space_before_a_period(tokenizers):
    ours, _ = tokenizers
    assert ours.decode(ours.encode("lamb .")) == "lamb ."


def test_tokenizer_dir_for_requires_the_checkpoints_own_tokenizer(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no tokenizer.json: a model directory"):
        tokenizer_dir_for(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    assert tokenizer_dir_for(tmp_path) == tmp_path


def test_prompt_tokenizer_reports_a_missing_tokenizer_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json is missing"):
        PromptTokenizer(tmp_path)


def test_encode_window_rejects_a_prompt_over_the_engine_limit_with_both_counts(tokenizers):
    ours, _ = tokenizers
    with pytest.raises(
        RequestError, match=r"^TEXT: the prompt is \d+ tokens, over the engine's limit of 20"
    ):
        encode_window(ours, "ner", SAMPLES[0], ("person",), (), 20)


def test_encode_window_ends_with_the_end_token(tokenizers):
    ours, _ = tokenizers
    ids = encode_window(ours, "extract", SAMPLES[0], (), (), 512)
    assert ids[-1] == ours.eos_token_id


def test_encoding_a_text_again_gives_the_same_ids_in_a_list_of_its_own(tokenizers):
    ours, reference = tokenizers
    first = ours.encode(SAMPLES[0])
    first.append(-1)  # a caller changing its list must not change the next answer
    assert ours.encode(SAMPLES[0]) == reference(SAMPLES[0]).input_ids


def test_encoding_alternating_texts_gives_each_its_own_ids(tokenizers):
    ours, reference = tokenizers
    for text in [SAMPLES[0], SAMPLES[2], SAMPLES[0], SAMPLES[0], SAMPLES[2]]:
        assert ours.encode(text) == reference(text).input_ids
