"""The run's picture: throughput against p99 latency per concurrency, baselines as lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

_STYLES = {"instruction_ner": ("tab:blue", "o"), "engine": ("tab:orange", "s")}


def plot_summary(summary: Mapping[str, Any], path: Path) -> Path:
    """Write a PNG: one curve per served model (labelled by concurrency), baselines as lines."""
    plt = _pyplot()
    import matplotlib.ticker

    figure, axes = plt.subplots(figsize=(11, 5.5), dpi=120)
    for model, (color, marker) in _STYLES.items():
        levels = sorted(
            (
                lv
                for lv in summary["served"]["levels"]
                if lv["model"] == model and lv.get("p99_us") is not None
            ),
            key=lambda lv: lv["concurrency"],
        )
        if not levels:
            continue
        xs = [lv["p99_us"] / 1000 for lv in levels]
        ys = [lv["throughput"] for lv in levels]
        label = "served instruction_ner" if model == "instruction_ner" else "engine model alone"
        axes.plot(xs, ys, marker=marker, color=color, label=f"{label} (Triton)")
        for lv, x, y in zip(levels, xs, ys, strict=True):
            axes.annotate(
                f"c={lv['concurrency']}",
                (x, y),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
                color=color,
            )
    palette = ["tab:red", "tab:purple", "tab:green", "tab:brown", "tab:gray", "tab:olive"]
    references = [
        p
        for p in summary["paths"]
        if p.get("available", True)
        and (
            p["name"] in ("transformers_batch1", "instruction_ner_pypi_batch1")
            or p["name"].startswith("engine_inprocess")
            or p["name"] == summary.get("ratios", {}).get("transformers_best_name")
        )
    ]
    for color, reference in zip(palette, references, strict=False):
        axes.axhline(
            reference["throughput"],
            color=color,
            linestyle="--",
            linewidth=1,
            label=f"{reference['title']}: {reference['throughput']:.1f}/s",
        )
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.xaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    axes.tick_params(axis="x", which="both", labelsize=7)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("p99 latency per request (ms, log scale)")
    axes.set_ylabel("throughput (sentences / s)")
    machine = summary["machine"]
    axes.set_title(
        f"InstructionNER on {machine['cpu_model']}, {machine['usable_cpus']} cores "
        f"({summary['profile']} run)",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    return _save(figure, plt, path)


SCALING_PLOTS = {
    "concurrency": "scaling_concurrency.png",
    "doc_length": "scaling_doc_length.png",
    "labels": "scaling_labels.png",
}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def _title(summary: Mapping[str, Any], what: str) -> str:
    machine = summary["machine"]
    return (
        f"{what}: {machine['cpu_model']}, {machine['usable_cpus']} cores ({summary['profile']} run)"
    )


def _latency_axes(axes: Any, xs: list[float], points: list[Mapping[str, Any]]) -> None:
    """Plot p50 and p99 (ms) of ``points`` that have them."""
    for key, style in (("p50_ms", "o-"), ("p99_ms", "s--")):
        pairs = [(x, p[key]) for x, p in zip(xs, points, strict=True) if p.get(key) is not None]
        if pairs:
            axes.plot(*zip(*pairs, strict=True), style, label=key.replace("_ms", " per request"))
    _log_ms(axes)
    axes.set_ylabel("latency (ms, log scale)")
    axes.grid(True, which="both", alpha=0.3)


def _log_ms(axes: Any) -> None:
    """Log-scale y axis labelled 1, 2, 5, 10, 20, 50, … as plain numbers."""
    import matplotlib.ticker as ticker

    axes.set_yscale("log")
    axes.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(ticker.NullFormatter())


def _save(figure: Any, plt: Any, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def plot_doc_length(summary: Mapping[str, Any], path: Path) -> Path:
    """Write throughput (sentences/s, words/s) and latency against sentences per request."""
    plt = _pyplot()
    scaling = summary["scaling"]
    points = sorted(scaling["doc_length"], key=lambda p: p["sentences_per_request"])
    xs = [float(p["sentences_per_request"]) for p in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    left.plot(xs, [p["sentences_per_s"] for p in points], "o-", color="tab:blue", zorder=3)
    for x, p in zip(xs, points, strict=True):
        left.annotate(
            f"{p['requests_per_s']:.1f} req/s",
            (x, p["sentences_per_s"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    left.set_ylabel("sentences / s", color="tab:blue")
    left.set_ylim(bottom=0)
    words = left.twinx()
    word_rates = [p["words_per_s"] for p in points]
    words.plot(xs, word_rates, "s:", color="tab:green")
    words.set_ylabel("words / s (dotted)", color="tab:green")
    # a higher top than the sentences axis keeps the two (nearly proportional) lines apart
    words.set_ylim(0, max(word_rates, default=1.0) * 1.4)
    _latency_axes(right, xs, points)
    pairs = [(x, p["p50_ms_per_sentence"]) for x, p in zip(xs, points, strict=True)]
    pairs = [(x, y) for x, y in pairs if y is not None]
    if pairs:
        right.plot(*zip(*pairs, strict=True), "^:", label="p50 per sentence")
    right.legend(fontsize=7)
    for axes in (left, right):
        axes.set_xscale("log")
        axes.set_xticks(xs, [str(int(x)) for x in xs])
        axes.set_xlabel("sentences per request (joined by a line break)")
    left.grid(True, alpha=0.3)
    figure.suptitle(
        _title(summary, f"instruction_ner at concurrency {scaling['concurrency']}"), fontsize=10
    )
    return _save(figure, plt, path)


def plot_labels(summary: Mapping[str, Any], path: Path) -> Path:
    """Write throughput and latency against the label count, prompt tokens annotated."""
    plt = _pyplot()
    scaling = summary["scaling"]
    points = sorted(scaling["labels"], key=lambda p: p["label_count"])
    xs = [float(p["label_count"]) for p in points]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    left.plot(xs, [p["sentences_per_s"] for p in points], "o-", color="tab:blue")
    for x, p in zip(xs, points, strict=True):
        left.annotate(
            f"{p['prompt_tokens_per_window']:.0f} prompt tokens",
            (x, p["sentences_per_s"]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=7,
        )
    left.set_ylabel("sentences / s (one sentence per request)")
    left.set_ylim(bottom=0)
    left.grid(True, alpha=0.3)
    _latency_axes(right, xs, points)
    right.legend(fontsize=7)
    for axes in (left, right):
        axes.set_xticks(xs, [str(int(x)) for x in xs])
        axes.set_xlabel("label words in the prompt's options")
    figure.suptitle(
        _title(summary, f"instruction_ner at concurrency {scaling['concurrency']}"), fontsize=10
    )
    return _save(figure, plt, path)


def plot_concurrency(summary: Mapping[str, Any], path: Path) -> Path:
    """Write throughput and p50/p99 against concurrency for both served models."""
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    for model, (color, marker) in _STYLES.items():
        levels = sorted(
            (lv for lv in summary["served"]["levels"] if lv["model"] == model),
            key=lambda lv: lv["concurrency"],
        )
        if not levels:
            continue
        xs = [lv["concurrency"] for lv in levels]
        label = "instruction_ner" if model == "instruction_ner" else "engine model alone"
        left.plot(xs, [lv["throughput"] for lv in levels], marker=marker, color=color, label=label)
        for key, style in (("p50_us", "-"), ("p99_us", "--")):
            pairs = [(x, lv[key] / 1000) for x, lv in zip(xs, levels, strict=True) if lv.get(key)]
            if pairs:
                right.plot(
                    *zip(*pairs, strict=True),
                    linestyle=style,
                    marker=marker,
                    color=color,
                    label=f"{label} {key[:3]}",
                )
    left.set_ylabel("throughput (sentences / s)")
    left.set_ylim(bottom=0)
    _log_ms(right)
    right.set_ylabel("latency per request (ms, log scale)")
    levels = sorted({lv["concurrency"] for lv in summary["served"]["levels"]})
    for axes in (left, right):
        axes.set_xscale("log", base=2)
        axes.set_xticks(levels, [str(c) for c in levels])
        axes.set_xlabel("concurrency (requests in flight, one sentence each)")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(_title(summary, "Served, perf_analyzer over gRPC"), fontsize=10)
    return _save(figure, plt, path)


def scaling_plots(summary: Mapping[str, Any]) -> dict[str, Callable[[Path], Path]]:
    """Return the scaling figures the summary has data for: file name -> draw(path)."""
    plots: dict[str, Callable[[Path], Path]] = {}
    if summary.get("served", {}).get("levels"):
        plots[SCALING_PLOTS["concurrency"]] = partial(plot_concurrency, summary)
    scaling = summary.get("scaling") or {}
    if scaling.get("doc_length"):
        plots[SCALING_PLOTS["doc_length"]] = partial(plot_doc_length, summary)
    if scaling.get("labels"):
        plots[SCALING_PLOTS["labels"]] = partial(plot_labels, summary)
    return plots


def plot_scaling(summary: Mapping[str, Any], directory: Path) -> list[Path]:
    """Write the scaling figures the summary has data for; return their paths."""
    return [draw(directory / name) for name, draw in scaling_plots(summary).items()]
