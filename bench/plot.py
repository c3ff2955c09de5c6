"""The run's picture: throughput against p99 latency per concurrency, baselines as lines."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

_STYLES = {"instruction_ner": ("tab:blue", "o"), "engine": ("tab:orange", "s")}


def plot_summary(summary: Mapping[str, Any], path: Path) -> Path:
    """Write a PNG: one curve per served model (labelled by concurrency), baselines as lines."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt
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
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
