"""The ``instructner-client`` command line: ner, extract and type against a running server.

Exit codes: 0 every text succeeded; 1 a server or connection error (any text); 2 bad usage or
invalid input (found by the client or rejected by the server), when no text hit an error of 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import IO, Any

from ._core import DEFAULT_MAX_CONCURRENCY, DEFAULT_MODEL, DEFAULT_TIMEOUT, DEFAULT_URL
from ._document import DEFAULT_PART_CHARS
from ._errors import InstructNERError, InvalidInputError
from ._options import TLSConfig
from ._sync import InstructNERClient
from ._types import Entity, Extraction, ModelInfo
from ._validation import EntityRef, check_min_score
from ._version import __version__

__all__ = ["main"]

logger = logging.getLogger("instructner_client")

EXIT_OK = 0
EXIT_SERVER_ERROR = 1
EXIT_USAGE = 2

TRUNCATION_WARNING = (
    "the answer was cut at the output token limit: entities after the cut are missing"
)
CHUNK_LINES = 256  # stdin batches are sent and printed in chunks so output starts early


@dataclass(frozen=True)
class _Item:
    """One text to process: where it came from, and the entities for the type task."""

    line: int  # 1-based stdin line, 0 for a text given as an argument
    text: str
    entities: tuple[EntityRef, ...] = ()  # words, or (start, end) spans of the text


class _UsageError(Exception):
    """Bad command-line usage: reported on stderr with exit code 2."""


def _split_words(value: str) -> list[str]:
    return [word.strip() for word in value.split(",")]


def _span(value: str) -> tuple[int, int]:
    start, sep, end = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return int(start), int(end)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected START:END character offsets, e.g. 21:26, got {value!r}"
        ) from None


def _min_score(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value!r}") from None
    try:
        return check_min_score(number)  # the library's own rule
    except InvalidInputError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}") from None


def _header(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"header {value!r} must be KEY=VALUE")
    return key.strip().lower(), val


def _add_connection_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add the options shared by every subcommand (accepted before or after it)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--url",
        default=default(DEFAULT_URL),
        help=f"host:port of Triton's gRPC port, not its HTTP port (default: {DEFAULT_URL})",
    )
    group.add_argument(
        "--model", default=default(DEFAULT_MODEL), help=f"model name (default: {DEFAULT_MODEL})"
    )
    group.add_argument("--model-version", default=default(""), help="version (default: latest)")
    group.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT),
        help=f"seconds per request, retries included (default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--concurrency",
        type=int,
        default=default(DEFAULT_MAX_CONCURRENCY),
        help=f"requests in flight for stdin batches (default: {DEFAULT_MAX_CONCURRENCY})",
    )
    group.add_argument("--tls", action="store_true", default=default(False), help="use TLS")
    group.add_argument("--root-cert", default=default(None), help="CA certificate file (PEM)")
    group.add_argument("--client-cert", default=default(None), help="client certificate (PEM)")
    group.add_argument("--client-key", default=default(None), help="client private key (PEM)")
    group.add_argument(
        "--header",
        type=_header,
        action="append",
        default=default([]),
        metavar="KEY=VALUE",
        help="extra gRPC metadata, repeatable (e.g. authorization=Bearer ...)",
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--json", action="store_true", default=default(False), help="JSON lines instead of a table"
    )
    output.add_argument(
        "--no-progress", action="store_true", default=default(False), help="no progress bar"
    )
    output.add_argument(
        "-v", "--verbose", action="count", default=default(0), help="log to stderr (-vv: debug)"
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``instructner-client``."""
    parser = argparse.ArgumentParser(
        prog="instructner-client",
        description="Call the InstructNER model on a Triton server. Without TEXT (or with '-'), "
        "each stdin line is one text and the lines are sent concurrently; --file sends one "
        "document of any length (split into parts, offsets into the whole document).",
        epilog="exit codes: 0 ok, 1 server or connection error, 2 bad usage or invalid input",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_connection_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ner = commands.add_parser("ner", help="typed entities for the given label words")
    extract = commands.add_parser("extract", help="entity spans without types")
    typing = commands.add_parser(
        "type",
        help="type the given entity words",
        description="Type the given entities of TEXT: words (--entities, --entity) or "
        "character spans (--span START:END, which occurrence). From stdin, each line is a JSON "
        'object {"text": ..., "entities": [...]} whose entities are words or [start, end] '
        "pairs.",
    )
    info = commands.add_parser(
        "info", help="the served model's tasks and the label words it was trained on"
    )
    _add_connection_options(info, suppress=True)
    for sub in (ner, extract, typing):
        sub.add_argument("text", nargs="?", default="-", help="the text ('-' or none: stdin)")
        sub.add_argument(
            "--file",
            metavar="PATH",
            help="one document from a UTF-8 file ('-': all of stdin), any length, line breaks "
            "kept; entity offsets index the whole document",
        )
        sub.add_argument(
            "--max-chars",
            type=int,
            default=DEFAULT_PART_CHARS,
            metavar="N",
            help="with --file: characters per request, the server's TEXT limit (default: "
            f"{DEFAULT_PART_CHARS:,}, the server's default)",
        )
        sub.add_argument(
            "--min-score",
            type=_min_score,
            default=0.0,
            metavar="P",
            help="drop entities the model scored below P, 0 to 1 (default: 0, keep all)",
        )
        _add_connection_options(sub, suppress=True)
    for sub in (ner, typing):
        sub.add_argument(
            "--labels", type=_split_words, required=True, help="comma-separated label words"
        )
    typing.add_argument(
        "--entities",
        type=_split_words,
        default=[],
        help="comma-separated entity words of TEXT (like --labels)",
    )
    typing.add_argument(
        "--entity",
        action="append",
        default=[],
        metavar="WORDS",
        help="one entity word of TEXT, repeatable; for words that contain a comma",
    )
    typing.add_argument(
        "--span",
        type=_span,
        action="append",
        default=[],
        metavar="START:END",
        help="one entity as its character offsets in TEXT (or the --file document), "
        "end-exclusive, repeatable: which occurrence to type ('Paris Hilton visited Paris' "
        "--span 21:26 is the second Paris)",
    )
    return parser


def _tls_config(args: argparse.Namespace) -> TLSConfig | None:
    uses_files = args.root_cert or args.client_cert or args.client_key
    if not args.tls and not uses_files:
        return None
    return TLSConfig(
        root_certificates=args.root_cert,
        client_certificate=args.client_cert,
        client_key=args.client_key,
    )


def _stdin_items(command: str, stream: IO[str]) -> list[_Item]:
    items: list[_Item] = []
    for number, raw in enumerate(stream, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue  # blank lines separate nothing; they are not texts
        if command != "type":
            items.append(_Item(number, line))
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise _UsageError(f"stdin line {number}: not JSON: {error.msg}") from None
        if not isinstance(record, dict) or "text" not in record or "entities" not in record:
            raise _UsageError(
                f'stdin line {number}: expected {{"text": ..., "entities": [...]}}, got {line!r}'
            )
        entities = record["entities"]
        if not isinstance(entities, list):
            raise _UsageError(f"stdin line {number}: entities must be a list")
        # a [start, end] pair is a span; the library checks both kinds
        refs = tuple(tuple(e) if isinstance(e, list) else e for e in entities)
        items.append(_Item(number, record["text"], refs))
    return items


def _given_entities(args: argparse.Namespace, what: str) -> list[EntityRef]:
    """Return the entities of the command line: words or spans (not both)."""
    words = [*getattr(args, "entities", []), *getattr(args, "entity", [])]
    spans: list[EntityRef] = list(getattr(args, "span", []))
    if words and spans:
        raise _UsageError(
            "give the entities as words (--entities, --entity) or as --span, not both"
        )
    if args.command == "type" and what and not (words or spans):
        raise _UsageError(f"type needs --entities, --entity or --span for {what}")
    return words or spans


def _items(args: argparse.Namespace, stdin: IO[str]) -> tuple[list[_Item], bool]:
    """Return the texts to process and whether they came from stdin."""
    if args.text != "-":
        return [_Item(0, args.text, tuple(_given_entities(args, "TEXT")))], False
    if stdin.isatty():
        raise _UsageError("give TEXT, or pipe texts into stdin, one per line")
    if _given_entities(args, ""):
        raise _UsageError(
            "--entities/--entity/--span apply to TEXT; stdin lines carry their own entities"
        )
    return _stdin_items(args.command, stdin), True


def _entities_table(entities: Sequence[Entity]) -> list[str]:
    if not entities:
        return ["  (no entities)"]
    rows = [("TEXT", "LABEL", "START", "END", "SCORE")] + [
        (
            e.text,
            e.label or "-",
            str(e.start),
            str(e.end),
            "-" if e.score is None else f"{e.score:.3f}",
        )
        for e in entities
    ]
    widths = [max(len(row[col]) for row in rows) for col in range(5)]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _render(item: _Item, outcome: Extraction | InstructNERError, as_json: bool) -> str:
    if as_json:
        record: dict[str, object] = {"text": item.text}
        if item.line:
            record = {"line": item.line, **record}
        if isinstance(outcome, InstructNERError):
            record["error"] = {"type": type(outcome).__name__, "message": outcome.message}
        else:
            record["entities"] = [entity.to_dict() for entity in outcome.entities]
            record["generated_text"] = outcome.generated_text
            record["output_limit_reached"] = outcome.output_limit_reached
        return json.dumps(record, ensure_ascii=False) + "\n"
    lines = [f"line {item.line}: {item.text}" if item.line else item.text]
    if isinstance(outcome, InstructNERError):
        lines.append(f"  error: {outcome}")
    else:
        lines += _entities_table(outcome.entities)
        if outcome.output_limit_reached:
            lines.append(f"  warning: {TRUNCATION_WARNING}")
    return "\n".join(lines) + "\n"


def _progress(
    total: int, enabled: bool
) -> tuple[AbstractContextManager[Any], Callable[[int], None]]:
    """Return a progress bar context and its per-item callback (no-ops without tqdm)."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            logger.info("install instructner-client[progress] for a progress bar")
        else:
            bar = tqdm(total=total, unit="text", file=sys.stderr, disable=None)
            return bar, lambda _index: bar.update(1)
    return nullcontext(), lambda _index: None


def _chunks(items: list[_Item], size: int) -> Iterator[list[_Item]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_chunk(
    client: InstructNERClient,
    args: argparse.Namespace,
    chunk: list[_Item],
    on_done: Callable[[int], None],
) -> list[Extraction | InstructNERError]:
    return client.analyze_batch(
        args.command,
        [item.text for item in chunk],
        labels=getattr(args, "labels", ()),
        entities=[item.entities for item in chunk] if args.command == "type" else (),
        min_score=args.min_score,
        return_exceptions=True,
        on_done=on_done,
    )


def _exit_code(outcomes: Sequence[object]) -> int:
    errors = [o for o in outcomes if isinstance(o, InstructNERError)]
    if any(not isinstance(error, InvalidInputError) for error in errors):
        return EXIT_SERVER_ERROR
    return EXIT_USAGE if errors else EXIT_OK


def _client(args: argparse.Namespace) -> InstructNERClient:
    """Return the client the connection options describe."""
    return InstructNERClient(
        args.url,
        model_name=args.model,
        model_version=args.model_version,
        timeout=args.timeout,
        tls=_tls_config(args),
        metadata=dict(args.header),
        max_concurrency=args.concurrency,
    )


def _render_info(info: ModelInfo, as_json: bool) -> str:
    if as_json:
        return json.dumps(dataclasses.asdict(info), ensure_ascii=False) + "\n"
    lines = [f"tasks: {', '.join(info.tasks)}"]
    for corpus in info.corpora:
        lines.append(f"{corpus}:")
        also = info.also_trained_words.get(corpus, {})
        for word in info.label_words.get(corpus, ()):
            extra = also.get(word, ())
            lines.append(f"  {word}" + (f" (also: {', '.join(extra)})" if extra else ""))
    return "\n".join(lines) + "\n"


def _read_document(path: str, stdin: IO[str]) -> str:
    if path == "-":
        if stdin.isatty():
            raise _UsageError("--file -: pipe the document into stdin")
        return stdin.read()
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text ({error.reason} at byte {error.start})"
        raise _UsageError(f"--file {path}: {reason}") from None
    except OSError as error:
        raise _UsageError(f"--file {path}: {error.strerror or error}") from None


def _render_document(path: str, text: str, outcome: Extraction, as_json: bool) -> str:
    if as_json:
        record = {
            "file": path,
            "characters": len(text),
            "entities": [entity.to_dict() for entity in outcome.entities],
            "output_limit_reached": outcome.output_limit_reached,
        }
        return json.dumps(record, ensure_ascii=False) + "\n"
    lines = [f"{path}: {len(text)} characters"] + _entities_table(outcome.entities)
    if outcome.output_limit_reached:
        lines.append(f"  warning: {TRUNCATION_WARNING}")
    return "\n".join(lines) + "\n"


class _PartsProgress:
    """A progress bar over a document's parts, opened once their number is known."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: AbstractContextManager[Any] | None = None
        self._update: Callable[[int], None] = lambda _index: None

    def on_parts(self, total: int) -> None:
        if self.enabled and total > 1:
            self._bar, self._update = _progress(total, True)
            self._bar.__enter__()

    def on_done(self, index: int) -> None:
        self._update(index)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


def _run_document(args: argparse.Namespace, stdin: IO[str], stdout: IO[str]) -> int:
    """Send one document (--file) through the library's document call; print its entities."""
    if args.text != "-":
        raise _UsageError("give TEXT or --file, not both")
    entities = _given_entities(args, "the document")
    text = _read_document(args.file, stdin)
    progress = _PartsProgress(not args.no_progress)
    try:
        with _client(args) as client:
            outcome = client.analyze_document(
                args.command,
                text,
                labels=getattr(args, "labels", ()),
                entities=entities,
                min_score=args.min_score,
                max_chars=args.max_chars,
                max_concurrency=args.concurrency,
                on_parts=progress.on_parts,
                on_done=progress.on_done,
            )
    finally:
        progress.close()
    stdout.write(_render_document(args.file, text, outcome, args.json))
    return EXIT_OK


def run(args: argparse.Namespace, stdin: IO[str], stdout: IO[str]) -> int:
    """Run the parsed command; return the exit code."""
    if args.command == "info":
        with _client(args) as client:
            stdout.write(_render_info(client.model_info(), args.json))
        return EXIT_OK
    if getattr(args, "file", None) is not None:
        return _run_document(args, stdin, stdout)
    items, from_stdin = _items(args, stdin)
    outcomes: list[object] = []
    with _client(args) as client:
        bar, on_done = _progress(len(items), from_stdin and not args.no_progress)
        with bar:
            for chunk in _chunks(items, CHUNK_LINES):
                results = _run_chunk(client, args, chunk, on_done)
                for item, outcome in zip(chunk, results, strict=True):
                    if isinstance(outcome, InstructNERError) and not from_stdin:
                        raise outcome
                    stdout.write(_render(item, outcome, args.json))
                    outcomes.append(outcome)
                stdout.flush()
    return _exit_code(outcomes)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``instructner-client``; returns the exit code."""
    args = build_parser().parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(message)s")
    try:
        return run(args, sys.stdin, sys.stdout)
    except _UsageError as error:
        sys.stderr.write(f"instructner-client: error: {error}\n")
        return EXIT_USAGE
    except InvalidInputError as error:
        sys.stderr.write(f"instructner-client: invalid input: {error}\n")
        return EXIT_USAGE
    except InstructNERError as error:
        sys.stderr.write(f"instructner-client: {type(error).__name__}: {error}\n")
        return EXIT_SERVER_ERROR


if __name__ == "__main__":
    sys.exit(main())
