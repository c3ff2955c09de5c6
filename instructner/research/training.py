"""Train a T5 InstructionNER model: config, data, loop, dev evaluation and checkpoints.

Output directory layout::

    config.yaml       the resolved configuration of the run
    metrics.jsonl     one JSON object per logged step ("loss") and per dev evaluation ("dev")
    best/             Hugging Face checkpoint with the best dev F1 so far (+ best.json)
    last/             the latest checkpoint + trainer_state.pt (optimizer, scheduler, step,
                      data position, RNG states) from which ``--resume`` continues exactly

Data order is a pure function of (seed, epoch): each epoch rebuilds its examples with option
orders drawn from ``seed`` and ``epoch`` and permutes them with the same pair, so a resumed
run sees exactly the batches the uninterrupted run would have seen.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm import tqdm
from transformers import PreTrainedTokenizerBase

from instructner.method.labels import CORPORA, Verbalizer, get_verbalizer
from instructner.method.prompts import TASKS
from instructner.method.types import Sentence
from instructner.modeling import (
    DEFAULT_SHARD_SIZE,
    PAD_TOKEN_ID,
    PRECISIONS,
    autocast,
    autocast_dtype,
    checkpoint_tokenizer,
    count_parameters,
    load_model,
    load_tokenizer,
    new_t5_model,
    pick_device,
    save_model,
)
from instructner.research import data
from instructner.research.augment import AugmentConfig, MentionBank
from instructner.research.evaluation import GenerationSettings, evaluate_sentences
from instructner.research.examples import CorpusSentences, Example, build_examples, check_tasks
from instructner.research.novelty import recall_by_novelty, training_mentions

logger = logging.getLogger(__name__)

TRAIN_MODES = ("full", "kshot", "fewshot")
STATE_FILE = "trainer_state.pt"
METRICS_HISTORY = "metrics.jsonl"
IGNORE_INDEX = -100  # label id that the cross-entropy loss skips (target padding)


@dataclass
class CorpusConfig:
    """Which sentences of one corpus to train and validate on.

    ``train``: ``full`` (the whole train split), ``kshot`` (a sample of about ``k`` sentences
    per type drawn with the run's seed) or ``fewshot`` (the shipped file with ``fewshot``
    shots per type; ``fewshot_seed`` picks one of CoNLL-2003's draws).
    ``dev``: ``dev`` (the corpus's dev split), ``holdout`` (``holdout_fraction`` of train held
    out and removed from the training sentences; the default for the MIT corpora, which have
    no dev split), or ``none``. ``limit``/``dev_limit`` keep only the first N sentences.
    ``repeat`` lists the training sentences that many times an epoch (each copy with its own
    option orders), to up-weight a small corpus in a mix.
    """

    name: str
    train: str = "full"
    k: int | None = None
    fewshot: int | None = None
    fewshot_seed: int | None = None
    limit: int | None = None
    repeat: int = 1
    dev: str = "auto"
    holdout_fraction: float = 0.1
    dev_limit: int | None = None

    def __post_init__(self) -> None:
        if self.name not in CORPORA:
            raise ValueError(f"unknown corpus {self.name!r}: expected one of {', '.join(CORPORA)}")
        if self.train not in TRAIN_MODES:
            raise ValueError(
                f"corpus {self.name}: train must be one of {', '.join(TRAIN_MODES)}, "
                f"got {self.train!r}"
            )
        if self.train == "kshot" and (self.k is None or self.k < 1):
            raise ValueError(f"corpus {self.name}: train 'kshot' needs a positive k")
        if self.train == "fewshot" and (self.fewshot is None or self.fewshot < 1):
            raise ValueError(f"corpus {self.name}: train 'fewshot' needs the shots (fewshot: K)")
        if self.repeat < 1:
            raise ValueError(f"corpus {self.name}: repeat must be at least 1, got {self.repeat}")
        if self.dev == "auto":
            self.dev = "holdout" if self.name in ("mit_movie", "mit_restaurant") else "dev"
        if self.dev not in ("dev", "holdout", "none"):
            raise ValueError(
                f"corpus {self.name}: dev must be auto, dev, holdout or none, got {self.dev!r}"
            )


@dataclass
class TrainConfig:
    """Everything a training run needs; YAML keys are these field names."""

    output_dir: str = "runs/default"
    data_root: str | None = None  # default: instructner.research.data.default_data_root()
    corpora: list[CorpusConfig] = field(default_factory=list)
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    shuffle_options: bool = True
    # per task, the chance that a sentence yields an example of it (1 when not named)
    task_probability: dict[str, float] = field(default_factory=dict)
    # the chance that a sentence also yields a copy example (training only: teaches copying)
    copy_probability: float = 0.0
    # fields of instructner.research.augment.AugmentConfig: mention_replace, uppercase, ...
    augment: dict[str, Any] = field(default_factory=dict)
    # a size preset of instructner.modeling.SIZE_PRESETS or a shape mapping (random init)
    model: str | dict[str, int] = "mini"
    init_from: str | None = None  # an HF T5 checkpoint dir to fine-tune instead
    tokenizer: str | None = None  # default: init_from's tokenizer, else the shipped one
    dropout_rate: float = 0.1
    seed: int = 0
    batch_size: int = 32
    grad_accum: int = 1
    length_window: int = 50  # batches per length-sorting window; 1 = plain random batches
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    adam_beta2: float = 0.999
    # "linear": warmup then linear decay to max_steps. "wsd": warmup, a stable peak, then a
    # 1-sqrt decay over the last decay_fraction of max_steps; max_steps can grow on resume
    # while the run is still stable, so the length need not be known in advance.
    schedule: str = "linear"
    decay_fraction: float = 0.2
    warmup_steps: int = 1000
    max_steps: int = 20000
    max_minutes: float | None = None
    max_grad_norm: float = 1.0
    max_source_length: int = 512
    max_target_length: int = 192
    log_every: int = 50
    eval_every: int = 1000
    # A dev F1 equal to the best so far: "first" keeps the earlier step, "last" takes the
    # later one (adaptation: a tiny held-out slice ties often, and at equal F1 the later step
    # has trained more; ties at 0 would otherwise keep a barely trained first step).
    best_on_tie: str = "first"
    save_every: int = 1000
    eval_batch_size: int = 64
    eval_max_new_tokens: int = 128
    eval_num_beams: int = 1
    device: str = "auto"
    precision: str = "auto"  # auto: bf16 autocast on CUDA and on CPUs with native bf16
    shard_size: str = DEFAULT_SHARD_SIZE
    num_threads: int | None = None  # torch CPU threads; None keeps torch's default
    progress: bool = True

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build a config from a mapping, rejecting unknown keys.

        Raises:
            ValueError: an unknown key, a malformed corpus entry or an invalid value.

        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown config keys {unknown}; known keys: {', '.join(sorted(known))}"
            )
        values = dict(values)
        corpora = []
        for entry in values.pop("corpora", []) or []:
            if isinstance(entry, str):
                entry = {"name": entry}
            if not isinstance(entry, Mapping):
                raise ValueError(f"corpora entries must be names or mappings, got {entry!r}")
            corpus_keys = {f.name for f in fields(CorpusConfig)}
            bad = sorted(set(entry) - corpus_keys)
            if bad:
                raise ValueError(
                    f"unknown corpus keys {bad}; known keys: {', '.join(sorted(corpus_keys))}"
                )
            corpora.append(CorpusConfig(**entry))
        config = cls(corpora=corpora, **values)
        config.validate()
        return config

    def validate(self) -> None:
        """Check values that would otherwise fail late, inside the training loop.

        Raises:
            ValueError: naming the offending key.

        """
        if not self.corpora:
            raise ValueError("config lists no corpora to train on")
        self.tasks = list(check_tasks(self.tasks))
        for name in ("batch_size", "grad_accum", "max_steps", "max_source_length"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("log_every", "eval_every", "save_every", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 (off) or positive, got {getattr(self, name)}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ValueError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.schedule not in ("linear", "wsd"):
            raise ValueError(f"schedule must be 'linear' or 'wsd', got {self.schedule!r}")
        if self.best_on_tie not in ("first", "last"):
            raise ValueError(f"best_on_tie must be 'first' or 'last', got {self.best_on_tie!r}")
        if not 0.0 < self.decay_fraction <= 1.0:
            raise ValueError(f"decay_fraction must be in (0, 1], got {self.decay_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        self.augment_config()  # raises on unknown keys or bad probabilities
        self._check_task_shares()

    def _check_task_shares(self) -> None:
        if not 0.0 <= float(self.copy_probability) <= 1.0:
            raise ValueError(f"copy_probability must be in [0, 1], got {self.copy_probability}")
        for task, value in self.task_probability.items():
            if task not in self.tasks or not 0.0 <= float(value) <= 1.0:
                raise ValueError(
                    f"task_probability {task}: expected one of the run's tasks and a value "
                    f"in [0, 1], got {value}"
                )

    def augment_config(self) -> AugmentConfig:
        """Return the ``augment`` mapping as an :class:`AugmentConfig`.

        Raises:
            ValueError: an unknown key or a value that is not a probability.

        """
        known = {f.name for f in fields(AugmentConfig)}
        unknown = sorted(set(self.augment) - known)
        if unknown:
            raise ValueError(f"unknown augment keys {unknown}; known: {', '.join(sorted(known))}")
        return AugmentConfig(**self.augment)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as plain data (for config.yaml and the checkpoint state)."""
        return asdict(self)


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TrainConfig:
    """Read a YAML config and apply ``overrides`` (top-level keys) on top.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a YAML mapping, or a key or value is invalid.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a YAML mapping of config keys")
    values.update(overrides or {})
    return TrainConfig.from_dict(values)


@dataclass
class CorpusData:
    """The training and dev sentences of one corpus, with its verbalizer."""

    name: str
    verbalizer: Verbalizer
    train: list[Sentence]
    dev: list[Sentence]


def load_corpus_data(spec: CorpusConfig, data_root: Path | None, seed: int) -> CorpusData:
    """Load the train and dev sentences that ``spec`` asks for.

    A held-out dev slice is taken from the full train split before any K-shot sampling, so
    dev sentences never appear in training; a shipped few-shot file is drawn from the full
    train split, so its sentences are removed from a held-out dev slice.
    """
    verbalizer = get_verbalizer(spec.name)
    full_train = data.load_corpus(spec.name, "train", data_root)
    dev: list[Sentence] = []
    pool = full_train
    if spec.dev == "dev":
        dev = data.load_corpus(spec.name, "dev", data_root)
    elif spec.dev == "holdout":
        pool, dev = data.holdout_split(full_train, spec.holdout_fraction, seed)
    if spec.train == "full":
        train = list(pool)
    elif spec.train == "kshot":
        train = data.kshot_sample(pool, int(spec.k or 0), seed)
    else:
        train = data.load_fewshot(spec.name, int(spec.fewshot or 0), spec.fewshot_seed, data_root)
        if spec.dev == "holdout":
            seen = {sentence.tokens for sentence in train}
            dev = [sentence for sentence in dev if sentence.tokens not in seen]
    if spec.limit is not None:
        train = train[: spec.limit]
    if spec.dev_limit is not None:
        dev = dev[: spec.dev_limit]
    if not train:
        raise ValueError(f"corpus {spec.name}: no training sentences selected")
    return CorpusData(spec.name, verbalizer, list(train) * spec.repeat, list(dev))


@dataclass
class TrainState:
    """Where training stands; saved with the last checkpoint so a resume continues exactly."""

    step: int = 0
    epoch: int = 0
    cursor: int = 0  # index of the next micro-batch in the epoch
    best_f1: float = -1.0
    best_step: int = -1
    elapsed_s: float = 0.0


class EpochBatches:
    """Deterministic micro-batches of tokenized examples, resumable at any position.

    Batches are grouped by length: the shuffled examples are cut into windows of
    ``length_window`` batches, sorted by prompt length inside each window, cut into batches,
    and the batches are shuffled. Without it one ATIS prompt (~350 tokens, 83 options) pads
    almost every mixed batch of ~60-token prompts to its length.
    """

    def __init__(
        self,
        corpora: Sequence[CorpusData],
        tokenizer: PreTrainedTokenizerBase,
        config: TrainConfig,
    ) -> None:
        self.corpora = [CorpusSentences(c.name, c.train, c.verbalizer) for c in corpora]
        self.tokenizer = tokenizer
        self.config = config
        self.augment = config.augment_config()
        self.banks = {c.name: MentionBank(c.train) for c in corpora}
        self.encoder = WordCachedEncoder(tokenizer)
        self._epoch = -1
        self._batches: list[list[int]] = []
        self._sources: list[list[int]] = []
        self._targets: list[list[int]] = []

    def examples(self, epoch: int) -> list[Example]:
        """Return the examples of ``epoch`` in corpus order (option orders drawn per epoch)."""
        return build_examples(
            self.corpora,
            self.config.tasks,
            shuffle_options=self.config.shuffle_options,
            seed=_derive_seed(self.config.seed, "options", epoch),
            augment=self.augment,
            task_probability=self.config.task_probability,
            banks=self.banks,
            copy_probability=float(self.config.copy_probability),
        )

    def _prepare(self, epoch: int) -> None:
        if epoch == self._epoch:
            return
        examples = self.examples(epoch)
        sources = self.encoder.encode([e.prompt for e in examples])
        targets = self.encoder.encode([e.target for e in examples])
        _check_lengths(examples, sources, self.config.max_source_length, "prompt")
        _check_lengths(examples, targets, self.config.max_target_length, "target")
        rng = random.Random(_derive_seed(self.config.seed, "order", epoch))
        order = list(range(len(examples)))
        rng.shuffle(order)
        size = self.config.batch_size
        window = size * max(1, self.config.length_window)
        batches: list[list[int]] = []
        for begin in range(0, len(order), window):
            chunk = sorted(order[begin : begin + window], key=lambda i: len(sources[i]))
            batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        rng.shuffle(batches)
        first = self._epoch < 0
        self._epoch, self._batches, self._sources, self._targets = epoch, batches, sources, targets
        logger.log(
            logging.INFO if first else logging.DEBUG,
            "epoch %d: %d examples in %d batches",
            epoch,
            len(examples),
            len(batches),
        )

    def next_batch(self, state: TrainState) -> dict[str, torch.Tensor]:
        """Return the micro-batch at ``state``'s position and advance the position."""
        self._prepare(state.epoch)
        if state.cursor >= len(self._batches):
            state.epoch, state.cursor = state.epoch + 1, 0
            self._prepare(state.epoch)
        chosen = self._batches[state.cursor]
        state.cursor += 1
        return _collate([self._sources[i] for i in chosen], [self._targets[i] for i in chosen])


class WordCachedEncoder:
    """Token ids of texts (with the end token), memoised per whitespace-separated word.

    A tokenizer without a normalizer whose pre-tokenizer is a whitespace-splitting
    ``Metaspace`` (the task tokenizers of :mod:`instructner.research.vocab`) segments each word on
    its own, so a text's ids are its words' ids joined: an epoch of ~100k prompts re-encodes only
    the words it has not seen. Other tokenizers (T5's, with its normalizer) encode as usual.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        backend = getattr(tokenizer, "backend_tokenizer", None)
        pre = str(getattr(backend, "pre_tokenizer", "")) if backend is not None else ""
        self.cached = (
            backend is not None
            and backend.normalizer is None
            and pre.startswith("Metaspace(")
            and "split=True" in pre
        )
        self.words: dict[str, list[int]] = {}
        self.eos = [int(tokenizer.eos_token_id)]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Return the ids of each text, as ``tokenizer(texts)["input_ids"]`` would."""
        if not self.cached:
            return [list(ids) for ids in self.tokenizer(list(texts))["input_ids"]]
        plain = [not ("  " in t or t.startswith(" ") or t.endswith(" ") or not t) for t in texts]
        new = {w for t, ok in zip(texts, plain, strict=True) if ok for w in t.split(" ")}
        new.difference_update(self.words)
        if new:
            ordered = sorted(new)
            encoded = self.tokenizer(ordered, add_special_tokens=False)["input_ids"]
            self.words.update(zip(ordered, (list(ids) for ids in encoded), strict=True))
        out: list[list[int]] = []
        for text, ok in zip(texts, plain, strict=True):
            if ok:
                ids = [i for word in text.split(" ") for i in self.words[word]]
                out.append(ids + self.eos)
            else:
                out.append(list(self.tokenizer(text)["input_ids"]))
        return out


class _StopRequest:
    """Turn SIGTERM/SIGINT into a flag the loop checks between steps (then save and stop)."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame: Any) -> None:
        if self.signal is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signal = number

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def _changed_keys(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))


def _unseen_note(novelty: Mapping[str, Mapping[str, Any]]) -> str:
    recall = novelty["unseen"]["recall"]
    return "" if recall is None else f" [unseen recall {recall:.3f}]"


def _derive_seed(seed: int, purpose: str, epoch: int) -> int:
    return random.Random(f"{seed}/{purpose}/{epoch}").getrandbits(63)


def _check_lengths(
    examples: Sequence[Example], encoded: Sequence[Sequence[int]], limit: int, what: str
) -> None:
    over = [i for i, ids in enumerate(encoded) if len(ids) > limit]
    if over:
        first = over[0]
        raise ValueError(
            f"{len(over)} training {what}s exceed {limit} tokens (first: {examples[first].task} "
            f"example of {examples[first].corpus}, {len(encoded[first])} tokens); raise "
            f"max_{'source' if what == 'prompt' else 'target'}_length or drop those sentences"
        )


def _collate(sources: Sequence[Sequence[int]], targets: Sequence[Sequence[int]]) -> dict[str, Any]:
    width = max(len(row) for row in sources)
    target_width = max(len(row) for row in targets)
    input_ids = torch.full((len(sources), width), PAD_TOKEN_ID, dtype=torch.long)
    attention_mask = torch.zeros((len(sources), width), dtype=torch.long)
    labels = torch.full((len(targets), target_width), IGNORE_INDEX, dtype=torch.long)
    for row, (source, target) in enumerate(zip(sources, targets, strict=True)):
        input_ids[row, : len(source)] = torch.tensor(source)
        attention_mask[row, : len(source)] = 1
        labels[row, : len(target)] = torch.tensor(target)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def build_optimizer(
    model: torch.nn.Module, config: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Return AdamW (no weight decay on norms) and a linear warmup-then-decay schedule."""
    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, parameter in model.named_parameters():
        (no_decay if "layer_norm" in name or name.endswith("bias") else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
        betas=(0.9, config.adam_beta2),
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))


def lr_factor(config: TrainConfig) -> Any:
    """Return the schedule of ``config`` as a function of the step (for ``LambdaLR``).

    The function reads ``max_steps`` when called, so a resumed run with a larger
    ``max_steps`` moves the start of a ``wsd`` decay.
    """

    def factor(step: int) -> float:
        warmup, total = config.warmup_steps, config.max_steps
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "linear":
            return max(0.0, (total - step) / max(1, total - warmup))
        decay = max(1, round(config.decay_fraction * total))
        begin = total - decay
        if step < begin:
            return 1.0
        return max(0.0, 1.0 - math.sqrt(min(1.0, (step - begin) / decay)))

    return factor


class Trainer:
    """Runs one training configuration; :meth:`train` returns the final state."""

    def __init__(
        self,
        config: TrainConfig,
        resume: bool = False,
        extra_corpora: Sequence[CorpusData] = (),
    ) -> None:
        """Set up the run.

        ``extra_corpora`` join the config's: sentences not in a corpus folder (a user's
        file, ``instructner adapt``).
        """
        self.config = config
        self.output_dir = Path(config.output_dir)
        self.last_dir = self.output_dir / "last"
        self.best_dir = self.output_dir / "best"
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.device = pick_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # fp32 matmuls outside autocast
        self.state = TrainState()
        self._evaluated_step = self._saved_step = -1
        resume_state: dict[str, Any] | None = None
        if not resume and (self.last_dir / STATE_FILE).is_file():
            raise ValueError(
                f"{self.output_dir} already holds a run; resume it (--resume) or choose "
                "another output_dir"
            )
        if resume:
            if not (self.last_dir / STATE_FILE).is_file():
                raise FileNotFoundError(
                    f"cannot resume: {self.last_dir / STATE_FILE} does not exist"
                )
            self.model = load_model(self.last_dir)
            self.tokenizer = load_tokenizer(self.last_dir)
            resume_state = torch.load(self.last_dir / STATE_FILE, weights_only=False)
        elif config.init_from:
            logger.info("starting from the weights of %s (a fresh optimizer)", config.init_from)
            self.model = load_model(config.init_from)
            self.tokenizer = (
                load_tokenizer(config.tokenizer)
                if config.tokenizer
                else checkpoint_tokenizer(config.init_from)
            )
        else:
            self.tokenizer = load_tokenizer(config.tokenizer)
            vocab = len(self.tokenizer) if config.tokenizer else None
            self.model = (
                new_t5_model(config.model, config.seed, config.dropout_rate, vocab)
                if vocab
                else new_t5_model(config.model, config.seed, config.dropout_rate)
            )
        if len(self.tokenizer) > self.model.config.vocab_size:
            raise ValueError(
                f"tokenizer has {len(self.tokenizer)} tokens but the model only "
                f"{self.model.config.vocab_size} embedding rows"
            )
        self.model.to(self.device)  # type: ignore[arg-type]
        dtype = autocast_dtype(self.device, config.precision)
        self.precision = "bf16" if dtype is torch.bfloat16 else "fp32"
        logger.info(
            "precision %s (config %s; device %s)", self.precision, config.precision, self.device
        )
        self.optimizer, self.scheduler = build_optimizer(self.model, config)
        data_root = Path(config.data_root) if config.data_root else None
        self.corpora = [load_corpus_data(spec, data_root, config.seed) for spec in config.corpora]
        self.corpora += list(extra_corpora)
        self._seen: dict[str, frozenset[str]] = {}  # training mentions by corpus, for dev
        self.stopped_by_signal: int | None = None  # SIGTERM/SIGINT stopped the last train()
        self.batches = EpochBatches(self.corpora, self.tokenizer, config)
        torch.manual_seed(config.seed)  # dropout stream of a fresh run
        if resume_state is not None:
            self._restore(resume_state)
        logger.info(
            "model: %d parameters on %s; corpora: %s",
            count_parameters(self.model),
            self.device,
            ", ".join(f"{c.name} ({len(c.train)} train, {len(c.dev)} dev)" for c in self.corpora),
        )

    def _restore(self, saved: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.state = TrainState(**saved["state"])
        self._evaluated_step = self._saved_step = self.state.step
        changed = _changed_keys(saved.get("config", {}), self.config.to_dict())
        if changed:
            logger.warning("resuming with changed config keys: %s", ", ".join(changed))
        self._truncate_history(self.state.step)
        random.setstate(saved["python_rng"])
        torch.set_rng_state(saved["torch_rng"])
        if self.device.type == "cuda" and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        logger.info("resumed at step %d (epoch %d)", self.state.step, self.state.epoch)

    def train(self, step_limit: int | None = None) -> TrainState:
        """Train until ``max_steps``, the time budget or ``step_limit``; return the final state.

        ``step_limit`` stops this call after that many steps without changing the schedule,
        as an interruption would (the run continues with ``resume``).
        """
        config, state = self.config, self.state
        stop_at = (
            config.max_steps
            if step_limit is None
            else min(config.max_steps, state.step + step_limit)
        )
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "config.yaml").write_text(
            yaml.safe_dump(config.to_dict(), sort_keys=False), encoding="utf-8"
        )
        started = time.monotonic() - state.elapsed_s
        # the time budget counts per invocation, so a run can continue in fixed-size chunks
        deadline = time.monotonic() + config.max_minutes * 60 if config.max_minutes else math.inf
        progress = tqdm(
            total=config.max_steps,
            initial=state.step,
            disable=not config.progress,
            desc="train",
            dynamic_ncols=True,
        )
        self.model.train()
        running: list[float] = []
        window_start = time.monotonic()
        stop = _StopRequest()
        decay_start = self.decay_start()
        try:
            while state.step < stop_at:
                if time.monotonic() >= deadline:
                    logger.info("time budget of %s minutes reached", config.max_minutes)
                    break
                if stop.signal is not None:
                    logger.info(
                        "signal %s: saving at step %d and stopping", stop.signal, state.step
                    )
                    break
                if state.step == decay_start:
                    self.save_stable()
                loss = self._step()
                state.step += 1
                state.elapsed_s = time.monotonic() - started
                running.append(loss)
                progress.update(1)
                progress.set_postfix(loss=f"{loss:.4f}")
                if config.log_every and state.step % config.log_every == 0:
                    self._log_window(running, window_start, stop_at, deadline)
                    running, window_start = [], time.monotonic()
                if config.eval_every and state.step % config.eval_every == 0:
                    self.evaluate_and_keep_best()
                if config.save_every and state.step % config.save_every == 0:
                    self.save_last()
        finally:
            progress.close()
            stop.restore()
        if stop.signal is not None:
            self.stopped_by_signal = stop.signal
            if self._saved_step != state.step:
                self.save_last()
            return state
        if config.eval_every and self._evaluated_step != state.step:
            self.evaluate_and_keep_best()
        if self._saved_step != state.step:
            self.save_last()
        return state

    def _log_window(
        self, losses: list[float], window_start: float, stop_at: int, deadline: float
    ) -> None:
        """Record and log the mean loss, the speed and the ETA of the last logging window."""
        config, state = self.config, self.state
        now = time.monotonic()
        rate = len(losses) / max(1e-9, now - window_start)
        remaining = (stop_at - state.step) / max(rate, 1e-9)
        entry = {
            "step": state.step,
            "loss": sum(losses) / len(losses),
            "lr": self.scheduler.get_last_lr()[0],
            "epoch": state.epoch,
            "elapsed_s": round(state.elapsed_s, 3),
            "steps_per_s": round(rate, 3),
        }
        self._record(entry)
        logger.info(
            "step %d/%d loss %.4f lr %.2e epoch %d | %.2f steps/s, %.0f examples/s | ETA %s",
            state.step,
            stop_at,
            entry["loss"],
            entry["lr"],
            state.epoch,
            rate,
            rate * config.batch_size * config.grad_accum,
            _duration(min(remaining, deadline - now)),
        )

    def decay_start(self) -> int | None:
        """Return the step where a ``wsd`` schedule starts to decay (None for ``linear``)."""
        config = self.config
        if config.schedule != "wsd":
            return None
        return config.max_steps - max(1, round(config.decay_fraction * config.max_steps))

    def save_stable(self) -> Path:
        """Keep the last state before the decay as ``stable/``: a longer run resumes from it.

        Copy ``stable/`` over ``last/`` and resume with a larger ``max_steps`` to continue the
        stable phase; the decayed model of this run stays in ``best/`` and ``last/``.
        """
        self.save_last()
        target = self.output_dir / "stable"
        staging = target.with_name("stable.tmp")
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(self.last_dir, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        logger.info("step %d: decay starts; stable state kept in %s", self.state.step, target)
        return target

    def _step(self) -> float:
        """Run one optimizer step over ``grad_accum`` micro-batches; return the mean loss."""
        config = self.config
        total = 0.0
        for _ in range(config.grad_accum):
            batch = {k: v.to(self.device) for k, v in self.batches.next_batch(self.state).items()}
            with autocast(self.device, self.precision):
                loss = self.model(**batch).loss
            (loss / config.grad_accum).backward()
            total += float(loss.detach())
        if config.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / config.grad_accum

    def _has_dev(self) -> bool:
        return any(corpus.dev for corpus in self.corpora)

    def _seen_mentions(self, corpus: CorpusData) -> frozenset[str]:
        if corpus.name not in self._seen:
            self._seen[corpus.name] = training_mentions(corpus.train)
        return self._seen[corpus.name]

    def evaluate_dev(self) -> dict[str, Any]:
        """Score every corpus's dev sentences; ``f1`` is the mean over corpora."""
        settings = GenerationSettings(
            batch_size=self.config.eval_batch_size,
            max_new_tokens=self.config.eval_max_new_tokens,
            num_beams=self.config.eval_num_beams,
            max_source_length=self.config.max_source_length,
        )
        per_corpus: dict[str, Any] = {}
        for corpus in self.corpora:
            if not corpus.dev:
                continue
            evaluation = evaluate_sentences(
                self.model, self.tokenizer, corpus.dev, corpus.verbalizer, settings
            )
            scores = evaluation.scores
            per_corpus[corpus.name] = {
                "precision": scores.precision,
                "recall": scores.recall,
                "f1": scores.f1,
                **evaluation.counts,
                "recall_by_novelty": recall_by_novelty(
                    evaluation.records, self._seen_mentions(corpus)
                ),
            }
        self.model.train()
        mean_f1 = sum(c["f1"] for c in per_corpus.values()) / max(1, len(per_corpus))
        return {"f1": mean_f1, "corpora": per_corpus}

    def evaluate_and_keep_best(self) -> dict[str, Any] | None:
        """Evaluate on dev, record the result and save ``best/`` when dev F1 improved."""
        if not self._has_dev():
            return None
        result = self.evaluate_dev()
        state = self.state
        improved = result["f1"] > state.best_f1 or (
            self.config.best_on_tie == "last" and result["f1"] == state.best_f1
        )
        if improved:
            state.best_f1, state.best_step = result["f1"], state.step
            self._save_checkpoint(
                self.best_dir, extra={"best.json": {"step": state.step, **result}}
            )
        self._evaluated_step = state.step
        self._record({"step": state.step, "dev": result, "best": improved})
        logger.info(
            "step %d dev F1 %.4f (%s)%s",
            state.step,
            result["f1"],
            ", ".join(
                f"{name} {c['f1']:.4f}{_unseen_note(c['recall_by_novelty'])}"
                for name, c in result["corpora"].items()
            ),
            " new best" if improved else f", best {state.best_f1:.4f} at {state.best_step}",
        )
        return result

    def save_last(self) -> Path:
        """Save the latest model plus everything needed to resume exactly."""
        saved = {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "state": asdict(self.state),
            "python_rng": random.getstate(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device)
            if self.device.type == "cuda"
            else None,
            "config": self.config.to_dict(),
        }
        self._saved_step = self.state.step
        return self._save_checkpoint(self.last_dir, torch_files={STATE_FILE: saved})

    def _save_checkpoint(
        self,
        directory: Path,
        extra: Mapping[str, Any] | None = None,
        torch_files: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write a checkpoint beside ``directory``, then swap it in.

        A crash never leaves a half-written checkpoint under the final name.
        """
        staging = directory.with_name(directory.name + ".tmp")
        if staging.exists():
            shutil.rmtree(staging)
        save_model(self.model, self.tokenizer, staging, max_shard_size=self.config.shard_size)
        for name, content in (extra or {}).items():
            (staging / name).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
        for name, content in (torch_files or {}).items():
            torch.save(content, staging / name)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
        return directory

    def _truncate_history(self, step: int) -> None:
        """Drop history entries written after the checkpoint a resume starts from."""
        path = self.output_dir / METRICS_HISTORY
        if path.is_file():
            kept = [entry for entry in read_history(self.output_dir) if entry["step"] <= step]
            path.write_text("".join(json.dumps(entry) + "\n" for entry in kept), encoding="utf-8")

    def _record(self, entry: Mapping[str, Any]) -> None:
        with (self.output_dir / METRICS_HISTORY).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")


def read_history(output_dir: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the entries of a run's metrics history, in order."""
    path = Path(output_dir) / METRICS_HISTORY
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def train(config: TrainConfig, resume: bool = False) -> TrainState:
    """Train with ``config`` (continuing from ``output_dir/last`` when ``resume``)."""
    return Trainer(config, resume=resume).train()
