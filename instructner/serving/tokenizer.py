"""The T5 tokenizer as the serving models use it: prompts to ids, answer ids to text.

It reads ``tokenizer.json`` with the ``tokenizers`` library directly (no transformers, no
torch: the Triton python models start fast). Encoding and decoding are those of
``transformers``' fast T5 tokenizer with ``add_special_tokens=True`` and
``decode(..., skip_special_tokens=True, clean_up_tokenization_spaces=False)``, so ``" ."``
in an answer stays as the model wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tokenizers import Tokenizer
from tokenizers.decoders import DecodeStream

from instructner.method.label_aliases import load_aliases, resolve_labels
from instructner.method.prompts import build_prompt
from instructner.method.textview import model_view, view_entities
from instructner.serving.errors import RequestError
from instructner.serving.windows import Measure

SHIPPED_TOKENIZER_DIR = Path(__file__).resolve().parent.parent / "resources" / "t5-tokenizer"


def tokenizer_dir_for(checkpoint_dir: str | Path) -> Path:
    """Return the checkpoint's own tokenizer directory: a model is served with its tokenizer.

    Raises:
        FileNotFoundError: the checkpoint carries no ``tokenizer.json`` (a model and a
            tokenizer from different places would silently disagree on token ids).

    """
    directory = Path(checkpoint_dir)
    if not (directory / "tokenizer.json").is_file():
        raise FileNotFoundError(
            f"{directory} holds no tokenizer.json: a model directory carries its own tokenizer "
            "(save_model and instructner export write it)"
        )
    return directory


class PromptTokenizer:
    """Encode prompts and decode answers with a T5 ``tokenizer.json``."""

    def __init__(self, directory: str | Path = SHIPPED_TOKENIZER_DIR) -> None:
        path = Path(directory) / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"no tokenizer in {directory}: tokenizer.json is missing")
        self._tokenizer = Tokenizer.from_file(str(path))
        self.eos_token_id = self._required_id("</s>")
        self.pad_token_id = self._required_id("<pad>")
        self._special = {
            token.content
            for token in self._tokenizer.get_added_tokens_decoder().values()
            if token.special
        }
        # The last text encoded and its ids: window planning counts a prompt's tokens, then the
        # same prompt is encoded for the engine (one window: always); the second time is free.
        # One entry, read and replaced as one tuple, so threads sharing the tokenizer at worst
        # miss it.
        self._last: tuple[str, tuple[int, ...]] | None = None
        # Callers' label words the model never saw -> words it knows
        # (instructner.method.label_aliases)
        self.label_aliases: dict[str, str] = load_aliases(directory)

    def _required_id(self, token: str) -> int:
        token_id = self._tokenizer.token_to_id(token)
        if token_id is None:
            raise ValueError(f"the tokenizer has no {token} token")
        return int(token_id)

    def encode(self, text: str) -> list[int]:
        """Return the token ids of ``text`` followed by the end token."""
        last = self._last
        if last is not None and last[0] == text:
            return list(last[1])
        ids = self._tokenizer.encode(text, add_special_tokens=True).ids
        self._last = (text, tuple(ids))
        return list(ids)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Return :meth:`encode` of each text (one call into the tokenizer)."""
        return [list(e.ids) for e in self._tokenizer.encode_batch(list(texts))]

    def decode(self, ids: Sequence[int]) -> str:
        """Return the text of answer ids, special tokens left out, spaces as generated."""
        return str(self._tokenizer.decode(list(ids), skip_special_tokens=True))

    def decode_with_spans(self, ids: Sequence[int]) -> tuple[str, list[tuple[int, int] | None]]:
        """Return :meth:`decode` of ``ids`` and the range of that text each token wrote.

        Special tokens write nothing (None). Byte-fallback tokens that together write one
        character all get that character's range. Decoding runs token by token (the
        tokenizer's stream decoder), so the ranges join up to exactly the decoded text.

        Raises:
            ValueError: streaming and whole decoding disagree (a tokenizer this module does
                not support; never expected for SentencePiece T5 tokenizers).

        """
        stream = DecodeStream(skip_special_tokens=True)
        spans: list[tuple[int, int] | None] = []
        pending: list[int] = []  # tokens that wrote nothing yet (a character's first bytes)
        parts: list[str] = []
        position = 0
        for token_id in ids:
            chunk = stream.step(self._tokenizer, int(token_id))
            spans.append(None)
            if not chunk:
                if self._tokenizer.id_to_token(int(token_id)) not in self._special:
                    pending.append(len(spans) - 1)
                continue
            span = (position, position + len(chunk))
            for index in [*pending, len(spans) - 1]:
                spans[index] = span
            pending.clear()
            parts.append(chunk)
            position = span[1]
        text, whole = "".join(parts), self.decode(ids)
        if pending and whole.startswith(text) and len(whole) > len(text):
            # The answer ended inside a character: the stream waits for bytes that never come,
            # whole decoding writes replacement characters for them.
            for index in pending:
                spans[index] = (len(text), len(whole))
            text = whole
        if text != whole:
            raise ValueError("the tokenizer's stream and whole decoding disagree")
        return text, spans


def window_prompt(
    task: str,
    text: str,
    labels: Sequence[str] = (),
    entities: Sequence[str] = (),
    aliases: Mapping[str, str] | None = None,
) -> str:
    """Return the prompt of one window: the model reads its view of the text and entities.

    :func:`instructner.method.textview.model_view` folds accents and splits punctuation as the
    training corpora do; :func:`instructner.serving.results.window_result` maps the answer
    back to the caller's text. With ``aliases``, labels the model never saw are asked with
    the known words they map to (:func:`instructner.method.label_aliases.resolve_labels`).
    """
    prompt_labels = resolve_labels(aliases or {}, labels) if labels else labels
    # a word pinned to several spans is named once: the answer types each mention in turn
    words = list(dict.fromkeys(view_entities(entities)))
    return build_prompt(task, model_view(text).text, prompt_labels, words)


def prompt_measure(tokenizer: PromptTokenizer, task: str, labels: Sequence[str]) -> Measure:
    """Return a function counting the prompt tokens of a window, for window planning."""

    def measure(text: str, entities: tuple[str, ...]) -> int:
        # A typing window without entities is never sent; count it with an empty list.
        prompt = window_prompt(task, text, labels, entities or ("",), tokenizer.label_aliases)
        return len(tokenizer.encode(prompt))

    return measure


def encode_window(
    tokenizer: PromptTokenizer,
    task: str,
    text: str,
    labels: Sequence[str],
    entities: Sequence[str],
    max_input_tokens: int,
) -> list[int]:
    """Return the prompt ids of one window.

    Raises:
        RequestError: the prompt is over ``max_input_tokens`` (the message gives both counts).

    """
    ids = tokenizer.encode(window_prompt(task, text, labels, entities, tokenizer.label_aliases))
    if len(ids) > max_input_tokens:
        raise RequestError(
            "TEXT",
            f"the prompt is {len(ids)} tokens, over the engine's limit of {max_input_tokens}; "
            "send long documents to the model instruction_ner, which splits them",
        )
    return ids
