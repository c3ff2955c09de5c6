"""The limit: the machine's GEMM peak against the rate the engine achieves on the workload.

The peak is measured in the same run with torch on large square matrices, threads = usable
cores: ``torch._int_mm`` (int8 × int8 → int32) for int8 and ``torch.matmul`` for float32. The
engine's work is the model operations of :mod:`bench.flops` (GOP, 2 per multiply-add) over the
real token counts of every call; its time is the time of ``CTranslate2Engine.generate`` alone
(tokens in, tokens out, with the log-probabilities the server asks for), for each thread layout
``inter_threads × intra_threads`` at each batch size, and the in-process pipeline paths' whole
time (tokenize and parse too), added by :func:`add_pipeline` once they have run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.flops import FORMULA, Call, ModelShape, engine_call, total_ops
from bench.machine import CpuMonitor, QuietGate
from instructner.serving.limits import Limits
from instructner.serving.requests import validate_request
from instructner.serving.tokenizer import PromptTokenizer
from instructner.serving.window_steps import plan_request, prepare_window

GEMM_OPS = {
    "int8": "torch._int_mm (int8 × int8 → int32)",
    "float32": "torch.matmul (float32)",
}


def measure_gemm(kind: str, n: int, threads: int, min_seconds: float) -> dict[str, Any]:
    """Time one ``n``×``n``×``n`` product of ``kind`` until ``min_seconds`` pass (at least 3).

    Returns the best and the median rate in GOP/s (2 n³ operations per product); an op that
    does not run here is returned with ``available`` false and the reason.
    """
    import torch

    if kind not in GEMM_OPS:
        raise ValueError(f"unknown GEMM kind {kind!r}: expected one of {', '.join(GEMM_OPS)}")
    record: dict[str, Any] = {"kind": kind, "op": GEMM_OPS[kind], "n": n, "threads": threads}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        generator = torch.Generator().manual_seed(0)
        if kind == "int8":
            a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator)
            b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator)

            def product() -> object:
                return torch._int_mm(a, b)

        else:
            x = torch.randn(n, n, generator=generator)
            y = torch.randn(n, n, generator=generator)

            def product() -> object:
                return torch.matmul(x, y)

        product()  # warm-up (and the check that the op exists here)
        times: list[float] = []
        started = time.perf_counter()
        while len(times) < 3 or time.perf_counter() - started < min_seconds:
            begin = time.perf_counter()
            product()
            times.append(time.perf_counter() - begin)
    except (RuntimeError, AttributeError, NotImplementedError) as error:
        return {**record, "available": False, "reason": f"{type(error).__name__}: {error}"}
    finally:
        torch.set_num_threads(previous)
    operations = 2 * n**3
    return {
        **record,
        "available": True,
        "repeats": len(times),
        "peak_gops": operations / min(times) / 1e9,
        "median_gops": operations / statistics.median(times) / 1e9,
    }


def gemm_peak(n: int, threads: int, min_seconds: float) -> dict[str, dict[str, Any]]:
    """Measure both kinds: ``{"int8": ..., "float32": ...}``."""
    return {kind: measure_gemm(kind, n, threads, min_seconds) for kind in GEMM_OPS}


def window_prompts(
    texts: Sequence[str], labels: Sequence[str], tokenizer: PromptTokenizer, limits: Limits
) -> list[list[int]]:
    """Return the prompt ids of every window the server would run for ``texts`` (task ner)."""
    prompts = []
    for text in texts:
        request = validate_request(text, "ner", labels, (), limits)
        for window in plan_request(request, tokenizer, limits):
            _, ids = prepare_window(tokenizer, limits, request, window)
            prompts.append(ids)
    return prompts


def thread_layouts(cores: int) -> list[tuple[int, int]]:
    """Return ``(inter, intra)`` pairs to try: powers of two and ``cores``, up to 2 × cores.

    On 2 cores: (1, 1), (1, 2), (2, 1), (2, 2) (the last oversubscribes the cores).
    """
    values = sorted({1, cores} | {2**p for p in range(1, cores.bit_length()) if 2**p <= cores})
    return [(i, j) for i in values for j in values if i * j <= 2 * max(1, cores)]


def sweep_threads(
    engine_dir: Path,
    compute_type: str,
    prompts: Sequence[Sequence[int]],
    sentences: int,
    end_id: int,
    max_new_tokens: int,
    layouts: Sequence[tuple[int, int]],
    batch_sizes: Sequence[int],
    repeats: int,
    shape: ModelShape | None,
    monitor: CpuMonitor,
    gate: QuietGate | None = None,
) -> list[dict[str, Any]]:
    """Time ``engine.generate`` over ``prompts`` for every layout and batch size.

    Each entry holds the seconds of every pass, the median's throughput in sentences and
    windows per second, and (with ``shape``) the model's GOP/s over the real token counts.
    """
    from instructner.serving.engine import CTranslate2Engine

    entries = []
    if gate:
        gate.wait("thread_sweep")
    for inter, intra in layouts:
        engine = CTranslate2Engine(
            engine_dir, compute_type=compute_type, inter_threads=inter, intra_threads=intra
        )
        try:
            engine.generate(prompts[:1], [max_new_tokens], end_id, return_log_probs=True)
            for batch in sorted({min(b, len(prompts)) for b in batch_sizes}):
                phase = f"threads_inter{inter}_intra{intra}_batch{batch}"
                monitor.start(phase)
                seconds, calls = [], []
                for _ in range(repeats):
                    started = time.perf_counter()
                    outputs = []
                    for begin in range(0, len(prompts), batch):
                        part = prompts[begin : begin + batch]
                        outputs += engine.generate(
                            part, [max_new_tokens] * len(part), end_id, return_log_probs=True
                        )
                    seconds.append(time.perf_counter() - started)
                    calls = [
                        engine_call(len(ids), out)
                        for ids, out in zip(prompts, outputs, strict=True)
                    ]
                load = monitor.stop(phase)
                entries.append(
                    layout_entry(inter, intra, batch, seconds, sentences, calls, shape, load)
                )
        finally:
            engine.close()
    return entries


def layout_entry(
    inter: int,
    intra: int,
    batch: int,
    seconds: Sequence[float],
    sentences: int,
    calls: Sequence[Call],
    shape: ModelShape | None,
    load: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Return one layout's figures from the seconds of its passes (the median counts)."""
    median = statistics.median(seconds)
    entry: dict[str, Any] = {
        "inter_threads": inter,
        "intra_threads": intra,
        "batch_size": batch,
        "seconds": list(seconds),
        "median_s": median,
        "sentences": sentences,
        "windows": len(calls),
        "prompt_tokens_per_window": sum(n for n, _, _ in calls) / max(1, len(calls)),
        "output_tokens_per_window": sum(g for _, g, _ in calls) / max(1, len(calls)),
        "sentences_per_s": sentences / median,
        "windows_per_s": len(calls) / median,
        "load": dict(load or {}),
    }
    if shape is not None:
        operations = total_ops(shape, calls)
        entry["gop"] = operations / 1e9
        entry["gops"] = operations / median / 1e9
    return entry


def _peak_for(peak: Mapping[str, Mapping[str, Any]], compute_type: str) -> Mapping[str, Any]:
    kind = "int8" if compute_type.startswith("int8") else "float32"
    return peak.get(kind, {})


def _fraction(
    peak: Mapping[str, Mapping[str, Any]], compute_type: str, gops: float | None
) -> float | None:
    """Return ``gops`` as a share of the GEMM peak of the engine's precision (None if unknown)."""
    reference = _peak_for(peak, compute_type)
    peak_gops = reference.get("peak_gops") if reference.get("available") else None
    return None if gops is None or not peak_gops else gops / peak_gops


def limit_record(
    shape: ModelShape | None,
    compute_type: str,
    peak: Mapping[str, Mapping[str, Any]],
    sweep: Sequence[Mapping[str, Any]],
    default_layout: tuple[int, int],
    default_description: str = "",
) -> dict[str, Any]:
    """Put the peak, the sweep and the achieved rates together, with the fractions of peak.

    The best layout is the one with the most sentences/s at its best batch;
    ``default_description`` says how the server's settings make ``default_layout``. The
    in-process pipeline paths run after the sweep (one of them at its best layout) and are
    added with :func:`add_pipeline`.
    """

    def fraction(gops: float | None) -> float | None:
        return _fraction(peak, compute_type, gops)

    best_per_layout: dict[tuple[int, int], Mapping[str, Any]] = {}
    for entry in sweep:
        key = (entry["inter_threads"], entry["intra_threads"])
        if key not in best_per_layout or (
            entry["sentences_per_s"] > best_per_layout[key]["sentences_per_s"]
        ):
            best_per_layout[key] = entry
    layouts = [
        {
            **entry,
            "fraction_of_peak": fraction(entry.get("gops")),
            "server_default": key == tuple(default_layout),
        }
        for key, entry in sorted(best_per_layout.items())
    ]
    best = max(layouts, key=lambda e: e["sentences_per_s"], default=None)
    default = next((e for e in layouts if e["server_default"]), None)
    achieved = []
    if best is not None:
        achieved.append(
            {
                "source": "engine.generate, best layout "
                f"(inter {best['inter_threads']} × intra {best['intra_threads']}, "
                f"batch {best['batch_size']})",
                "gops": best.get("gops"),
                "fraction_of_peak": best["fraction_of_peak"],
            }
        )
    if default is not None and default is not best:
        achieved.append(
            {
                "source": "engine.generate, server default layout "
                f"(inter {default['inter_threads']} × intra {default['intra_threads']}, "
                f"batch {default['batch_size']})",
                "gops": default.get("gops"),
                "fraction_of_peak": default["fraction_of_peak"],
            }
        )
    return {
        "compute_type": compute_type,
        "peak_kind": "int8" if compute_type.startswith("int8") else "float32",
        "model_shape": None if shape is None else shape.to_dict(),
        "ops_formula": FORMULA,
        "gemm_peak": dict(peak),
        "achieved": achieved,
        "thread_sweep": sweep_summary(layouts, best, default, default_layout, default_description),
        "all_layouts": [dict(e) for e in sweep],
    }


def add_pipeline(
    record: dict[str, Any], name: str, seconds: float, gop: float, layout: str
) -> None:
    """Add an in-process pipeline path's achieved rate to a :func:`limit_record` record.

    ``gop`` is the model operations of its engine calls (GOP), ``seconds`` its whole time
    (validate, window, tokenize, generate, parse), ``layout`` its thread layout in words.
    """
    if not seconds:
        return
    gops = gop / seconds
    record.setdefault("achieved", []).append(
        {
            "source": f"{name} (whole in-process pipeline, {layout})",
            "gops": gops,
            "fraction_of_peak": _fraction(
                record.get("gemm_peak", {}), str(record.get("compute_type", "")), gops
            ),
        }
    )


def best_layout(record: Mapping[str, Any]) -> tuple[int, int] | None:
    """Return ``(inter, intra)`` of the best layout a :func:`limit_record` measured, if any."""
    best = (record.get("thread_sweep") or {}).get("best")
    if not best:
        return None
    return int(best["inter_threads"]), int(best["intra_threads"])


def sweep_summary(
    layouts: Sequence[Mapping[str, Any]],
    best: Mapping[str, Any] | None,
    default: Mapping[str, Any] | None,
    default_layout: tuple[int, int],
    default_description: str = "",
) -> dict[str, Any]:
    """Compare the server's default layout with the best measured one, in one sentence."""
    inter, intra = default_layout
    server = f"the server's default (inter {inter} × intra {intra}"
    server += f"; {default_description})" if default_description else ")"
    record: dict[str, Any] = {
        "layouts": [dict(e) for e in layouts],
        "server_default": {
            "inter_threads": inter,
            "intra_threads": intra,
            "description": default_description,
        },
        "best": None
        if best is None
        else {"inter_threads": best["inter_threads"], "intra_threads": best["intra_threads"]},
        "default_is_best": None,
        "default_over_best": None,
    }
    if best is None:
        record["text"] = "thread layouts: not measured"
        return record
    name = f"inter {best['inter_threads']} × intra {best['intra_threads']}"
    if default is None:
        record["text"] = (
            f"best layout {name} ({best['sentences_per_s']:.1f} sentences/s, batch "
            f"{best['batch_size']}); {server} was not in the sweep"
        )
        return record
    ratio = default["sentences_per_s"] / best["sentences_per_s"]
    record["default_is_best"] = default is best
    record["default_over_best"] = ratio
    if default is best:
        record["text"] = (
            f"{server} is the best layout measured: "
            f"{best['sentences_per_s']:.1f} sentences/s at batch {best['batch_size']}"
        )
    else:
        record["text"] = (
            f"{server} is NOT the best layout measured: "
            f"{default['sentences_per_s']:.1f} sentences/s against "
            f"{best['sentences_per_s']:.1f} for {name} (batch {best['batch_size']}), "
            f"{ratio:.2f}× of it"
        )
    return record
