"""Seq2seq engines that turn prompt token ids into answer token ids, callable without Triton.

Two engines share one small interface (:class:`Engine`): the CPU default runs CTranslate2
(int8 or float32) converted from the Hugging Face checkpoint, and the reference runs the same
checkpoint with transformers/PyTorch. Both decode greedily, so for the same checkpoint the
float32 engines give the same answers. The Triton ``engine`` model wraps either one behind the
tensor contract of Triton's TensorRT-LLM backend (see :mod:`instructner.serving.engine_contract`);
benchmarks call them in-process.

Token ids in, token ids out: tokenization is the caller's business. Outputs leave out the
decoder start token and the end token.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

logger = logging.getLogger(__name__)

ENGINE_KINDS = ("ctranslate2", "transformers")
COMPUTE_TYPES = ("int8", "float32")
CT2_VOCABULARY = "shared_vocabulary.json"
# CTranslate2's converter pads the vocabulary to the model's row count by repeating sentinel
# names; unique names keep the id <-> token map one-to-one.
_PADDING_TOKEN = "<instructner_unused_{}>"


@dataclass(frozen=True)
class Generated:
    """One answer: generated token ids (no start or end token), and whether it ended."""

    token_ids: list[int]
    finished: bool  # the end token was produced; False means the length limit stopped it


class Engine(Protocol):
    """What the serving code needs from a seq2seq engine."""

    kind: str
    vocab_size: int
    decoder_start_token_id: int
    eos_token_id: int

    def generate(
        self, inputs: Sequence[Sequence[int]], max_new_tokens: Sequence[int], end_id: int
    ) -> list[Generated]:
        """Greedy-decode one answer per input, each up to its own ``max_new_tokens``."""
        ...


def _check_batch(inputs: Sequence[Sequence[int]], max_new_tokens: Sequence[int]) -> None:
    if len(inputs) != len(max_new_tokens):
        raise ValueError(
            f"got {len(inputs)} inputs but {len(max_new_tokens)} max_new_tokens values"
        )
    if any(len(ids) == 0 for ids in inputs):
        raise ValueError("every input needs at least one token")
    if any(n < 1 for n in max_new_tokens):
        raise ValueError("max_new_tokens must be at least 1 for every input")


def _cut(ids: Sequence[int], end_id: int, limit: int) -> Generated:
    """Cut a generated row at its end token, or at ``limit`` tokens."""
    row = list(ids)
    if end_id in row[:limit]:
        return Generated(token_ids=row[: row.index(end_id)], finished=True)
    return Generated(token_ids=row[:limit], finished=False)


class CTranslate2Engine:
    """A CTranslate2 translator over a converted T5 checkpoint (CPU by default).

    Args:
        model_dir: directory written by :func:`convert_to_ctranslate2`.
        compute_type: ``int8`` or ``float32`` (weights quantized at load time if needed).
        inter_threads: batches decoded in parallel; a batch is split into this many parts.
        intra_threads: threads per batch (0: CTranslate2's default).
        device: ``cpu`` or ``cuda``.

    """

    kind = "ctranslate2"

    def __init__(
        self,
        model_dir: str | Path,
        compute_type: str = "int8",
        inter_threads: int = 1,
        intra_threads: int = 0,
        device: str = "cpu",
    ) -> None:
        import ctranslate2

        if compute_type not in COMPUTE_TYPES:
            raise ValueError(
                f"unknown compute_type {compute_type!r}: expected one of {', '.join(COMPUTE_TYPES)}"
            )
        model_dir = Path(model_dir)
        vocabulary_file = model_dir / CT2_VOCABULARY
        if not vocabulary_file.is_file():
            raise FileNotFoundError(
                f"no CTranslate2 model in {model_dir}: {CT2_VOCABULARY} is missing "
                "(build it with `make engines`)"
            )
        self._tokens: list[str] = json.loads(vocabulary_file.read_text(encoding="utf-8"))
        self._ids = {token: index for index, token in enumerate(self._tokens)}
        if len(self._ids) != len(self._tokens):
            raise ValueError(f"{vocabulary_file} repeats tokens; rebuild it with `make engines`")
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self.vocab_size = len(self._tokens)
        self.decoder_start_token_id = self._ids[config["decoder_start_token"]]
        self.eos_token_id = self._ids[config["eos_token"]]
        self.inter_threads = max(1, inter_threads)
        self.compute_type = compute_type
        self._translator = ctranslate2.Translator(
            str(model_dir),
            device=device,
            compute_type=compute_type,
            inter_threads=self.inter_threads,
            intra_threads=intra_threads,
        )

    def generate(
        self, inputs: Sequence[Sequence[int]], max_new_tokens: Sequence[int], end_id: int
    ) -> list[Generated]:
        """Greedy-decode; the batch is split into ``inter_threads`` parts decoded in parallel."""
        _check_batch(inputs, max_new_tokens)
        if not inputs:
            return []
        try:
            source = [[self._tokens[i] for i in ids] for ids in inputs]
            end_token = self._tokens[end_id]
        except IndexError:
            raise ValueError(f"token id out of range 0..{self.vocab_size - 1}") from None
        limit = max(max_new_tokens)
        results = self._translator.translate_batch(
            source,
            max_batch_size=math.ceil(len(source) / self.inter_threads),
            beam_size=1,
            end_token=end_token,
            return_end_token=True,
            max_input_length=0,  # never truncate the input silently
            max_decoding_length=limit,
            min_decoding_length=0,
        )
        return [
            _cut([self._ids[token] for token in result.hypotheses[0]], end_id, n)
            for result, n in zip(results, max_new_tokens, strict=True)
        ]


class TransformersEngine:
    """The reference engine: the Hugging Face checkpoint run by transformers/PyTorch."""

    kind = "transformers"

    def __init__(self, model_dir: str | Path, threads: int = 0, device: str = "cpu") -> None:
        import torch

        from instructner.modeling import load_model

        if threads > 0:
            torch.set_num_threads(threads)
        self._torch = torch
        self._device = torch.device(device)
        # float32, whatever dtype the checkpoint stores; Any as before (transformers' stubs)
        self._model: Any = cast(Any, load_model(model_dir))
        self._model.to(self._device)
        self._model.eval()
        config = self._model.config
        self.vocab_size = int(config.vocab_size)
        self.decoder_start_token_id = int(config.decoder_start_token_id)
        self.eos_token_id = int(config.eos_token_id)
        self.pad_token_id = int(config.pad_token_id)
        self.compute_type = "float32"

    def generate(
        self, inputs: Sequence[Sequence[int]], max_new_tokens: Sequence[int], end_id: int
    ) -> list[Generated]:
        """Greedy-decode the batch in one call, padded on the right."""
        _check_batch(inputs, max_new_tokens)
        if not inputs:
            return []
        if any(i < 0 or i >= self.vocab_size for ids in inputs for i in ids):
            raise ValueError(f"token id out of range 0..{self.vocab_size - 1}")
        torch = self._torch
        width = max(len(ids) for ids in inputs)
        input_ids = torch.full((len(inputs), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, ids in enumerate(inputs):
            input_ids[row, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
            mask[row, : len(ids)] = 1
        with torch.inference_mode():
            output = self._model.generate(
                input_ids=input_ids.to(self._device),
                attention_mask=mask.to(self._device),
                max_new_tokens=max(max_new_tokens),
                do_sample=False,
                num_beams=1,
                decoder_start_token_id=self.decoder_start_token_id,
                pad_token_id=self.pad_token_id,
                eos_token_id=end_id,
            )
        return [
            _cut(row[1:], end_id, n)  # row[0] is the decoder start token
            for row, n in zip(output.tolist(), max_new_tokens, strict=True)
        ]


def load_engine(kind: str, model_dir: str | Path, **options: Any) -> Engine:
    """Return the engine ``kind`` (one of :data:`ENGINE_KINDS`) over ``model_dir``.

    ``options`` go to the engine's constructor (``compute_type``, ``inter_threads``,
    ``intra_threads`` for CTranslate2; ``threads`` for transformers).
    """
    if kind == "ctranslate2":
        return CTranslate2Engine(model_dir, **options)
    if kind == "transformers":
        return TransformersEngine(model_dir, **options)
    raise ValueError(f"unknown engine kind {kind!r}: expected one of {', '.join(ENGINE_KINDS)}")


def convert_to_ctranslate2(
    checkpoint_dir: str | Path, output_dir: str | Path, quantization: str | None = None
) -> Path:
    """Convert a Hugging Face T5 checkpoint into a CTranslate2 model directory.

    Weights are stored in float32 unless ``quantization`` (e.g. ``int8``) is given; either can be
    loaded with any compute type. The vocabulary's padding rows get unique names so that token
    ids map back one-to-one.

    Raises:
        FileNotFoundError: ``checkpoint_dir`` holds no ``config.json``.

    """
    from ctranslate2.converters import TransformersConverter

    checkpoint_dir, output_dir = Path(checkpoint_dir), Path(output_dir)
    if not (checkpoint_dir / "config.json").is_file():
        raise FileNotFoundError(f"no model checkpoint in {checkpoint_dir}: config.json is missing")
    if output_dir.exists():
        shutil.rmtree(output_dir)
    TransformersConverter(str(checkpoint_dir)).convert(
        str(output_dir), quantization=quantization, force=True
    )
    _make_vocabulary_unique(output_dir / CT2_VOCABULARY)
    return output_dir


def _make_vocabulary_unique(path: Path) -> None:
    tokens: list[str] = json.loads(path.read_text(encoding="utf-8"))
    seen: set[str] = set()
    unique = []
    for index, token in enumerate(tokens):
        unique.append(_PADDING_TOKEN.format(index) if token in seen else token)
        seen.add(token)
    path.write_text(json.dumps(unique, ensure_ascii=False), encoding="utf-8")
