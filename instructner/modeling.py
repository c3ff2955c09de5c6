"""The T5 model and tokenizer: build, load, save, choose a device, and generate answers.

Everything is local: the tokenizer ships with the package and checkpoints are plain Hugging
Face T5 directories, so nothing here ever reaches a model hub.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    PreTrainedTokenizerBase,
    StoppingCriteriaList,
    T5Config,
    T5ForConditionalGeneration,
)

from instructner.method.loops import LOOP_MAX_PERIOD as LOOP_MAX_PERIOD
from instructner.method.loops import LOOP_REPEATS as LOOP_REPEATS
from instructner.method.loops import looping_rows as looping_rows

logger = logging.getLogger(__name__)

TOKENIZER_DIR = Path(__file__).resolve().parent / "resources" / "t5-tokenizer"

# The original T5 vocabulary is padded to 32,128 rows (a multiple of 128); the tokenizer
# itself has 32,100 entries (32,000 pieces + 100 sentinels).
VOCAB_SIZE = 32128
PAD_TOKEN_ID = 0  # also the decoder start token, as in every T5
EOS_TOKEN_ID = 1
DEFAULT_SHARD_SIZE = "15MB"

# Shapes of the randomly initialised models (T5 v1.0 style: ReLU, tied embeddings).
SIZE_PRESETS: dict[str, dict[str, int]] = {
    # for tests and smoke runs, ~1 M parameters (almost all in the embedding)
    "tiny": {
        "d_model": 32,
        "d_ff": 64,
        "num_layers": 1,
        "num_decoder_layers": 1,
        "num_heads": 2,
        "d_kv": 16,
    },
    # ~29 M parameters: the "d_model 384, 4+4 layers" row of the serving speed table
    "mini": {
        "d_model": 384,
        "d_ff": 1536,
        "num_layers": 4,
        "num_decoder_layers": 4,
        "num_heads": 6,
        "d_kv": 64,
    },
    # ~60 M parameters: the shape of the original t5-small
    "small": {
        "d_model": 512,
        "d_ff": 2048,
        "num_layers": 6,
        "num_decoder_layers": 6,
        "num_heads": 8,
        "d_kv": 64,
    },
}
SHAPE_KEYS = ("d_model", "d_ff", "num_layers", "num_decoder_layers", "num_heads", "d_kv")


def load_tokenizer(path: str | Path | None = None) -> PreTrainedTokenizerBase:
    """Load a fast T5 tokenizer from a local directory (the shipped one by default).

    Only local files are read (``local_files_only``), so a missing directory is an error here
    rather than a download attempt.

    Raises:
        FileNotFoundError: ``path`` is not a directory holding tokenizer files.

    """
    from transformers import AutoTokenizer

    directory = Path(path) if path is not None else TOKENIZER_DIR
    if not (directory / "tokenizer.json").is_file() and not (directory / "spiece.model").is_file():
        raise FileNotFoundError(
            f"no tokenizer in {directory}: expected tokenizer.json or spiece.model there"
        )
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, use_fast=True)
    if not tokenizer.is_fast:
        raise ValueError(f"tokenizer in {directory} is not a fast tokenizer")
    return tokenizer


def checkpoint_tokenizer(directory: str | Path) -> PreTrainedTokenizerBase:
    """Load the tokenizer saved with a checkpoint (every consumer reads it from there).

    Raises:
        FileNotFoundError: the checkpoint holds no tokenizer files.

    """
    directory = Path(directory)
    if (directory / "tokenizer.json").is_file() or (directory / "spiece.model").is_file():
        return load_tokenizer(directory)
    raise FileNotFoundError(
        f"{directory} holds no tokenizer: a checkpoint carries its own tokenizer files "
        "(tokenizer.json or spiece.model)"
    )


def model_shape(size: str | Mapping[str, int]) -> dict[str, int]:
    """Resolve a size preset name or a shape mapping into a complete, checked shape.

    Raises:
        ValueError: unknown preset, unknown or missing keys, or non-positive values.

    """
    if isinstance(size, str):
        if size not in SIZE_PRESETS:
            raise ValueError(
                f"unknown model size {size!r}: expected one of {', '.join(SIZE_PRESETS)} "
                f"or a mapping with {', '.join(SHAPE_KEYS)}"
            )
        return dict(SIZE_PRESETS[size])
    unknown = sorted(set(size) - set(SHAPE_KEYS))
    if unknown:
        raise ValueError(f"unknown model shape keys {unknown}: expected {', '.join(SHAPE_KEYS)}")
    shape = dict(size)
    shape.setdefault("num_decoder_layers", shape.get("num_layers", 0))
    if "d_kv" not in shape and "d_model" in shape and "num_heads" in shape:
        shape["d_kv"] = shape["d_model"] // shape["num_heads"]
    missing = [key for key in SHAPE_KEYS if key not in shape]
    if missing:
        raise ValueError(f"model shape lacks {', '.join(missing)}")
    bad = {key: value for key, value in shape.items() if not isinstance(value, int) or value < 1}
    if bad:
        raise ValueError(f"model shape values must be positive integers, got {bad}")
    return shape


def new_t5_model(
    size: str | Mapping[str, int] = "mini",
    seed: int = 0,
    dropout_rate: float = 0.1,
    vocab_size: int = VOCAB_SIZE,
) -> T5ForConditionalGeneration:
    """Return a randomly initialised T5 of the given preset or shape, reproducible by seed.

    ``vocab_size`` is the number of embedding rows: the tokenizer's size (T5's 32,128 by
    default; a task tokenizer's own size otherwise).
    """
    shape = model_shape(size)
    if vocab_size < 3:
        raise ValueError(f"vocab_size must cover the pad, end and unk tokens, got {vocab_size}")
    config = T5Config(
        vocab_size=vocab_size,
        feed_forward_proj="relu",
        tie_word_embeddings=True,
        dropout_rate=dropout_rate,
        pad_token_id=PAD_TOKEN_ID,
        eos_token_id=EOS_TOKEN_ID,
        decoder_start_token_id=PAD_TOKEN_ID,
        **shape,
    )
    with _seeded(seed):
        model = T5ForConditionalGeneration(config)
    generation_config = model.generation_config
    if generation_config is not None:
        generation_config.decoder_start_token_id = PAD_TOKEN_ID
        generation_config.pad_token_id = PAD_TOKEN_ID
        generation_config.eos_token_id = EOS_TOKEN_ID
    return model


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's CPU generator for a block without disturbing the caller's RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def count_parameters(model: torch.nn.Module) -> int:
    """Return the number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def load_model(directory: str | Path) -> T5ForConditionalGeneration:
    """Load a T5 checkpoint from a local Hugging Face directory (config.json + weights).

    Raises:
        FileNotFoundError: the directory or its config.json is missing.
        ValueError: the checkpoint is not a T5 model.

    """
    directory = Path(directory)
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"no model checkpoint in {directory}: config.json is missing")
    config = T5Config.from_pretrained(str(directory), local_files_only=True)
    if config.model_type != "t5":
        raise ValueError(f"{config_file} describes a {config.model_type!r} model, expected 't5'")
    # float32 whatever the stored dtype: the shipped model is stored in float16, and CPU
    # training, evaluation and the engine conversion all work in float32
    model = T5ForConditionalGeneration.from_pretrained(
        str(directory), local_files_only=True, dtype=torch.float32
    )
    return model


def save_model(
    model: T5ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerBase,
    directory: str | Path,
    max_shard_size: str | int = DEFAULT_SHARD_SIZE,
) -> Path:
    """Save model weights (safetensors, in shards of ``max_shard_size``) and tokenizer files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, max_shard_size=max_shard_size, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def pick_device(name: str = "auto") -> torch.device:
    """Return the device for ``name``: ``auto`` (CUDA when available), ``cpu`` or ``cuda[:N]``.

    Raises:
        ValueError: CUDA was asked for but is not available.

    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PRECISIONS = ("auto", "fp32", "bf16")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """Return the CPU feature flags the kernel reports (empty where it reports none)."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_has_bf16(flags: frozenset[str] | None = None) -> bool:
    """Return whether the CPU computes bf16 matmuls natively (AVX-512 BF16 or AMX).

    Without them bf16 autocast on CPU is emulated and was measured 44-499x slower than fp32.
    """
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in CPU_BF16_FLAGS)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """Return the mixed-precision dtype for ``device`` and ``precision`` (None: fp32).

    ``auto``: bf16 on CUDA and on CPUs with native bf16 (:func:`cpu_has_bf16`), fp32 otherwise;
    ``fp32`` and ``bf16`` force the choice.

    Raises:
        ValueError: an unknown precision.

    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else None


def autocast(
    device: torch.device, precision: str = "fp32"
) -> contextlib.AbstractContextManager[Any]:
    """Return an autocast context for ``device`` (a no-op when the precision is fp32).

    The default keeps fp32 on CPU (inference paths); CUDA always runs bf16 autocast.
    """
    dtype = autocast_dtype(device, precision if device.type != "cuda" else "auto")
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass(frozen=True)
class Generation:
    """Answers in prompt order plus the indices of prompts that needed special treatment.

    ``truncated`` are prompts longer than the source limit that were cut (only when the caller
    allowed it); ``unfinished`` are answers that hit ``max_new_tokens`` before end-of-sequence.
    """

    answers: list[str]
    truncated: list[int]
    unfinished: list[int]


class _StopLoops:
    """A transformers stopping criterion: a sequence stops once it loops (:func:`looping_rows`)."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> Any:
        return torch.tensor(looping_rows(input_ids.tolist()), device=input_ids.device)


def _batch_constraint(
    allowed_tokens: Sequence[Callable[[list[int]], list[int]]] | None, batch: Sequence[int]
) -> Callable[[int, torch.Tensor], list[int]] | None:
    """Map transformers' (row in the batch, decoder ids) to the prompt's own constraint."""
    if allowed_tokens is None:
        return None

    def allowed(row: int, input_ids: torch.Tensor) -> list[int]:
        return allowed_tokens[batch[row]](input_ids.tolist()[1:])  # without the start token

    return allowed


def _fit_source_length(
    encoded: list[list[int]], max_source_length: int, truncate: bool
) -> tuple[list[list[int]], list[int]]:
    """Return the prompts cut to ``max_source_length`` (if allowed) and the indices cut.

    Raises:
        ValueError: a prompt is over the length and ``truncate`` is false.

    """
    truncated = [index for index, ids in enumerate(encoded) if len(ids) > max_source_length]
    if truncated and not truncate:
        first = truncated[0]
        raise ValueError(
            f"{len(truncated)} of {len(encoded)} prompts exceed max_source_length "
            f"{max_source_length} tokens (first: prompt {first}, {len(encoded[first])} tokens); "
            "raise the limit or allow truncation explicitly"
        )
    if not truncated:
        return encoded, truncated
    logger.warning(
        "truncating %d of %d prompts to %d tokens", len(truncated), len(encoded), max_source_length
    )
    cut = [
        ids if len(ids) <= max_source_length else ids[: max_source_length - 1] + [EOS_TOKEN_ID]
        for ids in encoded
    ]
    return cut, truncated


def generate(
    model: T5ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    batch_size: int = 32,
    max_new_tokens: int = 128,
    num_beams: int = 1,
    max_source_length: int = 512,
    truncate: bool = False,
    stop_loops: bool = True,
    allowed_tokens: Sequence[Callable[[list[int]], list[int]]] | None = None,
) -> Generation:
    """Generate one answer per prompt, batched and sorted by length to cut padding.

    Decoding is greedy unless ``num_beams`` > 1. With ``stop_loops`` an answer that repeats one
    stretch of tokens :data:`LOOP_REPEATS` times in a row stops there (it is then reported as
    unfinished). Answers are decoded without special tokens and without tokenizer clean-up, so
    ``" ."`` in an entity stays as written. ``allowed_tokens`` gives, per prompt, the tokens
    that may follow a generated prefix (constrained decoding,
    :mod:`instructner.method.constrained`).

    Raises:
        ValueError: a prompt is longer than ``max_source_length`` tokens and ``truncate`` is
            false (the message says how many and which), or a size argument is not positive.

    """
    if batch_size < 1 or max_new_tokens < 1 or num_beams < 1 or max_source_length < 1:
        raise ValueError(
            "batch_size, max_new_tokens, num_beams and max_source_length must be positive"
        )
    encoded: list[list[int]] = tokenizer(list(prompts), add_special_tokens=True)["input_ids"]
    encoded, truncated = _fit_source_length(encoded, max_source_length, truncate)
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda index: len(encoded[index]), reverse=True)
    answers: list[str] = [""] * len(encoded)
    unfinished: list[int] = []
    was_training = model.training
    model.eval()
    try:
        for begin in range(0, len(order), batch_size):
            batch = order[begin : begin + batch_size]
            input_ids, attention_mask = _pad([encoded[index] for index in batch], device)
            with torch.inference_mode(), autocast(device):
                output = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_new_tokens,
                    num_beams=num_beams,
                    stopping_criteria=StoppingCriteriaList([_StopLoops()]) if stop_loops else None,
                    prefix_allowed_tokens_fn=_batch_constraint(allowed_tokens, batch),
                    do_sample=False,
                    decoder_start_token_id=PAD_TOKEN_ID,
                    pad_token_id=PAD_TOKEN_ID,
                    eos_token_id=EOS_TOKEN_ID,
                )
            assert isinstance(output, torch.Tensor)  # no return_dict_in_generate
            for index, row in zip(batch, output.tolist(), strict=True):
                answers[index] = tokenizer.decode(
                    row, skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
                if EOS_TOKEN_ID not in row[1:]:
                    unfinished.append(index)
    finally:
        model.train(was_training)
    return Generation(answers=answers, truncated=truncated, unfinished=sorted(unfinished))


def generate_answers(
    model: T5ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    batch_size: int = 32,
    max_new_tokens: int = 128,
    num_beams: int = 1,
    max_source_length: int = 512,
) -> list[str]:
    """Return one answer per prompt (see :func:`generate`; over-long prompts raise)."""
    return generate(
        model,
        tokenizer,
        prompts,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        num_beams=num_beams,
        max_source_length=max_source_length,
    ).answers


def _pad(rows: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id rows into ``input_ids`` and ``attention_mask`` tensors."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), PAD_TOKEN_ID, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for position, row in enumerate(rows):
        ids[position, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[position, : len(row)] = 1
    return ids.to(device), mask.to(device)
