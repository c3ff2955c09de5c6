"""Documents of any length: split points, offsets of the merged result, linear work."""

from __future__ import annotations

import pytest
from instructner_client import InvalidInputError, TypedEntity
from instructner_client._document import document_requests, split_document
from test_client_calls import FakeTriton, client_with
from test_reliability_linear import grows_linearly


def test_parts_cover_the_document_and_end_at_the_best_boundary():
    text = "First para has words .\n\nSecond one . Third sentence here . And more words"
    parts = split_document(text, 40)
    assert "".join(part for _, part in parts) == text
    assert all(text[offset : offset + len(part)] == part for offset, part in parts)
    assert all(len(part) <= 40 for _, part in parts)
    assert parts[0][1].endswith("\n\n")  # a blank line beats a sentence end


def test_a_part_never_ends_inside_a_word():
    text = " ".join(["word"] * 50)
    for offset, part in split_document(text, 23):
        end = offset + len(part)
        assert end == len(text) or text[end - 1].isspace()


def test_a_stretch_without_whitespace_longer_than_the_limit_is_refused():
    with pytest.raises(InvalidInputError, match="no whitespace between characters 0 and 10"):
        split_document("x" * 25, 10)


def test_a_short_text_is_one_part_and_blank_parts_are_left_out():
    assert split_document("EU met .", 100) == [(0, "EU met .")]
    assert split_document("ab" + " " * 30 + "cd", 10) == [(0, "ab" + " " * 8), (30, "  cd")]


def test_type_parts_carry_only_their_own_entities_and_unknown_entities_are_refused():
    text = "Ann met Bob .\n\nCy left ."
    offsets, requests = document_requests("type", text, ["person"], ["Ann", "Cy"], 0.0, 16)
    assert offsets == [0, 15]
    assert [r.entities for r in requests] == [("Ann",), ("Cy",)]
    with pytest.raises(InvalidInputError, match="entities\\[0\\] 'Zed' does not occur"):
        document_requests("type", text, ["person"], ["Zed"], 0.0, 16)


def test_ner_document_shifts_each_parts_offsets_into_the_document():
    text = "Alpha one two .\n\nBravo three .\n\nCharlie four ."
    with client_with(FakeTriton()) as client:
        entities = client.ner_document(text, ["person"], max_chars=20)
    assert [(e.text, e.start, e.end) for e in entities] == [
        ("Alpha", 0, 5),
        ("Bravo", 17, 22),
        ("Charlie", 32, 39),
    ]
    assert all(text[e.start : e.end] == e.text for e in entities)
    assert all(isinstance(e, TypedEntity) and e.score == 0.75 for e in entities)


def test_splitting_takes_linear_time_on_adversarial_text():
    grows_linearly(lambda n: lambda: split_document(("x" * 7 + " ") * n, 64), 2_000)


def test_a_200000_character_document_keeps_exact_offsets():
    paragraph = "Alpha met Bravo in Charlie on Monday . " * 5
    document = "\n\n".join(f"Item{i} {paragraph}" for i in range(1000))
    assert len(document) >= 200_000
    with client_with(FakeTriton()) as client:
        entities = client.extract_document(document, max_concurrency=8)
    assert len(entities) == len(split_document(document))
    assert all(document[e.start : e.end] == e.text for e in entities)
    assert [e.start for e in entities] == sorted(e.start for e in entities)


def test_the_async_client_splits_documents_too():
    import asyncio

    from instructner_client import AsyncInstructNERClient
    from test_client_calls import NO_WAIT

    document = "\n\n".join(["Alpha one two ."] * 4)

    async def scenario():
        async with AsyncInstructNERClient("localhost:1", retry=NO_WAIT) as client:
            client._triton = AsyncFake()
            return await client.extract_document(document, max_chars=20)

    class AsyncFake:
        def __init__(self):
            self.sync = FakeTriton()

        async def infer(self, *args, **kwargs):
            return self.sync.infer(*args, **kwargs)

        async def close(self):
            return None

    entities = asyncio.run(scenario())
    assert [e.start for e in entities] == [0, 17, 34, 51]
    assert all(document[e.start : e.end] == "Alpha" for e in entities)
