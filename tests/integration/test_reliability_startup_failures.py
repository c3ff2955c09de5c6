"""Faults at startup: a model that cannot load stops the server with a clear message.

The launcher of ``make serve`` (``python -m instructner.deploy.server``) exits non-zero and
names the model and the cause; :class:`TritonServer` raises :class:`ServerError` with the same
summary. Each test builds its own small repository from the session's fixture checkpoint.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from instructner.deploy.build import (
    BuildResult,
    BuildSettings,
    EngineVariant,
    add_build_arguments,
    build_repository,
    settings_from_args,
)
from instructner.deploy.server import ServerConfig, ServerError, TritonServer, free_ports

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def launcher_build(checkpoint: Path, out: Path) -> tuple[list[str], BuildResult]:
    """Build exactly what the launcher would for these arguments; return the arguments too."""
    arguments = ["--model", str(checkpoint), "--out", str(out), "--compute-type", "float32"]
    parser = argparse.ArgumentParser()
    add_build_arguments(parser)
    return arguments, build_repository(settings_from_args(parser.parse_args(arguments)))


def test_launcher_exits_non_zero_naming_an_engine_that_fails_to_load(
    fixture_build: BuildResult, tmp_path: Path
):
    arguments, build = launcher_build(fixture_build.checkpoint, tmp_path / "out")
    model_bin = tmp_path / "out" / "engines" / "ctranslate2" / "model.bin"
    model_bin.write_bytes(b"not a CTranslate2 model\x00" * 64)  # a corrupt engine file
    http_port, grpc_port, metrics_port = free_ports(3)
    ports = ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    ports += ["--metrics-port", str(metrics_port), "--ready-timeout", "240"]

    launched = subprocess.run(
        [sys.executable, "-m", "instructner.deploy.server", *arguments, *ports],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )

    assert launched.returncode == 1, launched.stderr[-3000:]
    first_error = next(line for line in launched.stderr.splitlines() if "ERROR" in line)
    # tritonserver itself exits 1 or aborts (-6) after a failed load; the launcher always exits 1.
    assert re.search(r"tritonserver exited with code (1|-6) before it was ready: ", first_error)
    assert "failed to load 'engine' version 1" in first_error
    assert "RuntimeError" in first_error  # CTranslate2's own reason follows
    assert build.repository.is_dir()


def test_missing_engine_and_tokenizer_files_are_named_in_the_startup_error(
    fixture_build: BuildResult, tmp_path: Path
):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(fixture_build.checkpoint, checkpoint)
    build = build_repository(
        BuildSettings(
            model_dir=checkpoint,
            out_dir=tmp_path / "out",
            engines=(EngineVariant("engine", "ctranslate2", "float32"),),
            max_batch_size=4,
            inter_threads=1,
            intra_threads=1,
            bls_instances=1,
        )
    )
    (tmp_path / "out" / "engines" / "ctranslate2" / "model.bin").unlink()
    served_tokenizer = (tmp_path / "out" / "tokenizer").resolve()  # the build's copy
    (served_tokenizer / "tokenizer.json").unlink()
    server = TritonServer(
        ServerConfig.on_free_ports(
            repository=build.repository,
            workdir=tmp_path / "server",
        )
    )
    server.start()
    try:
        with pytest.raises(ServerError) as caught:
            server.wait_ready(240, ["instruction_ner"])
    finally:
        server.stop()
    summary = str(caught.value).split("; log:\n")[0]
    assert re.match(r"tritonserver exited with code (1|-6) before it was ready: ", summary)
    assert "failed to load 'engine' version 1" in summary
    assert "model.bin" in summary
    assert f"no tokenizer in {served_tokenizer}: tokenizer.json is missing" in summary
