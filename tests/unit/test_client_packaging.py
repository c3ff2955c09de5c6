"""The client stays thin (no core package, no torch) and compiles the protos on its own."""

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_PROTOS = REPO / "client" / "build_protos.py"


def load_build_protos():
    spec = importlib.util.spec_from_file_location("client_build_protos", BUILD_PROTOS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_importing_the_client_loads_neither_the_core_package_nor_torch():
    code = (
        "import sys, instructner_client; "
        "heavy = [m for m in ('instructner', 'torch', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/"
    )
    assert result.stdout.strip() == ""


def write_protos(root: Path, files: dict[str, str]) -> None:
    folder = root / "instructner" / "v1"
    folder.mkdir(parents=True)
    for name, body in files.items():
        (folder / name).write_text(textwrap.dedent(body))


def test_generated_modules_import_each_other_relatively(tmp_path: Path):
    write_protos(
        tmp_path / "protos",
        {
            "span.proto": """
                syntax = "proto3";
                package buildtest.v1;
                message Span { int32 start = 1; }
            """,
            "result.proto": """
                syntax = "proto3";
                package buildtest.v1;
                import "instructner/v1/span.proto";
                message ExtractionResult { repeated Span spans = 1; }
            """,
        },
    )
    out = tmp_path / "pkg" / "_proto"
    written = load_build_protos().generate(tmp_path / "protos", out)
    assert {path.name for path in written} == {
        "__init__.py",
        "result_pb2.py",
        "result_pb2.pyi",
        "span_pb2.py",
        "span_pb2.pyi",
    }
    generated = (out / "result_pb2.py").read_text()
    assert "from . import span_pb2" in generated
    assert "instructner.v1" not in generated
    assert "BuildTopDescriptorsAndMessages(DESCRIPTOR, __name__, _globals)" in generated
    # A fresh interpreter: the test protos must not meet the real ones in one descriptor pool.
    code = (
        "from pkg._proto import ExtractionResult; "
        "print(ExtractionResult.__module__, ExtractionResult(spans=[{'start': 3}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.split() == ["pkg._proto.result_pb2", "spans", "{", "start:", "3", "}"]


def test_regenerating_removes_modules_of_deleted_protos(tmp_path: Path):
    build = load_build_protos()
    out = tmp_path / "_proto"
    out.mkdir()
    (out / "stale_pb2.py").write_text("raise ImportError('stale')\n")
    write_protos(
        tmp_path / "protos",
        {"r.proto": 'syntax = "proto3";\npackage bt.v1;\nmessage ExtractionResult {}\n'},
    )
    build.generate(tmp_path / "protos", out)
    assert not (out / "stale_pb2.py").exists()


def test_protos_without_extraction_result_are_an_error(tmp_path: Path):
    build = load_build_protos()
    write_protos(
        tmp_path / "protos",
        {"other.proto": 'syntax = "proto3";\npackage bt.v1;\nmessage Other {}\n'},
    )
    with pytest.raises(
        build.ProtoBuildError, match="no proto file defines message ExtractionResult"
    ):
        build.generate(tmp_path / "protos", tmp_path / "_proto")


def test_missing_proto_folder_is_an_error(tmp_path: Path):
    build = load_build_protos()
    with pytest.raises(build.ProtoBuildError, match="no .proto files in"):
        build.generate(tmp_path / "protos", tmp_path / "_proto")


def test_client_copy_of_the_protos_matches_the_project_protos():
    from instructner_client._proto import ExtractionResult

    source = (REPO / "protos" / "instructner" / "v1" / "extraction.proto").read_text()
    for field in ExtractionResult.DESCRIPTOR.fields:
        assert f" {field.name} = {field.number};" in source
