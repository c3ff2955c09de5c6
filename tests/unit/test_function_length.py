"""Functions stay short: none over 80 lines outside tests without a reason written beside it."""

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
LIMIT = 80
# the product, its tooling and the benchmark; generated code (protobuf) is not ours to shape
SOURCES = ("instructner", "bench", "client/src", "client", "scripts", "model_repository")
REASON = "# long function:"


def python_files():
    seen = set()
    for root in SOURCES:
        folder = REPO_ROOT / root
        pattern = "*.py" if root == "client" else "**/*.py"
        for path in sorted(folder.glob(pattern)):
            generated = "_pb2" in path.name or "/v1/" in str(path) or "/_proto/" in str(path)
            if path in seen or generated or "/build/" in str(path.relative_to(REPO_ROOT)):
                continue
            seen.add(path)
            yield path


def long_functions(source: str, limit: int = LIMIT) -> list[tuple[str, int, int]]:
    """Return (name, first line, length) of each function over ``limit`` lines without a
    ``# long function: <why>`` comment on the line above its ``def`` (or its decorators)."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = node.end_lineno - node.lineno + 1
        above = lines[first - 2].strip() if first >= 2 else ""
        if length > limit and not (above.startswith(REASON) and above[len(REASON) :].strip()):
            found.append((node.name, node.lineno, length))
    return found


def test_no_function_is_over_80_lines_without_a_reason_beside_it():
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{line} {name} ({length} lines)"
        for path in python_files()
        for name, line, length in long_functions(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("comment", "flagged"),
    [("", True), ("# long function:", True), ("# long function: one flat table of flags", False)],
)
def test_a_long_function_passes_only_with_a_stated_reason(comment, flagged):
    body = "\n".join(f"    x{n} = {n}" for n in range(LIMIT))
    source = f"{comment}\ndef long():\n{body}\n"
    assert bool(long_functions(source)) is flagged
