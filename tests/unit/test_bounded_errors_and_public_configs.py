"""Error text stays bounded whatever a caller sends; model configs name no absolute path."""

from __future__ import annotations

import json
from pathlib import Path

import fake_pb_utils as pb
from hypothesis import given
from hypothesis import strategies as st

from instructner.deploy.build import repository_relative
from instructner.serving import triton_glue
from instructner.serving.errors import MAX_MESSAGE_CHARS, RequestError, bounded_message


@given(st.text(min_size=0, max_size=5000), st.integers(min_value=0, max_value=200_000))
def test_a_bounded_message_never_exceeds_the_limit_and_says_what_was_cut(text, repeat):
    message = text + "x" * repeat
    bounded = bounded_message(message)
    assert len(bounded) <= MAX_MESSAGE_CHARS
    if len(message) <= MAX_MESSAGE_CHARS:
        assert bounded == message
    else:
        kept = MAX_MESSAGE_CHARS - 40
        assert bounded.startswith(message[:kept])
        assert bounded.endswith(f"... ({len(message) - kept} more characters)")


def test_a_request_error_quoting_a_100_kb_input_stays_under_the_grpc_metadata_limit():
    error = RequestError("L" * 100_000, "got " + "label, " * 50_000)
    assert len(str(error)) <= MAX_MESSAGE_CHARS
    assert str(error).startswith("L" * 64 + ": got label, ")


def test_an_invalid_arg_response_carries_the_bounded_message():
    pb.install()
    response = triton_glue.invalid(pb, RequestError("TEXT", "x" * 50_000))
    assert len(response.error().message()) <= MAX_MESSAGE_CHARS


def test_folder_parameters_are_written_relative_to_the_repository(tmp_path: Path):
    repository = tmp_path / "out" / "model_repository"
    values = {
        "engine_dir": tmp_path / "out" / "engines" / "ctranslate2",
        "tokenizer_dir": Path("/somewhere/models/default"),
        "embedded_engine_dir": "",
        "max_text_chars": 20000,
    }
    written = repository_relative(values, repository, tmp_path / "out" / "tokenizer")
    assert written == {
        "engine_dir": "../engines/ctranslate2",
        "tokenizer_dir": "../tokenizer",
        "embedded_engine_dir": "",
        "max_text_chars": 20000,
    }


def test_a_model_resolves_its_relative_folders_against_the_repository(tmp_path: Path):
    config = {
        "parameters": {
            "engine_dir": {"string_value": "../engines/ctranslate2"},
            "tokenizer_dir": {"string_value": "/abs/tokenizer"},
            "steps": {"string_value": "inline"},
        }
    }
    args = {
        "model_config": json.dumps(config),
        "model_repository": str(tmp_path / "repo" / "engine"),
    }
    parameters = triton_glue.model_parameters(args)
    assert parameters["engine_dir"] == str((tmp_path / "engines" / "ctranslate2").resolve())
    assert parameters["tokenizer_dir"] == "/abs/tokenizer"  # absolute stays as written
    assert parameters["steps"] == "inline"
