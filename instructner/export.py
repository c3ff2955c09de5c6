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
from dataclasses import dataclass
from pathlib import Path

import torch

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
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    source, out = Path(source), Path(out)
    model = load_model(source)
    torch.nn.Module.to(model, dtype=DTYPES[dtype])  # in place; typed call
    tokenizer = checkpoint_tokenizer(source)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in (*WEIGHT_PATTERNS, *TOKENIZER_FILES):
        for stale in out.glob(pattern):
            stale.unlink()  # a tokenizer left from another model would disagree on ids
    remove_stale_calibration(out)
    # save_pretrained sizes shards by tensor bytes; the file header comes on top
    save_model(model, tokenizer, out, max_shard_size=int(max_shard_bytes * SHARD_HEADROOM))
    if (source / "spiece.model").is_file():  # the SentencePiece model the tokenizer came from
        shutil.copyfile(source / "spiece.model", out / "spiece.model")
    if training_config is None:
        candidate = source.parent / "config.yaml"
        training_config = candidate if candidate.is_file() else None
    elif not Path(training_config).is_file():
        raise FileNotFoundError(f"training config {training_config} does not exist")
    if training_config is not None:
        shutil.copyfile(training_config, out / TRAINING_CONFIG)
    shards = check_size_limits(out, max_shard_bytes, max_total_bytes)
    logger.info(
        "exported %s to %s: %d shards, %d bytes", source, out, len(shards), sum(shards.values())
    )
    return ExportReport(out, shards)
