"""The task tokenizer: reproducible, T5 special ids, byte fallback, per-word segmentation."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructner.modeling import load_tokenizer
from instructner.research.training import WordCachedEncoder
from instructner.research.vocab import build_task_tokenizer, train_sentencepiece
from instructner.serving.tokenizer import PromptTokenizer
from tests.shared_data import DATA_ROOT, needs_data

pytestmark = needs_data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_task_tokenizer(tmp_path_factory.mktemp("tok"), data_root=DATA_ROOT)


def test_training_twice_gives_the_same_tokenizer(folder, tmp_path):
    again = build_task_tokenizer(tmp_path, data_root=DATA_ROOT)
    for name in ("spiece.model", "tokenizer.json"):
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name


def test_special_ids_are_t5s_and_the_size_is_8000(folder):
    tokenizer = load_tokenizer(folder)
    assert len(tokenizer) == 8000
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    served = PromptTokenizer(folder)
    assert (served.pad_token_id, served.eos_token_id) == (0, 1)


@pytest.mark.parametrize(
    "text",
    [
        "Angela Merkel met Emmanuel Macron .",
        "naïve café 東京 😀 Ｏｐｔｉｏｎｓ：",
        "C++ (1999) , U.S.",
    ],
)
def test_every_text_round_trips_without_unknown_pieces(folder, text):
    tokenizer = load_tokenizer(folder)
    ids = tokenizer(text)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    served = PromptTokenizer(folder)
    assert served.encode(text) == ids and served.decode(ids) == text


def test_words_have_the_same_pieces_in_any_context_so_the_word_cache_is_exact(folder):
    tokenizer = load_tokenizer(folder)
    texts = ["Sentence: EU rejects German call Options: person", "German is a miscellaneous."]
    assert WordCachedEncoder(tokenizer).cached
    assert WordCachedEncoder(tokenizer).encode(texts) == tokenizer(texts)["input_ids"]


def test_a_vocabulary_too_small_for_the_byte_pieces_is_refused():
    with pytest.raises(ValueError, match="at least 512"):
        train_sentencepiece(["a b c"], 300)
