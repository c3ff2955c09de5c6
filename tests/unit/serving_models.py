"""Shared set-up for the test_model_* tests: model values, the gazetteer engine, routing."""

from __future__ import annotations

from pathlib import Path

import fake_pb_utils as pb

from instructner.deploy.build import BuildSettings, EngineVariant, repository_values
from instructner.serving.limits import Limits
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR, PromptTokenizer
from tests.harness import GazetteerEngine

LIMITS = Limits(max_text_chars=2000, max_input_tokens=100, max_output_tokens=40)
LABELS = ("person", "location", "organization")


def model_values(name: str) -> dict[str, object]:
    """The template values the build step writes for model ``name`` (shipped tokenizer)."""
    settings = BuildSettings(
        model_dir=Path("/nonexistent/checkpoint"),
        out_dir=Path("/nonexistent/out"),
        engines=(EngineVariant("engine", "ctranslate2", "float32"),),
        limits=LIMITS,
    )
    models = repository_values(settings, SHIPPED_TOKENIZER_DIR, Path("/nonexistent/ct2"))
    return models[name][1]


def gazetteer_patch() -> tuple[dict[str, object], list[GazetteerEngine]]:
    """An ``engine_from_parameters`` replacement returning a GazetteerEngine, and the engines
    it made (the engine model and the embedded BLS both load their engine through it)."""
    made: list[GazetteerEngine] = []

    def engine_from_parameters(parameters):
        assert parameters["engine_kind"] and parameters["engine_dir"], parameters
        made.append(GazetteerEngine(PromptTokenizer()))
        return made[-1]

    return {"engine_from_parameters": engine_from_parameters}, made


def load(name: str, **patch):
    template = "engine" if name.startswith("engine") else name
    return pb.load_model(template, model_values(name), patch)


def route_pipeline() -> list[GazetteerEngine]:
    """Route BLS calls to the engine model answering with a gazetteer engine."""
    patch, made = gazetteer_patch()
    engine = load("engine", **patch)
    pb.ROUTES["engine"] = lambda request, m=engine: m.execute([request])[0]
    return made
