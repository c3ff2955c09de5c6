"""The client reads the served model's information from its configuration."""

from __future__ import annotations

import json

import pytest
from instructner_client import InstructNERError, ModelInfo
from instructner_client._cli import _render_info
from instructner_client._codec import decode_model_info

INFO = {
    "tasks": ["ner", "extract", "type"],
    "corpora": ["conll2003"],
    "label_words": {"conll2003": ["person", "organization"]},
    "also_trained_words": {"conll2003": {"organization": ["company"]}},
}


def _config(value: object) -> dict[str, object]:
    return {"config": {"parameters": {"model_info": {"string_value": value}}}}


def test_model_info_is_decoded_from_the_config_parameter():
    info = decode_model_info(_config(json.dumps(INFO)), "instruction_ner")
    assert info == ModelInfo(
        tasks=("ner", "extract", "type"),
        corpora=("conll2003",),
        label_words={"conll2003": ("person", "organization")},
        also_trained_words={"conll2003": {"organization": ("company",)}},
    )
    assert info.known_words() == {"person", "organization", "company"}


def test_a_server_without_model_info_gets_a_clear_error():
    with pytest.raises(InstructNERError, match="publishes no model information"):
        decode_model_info({"config": {"parameters": {}}}, "instruction_ner")


def test_unreadable_model_info_is_an_error_naming_the_model():
    with pytest.raises(InstructNERError, match="'instruction_ner': unreadable model information"):
        decode_model_info(_config("{not json"), "instruction_ner")


def test_info_table_lists_each_word_with_the_words_also_trained():
    info = decode_model_info(_config(json.dumps(INFO)), "instruction_ner")
    text = _render_info(info, as_json=False)
    assert "tasks: ner, extract, type" in text
    assert "  organization (also: company)" in text
    assert json.loads(_render_info(info, as_json=True))["corpora"] == ["conll2003"]
