"""The import rules of pyproject.toml hold, and a forbidden import breaks them (lint-imports)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run lint-imports with the project's contracts over the packages in ``tree``."""
    environment = {**os.environ, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'client' / 'src'}"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages' Python files and pyproject.toml."""
    copy = tmp_path_factory.mktemp("tree")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results", "published")
    for package in ("instructner", "bench", "client/src/instructner_client"):
        shutil.copytree(ROOT / package, copy / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_packages_keep_every_import_rule(tree: Path):
    done = _lint_imports(tree)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        (
            "instructner/serving/results.py",
            "import instructner.deploy.build",
            "the serving runtime imports no training, research or deployment tooling",
        ),
        (
            "client/src/instructner_client/_codec.py",
            "import instructner.method.prompts",
            "the client imports none of the server's packages",
        ),
        ("bench/chaos.py", "import tests.harness", "the benchmarks never import the tests"),
        (
            "instructner/method/textview.py",
            "import torch",
            "the method layer needs no model runtime and imports no other layer",
        ),
        (
            "instructner/method/parser.py",
            "import instructner.research.metrics",
            "the method layer needs no model runtime and imports no other layer",
        ),
        (
            "instructner/research/metrics.py",
            "import instructner.deploy.build",
            "one package per job: method, serving runtime, research and deployment are layers",
        ),
        (
            "instructner/serving/windows.py",
            "import instructner.research.data",
            "the serving runtime imports no training, research or deployment tooling",
        ),
    ],
)
def test_a_forbidden_import_breaks_its_rule(tree: Path, module: str, line: str, contract: str):
    path = tree / module
    original = path.read_text(encoding="utf-8")
    path.write_text(original + f"\n{line}  # noqa\n", encoding="utf-8")
    try:
        done = _lint_imports(tree)
    finally:
        path.write_text(original, encoding="utf-8")
    assert done.returncode == 1, done.stdout[-2000:]
    assert f"{contract}" in done.stdout and "BROKEN" in done.stdout
