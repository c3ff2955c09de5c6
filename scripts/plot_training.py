"""Plot a training run's learning curve: loss and dev F1 against steps (one PNG).

``python scripts/plot_training.py RUN_DIR [RUN_DIR ...] --out curve.png`` reads each run's
``metrics.jsonl`` (``instructner train`` writes it) and draws the training loss (mean over the
logged window) and the mean dev F1 of every evaluation, one colour per run, with the CPU
hours of each run in the legend.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_history(run: Path) -> list[dict]:
    """Return the entries of ``run/metrics.jsonl``."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: not a training run folder")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plot(runs: list[Path], out: Path) -> Path:
    """Draw the curves of ``runs`` into ``out`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axis, f1_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        history = read_history(run)
        losses = [(e["step"], e["loss"]) for e in history if "loss" in e]
        evals = [(e["step"], e["dev"]["f1"]) for e in history if "dev" in e]
        hours = max((e.get("elapsed_s", 0.0) for e in history), default=0.0) / 3600
        label = f"{run.name} ({hours:.1f} h)"
        if losses:
            loss_axis.plot(*zip(*losses, strict=True), label=label, linewidth=0.8)
        if evals:
            f1_axis.plot(*zip(*evals, strict=True), marker="o", label=label)
    loss_axis.set(xlabel="step", ylabel="training loss", title="loss (mean per log window)")
    f1_axis.set(xlabel="step", ylabel="mean dev F1", title="dev F1 (mean over corpora)")
    for axis in (loss_axis, f1_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    return out


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and plot."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="training run folders")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        path = plot(args.runs, args.out)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201 - CLI error message
        return 2
    print(path)  # noqa: T201 - the written file, for scripts
    return 0


if __name__ == "__main__":
    sys.exit(main())
