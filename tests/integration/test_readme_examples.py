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
from tests.harness import TEST_LIMITS

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


def test_the_client_readme_batch_and_document_example_runs_against_the_server(
    tmp_path: Path, triton_server: TritonServer
):
    block = first_python_block(REPO / "client" / "README.md", "### Many texts, long documents")
    # the names the snippet takes as given: a client, texts, a long document, a progress bar
    prelude = (
        "from instructner_client import InstructNERClient\n"
        f"client = InstructNERClient({triton_server.config.grpc_url!r}, timeout=120)\n"
        "texts = ['EU rejects German call .', 'Peter Blackburn lives in Paris .']\n"
        # under the test server's 5,000-character limit: the default parts are 20,000
        "long_text = 'EU rejects German call to boycott British lamb .\\n\\n' * 90\n"
        "class bar:\n    update = staticmethod(lambda n: None)\n"
    )
    # the test server's text limit is TEST_LIMITS.max_text_chars, not the default 20,000
    assert "max_chars=20_000" in block
    block = block.replace("max_chars=20_000", f"max_chars={TEST_LIMITS.max_text_chars}")
    script = tmp_path / "batch_example.py"
    script.write_text(prelude + block + "client.close()\n")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]


def bash_commands(markdown: Path, after: str) -> list[str]:
    text = markdown.read_text(encoding="utf-8")
    start = text.index(after)
    match = re.search(r"```bash\n(.*?)```", text[start:], re.S)
    assert match, f"no bash block after {after!r} in {markdown}"
    return [line for line in match.group(1).replace("\\\n", " ").splitlines() if line.strip()]


def test_every_client_readme_command_line_runs_against_the_server(
    tmp_path: Path, triton_server: TritonServer
):
    commands = bash_commands(REPO / "client" / "README.md", "## Command line")
    assert len(commands) >= 5
    (tmp_path / "texts.txt").write_text("EU rejects German call .\nPeter Blackburn .\n")
    # the document the README sends with --file
    (tmp_path / "report.txt").write_text("EU rejects German call .\n\nPeter Blackburn .\n" * 3)
    bin_dir = Path(sys.executable).parent
    for command in commands:
        assert command.split()[0] in {"instructner-client", "cat"}, command
        line = f"{command} --url {triton_server.config.grpc_url}"
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; export PATH={bin_dir}:$PATH; {line}"],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "entities.jsonl").read_text().count("\n") == 2
