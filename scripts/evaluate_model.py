"""Evaluate a checkpoint on every shipped corpus and write ``MODEL/metrics.json``.

Runs ``instructner evaluate`` (the same command users run) on the test split, and on the dev
split (CoNLL-2003, ATIS) or the held-out train slice (MIT corpora), of each corpus, and
collects strict micro P/R/F1 into one JSON file that the model card and its tests read. The
per-sentence predictions stay under ``--work-dir``.

    python scripts/evaluate_model.py --model models/default
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from instructner.cli import main as instructner_main

CORPORA = ("conll2003", "mit_movie", "mit_restaurant", "atis")
TYPING_SENTENCES = 300
KEYS = ("precision", "recall", "f1", "tp", "fp", "fn", "sentences", "unfinished_answers")


def evaluate(model: Path, corpus: str, split: str, work_dir: Path, extra: list[str]) -> dict:
    """Run one evaluation; return its selected metrics plus the seconds it took."""
    out = work_dir / f"{corpus}-{split}"
    argv = ["evaluate", "--model", str(model), "--dataset", corpus, "--split", split, *extra]
    started = time.monotonic()
    code = instructner_main([*argv, "--output-dir", str(out)])
    if code != 0:
        raise SystemExit(f"instructner {' '.join(argv)} failed with exit code {code}")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {
        **{k: metrics[k] for k in KEYS},
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> int:
    """Evaluate every corpus and split, write the collected metrics JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="HF T5 checkpoint directory")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/eval"), help="predictions")
    parser.add_argument("--splits", default="test,dev", help="comma-separated (test,dev)")
    parser.add_argument("--batch-size", type=int, default=64, help="generation batch (64)")
    parser.add_argument("--data-root", help="folder of the shipped corpora")
    args = parser.parse_args()
    extra = ["--batch-size", str(args.batch_size)]
    if args.data_root:
        extra += ["--data-root", args.data_root]
    result: dict = {
        "model": str(args.model),
        "command": f"instructner evaluate --model {args.model} --dataset conll2003 --split test "
        f"--batch-size {args.batch_size}",
        "decoding": "greedy, at most 128 new tokens, prompt options in corpus label order",
    }
    for split in args.splits.split(","):
        result[split] = {}
        for corpus in CORPORA:
            result[split][corpus] = evaluate(args.model, corpus, split, args.work_dir, extra)
            logging.getLogger("evaluate_model").info(
                "%s %s: F1 %.4f", corpus, split, result[split][corpus]["f1"]
            )
    # Typing given the gold entities, on the first TYPING_SENTENCES test sentences of each
    # corpus (accuracy over their gold entities; the full splits take ~25 min here).
    result["typing_test"] = {"sentences_per_corpus": TYPING_SENTENCES}
    for corpus in CORPORA:
        out = args.work_dir / f"{corpus}-test-type"
        argv = ["evaluate", "--model", str(args.model), "--dataset", corpus, "--split", "test"]
        argv += [
            "--task",
            "type",
            "--limit",
            str(TYPING_SENTENCES),
            *extra,
            "--output-dir",
            str(out),
        ]
        if instructner_main(argv) != 0:
            raise SystemExit(f"instructner {' '.join(argv)} failed")
        typing = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        result["typing_test"][corpus] = {
            k: typing[k] for k in ("accuracy", "gold_entities", "correct", "typed_entities")
        }
    (args.model / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
