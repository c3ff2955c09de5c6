"""Every snippet of README.md and client/README.md runs as written against `make serve`.

``make serve`` is started from the checkout exactly as the README says (the shipped model on
127.0.0.1:8000/8001/8002), and the Python and shell snippets run unchanged against it; the
comments that state what a call returns are checked against the same server. Each snippet is
claimed by one test (:data:`RUN_BY`); a snippet no test runs fails
:func:`test_every_readme_snippet_is_run_by_a_test`. Snippets that need another environment
run elsewhere: the client's install lines and the spaCy example in fresh virtualenvs
(``test_client_current_dependencies.py``, with the server address replaced), the TLS options
example with certificate files beside it (``tests/unit/test_client_readme_options.py``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from instructner_client import InstructNERClient

from tests.harness import REPO, SERVE_COMMAND, readme_snippets

pytestmark = pytest.mark.integration

README = REPO / "README.md"
CLIENT_README = REPO / "client" / "README.md"

# (file, heading, language) -> the test that runs it
RUN_BY = {
    (
        "README.md",
        "## The two commands",
        "bash",
    ): "test_the_two_commands_are_what_ci_and_serving_run",
    ("README.md", "## Calling it", "python"): "test_python_snippet_runs_as_written",
    ("client/README.md", "## Install", "bash"): (
        "test_client_current_dependencies.py::test_the_readme_install_lines_run_in_a_fresh_venv"
    ),
    ("client/README.md", "## Library", "python"): "test_python_snippet_runs_as_written",
    ("client/README.md", "### Many texts, long documents", "python"): (
        "test_python_snippet_runs_as_written"
    ),
    ("client/README.md", "### spaCy, pandas, tracing", "python"): (
        "test_client_current_dependencies.py::test_the_readme_adapter_example_runs_in_that_venv"
    ),
    ("client/README.md", "### Options", "python"): (
        "test_client_readme_options.py::test_the_options_example_builds_a_tls_client_from_the_files_it_names"
    ),
    ("client/README.md", "## Command line", "bash"): "test_every_client_readme_command_line_runs",
}


ALL_SNIPPETS = {**readme_snippets(README), **readme_snippets(CLIENT_README)}


def snippet(file: str, heading: str, language: str) -> str:
    return ALL_SNIPPETS[(file, heading, language)]


def test_every_readme_snippet_is_run_by_a_test():
    assert set(ALL_SNIPPETS) == set(RUN_BY)
    assert all(key[2] in ("python", "bash") for key in ALL_SNIPPETS)


def test_the_two_commands_are_what_ci_and_serving_run(make_serve: Path):
    block = snippet("README.md", "## The two commands", "bash")
    lines = [line.split("#")[0].strip() for line in block.splitlines()]
    assert lines == ["make serve", "make test"]
    # make serve: the session fixture ran that line as written, and the server answered
    assert lines[0].split() == SERVE_COMMAND
    # make test: what CI runs (.ci/run), so the whole suite is its check
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert [line for line in ci.splitlines() if line.startswith("make")] == ["make test"]


@pytest.mark.parametrize(
    "key",
    [key for key, test in RUN_BY.items() if test == "test_python_snippet_runs_as_written"],
    ids=lambda key: f"{key[0]} {key[1]}",
)
def test_python_snippet_runs_as_written(tmp_path: Path, make_serve: Path, key):
    script = tmp_path / "snippet.py"
    script.write_text(snippet(*key), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, (
        f"{done.stderr[-3000:]}\nserver log: {make_serve.read_text()[-2000:]}"
    )


def test_every_client_readme_command_line_runs(tmp_path: Path, make_serve: Path):
    block = snippet("client/README.md", "## Command line", "bash")
    commands = [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    assert len(commands) >= 8
    # the files the README's lines read: a text per line, and a document
    (tmp_path / "texts.txt").write_text("EU rejects German call .\nPeter Blackburn .\n")
    (tmp_path / "report.txt").write_text("EU rejects German call .\n\nPeter Blackburn .\n" * 3)
    bin_dir = Path(sys.executable).parent
    for command in commands:
        assert command.split()[0] in {"instructner-client", "cat"}, command
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; export PATH={bin_dir}:$PATH; {command}"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "entities.jsonl").read_text().count("\n") == 2


@pytest.fixture
def shipped(make_serve: Path) -> Iterator[InstructNERClient]:
    with InstructNERClient("localhost:8001", timeout=60.0) as client:
        yield client


def spans(entities) -> list[tuple[str, str | None, int, int]]:
    return [(e.text, e.label, e.start, e.end) for e in entities]


def test_the_readme_comments_state_what_the_calls_return(shipped: InstructNERClient):
    pl = ["person", "location"]
    text = "Angela Merkel met Emmanuel Macron in Paris on Tuesday ."
    found = spans(shipped.ner(text, labels=[*pl, "organization"]))
    assert ("Angela Merkel", "person", 0, 13) in found and ("Paris", "location", 37, 42) in found
    assert any(e[0] == "Emmanuel Macron" and e[2:] == (18, 33) for e in found)
    klopp = "Jürgen Klopp visited Paris."
    assert spans(shipped.ner(klopp, labels=pl)) == [
        ("Jürgen Klopp", "person", 0, 12),
        ("Paris", "location", 21, 26),
    ]
    assert spans(shipped.ner(klopp, labels=pl, min_score=0.8)) == [("Paris", "location", 21, 26)]
    blackburn = "Peter Blackburn lives in Paris and works for Reuters ."
    assert [(e.text, e.label) for e in shipped.extract(blackburn)] == [
        ("Peter Blackburn", None),
        ("Paris", None),
        ("Reuters", None),
    ]
    typed = shipped.type(
        "EU rejects German call .", ["EU", "German"], ["organization", "miscellaneous"]
    )
    assert spans(typed) == [("EU", "organization", 0, 2), ("German", "miscellaneous", 11, 17)]
    hilton = "Paris Hilton visited Paris"
    assert spans(shipped.type(hilton, [(21, 26)], pl)) == [("Paris", "location", 21, 26)]
    assert len(shipped.ner_batch([text, "Peter lives in Paris ."], labels=pl)) == 2


def test_the_client_readme_comments_state_what_the_calls_return(shipped: InstructNERClient):
    labels = ["person", "location", "organization"]
    merkel = "Angela Merkel visited Paris ."
    assert shipped.is_ready() is True
    assert spans(shipped.ner(merkel, labels=labels)) == [
        ("Angela Merkel", "person", 0, 13),
        ("Paris", "location", 22, 27),
    ]
    assert [e.text for e in shipped.ner(merkel, labels=labels, min_score=0.95)] == ["Paris"]
    assert [(e.text, e.label) for e in shipped.extract(merkel)] == [
        ("Angela Merkel", None),
        ("Paris", None),
    ]
    hilton = "Paris Hilton visited Paris"
    assert spans(shipped.type(hilton, [(21, 26)], labels)) == [("Paris", "location", 21, 26)]
    batch = shipped.ner_batch(["Peter lives in Paris .", "EU rejects it ."], labels=["person"])
    assert [spans(entities) for entities in batch] == [[("Peter", "person", 0, 5)], []]
    analyzed = shipped.analyze("ner", "Peter lives in Paris .", labels=["person"])
    assert analyzed.generated_text == "Peter is a person."
    assert "company" in shipped.model_info().known_words()
