"""Seq2seq engines that turn prompt token ids into answer token ids, callable without Triton.

Two engines share one small interface (:class:`Engine`): the CPU default runs CTranslate2
(int8 or float32) converted from the Hugging Face checkpoint, and the reference runs the same
checkpoint with transformers/PyTorch. Both decode greedily, so for the same checkpoint the
float32 engines give the same answers. The Triton ``engine`` model wraps either one behind the
tensor contract of Triton's TensorRT-LLM backend (see :mod:`instructner.serving.engine_contract`);
benchmarks call them in-process.

Token ids in, token ids out: tokenization is the caller's business. Outputs leave out the
decoder start token and the end token. An answer stuck in a loop (:mod:`instructner.method.loops`)
stops there in both engines, as in evaluation, instead of running to its length limit; it is
then not ``finished``.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from instructner.method.loops import ends_in_loop
from instructner.serving.devices import CPU_COMPUTE_TYPES, resolve_compute_type

logger = logging.getLogger(__name__)

ENGINE_KINDS = ("ctranslate2", "transformers")
COMPUTE_TYPES = CPU_COMPUTE_TYPES  # on the CPU; CUDA's are in instructner.serving.devices
CT2_VOCABULARY = "shared_vocabulary.json"
# CTranslate2's converter pads the vocabulary to the model's row count by repeating sentinel
# names; unique names keep the id <-> token map one-to-one.
_PADDING_TOKEN = "<instructner_unused_{}>"


@dataclass(frozen=True)
class Generated:
    """One answer: generated token ids (no start or end token), and whether it ended.

    ``log_probs`` (when asked for) holds the natural-log probability the model gave each of
    ``token_ids`` when it chose it; the end token's is left out like the token itself.
    """

    token_ids: list[int]
    finished: bool  # the end token was produced; False means the length limit stopped it
    log_probs: list[float] | None = None


class Engine(Protocol):
    """What the serving code needs from a seq2seq engine."""

    kind: str
    vocab_size: int
    decoder_start_token_id: int
    eos_token_id: int

    def generate(
        self,
        inputs: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        end_id: int,
        return_log_probs: bool = False,
    ) -> list[Generated]:
        """Greedy-decode one answer per input, each up to its own ``max_new_tokens``.

        With ``return_log_probs`` every answer carries its tokens' log-probabilities.
        """
        ...

    def close(self) -> None:
        """Release the engine's resources (the object is not used afterwards)."""
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


def _cut(
    ids: Sequence[int], end_id: int, limit: int, log_probs: Sequence[float] | None = None
) -> Generated:
    """Cut a generated row (and its log-probabilities) at its end token, or at ``limit``."""
    row = list(ids)
    finished = end_id in row[:limit]
    length = row.index(end_id) if finished else min(limit, len(row))
    if log_probs is not None and len(log_probs) < length:
        raise RuntimeError(f"the engine gave {len(log_probs)} log-probs for {length} tokens")
    return Generated(
        token_ids=row[:length],
        finished=finished,
        log_probs=None if log_probs is None else [float(p) for p in log_probs[:length]],
    )


class CTranslate2Engine:
    """A CTranslate2 translator over a converted T5 checkpoint (CPU by default).

    The same conversion runs on the CPU and on CUDA; only the compute type differs.

    Args:
        model_dir: directory written by :func:`convert_to_ctranslate2`.
        compute_type: CPU ``int8`` or ``float32``; CUDA one of
            :data:`~instructner.serving.devices.CUDA_COMPUTE_TYPES` or ``auto``
            (:mod:`instructner.serving.devices`); weights are converted at load time.
        inter_threads: batches decoded in parallel; a batch is split into this many parts.
        intra_threads: threads per batch (0: CTranslate2's default).
        device: ``cpu`` or ``cuda``.
        stop_loops: stop an answer once it loops (the per-step callback checks each token).
        device_index: the GPU (Triton's ``model_instance_device_id`` for a KIND_GPU instance).

    """

    kind = "ctranslate2"

    def __init__(
        self,
        model_dir: str | Path,
        compute_type: str = "int8",
        inter_threads: int = 1,
        intra_threads: int = 0,
        device: str = "cpu",
        stop_loops: bool = True,
        device_index: int = 0,
    ) -> None:
        import ctranslate2

        compute_type = resolve_compute_type(device, compute_type, device_index, ctranslate2)
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
        self.device = device
        self.stop_loops = stop_loops
        translator = ctranslate2.Translator(
            str(model_dir),
            device=device,
            device_index=device_index,
            compute_type=compute_type,
            inter_threads=self.inter_threads,
            intra_threads=intra_threads,
        )
        # The translator is held only here, and released when the engine goes or at the
        # latest before interpreter shutdown: left to the very end, its worker threads can be
        # torn down after the runtime and abort the process on exit.
        self._held = [translator]
        self._release = weakref.finalize(self, self._held.clear)

    def generate(
        self,
        inputs: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        end_id: int,
        return_log_probs: bool = False,
    ) -> list[Generated]:
        """Greedy-decode; the batch is split into ``inter_threads`` parts decoded in parallel.

        Log-probabilities come from CTranslate2's per-step callback (called for each token of
        a greedy search), so asking for them adds no second pass over the decoder; the same
        callback stops an answer that loops.
        """
        _check_batch(inputs, max_new_tokens)
        if not inputs:
            return []
        try:
            source = [[self._tokens[i] for i in ids] for ids in inputs]
            end_token = self._tokens[end_id]
        except IndexError:
            raise ValueError(f"token id out of range 0..{self.vocab_size - 1}") from None
        steps: list[list[float]] = [[] for _ in source]
        tokens: list[list[int]] = [[] for _ in source]
        stop_loops = self.stop_loops

        def record(step: Any) -> bool:
            # Called once per token, in step order per answer; batch_id indexes the whole
            # batch, also when it is split across inter_threads.
            index = step.batch_id
            if return_log_probs:
                steps[index].append(step.log_prob)
            row = tokens[index]
            row.append(step.token_id)
            # True stops this answer: it repeats itself (greedy decoding never leaves a loop)
            return stop_loops and ends_in_loop(row)

        if not self._held:
            raise RuntimeError("the CTranslate2 engine is closed")
        results = self._held[0].translate_batch(
            source,
            max_batch_size=math.ceil(len(source) / self.inter_threads),
            beam_size=1,
            end_token=end_token,
            return_end_token=True,
            max_input_length=0,  # never truncate the input silently
            max_decoding_length=max(max_new_tokens),
            min_decoding_length=0,
            return_scores=return_log_probs,  # CTranslate2 fills step.log_prob only with scores
            callback=record if return_log_probs or self.stop_loops else None,
        )
        return [
            _cut(
                [self._ids[token] for token in result.hypotheses[0]],
                end_id,
                n,
                row if return_log_probs else None,
            )
            for result, n, row in zip(results, max_new_tokens, steps, strict=True)
        ]

    def close(self) -> None:
        """Release the translator now (Triton's finalize); the engine cannot be used after."""
        self._release()


class TransformersEngine:
    """The reference engine: the Hugging Face checkpoint run by transformers/PyTorch.

    With ``constrained`` it decodes NER and typing answers under the answer grammar
    (:class:`instructner.method.constrained.NerAnswerGrammar`: only word-bounded spans of the
    sentence and the prompt's own label words), reading sentence and labels back from each
    prompt; extraction prompts decode freely. Slower than CTranslate2 (a Python check per
    token), measured more accurate (docs/results.md).
    """

    kind = "transformers"

    def __init__(
        self,
        model_dir: str | Path,
        threads: int = 0,
        device: str = "cpu",
        stop_loops: bool = True,
        constrained: bool = False,
    ) -> None:
        import torch

        from instructner.modeling import checkpoint_tokenizer, load_model

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
        self.stop_loops = stop_loops
        self.constrained = constrained
        self._tokenizer = checkpoint_tokenizer(model_dir) if constrained else None

    def _grammars(self, inputs: Sequence[Sequence[int]]) -> list[Any] | None:
        """One answer grammar per prompt (None for extraction prompts), or None if free."""
        if self._tokenizer is None:
            return None
        from instructner.method.constrained import NerAnswerGrammar
        from instructner.method.prompts import parse_prompt

        grammars = []
        for ids in inputs:
            prompt = self._tokenizer.decode(
                list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
            )
            task, sentence, labels = parse_prompt(prompt)
            grammars.append(
                None if task == "extract" else NerAnswerGrammar(self._tokenizer, sentence, labels)
            )
        return grammars

    def generate(
        self,
        inputs: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        end_id: int,
        return_log_probs: bool = False,
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
        grammars = self._grammars(inputs)
        # a free row in a constrained batch (an extraction prompt) may write any token
        every_token = list(range(self.vocab_size)) if grammars else []

        def allowed(row: int, prefix: Any) -> list[int]:
            grammar = grammars[row] if grammars else None
            return every_token if grammar is None else grammar.allowed(prefix.tolist()[1:])

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
                return_dict_in_generate=True,
                # raw logits: under the grammar, processed scores would be renormalized over
                # the allowed tokens and overstate the model's confidence
                output_logits=return_log_probs,
                stopping_criteria=_loop_stopper() if self.stop_loops else None,
                prefix_allowed_tokens_fn=allowed if grammars else None,
            )
            sequences = output.sequences
            log_probs: list[list[float] | None] = [None] * len(inputs)
            if return_log_probs:
                steps = torch.stack(output.logits, dim=1).float().log_softmax(dim=-1)
                chosen = sequences[:, 1:, None]  # column 0 is the decoder start token
                log_probs = steps.gather(-1, chosen).squeeze(-1).tolist()
        return [
            _cut(row[1:], end_id, n, row_log_probs)
            for row, n, row_log_probs in zip(
                sequences.tolist(), max_new_tokens, log_probs, strict=True
            )
        ]

    def close(self) -> None:
        """Nothing to release early; the model goes with the object."""


def _loop_stopper() -> Any:
    """Return the transformers stopping criterion that ends looping answers (as evaluation)."""
    from transformers import StoppingCriteriaList

    from instructner.modeling import _StopLoops

    return StoppingCriteriaList([_StopLoops()])


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


# A model folder may carry its CTranslate2 conversion (written at export, where torch is
# installed), so that serving converts nothing and needs no torch. ``source.json`` holds the
# hashes of the files it was converted from; a conversion of other weights is ignored.
SHIPPED_CT2_DIR = "ctranslate2"
CONVERSION_SOURCE = "source.json"


def _checkpoint_hashes(checkpoint_dir: Path) -> dict[str, str]:
    """Return file name -> sha256 of the config and every weight file ({} without weights)."""
    import hashlib

    weights = sorted(
        p.name
        for pattern in ("*.safetensors", "pytorch_model*.bin")
        for p in checkpoint_dir.glob(pattern)
    )
    hashes = {}
    for name in ("config.json", *weights):
        path = checkpoint_dir / name
        if path.is_file():
            with open(path, "rb") as stream:
                hashes[name] = hashlib.file_digest(stream, "sha256").hexdigest()
    return hashes if weights else {}


def write_shipped_conversion(checkpoint_dir: str | Path) -> Path:
    """Convert the checkpoint into ``<checkpoint>/ctranslate2`` (float32) with its source."""
    checkpoint_dir = Path(checkpoint_dir)
    target = convert_to_ctranslate2(checkpoint_dir, checkpoint_dir / SHIPPED_CT2_DIR)
    source = {"converted_from": _checkpoint_hashes(checkpoint_dir)}
    (target / CONVERSION_SOURCE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    return target


def shipped_conversion(checkpoint_dir: str | Path) -> Path | None:
    """Return the checkpoint's own CTranslate2 conversion if it was made from these weights."""
    checkpoint_dir = Path(checkpoint_dir)
    folder = checkpoint_dir / SHIPPED_CT2_DIR
    try:
        source = json.loads((folder / CONVERSION_SOURCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (folder / "model.bin").is_file():
        return None
    hashes = _checkpoint_hashes(checkpoint_dir)
    recorded = source.get("converted_from") if isinstance(source, dict) else None
    return folder if hashes and recorded == hashes else None


def _make_vocabulary_unique(path: Path) -> None:
    tokens: list[str] = json.loads(path.read_text(encoding="utf-8"))
    seen: set[str] = set()
    unique = []
    for index, token in enumerate(tokens):
        unique.append(_PADDING_TOKEN.format(index) if token in seen else token)
        seen.add(token)
    path.write_text(json.dumps(unique, ensure_ascii=False), encoding="utf-8")
