"""Label verbalizers: corpus tag names <-> the natural-language words used in prompts.

InstructionNER puts label *words* ("person", "departure city") into the prompt options and the
model answers with those words; the parser maps them back to the corpus tags. Each corpus has
exactly one mapping here, and every mapping round-trips: ``tag(word(t)) == t``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

CORPORA: tuple[str, ...] = ("conll2003", "mit_movie", "mit_restaurant", "atis")

# Substrings a built-in label word must not contain: the answer format is
# "{entity} is a {label}, {entity} is an {label}." so commas, periods and " is a" would make
# the answer ambiguous to parse.
FORBIDDEN_SUBSTRINGS: tuple[str, ...] = (",", ".", " is a", " is an")

_CONLL2003: tuple[tuple[str, str], ...] = (
    ("PER", "person"),
    ("ORG", "organization"),
    ("LOC", "location"),
    ("MISC", "miscellaneous"),
)

_MIT_MOVIE: tuple[tuple[str, str], ...] = (
    ("ACTOR", "actor"),
    ("CHARACTER", "character"),
    ("DIRECTOR", "director"),
    ("GENRE", "genre"),
    ("PLOT", "plot"),
    # RATING holds MPAA certificates ("pg 13", "r rated"); kept apart from viewer ratings.
    ("RATING", "mpaa rating"),
    ("RATINGS_AVERAGE", "average ratings"),
    ("REVIEW", "review"),
    ("SONG", "song"),
    ("TITLE", "title"),
    ("TRAILER", "trailer"),
    ("YEAR", "year"),
)

_MIT_RESTAURANT: tuple[tuple[str, str], ...] = (
    ("Amenity", "amenity"),
    ("Cuisine", "cuisine"),
    ("Dish", "dish"),
    ("Hours", "opening hours"),
    ("Location", "location"),
    ("Price", "price"),
    ("Rating", "rating"),
    ("Restaurant_Name", "restaurant name"),
)

# All 83 slot types over train/valid/test (79 occur in train). fromloc/toloc/stoploc read as
# departure/arrival/stopover; "date_relative" slots hold words like "next", "today_relative"
# slots words like "tomorrow".
_ATIS: tuple[tuple[str, str], ...] = (
    ("aircraft_code", "aircraft code"),
    ("airline_code", "airline code"),
    ("airline_name", "airline name"),
    ("airport_code", "airport code"),
    ("airport_name", "airport name"),
    ("arrive_date.date_relative", "relative arrival date"),
    ("arrive_date.day_name", "arrival day name"),
    ("arrive_date.day_number", "arrival day number"),
    ("arrive_date.month_name", "arrival month name"),
    ("arrive_date.today_relative", "arrival date relative to today"),
    ("arrive_time.end_time", "arrival end time"),
    ("arrive_time.period_mod", "arrival time period modifier"),
    ("arrive_time.period_of_day", "arrival period of day"),
    ("arrive_time.start_time", "arrival start time"),
    ("arrive_time.time", "arrival time"),
    ("arrive_time.time_relative", "relative arrival time"),
    ("booking_class", "booking class"),
    ("city_name", "city name"),
    ("class_type", "class type"),
    ("compartment", "compartment"),
    ("connect", "connection"),
    ("cost_relative", "relative cost"),
    ("day_name", "day name"),
    ("day_number", "day number"),
    ("days_code", "days code"),
    ("depart_date.date_relative", "relative departure date"),
    ("depart_date.day_name", "departure day name"),
    ("depart_date.day_number", "departure day number"),
    ("depart_date.month_name", "departure month name"),
    ("depart_date.today_relative", "departure date relative to today"),
    ("depart_date.year", "departure year"),
    ("depart_time.end_time", "departure end time"),
    ("depart_time.period_mod", "departure time period modifier"),
    ("depart_time.period_of_day", "departure period of day"),
    ("depart_time.start_time", "departure start time"),
    ("depart_time.time", "departure time"),
    ("depart_time.time_relative", "relative departure time"),
    ("economy", "economy"),
    ("fare_amount", "fare amount"),
    ("fare_basis_code", "fare basis code"),
    ("flight", "flight"),
    ("flight_days", "flight days"),
    ("flight_mod", "flight modifier"),
    ("flight_number", "flight number"),
    ("flight_stop", "flight stop"),
    ("flight_time", "flight time"),
    ("fromloc.airport_code", "departure airport code"),
    ("fromloc.airport_name", "departure airport name"),
    ("fromloc.city_name", "departure city"),
    ("fromloc.state_code", "departure state code"),
    ("fromloc.state_name", "departure state"),
    ("meal", "meal"),
    ("meal_code", "meal code"),
    ("meal_description", "meal description"),
    ("mod", "modifier"),
    ("month_name", "month name"),
    # The slot marks the word "or" between alternatives.
    ("or", "logical or"),
    ("period_of_day", "period of day"),
    ("restriction_code", "restriction code"),
    ("return_date.date_relative", "relative return date"),
    ("return_date.day_name", "return day name"),
    ("return_date.day_number", "return day number"),
    ("return_date.month_name", "return month name"),
    ("return_date.today_relative", "return date relative to today"),
    ("return_time.period_mod", "return time period modifier"),
    ("return_time.period_of_day", "return period of day"),
    ("round_trip", "round trip"),
    ("state_code", "state code"),
    ("state_name", "state name"),
    ("stoploc.airport_code", "stopover airport code"),
    ("stoploc.airport_name", "stopover airport name"),
    ("stoploc.city_name", "stopover city"),
    ("stoploc.state_code", "stopover state code"),
    ("time", "time"),
    ("time_relative", "relative time"),
    ("today_relative", "relative to today"),
    ("toloc.airport_code", "arrival airport code"),
    ("toloc.airport_name", "arrival airport name"),
    ("toloc.city_name", "arrival city"),
    ("toloc.country_name", "arrival country"),
    ("toloc.state_code", "arrival state code"),
    ("toloc.state_name", "arrival state"),
    ("transport_type", "transport type"),
)

_BUILTIN: dict[str, tuple[tuple[str, str], ...]] = {
    "conll2003": _CONLL2003,
    "mit_movie": _MIT_MOVIE,
    "mit_restaurant": _MIT_RESTAURANT,
    "atis": _ATIS,
}


def _word_key(word: str) -> str:
    """Return the case-insensitive lookup key of a label word."""
    return word.strip().casefold()


@dataclass(frozen=True)
class Verbalizer:
    """A bijection between a corpus's tags and label words.

    Build one with :func:`get_verbalizer` (built-in corpora), :meth:`from_pairs` or
    :meth:`from_words` (free label words a user passes, mapped to themselves).
    """

    corpus: str
    tags: tuple[str, ...]
    words: tuple[str, ...]
    _tag_to_word: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _key_to_tag: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.tags) != len(self.words):
            raise ValueError(
                f"verbalizer {self.corpus!r}: {len(self.tags)} tags but {len(self.words)} words"
            )
        if not self.tags:
            raise ValueError(f"verbalizer {self.corpus!r}: no labels given")
        tag_to_word: dict[str, str] = {}
        key_to_tag: dict[str, str] = {}
        for tag, word in zip(self.tags, self.words, strict=True):
            if not isinstance(tag, str) or not tag.strip():
                raise ValueError(f"verbalizer {self.corpus!r}: empty tag {tag!r}")
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"verbalizer {self.corpus!r}: empty word for tag {tag!r}")
            if tag in tag_to_word:
                raise ValueError(f"verbalizer {self.corpus!r}: duplicate tag {tag!r}")
            key = _word_key(word)
            if key in key_to_tag:
                raise ValueError(
                    f"verbalizer {self.corpus!r}: word {word!r} of tag {tag!r} is the same "
                    f"(ignoring case) as the word of tag {key_to_tag[key]!r}"
                )
            tag_to_word[tag] = word
            key_to_tag[key] = tag
        object.__setattr__(self, "_tag_to_word", tag_to_word)
        object.__setattr__(self, "_key_to_tag", key_to_tag)

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], corpus: str = "custom") -> Verbalizer:
        """Build a verbalizer from ``(tag, word)`` pairs, in the given order."""
        pair_list = list(pairs)
        return cls(
            corpus=corpus,
            tags=tuple(tag for tag, _ in pair_list),
            words=tuple(word for _, word in pair_list),
        )

    @classmethod
    def from_words(cls, words: Iterable[str], corpus: str = "custom") -> Verbalizer:
        """Build the identity verbalizer for free label words (each word is its own tag).

        Any non-empty words that are unique ignoring case are accepted, as the caller wrote them.
        """
        word_list = tuple(words)
        return cls(corpus=corpus, tags=word_list, words=word_list)

    def __len__(self) -> int:
        return len(self.tags)

    def word(self, tag: str) -> str:
        """Return the label word of ``tag`` (exact, case-sensitive tag name).

        Raises:
            KeyError: the tag is not a label of this corpus.

        """
        try:
            return self._tag_to_word[tag]
        except KeyError:
            raise KeyError(
                f"unknown tag {tag!r} for corpus {self.corpus!r}; known tags: "
                + ", ".join(self.tags)
            ) from None

    def tag(self, word: str) -> str:
        """Return the tag of a label ``word``, ignoring case and surrounding whitespace.

        Raises:
            KeyError: the word is not a label word of this corpus.

        """
        try:
            return self._key_to_tag[_word_key(word)]
        except KeyError:
            raise KeyError(
                f"unknown label word {word!r} for corpus {self.corpus!r}; known words: "
                + "; ".join(self.words)
            ) from None

    def has_word(self, word: str) -> bool:
        """Return whether ``word`` (ignoring case) is a label word of this corpus."""
        return _word_key(word) in self._key_to_tag

    def has_tag(self, tag: str) -> bool:
        """Return whether ``tag`` is a tag of this corpus."""
        return tag in self._tag_to_word

    def mapping(self) -> dict[str, str]:
        """Return a fresh ``{tag: word}`` dict in label order."""
        return dict(self._tag_to_word)


def word_problems(word: str) -> list[str]:
    """Return why ``word`` is unfit as a built-in label word (empty list when it is fine).

    Built-in words are lowercase, stripped, and free of the answer format's separators.
    """
    problems = []
    if not word.strip():
        problems.append("is empty")
    if word != word.strip():
        problems.append("has surrounding whitespace")
    if word != word.lower():
        problems.append("is not lowercase")
    problems.extend(f"contains {bad!r}" for bad in FORBIDDEN_SUBSTRINGS if bad in word)
    return problems


@cache
def get_verbalizer(corpus: str) -> Verbalizer:
    """Return the built-in verbalizer of ``corpus`` (one of :data:`CORPORA`).

    Raises:
        ValueError: unknown corpus name.

    """
    try:
        pairs = _BUILTIN[corpus]
    except KeyError:
        raise ValueError(
            f"unknown corpus {corpus!r}; known corpora: {', '.join(CORPORA)}"
        ) from None
    return Verbalizer.from_pairs(pairs, corpus=corpus)
