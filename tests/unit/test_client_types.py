"""The client's batch methods are typed precisely: mypy catches a wrong use of their results."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from mypy import api

SNIPPET = """
from collections.abc import Sequence

from instructner_client import AsyncInstructNERClient, Entity, Extraction, InstructNERClient
from instructner_client import InstructNERError, TypedEntity

def use(client: InstructNERClient) -> None:
    rows: list[list[TypedEntity]] = client.ner_batch(["a"], ["person"])
    found: list[Entity] = client.extract_batch(["a"])[0]
    typed: list[list[TypedEntity]] = client.type_batch(["a"], [["a"]], ["person"])
    results: list[Extraction] = client.analyze_batch("ner", ["a"], labels=["person"])
    mixed: list[list[TypedEntity] | InstructNERError] = client.ner_batch(
        ["a"], ["person"], return_exceptions=True
    )
    score: float | None = rows[0][0].score
    label: str = client.ner("a", ["person"])[0].label
    typed_label: str = client.type("a", ["a"], ["person"])[0].label
    document_label: str = client.ner_document("a", ["person"])[0].label
    as_entities: Sequence[Entity] = client.ner("a", ["person"])
    {bad}

async def use_async(client: AsyncInstructNERClient) -> None:
    rows: list[list[TypedEntity]] = await client.ner_batch(["a"], ["person"])
    label: str = (await client.ner("a", ["person"]))[0].label
    {bad_async}
"""


def mypy_errors(tmp_path: Path, bad: str = "", bad_async: str = "") -> str:
    source = tmp_path / "use_client.py"
    source.write_text(textwrap.dedent(SNIPPET).format(bad=bad, bad_async=bad_async))
    stdout, _, _ = api.run(["--strict", "--no-incremental", "--follow-imports=silent", str(source)])
    return "\n".join(line for line in stdout.splitlines() if "use_client.py" in line)


def test_correct_uses_of_the_batch_results_type_check(tmp_path):
    assert mypy_errors(tmp_path) == ""


@pytest.mark.parametrize(
    ("bad", "bad_async"),
    [
        ("x: int = client.ner_batch(['a'], ['person'])[0]", ""),
        ("y: list[Entity] = client.ner_batch(['a'], ['p'], return_exceptions=True)[0]", ""),
        ("z: Extraction = client.extract_batch(['a'])[0]", ""),
        ("", "w: int = (await client.analyze_batch('ner', ['a'], labels=['p']))[0]"),
        # extraction finds untyped spans: their label may be None
        ("s: str = client.extract('a')[0].label", ""),
        ("", "s: str = (await client.extract('a'))[0].label"),
    ],
)
def test_wrong_uses_of_the_batch_results_are_type_errors(tmp_path, bad, bad_async):
    assert "Incompatible types in assignment" in mypy_errors(tmp_path, bad, bad_async)


def test_an_unknown_task_name_is_a_type_error(tmp_path):
    errors = mypy_errors(tmp_path, "client.analyze('nerr', 'a')")
    assert 'Argument 1 to "analyze" of "InstructNERClient" has incompatible type' in errors


def test_the_client_examples_pass_mypy_strict():
    examples = sorted(
        str(p) for p in (Path(__file__).resolve().parents[2] / "client/examples").glob("*.py")
    )
    assert examples
    stdout, _, status = api.run(["--strict", "--no-incremental", *examples])
    assert status == 0, stdout
