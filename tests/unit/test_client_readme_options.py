"""The client README's options example constructs a client as written (no server needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.certificates import make_self_signed
from tests.harness import readme_snippet


def test_the_options_example_builds_a_tls_client_from_the_files_it_names(tmp_path: Path):
    code = readme_snippet("client/README.md", "### Options", "python")
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
