"""A task-sized SentencePiece tokenizer: trained on the training splits, saved as a T5 tokenizer.

The T5 vocabulary has 32,100 pieces, of which only ~15k ever occur in the four training sets;
its embedding and softmax dominate a small model's parameters and step time. This module
trains a unigram SentencePiece model (case kept, no Unicode normalization, byte fallback so
every UTF-8 text encodes without ``<unk>``) on the training sentences, the prompt templates
and the label words, then writes a ``tokenizer.json`` that the fast tokenizers of
``transformers`` and ``tokenizers`` read, with T5's special ids (pad 0, end 1, unk 2).

Words are split on whitespace before segmentation (``Metaspace``), so a word-bounded span
has the same pieces inside an answer as inside the sentence: what the model copies is what
it read. Training is reproducible: the same sentences and settings give the same pieces.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from instructner.method.labels import CORPORA, get_verbalizer
from instructner.method.prompts import ner_prompt, type_prompt

logger = logging.getLogger(__name__)

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"
DEFAULT_VOCAB_SIZE = 8000
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def training_lines(
    sentences: Iterable[str], label_words: Sequence[str], template_repeats: int = 3000
) -> list[str]:
    """Return the lines a task tokenizer is trained on.

    The sentences as given, the three prompt templates (``template_repeats`` times, so the
    instruction words become single pieces), and each label word in an NER and a typing prompt.
    """
    lines = [line for line in sentences if line.strip()]
    words = list(label_words)
    for _ in range(template_repeats):
        lines.append(ner_prompt("", words[:4] or ["person"]))
        lines.append(type_prompt("", ["x"], words[:4] or ["person"]))
        lines.append("Sentence: Instruction: please extract entity words from the input sentence")
        lines.append("None. is a, is an, is a.")
    for word in words:
        lines.extend([f"{word}, {word} is a {word}, is an {word}."] * 20)
    return lines


def train_sentencepiece(lines: Sequence[str], vocab_size: int, seed: int = 0) -> bytes:
    """Train a unigram SentencePiece model on ``lines``; return the serialized model.

    Raises:
        ValueError: ``vocab_size`` is too small for the byte pieces and special tokens.

    """
    import sentencepiece as spm

    if vocab_size < 512:
        raise ValueError(f"vocab_size must be at least 512 (256 byte pieces), got {vocab_size}")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="unigram",
        vocab_size=vocab_size,
        character_coverage=0.9999,
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_by_whitespace=True,
        split_digits=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece=PAD,
        eos_piece=EOS,
        unk_piece=UNK,
        input_sentence_size=0,
        shuffle_input_sentence=False,
        num_threads=1,  # one thread: the same pieces on every machine
        minloglevel=2,
    )
    return model.getvalue()


def fast_tokenizer_json(spm_model: bytes) -> str:
    """Return ``tokenizer.json`` text equivalent to the SentencePiece model (with byte fallback).

    ``transformers``' T5 converter drops byte fallback, so the fast tokenizer is assembled here
    from the pieces and their scores.
    """
    import sentencepiece as spm
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    processor = spm.SentencePieceProcessor(model_proto=spm_model)
    vocab = [
        (processor.id_to_piece(i), float(processor.get_score(i)))
        for i in range(processor.get_piece_size())
    ]
    if [vocab[0][0], vocab[1][0], vocab[2][0]] != [PAD, EOS, UNK]:
        raise ValueError("the SentencePiece model must have <pad>, </s>, <unk> as ids 0, 1, 2")
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Sequence(
        [decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="always")]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", pair=f"$A {EOS} $B {EOS}", special_tokens=[(EOS, 1)]
    )
    tokenizer.add_special_tokens([AddedToken(t, normalized=False) for t in (PAD, EOS, UNK)])
    return str(tokenizer.to_str())


def write_tokenizer(spm_model: bytes, directory: str | Path, max_length: int = 512) -> Path:
    """Write ``spiece.model``, ``tokenizer.json`` and the transformers config files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "spiece.model").write_bytes(spm_model)
    (directory / "tokenizer.json").write_text(fast_tokenizer_json(spm_model), encoding="utf-8")
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "pad_token": PAD,
        "eos_token": EOS,
        "unk_token": UNK,
        "clean_up_tokenization_spaces": False,
        "extra_ids": 0,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"pad_token": PAD, "eos_token": EOS, "unk_token": UNK}
    (directory / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return directory


def corpus_training_sentences(
    corpora: Sequence[str] = CORPORA, data_root: Path | str | None = None
) -> tuple[list[str], list[str]]:
    """Return the train-split sentences of ``corpora`` and all their label words."""
    from instructner.research import data

    sentences: list[str] = []
    words: list[str] = []
    for corpus in corpora:
        sentences.extend(s.text for s in data.load_corpus(corpus, "train", data_root))
        for word in get_verbalizer(corpus).words:
            if word not in words:
                words.append(word)
    return sentences, words


def build_task_tokenizer(
    out_dir: str | Path,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    corpora: Sequence[str] = CORPORA,
    data_root: Path | str | None = None,
    seed: int = 0,
) -> Path:
    """Train the task tokenizer on the corpora's train splits and write it to ``out_dir``."""
    sentences, words = corpus_training_sentences(corpora, data_root)
    lines = training_lines(sentences, words)
    logger.info(
        "training a %d-piece tokenizer on %d lines (%d sentences)",
        vocab_size,
        len(lines),
        len(sentences),
    )
    return write_tokenizer(train_sentencepiece(lines, vocab_size, seed), out_dir)
