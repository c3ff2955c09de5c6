"""Plots of :mod:`instructner.research.calibration` summaries (matplotlib, written as PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructner.method.confidence import SCORE_METHODS


def plot_reliability(summary: dict[str, Any], out: Path) -> Path:
    """Reliability diagram of the pooled dev entities, one panel per score method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(SCORE_METHODS)
    figure, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 4.2), sharey=True)
    pooled = summary["all"]
    for axis, method in zip(axes, methods, strict=True):
        rows = [r for r in pooled["reliability"][method] if r["count"]]
        centers = [(r["low"] + r["high"]) / 2 for r in rows]
        axis.bar(
            centers,
            [r["accuracy"] for r in rows],
            width=1 / summary["bins"] * 0.9,
            alpha=0.7,
            label="share correct",
        )
        axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
        axis.plot([r["mean_score"] for r in rows], [r["accuracy"] for r in rows], "o-", color="C3")
        ece = pooled["methods"][method]["ece"]
        axis.set_title(f"{method} (ECE {ece:.3f})")
        axis.set_xlabel("entity score")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
    axes[0].set_ylabel("share of entities that are correct")
    axes[0].legend(loc="upper left")
    figure.suptitle(f"Reliability on dev, {pooled['predicted_entities']} predicted entities")
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out


def plot_precision_recall(summary: dict[str, Any], corpora: Sequence[str], out: Path) -> Path:
    """Precision and recall of the default score method against the threshold, per corpus."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharex=True)
    for index, corpus in enumerate(corpora):
        rows = summary[corpus]["thresholds"]
        thresholds = [r["threshold"] for r in rows]
        style = "k-" if corpus == "all" else f"C{index}-"
        axes[0].plot(thresholds, [r["precision"] for r in rows], style, marker="o", label=corpus)
        axes[1].plot(thresholds, [r["recall"] for r in rows], style, marker="o", label=corpus)
    axes[0].set_title("precision of kept entities")
    axes[1].set_title("recall over all gold entities")
    for axis in axes:
        axis.set_xlabel(f"MIN_SCORE ({summary['served_method']})")
        axis.set_ylim(0, 1)
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(out, dpi=90)
    plt.close(figure)
    return out
