"""Static checks of the GPU build (make engines-trtllm): commands, filled configs, the contract.

Nothing here runs TensorRT: the commands are generated and asserted, the configs are parsed
with tritonclient's ModelConfig protobuf and compared with the CPU repository and with the
pinned upstream template (TensorRT-LLM 1.2.x triton_backend; its keys are copied below as data).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import types
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from instructner.deploy import build_trtllm
from instructner.deploy.build import (
    TEMPLATES,
    BuildSettings,
    copy_serving_tokenizer,
    repository_relative,
    repository_values,
)
from instructner.deploy.build_trtllm import (
    PIN,
    TrtllmSettings,
    build_commands,
    build_gpu_repository,
    cross_kv_fraction,
    is_current,
    tensorrt_llm_values,
)
from instructner.deploy.templates import fill_model, template_keys
from instructner.serving.limits import DEFAULT_LIMITS, Limits
from instructner.serving.tokenizer import SHIPPED_TOKENIZER_DIR

TRTLLM_TEMPLATE = build_trtllm.TRTLLM_TEMPLATES / "tensorrt_llm" / "config.pbtxt"

# Placeholders of TensorRT-LLM triton_backend/all_models/inflight_batcher_llm/tensorrt_llm/
# config.pbtxt, the 1.2.x layout (newest stored copy, commit 0c8de69a; v0.17.0's keys plus
# prompt_embedding_table_data_type, num_nodes, lora_prefetch_dir, the lookahead sizes,
# tokenizer_dir and the guided-decoding keys).
UPSTREAM_TEMPLATE_KEYS = {
    "batch_scheduler_policy", "batching_strategy", "cancellation_check_period_ms",
    "cross_kv_cache_fraction", "cuda_graph_cache_size", "cuda_graph_mode", "decoding_mode",
    "decoupled_mode", "eagle_choices", "enable_chunked_context", "enable_context_fmha_fp32_acc",
    "enable_kv_cache_reuse", "enable_trt_overlap", "encoder_engine_dir",
    "encoder_input_features_data_type", "engine_dir", "exclude_input_in_output",
    "gpu_device_ids", "gpu_weights_percent", "guided_decoding_backend",
    "iter_stats_max_iterations", "kv_cache_free_gpu_mem_fraction", "kv_cache_host_memory_bytes",
    "kv_cache_onboard_blocks", "logits_datatype", "lookahead_ngram_size",
    "lookahead_verification_set_size", "lookahead_window_size",
    "lora_cache_gpu_memory_fraction", "lora_cache_host_memory_bytes",
    "lora_cache_max_adapter_size", "lora_cache_optimal_adapter_size", "lora_prefetch_dir",
    "max_attention_window_size", "max_beam_width", "max_queue_delay_microseconds",
    "max_queue_size", "max_tokens_in_paged_kv_cache", "medusa_choices", "multi_block_mode",
    "normalize_log_probs", "num_nodes", "participant_ids", "prompt_embedding_table_data_type",
    "request_stats_max_iterations", "sink_token_length", "speculative_decoding_fast_logits",
    "stats_check_period_ms", "tokenizer_dir", "triton_backend", "triton_max_batch_size",
    "xgrammar_tokenizer_info_path",
}  # fmt: skip
# Backend parameter keys of the same file.
UPSTREAM_PARAMETER_KEYS = {
    "max_beam_width", "FORCE_CPU_ONLY_INPUT_TENSORS", "gpt_model_type", "gpt_model_path",
    "encoder_model_path", "max_tokens_in_paged_kv_cache", "max_attention_window_size",
    "sink_token_length", "batch_scheduler_policy", "kv_cache_free_gpu_mem_fraction",
    "cross_kv_cache_fraction", "kv_cache_host_memory_bytes", "kv_cache_onboard_blocks",
    "enable_trt_overlap", "exclude_input_in_output", "cancellation_check_period_ms",
    "stats_check_period_ms", "iter_stats_max_iterations", "request_stats_max_iterations",
    "enable_kv_cache_reuse", "normalize_log_probs", "enable_chunked_context", "gpu_device_ids",
    "participant_ids", "num_nodes", "lora_cache_optimal_adapter_size",
    "lora_cache_max_adapter_size", "lora_cache_gpu_memory_fraction",
    "lora_cache_host_memory_bytes", "lora_prefetch_dir", "decoding_mode",
    "executor_worker_path", "lookahead_window_size", "lookahead_ngram_size",
    "lookahead_verification_set_size", "medusa_choices", "eagle_choices", "gpu_weights_percent",
    "enable_context_fmha_fp32_acc", "multi_block_mode", "cuda_graph_mode",
    "cuda_graph_cache_size", "speculative_decoding_fast_logits", "tokenizer_dir",
    "guided_decoding_backend", "xgrammar_tokenizer_info_path",
}  # fmt: skip
# tensorrtllm_backend docs/encoder_decoder.md fill values for the enc-dec tensorrt_llm model.
UPSTREAM_ENC_DEC_FILL = {
    "triton_backend": "tensorrtllm",
    "decoupled_mode": "False",
    "kv_cache_free_gpu_mem_fraction": "0.8",
    "cross_kv_cache_fraction": "0.5",  # upstream's example; ours is derived (see below)
    "exclude_input_in_output": "True",
    "enable_kv_cache_reuse": "False",
    "batching_strategy": "inflight_fused_batching",
    "max_queue_delay_microseconds": "0",
    "enable_chunked_context": "False",
    "max_queue_size": "0",
    "logits_datatype": "TYPE_FP32",
}
# The upstream template's tensors (name: data_type, dims, reshape, optional) that ours declares.
I32, BOOL, FP32 = "TYPE_INT32", "TYPE_BOOL", "TYPE_FP32"
UPSTREAM_INPUTS = {
    "input_ids": (I32, [-1], None, True),
    "input_lengths": (I32, [1], [], False),
    "request_output_len": (I32, [1], [], False),
    "decoder_input_ids": (I32, [-1], None, True),
    "decoder_input_lengths": (I32, [1], [], True),
    "end_id": (I32, [1], [], True),
    "pad_id": (I32, [1], [], True),
    "beam_width": (I32, [1], [], True),
    "exclude_input_in_output": (BOOL, [1], [], True),
    "return_log_probs": (BOOL, [1], [], True),
    "streaming": (BOOL, [1], [], True),
}
UPSTREAM_OUTPUTS = {
    "output_ids": (I32, [-1, -1]),
    "sequence_length": (I32, [-1]),
    "cum_log_probs": (FP32, [-1]),
    "output_log_probs": (FP32, [-1, -1]),
    "context_logits": (FP32, [-1, -1]),
    "generation_logits": (FP32, [-1, -1, -1]),
}
# What instruction_ner sends to and reads from the engine model (model_repository/
# instruction_ner/1/model.py).
ENGINE_INPUTS_SENT = (
    "input_ids",
    "input_lengths",
    "request_output_len",
    "end_id",
    "pad_id",
    "return_log_probs",
)
ENGINE_OUTPUTS_READ = ("output_ids", "sequence_length", "output_log_probs", "cum_log_probs")


def write_t5_config(directory: Path, **overrides: object) -> Path:
    """A checkpoint folder holding a T5 config.json and its tokenizer (enough for a dry run)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = {"model_type": "t5", "decoder_start_token_id": 0, "pad_token_id": 0, **overrides}
    (directory / "config.json").write_text(json.dumps(config), encoding="utf-8")
    shutil.copy(SHIPPED_TOKENIZER_DIR / "tokenizer.json", directory / "tokenizer.json")
    return directory


def parse_config(path: Path) -> model_config_pb2.ModelConfig:
    config = model_config_pb2.ModelConfig()
    text_format.Parse(path.read_text(encoding="utf-8"), config)
    return config


def parameters(config: model_config_pb2.ModelConfig) -> dict[str, str]:
    return {key: value.string_value for key, value in config.parameters.items()}


def fill_cpu_repository(model_dir: Path, out: Path) -> Path:
    """The CPU repository exactly as `make engines` fills it (without converting the model)."""
    repository = out / "model_repository"
    settings = BuildSettings(model_dir=model_dir, out_dir=out)
    tokenizer = copy_serving_tokenizer(model_dir, out)
    for name, (template, values) in repository_values(settings, model_dir, out / "ct2").items():
        filled = repository_relative(values, repository, tokenizer)
        fill_model(TEMPLATES / template, repository / name, filled)
    return repository


@pytest.fixture(scope="module")
def repositories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("repos")
    model_dir = write_t5_config(root / "model")
    gpu = build_gpu_repository(
        TrtllmSettings(model_dir=model_dir, out_dir=root / "gpu"), dry_run=True
    )
    return {"cpu": fill_cpu_repository(model_dir, root / "cpu"), "gpu": gpu.repository}


def all_configs(repositories: dict[str, Path]) -> list[Path]:
    return sorted(p for repo in repositories.values() for p in repo.glob("*/config.pbtxt"))


def command_flags(argv: tuple[str, ...]) -> dict[str, str]:
    """``--flag value`` pairs of a command line (every flag here takes one value)."""
    flags = [i for i, token in enumerate(argv) if token.startswith("--")]
    assert all(not argv[i + 1].startswith("--") for i in flags), argv
    names = [argv[i] for i in flags]
    assert len(set(names)) == len(names), f"a flag repeats in {argv}"
    return {argv[i]: argv[i + 1] for i in flags}


def commands(settings: TrtllmSettings | None = None) -> dict[str, dict[str, str]]:
    settings = settings or TrtllmSettings(model_dir=Path("m"), out_dir=Path("/o"))
    convert, encoder, decoder = build_commands(settings, Path("/ckpt/t5"))
    assert encoder.argv[0] == decoder.argv[0] == "trtllm-build"
    assert convert.argv[:2] == ("python3", str(settings.convert_script))
    return {
        "convert": command_flags(convert.argv[2:]),
        "encoder": command_flags(encoder.argv[1:]),
        "decoder": command_flags(decoder.argv[1:]),
    }


# --- generated configs -------------------------------------------------------------------


def test_every_generated_config_parses_into_triton_model_config(repositories):
    configs = all_configs(repositories)
    assert len(configs) == 4  # instruction_ner and the engine model in each repository
    for path in configs:
        config = parse_config(path)
        assert config.name == path.parent.name, path
        assert config.max_batch_size > 0, path
        assert (path.parent / "1").is_dir(), f"{path.parent} has no version folder 1/"


def test_no_placeholder_is_left_in_any_generated_file(repositories):
    for repo in repositories.values():
        for path in repo.rglob("*"):
            if path.is_file() and path.suffix in (".pbtxt", ".py"):
                assert not re.search(r"\$\{\w*\}?", path.read_text(encoding="utf-8")), path


def test_gpu_repository_differs_from_cpu_only_in_engine_model_and_step_place(repositories):
    cpu, gpu = repositories["cpu"], repositories["gpu"]
    cpu_models = {p.name for p in cpu.iterdir()}
    gpu_models = {p.name for p in gpu.iterdir()}
    assert cpu_models - gpu_models == {"engine"}
    assert gpu_models - cpu_models == {"tensorrt_llm"}
    assert (cpu / "instruction_ner/1/model.py").read_bytes() == (
        gpu / "instruction_ner/1/model.py"
    ).read_bytes()
    cpu_bls = parse_config(cpu / "instruction_ner/config.pbtxt")
    gpu_bls = parse_config(gpu / "instruction_ner/config.pbtxt")
    assert parameters(cpu_bls)["engine_model"] == "engine"
    assert parameters(gpu_bls)["engine_model"] == "tensorrt_llm"
    # CPU: the engine embedded in the BLS; GPU: one call to TensorRT-LLM per window
    assert (parameters(cpu_bls)["steps"], parameters(gpu_bls)["steps"]) == ("embedded", "inline")
    embedded = {k: v for k, v in parameters(cpu_bls).items() if k.startswith("embedded_")}
    assert embedded["embedded_engine_kind"] == "ctranslate2"
    assert all(parameters(gpu_bls)[k] == "" for k in embedded)
    # the embedded BLS is the engine: its instances and batching delay are the engine's
    assert cpu_bls.instance_group[0].count == 2
    gpu_bls.parameters["engine_model"].string_value = "engine"
    gpu_bls.parameters["steps"].string_value = "embedded"
    for key, value in embedded.items():
        gpu_bls.parameters[key].string_value = value
    gpu_bls.instance_group[0].count = cpu_bls.instance_group[0].count
    gpu_bls.dynamic_batching.max_queue_delay_microseconds = (
        cpu_bls.dynamic_batching.max_queue_delay_microseconds
    )
    assert gpu_bls == cpu_bls


def test_gpu_engine_keeps_the_tensor_names_types_and_dims_of_the_cpu_engine(repositories):
    cpu = parse_config(repositories["cpu"] / "engine/config.pbtxt")
    gpu = parse_config(repositories["gpu"] / "tensorrt_llm/config.pbtxt")
    cpu_inputs = {t.name: t for t in cpu.input}
    gpu_inputs = {t.name: t for t in gpu.input}
    for name in ENGINE_INPUTS_SENT:
        assert gpu_inputs[name].data_type == cpu_inputs[name].data_type, name
        assert list(gpu_inputs[name].dims) == list(cpu_inputs[name].dims), name
    cpu_outputs = {t.name: t for t in cpu.output}
    gpu_outputs = {t.name: t for t in gpu.output}
    for name in ENGINE_OUTPUTS_READ:
        assert gpu_outputs[name].data_type == cpu_outputs[name].data_type, name
        assert list(gpu_outputs[name].dims) == list(cpu_outputs[name].dims), name


def test_tensorrt_llm_config_holds_the_encoder_decoder_parameters(repositories):
    config = parse_config(repositories["gpu"] / "tensorrt_llm/config.pbtxt")
    params = parameters(config)
    engines = repositories["gpu"].parent / "engines"
    assert config.backend == "tensorrtllm"
    assert params["gpt_model_type"] == "inflight_fused_batching"
    assert params["gpt_model_path"] == str(engines / "decoder")
    assert params["encoder_model_path"] == str(engines / "encoder")
    assert 0 < float(params["cross_kv_cache_fraction"]) < 1
    assert 0 < float(params["kv_cache_free_gpu_mem_fraction"]) <= 1
    assert params["enable_kv_cache_reuse"] == "False"
    assert params["enable_chunked_context"] == "False"
    assert params["exclude_input_in_output"] == "True"
    assert params["max_beam_width"] == "1"
    assert params["batch_scheduler_policy"] in ("guaranteed_no_evict", "max_utilization")
    assert config.model_transaction_policy.decoupled is False
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (1, model_config_pb2.ModelInstanceGroup.KIND_CPU)
    ]
    assert set(params) <= UPSTREAM_PARAMETER_KEYS


def test_tensorrt_llm_template_uses_the_pinned_upstream_keys_and_enc_dec_values():
    keys = template_keys(TRTLLM_TEMPLATE.read_text(encoding="utf-8"))
    assert keys - {"model_name"} <= UPSTREAM_TEMPLATE_KEYS
    values = tensorrt_llm_values(TrtllmSettings(model_dir=Path("m"), out_dir=Path("o")))
    assert set(values) == keys
    for key, documented in UPSTREAM_ENC_DEC_FILL.items():
        if key == "cross_kv_cache_fraction":  # a deliberate difference: fitted to the limits
            assert values[key] == cross_kv_fraction(DEFAULT_LIMITS) != float(documented)
            continue
        assert str(values[key]) == documented, key


def test_tensorrt_llm_tensors_match_the_pinned_upstream_template(repositories):
    config = parse_config(repositories["gpu"] / "tensorrt_llm/config.pbtxt")
    inputs = {
        t.name: (
            model_config_pb2.DataType.Name(t.data_type),
            list(t.dims),
            list(t.reshape.shape) if t.HasField("reshape") else None,
            t.optional,
        )
        for t in config.input
    }
    assert inputs == UPSTREAM_INPUTS
    outputs = {
        t.name: (model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in config.output
    }
    assert outputs == UPSTREAM_OUTPUTS
    assert all(t.allow_ragged_batch for t in config.input if t.name.endswith("input_ids"))


# --- build commands ----------------------------------------------------------------------


def test_convert_command_converts_a_t5_in_bfloat16_by_default():
    convert = commands()["convert"]
    assert convert["--model_type"] == "t5"
    assert convert["--dtype"] == "bfloat16"
    assert convert["--model_dir"] == "/ckpt/t5"
    assert convert["--output_dir"] == "/o/checkpoint"
    assert (convert["--tp_size"], convert["--pp_size"]) == ("1", "1")


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_no_command_uses_float16_and_plugins_follow_the_dtype(dtype):
    built = commands(TrtllmSettings(model_dir=Path("m"), out_dir=Path("/o"), dtype=dtype))
    assert built["convert"]["--dtype"] == dtype
    for part in ("encoder", "decoder"):
        for plugin in ("--gemm_plugin", "--bert_attention_plugin", "--gpt_attention_plugin"):
            assert built[part][plugin] == dtype, (part, plugin)
    assert "float16" not in {v for flags in built.values() for v in flags.values()}


def test_float16_is_refused_because_t5_overflows(tmp_path):
    settings = TrtllmSettings(model_dir=tmp_path, out_dir=tmp_path, dtype="float16")
    with pytest.raises(ValueError, match="float16 is refused: T5 overflows"):
        build_gpu_repository(settings, dry_run=True)


def test_both_engines_disable_context_fmha_and_keep_greedy_ifb_flags():
    built = commands()
    for part in ("encoder", "decoder"):
        flags = built[part]
        assert flags["--context_fmha"] == "disable", part
        assert flags["--remove_input_padding"] == "enable", part
        assert flags["--max_beam_width"] == "1", part
        assert flags["--moe_plugin"] == "disable", part
        assert flags["--max_batch_size"] == "64", part


def test_encoder_has_no_kv_cache_and_decoder_a_paged_one():
    built = commands()
    assert built["encoder"]["--kv_cache_type"] == "disabled"
    assert built["decoder"]["--kv_cache_type"] == "paged"
    assert "--paged_kv_cache" not in built["decoder"]  # deprecated spelling of the same
    assert built["encoder"]["--checkpoint_dir"] == "/o/checkpoint/encoder"
    assert built["decoder"]["--checkpoint_dir"] == "/o/checkpoint/decoder"
    assert built["encoder"]["--output_dir"] == "/o/engines/encoder"
    assert built["decoder"]["--output_dir"] == "/o/engines/decoder"


def test_engine_sizes_follow_the_serving_limits():
    limits = Limits(max_input_tokens=300, max_output_tokens=50)
    built = commands(TrtllmSettings(model_dir=Path("m"), out_dir=Path("/o"), limits=limits))
    assert built["encoder"]["--max_input_len"] == "300"
    assert built["decoder"]["--max_encoder_input_len"] == "300"
    assert built["decoder"]["--max_input_len"] == "1"  # the decoder start token
    assert built["decoder"]["--max_seq_len"] == "51"  # start token + 50 generated
    assert "--max_encoder_input_len" not in built["encoder"]


def test_max_num_tokens_below_one_prompt_is_refused(tmp_path):
    settings = TrtllmSettings(model_dir=tmp_path, out_dir=tmp_path, max_num_tokens=100)
    with pytest.raises(ValueError, match=r"max_num_tokens \(100\) must hold one full prompt"):
        settings.check()


# --- checkpoint checks and the executed path (with a fake runner) ------------------------


def test_non_t5_checkpoint_is_refused(tmp_path):
    model = write_t5_config(tmp_path / "m", model_type="bart")
    with pytest.raises(ValueError, match="model_type is 'bart'; this build converts T5"):
        build_gpu_repository(TrtllmSettings(model_dir=model, out_dir=tmp_path), dry_run=True)


def test_decoder_start_other_than_pad_is_refused(tmp_path):
    model = write_t5_config(tmp_path / "m", decoder_start_token_id=5)
    with pytest.raises(ValueError, match=r"decoder_start_token_id is 5, but instruction_ner"):
        build_gpu_repository(TrtllmSettings(model_dir=model, out_dir=tmp_path), dry_run=True)


def test_missing_checkpoint_fails_outside_a_dry_run(tmp_path):
    settings = TrtllmSettings(model_dir=tmp_path / "none", out_dir=tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no Hugging Face T5 checkpoint in"):
        build_gpu_repository(settings)


def fake_toolchain(tmp_path, monkeypatch, write_encoder=True):
    """A convert script file, trtllm-build 'on PATH' and a runner that writes engine files."""
    script = tmp_path / "convert_checkpoint.py"
    script.write_text("# stand-in\n", encoding="utf-8")
    monkeypatch.setattr(build_trtllm.shutil, "which", lambda name: f"/usr/bin/{name}")
    calls: list[list[str]] = []

    gpus = ["NVIDIA H100 80GB HBM3, 9.0"]

    def run(argv, check, **kwargs):
        assert check is True
        if argv[0] == "nvidia-smi":
            return types.SimpleNamespace(stdout="\n".join(gpus) + "\n")
        calls.append(argv)
        if argv[0] == "trtllm-build":
            out = Path(argv[argv.index("--output_dir") + 1])
            if write_encoder or out.name != "encoder":
                out.mkdir(parents=True, exist_ok=True)
                (out / "config.json").write_text("{}", encoding="utf-8")
                (out / "rank0.engine").write_bytes(b"engine")

    run.gpus = gpus
    return script, calls, run


def test_build_runs_convert_then_both_engine_builds_and_fills_the_repository(tmp_path, monkeypatch):
    script, calls, run = fake_toolchain(tmp_path, monkeypatch)
    model = write_t5_config(tmp_path / "m")
    settings = TrtllmSettings(model_dir=model, out_dir=tmp_path / "out", convert_script=script)
    result = build_gpu_repository(settings, run=run)
    assert [c[:2] for c in calls] == [
        ["python3", str(script)],
        ["trtllm-build", "--checkpoint_dir"],
        ["trtllm-build", "--checkpoint_dir"],
    ]
    assert [c[c.index("--output_dir") + 1] for c in calls[1:]] == [
        str(settings.engines_dir / "encoder"),
        str(settings.engines_dir / "decoder"),
    ]
    assert result.manifest["dry_run"] is False
    assert (result.repository / "tensorrt_llm/config.pbtxt").is_file()
    assert result.manifest["toolchain"]["gpus"] == [
        {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    ]
    assert is_current(settings, run)
    assert not is_current(
        TrtllmSettings(model_dir=model, out_dir=tmp_path / "out", dtype="float32"), run
    )


def test_engines_are_rebuilt_on_another_gpu_or_tensorrt_llm_version(tmp_path, monkeypatch):
    script, _, run = fake_toolchain(tmp_path, monkeypatch)
    monkeypatch.setattr(build_trtllm, "installed_tensorrt_llm", lambda: "1.2.1")
    model = write_t5_config(tmp_path / "m")
    settings = TrtllmSettings(model_dir=model, out_dir=tmp_path / "out", convert_script=script)
    build_gpu_repository(settings, run=run)
    assert is_current(settings, run)
    run.gpus[:] = ["NVIDIA A100-SXM4-80GB, 8.0"]  # the GPU was swapped
    assert not is_current(settings, run)
    run.gpus[:] = ["NVIDIA H100 80GB HBM3, 9.0"]
    monkeypatch.setattr(build_trtllm, "installed_tensorrt_llm", lambda: "1.2.2")  # upgraded
    assert not is_current(settings, run)


def test_the_encoder_is_built_with_max_seq_len_equal_to_its_input_length():
    flags = commands()["encoder"]
    assert flags["--max_seq_len"] == flags["--max_input_len"] == "512"


def test_cross_kv_cache_fraction_follows_the_input_and_output_limits():
    assert cross_kv_fraction(DEFAULT_LIMITS) == 0.8  # 512 / (512 + 129)
    assert cross_kv_fraction(Limits(max_input_tokens=128, max_output_tokens=127)) == 0.5
    settings = TrtllmSettings(model_dir=Path("m"), out_dir=Path("o"))
    assert tensorrt_llm_values(settings)["cross_kv_cache_fraction"] == 0.8
    explicit = TrtllmSettings(model_dir=Path("m"), out_dir=Path("o"), cross_kv_cache_fraction=0.6)
    assert tensorrt_llm_values(explicit)["cross_kv_cache_fraction"] == 0.6


def test_build_fails_when_an_engine_was_not_written(tmp_path, monkeypatch):
    script, _, run = fake_toolchain(tmp_path, monkeypatch, write_encoder=False)
    model = write_t5_config(tmp_path / "m")
    settings = TrtllmSettings(model_dir=model, out_dir=tmp_path / "out", convert_script=script)
    with pytest.raises(FileNotFoundError, match=r"did not write .*engines/encoder/config\.json"):
        build_gpu_repository(settings, run=run)


def test_build_outside_the_container_names_the_missing_tools(tmp_path, monkeypatch):
    monkeypatch.setattr(build_trtllm.shutil, "which", lambda name: None)
    model = write_t5_config(tmp_path / "m")
    settings = TrtllmSettings(
        model_dir=model, out_dir=tmp_path / "out", convert_script=tmp_path / "absent.py"
    )
    with pytest.raises(FileNotFoundError) as error:
        build_gpu_repository(settings, run=lambda *a, **k: pytest.fail("must not run"))
    message = str(error.value)
    assert "trtllm-build is not on PATH" in message
    assert f"{tmp_path / 'absent.py'} is missing" in message
    assert PIN.image in message


def test_dry_run_command_line_prints_every_command_and_writes_the_manifest(tmp_path):
    model = write_t5_config(tmp_path / "m")
    out = tmp_path / "out"
    stdout = io.StringIO()
    with redirect_stdout(stdout):
        code = build_trtllm.main(["--model", str(model), "--out", str(out), "--dry-run"])
    assert code == 0
    printed = [line for line in stdout.getvalue().splitlines() if not line.startswith("#")]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert printed[-3:] == manifest["commands"]
    assert manifest["dry_run"] is True
    assert manifest["pin"]["image"] == PIN.image
    assert not (out / "engines").exists()
    assert (out / "build_commands.sh").read_text(encoding="utf-8").count("trtllm-build") == 2
