"""In-process paths: plain transformers ``generate`` and the project's engine without Triton.

Plain transformers is what a user writes by hand: the fast T5 tokenizer, ``generate`` (greedy,
the same ``max_new_tokens`` as the server), decode without clean-up, the project's parser.
The batched variant sorts the sentences by length before batching (this favours the baseline:
less padding). The engine path is :class:`instructner.serving.pipeline.Pipeline`: the serving
steps chained in one process over the same CTranslate2 engine as the engine model, at the
server's thread layout and (when the thread sweep of :mod:`bench.limit` found a faster one)
at the best layout measured.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from pathlib import Path

from bench.flops import Call, engine_call
from bench.machine import CpuMonitor, QuietGate
from bench.paths import INPROCESS_BATCH1, INPROCESS_BATCHMAX, PathResult
from bench.quality import score_answers, score_entities
from bench.workload import Workload
from instructner.method.confidence import served_score_method
from instructner.serving.engine import CTranslate2Engine, Engine, Generated
from instructner.serving.limits import Limits
from instructner.serving.pipeline import Pipeline, Query
from instructner.serving.protos import ExtractionResult
from instructner.serving.tokenizer import PromptTokenizer


class TransformersBaseline:
    """The checkpoint run by transformers/PyTorch in this process (all cores, float32)."""

    def __init__(self, checkpoint: Path) -> None:
        import torch
        from transformers import AutoTokenizer, T5ForConditionalGeneration

        self._torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
        self.model = T5ForConditionalGeneration.from_pretrained(
            str(checkpoint), local_files_only=True
        )
        self.model.eval()
        self.threads = torch.get_num_threads()
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def _answers(self, prompts: Sequence[str], workload: Workload) -> tuple[list[str], list[int]]:
        torch = self._torch
        # only ids and mask: a generic fast tokenizer also returns token_type_ids, which T5
        # does not take
        encoded = self.tokenizer(
            list(prompts), return_tensors="pt", padding=True, return_token_type_ids=False
        )
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=workload.max_new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=workload.end_id,
            )
        answers, tokens = [], []
        for row in output.tolist():
            generated = row[1:]  # row[0] is the decoder start token
            if workload.end_id in generated:  # padding follows the end of a finished row
                generated = generated[: generated.index(workload.end_id)]
            tokens.append(len(generated))
            answers.append(
                self.tokenizer.decode(
                    generated, skip_special_tokens=True, clean_up_tokenization_spaces=False
                )
            )
        return answers, tokens

    def run(self, workload: Workload, batch_size: int) -> PathResult:
        """Answer every sentence in batches of ``batch_size`` (1: a plain loop)."""
        prompts = workload.prompts()
        order = list(range(len(prompts)))
        if batch_size > 1:
            order.sort(key=lambda i: len(workload.prompt_ids[i]), reverse=True)
        self._answers(prompts[:1], workload)  # warm-up, not timed
        answers: list[str] = [""] * len(prompts)
        tokens = [0] * len(prompts)
        latencies = []
        started = time.perf_counter()
        for begin in range(0, len(order), batch_size):
            batch = order[begin : begin + batch_size]
            call = time.perf_counter()
            batch_answers, batch_tokens = self._answers([prompts[i] for i in batch], workload)
            latencies.append(time.perf_counter() - call)
            for i, answer, count in zip(batch, batch_answers, batch_tokens, strict=True):
                answers[i], tokens[i] = answer, count
        seconds = time.perf_counter() - started
        name = "transformers_batch1" if batch_size == 1 else f"transformers_batch{batch_size}"
        return PathResult(
            name=name,
            title=f"transformers generate, batch {batch_size}",
            batch_size=batch_size,
            sentences=len(prompts),
            seconds=seconds,
            output_tokens=tokens,
            quality=score_answers(workload.sentences, answers, workload.verbalizer),
            latencies_s=latencies,
            notes=f"torch {self.threads} threads, float32"
            + (", sorted by length" if batch_size > 1 else ""),
        )

    def close(self) -> None:
        """Free the model before the next path runs."""
        del self.model
        gc.collect()


def run_transformers(
    checkpoint: Path,
    workload: Workload,
    batch_sizes: Sequence[int],
    monitor: CpuMonitor,
    gate: QuietGate | None = None,
) -> tuple[list[PathResult], int]:
    """Return the batch-1 loop and each of ``batch_sizes``, and the model's parameter count."""
    baseline = TransformersBaseline(checkpoint)
    try:
        results = []
        sizes = sorted({min(size, len(workload.sentences)) for size in batch_sizes} | {1})
        for size in sizes:
            if gate:
                gate.wait(f"transformers_batch{size}")
            monitor.start(f"transformers_batch{size}")
            result = baseline.run(workload, size)
            result.load = monitor.stop(f"transformers_batch{size}")
            results.append(result)
        return results, baseline.parameters
    finally:
        baseline.close()


class RecordingEngine:
    """An engine that keeps a :data:`bench.flops.Call` for every answer it gives.

    The pipeline's results keep only whether an answer reached the length limit; the engine's
    own ``finished`` (False also for an answer stopped by loop detection) is read here.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kind = engine.kind
        self.vocab_size = engine.vocab_size
        self.decoder_start_token_id = engine.decoder_start_token_id
        self.eos_token_id = engine.eos_token_id
        self.calls: list[Call] = []

    def generate(
        self,
        inputs: Sequence[Sequence[int]],
        max_new_tokens: Sequence[int],
        end_id: int,
        return_log_probs: bool = False,
    ) -> list[Generated]:
        """Generate with the wrapped engine and record every answer's call."""
        outputs = self.engine.generate(inputs, max_new_tokens, end_id, return_log_probs)
        self.calls += [engine_call(len(ids), out) for ids, out in zip(inputs, outputs, strict=True)]
        return outputs

    def close(self) -> None:
        """Close the wrapped engine."""
        self.engine.close()


def _timed_batches(
    pipeline: Pipeline, requests: Sequence[Query], batch_size: int
) -> tuple[list[ExtractionResult], list[float], float]:
    """Run ``requests`` in batches; return the results, each batch's seconds and the total."""
    outputs: list[ExtractionResult] = []
    latencies = []
    started = time.perf_counter()
    for begin in range(0, len(requests), batch_size):
        call = time.perf_counter()
        outputs.extend(pipeline.run_many(requests[begin : begin + batch_size]))
        latencies.append(time.perf_counter() - call)
    return outputs, latencies, time.perf_counter() - started


def _engine_notes(
    compute_type: str, engine_instances: int, inter_threads: int, intra_threads: int, layout: str
) -> str:
    """Describe the in-process engine's thread layout for the path's notes."""
    instances = (
        f" (the server's {engine_instances} engine instances × {inter_threads})"
        if engine_instances > 1
        else ""
    )
    return (
        f"CTranslate2 {compute_type}, inter_threads {engine_instances * inter_threads}"
        f"{instances}, intra_threads {intra_threads}: {layout}; validate, window, tokenize, "
        "generate, parse as the server does"
    )


def run_engine_inprocess(
    engine_dir: Path,
    tokenizer_dir: Path,
    limits: Limits,
    workload: Workload,
    compute_type: str,
    inter_threads: int,
    intra_threads: int,
    max_batch_size: int,
    monitor: CpuMonitor,
    gate: QuietGate | None = None,
    engine_instances: int = 1,
    batch_one: bool = True,
    name: str = INPROCESS_BATCHMAX,
    layout: str = "the server's layout",
    title_note: str = "",
) -> list[PathResult]:
    """Return the in-process pipeline as a batch-1 loop and in batches of ``max_batch_size``.

    ``engine_instances`` translators of ``inter_threads`` workers each (the server's layout)
    run here as one translator of ``engine_instances * inter_threads`` workers (a worker takes
    its own part of a batch, as an instance takes its own batch). ``batch_one``: run the
    batch-1 loop too (:data:`INPROCESS_BATCH1`); ``name`` is the batched path's name,
    ``layout`` says in the notes which thread layout this is, ``title_note`` ends its title.
    """
    engine = RecordingEngine(
        CTranslate2Engine(
            engine_dir,
            compute_type=compute_type,
            inter_threads=engine_instances * inter_threads,
            intra_threads=intra_threads,
        )
    )
    # the tokenizer directory is the checkpoint: score by its calibrated formula, as served
    pipeline = Pipeline(
        engine,
        PromptTokenizer(tokenizer_dir),
        limits,
        score_method=served_score_method(tokenizer_dir),
    )
    labels = workload.labels
    requests = [Query(text, "ner", tuple(labels)) for text in workload.texts]
    notes = _engine_notes(compute_type, engine_instances, inter_threads, intra_threads, layout)
    batch_max = min(max_batch_size, len(requests))
    runs = [(1, INPROCESS_BATCH1, "")] if batch_one else []
    runs.append((batch_max, name, f", {title_note}" if title_note else ""))
    try:
        pipeline.run_many(requests[:1])  # warm-up, not timed
        results = []
        for batch_size, path_name, note in runs:
            if gate:
                gate.wait(path_name)
            monitor.start(path_name)
            engine.calls = []
            outputs, latencies, seconds = _timed_batches(pipeline, requests, batch_size)
            load = monitor.stop(path_name)
            predicted = [
                [(e.start, e.end, str(e.label)) for e in result.entities] for result in outputs
            ]
            results.append(
                PathResult(
                    name=path_name,
                    title=f"our engine in-process, batch {batch_size}{note}",
                    batch_size=batch_size,
                    sentences=len(requests),
                    seconds=seconds,
                    output_tokens=[sum(w.output_tokens for w in r.windows) for r in outputs],
                    windows=[len(r.windows) for r in outputs],
                    engine_calls=list(engine.calls),
                    quality=score_entities(workload.sentences, predicted, workload.verbalizer),
                    latencies_s=latencies,
                    notes=notes,
                    load=load,
                    layout=layout,
                )
            )
        return results
    finally:
        engine.close()
