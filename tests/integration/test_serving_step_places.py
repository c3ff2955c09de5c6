"""The two places of the pipeline steps give the same results on a real tritonserver.

The CPU default (`steps: inline`) builds prompts and parses answers inside `instruction_ner`
(one model call per window); `steps: models` calls the preprocessing and postprocessing models
around the engine, as the TensorRT-LLM repository does. Same checkpoint, same engine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tritonclient.grpc as grpcclient
from test_serving_triton import DOCUMENT, SHORT

from instructner.deploy.build import BuildResult, BuildSettings, EngineVariant, build_repository
from instructner.deploy.server import TritonServer
from instructner.serving.protos import ExtractionResult
from instructner.serving.results import result_to_dict
from tests.harness import FIXTURE_LABELS, TEST_LIMITS, ner_inputs, start_test_server

pytestmark = pytest.mark.integration

CASES = [
    (SHORT, "ner", FIXTURE_LABELS, ()),
    (DOCUMENT, "ner", FIXTURE_LABELS, ()),
    (DOCUMENT, "extract", (), ()),
    (DOCUMENT, "type", FIXTURE_LABELS, ("Brussels", "EU")),
]


@pytest.fixture(scope="module")
def models_server(
    fixture_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """The fixture checkpoint served with ``steps: models`` (the engine the default uses)."""
    workdir = tmp_path_factory.mktemp("steps-models")
    build = build_repository(
        BuildSettings(
            model_dir=fixture_build.checkpoint,
            out_dir=workdir / "build",
            engines=(EngineVariant("engine", "ctranslate2", "float32"),),
            limits=TEST_LIMITS,
            max_batch_size=16,
            inter_threads=1,
            intra_threads=1,
            bls_instances=2,
            steps="models",
        )
    )
    server = start_test_server(build.repository, workdir / "server")
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"tritonserver exited with {code}: {server.log_tail()}"


def _results(url: str) -> list[dict]:
    results = []
    with grpcclient.InferenceServerClient(url=url) as client:
        for text, task, labels, entities in CASES:
            inputs = ner_inputs(text, labels or None, task, list(entities) or None)
            response = client.infer("instruction_ner", inputs, client_timeout=120)
            result = ExtractionResult.FromString(response.as_numpy("RESULT")[0, 0])
            results.append(result_to_dict(result))
    return results


def _step_calls(server: TritonServer) -> dict[str, int]:
    admin = server.config.admin.grpc_metadata()  # statistics are an admin endpoint
    with grpcclient.InferenceServerClient(url=server.config.grpc_url) as client:
        stats = client.get_inference_statistics(headers=admin, as_json=True)["model_stats"]
    return {
        s["name"]: int(s["inference_stats"]["success"].get("count", 0))
        for s in stats
        if s["name"] in ("preprocessing", "postprocessing")
    }


def test_inline_steps_and_step_models_return_the_same_results(triton_server, models_server):
    inline = _results(triton_server.config.grpc_url)
    models = _results(models_server.config.grpc_url)
    assert inline == models
    assert [len(r["entities"]) > 0 for r in inline] == [True] * len(CASES)


def test_inline_steps_call_no_step_model_and_step_models_do(triton_server, models_server):
    before = _step_calls(triton_server)
    _results(triton_server.config.grpc_url)
    _results(models_server.config.grpc_url)
    assert _step_calls(triton_server) == before
    calls = _step_calls(models_server)
    assert set(calls) == {"preprocessing", "postprocessing"}
    assert all(count > 0 for count in calls.values()), calls
