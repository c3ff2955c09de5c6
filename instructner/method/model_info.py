"""What a served model knows: its tasks and the label words it was trained on, per corpus.

Read from the training record beside the weights (``training-config.yaml``): the tasks, the
corpora and, when training named types with callers' words (``augment.label_words``), those
words too (:data:`instructner.method.label_words.TRAIN_WORDS`). The build puts this JSON into the
public model's configuration (parameter ``model_info``), so a client reads it with one call
(``InstructNERClient.model_info()``, ``instructner-client info``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from instructner.method.label_words import train_words
from instructner.method.labels import CORPORA, get_verbalizer
from instructner.method.trained_tasks import TRAINING_RECORD, trained_tasks

MODEL_INFO_PARAMETER = "model_info"


def _training_record(model_dir: Path) -> dict[str, Any]:
    record = model_dir / TRAINING_RECORD
    if not record.is_file():
        return {}
    import yaml

    return yaml.safe_load(record.read_text(encoding="utf-8")) or {}


def describe(model_dir: str | Path) -> dict[str, Any]:
    """Return the model's tasks, corpora and label words as JSON-ready values.

    ``label_words`` maps each training corpus to its own words (what the model answers with
    when asked with them); ``also_trained_words`` to the callers' words training also used
    for its types (corpus word -> words), empty when training used none. A model without a
    training record lists every task and no corpora.
    """
    directory = Path(model_dir)
    record = _training_record(directory)
    corpora = [c.get("name") for c in record.get("corpora", []) if c.get("name") in CORPORA]
    augment = record.get("augment") or {}
    with_caller_words = float(augment.get("label_words", 0) or 0) > 0
    # packaged place names taught "city" and "country" for CoNLL-2003's locations
    fine_places = float(((augment.get("fake_names") or {}).get("conll2003") or {}).get("LOC", 0))
    label_words: dict[str, list[str]] = {}
    also: dict[str, dict[str, list[str]]] = {}
    for corpus in corpora:
        verbalizer = get_verbalizer(corpus)
        label_words[corpus] = list(verbalizer.words)
        if with_caller_words:
            synonyms: dict[str, list[str]] = {}
            for tag, words in train_words(corpus).items():
                own = verbalizer.word(tag)
                extra = [w for w in words if w != own]
                if extra:
                    synonyms[own] = extra
            if corpus == "conll2003" and fine_places > 0:
                synonyms.setdefault("location", []).extend(["city", "country"])
            also[corpus] = synonyms
    adapted = (record.get("adapted") or {}).get("labels") or {}
    if adapted:  # a user's own types (instructner adapt): their words as the user named them
        corpora.append("adapted")
        label_words["adapted"] = [str(w) for w in adapted.values()]
    return {
        "tasks": list(trained_tasks(directory)),
        "corpora": corpora,
        "label_words": label_words,
        "also_trained_words": also,
        "text_view": "accents folded, punctuation split (instructner.method.textview)",
    }


def model_info_json(model_dir: str | Path) -> str:
    """Return :func:`describe` as compact JSON (ASCII, so any config format carries it)."""
    return json.dumps(describe(model_dir), separators=(",", ":"), ensure_ascii=True)


def pbtxt_string(value: str) -> str:
    """Escape ``value`` for a double-quoted protobuf text-format string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def known_words(model_dir: str | Path) -> list[str]:
    """Return every label word the model was trained on: corpus words first, then callers'."""
    info = describe(model_dir)
    words = [w for ws in info["label_words"].values() for w in ws]
    for by_word in info["also_trained_words"].values():
        words.extend(w for ws in by_word.values() for w in ws)
    return list(dict.fromkeys(words))
