"""The shipped default model, served as `make serve` builds it, answers the README's examples.

The repository is built from ``models/default`` with the shipped settings (CTranslate2 int8,
the embedded pipeline), so this checks what a user of a fresh clone gets, quantization
included: the Macron example was typed right in float32 and wrong in int8 by a candidate
model, which is why the served path is the one tested.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from instructner_client import InstructNERClient

from instructner.deploy.build import build_repository
from instructner.deploy.server import TritonServer
from tests.harness import make_serve_settings, start_test_server

pytestmark = pytest.mark.integration

MODEL = Path(__file__).resolve().parents[2] / "models" / "default"
LABELS = ["person", "location", "organization"]


@pytest.fixture(scope="module")
def shipped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """tritonserver on free loopback ports serving the shipped model with the shipped settings."""
    work = tmp_path_factory.mktemp("shipped")
    # built exactly as `make serve` builds it
    result = build_repository(make_serve_settings(MODEL, work / "build"))
    server = start_test_server(result.repository, work / "server")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def shipped_client(shipped_server: TritonServer) -> Iterator[InstructNERClient]:
    with InstructNERClient(shipped_server.config.grpc_url, timeout=60.0) as client:
        yield client


def test_shipped_model_finds_merkel_macron_and_paris_with_merkel_a_person_and_paris_a_location(
    shipped_client: InstructNERClient,
):
    text = "Angela Merkel met Emmanuel Macron in Paris on Tuesday ."
    entities = shipped_client.ner(text, labels=LABELS)
    found = {(e.text, e.start, e.end): e.label for e in entities}
    assert found[("Angela Merkel", 0, 13)] == "person"
    assert ("Emmanuel Macron", 18, 33) in found
    assert found[("Paris", 37, 42)] == "location"
    assert all(e.score is not None and 0.0 < e.score <= 1.0 for e in entities)


@pytest.mark.xfail(
    reason="a known weakness (model card): Emmanuel Macron, a name no training corpus holds, "
    "is typed as an organization by the served int8 engine on AVX2 CPUs; on AVX-512 CPUs "
    "the int8 kernels gave v12 a person",
    strict=False,
)
def test_shipped_model_types_macron_as_a_person(shipped_client: InstructNERClient):
    text = "Angela Merkel met Emmanuel Macron in Paris on Tuesday ."
    entities = shipped_client.ner(text, labels=LABELS)
    assert ("Emmanuel Macron", "person") in [(e.text, e.label) for e in entities]


def test_shipped_model_finds_person_location_and_organization_in_the_blackburn_sentence(
    shipped_client: InstructNERClient,
):
    text = "Peter Blackburn lives in Paris and works for Reuters ."
    entities = shipped_client.ner(text, labels=LABELS)
    assert [(e.text, e.label) for e in entities] == [
        ("Peter Blackburn", "person"),
        ("Paris", "location"),
        ("Reuters", "organization"),
    ]


def test_shipped_model_extracts_the_three_names_of_the_blackburn_sentence_without_labels(
    shipped_client: InstructNERClient,
):
    text = "Peter Blackburn lives in Paris and works for Reuters ."
    entities = shipped_client.extract(text)
    assert [(e.text, e.label) for e in entities] == [
        ("Peter Blackburn", None),
        ("Paris", None),
        ("Reuters", None),
    ]


# Text and label words as users write them (issue 31): punctuation attached, accented names,
# the caller's own words for the types.
def test_shipped_model_finds_an_accented_name_at_its_own_offsets(shipped_client: InstructNERClient):
    text = "Jürgen Klopp left Borussia Dortmund for Liverpool in 2015."
    entities = shipped_client.ner(text, labels=LABELS)
    assert ("Jürgen Klopp", "person", 0, 12) in [
        (e.text, e.label, e.start, e.end) for e in entities
    ]
    assert all(text[e.start : e.end] == e.text and not e.text.endswith(".") for e in entities)


def test_shipped_model_leaves_the_sentence_period_out_of_the_last_entity(
    shipped_client: InstructNERClient,
):
    text = "Angela Merkel visited Paris."
    entities = shipped_client.ner(text, labels=["person", "location"])
    assert [(e.text, e.label, e.start, e.end) for e in entities] == [
        ("Angela Merkel", "person", 0, 13),
        ("Paris", "location", 22, 27),
    ]


def test_shipped_model_answers_a_flight_query_with_the_callers_words(
    shipped_client: InstructNERClient,
):
    text = "list flights from pittsburgh to baltimore on thursday"
    entities = shipped_client.ner(text, labels=["city", "day", "airline"])
    assert [(e.text, e.label) for e in entities] == [
        ("pittsburgh", "city"),
        ("baltimore", "city"),
        ("thursday", "day"),
    ]


@pytest.mark.xfail(
    reason="a known weakness (model card): the model types Sony and Nintendo as cities and "
    "does not tell a city from a country in this sentence",
    strict=False,
)
def test_shipped_model_tells_companies_cities_and_countries_apart(
    shipped_client: InstructNERClient,
):
    text = "Sony and Nintendo unveiled new consoles in Tokyo, Japan."
    entities = shipped_client.ner(text, labels=["company", "city", "country"])
    assert [(e.text, e.label) for e in entities] == [
        ("Sony", "company"),
        ("Nintendo", "company"),
        ("Tokyo", "city"),
        ("Japan", "country"),
    ]


def test_model_info_lists_the_tasks_and_the_trained_label_words(
    shipped_client: InstructNERClient,
):
    info = shipped_client.model_info()
    assert info.tasks == ("ner", "extract", "type")
    assert info.corpora == ("conll2003", "mit_movie", "mit_restaurant", "atis")
    assert info.label_words["conll2003"] == ("person", "organization", "location", "miscellaneous")
    assert {"company", "city", "country", "day"} <= info.known_words()


HILTON = "Paris Hilton visited Paris"


def test_type_by_span_answers_for_the_second_paris_of_paris_hilton_visited_paris(
    shipped_client: InstructNERClient,
):
    by_word = shipped_client.type(HILTON, ["Paris"], labels=LABELS)
    assert [(e.start, e.end) for e in by_word] == [(0, 5)]  # a word: wherever the model places it
    (second,) = shipped_client.type(HILTON, [(21, 26)], labels=LABELS)
    assert (second.text, second.start, second.end) == ("Paris", 21, 26)
    assert second.label in LABELS and second.score is not None
    both = shipped_client.type(HILTON, [(0, 12), (21, 26)], labels=LABELS)
    assert [(e.text, e.start, e.end) for e in both] == [("Paris Hilton", 0, 12), ("Paris", 21, 26)]


def test_type_by_span_agrees_across_the_batch_document_and_async_calls(
    shipped_server: TritonServer, shipped_client: InstructNERClient
):
    from instructner_client import AsyncInstructNERClient

    spans = [(0, 12), (21, 26)]
    single = shipped_client.type(HILTON, spans, labels=LABELS)
    (batched,) = shipped_client.type_batch([HILTON], [spans], labels=LABELS)
    document = "Nothing to see here . " * 1200 + HILTON
    offset = len(document) - len(HILTON)
    shifted = [(s + offset, e + offset) for s, e in spans]
    in_document = shipped_client.type_document(document, shifted, labels=LABELS, max_chars=5000)

    async def asynchronous():
        async with AsyncInstructNERClient(shipped_server.config.grpc_url, timeout=60.0) as client:
            return await client.type(HILTON, spans, labels=LABELS)

    assert batched == single
    assert asyncio.run(asynchronous()) == single
    assert [(e.text, e.label, e.start - offset, e.end - offset) for e in in_document] == [
        (e.text, e.label, e.start, e.end) for e in single
    ]


def test_cli_span_types_the_second_paris(shipped_server: TritonServer):
    command = [
        sys.executable,
        "-m",
        "instructner_client._cli",
        "--url",
        shipped_server.config.grpc_url,
        "type",
        HILTON,
        "--labels",
        ",".join(LABELS),
        "--span",
        "21:26",
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    (entity,) = json.loads(done.stdout)["entities"]
    assert (entity["text"], entity["start"], entity["end"]) == ("Paris", 21, 26)


def test_a_span_that_does_not_hold_its_word_is_invalid_arg_naming_it(
    shipped_server: TritonServer,
):
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from tests.harness import bytes_input

    spans = grpcclient.InferInput("ENTITY_SPANS", [1, 1, 2], "INT64")
    spans.set_data_from_numpy(np.array([[[0, 5]]], dtype=np.int64))
    inputs = [
        bytes_input("TEXT", [[HILTON.encode()]]),
        bytes_input("TASK", [[b"type"]]),
        bytes_input("LABELS", [[label.encode() for label in LABELS]]),
        bytes_input("ENTITIES", [[b"Hilton"]]),
        spans,
    ]
    with grpcclient.InferenceServerClient(shipped_server.config.grpc_url) as client:
        with pytest.raises(InferenceServerException) as info:
            client.infer("instruction_ner", inputs, client_timeout=60)
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert (
        "ENTITY_SPANS: ENTITY_SPANS[0] 0:5 is 'Paris' in TEXT, but ENTITIES[0] is 'Hilton'"
        in info.value.message()
    )
