"""The client README's options example constructs a client as written (no server needed)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.certificates import make_self_signed

README = Path(__file__).resolve().parents[2] / "client" / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def test_the_options_example_builds_a_tls_client_from_the_files_it_names(tmp_path: Path):
    code = _block_after("### Options")
    assert all(name in code for name in ('"ca.pem"', '"client.pem"', '"client.key"'))
    make_self_signed(tmp_path, "ca")
    make_self_signed(tmp_path, "client")
    script = tmp_path / "options.py"
    # the channel is lazy: constructing connects to nothing; the check reads back the settings
    script.write_text(code + "\nassert client._settings.target\n")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
