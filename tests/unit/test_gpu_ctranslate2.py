"""CTranslate2 on CUDA as a GPU engine: compute types, the built repository, CPU parity.

No GPU here: the compute-type rules are CTranslate2's own (tested as a table), the device
queries run against a stand-in of the ``ctranslate2`` module, and the CUDA repository is
served with its engine moved to the CPU (``device cpu`` in its config, nothing else changed),
which must answer exactly as the served CPU default does.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from test_gpu_pipeline_wiring import FakeTriton, extract, fake_pb_utils, get_output_tensor_by_name
from tritonclient.grpc import model_config_pb2

from instructner.deploy.build import (
    BuildSettings,
    EngineVariant,
    add_build_arguments,
    build_repository,
    settings_from_args,
)
from instructner.method.confidence import served_score_method
from instructner.serving.devices import (
    CUDA_COMPUTE_TYPES,
    check_compute_type,
    choose_cuda_compute_type,
    resolve_compute_type,
    supported_for_capability,
)
from instructner.serving.engine import CTranslate2Engine
from instructner.serving.engine_contract import engine_from_parameters
from instructner.serving.pipeline import Pipeline
from instructner.serving.protos import ExtractionResult
from instructner.serving.tokenizer import PromptTokenizer

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "default"


@pytest.mark.parametrize(
    ("capability", "auto", "supported"),
    [
        ((9, 0), "int8_bfloat16", set(CUDA_COMPUTE_TYPES)),  # H100, H200
        ((8, 0), "int8_bfloat16", set(CUDA_COMPUTE_TYPES)),  # A100
        ((7, 5), "int8_float32", {"float32", "float16", "int8_float32", "int8_float16"}),  # T4
        ((7, 0), "int8_float32", {"float32", "float16", "int8_float32", "int8_float16"}),  # V100
        ((6, 1), "int8_float32", {"float32", "int8_float32"}),  # P4, GTX 10x0
        ((6, 0), "float32", {"float32"}),  # P100: no int8
    ],
)
def test_auto_picks_by_compute_capability_as_ctranslate2_supports_it(capability, auto, supported):
    assert supported_for_capability(*capability) == supported
    assert choose_cuda_compute_type(supported_for_capability(*capability)) == auto


class FakeCT2:
    """The two device queries of the ctranslate2 module, for a machine with given GPUs."""

    def __init__(self, capabilities):
        self.capabilities = capabilities

    def get_cuda_device_count(self):
        return len(self.capabilities)

    def get_supported_compute_types(self, device, device_index=0):
        assert device == "cuda"
        return set(supported_for_capability(*self.capabilities[device_index]))


def test_auto_resolves_per_gpu_of_the_instance():
    runtime = FakeCT2([(7, 5), (9, 0)])
    assert resolve_compute_type("cuda", "auto", 0, runtime) == "int8_float32"
    assert resolve_compute_type("cuda", "auto", 1, runtime) == "int8_bfloat16"
    assert resolve_compute_type("cuda", "float16", 0, runtime) == "float16"


def test_a_type_the_gpu_cannot_run_is_refused_naming_what_it_runs():
    runs = "it runs float16, float32, int8_float16, int8_float32"
    with pytest.raises(ValueError, match=f"device 0 cannot run compute_type 'bfloat16'; {runs}"):
        resolve_compute_type("cuda", "bfloat16", 0, FakeCT2([(7, 5)]))


def test_no_cuda_device_is_an_error_that_says_where_to_look():
    where = r"\(driver, CUDA_VISIBLE_DEVICES and libcublas.so.12"
    with pytest.raises(RuntimeError, match=r"no CUDA device 0: CTranslate2 sees 0 " + where):
        resolve_compute_type("cuda", "auto", 0, FakeCT2([]))


@pytest.mark.parametrize(
    ("device", "compute_type", "message"),
    [
        (
            "cpu",
            "int8_bfloat16",
            "compute_type 'int8_bfloat16' does not run on cpu: expected one of int8, float32",
        ),
        ("cpu", "auto", "compute_type 'auto' does not run on cpu"),
        (
            "cuda",
            "int8",
            "compute_type 'int8' does not run on cuda: expected one of auto, int8_bfloat16",
        ),
        ("tpu", "float32", "unknown device 'tpu': expected one of cpu, cuda"),
    ],
)
def test_device_and_compute_type_must_go_together(device, compute_type, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_compute_type(device, compute_type)


def test_the_cpu_engine_refuses_a_gpu_compute_type_before_loading():
    with pytest.raises(ValueError, match="does not run on cpu"):
        CTranslate2Engine(SHIPPED / "ctranslate2", compute_type="bfloat16")


def test_engine_parameters_place_a_ctranslate2_engine_on_its_device(monkeypatch):
    seen = {}

    class Recording:
        def __init__(self, model_dir, **options):
            seen.update(options)

    monkeypatch.setattr("instructner.serving.engine.CTranslate2Engine", Recording)
    engine_from_parameters(
        {
            "engine_kind": "ctranslate2",
            "engine_dir": "/x",
            "compute_type": "auto",
            "device": "cuda",
            "device_index": "1",
        }
    )
    assert (seen["device"], seen["device_index"], seen["compute_type"]) == ("cuda", 1, "auto")
    engine_from_parameters({"engine_kind": "ctranslate2", "engine_dir": "/x"})
    assert (seen["device"], seen["device_index"]) == ("cpu", 0)


def _parameters(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    return {k: v.string_value for k, v in config.parameters.items()}


def _config(path: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse(path.read_text(encoding="utf-8"), model_config_pb2.ModelConfig())


@pytest.fixture(scope="module")
def cuda_build(tmp_path_factory):
    """The shipped model built as `make engines-gpu` builds it."""
    out = tmp_path_factory.mktemp("gpu-ct2")
    parser = argparse.ArgumentParser()
    add_build_arguments(parser)
    args = parser.parse_args(["--model", str(SHIPPED), "--out", str(out), "--device", "cuda"])
    return build_repository(settings_from_args(args))


def test_the_cuda_build_puts_the_engine_on_every_gpu_and_calls_it_inline(cuda_build):
    repository = cuda_build.repository
    assert sorted(p.name for p in repository.iterdir()) == ["engine", "instruction_ner"]
    engine = _config(repository / "engine" / "config.pbtxt")
    assert [(g.kind, g.count) for g in engine.instance_group] == [
        (model_config_pb2.ModelInstanceGroup.KIND_GPU, 1)
    ]
    parameters = _parameters(engine)
    assert (parameters["device"], parameters["compute_type"]) == ("cuda", "auto")
    assert parameters["engine_kind"] == "ctranslate2" and parameters["inter_threads"] == "1"
    public = _parameters(_config(repository / "instruction_ner" / "config.pbtxt"))
    assert (public["steps"], public["engine_model"]) == ("inline", "engine")
    assert public["embedded_engine_kind"] == ""


def test_a_cuda_engine_embedded_in_the_cpu_public_model_is_refused():
    settings = BuildSettings(
        model_dir=SHIPPED,
        out_dir=Path("/nonexistent"),
        engines=(EngineVariant(compute_type="auto", device="cuda"),),
        steps="embedded",
    )
    with pytest.raises(ValueError, match="steps embedded would load it inside instruction_ner"):
        settings.check()


def test_the_transformers_reference_stays_on_the_cpu():
    settings = BuildSettings(
        model_dir=SHIPPED,
        out_dir=Path("/nonexistent"),
        engines=(EngineVariant(kind="transformers", compute_type="float32", device="cuda"),),
        steps="inline",
    )
    with pytest.raises(ValueError, match="only ctranslate2 runs on cuda"):
        settings.check()


SENTENCES = [
    "Angela Merkel met Emmanuel Macron in Paris on Monday .",
    "The European Union fined Google in Brussels.",
    "Müller signed for Bayern München 🎉 after talks in São Paulo.",
    "Peter Blackburn flew from London to New York with British Airways .",
    " ".join(["Reuters reported that the IMF met in Washington ."] * 12),  # several windows
]
LABELS = ("person", "location", "organization", "miscellaneous")


def test_the_cuda_repository_answers_as_the_cpu_default_with_its_engine_on_the_cpu(
    cuda_build, monkeypatch
):
    repository = cuda_build.repository
    config_file = repository / "engine" / "config.pbtxt"
    text = config_file.read_text(encoding="utf-8")
    cpu_text = text.replace('string_value: "cuda"', 'string_value: "cpu"').replace(
        'string_value: "auto"', 'string_value: "int8"'
    )
    assert cpu_text.count('"cpu"') == 1 and cpu_text.count('"int8"') == 1
    config_file.write_text(cpu_text, encoding="utf-8")
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", fake_pb_utils())
    server = FakeTriton(repository, engine_model="none: every model is the real one")
    served = []
    for sentence in SENTENCES:
        response = extract(server, sentence, LABELS)
        assert not response.has_error(), response.error().message()
        result = get_output_tensor_by_name(response, "RESULT")
        assert result is not None
        served.append(ExtractionResult.FromString(result.as_numpy()[0, 0]))
    engine = CTranslate2Engine(SHIPPED / "ctranslate2", compute_type="int8", inter_threads=1)
    tokenizer = PromptTokenizer(SHIPPED)
    reference = Pipeline(engine, tokenizer, score_method=served_score_method(SHIPPED))
    try:
        expected = [reference.run(s, "ner", LABELS) for s in SENTENCES]
    finally:
        engine.close()

    def entities(result):
        return [(e.start, e.end, e.label, round(e.score, 4)) for e in result.entities]

    assert [entities(r) for r in served] == [entities(r) for r in expected]
    assert sum(len(r.entities) for r in served) >= 8
