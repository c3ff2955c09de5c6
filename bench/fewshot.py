"""Few-shot table: F1 against shots per type, NER only vs NER + auxiliary tasks, over draws.

Each cell is one product adaptation (:func:`instructner.research.adapt.adapt`: the steps and
learning rate of its data-size rule unless ``--steps``/``--learning-rate`` fix them, a
held-out slice when the sample allows, no replay): a
K-shot sample of the corpus's train split (:func:`instructner.research.data.kshot_sample`,
seeded by the draw) written as a BIO file, adapted from each base model with the corpus's own
label words, served in-process (CTranslate2 int8, the calibrated score) and scored strictly on
the corpus's test split. Cells append to ``results.jsonl`` as they finish, so an interrupted
run resumes where it stopped; ``summary.json``, ``summary.md`` and ``fewshot.png`` are written
from all cells at the end (or alone with ``--summarize``).

Usage: ``python -m bench.fewshot --base NAME=DIR ... --out DIR [--corpus mit_restaurant]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.forgetting import corpus_f1, open_pipeline
from instructner.method.labels import get_verbalizer
from instructner.research.adapt import adapt
from instructner.research.data import kshot_sample, load_corpus, write_bio

VARIANTS = {"ner": False, "ner+aux": True}  # variant -> train the auxiliary tasks too
# Student's t, two-sided 95%, by degrees of freedom: the paired difference's interval
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def cell_key(row: dict[str, Any]) -> tuple[str, int, int, str]:
    """Return what identifies a cell: base, shots, draw, variant."""
    return (row["base"], row["shots"], row["draw"], row["variant"])


def done_cells(results: Path) -> set[tuple[str, int, int, str]]:
    """Return the cells ``results`` already holds."""
    if not results.is_file():
        return set()
    lines = results.read_text(encoding="utf-8").splitlines()
    return {cell_key(json.loads(line)) for line in lines if line.strip()}


def run_cell(
    base: tuple[str, Path],
    corpus: str,
    cell: tuple[int, int, str],
    test_limit: int | None,
    training: dict[str, Any],
) -> dict[str, Any]:
    """Adapt one base on one K-shot draw and score the result on the test split.

    ``cell`` is (shots, draw, variant); ``training`` overrides the data-size rule's ``steps``
    and ``learning_rate`` where not None.
    """
    shots, draw, variant = cell
    verbalizer = get_verbalizer(corpus)
    labels = ",".join(f"{t}={w}" for t, w in zip(verbalizer.tags, verbalizer.words, strict=True))
    sample = kshot_sample(load_corpus(corpus, "train"), shots, seed=draw)
    with tempfile.TemporaryDirectory(prefix="fewshot-cell-") as work:
        train_file = write_bio(sample, Path(work) / "train.bio")
        out = Path(work) / "model"
        report = adapt(
            base[1],
            train_file,
            labels,
            out,
            auxiliary=VARIANTS[variant],
            replay=False,
            seed=draw,
            progress=False,
            steps=training["steps"],
            learning_rate=training["learning_rate"],
        )
        started = time.monotonic()
        pipeline, engine = open_pipeline(out)
        try:
            scores = corpus_f1(pipeline, corpus, test_limit)
        finally:
            engine.close()
        shutil.rmtree(out, ignore_errors=True)
    return {
        "base": base[0],
        "corpus": corpus,
        "shots": shots,
        "draw": draw,
        "variant": variant,
        "sentences": len(sample),
        "trained": report.sentences,
        "held_out": report.held_out,
        "steps": report.plan["steps"],
        "learning_rate": report.plan["learning_rate"],
        "best_step": report.best_step,
        "held_out_f1": report.held_out_f1,
        "test_sentences": scores["sentences"],
        "f1": scores["f1"],
        "precision": scores.get("precision"),
        "recall": scores.get("recall"),
        "adapt_seconds": report.seconds,
        "eval_seconds": round(time.monotonic() - started, 1),
    }


def summarize(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return mean and sample std of F1 per (base, shots, variant), with the paired difference."""
    groups: dict[tuple[str, int, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["base"], row["shots"], row["variant"]), []).append(row)
    summary = []
    for base, shots in sorted({(b, k) for b, k, _ in groups}):
        cells: dict[str, Any] = {"base": base, "shots": shots}
        by_draw: dict[str, dict[int, float]] = {}
        for variant in VARIANTS:
            group = groups.get((base, shots, variant), [])
            f1s = [100 * r["f1"] for r in group]
            by_draw[variant] = {r["draw"]: 100 * r["f1"] for r in group}
            cells[variant] = {
                "draws": len(f1s),
                "mean": round(statistics.fmean(f1s), 2) if f1s else None,
                "std": round(statistics.stdev(f1s), 2) if len(f1s) > 1 else None,
                "sentences": round(statistics.fmean(r["sentences"] for r in group), 1)
                if group
                else None,
            }
        paired = sorted(set(by_draw["ner"]) & set(by_draw["ner+aux"]))
        diffs = [by_draw["ner+aux"][d] - by_draw["ner"][d] for d in paired]
        half = (
            T95.get(len(diffs) - 1, 1.96) * statistics.stdev(diffs) / len(diffs) ** 0.5
            if len(diffs) > 1
            else None
        )
        mean = statistics.fmean(diffs) if diffs else None
        cells["difference"] = {
            "draws": len(diffs),
            "mean": None if mean is None else round(mean, 2),
            "std": round(statistics.stdev(diffs), 2) if len(diffs) > 1 else None,
            "ci95": None
            if mean is None or half is None
            else [round(mean - half, 2), round(mean + half, 2)],
            "aux_ahead": sum(d > 0 for d in diffs),
        }
        summary.append(cells)
    return summary


def _pm(cell: dict[str, Any]) -> str:
    if cell["mean"] is None:
        return "–"
    return f"{cell['mean']:.1f}" + (f" ± {cell['std']:.1f}" if cell["std"] is not None else "")


def markdown(summary: Sequence[dict[str, Any]], corpus: str) -> str:
    """Return the table: one row per base and shots."""
    lines = [
        f"| base | shots per type | train sentences (mean) | draws | NER only F1 (%) "
        f"| NER + aux F1 (%) | aux − NER (paired) | its 95% interval | draws aux ahead |"
        f"  <!-- {corpus} -->",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary:
        diff = row["difference"]
        diff_text = (
            "–"
            if diff["mean"] is None
            else f"{diff['mean']:+.1f}"
            + (f" ± {diff['std']:.1f}" if diff["std"] is not None else "")
        )
        ci = diff.get("ci95")
        interval = "–" if ci is None else f"{ci[0]:+.1f} to {ci[1]:+.1f}"
        lines.append(
            f"| {row['base']} | {row['shots']} | {row['ner']['sentences']} | {row['ner']['draws']} "
            f"| {_pm(row['ner'])} | {_pm(row['ner+aux'])} | {diff_text} | {interval} "
            f"| {diff['aux_ahead']} of {diff['draws']} |"
        )
    return "\n".join(lines) + "\n"


def plot(summary: Sequence[dict[str, Any]], path: Path, corpus: str) -> Path:
    """Write F1 against shots per type: one line per base and variant, std as error bars."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for base in dict.fromkeys(row["base"] for row in summary):
        rows = [row for row in summary if row["base"] == base]
        for variant, style in (("ner", "--"), ("ner+aux", "-")):
            points = [(r["shots"], r[variant]) for r in rows if r[variant]["mean"] is not None]
            if not points:
                continue
            axes.errorbar(
                [k for k, _ in points],
                [c["mean"] for _, c in points],
                yerr=[c["std"] or 0 for _, c in points],
                linestyle=style,
                marker="o",
                capsize=3,
                label=f"{base}: {variant}",
            )
    axes.set_xscale("log")
    axes.set_xticks(sorted({row["shots"] for row in summary}))
    axes.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes.set_xlabel("shots per entity type (K)")
    axes.set_ylabel(f"{corpus} test F1 (%)")
    axes.set_title(f"Few-shot adaptation on {corpus}: mean ± std over draws")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def write_summary(out: Path, corpus: str) -> list[dict[str, Any]]:
    """Write summary.json, summary.md and fewshot.png from ``out/results.jsonl``."""
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    summary = summarize(rows)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(markdown(summary, corpus), encoding="utf-8")
    plot(summary, out / "fewshot.png", corpus)
    return summary


def _base(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"--base wants NAME=DIR, got {value!r}")
    if not (Path(folder) / "config.json").is_file():
        raise argparse.ArgumentTypeError(f"--base {name}: {folder} holds no model (config.json)")
    return name, Path(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the missing cells, then write the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", type=_base, action="append", default=[], help="NAME=DIR")
    parser.add_argument("--corpus", default="mit_restaurant")
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10, 20, 50])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--test-limit", type=int, help="first N test sentences (all by default)")
    parser.add_argument("--steps", type=int, help="steps per cell (default: adapt's rule)")
    parser.add_argument("--learning-rate", type=float, help="peak rate (default: adapt's)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--summarize", action="store_true", help="only rewrite the summary")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    if not args.summarize:
        done = done_cells(results)
        cells = [
            (base, shots, draw, variant)
            for base in args.base
            for shots in args.shots
            for draw in range(args.draws)
            for variant in args.variants
            if (base[0], shots, draw, variant) not in done
        ]
        for number, (base, shots, draw, variant) in enumerate(cells, 1):
            training = {"steps": args.steps, "learning_rate": args.learning_rate}
            row = run_cell(base, args.corpus, (shots, draw, variant), args.test_limit, training)
            with results.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(row) + "\n")
            print(f"[fewshot {number}/{len(cells)}] {json.dumps(row)}", file=sys.stderr, flush=True)
    if results.is_file():
        write_summary(args.out, args.corpus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
