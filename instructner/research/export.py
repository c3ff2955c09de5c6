"""Export a training checkpoint as a shippable model folder (``models/default``).

The shipped model lives in git, so it must stay small: half-precision safetensors shards of at
most 15 MB and at most 60 MB in all (the limits of issue 6). The export casts the weights,
writes the shards and the tokenizer files, copies the training config beside them so that
``instructner train --config`` reproduces the run, and refuses a result over the limits.
Files it does not write (the model card README.md, evaluation metrics) are left in place;
weights of an earlier export are removed first, so no stale shard survives, and so is the
``calibration/`` folder measured on them: the repository build reads the served score formula
from it, and another model's measurement must not choose this one's (rerun ``instructner
calibrate``).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase, T5ForConditionalGeneration

from instructner.modeling import checkpoint_tokenizer, load_model, save_model

logger = logging.getLogger(__name__)

DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
MAX_SHARD_BYTES = 15_000_000
MAX_TOTAL_BYTES = 60_000_000
SHARD_HEADROOM = 0.95
TRAINING_CONFIG = "training-config.yaml"
WEIGHT_PATTERNS = ("*.safetensors", "model.safetensors.index.json", "pytorch_model*.bin")


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote: shard sizes in bytes and their sum."""

    directory: Path
    shards: dict[str, int]

    @property
    def total_bytes(self) -> int:
        """Return the summed size of the weight shards."""
        return sum(self.shards.values())


def check_size_limits(
    directory: str | Path,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> dict[str, int]:
    """Return the safetensors shard sizes of ``directory``, checked against the limits.

    Raises:
        ValueError: no shard, a shard over ``max_shard_bytes``, or all over ``max_total_bytes``.

    """
    shards = {p.name: p.stat().st_size for p in sorted(Path(directory).glob("*.safetensors"))}
    if not shards:
        raise ValueError(f"{directory} holds no safetensors weights")
    for name, size in shards.items():
        if size > max_shard_bytes:
            raise ValueError(f"{name} is {size} bytes, over the {max_shard_bytes}-byte shard limit")
    total = sum(shards.values())
    if total > max_total_bytes:
        raise ValueError(f"weights total {total} bytes, over the {max_total_bytes}-byte limit")
    return shards


CALIBRATION_DIR = "calibration"


def remove_stale_calibration(out: Path) -> None:
    """Remove ``out/calibration``, measured on the weights being replaced (logged)."""
    stale = out / CALIBRATION_DIR
    if stale.is_dir():
        shutil.rmtree(stale)
        logger.warning(
            "removed %s: it was measured on the previous weights; run instructner calibrate "
            "--model %s --out %s to serve the new ones with their own score formula",
            stale,
            out,
            stale,
        )


TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "spiece.model",
)


def check_dtype(dtype: str) -> None:
    """Refuse a weight dtype the export cannot write.

    Raises:
        ValueError: ``dtype`` is not one of :data:`DTYPES`.

    """
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}")


def write_model_folder(
    model: T5ForConditionalGeneration,
    tokenizer: PreTrainedTokenizerBase,
    out: Path,
    dtype: str,
    tokenizer_source: Path,
    training_config: Path | None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
    stale_patterns: Sequence[str] = (),
) -> dict[str, int]:
    """Write ``model`` (cast to ``dtype`` in place) and its tokenizer as a model folder.

    Weights, tokenizer files, ``stale_patterns`` and the calibration of the previous weights
    are removed first; ``tokenizer_source``'s ``spiece.model`` and ``training_config`` (if
    given) are copied beside them, and the WordNet aliases of its label words written
    (:mod:`instructner.method.label_aliases`). Returns the shard sizes, checked against the limits.

    Raises:
        ValueError: the written weights break a size limit.

    """
    torch.nn.Module.to(model, dtype=DTYPES[dtype])  # in place; typed call
    out.mkdir(parents=True, exist_ok=True)
    for pattern in (*WEIGHT_PATTERNS, *TOKENIZER_FILES, *stale_patterns):
        for stale in out.glob(pattern):
            stale.unlink()  # a tokenizer left from another model would disagree on ids
    remove_stale_calibration(out)
    # save_pretrained sizes shards by tensor bytes; the file header comes on top
    save_model(model, tokenizer, out, max_shard_size=int(max_shard_bytes * SHARD_HEADROOM))
    spiece = tokenizer_source / "spiece.model"
    if spiece.is_file():  # the SentencePiece model the tokenizer came from
        shutil.copyfile(spiece, out / "spiece.model")
    if training_config is not None:
        shutil.copyfile(training_config, out / TRAINING_CONFIG)
    from instructner.method.label_aliases import write_aliases
    from instructner.method.model_info import known_words

    write_aliases(out, known_words(out))  # the label words this model's training used
    sizes = check_size_limits(out, max_shard_bytes, max_total_bytes)
    from instructner.serving.engine import write_shipped_conversion

    write_shipped_conversion(out)  # serving it then needs no torch (make serve)
    return sizes


def export_checkpoint(
    source: str | Path,
    out: str | Path,
    dtype: str = "float16",
    training_config: str | Path | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> ExportReport:
    """Write ``source`` (an HF T5 checkpoint) to ``out`` in ``dtype`` within the size limits.

    ``training_config`` defaults to the ``config.yaml`` of the run folder holding ``source``
    (``runs/NAME/best`` -> ``runs/NAME/config.yaml``), when there is one.

    Raises:
        ValueError: unknown dtype, or the written weights break a size limit.
        FileNotFoundError: ``source`` or an explicitly given training config is missing.

    """
    check_dtype(dtype)
    source, out = Path(source), Path(out)
    if training_config is None:
        candidate = source.parent / "config.yaml"
        config = candidate if candidate.is_file() else None
    elif not Path(training_config).is_file():
        raise FileNotFoundError(f"training config {training_config} does not exist")
    else:
        config = Path(training_config)
    model = load_model(source)
    tokenizer = checkpoint_tokenizer(source)
    shards = write_model_folder(
        model, tokenizer, out, dtype, source, config, max_shard_bytes, max_total_bytes
    )
    logger.info(
        "exported %s to %s: %d shards, %d bytes", source, out, len(shards), sum(shards.values())
    )
    return ExportReport(out, shards)
