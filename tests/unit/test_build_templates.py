from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from instructner.deploy.build import (
    TEMPLATES,
    BuildSettings,
    EngineVariant,
    repository_values,
)
from instructner.deploy.templates import TemplateError, fill_model, fill_template
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR

TRTLLM_INPUTS = {"input_ids", "input_lengths", "request_output_len", "end_id", "pad_id"}


def test_fill_template_replaces_every_key():
    assert fill_template("a: ${x} b: ${y} $$", {"x": 1, "y": "two"}) == "a: 1 b: two $"


def test_fill_template_rejects_a_missing_value_naming_the_key():
    with pytest.raises(TemplateError, match=r"^cfg: no value for y$"):
        fill_template("${x} ${y}", {"x": 1}, "cfg")


def test_fill_template_rejects_a_value_the_template_does_not_use():
    with pytest.raises(TemplateError, match="values for keys it does not use: typo"):
        fill_template("${x}", {"x": 1, "typo": 2}, "cfg")


def test_fill_template_rejects_a_malformed_placeholder():
    with pytest.raises(TemplateError, match="malformed placeholder"):
        fill_template("${x} ${not valid}", {"x": 1}, "cfg")


def test_fill_model_copies_the_model_folder_and_writes_the_filled_config(tmp_path):
    source = tmp_path / "src"
    (source / "1").mkdir(parents=True)
    (source / "1" / "model.py").write_text("# model")
    (source / "config.pbtxt").write_text('name: "${model_name}"')
    out = fill_model(source, tmp_path / "out", {"model_name": "m"})
    assert (out / "config.pbtxt").read_text() == 'name: "m"'
    assert (out / "1" / "model.py").read_text() == "# model"


def filled_configs(settings: BuildSettings) -> dict[str, model_config_pb2.ModelConfig]:
    models = repository_values(settings, SHIPPED_TOKENIZER_DIR, Path("/ct2"))
    configs = {}
    for name, (template, values) in models.items():
        path = TEMPLATES / template / "config.pbtxt"
        text = fill_template(path.read_text(encoding="utf-8"), values, str(path))
        assert "${" not in text
        configs[name] = text_format.Parse(text, model_config_pb2.ModelConfig())
    return configs


SETTINGS = BuildSettings(
    model_dir=Path("/ckpt"),
    out_dir=Path("/out"),
    engines=(EngineVariant("engine"), EngineVariant("engine_ref", "transformers", "float32")),
)


def test_every_template_fills_with_the_build_values_into_a_valid_model_config():
    configs = filled_configs(SETTINGS)
    assert sorted(configs) == [
        "engine",
        "engine_ref",
        "instruction_ner",
    ]
    for name, config in configs.items():
        assert config.name == name
        assert config.backend == "python"
        assert config.max_batch_size == SETTINGS.max_batch_size
        assert config.HasField("dynamic_batching")


def test_engine_config_keeps_the_tensorrt_llm_tensor_names_and_types():
    config = filled_configs(SETTINGS)["engine"]
    inputs = {i.name: i for i in config.input}
    assert TRTLLM_INPUTS <= set(inputs)
    assert all(inputs[n].data_type == model_config_pb2.TYPE_INT32 for n in TRTLLM_INPUTS)
    assert inputs["input_ids"].allow_ragged_batch
    assert inputs["return_log_probs"].data_type == model_config_pb2.TYPE_BOOL
    assert inputs["return_log_probs"].optional
    outputs = {o.name: (list(o.dims), o.data_type) for o in config.output}
    assert outputs == {
        "output_ids": ([-1, -1], model_config_pb2.TYPE_INT32),
        "sequence_length": ([-1], model_config_pb2.TYPE_INT32),
        "cum_log_probs": ([-1], model_config_pb2.TYPE_FP32),
        "output_log_probs": ([-1, -1], model_config_pb2.TYPE_FP32),
    }


def test_engine_variants_get_their_own_kind_and_compute_type():
    configs = filled_configs(SETTINGS)
    params = {
        name: {k: v.string_value for k, v in configs[name].parameters.items()}
        for name in ("engine", "engine_ref")
    }
    assert params["engine"]["engine_kind"] == "ctranslate2"
    assert params["engine"]["compute_type"] == "int8"
    assert params["engine"]["engine_dir"] == str(Path("/ct2").resolve())
    assert params["engine_ref"]["engine_kind"] == "transformers"
    assert params["engine_ref"]["engine_dir"] == str(SHIPPED_TOKENIZER_DIR.resolve())


def test_public_model_calls_the_configured_engine_model():
    config = filled_configs(SETTINGS)["instruction_ner"]
    params = {k: v.string_value for k, v in config.parameters.items()}
    assert params["engine_model"] == "engine"
    assert "preprocessing_model" not in params and "postprocessing_model" not in params
    assert [i.name for i in config.input] == [
        "TEXT",
        "TASK",
        "LABELS",
        "ENTITIES",
        "ENTITY_SPANS",
        "RETURN_SCORES",
        "MIN_SCORE",
    ]
    assert [o.name for o in config.output] == ["RESULT", "GENERATED_TEXT"]
    assert [i.optional for i in config.input] == [False, True, True, True, True, True, True]


def test_build_settings_reject_an_unknown_pipeline_engine():
    with pytest.raises(ValueError, match="pipeline_engine 'engine' is not one of"):
        BuildSettings(Path("/m"), Path("/o"), engines=(EngineVariant("other"),)).check()


def test_build_settings_reject_repeated_engine_names():
    with pytest.raises(ValueError, match="engine model names repeat"):
        BuildSettings(Path("/m"), Path("/o"), engines=(EngineVariant(), EngineVariant())).check()


def test_constrained_serving_is_a_transformers_engine_with_the_grammar_on(tmp_path):
    import argparse

    from instructner.deploy.build import add_build_arguments, settings_from_args

    parser = argparse.ArgumentParser()
    add_build_arguments(parser)
    settings = settings_from_args(parser.parse_args(["--constrained", "--out", str(tmp_path)]))
    (engine,) = settings.engines
    assert (engine.kind, engine.compute_type, engine.constrained) == (
        "transformers",
        "float32",
        True,
    )
    config = filled_configs(settings)["engine"]
    assert config.parameters["constrained"].string_value == "true"
    with pytest.raises(ValueError, match="only transformers decodes constrained"):
        BuildSettings(
            model_dir=tmp_path, out_dir=tmp_path, engines=(EngineVariant(constrained=True),)
        ).check()
