"""The client README's options example constructs a client as written (no server needed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "client" / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_the_options_example_builds_a_tls_client_from_the_files_it_names(tmp_path: Path):
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    code = _block_after("### Options")
    assert all(name in code for name in ('"ca.pem"', '"client.pem"', '"client.key"'))
    for subject, key, cert in (
        ("/CN=ca", "ca.key", "ca.pem"),
        ("/CN=app", "client.key", "client.pem"),
    ):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", subject, "-keyout", key, "-out", cert],
            cwd=tmp_path, check=True, capture_output=True,
        )  # fmt: skip
    script = tmp_path / "options.py"
    # the channel is lazy: constructing connects to nothing; the check reads back the settings
    script.write_text(code + "\nassert client._settings.target\nclient.close()\n")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
