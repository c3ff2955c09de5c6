"""The limit section: the GEMM peak, the rates achieved against it and the thread layouts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.report.markdown_cells import num, others, pct, row
from bench.report.summary_lookups import Summary


def _peak_text(peak: Mapping[str, Any], kind: str) -> str:
    """Return the GEMM peak of ``kind`` (int8 or float32), or why it was not measured."""
    record = peak.get(kind, {})
    if not record:
        return f"{kind}: not measured"
    if not record.get("available"):
        return f"{kind} {record.get('op', '')}: not available ({record.get('reason', '')})"
    load = f", others {others(record['load'])}%" if record.get("load") else ""
    return (
        f"{kind} {record['op']} {record['peak_gops']:.0f} GOP/s "
        f"(median {record['median_gops']:.0f}, n = {record['n']}, {record['threads']} threads"
        f"{load})"
    )


def _layout_row(e: Mapping[str, Any], best: Mapping[str, Any]) -> str:
    """Return the row of one thread layout, marked if the server's default or the best."""
    marks = []
    if e.get("server_default"):
        marks.append("server default")
    if (e["inter_threads"], e["intra_threads"]) == (
        best.get("inter_threads"),
        best.get("intra_threads"),
    ):
        marks.append("**best**")
    return row(
        [
            f"{e['inter_threads']} × {e['intra_threads']}",
            str(e["batch_size"]),
            num(e["sentences_per_s"]),
            num(e["windows_per_s"]),
            num(e.get("gops"), 2),
            pct(e.get("fraction_of_peak")),
            others(e.get("load")),
            ", ".join(marks),
        ]
    )


def _thread_layout_lines(sweep: Mapping[str, Any]) -> list[str]:
    """Return the table of the engine's thread layouts (none if the sweep did not run)."""
    layouts = sweep.get("layouts", [])
    if not layouts:
        return []
    first = layouts[0]
    lines = [
        "",
        f"Thread layouts of the engine alone (`engine.generate`, {first['windows']} windows "
        f"of the first {first['sentences']} sentences, {first['prompt_tokens_per_window']:.0f}"
        f" prompt and {first['output_tokens_per_window']:.1f} generated tokens per window; "
        "each at its best batch, median of its passes):",
        "",
        row(
            [
                "inter × intra",
                "best batch",
                "sentences/s",
                "windows/s",
                "GOP/s",
                "of peak",
                "others %",
                "",
            ]
        ),
        row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]),
    ]
    best = sweep.get("best") or {}
    lines += [_layout_row(e, best) for e in layouts]
    lines += ["", f"Thread layout: {sweep.get('text', '')}."]
    return lines


def limit_section(summary: Summary) -> list[str]:
    """Return the markdown of the GEMM peak, the achieved rates and the thread layouts."""
    limit = summary.get("limit")
    if not limit:
        return []
    if "error" in limit:
        return [f"**The limit**: not measured: {limit['error']}", ""]
    peak = limit.get("gemm_peak", {})
    kind = limit.get("peak_kind", "int8")
    lines = [
        f"**The limit** (engine {limit['compute_type']}; model operations over the real token "
        "counts, bench/flops.py, against the GEMM peak measured in this run)",
        "",
        f"- GEMM peak: {_peak_text(peak, 'int8')}; {_peak_text(peak, 'float32')}",
    ]
    for entry in limit.get("achieved", []):
        lines.append(
            f"- achieved, {entry['source']}: {num(entry.get('gops'), 2)} GOP/s = "
            f"{pct(entry.get('fraction_of_peak'))} of the {kind} peak"
        )
    formula = limit.get("ops_formula", limit.get("flop_formula", ""))  # older: flop_formula
    lines.append(f"- operations counted: {formula}")
    lines += _thread_layout_lines(limit.get("thread_sweep", {}))
    lines.append("")
    return lines
