"""`make serve` builds the benchmarked, documented default (no server)."""

from __future__ import annotations

from pathlib import Path

from instructner.deploy.build import DEFAULT_STEPS, BuildSettings, repository_values
from tests.harness import REPO_ROOT, make_serve_arguments, make_serve_settings


def test_make_serve_builds_what_the_library_defaults_to():
    model, out = Path("models/default"), Path("build/out")
    assert make_serve_settings(model, out) == BuildSettings(model_dir=model, out_dir=out)


def test_the_default_is_the_embedded_pipeline_the_benchmark_and_docs_describe():
    assert DEFAULT_STEPS == "embedded"
    settings = make_serve_settings(Path("models/default"), Path("build/out"))
    assert settings.steps == "embedded"
    assert settings.engines[0].compute_type == "int8"
    design = (REPO_ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert "(`steps: embedded`, the build default)" in design
    values = repository_values(settings, REPO_ROOT / "models" / "default", Path("/ct2"))
    assert values["instruction_ner"][1]["steps"] == "embedded"


def test_make_serve_passes_the_make_variables_through():
    arguments = make_serve_arguments(COMPUTE_TYPE="float32", GRPC_PORT="9001", HOST="0.0.0.0")
    assert arguments[arguments.index("--compute-type") + 1] == "float32"
    assert arguments[arguments.index("--grpc-port") + 1] == "9001"
    assert arguments[arguments.index("--host") + 1] == "0.0.0.0"
