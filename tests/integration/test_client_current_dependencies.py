"""The client installs beside current numpy and protobuf and talks to the pinned server.

With its spacy and pandas extras, so the adapters run against the real libraries (they cannot
join the server's venv: spaCy's thinc needs numpy 2, tritonclient 2.51 numpy 1).

A fresh virtualenv gets ``numpy>=2`` and ``protobuf>=6`` first, then ``./client``; pip must
pick a tritonclient release that fits them. The client in that venv then calls the session's
tritonserver (2.51, the server's own pins) over loopback.
"""

from __future__ import annotations

import json
import re
import subprocess
import venv
from pathlib import Path

import pytest

from instructner.deploy.server import TritonServer

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


@pytest.fixture(scope="module")
def current_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with numpy 2, protobuf 6 and the client with its spacy and pandas extras."""
    env_dir = tmp_path_factory.mktemp("current") / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "numpy>=2",
            "protobuf>=6",
            f"{REPO / 'client'}[spacy,pandas]",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return python


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


def _readme_block(heading: str) -> str:
    text = (REPO / "client" / "README.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_the_readme_adapter_example_runs_in_that_venv(
    tmp_path: Path, triton_server: TritonServer, current_python: Path
):
    python = current_python
    block = _readme_block("### spaCy, pandas, tracing")
    script = tmp_path / "adapters.py"
    script.write_text(
        "from instructner_client import InstructNERClient\n"
        f"client = InstructNERClient({triton_server.config.grpc_url!r}, timeout=60.0)\n"
        "text = 'EU officials met in Brussels on Monday .'\n"
        + block
        + "print([(e.text, e.label_) for e in doc.ents], list(frame.columns))\n"
    )
    done = subprocess.run(
        [str(python), str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the snippet asks for person and location: the fixture model's organization is dropped
    assert done.stdout.splitlines()[-1] == (
        "[('Brussels', 'location')] ['text', 'label', 'start', 'end', 'score']"
    )
