"""Generate the client's protobuf modules from the project's ``protos/instructner/v1``.

Generated code is never committed. ``setup.py`` runs this on every build of the client (so
``pip install ./client`` works from a clean checkout) and ``make`` runs it before tests.

The modules land flat in ``src/instructner_client/_proto/`` with package-relative imports,
so the client never imports the ``instructner`` core package. The descriptors keep their
original file names (``instructner/v1/...``), so the client and the server can share one
process: protobuf accepts the same file registered twice when the contents are identical.

Usage: ``python client/build_protos.py [--proto-root DIR] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PROTO_ROOT = HERE.parent / "protos"
DEFAULT_OUT = HERE / "src" / "instructner_client" / "_proto"
PROTO_PACKAGE_DIR = Path("instructner") / "v1"
RESULT_MESSAGE = "ExtractionResult"

# `from instructner.v1 import entity_pb2 as ...` -> `from . import entity_pb2 as ...`
_PROJECT_IMPORT = re.compile(r"^from instructner\.v1 import ", re.MULTILINE)
# The module name protoc bakes in becomes the classes' __module__ (used by pickle): make it
# the module's real name.
_MODULE_NAME = re.compile(r"'instructner\.v1\.\w+_pb2'")


class ProtoBuildError(RuntimeError):
    """The protos could not be found or compiled."""


def _message_module(proto_files: list[Path]) -> str:
    pattern = re.compile(rf"^\s*message\s+{RESULT_MESSAGE}\s*\{{", re.MULTILINE)
    for path in proto_files:
        if pattern.search(path.read_text(encoding="utf-8")):
            return f"{path.stem}_pb2"
    names = ", ".join(str(p) for p in proto_files)
    raise ProtoBuildError(f"no proto file defines message {RESULT_MESSAGE} (searched {names})")


def generate(proto_root: Path = DEFAULT_PROTO_ROOT, out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Compile every ``*.proto`` under ``proto_root/instructner/v1`` into ``out_dir``.

    Returns:
        The files written.

    Raises:
        ProtoBuildError: no protos, protoc failed, or no file defines ``ExtractionResult``.

    """
    from grpc_tools import protoc  # build-time dependency only

    proto_dir = proto_root / PROTO_PACKAGE_DIR
    proto_files = sorted(proto_dir.glob("*.proto"))
    if not proto_files:
        raise ProtoBuildError(f"no .proto files in {proto_dir}")
    result_module = _message_module(proto_files)
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            *(str(path.relative_to(proto_root)) for path in proto_files),
        ]
        if protoc.main(args) != 0:
            raise ProtoBuildError(f"protoc failed on {proto_dir} (see its messages above)")
        generated = sorted((Path(tmp) / PROTO_PACKAGE_DIR).glob("*_pb2.py*"))
        staging = Path(tmp) / "out"
        staging.mkdir()
        for path in generated:
            text = path.read_text(encoding="utf-8")
            text = _PROJECT_IMPORT.sub("from . import ", text)
            text = _MODULE_NAME.sub("__name__", text)
            (staging / path.name).write_text(text, encoding="utf-8")
        (staging / "__init__.py").write_text(
            '"""Generated protobuf code of the project\'s protos (by build_protos.py)."""\n\n'
            f"from .{result_module} import {RESULT_MESSAGE}\n\n"
            f'__all__ = ["{RESULT_MESSAGE}"]\n',
            encoding="utf-8",
        )
        # Replace the whole folder so that a deleted .proto leaves no stale module behind.
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(staging, out_dir)
    return sorted(out_dir.iterdir())


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-root", type=Path, default=DEFAULT_PROTO_ROOT)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    try:
        written = generate(args.proto_root, args.out)
    except ProtoBuildError as error:
        sys.stderr.write(f"build_protos: {error}\n")
        return 1
    sys.stderr.write(f"build_protos: wrote {len(written)} files to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
