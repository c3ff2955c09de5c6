"""Build hook: generate the protobuf modules and the blocking client before packaging.

From a checkout of the project, ``../protos`` exists and is compiled on every build. From an
sdist, the generated modules are already inside the package and are used as they are. The
blocking client (``_sync.py``) is written from the asyncio client (``_async.py``) by
``build_sync.py`` on every build.
"""

import sys
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_protos import DEFAULT_OUT, DEFAULT_PROTO_ROOT, generate  # noqa: E402
from build_sync import main as build_sync  # noqa: E402

if (DEFAULT_PROTO_ROOT / "instructner" / "v1").is_dir():
    generate(DEFAULT_PROTO_ROOT, DEFAULT_OUT)
elif not (DEFAULT_OUT / "__init__.py").is_file():
    raise SystemExit(
        f"instructner-client: neither {DEFAULT_PROTO_ROOT} nor generated code in {DEFAULT_OUT}"
    )

if build_sync([]) != 0:
    raise SystemExit("instructner-client: could not write the blocking client (build_sync.py)")

setup()
