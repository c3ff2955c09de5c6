"""The client installs at both ends of its dependency ranges and talks to the pinned server.

Three fresh virtualenvs, each calling the session's tritonserver (2.51, the server's own pins)
over loopback: the newest end (``numpy>=2`` and ``protobuf>=6`` first, then ``./client`` with
its spacy and pandas extras, so pip must pick a tritonclient that fits them and the adapters
run against the real libraries, which cannot join the server's venv), the oldest ends
(:data:`OLDEST`), and an application on protobuf 5 installing with the README's
``"protobuf<6"`` constraint. The client README's install lines and its spaCy example run as
written in the newest venv (the example against ``make serve``).
"""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

import pytest

from instructner.deploy.server import TritonServer
from tests.harness import readme_snippet

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CALL = """
import json, sys
import numpy, google.protobuf, tritonclient
from importlib.metadata import version
import spacy
from instructner_client import InstructNERClient
from instructner_client.adapters import set_spacy_ents, to_dataframe
text = "EU officials met in Brussels on Monday ."
with InstructNERClient(sys.argv[1], timeout=60.0) as client:
    entities = client.ner(text, ["organization", "location"])
    spans = client.extract(text)
frame = to_dataframe(entities)
doc = set_spacy_ents(spacy.blank("en")(text), entities)
untyped = set_spacy_ents(spacy.blank("en")(text), spans)
print(json.dumps({
    "numpy": numpy.__version__,
    "protobuf": google.protobuf.__version__,
    "tritonclient": version("tritonclient"),
    "entities": [e.to_dict() for e in entities],
    "frame": {"columns": list(frame.columns), "rows": frame[["text", "label"]].values.tolist()},
    "spacy": [(e.text, e.label_, e.start_char, e.end_char) for e in doc.ents],
    "spacy_untyped": [(e.text, e.label_) for e in untyped.ents],
}))
"""


def fresh_venv(root: Path, *installs: list[str]) -> Path:
    """Create a virtualenv under ``root`` and run each pip install in turn; return its python."""
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    for packages in installs:
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"pip install {packages}: {done.stderr[-3000:]}"
    return python


@pytest.fixture(scope="module")
def current_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with numpy 2, protobuf 6 and the client with its spacy and pandas extras."""
    client = f"{REPO / 'client'}[spacy,pandas]"
    return fresh_venv(tmp_path_factory.mktemp("current"), ["numpy>=2", "protobuf>=6", client])


# The oldest ends of the client's stated ranges (client/pyproject.toml, client/README.md).
OLDEST = ["numpy==1.23.2", "protobuf==4.25.0", "grpcio==1.67.0", "tritonclient[grpc]==2.51.0"]


@pytest.fixture(scope="module")
def oldest_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the oldest numpy, protobuf, grpcio and tritonclient the client allows."""
    return fresh_venv(tmp_path_factory.mktemp("oldest"), [*OLDEST, str(REPO / "client")])


@pytest.fixture(scope="module")
def protobuf5_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An application on protobuf 5 that installs the client with the README's constraint."""
    root = tmp_path_factory.mktemp("protobuf5")
    return fresh_venv(root, ["protobuf>=5,<6"], [str(REPO / "client"), "protobuf<6"])


PLAIN_CALL = """
import json, sys
import numpy, google.protobuf, grpc
from importlib.metadata import version
from instructner_client import InstructNERClient
text = "EU officials met in Brussels on Monday ."
with InstructNERClient(sys.argv[1], timeout=60.0) as client:
    entities = client.type(text, [(20, 28)], ["organization", "location"])
print(json.dumps({
    "numpy": numpy.__version__,
    "protobuf": google.protobuf.__version__,
    "grpcio": grpc.__version__,
    "tritonclient": version("tritonclient"),
    "entities": [e.to_dict() for e in entities],
}))
"""


def _versions(python: Path, url: str, cwd: Path) -> dict:
    done = subprocess.run(
        [str(python), "-c", PLAIN_CALL, url], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_client_at_the_oldest_ends_of_its_ranges_calls_the_server(
    tmp_path: Path, triton_server: TritonServer, oldest_python: Path
):
    seen = _versions(oldest_python, triton_server.config.grpc_url, tmp_path)
    assert (seen["numpy"], seen["protobuf"], seen["grpcio"], seen["tritonclient"]) == (
        "1.23.2",
        "4.25.0",
        "1.67.0",
        "2.51.0",
    )
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in seen["entities"]] == [
        ("Brussels", "location", 20, 28)
    ]


def test_client_keeps_protobuf_5_with_the_readme_constraint_and_calls_the_server(
    tmp_path: Path, triton_server: TritonServer, protobuf5_python: Path
):
    seen = _versions(protobuf5_python, triton_server.config.grpc_url, tmp_path)
    assert seen["protobuf"].split(".")[0] == "5", seen
    assert [(e["text"], e["start"], e["end"]) for e in seen["entities"]] == [("Brussels", 20, 28)]


def test_client_installs_with_numpy_2_and_protobuf_6_and_calls_the_server(
    tmp_path: Path, triton_server: TritonServer, current_python: Path
):
    python = current_python
    result = subprocess.run(
        [str(python), "-c", CALL, triton_server.config.grpc_url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout)
    assert int(seen["numpy"].split(".")[0]) >= 2
    assert int(seen["protobuf"].split(".")[0]) >= 6
    assert [(e["text"], e["label"], e["start"], e["end"]) for e in seen["entities"]] == [
        ("EU", "organization", 0, 2),
        ("Brussels", "location", 20, 28),
    ]
    assert all(0.0 <= e["score"] <= 1.0 for e in seen["entities"]), seen
    # the adapters (extras spacy, pandas) turn the same entities into their structures
    assert seen["frame"] == {
        "columns": ["text", "label", "start", "end", "score"],
        "rows": [["EU", "organization"], ["Brussels", "location"]],
    }
    assert seen["spacy"] == [["EU", "organization", 0, 2], ["Brussels", "location", 20, 28]]
    assert all(label == "ENTITY" for _, label in seen["spacy_untyped"]), seen


def test_the_readme_adapter_example_runs_in_that_venv(
    tmp_path: Path, make_serve: Path, current_python: Path
):
    script = tmp_path / "adapters.py"
    block = readme_snippet("client/README.md", "### spaCy, pandas, tracing", "python")
    script.write_text(
        block + "print([(e.text, e.label_) for e in doc.ents], list(frame.columns))\n"
    )
    done = subprocess.run(
        [str(current_python), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # as written, against `make serve` (the shipped model)
    assert done.stdout.splitlines()[-1] == (
        "[('Angela Merkel', 'person'), ('Paris', 'location')] "
        "['text', 'label', 'start', 'end', 'score']"
    )


def test_the_readme_install_lines_run_in_a_fresh_venv(tmp_path: Path, current_python: Path):
    block = readme_snippet("client/README.md", "## Install", "bash")
    lines = [line for line in block.splitlines() if line.strip()]
    assert lines[0].startswith("pip install ./client")
    bin_dir = current_python.parent
    for line in lines:
        done = subprocess.run(
            ["bash", "-c", f"export PATH={bin_dir}:$PATH; {line}"],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO,
        )
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
