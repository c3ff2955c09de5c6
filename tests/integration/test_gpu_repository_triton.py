"""The generated GPU repository on a real tritonserver, TensorRT-LLM replaced by a stand-in.

TensorRT-LLM cannot run here, so the ``tensorrt_llm`` model's backend is switched to python
and served by tests/fixtures/gpu/tensorrt_llm_standin.py, which follows the backend's request
rules. Everything else is what ``make engines-trtllm`` writes: Triton itself loads and checks
the tensorrt_llm config (tensor declarations, reshape, dynamic batching, queue policy) and
the real instruction_ner BLS calls it across model boundaries.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient

from instructner.deploy.build_trtllm import TrtllmSettings, build_gpu_repository
from instructner.deploy.server import TritonServer
from instructner.serving.limits import Limits
from instructner.serving.protos import ExtractionResult
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR
from tests.harness import ner_inputs, start_test_server

pytestmark = pytest.mark.integration

STANDIN = Path(__file__).resolve().parents[1] / "fixtures" / "gpu" / "tensorrt_llm_standin.py"
LIMITS = Limits(max_input_tokens=80, max_output_tokens=40)  # long texts need several windows
LABELS = ("person", "location")


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    root = tmp_path_factory.mktemp("gpu-repo")
    model_dir = root / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(
        json.dumps({"model_type": "t5", "decoder_start_token_id": 0, "pad_token_id": 0}),
        encoding="utf-8",
    )
    # the stand-in engine speaks the shipped T5 tokenizer, which the model folder carries
    shutil.copy(SHIPPED_TOKENIZER_DIR / "tokenizer.json", model_dir / "tokenizer.json")
    settings = TrtllmSettings(model_dir=model_dir, out_dir=root / "out", limits=LIMITS)
    repository = build_gpu_repository(settings, dry_run=True).repository
    config = repository / "tensorrt_llm" / "config.pbtxt"
    text = config.read_text(encoding="utf-8")
    assert text.count('backend: "tensorrtllm"') == 1
    config.write_text(text.replace('backend: "tensorrtllm"', 'backend: "python"'), "utf-8")
    shutil.copy(STANDIN, repository / "tensorrt_llm" / "1" / "model.py")
    server = start_test_server(repository, root / "server")
    try:
        yield server
    finally:
        server.stop()


def extract(server: TritonServer, text: str) -> ExtractionResult:
    with grpcclient.InferenceServerClient(url=server.config.grpc_url) as client:
        response = client.infer(
            "instruction_ner",
            ner_inputs(text, LABELS),
            outputs=[grpcclient.InferRequestedOutput("RESULT")],
        )
    return ExtractionResult.FromString(response.as_numpy("RESULT")[0, 0])


def test_triton_loads_every_model_of_the_gpu_repository(gpu_server):
    with grpcclient.InferenceServerClient(url=gpu_server.config.grpc_url) as client:
        admin = gpu_server.config.admin.grpc_metadata()
        index = {m.name: m.state for m in client.get_model_repository_index(headers=admin).models}
    assert index == {name: "READY" for name in ("instruction_ner", "tensorrt_llm")}


def test_gpu_pipeline_returns_spans_with_offsets(gpu_server):
    text = "John lives in Paris ."
    result = extract(gpu_server, text)
    found = [(e.text, e.label, e.start, e.end) for e in result.entities]
    assert found == [("John", "person", 0, 4), ("Paris", "location", 14, 19)]


def test_long_text_is_served_in_windows_through_the_engine_model(gpu_server):
    sentence = "John met Mary in Berlin and they talked for a long while about Paris ."
    text = " ".join([sentence] * 6)
    result = extract(gpu_server, text)
    assert len(result.entities) == 4 * 6
    assert all(text[e.start : e.end] == e.text for e in result.entities)
    assert [e.label for e in result.entities[:4]] == ["person", "person", "location", "location"]
