"""Readers and writers for the NER corpora in ``shared/data/ner`` and for BIO-tagged files.

Every reader returns :class:`~instructner.method.types.Sentence` objects whose tokens are exactly
the tokens in the file (only line ends are stripped) and whose spans come from :func:`bio_to_spans`.
Malformed input raises :class:`DataFormatError` naming the file and the 1-based line.

Formats (``fmt``):

- ``conll``: whitespace-separated columns, token first and BIO tag last, the same number of
  columns on every line of a file (CoNLL-2003 has 4); ``-DOCSTART-`` lines and blank lines
  separate sentences.
- ``tokentag``: exactly two columns ``token<SEP>TAG`` where SEP is a tab or a space, mixed
  freely (the LightNER few-shot files, ``atis/conll``); CRLF and ``-DOCSTART-`` are fine.
- ``mit``: ``TAG<TAB>token`` (tag first), blank line between sentences.
- ``seqio``: ATIS ``seq.in``/``seq.out``: one sentence a line, tokens and tags separated by
  single spaces, aligned by position. ``path`` is either file or the folder holding both.
- ``words``: ``.words``/``.ner`` pairs, the same layout as ``seqio``. ``path`` is either file
  or the common stem.
- ``jointslu``: ``BOS tokens EOS<TAB>O tags O`` lines (the last tag may be the intent), as in
  ``atis/jointslu/*.iob``; BOS/EOS are markers, not tokens.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from instructner.method.labels import CORPORA
from instructner.method.types import Sentence, TokenSpan

logger = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("auto", "conll", "tokentag", "mit", "seqio", "words", "jointslu")
SPLITS: tuple[str, ...] = ("train", "dev", "test")
DOCSTART = "-DOCSTART-"
DATA_ROOT_ENV = "INSTRUCTNER_DATA_ROOT"

_TAG_RE = re.compile(r"O|[BI]-\S+")
_COLUMN_SEP_RE = re.compile(r"[ \t]+")
# Lines looked at when guessing a column format: enough to see past odd first lines.
_SNIFF_LINES = 200


class DataFormatError(ValueError):
    """A data file does not match its format; the message names the file and the line."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


def is_tag(tag: str) -> bool:
    """Return whether ``tag`` is a BIO tag: ``O``, ``B-X`` or ``I-X``."""
    return _TAG_RE.fullmatch(tag) is not None


def bio_to_spans(tags: Sequence[str]) -> list[TokenSpan]:
    """Return the mentions of a BIO tag sequence as end-exclusive token spans.

    A mention starts at ``B-X``, or at an ``I-X`` that does not continue a mention of type X
    (so IOB1 files and stray ``I-`` tags are read the way seqeval reads them); it continues
    over the following ``I-X`` tags.

    Raises:
        ValueError: a tag is not ``O``, ``B-X`` or ``I-X`` (the message names its index).

    """
    spans: list[TokenSpan] = []
    start: int | None = None
    current: str | None = None
    for index, tag in enumerate(tags):
        if not is_tag(tag):
            raise ValueError(f"tag {index} is {tag!r}, expected O, B-<type> or I-<type>")
        prefix, kind = (tag[0], tag[2:]) if tag != "O" else ("O", None)
        if prefix == "I" and kind == current:
            continue
        if current is not None and start is not None:
            spans.append(TokenSpan(start=start, end=index, tag=current))
        start, current = (index, kind) if kind is not None else (None, None)
    if current is not None and start is not None:
        spans.append(TokenSpan(start=start, end=len(tags), tag=current))
    return spans


def make_sentence(tokens: Sequence[str], tags: Sequence[str], source: str = "") -> Sentence:
    """Build a :class:`Sentence` from aligned tokens and BIO tags, deriving its spans.

    Raises:
        ValueError: different numbers of tokens and tags, or a tag that is not BIO.

    """
    if len(tokens) != len(tags):
        raise ValueError(f"{len(tokens)} tokens but {len(tags)} tags")
    return Sentence(
        tokens=tuple(tokens), tags=tuple(tags), spans=tuple(bio_to_spans(tags)), source=source
    )


def _read_lines(path: Path) -> list[str]:
    """Return the lines of a UTF-8 file with their line ends (LF or CRLF) stripped.

    Only the newline character splits lines: str.splitlines would also split on characters
    that may occur inside tokens (form feed, U+2028, ...).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DataFormatError(path, None, f"not UTF-8 text ({error})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _check_tag(tag: str, path: Path, line_no: int) -> None:
    if not is_tag(tag):
        raise DataFormatError(path, line_no, f"tag {tag!r} is not O, B-<type> or I-<type>")


class _SentenceCollector:
    """Gathers token/tag lines into sentences; skips empty ones."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sentences: list[Sentence] = []
        self._tokens: list[str] = []
        self._tags: list[str] = []
        self._first_line = 0

    def add(self, token: str, tag: str, line_no: int) -> None:
        if not self._tokens:
            self._first_line = line_no
        self._tokens.append(token)
        self._tags.append(tag)

    def close(self) -> None:
        if self._tokens:
            self.sentences.append(
                make_sentence(self._tokens, self._tags, f"{self.path}:{self._first_line}")
            )
        self._tokens, self._tags = [], []


def _read_columns(path: Path, fmt: str) -> list[Sentence]:
    """Read the line-per-token formats: conll, tokentag and mit."""
    collector = _SentenceCollector(path)
    expected_columns: int | None = 2 if fmt in ("tokentag", "mit") else None
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            collector.close()
            continue
        if fmt == "mit":
            fields = line.split("\t")
        else:
            fields = _COLUMN_SEP_RE.split(line)
        if fields[0] == DOCSTART or (fmt == "mit" and fields[-1] == DOCSTART):
            collector.close()
            continue
        if expected_columns is None:
            if len(fields) < 2:
                raise DataFormatError(
                    path, line_no, f"expected at least 2 columns (token ... tag), got {line!r}"
                )
            expected_columns = len(fields)
        if len(fields) != expected_columns:
            layout = "TAG<TAB>token" if fmt == "mit" else "token ... tag"
            raise DataFormatError(
                path,
                line_no,
                f"expected {expected_columns} columns ({layout}) as in the {fmt} format, "
                f"got {len(fields)}: {line!r}",
            )
        tag, token = (fields[0], fields[1]) if fmt == "mit" else (fields[-1], fields[0])
        if not token or (fmt == "mit" and token != token.strip()):
            raise DataFormatError(path, line_no, f"empty or padded token in {line!r}")
        _check_tag(tag, path, line_no)
        collector.add(token, tag, line_no)
    collector.close()
    return collector.sentences


def _read_aligned(token_path: Path, tag_path: Path) -> list[Sentence]:
    """Read sentence-per-line files: tokens in one, tags in the other, aligned by position."""
    token_lines = _read_lines(token_path)
    tag_lines = _read_lines(tag_path)
    if len(token_lines) != len(tag_lines):
        raise DataFormatError(
            tag_path,
            min(len(token_lines), len(tag_lines)) + 1,
            f"{len(tag_lines)} lines but {token_path.name} has {len(token_lines)}",
        )
    sentences = []
    for line_no, (token_line, tag_line) in enumerate(
        zip(token_lines, tag_lines, strict=True), start=1
    ):
        tokens = token_line.split(" ") if token_line else []
        tags = tag_line.split(" ") if tag_line else []
        if len(tokens) != len(tags):
            raise DataFormatError(
                tag_path,
                line_no,
                f"{len(tags)} tags but line {line_no} of {token_path.name} has "
                f"{len(tokens)} tokens",
            )
        if "" in tokens:
            raise DataFormatError(token_path, line_no, "empty token (doubled or edge space)")
        for tag in tags:
            _check_tag(tag, tag_path, line_no)
        if tokens:
            sentences.append(make_sentence(tokens, tags, f"{token_path}:{line_no}"))
    return sentences


def _read_jointslu(path: Path) -> list[Sentence]:
    """Read ``BOS w1 ... EOS<TAB>O t1 ... O`` lines (the last tag may be an intent label)."""
    sentences = []
    for line_no, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataFormatError(path, line_no, f"expected 'BOS ... EOS<TAB>tags', got {line!r}")
        words, tags = parts[0].split(), parts[1].split()
        if len(words) < 2 or words[0] != "BOS" or words[-1] != "EOS":
            raise DataFormatError(
                path, line_no, "sentence does not start with BOS and end with EOS"
            )
        if len(words) != len(tags):
            raise DataFormatError(
                path, line_no, f"{len(words)} words (with BOS/EOS) but {len(tags)} tags"
            )
        tokens, token_tags = words[1:-1], tags[1:-1]
        for tag in token_tags:
            _check_tag(tag, path, line_no)
        if tokens:
            sentences.append(make_sentence(tokens, token_tags, f"{path}:{line_no}"))
    return sentences


def _aligned_pair(path: Path, fmt: str) -> tuple[Path, Path]:
    """Return the (tokens, tags) files of a seqio or words corpus named by ``path``."""
    if fmt == "seqio":
        folder = path if path.is_dir() else path.parent
        return folder / "seq.in", folder / "seq.out"
    stem = path.with_suffix("") if path.suffix in (".words", ".ner") else path
    return stem.with_name(stem.name + ".words"), stem.with_name(stem.name + ".ner")


def detect_format(path: Path | str) -> str:
    """Guess the format of ``path`` from its name, then from its first lines.

    Raises:
        DataFormatError: the format cannot be told (the message says why).
        FileNotFoundError: the path does not exist.

    """
    path = Path(path)
    if path.is_dir():
        if (path / "seq.in").is_file() and (path / "seq.out").is_file():
            return "seqio"
        raise DataFormatError(path, None, "folder without seq.in and seq.out: unknown format")
    if path.name in ("seq.in", "seq.out"):
        return "seqio"
    if path.suffix in (".words", ".ner"):
        return "words"
    if not path.exists() and path.with_name(path.name + ".words").is_file():
        return "words"
    if path.suffix == ".iob":
        return "jointslu"
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    return _sniff_columns(path)


def _sniff_columns(path: Path) -> str:
    """Tell conll, tokentag and mit apart by where the BIO tags sit in the first lines."""
    samples: list[list[str]] = []
    for line in _read_lines(path):
        if not line.strip():
            continue
        fields = _COLUMN_SEP_RE.split(line)
        if DOCSTART in fields:
            continue
        samples.append(fields)
        if len(samples) >= _SNIFF_LINES:
            break
    if not samples:
        raise DataFormatError(path, None, "no token lines: cannot detect the format")
    if any(len(fields) > 2 for fields in samples):
        return "conll"
    tag_last = all(len(fields) == 2 and is_tag(fields[1]) for fields in samples)
    tag_first = all(len(fields) == 2 and is_tag(fields[0]) for fields in samples)
    if tag_last and not tag_first:
        return "tokentag"
    if tag_first and not tag_last:
        return "mit"
    raise DataFormatError(
        path,
        None,
        "cannot detect the format: expected 'token<SEP>TAG', 'TAG<TAB>token' or CoNLL columns "
        "in the first lines; pass fmt explicitly",
    )


def read_sentences(path: Path | str, fmt: str = "auto") -> list[Sentence]:
    """Read a tagged file (or seq.in/seq.out folder, or .words/.ner stem) into sentences.

    Args:
        path: the data file; for ``seqio`` also the folder, for ``words`` also the stem.
        fmt: one of :data:`FORMATS`; ``auto`` guesses with :func:`detect_format`.

    Raises:
        DataFormatError: malformed input or unknown format (names file and 1-based line).
        FileNotFoundError: a file does not exist.

    """
    path = Path(path)
    if fmt not in FORMATS:
        raise DataFormatError(path, None, f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt in ("seqio", "words"):
        token_path, tag_path = _aligned_pair(path, fmt)
        for needed in (token_path, tag_path):
            if not needed.is_file():
                raise FileNotFoundError(f"{fmt} data needs {needed}, which does not exist")
        return _read_aligned(token_path, tag_path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    if fmt == "jointslu":
        return _read_jointslu(path)
    return _read_columns(path, fmt)


def default_data_root() -> Path:
    """Return ``$INSTRUCTNER_DATA_ROOT``, else ``../shared/data/ner`` beside the repository."""
    configured = os.environ.get(DATA_ROOT_ENV)
    if configured:
        return Path(configured)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data" / "ner"


def _resolve_root(data_root: Path | str | None) -> Path:
    root = Path(data_root) if data_root is not None else default_data_root()
    if not root.is_dir():
        raise FileNotFoundError(
            f"NER data folder not found: {root} (set {DATA_ROOT_ENV} or pass data_root)"
        )
    return root


def _check_corpus(corpus: str) -> None:
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; known corpora: {', '.join(CORPORA)}")


# (relative path, format) per corpus and split; None marks a split the corpus does not have.
_CORPUS_FILES: dict[str, dict[str, tuple[str, str] | None]] = {
    "conll2003": {
        "train": ("conll2003/train.txt", "conll"),
        "dev": ("conll2003/valid.txt", "conll"),
        "test": ("conll2003/test.txt", "conll"),
    },
    "mit_movie": {
        "train": ("mit_movie/engtrain.bio", "mit"),
        "dev": None,
        "test": ("mit_movie/engtest.bio", "mit"),
    },
    "mit_restaurant": {
        "train": ("mit_restaurant/restauranttrain.bio", "mit"),
        "dev": None,
        "test": ("mit_restaurant/restauranttest.bio", "mit"),
    },
    "atis": {
        "train": ("atis/train", "seqio"),
        "dev": ("atis/valid", "seqio"),
        "test": ("atis/test", "seqio"),
    },
}


def corpus_path(corpus: str, split: str, data_root: Path | str | None = None) -> tuple[Path, str]:
    """Return the file (or folder) and format of a corpus split.

    Raises:
        ValueError: unknown corpus or split, or a split the corpus does not have.
        FileNotFoundError: the data folder does not exist.

    """
    _check_corpus(corpus)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known splits: {', '.join(SPLITS)}")
    entry = _CORPUS_FILES[corpus][split]
    if entry is None:
        raise ValueError(
            f"corpus {corpus!r} has no {split} split; hold out a slice of train instead, "
            f"e.g. holdout_split(load_corpus({corpus!r}, 'train'), fraction=0.1, seed=0)"
        )
    relative, fmt = entry
    return _resolve_root(data_root) / relative, fmt


def load_corpus(corpus: str, split: str, data_root: Path | str | None = None) -> list[Sentence]:
    """Read one split (train, dev or test) of a corpus.

    The corpora are those of :data:`~instructner.method.labels.CORPORA`.

    ``data_root`` defaults to :func:`default_data_root`.

    Raises:
        ValueError: unknown corpus or split, or no dev split (the MIT corpora).
        FileNotFoundError: the data is missing.
        DataFormatError: a file is malformed.

    """
    path, fmt = corpus_path(corpus, split, data_root)
    return read_sentences(path, fmt)


def holdout_split(
    sentences: Sequence[Sentence], fraction: float, seed: int
) -> tuple[list[Sentence], list[Sentence]]:
    """Split sentences into (rest, held-out) deterministically for a given seed.

    The held-out part has ``round(fraction * n)`` sentences (at least one); both parts keep
    the original order.

    Raises:
        ValueError: fraction outside (0, 1), or too few sentences for two non-empty parts.

    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"holdout fraction must be between 0 and 1 (exclusive), got {fraction}")
    count = len(sentences)
    size = max(1, round(fraction * count))
    if size >= count:
        raise ValueError(
            f"cannot hold out {fraction:.0%} of {count} sentences and keep any for training"
        )
    indices = list(range(count))
    random.Random(seed).shuffle(indices)
    held = set(indices[:size])
    rest = [s for i, s in enumerate(sentences) if i not in held]
    held_out = [s for i, s in enumerate(sentences) if i in held]
    return rest, held_out


_LIGHTNER_DIRS = {"mit_movie": "mit-movie", "mit_restaurant": "mit-restaurant", "atis": "atis"}


def fewshot_path(
    corpus: str, shots: int, seed: int | None = None, data_root: Path | str | None = None
) -> Path:
    """Return the shipped few-shot training file for ``corpus`` with ``shots`` per type.

    MIT corpora and ATIS use the LightNER K-shot files (one draw each, so ``seed`` must be
    None); CoNLL-2003 uses the Huang et al. 2020 draws ``few_shot_K_S`` (``seed`` S picks the
    draw; None picks the undrawn ``few_shot_K`` file where it exists).

    Raises:
        ValueError: unknown corpus, or no shipped file for these shots/seed (lists what exists).
        FileNotFoundError: the data folder does not exist.

    """
    _check_corpus(corpus)
    root = _resolve_root(data_root) / "fewshot"
    if corpus in _LIGHTNER_DIRS:
        folder = root / "lightner_deepke" / _LIGHTNER_DIRS[corpus]
        if seed is not None:
            raise ValueError(
                f"the {corpus} few-shot files are single draws; pass seed=None "
                f"(or sample your own with kshot_sample)"
            )
        path = folder / f"{shots}-shot-train.txt"
        if not path.is_file():
            shipped = sorted(int(p.name.split("-")[0]) for p in folder.glob("*-shot-train.txt"))
            raise ValueError(
                f"no {shots}-shot file for {corpus} in {folder}; shipped shots: {shipped}"
            )
        return path
    folder = root / "huang2020_baselinecode" / "conll2003"
    stem = folder / (f"few_shot_{shots}" if seed is None else f"few_shot_{shots}_{seed}")
    if not stem.with_name(stem.name + ".words").is_file():
        draws = sorted(p.stem for p in folder.glob("few_shot_*.words"))
        raise ValueError(
            f"no few-shot file {stem.name}.words for {corpus} in {folder}; "
            f"shipped: {', '.join(draws)}"
        )
    return stem


def load_fewshot(
    corpus: str, shots: int, seed: int | None = None, data_root: Path | str | None = None
) -> list[Sentence]:
    """Read a shipped few-shot training set (see :func:`fewshot_path` for the files)."""
    path = fewshot_path(corpus, shots, seed, data_root)
    return read_sentences(path, "words" if corpus == "conll2003" else "tokentag")


def kshot_sample(sentences: Sequence[Sentence], k: int, seed: int) -> list[Sentence]:
    """Sample about ``k`` sentences per entity type, greedily and deterministically.

    Sentences are visited in a seeded random order; one is taken when it mentions a type that
    has fewer than ``k`` sentences so far, and it counts for every type it mentions. Sentences
    without mentions are never taken. Types with fewer than ``k`` sentences overall get all of
    theirs. The result keeps the input order.

    Raises:
        ValueError: ``k`` is not positive.

    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    all_types = {span.tag for sentence in sentences for span in sentence.spans}
    order = list(range(len(sentences)))
    random.Random(seed).shuffle(order)
    per_type: Counter[str] = Counter()
    chosen: set[int] = set()
    for index in order:
        types = {span.tag for span in sentences[index].spans}
        if any(per_type[t] < k for t in types):
            chosen.add(index)
            per_type.update(types)
        if all(per_type[t] >= k for t in all_types):
            break
    short = sorted(t for t in all_types if per_type[t] < k)
    if short:
        logger.warning("fewer than %d sentences mention %s; took all of them", k, short)
    return [sentence for i, sentence in enumerate(sentences) if i in chosen]


BioItem = Sentence | tuple[Sequence[str], Sequence[str]] | Sequence[str]


def _tokens_and_tags(item: BioItem, index: int) -> tuple[Sequence[str], Sequence[str]]:
    """Return (tokens, tags) of a write_bio item; bare tag lists get placeholder tokens."""
    if isinstance(item, Sentence):
        return item.tokens, item.tags
    if isinstance(item, str):
        raise ValueError(f"item {index}: expected a tag sequence, got the string {item!r}")
    if len(item) == 2 and not isinstance(item[0], str):
        return item[0], item[1]
    tags = [str(tag) for tag in item]
    return [f"w{position}" for position in range(len(tags))], tags


def write_bio(items: Iterable[BioItem], path: Path | str, fmt: str = "tokentag") -> Path:
    """Write sentences as a two-column BIO file that :func:`read_sentences` reads back.

    Each item is a :class:`Sentence`, a ``(tokens, tags)`` pair, or a bare tag sequence (then
    tokens are written as ``w0 w1 ...``). ``fmt`` is ``tokentag`` (``token<TAB>TAG``; ``conll``
    is accepted as a synonym) or ``mit`` (``TAG<TAB>token``). Sentences are separated by a
    blank line.

    Raises:
        ValueError: unknown fmt, mismatched lengths, a tag that is not BIO, or a token that is
            empty or contains whitespace (it could not be read back).

    """
    if fmt not in ("tokentag", "conll", "mit"):
        raise ValueError(f"write_bio writes tokentag, conll or mit, not {fmt!r}")
    blocks = []
    for index, item in enumerate(items):
        tokens, tags = _tokens_and_tags(item, index)
        if len(tokens) != len(tags):
            raise ValueError(f"item {index}: {len(tokens)} tokens but {len(tags)} tags")
        if not tokens:
            raise ValueError(f"item {index}: empty sentence (it would vanish on reading)")
        lines = []
        for token, tag in zip(tokens, tags, strict=True):
            if not token or token.split() != [token] or token == DOCSTART:
                raise ValueError(f"item {index}: token {token!r} cannot be written in a column")
            if not is_tag(tag):
                raise ValueError(f"item {index}: tag {tag!r} is not O, B-<type> or I-<type>")
            lines.append(f"{tag}\t{token}" if fmt == "mit" else f"{token}\t{tag}")
        blocks.append("\n".join(lines) + "\n")
    path = Path(path)
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path
