"""A model adapted to a user's own types serves them: adapt, `make serve`'s build, the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from instructner_client import InstructNERClient

from instructner.deploy.build import build_repository
from instructner.deploy.server import TritonServer
from instructner.research.adapt import adapt
from tests.harness import make_serve_settings, start_test_server

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DRUGS = REPO / "tests" / "fixtures" / "adapt" / "drugs.jsonl"


@pytest.fixture(scope="module")
def adapted_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    work = tmp_path_factory.mktemp("adapted")
    model = work / "model"
    report = adapt(
        REPO / "models" / "default", DRUGS, "DRUG=drug,DOSE=dosage", model, replay=False,
        progress=False,
    )  # fmt: skip
    assert report.held_out_f1 is not None and report.held_out_f1 >= 0.8, report
    result = build_repository(make_serve_settings(model, work / "build"))
    server = start_test_server(result.repository, work / "server")
    try:
        yield server
    finally:
        code = server.stop()
    assert code == 0, server.log_tail()


def test_the_served_adapted_model_finds_the_new_types_by_their_words(adapted_server):
    text = "Reduce warfarin to 5 mg ."
    with InstructNERClient(adapted_server.config.grpc_url, timeout=60.0) as client:
        entities = client.ner(text, ["drug", "dosage"])
        info = client.model_info()
    assert [(e.text, e.label) for e in entities] == [("warfarin", "drug"), ("5 mg", "dosage")]
    assert all(text[e.start : e.end] == e.text for e in entities)
    assert info.label_words["adapted"] == ("drug", "dosage")
