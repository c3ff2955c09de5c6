"""Few-shot adaptation: teach a model folder a user's own entity types from a small file.

``instructner adapt`` reads the user's annotated sentences (JSONL with character spans, the
shape spaCy, Prodigy and GLiNER export, or CoNLL/BIO columns), names their types with the
user's label words, fine-tunes the model on NER and (by default) the auxiliary extraction and
typing tasks, mixes in a replay of the model's original training corpora when they are at
hand (so the old types are not forgotten), keeps the best step on a held-out slice when the
data allow, and writes a model folder that ``make serve MODEL_DIR=…`` serves, with a card.

The training length and learning rate follow the data size (:func:`plan_for`, documented
in docs/adapt.md).
"""

from __future__ import annotations

import json
import logging
import math
import re
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from instructner.method.labels import Verbalizer
from instructner.method.prompts import TASKS
from instructner.method.trained_tasks import TRAINING_RECORD, trained_tasks
from instructner.method.types import Sentence
from instructner.research import data
from instructner.research.data import DataFormatError

logger = logging.getLogger(__name__)

ADAPTED = "adapted"  # the corpus name of the user's sentences in training and the record
CARD = "ADAPT.md"
RECORD = "adapt.json"
# words and punctuation, as the training corpora split them (punctuation is its own token)
_TOKEN = re.compile(r"\w+|[^\w\s]")
HOLDOUT_FROM = 20  # sentences from which a held-out slice picks the best step
# replay sentences per user sentence, and at least (docs/adapt.md: 1 kept the new types at
# held-out F1 1.0 and halved the old types' loss; 4 cut that loss again but cost new-type F1)
REPLAY_PER_SENTENCE = 1.0
REPLAY_MIN = 40
HOLDOUT_FRACTION = 0.2


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def _jsonl_sentence(record: Any, path: Path, line: int) -> Sentence:
    if not isinstance(record, dict):
        raise DataFormatError(path, line, "expected a JSON object with text and entities")
    text, entities = record.get("text"), record.get("entities", [])
    if not isinstance(text, str) or not text.strip():
        raise DataFormatError(path, line, "'text' must be a non-empty string")
    if not isinstance(entities, list):
        raise DataFormatError(path, line, "'entities' must be a list")
    tokens = _tokens(text)
    starts = {start: i for i, (_, start, _) in enumerate(tokens)}
    ends = {end: i for i, (_, _, end) in enumerate(tokens)}
    tags = ["O"] * len(tokens)
    for number, entity in enumerate(entities):
        name = f"entities[{number}]"
        if not isinstance(entity, dict):
            raise DataFormatError(
                path, line, f"{name}: expected an object with start, end and label"
            )
        start, end, label = entity.get("start"), entity.get("end"), entity.get("label")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise DataFormatError(
                path,
                line,
                f"{name}: start and end must be integers with 0 <= start < end <= {len(text)}",
            )
        if not isinstance(label, str) or not label.strip() or any(c.isspace() for c in label):
            raise DataFormatError(
                path, line, f"{name}: label must be a non-empty word without spaces"
            )
        if start not in starts or end not in ends:
            raise DataFormatError(
                path,
                line,
                f"{name}: {text[start:end]!r} ({start}-{end}) does not begin and end on word "
                "boundaries (words and punctuation are split apart)",
            )
        first, last = starts[start], ends[end]
        if any(tag != "O" for tag in tags[first : last + 1]):
            raise DataFormatError(
                path, line, f"{name}: {text[start:end]!r} overlaps another entity"
            )
        tags[first : last + 1] = [f"B-{label}"] + [f"I-{label}"] * (last - first)
    return data.make_sentence([t for t, _, _ in tokens], tags, f"{path}:{line}")


def read_jsonl(path: Path) -> list[Sentence]:
    """Read one ``{"text", "entities": [{"start", "end", "label"}]}`` object per line.

    Raises:
        DataFormatError: naming the file, the line and what is wrong.

    """
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataFormatError(path, number, f"not JSON ({error.msg})") from None
        sentences.append(_jsonl_sentence(record, path, number))
    return sentences


def read_training_file(path: str | Path, fmt: str = "auto") -> list[Sentence]:
    """Read the user's annotated sentences: ``jsonl`` or CoNLL/BIO columns (``bio``).

    ``auto`` takes ``.jsonl`` / ``.json`` as JSONL and anything else as BIO columns (the
    column layout is detected as for the shipped corpora).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: a malformed line (file, line, what is wrong), or no sentence at all.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training file {path} does not exist")
    if fmt not in ("auto", "jsonl", "bio"):
        raise ValueError(f"format must be auto, jsonl or bio, got {fmt!r}")
    jsonl = fmt == "jsonl" or (fmt == "auto" and path.suffix.lower() in (".jsonl", ".json"))
    sentences = read_jsonl(path) if jsonl else data.read_sentences(path)
    if not sentences:
        raise DataFormatError(path, None, "no sentences")
    return sentences


def file_labels(sentences: Sequence[Sentence]) -> Counter[str]:
    """Return each entity type of ``sentences`` with its number of mentions."""
    return Counter(span.tag for sentence in sentences for span in sentence.spans)


def parse_labels(spec: str, found: Counter[str]) -> Verbalizer:
    """Return the verbalizer ``--labels`` gives for the file's types.

    ``spec`` is comma-separated ``TYPE=word`` pairs (``DRUG=drug,DOSE=dosage``) or plain words
    (each type named by itself). Every type of the file needs a word.

    Raises:
        ValueError: a malformed pair, a word given twice, or a type of the file left unnamed.

    """
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        tag, sep, word = item.partition("=")
        tag, word = tag.strip(), (word.strip() if sep else tag.strip())
        if not tag or not word:
            raise ValueError(f"--labels: {item!r} is not TYPE=word or a word")
        pairs.append((tag, word))
    missing = sorted(set(found) - {tag for tag, _ in pairs})
    if missing:
        raise ValueError(
            f"--labels names no word for the file's types {', '.join(missing)} "
            f"(types found: {', '.join(sorted(found))})"
        )
    unused = sorted({tag for tag, _ in pairs} - set(found))
    if unused:
        logger.warning("--labels names types the file never uses: %s", ", ".join(unused))
    return Verbalizer.from_pairs([(t, w) for t, w in pairs if t in found], corpus=ADAPTED)


@dataclass(frozen=True)
class AdaptPlan:
    """How long and how fast to train, from the data size (docs/adapt.md)."""

    steps: int
    learning_rate: float
    batch_size: int
    warmup_steps: int
    eval_every: int


def plan_for(sentences: int, tasks: int, held_out: bool) -> AdaptPlan:
    """Return the training plan for ``sentences`` training sentences and ``tasks`` tasks.

    About 30 passes over up to 50 sentences, 15 up to 200, 6 beyond (each sentence gives one
    example per task), in batches of up to 16, bounded to 60..3,000 steps; learning rate
    5e-4 (a tenth of the steps warm it up); with a held-out slice, ten evaluations.
    """
    batch = max(1, min(16, sentences))
    passes = 30 if sentences <= 50 else 15 if sentences <= 200 else 6
    steps = max(60, min(3000, math.ceil(passes * sentences * tasks / batch)))
    return AdaptPlan(
        steps=steps,
        learning_rate=5e-4,
        batch_size=batch,
        warmup_steps=steps // 10,
        eval_every=max(10, steps // 10) if held_out else 0,
    )


def _base_record(model_dir: Path) -> dict[str, Any]:
    record = model_dir / TRAINING_RECORD
    if not record.is_file():
        return {}
    return yaml.safe_load(record.read_text(encoding="utf-8")) or {}


def replay_specs(
    model_dir: Path,
    data_root: Path | None,
    sentences: int,
    seed: int,
    per_sentence: float = REPLAY_PER_SENTENCE,
) -> list[dict[str, Any]]:
    """Return the corpus entries replaying the model's own training corpora, if at hand.

    ``per_sentence`` replay sentences per user sentence in all (at least
    ``REPLAY_MIN * per_sentence``), shared over the corpora, drawn K-shot per type with the
    run's seed; none when the corpora are not in the data root (the card says so).
    """
    from instructner.method.labels import CORPORA, get_verbalizer

    names = [c.get("name") for c in _base_record(model_dir).get("corpora", [])]
    corpora = [n for n in dict.fromkeys(names) if n in CORPORA]
    root = data.default_data_root() if data_root is None else data_root
    available = [n for n in corpora if (root / n).is_dir()]
    if not available:
        return []
    per_corpus = max(REPLAY_MIN, sentences) * per_sentence / len(available)
    return [
        {
            "name": name,
            "train": "kshot",
            "k": max(1, round(per_corpus / len(get_verbalizer(name).tags))),
            "dev": "none",
        }
        for name in available
    ]


@dataclass
class AdaptReport:
    """What an adaptation did: the card's facts."""

    out: str
    train_file: str
    sentences: int
    held_out: int
    types: dict[str, dict[str, Any]]
    tasks: list[str]
    replay: list[dict[str, Any]]
    plan: dict[str, Any]
    held_out_f1: float | None
    best_step: int | None
    seconds: float
    base_model: str


@dataclass
class _Inputs:
    """The checked inputs of one adaptation."""

    found: Counter[str]
    verbalizer: Verbalizer
    train: list[Sentence]
    dev: list[Sentence]
    tasks: list[str]
    plan: AdaptPlan
    replays: list[dict[str, Any]]


def _inputs(
    model_dir: Path,
    train_file: str | Path,
    labels: str,
    options: dict[str, Any],
) -> _Inputs:
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} holds no model (config.json is missing)")
    sentences = read_training_file(train_file, options["fmt"])
    found = file_labels(sentences)
    if not found:
        raise DataFormatError(train_file, None, "no entity in any sentence")
    verbalizer = parse_labels(labels, found)
    seed = options["seed"]
    if len(sentences) >= HOLDOUT_FROM:
        train, dev = data.holdout_split(sentences, HOLDOUT_FRACTION, seed)
    else:
        train, dev = list(sentences), []
    base_tasks = list(trained_tasks(model_dir))
    tasks = [t for t in TASKS if t in base_tasks] if options["auxiliary"] else ["ner"]
    plan = plan_for(len(train), len(tasks), bool(dev))
    steps = options["steps"]
    if steps is not None:  # an explicit length, the rest of the plan kept
        evaluations = max(1, steps // 10) if plan.eval_every else 0
        plan = AdaptPlan(steps, plan.learning_rate, plan.batch_size, steps // 10, evaluations)
    if options["learning_rate"] is not None:
        plan = replace(plan, learning_rate=options["learning_rate"])
    share = options["replay_share"]
    replays = (
        replay_specs(model_dir, options["data_root"], len(train), seed, share)
        if options["replay"]
        else []
    )
    if options["replay"] and not replays:
        logger.warning(
            "no replay: the model's training corpora are not in the data root "
            "(INSTRUCTNER_DATA_ROOT); its old types may be forgotten"
        )
    return _Inputs(found, verbalizer, list(train), list(dev), tasks, plan, replays)


def _train_and_export(
    model_dir: Path, out: Path, inputs: _Inputs, options: dict[str, Any]
) -> tuple[float | None, int | None]:
    """Fine-tune and write the model folder; return the held-out F1 and its step (if any)."""
    from instructner.modeling import checkpoint_tokenizer, load_model
    from instructner.research.export import write_model_folder
    from instructner.research.training import CorpusConfig, CorpusData, TrainConfig, Trainer

    plan, data_root = inputs.plan, options["data_root"]
    with tempfile.TemporaryDirectory(prefix="instructner-adapt-") as work:
        config = TrainConfig(
            output_dir=str(Path(work) / "run"),
            data_root=str(data_root) if data_root else None,
            corpora=[CorpusConfig(**spec) for spec in inputs.replays],
            tasks=inputs.tasks,
            init_from=str(model_dir),
            seed=options["seed"],
            batch_size=plan.batch_size,
            learning_rate=plan.learning_rate,
            warmup_steps=plan.warmup_steps,
            max_steps=plan.steps,
            log_every=max(10, plan.steps // 10),
            eval_every=plan.eval_every,
            best_on_tie="last",  # a tiny held-out slice ties often: keep the more trained step
            save_every=0,
            progress=options["progress"],
        )
        custom = CorpusData(ADAPTED, inputs.verbalizer, inputs.train, inputs.dev)
        trainer = Trainer(config, extra_corpora=[custom])
        state = trainer.train()
        kept = bool(inputs.dev) and state.best_step >= 0
        best = trainer.best_dir if kept else trainer.last_dir
        verbalizer = inputs.verbalizer
        record = {
            **config.to_dict(),
            "corpora": [*inputs.replays, {"name": ADAPTED}],
            "adapted": {"labels": dict(zip(verbalizer.tags, verbalizer.words, strict=True))},
        }
        record_file = Path(work) / TRAINING_RECORD
        record_file.write_text(yaml.safe_dump(record, sort_keys=False), encoding="utf-8")
        write_model_folder(
            load_model(best), checkpoint_tokenizer(best), out, "float32", model_dir, record_file
        )
    return (state.best_f1, state.best_step) if kept else (None, None)


def adapt(
    model_dir: str | Path,
    train_file: str | Path,
    labels: str,
    out: str | Path,
    *,
    auxiliary: bool = True,
    replay: bool = True,
    data_root: Path | None = None,
    seed: int = 0,
    steps: int | None = None,
    fmt: str = "auto",
    progress: bool = True,
    replay_share: float = REPLAY_PER_SENTENCE,
    learning_rate: float | None = None,
) -> AdaptReport:
    """Fine-tune ``model_dir`` on ``train_file``'s types and write the model folder ``out``.

    Raises:
        FileNotFoundError: the model folder or the training file is missing.
        DataFormatError: the training file is malformed (file, line, what is wrong).
        ValueError: bad labels or settings.

    """
    started = time.monotonic()
    model_dir, out = Path(model_dir), Path(out)
    options = {
        "auxiliary": auxiliary,
        "replay": replay,
        "data_root": data_root,
        "seed": seed,
        "steps": steps,
        "fmt": fmt,
        "progress": progress,
        "replay_share": replay_share,
        "learning_rate": learning_rate,
    }
    inputs = _inputs(model_dir, train_file, labels, options)
    f1, step = _train_and_export(model_dir, out, inputs, options)
    verbalizer = inputs.verbalizer
    report = AdaptReport(
        out=str(out),
        train_file=str(train_file),
        sentences=len(inputs.train),
        held_out=len(inputs.dev),
        types={
            tag: {"word": verbalizer.word(tag), "mentions": inputs.found[tag]}
            for tag in verbalizer.tags
        },
        tasks=inputs.tasks,
        replay=inputs.replays,
        plan=asdict(inputs.plan),
        held_out_f1=f1,
        best_step=step,
        seconds=round(time.monotonic() - started, 1),
        base_model=str(model_dir),
    )
    write_card(out, report)
    return report


def write_card(out: Path, report: AdaptReport) -> None:
    """Write ``adapt.json`` and the human-readable ``ADAPT.md`` into the model folder."""
    (out / RECORD).write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    types = ", ".join(
        f"{tag} as '{t['word']}' ({t['mentions']} mentions)" for tag, t in report.types.items()
    )
    replay = (
        ", ".join(f"{r['name']} ({r['k']} per type)" for r in report.replay)
        if report.replay
        else "none (the base model's corpora were not at hand: its old types may be forgotten)"
    )
    f1 = (
        f"{report.held_out_f1:.3f} at step {report.best_step} ({report.held_out} sentences)"
        if report.held_out_f1 is not None
        else f"not measured (fewer than {HOLDOUT_FROM} sentences: all of them trained)"
    )
    lines = [
        f"# Adapted model: {Path(report.out).name}",
        "",
        f"- base model: `{report.base_model}`",
        f"- data: `{report.train_file}`, {report.sentences} training sentences; types: {types}",
        f"- tasks trained: {', '.join(report.tasks)}",
        f"- replay of the base model's training data: {replay}",
        f"- steps {report.plan['steps']}, batch {report.plan['batch_size']}, learning rate "
        f"{report.plan['learning_rate']} (docs/adapt.md)",
        f"- held-out F1: {f1}",
        f"- time: {report.seconds} s",
        "",
        "Serve it with `make serve MODEL_DIR=<this folder>`; ask for the new types with their "
        "words as labels.",
    ]
    (out / CARD).write_text("\n".join(lines) + "\n", encoding="utf-8")
