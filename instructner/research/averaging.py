"""Average the weights of several checkpoints of one model into a shippable model folder.

Branches decayed from different points of one training run end in the same basin: the mean of
their weights is a model of its own, often better on dev than any of them (a "model soup";
docs/training.md has the measurements). Only checkpoints that can be averaged are accepted:
the same architecture (config and every tensor's shape), the same tokenizer and the same
trained tasks. The result is written like an export (half-precision shards within the size
limits, tokenizer files, the first member's training config) with ``averaged-from.json``
naming the members and the hash of their weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from instructner.method.trained_tasks import trained_tasks
from instructner.modeling import checkpoint_tokenizer, load_model
from instructner.research.export import (
    MAX_SHARD_BYTES,
    MAX_TOTAL_BYTES,
    TRAINING_CONFIG,
    ExportReport,
    check_dtype,
    write_model_folder,
)

logger = logging.getLogger(__name__)

RECORD = "averaged-from.json"
# config entries that name or describe a saved copy rather than the model
_CONFIG_NOISE = ("_name_or_path", "transformers_version", "torch_dtype", "dtype")


def _architecture(directory: Path) -> dict[str, object]:
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    return {k: v for k, v in config.items() if k not in _CONFIG_NOISE}


def _weights_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def check_compatible(sources: Sequence[Path]) -> None:
    """Refuse members that cannot be averaged, naming the first that differs and how.

    Raises:
        ValueError: fewer than two members, or a member whose architecture, tokenizer or
            trained tasks differ from the first member's.
        FileNotFoundError: a member has no config.json or tokenizer.json.

    """
    if len(sources) < 2:
        raise ValueError(f"averaging needs at least two checkpoints, got {len(sources)}")
    first = sources[0]
    for directory in sources:
        for name in ("config.json", "tokenizer.json"):
            if not (directory / name).is_file():
                raise FileNotFoundError(f"{directory} holds no {name}: not a model folder")
    architecture = _architecture(first)
    tokenizer = (first / "tokenizer.json").read_bytes()
    tasks = trained_tasks(first)
    for other in sources[1:]:
        theirs = _architecture(other)
        if theirs != architecture:
            keys = sorted(
                k for k in {*architecture, *theirs} if architecture.get(k) != theirs.get(k)
            )
            raise ValueError(f"{other} has another architecture than {first}: {', '.join(keys)}")
        if (other / "tokenizer.json").read_bytes() != tokenizer:
            raise ValueError(f"{other} has another tokenizer than {first}: token ids would differ")
        if trained_tasks(other) != tasks:
            raise ValueError(
                f"{other} was trained for {', '.join(trained_tasks(other))}, "
                f"{first} for {', '.join(tasks)}"
            )


def average_checkpoints(
    sources: Sequence[str | Path],
    out: str | Path,
    dtype: str = "float16",
    max_shard_bytes: int = MAX_SHARD_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> ExportReport:
    """Write the element-wise mean of the members' weights (computed in float32) to ``out``.

    Raises:
        ValueError: unknown dtype, members that cannot be averaged (:func:`check_compatible`),
            ``out`` among the members, or weights over a size limit.

    """
    check_dtype(dtype)
    members = [Path(s) for s in sources]
    out = Path(out)
    check_compatible(members)
    if any(out.resolve() == m.resolve() for m in members):
        raise ValueError(f"{out} is one of the checkpoints to average: write elsewhere")
    model = load_model(members[0])
    total = {name: tensor.detach().float().clone() for name, tensor in model.state_dict().items()}
    for member in members[1:]:
        state = load_model(member).state_dict()
        for name, tensor in state.items():
            if name not in total or total[name].shape != tensor.shape:
                raise ValueError(f"{member}: tensor {name} does not match {members[0]}")
            total[name] += tensor.float()
    model.load_state_dict({name: tensor / len(members) for name, tensor in total.items()})
    config = members[0] / TRAINING_CONFIG
    shards = write_model_folder(
        model,
        checkpoint_tokenizer(members[0]),
        out,
        dtype,
        members[0],
        config if config.is_file() else None,
        max_shard_bytes,
        max_total_bytes,
        stale_patterns=(TRAINING_CONFIG, RECORD),
    )
    record = {
        "method": "element-wise mean of the weights, in float32",
        "dtype": dtype,
        "members": [{"path": str(m), "weights_sha256": _weights_digest(m)} for m in members],
    }
    (out / RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    logger.info("averaged %d checkpoints into %s", len(members), out)
    return ExportReport(out, shards)
