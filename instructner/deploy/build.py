"""Build a ready Triton model repository from a T5 checkpoint (``make engines``).

Steps: take the Hugging Face checkpoint (or, until a trained one exists, make a small
random-init T5 and mark the build untrained), convert it to CTranslate2, and fill the
committed ``model_repository/`` templates into ``<out>/model_repository`` with absolute
paths. ``<out>/manifest.json`` records what was built; :func:`ensure_repository` rebuilds only
when the checkpoint, the templates or the settings changed.

Run: ``python -m instructner.deploy.build --model models/default --out build/out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from instructner.deploy.templates import fill_model
from instructner.method.confidence import served_score_method
from instructner.method.label_aliases import ALIASES_FILE
from instructner.method.model_info import model_info_json, pbtxt_string
from instructner.method.trained_tasks import trained_tasks
from instructner.serving.devices import AUTO, CUDA_COMPUTE_TYPES, DEVICES, check_compute_type
from instructner.serving.engine import (
    COMPUTE_TYPES,
    ENGINE_KINDS,
    SHIPPED_CT2_DIR,
    convert_to_ctranslate2,
    shipped_conversion,
)
from instructner.serving.limits import DEFAULT_LIMITS, Limits
from instructner.serving.tokenizer import tokenizer_dir_for
from instructner.serving.triton_glue import PATH_PARAMETERS, STEP_PLACES

logger = logging.getLogger(__name__)

# The committed config/model templates (a checkout's model_repository/), passed explicitly
# (--templates); the default is relative to the working directory, where make runs.
TEMPLATES = Path("model_repository")
MANIFEST = "manifest.json"
UNTRAINED_WARNING = (
    "THE SERVED MODEL IS UNTRAINED: {checkpoint} is a random-init stand-in because {wanted} "
    "holds no checkpoint. Answers are meaningless until a trained model is placed there "
    "(then run `make engines`)."
)


@dataclass(frozen=True)
class EngineVariant:
    """One engine model of the repository: its name, runtime, device and compute type."""

    name: str = "engine"
    kind: str = "ctranslate2"
    compute_type: str = "int8"
    constrained: bool = False  # transformers only: decode under the NER answer grammar
    # ctranslate2 only: "cuda" gives the engine model KIND_GPU instances (one per GPU) and a
    # compute type of instructner.serving.devices (default "auto": chosen on the GPU)
    device: str = "cpu"


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """Return the CPU cores this process may use: its affinity, capped by a cgroup v2 quota.

    A container started with ``--cpus=N`` sees every host core in its affinity; the quota
    (``cpu.max``: "<quota> <period>" or "max <period>") says how many it may keep busy.
    """
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = cpu_max.read_text(encoding="utf-8").split()[:2]
    except (OSError, ValueError):
        return cores
    if quota == "max":
        return cores
    try:
        return max(1, min(cores, int(int(quota) // int(period))))
    except (ValueError, ZeroDivisionError):
        return cores


ENGINE_INSTANCES = 2


# The one default of where instruction_ner runs the engine, for the library, `make serve` and
# `instructner build` on the CPU: the CPU engine embedded in instruction_ner, the benchmarked
# setting (docs/performance.md); "inline" (one engine model call per window) is the GPU layout.
DEFAULT_STEPS = "embedded"


@dataclass(frozen=True)
class BuildSettings:
    """What to build and how the models are configured (defaults suit a 2-core CPU)."""

    model_dir: Path
    out_dir: Path
    templates: Path = TEMPLATES
    engines: tuple[EngineVariant, ...] = (EngineVariant(),)
    pipeline_engine: str = "engine"  # the engine model instruction_ner calls
    # where instruction_ner runs the engine: "embedded" (the pipeline engine in its own
    # process: no model call per window) or "inline" (one call to the engine model per
    # window: the GPU layout, where the engine model is TensorRT-LLM's or CTranslate2 on CUDA)
    steps: str = DEFAULT_STEPS
    untrained_size: str = "mini"  # modeling preset of the random-init stand-in
    limits: Limits = DEFAULT_LIMITS
    max_batch_size: int = 64
    # Two engine instances: Triton 2.51's dynamic batcher, when every instance is busy, waits
    # for a free one on a wake-up that can come before the instance is ready again, and then
    # sleeps its default 500 ms; with a second instance one is nearly always free
    # (docs/performance.md). Each splits its batch over half the cores.
    engine_instances: int = ENGINE_INSTANCES
    inter_threads: int = field(default_factory=lambda: max(1, usable_cores() // ENGINE_INSTANCES))
    intra_threads: int = 1  # single-threaded workers beat multi-threaded ones here
    # A BLS instance is held until its whole pipeline returns, so with few instances requests
    # queue in front of instruction_ner instead of batching at the engine (make bench: engine
    # batch 6 at concurrency 32 with 2 instances, 11-16 with 8-16); ~40 MiB each. With steps
    # "embedded" instruction_ner is the engine: engine_instances instances, batching there.
    bls_instances: int = 8
    # No batching delay: batches form from the requests that queue while an engine instance
    # is busy; a delay only adds latency where the engine itself is the bottleneck (CPU)
    engine_queue_delay_us: int = 0
    bls_queue_delay_us: int = 0  # instruction_ner with steps "inline"
    # Overload (docs/reliability.md): requests over the queue bound, or waiting longer than the
    # timeout, get UNAVAILABLE at once instead of unbounded latency; 0 disables either bound.
    max_queue_size: int = 256  # instruction_ner: documents waiting for a BLS instance
    queue_timeout_us: int = 10_000_000
    engine_max_queue_size: int = 8192  # engine: windows of the documents in flight
    engine_queue_timeout_us: int = 30_000_000
    extra: dict[str, str] = field(default_factory=dict)  # free-form notes for the manifest

    def check(self) -> None:
        """Raise ValueError for settings that cannot build."""
        if not (self.templates / "instruction_ner" / "config.pbtxt").is_file():
            raise ValueError(
                f"model templates not found in {self.templates} ({self.templates.resolve()}): "
                "run from the repository root or pass --templates"
            )
        names = [e.name for e in self.engines]
        if len(set(names)) != len(names):
            raise ValueError(f"engine model names repeat: {names}")
        if self.steps not in STEP_PLACES:
            raise ValueError(f"steps must be one of {list(STEP_PLACES)}, got {self.steps!r}")
        if self.pipeline_engine not in names:
            raise ValueError(f"pipeline_engine {self.pipeline_engine!r} is not one of {names}")
        for engine in self.engines:
            if engine.kind not in ENGINE_KINDS:
                raise ValueError(f"engine {engine.name}: unknown kind {engine.kind!r}")
            if engine.constrained and engine.kind != "transformers":
                raise ValueError(f"engine {engine.name}: only transformers decodes constrained")
            if engine.device != "cpu" and engine.kind != "ctranslate2":
                raise ValueError(f"engine {engine.name}: only ctranslate2 runs on {engine.device}")
            try:
                check_compute_type(engine.device, engine.compute_type)
            except ValueError as error:
                raise ValueError(f"engine {engine.name}: {error}") from None
            if (
                engine.device == "cuda"
                and self.steps == "embedded"
                and (engine.name == self.pipeline_engine)
            ):
                raise ValueError(
                    f"engine {engine.name} runs on cuda: steps embedded would load it inside "
                    "instruction_ner's CPU instances; use steps inline (the GPU layout)"
                )


@dataclass(frozen=True)
class BuildResult:
    """Where the repository is and whether its model is trained."""

    repository: Path
    checkpoint: Path
    trained: bool
    manifest: dict[str, object]

    @property
    def warning(self) -> str | None:
        """The loud warning to show when the model is untrained, else None."""
        if self.trained:
            return None
        wanted = self.manifest.get("model_dir", "the model directory")
        return UNTRAINED_WARNING.format(checkpoint=self.checkpoint, wanted=wanted)


def fingerprint(paths: Sequence[Path]) -> str:
    """Hash of file names, sizes and modification times (cheap; content for small files)."""
    digest = hashlib.sha256()
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            if "__pycache__" in path.parts:
                continue
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def has_checkpoint(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a Hugging Face checkpoint (config.json)."""
    return (model_dir / "config.json").is_file()


def make_untrained_checkpoint(directory: Path, size: str, seed: int = 0) -> Path:
    """Save a random-init T5 of the modeling preset ``size`` with the shipped tokenizer."""
    from instructner.modeling import load_tokenizer, new_t5_model, save_model

    return save_model(new_t5_model(size, seed=seed), load_tokenizer(), directory)


def _settings_record(settings: BuildSettings) -> dict[str, object]:
    record = asdict(settings)
    record["model_dir"] = str(settings.model_dir)
    record["out_dir"] = str(settings.out_dir)
    record["templates"] = str(settings.templates)
    return record


def repository_values(
    settings: BuildSettings, checkpoint: Path, ct2_dir: Path
) -> dict[str, tuple[str, dict[str, object]]]:
    """Return model name -> (template folder, template values) for every model to write."""
    limits = settings.limits
    tokenizer_dir = tokenizer_dir_for(checkpoint).resolve()
    engines = {
        engine.name: _engine_values(settings, engine, checkpoint, ct2_dir)
        for engine in settings.engines
    }
    embedded = settings.steps == "embedded"
    score_method = served_score_method(checkpoint)
    pipeline_engine = engines[settings.pipeline_engine] if embedded else {}
    embedded_values = {
        f"embedded_{key}": pipeline_engine.get(key, "")
        for key in ("engine_kind", "engine_dir", "compute_type", "constrained", "intra_threads")
    }
    # one engine per instruction_ner instance, each decoding its own batches
    embedded_values["embedded_inter_threads"] = 1 if embedded else ""
    models: dict[str, tuple[str, dict[str, object]]] = {
        "instruction_ner": (
            "instruction_ner",
            {
                "model_name": "instruction_ner",
                "max_batch_size": settings.max_batch_size,
                "instance_count": (
                    settings.engine_instances if embedded else settings.bls_instances
                ),
                "max_queue_delay_us": (
                    settings.engine_queue_delay_us if embedded else settings.bls_queue_delay_us
                ),
                "tokenizer_dir": tokenizer_dir,
                "steps": settings.steps,
                "engine_model": settings.pipeline_engine,
                "max_queue_size": settings.max_queue_size,
                "queue_timeout_us": settings.queue_timeout_us,
                "max_text_chars": limits.max_text_chars,
                "max_input_tokens": limits.max_input_tokens,
                "max_output_tokens": limits.max_output_tokens,
                "max_windows": limits.max_windows,
                "max_windows_in_flight": limits.max_windows_in_flight,
                "served_tasks": ",".join(trained_tasks(checkpoint)),
                "score_method": score_method,
                "model_info": pbtxt_string(model_info_json(checkpoint)),
                **embedded_values,
                "engine_batch": settings.max_batch_size,
            },
        ),
    }
    for name, values in engines.items():
        models[name] = ("engine", values)
    return models


# What the served models read from a model folder at run time (PromptTokenizer).
SERVING_TOKENIZER_FILES = ("tokenizer.json", ALIASES_FILE)


def copy_serving_tokenizer(checkpoint: Path, out_dir: Path) -> Path:
    """Copy the checkpoint's tokenizer files the served models read into ``out_dir/tokenizer``.

    The repository then names its tokenizer inside the build output, not the checkpoint's
    place on disk.
    """
    source = tokenizer_dir_for(checkpoint)
    target = out_dir / "tokenizer"
    target.mkdir(parents=True, exist_ok=True)
    for name in SERVING_TOKENIZER_FILES:
        stale = target / name
        if (source / name).is_file():
            shutil.copy2(source / name, stale)
        elif stale.exists():
            stale.unlink()
    return target


def repository_relative(
    values: dict[str, object], repository: Path, tokenizer_dir: Path
) -> dict[str, object]:
    """Return ``values`` naming ``tokenizer_dir``, every folder relative to ``repository``.

    Triton shows a model's config to anyone who asks (``GET /v2/models/<name>/config``), so the
    written configs never hold absolute paths; the models resolve them back
    (:func:`instructner.serving.triton_glue.model_parameters`).
    """
    out = dict(values)
    if "tokenizer_dir" in out:
        out["tokenizer_dir"] = tokenizer_dir
    for key in PATH_PARAMETERS:
        value = out.get(key)
        if value:  # "" is an unused embedded engine
            out[key] = os.path.relpath(Path(str(value)).resolve(), repository.resolve())
    return out


def _engine_values(
    settings: BuildSettings, engine: EngineVariant, checkpoint: Path, ct2_dir: Path
) -> dict[str, object]:
    limits = settings.limits
    return {
        "model_name": engine.name,
        "max_batch_size": settings.max_batch_size,
        "instance_count": 1 if engine.device == "cuda" else settings.engine_instances,
        "max_queue_delay_us": settings.engine_queue_delay_us,
        "max_queue_size": settings.engine_max_queue_size,
        "queue_timeout_us": settings.engine_queue_timeout_us,
        "engine_kind": engine.kind,
        "engine_dir": (ct2_dir if engine.kind == "ctranslate2" else checkpoint).resolve(),
        "compute_type": engine.compute_type,
        "constrained": "true" if engine.constrained else "false",
        "device": engine.device,
        # one instance per GPU (Triton places a KIND_GPU group's count on every visible GPU)
        "instance_kind": "KIND_GPU" if engine.device == "cuda" else "KIND_CPU",
        "inter_threads": 1 if engine.device == "cuda" else settings.inter_threads,
        "intra_threads": settings.intra_threads,
        "max_input_tokens": limits.max_input_tokens,
        "max_output_tokens": limits.max_output_tokens,
    }


def place_ctranslate2(checkpoint: Path, ct2_dir: Path) -> Path:
    """Put the checkpoint's CTranslate2 model in ``ct2_dir``: its shipped conversion, or convert.

    Converting needs torch and transformers (the ``train`` extra); a model folder exported
    with its conversion (``instructner export``) needs neither, which keeps ``make serve``
    free of torch.

    Raises:
        RuntimeError: there is no matching shipped conversion and torch is not installed.

    """
    shipped = shipped_conversion(checkpoint)
    if shipped is not None:
        logger.info("using the CTranslate2 conversion shipped in %s", shipped)
        if ct2_dir.exists():
            shutil.rmtree(ct2_dir)
        shutil.copytree(shipped, ct2_dir)
        return ct2_dir
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise RuntimeError(
            f"{checkpoint} carries no CTranslate2 conversion of its weights "
            f"({checkpoint / SHIPPED_CT2_DIR}), and converting needs torch, which this "
            "environment lacks: `make setup` installs it, `instructner convert --model DIR` "
            "then adds the conversion to the model folder"
        )
    logger.info("converting %s to CTranslate2 in %s", checkpoint, ct2_dir)
    return convert_to_ctranslate2(checkpoint, ct2_dir)


def build_repository(settings: BuildSettings) -> BuildResult:
    """Convert the checkpoint and write the filled model repository and its manifest."""
    settings.check()
    out = settings.out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    trained = has_checkpoint(settings.model_dir)
    if trained:
        checkpoint = settings.model_dir
    else:
        checkpoint = out / f"untrained-{settings.untrained_size}"
        if not has_checkpoint(checkpoint):
            logger.warning(
                "no checkpoint in %s: making a random-init T5 (%s)",
                settings.model_dir,
                settings.untrained_size,
            )
            make_untrained_checkpoint(checkpoint, settings.untrained_size)
    ct2_dir = out / "engines" / "ctranslate2"
    if any(e.kind == "ctranslate2" for e in settings.engines):
        place_ctranslate2(checkpoint, ct2_dir)
    repository = out / "model_repository"
    repository.mkdir(exist_ok=True)
    models = repository_values(settings, checkpoint, ct2_dir)
    tokenizer_dir = copy_serving_tokenizer(checkpoint, out)
    for stale in repository.iterdir():
        if stale.is_dir() and stale.name not in models:
            shutil.rmtree(stale)
    for name, (template, values) in models.items():
        filled = repository_relative(values, repository, tokenizer_dir)
        fill_model(settings.templates / template, repository / name, filled)
    manifest: dict[str, object] = {
        "model_dir": str(settings.model_dir),
        "checkpoint": str(checkpoint.resolve()),
        "trained": trained,
        # the resolved path, as the up-to-date check reads it back from this manifest
        "checkpoint_fingerprint": fingerprint([checkpoint.resolve()]),
        "templates_fingerprint": fingerprint([settings.templates]),
        "settings": _settings_record(settings),
        "repository": str(repository.resolve()),
        "models": sorted(models),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return BuildResult(repository, checkpoint, trained, manifest)


def ensure_repository(settings: BuildSettings) -> BuildResult:
    """Return the existing build if it matches checkpoint, templates and settings, else build."""
    settings.check()
    manifest_file = settings.out_dir / MANIFEST
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        checkpoint = Path(str(manifest.get("checkpoint", "")))
        wanted_trained = has_checkpoint(settings.model_dir)
        current = (
            manifest.get("trained") == wanted_trained
            and (not wanted_trained or checkpoint == settings.model_dir.resolve())
            and has_checkpoint(checkpoint)
            and manifest.get("checkpoint_fingerprint") == fingerprint([checkpoint])
            and manifest.get("templates_fingerprint") == fingerprint([settings.templates])
            and manifest.get("settings") == json.loads(json.dumps(_settings_record(settings)))
        )
        if current:
            return BuildResult(
                Path(str(manifest["repository"])), checkpoint, bool(manifest["trained"]), manifest
            )
        logger.info("the build in %s is out of date: rebuilding", settings.out_dir)
    return build_repository(settings)


def add_model_and_out_arguments(parser: argparse.ArgumentParser, out: Path) -> None:
    """Add ``--model`` and ``--out`` (default ``out``): shared by the CPU and GPU builds."""
    parser.add_argument(
        "--model",
        type=Path,
        default=Path("models/default"),
        help="Hugging Face T5 checkpoint directory (default: models/default)",
    )
    parser.add_argument(
        "--out", type=Path, default=out, help=f"build output folder (default: {out})"
    )


def add_templates_argument(parser: argparse.ArgumentParser, default: Path) -> None:
    """Add ``--templates``: the folder of committed model templates to fill."""
    parser.add_argument(
        "--templates",
        type=Path,
        default=default,
        help=f"model templates to fill (default: {default}, the checkout's own)",
    )


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options shared by the build and serve command lines."""
    add_model_and_out_arguments(parser, Path("build/out"))
    parser.add_argument(
        "--device",
        choices=DEVICES,
        default="cpu",
        help="where the CTranslate2 engine model runs: cpu (default) or cuda (KIND_GPU "
        "instances, steps inline; docs/gpu-deployment.md)",
    )
    parser.add_argument(
        "--compute-type",
        choices=tuple(dict.fromkeys((*COMPUTE_TYPES, AUTO, *CUDA_COMPUTE_TYPES))),
        default=None,
        help="CTranslate2 compute type of the engine: on cpu int8 (default) or float32; on "
        "cuda auto (default: int8_bfloat16 from compute capability 8.0, else int8_float32), "
        f"or one of {', '.join(CUDA_COMPUTE_TYPES)}",
    )
    parser.add_argument(
        "--constrained",
        action="store_true",
        help="serve NER and typing answers decoded under the answer grammar (only sentence "
        "spans and the given labels; transformers float32 engine, slower; docs/results.md)",
    )
    parser.add_argument(
        "--steps",
        choices=STEP_PLACES,
        default=None,
        help="where instruction_ner runs the engine: embedded (the CPU engine inside "
        "instruction_ner, no model call per window; default on cpu) or inline (one "
        "call to the engine model per window, the GPU layout; default on cuda)",
    )
    add_templates_argument(parser, TEMPLATES)
    parser.add_argument(
        "--untrained-size",
        default="mini",
        help="preset of the random-init stand-in model (default: mini)",
    )


def settings_from_args(args: argparse.Namespace) -> BuildSettings:
    """Return the build settings the command line asks for."""
    device = getattr(args, "device", "cpu")
    compute_type = args.compute_type or (AUTO if device == "cuda" else "int8")
    # on cuda the engine is its own (GPU) model: instruction_ner calls it, steps inline
    steps = getattr(args, "steps", None) or ("inline" if device == "cuda" else DEFAULT_STEPS)
    return BuildSettings(
        model_dir=args.model,
        out_dir=args.out,
        templates=args.templates,
        engines=(
            (EngineVariant(kind="transformers", compute_type="float32", constrained=True),)
            if getattr(args, "constrained", False)
            else (EngineVariant(compute_type=compute_type, device=device),)
        ),
        steps=steps,
        untrained_size=args.untrained_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Build the repository (always rebuilds); exit code 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_build_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    result = build_repository(settings_from_args(args))
    logger.info("model repository ready: %s", result.repository)
    if result.warning:
        logger.warning("%s", result.warning)
    return 0


if __name__ == "__main__":
    sys.exit(main())
