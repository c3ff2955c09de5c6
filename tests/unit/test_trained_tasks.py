"""A model serves the tasks it was trained for: the record, the build value, the refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import fake_pb_utils as pb
import pytest
import yaml
from instructner_client import InvalidInputError, UnsupportedTaskError, map_error
from serving_models import model_values
from tritonclient.utils import InferenceServerException

from instructner.deploy.build import BuildSettings, EngineVariant, repository_values
from instructner.method.trained_tasks import parse_served_tasks, trained_tasks
from instructner.serving.errors import RequestError
from instructner.serving.requests import validate_request
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR

REPO = Path(__file__).resolve().parents[2]


def record(directory: Path, tasks: list[str]) -> Path:
    (directory / "training-config.yaml").write_text(yaml.safe_dump({"tasks": tasks}))
    return directory


def test_the_shipped_model_serves_all_three_tasks():
    assert trained_tasks(REPO / "models" / "default") == ("ner", "extract", "type")


def test_the_record_decides_and_a_directory_without_one_serves_every_task(tmp_path):
    assert trained_tasks(record(tmp_path, ["type", "ner"])) == ("ner", "type")
    assert trained_tasks(tmp_path / "elsewhere") == ("ner", "extract", "type")


def test_a_record_with_an_unknown_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="tasks must be some of ner, extract, type"):
        trained_tasks(record(tmp_path, ["ner", "summarize"]))


def test_served_tasks_parameter_is_parsed_and_checked():
    assert parse_served_tasks("ner, extract") == ("ner", "extract")
    with pytest.raises(ValueError, match="parameter served_tasks must name some of"):
        parse_served_tasks("ner,translate")


def test_the_build_writes_the_models_trained_tasks_into_instruction_ner(tmp_path):
    model = record(tmp_path, ["ner", "extract"])
    (model / "tokenizer.json").write_bytes((SHIPPED_TOKENIZER_DIR / "tokenizer.json").read_bytes())
    settings = BuildSettings(
        model_dir=model,
        out_dir=tmp_path / "out",
        engines=(EngineVariant("engine", "ctranslate2", "int8"),),
    )
    values = repository_values(settings, model, tmp_path / "ct2")["instruction_ner"][1]
    assert values["served_tasks"] == "ner,extract"


def test_a_task_the_model_was_not_trained_for_is_refused_naming_the_served_ones():
    with pytest.raises(RequestError) as info:
        validate_request("EU met .", "type", ["organization"], ["EU"], served=("ner", "extract"))
    assert str(info.value) == (
        "TASK: 'type' is not served by this model, which was trained for ner, extract "
        "(its model card lists what it was trained on)"
    )


def test_instruction_ner_refuses_an_unserved_task_as_invalid_arg():
    values = {**model_values("instruction_ner"), "served_tasks": "ner", "steps": "inline"}
    model = pb.load_model("instruction_ner", values, {})
    request = pb.request(TEXT=pb.strings(["EU met ."]), TASK=pb.strings(["extract"]))
    (response,) = asyncio.run(model.execute([request]))
    assert response.error().code() == pb.TritonError.INVALID_ARG
    assert response.error().message().startswith("TASK: 'extract' is not served by this model")


def test_the_client_raises_unsupported_task_error_for_that_refusal():
    raw = InferenceServerException(
        msg="TASK: 'type' is not served by this model, which was trained for ner",
        status="StatusCode.INVALID_ARGUMENT",
    )
    error = map_error(raw, target="model 'instruction_ner' at x:1")
    assert isinstance(error, UnsupportedTaskError) and isinstance(error, InvalidInputError)
    assert "trained for ner" in str(error)
