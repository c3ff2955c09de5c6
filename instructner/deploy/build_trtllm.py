"""Build the GPU model repository: T5 checkpoint -> TensorRT-LLM engines (``make engines-trtllm``).

Runs inside the pinned Triton TensorRT-LLM container (:data:`PIN`, see docs/gpu-deployment.md):

1. ``convert_checkpoint.py --model_type t5`` (TensorRT-LLM's ``examples/models/core/enc_dec``)
   writes a TensorRT-LLM checkpoint to ``<out>/checkpoint/{encoder,decoder}``, in bfloat16 or
   float32: float16 is refused because T5 overflows in it.
2. ``trtllm-build`` builds ``<out>/engines/encoder`` and ``<out>/engines/decoder`` with the T5
   flags: context FMHA off (no relative attention bias in FMHA), paged KV cache on the decoder
   (in-flight batching needs it), no KV cache on the encoder, sizes from
   :class:`~instructner.serving.limits.Limits`.
3. ``<out>/model_repository``: instruction_ner filled as ``make engines --steps inline``
   fills it for the CPU (its ``engine_model`` names the GPU engine model), plus the
   ``tensorrt_llm`` model of ``deploy/model_repository_trtllm/``. The engine model is the only
   difference from the CPU repository.

``--dry-run`` (``make engines-trtllm DRY_RUN=1``) prints every command and writes the filled
repository without running TensorRT. The flags follow the pinned versions' files, cited where
they are used; none of it has been executed on a GPU here.

Run: ``python -m instructner.deploy.build_trtllm --model models/default --out build/out/trtllm``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from instructner.deploy.build import (
    TEMPLATES,
    BuildSettings,
    add_model_and_out_arguments,
    add_templates_argument,
    copy_serving_tokenizer,
    fingerprint,
    has_checkpoint,
    repository_relative,
    repository_values,
)
from instructner.deploy.templates import fill_model
from instructner.serving.limits import DEFAULT_LIMITS, Limits
from instructner.serving.tokenizer import PromptTokenizer, tokenizer_dir_for

logger = logging.getLogger(__name__)

# The GPU engine model's template; the step models come from the CPU templates (TEMPLATES).
TRTLLM_TEMPLATES = Path("deploy/model_repository_trtllm")
MANIFEST = "manifest.json"
COMMANDS_SCRIPT = "build_commands.sh"
# T5 overflows in float16 (TensorRT-LLM examples/enc_dec/README.md; TensorRT-LLM issue #1511).
DTYPES = ("bfloat16", "float32")
SCHEDULER_POLICIES = ("guaranteed_no_evict", "max_utilization")
STEP_MODELS = ("instruction_ner",)


@dataclass(frozen=True)
class Pin:
    """One container / TensorRT-LLM / backend pairing; every flag and key here follows it."""

    image: str
    triton: str
    tensorrt_llm: str
    source_ref: str  # the TensorRT-LLM branch holding this version's examples and triton_backend
    convert_script: str  # inside a TensorRT-LLM checkout of source_ref


# Triton's compatibility matrix (server docs/introduction/compatibility.md, r26.08): the
# 26.04-26.07 trtllm-python-py3 images ship TensorRT-LLM 1.2.1 (Python 3.12, CUDA 13.1); no
# Triton image ships 1.3, and TensorRT-LLM removed the TensorRT-engine path (trtllm-build, the
# enc_dec examples, the C++ inflight_batcher_llm backend) after 1.3.0rc20, so 26.07 is the
# newest image with the engine route. Its backend is built from TensorRT-LLM's release/1.2.1
# (tensorrtllm_backend dockerfile/Dockerfile.triton.trt_llm_backend), whose triton_backend/
# holds the tensorrt_llm template and launch script, and examples/models/core/enc_dec the T5
# converter (docs/gpu-deployment.md lists what was re-checked against which source).
PIN = Pin(
    image="nvcr.io/nvidia/tritonserver:26.07-trtllm-python-py3",
    triton="2.71.0",
    tensorrt_llm="1.2.1",
    source_ref="release/1.2.1",
    convert_script="examples/models/core/enc_dec/convert_checkpoint.py",
)
DEFAULT_CONVERT_SCRIPT = Path("/opt/tensorrt_llm_src") / PIN.convert_script


def cross_kv_fraction(limits: Limits) -> float:
    """Return the KV-cache share for cross attention that fits both caches to the limits.

    Per sequence the cross-attention cache holds the encoder output, ``max_input_tokens``
    positions, and the self-attention cache the decoder's ``max_output_tokens + 1`` (with the
    start token); both have the same per-position size (same layers, heads and head size in
    T5's decoder), so the cross share is cross / (cross + self): 512 / (512 + 129) = 0.80 for
    the shipped limits. Rounded to two decimals.
    """
    cross = limits.max_input_tokens
    self_attention = limits.max_output_tokens + 1
    return round(cross / (cross + self_attention), 2)


@dataclass(frozen=True)
class TrtllmSettings:
    """What to build: engine precision and sizes, and the tensorrt_llm model's parameters."""

    model_dir: Path
    out_dir: Path
    templates: Path = TEMPLATES  # the step models' templates (shared with the CPU build)
    trtllm_templates: Path = TRTLLM_TEMPLATES
    dtype: str = "bfloat16"
    max_batch_size: int = 64  # engines and the tensorrt_llm model (requests in flight)
    max_num_tokens: int = 8192  # trtllm-build's default, stated so it can be tuned
    limits: Limits = DEFAULT_LIMITS
    convert_script: Path = DEFAULT_CONVERT_SCRIPT
    engine_model: str = "tensorrt_llm"
    kv_cache_free_gpu_mem_fraction: float = 0.8  # tensorrtllm_backend docs/encoder_decoder.md
    # Share of the KV cache for cross attention; None derives it from the limits
    # (:func:`cross_kv_fraction`) instead of upstream's example value 0.5.
    cross_kv_cache_fraction: float | None = None
    max_queue_delay_us: int = 0  # in-flight batching batches inside the executor
    max_queue_size: int = 0  # 0: Triton's queue is unbounded
    batch_scheduler_policy: str = "guaranteed_no_evict"

    @property
    def cross_fraction(self) -> float:
        """The cross-attention share of the KV cache this build uses."""
        if self.cross_kv_cache_fraction is not None:
            return self.cross_kv_cache_fraction
        return cross_kv_fraction(self.limits)

    @property
    def checkpoint_dir(self) -> Path:
        """Where convert_checkpoint.py writes the TensorRT-LLM checkpoint."""
        return self.out_dir.resolve() / "checkpoint"

    @property
    def engines_dir(self) -> Path:
        """Where trtllm-build writes ``encoder/`` and ``decoder/``."""
        return self.out_dir.resolve() / "engines"

    @property
    def repository(self) -> Path:
        """The filled GPU model repository."""
        return self.out_dir.resolve() / "model_repository"

    def steps(self) -> BuildSettings:
        """Return the CPU build's settings for the models both repositories share."""
        return BuildSettings(
            model_dir=self.model_dir,
            out_dir=self.out_dir,
            templates=self.templates,
            engines=(),
            pipeline_engine=self.engine_model,
            steps="inline",  # instruction_ner calls the tensorrt_llm model once per window
            limits=self.limits,
        )

    def check(self) -> None:
        """Raise ValueError for settings that cannot build or serve."""
        if self.dtype == "float16":
            raise ValueError(
                "dtype float16 is refused: T5 overflows in float16 (NaN or garbage output, "
                "TensorRT-LLM enc_dec README and issue #1511); use bfloat16 (Ampere or newer) "
                "or float32"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.max_num_tokens < self.limits.max_input_tokens:
            raise ValueError(
                f"max_num_tokens ({self.max_num_tokens}) must hold one full prompt "
                f"(max_input_tokens {self.limits.max_input_tokens})"
            )
        if not 0 < self.kv_cache_free_gpu_mem_fraction <= 1:
            raise ValueError(
                "kv_cache_free_gpu_mem_fraction must be in (0, 1], got "
                f"{self.kv_cache_free_gpu_mem_fraction}"
            )
        if not 0 < self.cross_fraction < 1:
            raise ValueError(
                f"cross_kv_cache_fraction must be in (0, 1), got {self.cross_fraction}"
            )
        if self.batch_scheduler_policy not in SCHEDULER_POLICIES:
            raise ValueError(
                f"batch_scheduler_policy must be one of {', '.join(SCHEDULER_POLICIES)}, "
                f"got {self.batch_scheduler_policy!r}"
            )
        if self.engine_model in STEP_MODELS:
            raise ValueError(f"engine_model {self.engine_model!r} is the name of a step model")


@dataclass(frozen=True)
class Command:
    """One step of the build: what it does and its argument vector."""

    what: str
    argv: tuple[str, ...]

    def shell(self) -> str:
        """Return the command as one shell-quoted line."""
        return shlex.join(self.argv)


def _plugin_flags(dtype: str) -> list[str]:
    # Set explicitly: otherwise trtllm-build applies its own defaults (enc_dec README).
    return [
        "--gemm_plugin",
        dtype,
        "--bert_attention_plugin",
        dtype,
        "--gpt_attention_plugin",
        dtype,
    ]


def _shared_build_flags(settings: TrtllmSettings) -> list[str]:
    """Return the trtllm-build flags the encoder and the decoder engines share."""
    return [
        "--moe_plugin",
        "disable",
        "--max_beam_width",
        "1",  # greedy decoding, as the CPU engine serves
        "--max_batch_size",
        str(settings.max_batch_size),
        "--max_num_tokens",
        str(settings.max_num_tokens),
        "--remove_input_padding",
        "enable",
        *_plugin_flags(settings.dtype),
        "--context_fmha",
        "disable",  # FMHA has no T5 relative attention bias
    ]


def build_commands(settings: TrtllmSettings, checkpoint: Path) -> list[Command]:
    """Return the convert and the two trtllm-build commands for ``checkpoint``.

    Flags of tensorrtllm_backend docs/encoder_decoder.md (the T5 path; the flags exist in
    TensorRT-LLM 1.2.1's ``trtllm-build`` with the same enable/disable form) with the
    enc_dec README's explicit ``--remove_input_padding``; sizes from ``settings.limits``:
    encoder ``--max_input_len`` = decoder ``--max_encoder_input_len`` = max_input_tokens, and
    decoder ``--max_seq_len`` = max_output_tokens + 1 (the decoder start token); the encoder's
    ``--max_seq_len`` equals its input length, as the enc_dec recipe sets it.
    """
    limits = settings.limits
    ckpt = settings.checkpoint_dir
    engines = settings.engines_dir
    shared = _shared_build_flags(settings)
    convert = Command(
        "convert the Hugging Face T5 checkpoint to a TensorRT-LLM checkpoint",
        (
            "python3",
            str(settings.convert_script),
            "--model_type",
            "t5",
            "--model_dir",
            str(checkpoint),
            "--output_dir",
            str(ckpt),
            "--dtype",
            settings.dtype,
            "--tp_size",
            "1",
            "--pp_size",
            "1",  # the C++ runtime and Triton do not support pipeline parallel enc-dec
        ),
    )
    encoder = Command(
        "build the encoder engine (no KV cache)",
        (
            "trtllm-build",
            "--checkpoint_dir",
            str(ckpt / "encoder"),
            "--output_dir",
            str(engines / "encoder"),
            "--kv_cache_type",
            "disabled",
            "--max_input_len",
            str(limits.max_input_tokens),
            "--max_seq_len",
            str(limits.max_input_tokens),  # the enc_dec recipe: equal to the input length
            *shared,
        ),
    )
    decoder = Command(
        "build the decoder engine (paged KV cache, for in-flight batching)",
        (
            "trtllm-build",
            "--checkpoint_dir",
            str(ckpt / "decoder"),
            "--output_dir",
            str(engines / "decoder"),
            "--kv_cache_type",
            "paged",
            "--max_input_len",
            "1",  # generation starts from the one decoder start token
            "--max_encoder_input_len",
            str(limits.max_input_tokens),
            "--max_seq_len",
            str(limits.max_output_tokens + 1),
            *shared,
        ),
    )
    return [convert, encoder, decoder]


def tensorrt_llm_values(settings: TrtllmSettings) -> dict[str, object]:
    """Return the fill values of ``deploy/model_repository_trtllm/tensorrt_llm/config.pbtxt``.

    Keys are placeholders of the upstream tensorrt_llm template (TensorRT-LLM triton_backend,
    1.2.x layout); the enc-dec values
    are those of its docs/encoder_decoder.md fill command.
    """
    return {
        "model_name": settings.engine_model,
        "triton_backend": "tensorrtllm",
        "triton_max_batch_size": settings.max_batch_size,
        "decoupled_mode": "False",
        "max_queue_delay_microseconds": settings.max_queue_delay_us,
        "max_queue_size": settings.max_queue_size,
        "logits_datatype": "TYPE_FP32",  # T5 checkpoints keep float32 logits
        "max_beam_width": 1,
        "batching_strategy": "inflight_fused_batching",
        "engine_dir": settings.engines_dir / "decoder",
        "encoder_engine_dir": settings.engines_dir / "encoder",
        "kv_cache_free_gpu_mem_fraction": settings.kv_cache_free_gpu_mem_fraction,
        "cross_kv_cache_fraction": settings.cross_fraction,
        "exclude_input_in_output": "True",  # output_ids = generated tokens, as the CPU engine
        "enable_kv_cache_reuse": "False",
        "enable_chunked_context": "False",
        "batch_scheduler_policy": settings.batch_scheduler_policy,
    }


def check_checkpoint(model_dir: Path) -> dict[str, Any]:
    """Check that ``model_dir`` holds a T5 the engines and the pipeline can serve.

    Returns:
        The checkpoint's ``config.json``.

    Raises:
        ValueError: not a T5, or its decoder does not start from the pad token that
            instruction_ner sends as ``pad_id`` (the backend starts the decoder from
            ``[pad_id]`` when a request has no ``decoder_input_ids``).

    """
    path = model_dir / "config.json"
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if config.get("model_type") != "t5":
        raise ValueError(
            f"{path}: model_type is {config.get('model_type')!r}; this build converts T5 "
            "checkpoints only (convert_checkpoint.py --model_type t5)"
        )
    pad = PromptTokenizer(tokenizer_dir_for(model_dir)).pad_token_id
    start = config.get("decoder_start_token_id")
    if start != pad:
        raise ValueError(
            f"{path}: decoder_start_token_id is {start}, but instruction_ner sends pad_id {pad} "
            "and the TensorRT-LLM backend starts the decoder from [pad_id]"
        )
    return config


def _require_tools(settings: TrtllmSettings) -> None:
    missing = []
    if shutil.which("trtllm-build") is None:
        missing.append("trtllm-build is not on PATH")
    if not settings.convert_script.is_file():
        missing.append(
            f"{settings.convert_script} is missing (TensorRT-LLM {PIN.convert_script} of "
            f"{PIN.source_ref}; deploy/docker/Dockerfile puts it there, or pass "
            "--convert-script)"
        )
    if missing:
        raise FileNotFoundError(
            "; ".join(missing) + f". Run inside {PIN.image} (deploy/docker/Dockerfile), "
            "or use --dry-run to only print the commands"
        )


def _check_engines(settings: TrtllmSettings) -> None:
    # The runtime reads <engine dir>/config.json and rank0.engine; a missing encoder engine
    # would make the backend load a decoder-only model without an error.
    for part in ("encoder", "decoder"):
        for name in ("config.json", "rank0.engine"):
            path = settings.engines_dir / part / name
            if not path.is_file():
                raise FileNotFoundError(f"trtllm-build did not write {path}")


def write_repository(settings: TrtllmSettings, checkpoint: Path) -> dict[str, Path]:
    """Fill the GPU model repository; return model name -> its folder.

    The step models get exactly the values the CPU build gives them (same function, same
    defaults); only the engine model differs.
    """
    repository = settings.repository
    repository.mkdir(parents=True, exist_ok=True)
    steps = repository_values(settings.steps(), checkpoint, settings.out_dir)
    tokenizer_dir = copy_serving_tokenizer(checkpoint, settings.out_dir)
    models: dict[str, tuple[Path, dict[str, object]]] = {
        name: (settings.templates / template, repository_relative(v, repository, tokenizer_dir))
        for name, (template, v) in steps.items()
    }
    models[settings.engine_model] = (
        settings.trtllm_templates / "tensorrt_llm",
        tensorrt_llm_values(settings),
    )
    for stale in repository.iterdir():
        if stale.is_dir() and stale.name not in models:
            shutil.rmtree(stale)
    return {
        name: fill_model(template, repository / name, values)
        for name, (template, values) in models.items()
    }


@dataclass(frozen=True)
class TrtllmBuild:
    """What a build wrote."""

    repository: Path
    commands: list[Command]
    dry_run: bool
    manifest: dict[str, object]


Runner = Callable[..., Any]


def _commands_script(commands: Sequence[Command]) -> str:
    lines = [
        "#!/usr/bin/env bash",
        "# Written by instructner.deploy.build_trtllm.",
        "set -euo pipefail",
    ]
    for command in commands:
        lines += [f"# {command.what}", command.shell()]
    return "\n".join(lines) + "\n"


def _settings_record(settings: TrtllmSettings) -> dict[str, object]:
    record = asdict(settings)
    for key in ("model_dir", "out_dir", "convert_script", "templates", "trtllm_templates"):
        record[key] = str(record[key])
    return record


def installed_tensorrt_llm() -> str | None:
    """Return the installed TensorRT-LLM version (package metadata; no import), or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tensorrt_llm")
    except PackageNotFoundError:
        return None


def visible_gpus(run: Runner = subprocess.run) -> list[dict[str, str]] | None:
    """Return name and compute capability of each visible GPU (nvidia-smi), or None."""
    try:
        done = run(
            ["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
            check=True,
            capture_output=True,
            text=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    gpus = []
    for line in str(done.stdout).splitlines():
        name, _, capability = line.rpartition(",")
        if name.strip():
            gpus.append({"name": name.strip(), "compute_capability": capability.strip()})
    return gpus


def toolchain(run: Runner = subprocess.run) -> dict[str, object]:
    """Return what engines are tied to: the TensorRT-LLM version and the GPUs built on.

    TensorRT engines load only with the TensorRT(-LLM) version that built them and are
    specific to the GPU architecture, so a reused build must match both.
    """
    return {"tensorrt_llm": installed_tensorrt_llm(), "gpus": visible_gpus(run)}


def is_current(settings: TrtllmSettings, run: Runner = subprocess.run) -> bool:
    """Whether ``out_dir`` holds engines built from this checkpoint with these settings.

    They must also come from the installed TensorRT-LLM version and the visible GPU model
    (an engines volume outlives image upgrades and GPU swaps).
    """
    manifest_file = settings.out_dir / MANIFEST
    if not manifest_file.is_file() or not has_checkpoint(settings.model_dir):
        return False
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    try:
        _check_engines(settings)
    except FileNotFoundError:
        return False
    commands = [c.shell() for c in build_commands(settings, settings.model_dir.resolve())]
    if not (
        not manifest.get("dry_run", True)
        and manifest.get("commands") == commands
        and manifest.get("checkpoint_fingerprint") == fingerprint([settings.model_dir.resolve()])
    ):
        return False
    built_with, now = manifest.get("toolchain"), toolchain(run)
    if built_with != now:
        logger.info(
            "engines in %s were built with %s, here is %s: rebuilding",
            settings.out_dir,
            built_with,
            now,
        )
        return False
    return True


def build_gpu_repository(
    settings: TrtllmSettings, dry_run: bool = False, run: Runner = subprocess.run
) -> TrtllmBuild:
    """Convert, build the engines (unless ``dry_run``) and write the GPU repository.

    Raises:
        ValueError: bad settings or a checkpoint that cannot be served.
        FileNotFoundError: no checkpoint (outside a dry run), or the TensorRT-LLM tools or
            the built engines are missing.
        subprocess.CalledProcessError: a conversion or build command failed.

    """
    settings.check()
    checkpoint = settings.model_dir.resolve()
    if has_checkpoint(checkpoint):
        check_checkpoint(checkpoint)
    elif dry_run:
        logger.warning("dry run: %s holds no checkpoint (config.json) yet", checkpoint)
    else:
        raise FileNotFoundError(
            f"no Hugging Face T5 checkpoint in {checkpoint} (config.json missing): train one, "
            "or for a smoke test use the random-init stand-in that `make engines` writes "
            "(build/out/untrained-mini)"
        )
    commands = build_commands(settings, checkpoint)
    out = settings.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / COMMANDS_SCRIPT).write_text(_commands_script(commands), encoding="utf-8")
    if not dry_run:
        _require_tools(settings)
        for command in commands:
            logger.info("%s: %s", command.what, command.shell())
            run(list(command.argv), check=True)
        _check_engines(settings)
    models = write_repository(settings, checkpoint)
    manifest: dict[str, object] = {
        "pin": asdict(PIN),
        "dry_run": dry_run,
        "checkpoint": str(checkpoint),
        "checkpoint_fingerprint": fingerprint([checkpoint]) if checkpoint.exists() else None,
        "settings": _settings_record(settings),
        "commands": [c.shell() for c in commands],
        # None in a dry run: no engine was built, so nothing is tied to a toolchain
        "toolchain": None if dry_run else toolchain(run),
        "repository": str(settings.repository),
        "models": sorted(models),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return TrtllmBuild(settings.repository, commands, dry_run, manifest)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_and_out_arguments(parser, Path("build/out/trtllm"))
    add_templates_argument(parser, TEMPLATES)
    parser.add_argument(
        "--trtllm-templates",
        type=Path,
        default=TRTLLM_TEMPLATES,
        help=f"the tensorrt_llm model's template (default: {TRTLLM_TEMPLATES})",
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="bfloat16",
        help="engine precision; float16 is refused (T5 overflows)",
    )
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--max-num-tokens", type=int, default=8192)
    parser.add_argument(
        "--engine-model", default="tensorrt_llm", help="name of the engine model in the repository"
    )
    parser.add_argument(
        "--convert-script",
        type=Path,
        default=Path(os.environ.get("TRTLLM_CONVERT_SCRIPT", str(DEFAULT_CONVERT_SCRIPT))),
        help="TensorRT-LLM's enc_dec convert_checkpoint.py (env TRTLLM_CONVERT_SCRIPT)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip the build when OUT holds engines of this checkpoint+settings",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the commands and write the repository; run no TensorRT",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or with --dry-run, plan) the GPU repository; exit code 0 on success."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = TrtllmSettings(
        model_dir=args.model,
        out_dir=args.out,
        templates=args.templates,
        trtllm_templates=args.trtllm_templates,
        dtype=args.dtype,
        max_batch_size=args.max_batch_size,
        max_num_tokens=args.max_num_tokens,
        engine_model=args.engine_model,
        convert_script=args.convert_script,
    )
    if args.reuse and not args.dry_run and is_current(settings):
        logger.info("engines in %s match the checkpoint and settings: reused", args.out)
        return 0
    result = build_gpu_repository(settings, dry_run=args.dry_run)
    sys.stdout.write(_commands_script(result.commands))
    state = "planned (dry run: nothing executed)" if result.dry_run else "built"
    logger.info("GPU model repository %s: %s", state, result.repository)
    return 0


if __name__ == "__main__":
    sys.exit(main())
