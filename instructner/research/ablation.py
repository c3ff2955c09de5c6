"""Few-shot ablation: NER-only training against NER plus the auxiliary tasks.

The method's claim is that entity extraction and entity typing help when few annotated
sentences exist. For every cell (corpus, shots, draw) and every variant (a task list) this
trains one model from the same starting point with the same optimizer steps on the shipped
few-shot file, then scores its NER answers on the corpus's full test split (or its first
``test_limit`` sentences). Finished cells are appended to ``results.jsonl`` at once, so an
interrupted ablation continues where it stopped; ``summary.json`` and ``summary.md`` give the
mean and sample standard deviation over draws.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from instructner.method.labels import CORPORA, get_verbalizer
from instructner.research import data
from instructner.research.evaluation import GenerationSettings, evaluate_sentences
from instructner.research.examples import check_tasks
from instructner.research.training import STATE_FILE, TrainConfig, Trainer

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
SUMMARY_JSON = "summary.json"
SUMMARY_MARKDOWN = "summary.md"
# keys of the shared training config that each cell sets itself
CELL_KEYS = ("output_dir", "corpora", "tasks", "max_minutes")


@dataclass(frozen=True)
class Cell:
    """One training run of the ablation."""

    corpus: str
    shots: int
    draw: int | None  # CoNLL-2003's K-shot files come in numbered draws; MIT has one file
    variant: str
    tasks: tuple[str, ...]

    @property
    def key(self) -> str:
        """Return a stable name, used for the run folder and to skip finished cells."""
        draw = "" if self.draw is None else f"-draw{self.draw}"
        variant = self.variant.replace("+", "-plus-")
        return f"{self.corpus}-{self.shots}shot{draw}-{variant}"


@dataclass
class SettingConfig:
    """The shot counts (and draws, for CoNLL-2003) to run on one corpus."""

    corpus: str
    shots: list[int]
    draws: list[int | None] = field(default_factory=lambda: [None])

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(
                f"unknown corpus {self.corpus!r}: expected one of {', '.join(CORPORA)}"
            )
        if not self.shots or any(k < 1 for k in self.shots):
            raise ValueError(f"setting {self.corpus}: shots must be positive, got {self.shots}")
        if not self.draws:
            raise ValueError(f"setting {self.corpus}: draws must not be empty")


@dataclass
class AblationConfig:
    """What the ablation trains and how it scores; YAML keys are these field names."""

    output_dir: str = "runs/fewshot-ablation"
    data_root: str | None = None
    # TrainConfig keys shared by every cell (model or init_from, steps, batch, learning rate)
    train: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, list[str]] = field(
        default_factory=lambda: {"ner": ["ner"], "ner+aux": ["ner", "extract", "type"]}
    )
    settings: list[SettingConfig] = field(default_factory=list)
    test_limit: int | None = None
    eval_batch_size: int = 64
    eval_max_new_tokens: int = 128

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> AblationConfig:
        """Build and validate a config from plain data (a parsed YAML file)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown ablation config keys: {', '.join(unknown)}")
        settings = [SettingConfig(**s) for s in values.get("settings") or []]
        config = cls(**{**values, "settings": settings})
        config.validate()
        return config

    def validate(self) -> None:
        """Check the values before hours of training depend on them.

        Raises:
            ValueError: naming the offending key.

        """
        if not self.settings:
            raise ValueError("ablation config lists no settings")
        if not self.variants:
            raise ValueError("ablation config lists no variants")
        for name, tasks in self.variants.items():
            if "ner" not in tasks:
                raise ValueError(f"variant {name!r} must include the ner task (it is scored)")
            check_tasks(tasks)
        clash = sorted(set(self.train) & set(CELL_KEYS))
        if clash:
            raise ValueError(f"train must not set {', '.join(clash)}: each cell sets it")
        if self.test_limit is not None and self.test_limit < 1:
            raise ValueError(f"test_limit must be positive, got {self.test_limit}")
        self.cell_train_config(self.cells()[0])  # the shared keys must make a valid TrainConfig

    def cells(self) -> list[Cell]:
        """Return every run, variants of one (corpus, shots, draw) next to each other."""
        return [
            Cell(setting.corpus, shots, draw, variant, tuple(tasks))
            for setting in self.settings
            for shots in setting.shots
            for draw in setting.draws
            for variant, tasks in self.variants.items()
        ]

    def cell_train_config(self, cell: Cell) -> TrainConfig:
        """Return the training config of one cell: the shared keys plus its data and tasks."""
        corpus = {
            "name": cell.corpus,
            "train": "fewshot",
            "fewshot": cell.shots,
            "fewshot_seed": cell.draw,
            "dev": "none",  # few-shot has no dev set: the last step is scored
        }
        values = {
            **self.train,
            "output_dir": str(Path(self.output_dir) / "runs" / cell.key),
            "data_root": self.data_root,
            "corpora": [corpus],
            "tasks": list(cell.tasks),
            "eval_every": 0,
        }
        return TrainConfig.from_dict(values)


def load_ablation_config(
    path: str | Path, overrides: Mapping[str, Any] | None = None
) -> AblationConfig:
    """Read an ablation YAML file, apply top-level ``overrides`` and validate it."""
    values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: an ablation config must be a YAML mapping")
    values.update(overrides or {})
    return AblationConfig.from_dict(values)


def read_results(output_dir: str | Path) -> list[dict[str, Any]]:
    """Return the finished cells recorded in ``output_dir`` (none when it is new)."""
    path = Path(output_dir) / RESULTS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def run_cell(config: AblationConfig, cell: Cell) -> dict[str, Any]:
    """Train one cell (continuing its run folder if interrupted) and score it on test."""
    train_config = config.cell_train_config(cell)
    resume = (Path(train_config.output_dir) / "last" / STATE_FILE).is_file()
    started = time.monotonic()
    trainer = Trainer(train_config, resume=resume)
    state = trainer.train()
    trained = time.monotonic() - started
    data_root = Path(config.data_root) if config.data_root else None
    test = data.load_corpus(cell.corpus, "test", data_root)
    if config.test_limit is not None:
        test = test[: config.test_limit]
    settings = GenerationSettings(
        batch_size=config.eval_batch_size,
        max_new_tokens=config.eval_max_new_tokens,
        max_source_length=train_config.max_source_length,
    )
    evaluation = evaluate_sentences(
        trainer.model, trainer.tokenizer, test, get_verbalizer(cell.corpus), settings
    )
    scores = evaluation.scores
    return {
        "key": cell.key,
        **{k: v for k, v in asdict(cell).items() if k != "tasks"},
        "tasks": list(cell.tasks),
        "steps": state.step,
        "train_sentences": len(trainer.corpora[0].train),
        "test_sentences": len(test),
        "precision": scores.precision,
        "recall": scores.recall,
        "f1": scores.f1,
        **evaluation.counts,
        "train_seconds": round(trained, 1),
        "eval_seconds": round(time.monotonic() - started - trained, 1),
    }


def run_ablation(
    config: AblationConfig,
    run: Callable[[AblationConfig, Cell], dict[str, Any]] = run_cell,
) -> list[dict[str, Any]]:
    """Run every unfinished cell, then write the summaries; return all results."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.yaml").write_text(
        yaml.safe_dump(asdict(config), sort_keys=False), encoding="utf-8"
    )
    done = {result["key"]: result for result in read_results(out)}
    cells = config.cells()
    for index, cell in enumerate(cells, start=1):
        if cell.key in done:
            continue
        logger.info("cell %d/%d: %s (tasks %s)", index, len(cells), cell.key, ",".join(cell.tasks))
        result = run(config, cell)
        done[cell.key] = result
        with (out / RESULTS_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(result) + "\n")
        logger.info("cell %s: test F1 %.4f", cell.key, result["f1"])
    results = [done[cell.key] for cell in cells]
    rows = summarize(results)
    (out / SUMMARY_JSON).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    (out / SUMMARY_MARKDOWN).write_text(summary_markdown(rows), encoding="utf-8")
    return results


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) > 1 else 0.0


def summarize(results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group results by (corpus, shots, variant): mean and sample std of P/R/F1 over draws."""
    groups: dict[tuple[str, int, str], list[Mapping[str, Any]]] = {}
    for result in results:
        groups.setdefault((result["corpus"], result["shots"], result["variant"]), []).append(result)
    rows = []
    for (corpus, shots, variant), members in groups.items():
        row: dict[str, Any] = {"corpus": corpus, "shots": shots, "variant": variant}
        row["draws"] = len(members)
        for metric in ("precision", "recall", "f1"):
            mean, std = _mean_std([m[metric] for m in members])
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
        rows.append(row)
    return rows


def _percent(mean: float, std: float, draws: int) -> str:
    text = f"{100 * mean:.1f}"
    return f"{text} ± {100 * std:.1f}" if draws > 1 else text


def summary_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Return a markdown table: one line per (corpus, shots), one F1 column per variant."""
    variants = list(dict.fromkeys(row["variant"] for row in rows))
    table: dict[tuple[str, int], dict[str, Mapping[str, Any]]] = {}
    for row in rows:
        table.setdefault((row["corpus"], row["shots"]), {})[row["variant"]] = row
    header = ["corpus", "shots", "draws"] + [f"{v} F1 (%)" for v in variants]
    if len(variants) == 2:
        header.append(f"{variants[1]} − {variants[0]}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (corpus, shots), cells in table.items():
        draws = max(cell["draws"] for cell in cells.values())
        line = [corpus, str(shots), str(draws)]
        for variant in variants:
            cell = cells.get(variant)
            line.append(_percent(cell["f1_mean"], cell["f1_std"], cell["draws"]) if cell else "—")
        if len(variants) == 2 and all(v in cells for v in variants):
            delta = cells[variants[1]]["f1_mean"] - cells[variants[0]]["f1_mean"]
            line.append(f"{100 * delta:+.1f}")
        elif len(variants) == 2:
            line.append("—")
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines) + "\n"
