"""The README's and the client README's first Python examples run against a real server.

The examples are read from the markdown files as written; only the server address
(``localhost:8001``) is replaced by the session server's. The fixture model's answers differ
from a trained model's, so the examples are checked to run, not for their entities.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from instructner.deploy.server import TritonServer

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def first_python_block(markdown: Path, after: str) -> str:
    text = markdown.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match, f"no python block after {after!r} in {markdown}"
    return match.group(1)


@pytest.mark.parametrize(
    ("markdown", "section"),
    [(REPO / "README.md", "## Calling it"), (REPO / "client" / "README.md", "## Library")],
)
def test_the_readme_example_runs_against_the_server(
    tmp_path: Path, triton_server: TritonServer, markdown: Path, section: str
):
    code = first_python_block(markdown, section)
    assert "localhost:8001" in code
    script = tmp_path / "example.py"
    script.write_text(code.replace("localhost:8001", triton_server.config.grpc_url))
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
