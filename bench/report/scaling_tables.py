"""The scaling section: the document-length and label-count sweeps, their growth and figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.plot import SCALING_PLOTS
from bench.report.figures import PLOT, image
from bench.report.markdown_cells import num, others, row
from bench.report.summary_lookups import Summary

_DOC_LENGTH_COLUMNS = [
    "sentences/request",
    "windows/request",
    "words/request",
    "prompt tokens/request",
    "requests/s",
    "sentences/s",
    "words/s",
    "p50 ms",
    "p99 ms",
    "ms/sentence",
    "p50 ms/sentence",
    "engine batch",
    "others %",
]
_LABEL_COLUMNS = [
    "labels",
    "prompt tokens/window",
    "output tokens/window",
    "GOP/request",
    "sentences/s",
    "p50 ms",
    "p99 ms",
    "ms/sentence",
    "engine batch",
    "others %",
]


def _failed_points(points: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return a line per scaling point that could not be measured (none if all were)."""
    if not points:
        return []
    return [
        "Not measured: "
        + "; ".join(
            f"{p['sentences_per_request']} sentences/request with {p['label_count']} labels "
            f"({p['error']})"
            for p in points
        )
        + ".",
        "",
    ]


def _p50(point: Mapping[str, Any]) -> str:
    """p50 in ms, or the mean latency of an unstable level (which has no percentiles)."""
    if point.get("p50_ms") is None and point.get("mean_ms") is not None:
        return f"{point['mean_ms']:.0f} (mean)"
    return num(point.get("p50_ms"), 0)


def _gop_per_request(point: Mapping[str, Any]) -> float | None:
    """Return the model's GOP per request (older summaries: gflop_per_request)."""
    value = point.get("gop_per_request", point.get("gflop_per_request"))
    return None if value is None else float(value)


def _unstable(point: Mapping[str, Any]) -> str:
    return "" if point.get("stable", True) else " (unstable)"


def _doc_length_row(p: Mapping[str, Any]) -> str:
    return row(
        [
            str(p["sentences_per_request"]),
            num(p["windows_per_request"]),
            num(p["words_per_request"], 0),
            num(p["prompt_tokens_per_request"], 0),
            num(p["requests_per_s"], 2) + _unstable(p),
            num(p["sentences_per_s"]),
            num(p["words_per_s"], 0),
            _p50(p),
            num(p.get("p99_ms"), 0),
            num(p.get("ms_per_sentence")),
            num(p.get("p50_ms_per_sentence")),
            num(p.get("engine_avg_batch")),
            others(p.get("load")),
        ]
    )


def _label_row(p: Mapping[str, Any]) -> str:
    return row(
        [
            str(p["label_count"]),
            num(p["prompt_tokens_per_window"]),
            num(p["output_tokens_per_window"]),
            num(_gop_per_request(p), 3),
            num(p["sentences_per_s"]) + _unstable(p),
            _p50(p),
            num(p.get("p99_ms"), 0),
            num(p.get("ms_per_sentence")),
            num(p.get("engine_avg_batch")),
            others(p.get("load")),
        ]
    )


def _doc_length_lines(summary: Summary, image_link: str) -> list[str]:
    """Return the document-length sweep: its table, failed points, growth and figure."""
    scaling = summary["scaling"]
    lines = [
        f"**Scaling with document length** ({scaling['model']} at concurrency "
        f"{scaling['concurrency']}, perf_analyzer over gRPC; a request is k consecutive "
        f"CoNLL-2003 test sentences of the first {scaling['pool_sentences']} joined by a line "
        f"break into one TEXT, with the corpus's {scaling['base_labels']} label words; the "
        "server splits it into sentence windows; ms/sentence is 1000 / sentences/s)",
        "",
        row(_DOC_LENGTH_COLUMNS),
        row(["---:"] * len(_DOC_LENGTH_COLUMNS)),
    ]
    points = sorted(scaling["doc_length"], key=lambda p: p["sentences_per_request"])
    lines += [_doc_length_row(p) for p in points]
    failed = scaling.get("failed", [])
    lines += [""] + _failed_points(
        [p for p in failed if p["label_count"] == scaling["base_labels"]]
    )
    growth = scaling.get("growth", {}).get("doc_length", {})
    lines += ["Growth: " + growth.get("text", "not computed"), ""]
    lines += image(
        summary,
        "throughput and latency against document length",
        image_link,
        SCALING_PLOTS["doc_length"],
        bool(scaling["doc_length"]),
    )
    return lines


def _label_lines(summary: Summary, image_link: str) -> list[str]:
    """Return the label-count sweep: its table, failed points, label lists, growth, figure."""
    scaling = summary["scaling"]
    lines = [
        f"**Scaling with the label count** (one sentence per request, the same sentences, "
        f"concurrency {scaling['concurrency']}; prompt and output tokens are the server's "
        "counts per window; GOP/request is the model's work in 10^9 operations, 2 per "
        "multiply-add, bench/flops.py)",
        "",
        row(_LABEL_COLUMNS),
        row(["---:"] * len(_LABEL_COLUMNS)),
    ]
    lines += [_label_row(p) for p in sorted(scaling["labels"], key=lambda p: p["label_count"])]
    lists = "; ".join(
        v["description"]
        for _, v in sorted(scaling.get("label_lists", {}).items(), key=lambda item: int(item[0]))
    )
    failed = scaling.get("failed", [])
    lines += [""] + _failed_points([p for p in failed if p["sentences_per_request"] == 1])
    lines += [
        "Label lists (label words of instructner.method.labels, the benchmark corpus's first, "
        f"then the other corpora's in corpus order, each word once): {lists}. Every word is in "
        "`scaling.label_lists` of summary.json.",
        "",
        "Growth: " + scaling.get("growth", {}).get("labels", {}).get("text", "not computed"),
        "",
    ]
    lines += image(
        summary,
        "throughput and latency against the label count",
        image_link,
        SCALING_PLOTS["labels"],
        bool(scaling["labels"]),
    )
    return lines


def scaling_section(summary: Summary, image_link: str = PLOT) -> list[str]:
    """Return the markdown of the document-length and label sweeps (none without them)."""
    scaling = summary.get("scaling")
    if not scaling:
        return []
    if "error" in scaling:
        return [f"**Scaling**: not measured: {scaling['error']}", ""]
    return _doc_length_lines(summary, image_link) + _label_lines(summary, image_link)
