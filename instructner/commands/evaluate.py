"""``instructner evaluate``: strict span-level P/R/F1 of a T5 checkpoint on an NER dataset."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from instructner.method.labels import CORPORA, Verbalizer, get_verbalizer
from instructner.method.types import Sentence
from instructner.modeling import checkpoint_tokenizer, load_model, pick_device
from instructner.research.data import FORMATS, holdout_split, load_corpus, read_sentences
from instructner.research.evaluation import GenerationSettings, evaluate_sentences, write_evaluation
from instructner.research.novelty import recall_by_novelty, training_mentions
from instructner.research.typing_accuracy import evaluate_typing

HELP = (
    "generate NER answers with a T5 checkpoint and score them (strict micro and per-type "
    "P/R/F1); writes predictions.jsonl and metrics.json"
)

logger = logging.getLogger(__name__)

HOLDOUT_DEV = ("mit_movie", "mit_restaurant")  # corpora whose dev set is held out of train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``evaluate``."""
    parser.add_argument("--model", required=True, type=Path, help="HF T5 checkpoint directory")
    source = parser.add_argument_group("data (a shipped corpus, or any BIO file)")
    source.add_argument("--dataset", choices=CORPORA, help="a shipped corpus")
    source.add_argument(
        "--split", choices=("dev", "test"), default="test", help="split of --dataset (test)"
    )
    source.add_argument(
        "--data-root", type=Path, help="folder of the shipped corpora (default: ../shared/...)"
    )
    source.add_argument(
        "--holdout-fraction",
        type=float,
        default=0.1,
        help="MIT corpora have no dev split: --split dev is this fraction held out of train, "
        "drawn as training draws it (0.1)",
    )
    source.add_argument(
        "--holdout-seed", type=int, default=0, help="seed of that held-out slice (0)"
    )
    source.add_argument("--data", type=Path, help="a BIO file to evaluate on instead")
    source.add_argument("--format", choices=FORMATS, default="auto", help="format of --data (auto)")
    source.add_argument(
        "--labels",
        help="label words of --data as TAG=word pairs, comma-separated (PER=person,LOC=place); "
        "a bare TAG is its own word; default: the verbalizer of --dataset",
    )
    source.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="TAG=WORD",
        help="one label of --data; repeat it for a word that contains a comma",
    )
    parser.add_argument(
        "--task",
        choices=("ner", "type"),
        default="ner",
        help="ner: P/R/F1 of the NER prompt; type: accuracy of typing the gold entities (ner)",
    )
    parser.add_argument("--limit", type=int, help="evaluate only the first N sentences")
    parser.add_argument("--batch-size", type=int, default=32, help="generation batch (32)")
    parser.add_argument("--num-beams", type=int, default=1, help="beam size; 1 is greedy (1)")
    parser.add_argument(
        "--max-new-tokens", type=int, default=128, help="answer length limit in tokens (128)"
    )
    parser.add_argument(
        "--max-source-length", type=int, default=512, help="prompt length limit in tokens (512)"
    )
    parser.add_argument(
        "--truncate",
        action="store_true",
        help="cut prompts over --max-source-length (counted in the metrics) instead of failing",
    )
    parser.add_argument(
        "--constrained",
        action="store_true",
        help="constrained decoding: answers hold only spans of the sentence and option labels "
        "(transformers prefix_allowed_tokens_fn; slower)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where predictions.jsonl and metrics.json go (default: MODEL/eval-DATASET-SPLIT)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (auto)")


def parse_labels(pairs: list[str]) -> Verbalizer:
    """Build a verbalizer from ``TAG=word`` items (a bare ``TAG`` is its own word).

    Raises:
        ValueError: an item has an empty tag or word, or tags/words repeat.

    """
    tags_and_words = []
    for item in pairs:
        tag, sep, word = item.partition("=")
        tag, word = tag.strip(), word.strip() if sep else tag.strip()
        if not tag or not word:
            raise ValueError(f"label {item!r}: expected TAG=word with both parts non-empty")
        tags_and_words.append((tag, word))
    if not tags_and_words:
        raise ValueError("no labels given")
    return Verbalizer.from_pairs(tags_and_words, corpus="custom")


def _load_data(args: argparse.Namespace) -> tuple[list[Sentence], Verbalizer, str]:
    """Return the sentences, their verbalizer and a name for the output folder."""
    label_items = [item for item in (args.labels or "").split(",") if item.strip()] + args.label
    if args.data is not None:
        if args.dataset is None and not label_items:
            raise ValueError("--data needs --labels (or --dataset to borrow its label words)")
        verbalizer = parse_labels(label_items) if label_items else get_verbalizer(str(args.dataset))
        return read_sentences(args.data, args.format), verbalizer, args.data.stem
    if args.dataset is None:
        raise ValueError("give --dataset (a shipped corpus) or --data FILE")
    if label_items:
        raise ValueError("--labels/--label go with --data; --dataset uses its own label words")
    if args.split == "dev" and args.dataset in HOLDOUT_DEV:
        _, sentences = _holdout_parts(args)
        logger.info(
            "%s has no dev split: using %d sentences held out of train (fraction %s, seed %d)",
            args.dataset,
            len(sentences),
            args.holdout_fraction,
            args.holdout_seed,
        )
    else:
        sentences = load_corpus(args.dataset, args.split, args.data_root)
    return sentences, get_verbalizer(args.dataset), f"{args.dataset}-{args.split}"


def _holdout_parts(args: argparse.Namespace) -> tuple[list[Sentence], list[Sentence]]:
    """Return a MIT corpus's train split as (what training keeps, the held-out dev slice)."""
    train = load_corpus(args.dataset, "train", args.data_root)
    return holdout_split(train, args.holdout_fraction, args.holdout_seed)


def _trained_on(args: argparse.Namespace) -> list[Sentence]:
    """Return a shipped corpus's training sentences as training uses them (MIT: minus dev)."""
    if args.dataset in HOLDOUT_DEV:
        return _holdout_parts(args)[0]
    return load_corpus(args.dataset, "train", args.data_root)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write predictions and metrics, and print the metrics JSON."""
    for name in ("batch_size", "num_beams", "max_new_tokens", "max_source_length"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")
    sentences, verbalizer, name = _load_data(args)
    if args.limit is not None:
        sentences = sentences[: args.limit]
    if not sentences:
        raise ValueError("no sentences to evaluate")
    model = load_model(args.model)
    tokenizer = checkpoint_tokenizer(args.model)
    model.to(pick_device(args.device))  # type: ignore[arg-type]
    settings = GenerationSettings(
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        num_beams=args.num_beams,
        max_source_length=args.max_source_length,
        truncate=args.truncate,
        constrained=args.constrained,
    )
    logger.info("evaluating %s on %d sentences of %s", args.model, len(sentences), name)
    output_dir = args.output_dir or args.model / f"eval-{name}"
    if args.task == "type":
        if args.constrained or args.num_beams != 1:
            raise ValueError("--task type decodes greedily without constraints")
        typing = evaluate_typing(model, tokenizer, sentences, verbalizer, settings)
        typing.update(model=str(args.model), dataset=args.dataset or str(args.data))
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "metrics.json").write_text(json.dumps(typing, indent=2) + "\n", "utf-8")
        sys.stdout.write(json.dumps(typing, indent=2) + "\n")
        return 0
    evaluation = evaluate_sentences(model, tokenizer, sentences, verbalizer, settings)
    extra = {
        "model": str(args.model),
        "dataset": args.dataset or str(args.data),
        "split": args.split if args.data is None else None,
        **(
            {"holdout_fraction": args.holdout_fraction, "holdout_seed": args.holdout_seed}
            if args.data is None and args.split == "dev" and args.dataset in HOLDOUT_DEV
            else {}
        ),
        "num_beams": args.num_beams,
        "constrained": args.constrained,
        "labels": verbalizer.mapping(),
    }
    if args.data is None:  # a shipped corpus: recall on mentions seen in training and not
        seen = training_mentions(_trained_on(args))
        extra["recall_by_novelty"] = recall_by_novelty(evaluation.records, seen)
    predictions, metrics = write_evaluation(evaluation, output_dir, **extra)
    logger.info("wrote %s and %s", predictions, metrics)
    sys.stdout.write(json.dumps(evaluation.metrics(**extra), indent=2) + "\n")
    return 0
