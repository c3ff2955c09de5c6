"""The pipeline's tensor wiring, checked against the generated configs of both repositories.

instruction_ner is a BLS model: its wiring (which tensor of which model feeds which input) is
in its Python code, not in an ensemble config. So the generated repositories are run here with
a fake ``triton_python_backend_utils`` and a fake Triton that checks every call against the
called model's config.pbtxt the way Triton does (declared names, data types, dims, required
inputs, max_batch_size) and checks every response against the declared outputs. The engine
model is a stand-in that follows the TensorRT-LLM backend's request rules (tensorrtllm_backend
v0.17.0 inflight_batcher_llm/src/utils.cc): a non-decoupled model takes one sequence per
request, the decoder starts from ``[pad_id]`` when ``decoder_input_ids`` is absent, and
``exclude_input_in_output`` decides whether that start token is returned.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import math
import re
import shutil
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format, text_format
from tritonclient.grpc import model_config_pb2

from instructner.deploy.build import TEMPLATES, BuildSettings, repository_values
from instructner.deploy.build_trtllm import TrtllmSettings, build_gpu_repository
from instructner.deploy.templates import fill_model
from instructner.serving.limits import Limits
from instructner.serving.protos import ExtractionResult
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR, PromptTokenizer

LIMITS = Limits(max_input_tokens=80, max_output_tokens=40)  # small: long texts need windows
KNOWN = {"John": "person", "Mary": "person", "Paris": "location", "Berlin": "location"}
NUMPY_TYPES = {
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP32": np.float32,
    "TYPE_BOOL": np.bool_,
    "TYPE_STRING": np.object_,
}


# --- fake triton_python_backend_utils -------------------------------------------------------


class TritonError(Exception):
    INVALID_ARG = 3
    INTERNAL = 13

    def __init__(self, message: str, code: int = 13) -> None:
        super().__init__(message)
        self._message, self._code = message, code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code


class Tensor:
    def __init__(self, name: str, array: Any) -> None:
        self._name, self._array = name, np.asarray(array)

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array


class InferenceResponse:
    def __init__(self, output_tensors: Any = (), error: TritonError | None = None) -> None:
        self._outputs, self._error = list(output_tensors), error

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error

    def output_tensors(self) -> list[Tensor]:
        return self._outputs


@dataclass
class Request:
    """A request as a model's execute() receives it."""

    inputs: dict[str, Tensor]
    requested: list[str]
    request_parameters: dict[str, str] = field(default_factory=dict)

    def is_cancelled(self) -> bool:
        return False

    def parameters(self) -> str:
        return json.dumps(self.request_parameters)


def get_input_tensor_by_name(request: Request, name: str) -> Tensor | None:
    return request.inputs.get(name)


def get_output_tensor_by_name(response: InferenceResponse, name: str) -> Tensor | None:
    return next((t for t in response.output_tensors() if t.name() == name), None)


class Logger:
    messages: list[str] = []

    @classmethod
    def log_error(cls, message: str) -> None:
        cls.messages.append(message)

    log_info = log_warn = log_verbose = log_error


class InferenceRequest:
    server: FakeTriton  # set by FakeTriton

    def __init__(
        self,
        model_name: str,
        inputs: list[Tensor],
        requested_output_names: list[str],
        parameters: dict[str, str] | None = None,
    ):
        self.model_name, self.inputs, self.outputs = model_name, inputs, requested_output_names
        self.request_parameters = dict(parameters or {})

    def is_cancelled(self) -> bool:
        return False

    def parameters(self) -> str:
        return json.dumps(self.request_parameters)

    async def async_exec(self) -> InferenceResponse:
        return await self.server.infer(
            self.model_name, self.inputs, self.outputs, self.request_parameters
        )


def fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    for value in (TritonError, Tensor, InferenceResponse, InferenceRequest, Logger):
        setattr(module, value.__name__, value)
    module.get_input_tensor_by_name = get_input_tensor_by_name  # type: ignore[attr-defined]
    module.get_output_tensor_by_name = get_output_tensor_by_name  # type: ignore[attr-defined]
    return module


# --- the engine stand-in ----------------------------------------------------------------------


def fake_answer(prompt: str) -> str:
    """What a trained model would answer: known names of the prompt's sentence, in order."""
    sentence = re.search(r"Sentence: (.*?) Instruction:", prompt)
    require(sentence, f"no sentence in the prompt {prompt!r}")
    found = [w for w in sentence.group(1).split() if w in KNOWN]
    return ", ".join(f"{w} is a {KNOWN[w]}" for w in found) + "." if found else "None"


class FakeEngine:
    """Greedy 'generation' under the TensorRT-LLM backend's request rules."""

    def __init__(self, parameters: dict[str, str], decoupled: bool) -> None:
        self.tokenizer = PromptTokenizer(SHIPPED_TOKENIZER_DIR)
        self.exclude_input = parameters.get("exclude_input_in_output", "True") == "True"
        self.decoupled = decoupled
        self.seen: list[dict[str, np.ndarray]] = []

    def execute(self, requests: list[Request]) -> list[InferenceResponse]:
        return [self._one(r) for r in requests]

    def _one(self, request: Request) -> InferenceResponse:
        inputs = {name: t.as_numpy() for name, t in request.inputs.items()}
        self.seen.append(inputs)
        if inputs["input_ids"].shape[0] > 1 and not self.decoupled:
            return InferenceResponse(
                error=TritonError(
                    "Batch size > 1 requires the tensorrt_llm backend to be using decoupled "
                    "transaction policy"
                )
            )
        if "request_output_len" not in inputs:
            return InferenceResponse(error=TritonError("request_output_len is not present"))
        length = int(inputs["input_lengths"].reshape(-1)[0])
        prompt = self.tokenizer.decode(inputs["input_ids"][0, :length].tolist())
        answer = self.tokenizer.encode(fake_answer(prompt))[:-1]  # without </s>
        answer = answer[: int(inputs["request_output_len"].reshape(-1)[0])]
        start = [int(inputs["pad_id"].reshape(-1)[0])] if "pad_id" in inputs else []
        tokens = answer if self.exclude_input else start + answer
        # The backend returns log-probabilities of generated tokens (zeros unless asked for).
        wanted = "return_log_probs" in inputs and bool(inputs["return_log_probs"].reshape(-1)[0])
        log_probs = np.full((1, 1, len(tokens)), -0.25 if wanted else 0.0, dtype=np.float32)
        return InferenceResponse(
            output_tensors=[
                Tensor("output_ids", np.array([[tokens]], dtype=np.int32)),
                Tensor("output_log_probs", log_probs),
                Tensor("cum_log_probs", log_probs.sum(axis=2)),
                Tensor("sequence_length", np.array([[len(tokens)]], dtype=np.int32)),
            ]
        )


# --- fake Triton ------------------------------------------------------------------------------


class WiringError(BaseException):
    """A call or response that Triton would reject; not an Exception, so the models' error
    handlers cannot turn it into an error response: it fails the test with its message."""


def require(condition: object, message: str) -> None:
    if not condition:
        raise WiringError(message)


@dataclass
class LoadedModel:
    config: model_config_pb2.ModelConfig
    instance: Any
    calls: list[dict[str, tuple[str, tuple[int, ...]]]] = field(default_factory=list)


def dtype_name(config_type: int) -> str:
    return model_config_pb2.DataType.Name(config_type)


def check_tensor(model: str, kind: str, spec: Any, array: np.ndarray, max_batch: int) -> None:
    """The shape and type check Triton applies to a request input or a response output."""
    expected = NUMPY_TYPES[dtype_name(spec.data_type)]
    require(
        array.dtype.type is expected,
        f"{model} {kind} {spec.name}: dtype {array.dtype} but config says "
        f"{dtype_name(spec.data_type)}",
    )
    require(1 <= array.shape[0] <= max_batch, f"{model} {kind} {spec.name}: batch {array.shape}")
    dims = list(spec.dims)
    shape = list(array.shape[1:])
    require(
        len(shape) == len(dims) and all(d in (-1, s) for d, s in zip(dims, shape, strict=True)),
        f"{model} {kind} {spec.name}: shape {list(array.shape)} does not fit dims {dims}",
    )


class FakeTriton:
    """Loads a filled repository's python models; the engine model is a :class:`FakeEngine`."""

    def __init__(self, repository: Path, engine_model: str) -> None:
        self.models: dict[str, LoadedModel] = {}
        InferenceRequest.server = self
        for folder in sorted(p for p in repository.iterdir() if p.is_dir()):
            config = model_config_pb2.ModelConfig()
            text_format.Parse((folder / "config.pbtxt").read_text(encoding="utf-8"), config)
            params = {k: v.string_value for k, v in config.parameters.items()}
            if folder.name == engine_model:
                instance: Any = FakeEngine(params, config.model_transaction_policy.decoupled)
            else:
                instance = self._load_python_model(folder, config)
            self.models[folder.name] = LoadedModel(config, instance)

    @staticmethod
    def _load_python_model(folder: Path, config: model_config_pb2.ModelConfig) -> Any:
        assert config.backend == "python", folder
        name = f"repo_model_{folder.parent.parent.name}_{folder.name}"
        spec = importlib.util.spec_from_file_location(name, folder / "1" / "model.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        instance = module.TritonPythonModel()
        as_dict = json_format.MessageToDict(config, preserving_proto_field_name=True)
        instance.initialize(
            {
                "model_config": json.dumps(as_dict),
                "model_name": config.name,
                "model_repository": str(folder),  # as Triton passes it: the model folder
            }
        )
        return instance

    async def infer(
        self,
        model_name: str,
        inputs: list[Tensor],
        outputs: list[str],
        parameters: dict[str, str] | None = None,
    ) -> InferenceResponse:
        require(model_name in self.models, f"call to {model_name!r}: no such model")
        model = self.models[model_name]
        config = model.config
        declared = {spec.name: spec for spec in config.input}
        given = {t.name(): t for t in inputs}
        for name, tensor in given.items():
            require(name in declared, f"{model_name} has no input {name!r}")
            check_tensor(
                model_name, "input", declared[name], tensor.as_numpy(), config.max_batch_size
            )
        missing = [n for n, spec in declared.items() if not spec.optional and n not in given]
        require(not missing, f"{model_name}: required inputs not sent: {missing}")
        declared_out = {spec.name: spec for spec in config.output}
        unknown = [n for n in outputs if n not in declared_out]
        require(not unknown, f"{model_name} declares no output {unknown}")
        model.calls.append(
            {n: (str(t.as_numpy().dtype), t.as_numpy().shape) for n, t in given.items()}
        )

        result = model.instance.execute([Request(given, list(outputs), dict(parameters or {}))])
        responses = await result if inspect.isawaitable(result) else result
        require(len(responses) == 1, f"{model_name}: {len(responses)} responses for 1 request")
        response = responses[0]
        if response.has_error():
            return response
        produced = {t.name(): t for t in response.output_tensors()}
        for name in outputs:
            require(name in produced, f"{model_name} did not produce requested output {name}")
            check_tensor(
                model_name, "output", declared_out[name], produced[name].as_numpy(),
                config.max_batch_size,
            )  # fmt: skip
        return InferenceResponse([produced[n] for n in outputs])


# --- the repositories -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repositories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    root = tmp_path_factory.mktemp("wiring")
    model_dir = root / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        json.dumps({"model_type": "t5", "decoder_start_token_id": 0, "pad_token_id": 0}),
        encoding="utf-8",
    )
    shutil.copy(SHIPPED_TOKENIZER_DIR / "tokenizer.json", model_dir / "tokenizer.json")
    cpu_repositories = {}
    for steps in ("inline",):
        cpu = root / f"cpu-{steps}" / "model_repository"
        cpu_settings = BuildSettings(
            model_dir=model_dir, out_dir=cpu.parent, limits=LIMITS, steps=steps
        )
        for name, (template, values) in repository_values(
            cpu_settings, model_dir, root / "ct2"
        ).items():
            fill_model(TEMPLATES / template, cpu / name, values)
        cpu_repositories[steps] = cpu
    gpu = build_gpu_repository(
        TrtllmSettings(model_dir=model_dir, out_dir=root / "gpu", limits=LIMITS), dry_run=True
    ).repository
    return {
        "cpu": (cpu_repositories["inline"], "engine"),
        "gpu": (gpu, "tensorrt_llm"),
    }


@pytest.fixture()
def pb_utils(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = fake_pb_utils()
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    return module


def strings(*values: str) -> Tensor:
    return np.array([[v.encode("utf-8") for v in values]], dtype=np.object_)


def extract(server: FakeTriton, text: str, labels: tuple[str, ...]) -> InferenceResponse:
    inputs = [Tensor("TEXT", strings(text)), Tensor("LABELS", strings(*labels))]
    return asyncio.run(server.infer("instruction_ner", inputs, ["RESULT", "GENERATED_TEXT"]))


@pytest.mark.parametrize("repo", ["cpu", "gpu"])
def test_every_call_of_the_pipeline_fits_the_called_models_config(repositories, pb_utils, repo):
    repository, engine = repositories[repo]
    server = FakeTriton(repository, engine)
    text = "John lives in Paris ."
    response = extract(server, text, ("person", "location"))
    assert not response.has_error(), response.error().message()
    result = ExtractionResult.FromString(
        get_output_tensor_by_name(response, "RESULT").as_numpy()[0, 0]
    )
    found = [(e.text, e.label, e.start, e.end) for e in result.entities]
    assert found == [("John", "person", 0, 4), ("Paris", "location", 14, 19)]
    assert all(text[e.start : e.end] == e.text for e in result.entities)
    # every answer token had log-probability -0.25: the engine's output_log_probs reached
    # the answer parsing aligned with the tokens
    assert [round(e.score, 5) for e in result.entities] == [round(math.exp(-0.25), 5)] * 2
    assert len(server.models[engine].calls) == 1
    assert set(server.models) == {"instruction_ner", engine}


@pytest.mark.parametrize("repo", ["cpu", "gpu"])
def test_long_text_reaches_the_engine_as_one_sequence_per_request(repositories, pb_utils, repo):
    repository, engine = repositories[repo]
    server = FakeTriton(repository, engine)
    sentence = "John met Mary in Berlin and they talked for a long while about Paris ."
    text = " ".join([sentence] * 6)
    response = extract(server, text, ("person", "location"))
    assert not response.has_error(), response.error().message()
    result = ExtractionResult.FromString(
        get_output_tensor_by_name(response, "RESULT").as_numpy()[0, 0]
    )
    assert len(result.entities) == 4 * 6
    assert all(text[e.start : e.end] == e.text for e in result.entities)
    calls = server.models[engine].calls
    assert len(calls) >= 2, "the text was meant to need several windows"
    for call in calls:
        # A non-decoupled tensorrt_llm model rejects a batch dimension > 1 within one request.
        assert call["input_ids"][1][0] == 1, call
        assert call["input_ids"][1][1] <= LIMITS.max_input_tokens
    sent = server.models[engine].instance.seen
    assert {int(s["pad_id"][0, 0]) for s in sent} == {0}  # T5 decoder start token
    assert {int(s["end_id"][0, 0]) for s in sent} == {1}  # </s>
    assert {int(s["request_output_len"][0, 0]) for s in sent} == {LIMITS.max_output_tokens}


def test_gpu_engine_returns_only_generated_tokens_to_the_answer_parser(repositories, pb_utils):
    repository, engine = repositories["gpu"]
    server = FakeTriton(repository, engine)
    assert server.models[engine].instance.exclude_input is True
    response = extract(server, "Mary flew to Berlin .", ("person", "location"))
    generated = get_output_tensor_by_name(response, "GENERATED_TEXT").as_numpy()[0, 0]
    assert generated.decode("utf-8") == "Mary is a person, Berlin is a location."
