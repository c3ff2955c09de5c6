"""Both places of the engine give the same results on a real tritonserver.

The CPU default (`steps: embedded`) runs the engine inside `instruction_ner` (no model call per
window); `steps: inline` (the GPU layout) calls the engine model once per window. Same
checkpoint, same engine.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tritonclient.grpc as grpcclient
from test_serving_triton import DOCUMENT, SHORT

from instructner.deploy.build import BuildResult, BuildSettings, EngineVariant, build_repository
from instructner.deploy.server import TritonServer
from instructner.serving.protos import ExtractionResult
from tests.harness import FIXTURE_LABELS, TEST_LIMITS, ner_inputs, result_to_dict, start_test_server

pytestmark = pytest.mark.integration

CASES = [
    (SHORT, "ner", FIXTURE_LABELS, ()),
    (DOCUMENT, "ner", FIXTURE_LABELS, ()),
    (DOCUMENT, "extract", (), ()),
    (DOCUMENT, "type", FIXTURE_LABELS, ("Brussels", "EU")),
]


def _serve(
    fixture_build: BuildResult, tmp_path_factory: pytest.TempPathFactory, steps: str
) -> Iterator[TritonServer]:
    """The fixture checkpoint served with ``steps`` (the engine the default uses)."""
    workdir = tmp_path_factory.mktemp(f"steps-{steps}")
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
            steps=steps,
        )
    )
    server = start_test_server(build.repository, workdir / "server")
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"tritonserver exited with {code}: {server.log_tail()}"


@pytest.fixture(scope="module")
def inline_server(
    fixture_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TritonServer]:
    """``steps: inline``: prompts and answers in the BLS, the engine model once per window."""
    yield from _serve(fixture_build, tmp_path_factory, "inline")


def _results(url: str) -> list[dict]:
    results = []
    with grpcclient.InferenceServerClient(url=url) as client:
        for text, task, labels, entities in CASES:
            inputs = ner_inputs(text, labels or None, task, list(entities) or None)
            response = client.infer("instruction_ner", inputs, client_timeout=120)
            result = ExtractionResult.FromString(response.as_numpy("RESULT")[0, 0])
            results.append(result_to_dict(result))
    return results


def _calls(server: TritonServer, models: tuple[str, ...]) -> dict[str, int]:
    admin = server.config.admin.grpc_metadata()  # statistics are an admin endpoint
    with grpcclient.InferenceServerClient(url=server.config.grpc_url) as client:
        stats = client.get_inference_statistics(headers=admin, as_json=True)["model_stats"]
    return {
        s["name"]: int(s["inference_stats"]["success"].get("count", 0))
        for s in stats
        if s["name"] in models
    }


@pytest.mark.xfail(
    reason="machine-dependent: on AVX2 CPUs (no AVX-512) the fixture model answers one window "
    "of the extract document with its NER sentence when the embedded place generates it in a "
    "batch with others (reproduced at commit 7040470 on such a CPU); the places agree on "
    "AVX-512 CPUs",
    strict=False,
)
def test_embedded_and_inline_return_the_same_results(triton_server, inline_server):
    embedded = _results(triton_server.config.grpc_url)
    assert embedded == _results(inline_server.config.grpc_url)
    assert [len(r["entities"]) > 0 for r in embedded] == [True] * len(CASES)


def test_embedded_engine_calls_no_other_model_and_inline_calls_the_engine_model(
    triton_server, inline_server
):
    before = _calls(triton_server, ("engine",))
    inline_before = _calls(inline_server, ("engine",))
    _results(triton_server.config.grpc_url)
    _results(inline_server.config.grpc_url)
    assert _calls(triton_server, ("engine",)) == before
    assert _calls(inline_server, ("engine",))["engine"] > inline_before["engine"]


def _typed_by_span(url: str, spans: list[tuple[int, int]]) -> list[tuple[str, str, int, int]]:
    import numpy as np

    words = [DOCUMENT[start:end] for start, end in spans]
    array = np.array([spans], dtype=np.int64)
    pinned = grpcclient.InferInput("ENTITY_SPANS", list(array.shape), "INT64")
    pinned.set_data_from_numpy(array)
    inputs = [*ner_inputs(DOCUMENT, FIXTURE_LABELS, "type", words), pinned]
    with grpcclient.InferenceServerClient(url=url) as client:
        response = client.infer("instruction_ner", inputs, client_timeout=120)
    result = ExtractionResult.FromString(response.as_numpy("RESULT")[0, 0])
    return [(e.text, e.label, e.start, e.end) for e in result.entities]


def test_both_places_type_the_given_span_and_not_another_occurrence(triton_server, inline_server):
    last = DOCUMENT.rindex("Brussels")
    assert DOCUMENT.index("Brussels") < last  # the word occurs earlier too
    expected = [("Brussels", "location", last, last + len("Brussels"))]
    assert _typed_by_span(triton_server.config.grpc_url, [(last, last + 8)]) == expected
    assert _typed_by_span(inline_server.config.grpc_url, [(last, last + 8)]) == expected
