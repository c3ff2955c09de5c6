"""Label words callers write, beside the corpora's own: a training list and an evaluation list.

Each corpus names its types with one fixed word each (:mod:`instructner.method.labels`); callers
write their own ("company" for organization, "city" for departure city). Two disjoint lists of such
words are kept:

* :data:`TRAIN_WORDS`, which training may put in prompts instead of the corpus words
  (``augment.label_words``), so the model reads the options rather than memorising one word
  per type;
* :data:`EVAL_WORDS`, used only by the robustness evaluation (``--variant label-words-unseen``),
  so its figure measures how far the model carries over to words it was never trained on.

Several types may share one word (ATIS's departure, arrival and stopover cities are all a
"city"): their mentions then merge into that word, in training answers and in evaluation gold.
A type absent from a list keeps its corpus word.
"""

from __future__ import annotations

from collections.abc import Mapping

_CITY = ("fromloc.city_name", "toloc.city_name", "stoploc.city_name", "city_name")
_DAY = ("depart_date.day_name", "arrive_date.day_name", "return_date.day_name", "day_name")
_MONTH = (
    "depart_date.month_name",
    "arrive_date.month_name",
    "return_date.month_name",
    "month_name",
)
_TIME = ("depart_time.time", "arrive_time.time", "time", "flight_time")
_AIRPORT = ("fromloc.airport_name", "toloc.airport_name", "stoploc.airport_name", "airport_name")
_STATE = ("fromloc.state_name", "toloc.state_name", "state_name")


def _each(tags: tuple[str, ...], *words: str) -> dict[str, tuple[str, ...]]:
    return {tag: words for tag in tags}


TRAIN_WORDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "conll2003": {
        "PER": ("person", "people", "name", "human"),
        "ORG": ("organization", "company", "organisation", "org", "institution"),
        "LOC": ("location", "place", "geographic location", "loc"),
        "MISC": ("miscellaneous", "other", "misc"),
    },
    "mit_movie": {
        "ACTOR": ("actor", "cast member", "actress", "star"),
        "CHARACTER": ("character", "role"),
        "DIRECTOR": ("director", "film director"),
        "GENRE": ("genre", "movie genre"),
        "PLOT": ("plot", "story"),
        "RATING": ("mpaa rating", "age rating", "certificate"),
        "RATINGS_AVERAGE": ("average ratings", "user rating", "score"),
        "REVIEW": ("review", "opinion"),
        "SONG": ("song", "soundtrack"),
        "TITLE": ("title", "movie title", "movie"),
        "TRAILER": ("trailer", "preview"),
        "YEAR": ("year", "release year"),
    },
    "mit_restaurant": {
        "Amenity": ("amenity", "feature", "facility"),
        "Cuisine": ("cuisine", "food type"),
        "Dish": ("dish", "food"),
        "Hours": ("opening hours", "hours", "opening time"),
        "Location": ("location", "place", "area", "address"),
        "Price": ("price", "cost"),
        "Rating": ("rating", "stars"),
        "Restaurant_Name": ("restaurant name", "restaurant", "business name"),
    },
    "atis": {
        **_each(_CITY, "city", "city name"),
        **_each(_DAY, "day", "day of the week"),
        **_each(_MONTH, "month"),
        **_each(_TIME, "time"),
        **_each(_AIRPORT, "airport"),
        **_each(_STATE, "state"),
        "airline_name": ("airline", "airline company"),
        "fare_amount": ("price", "fare"),
        "flight_number": ("flight number", "flight no"),
        "aircraft_code": ("aircraft", "plane type"),
        "class_type": ("class", "travel class"),
    },
}

EVAL_WORDS: Mapping[str, Mapping[str, str]] = {
    "conll2003": {
        "PER": "individual",
        "ORG": "firm",
        "LOC": "region",
        "MISC": "various",
    },
    "mit_movie": {
        "ACTOR": "performer",
        "CHARACTER": "persona",
        "DIRECTOR": "filmmaker",
        "GENRE": "category",
        "PLOT": "storyline",
        "RATING": "parental rating",
        "RATINGS_AVERAGE": "viewer rating",
        "REVIEW": "critique",
        "SONG": "music",
        "TITLE": "film",
        "TRAILER": "teaser",
        "YEAR": "release date",
    },
    "mit_restaurant": {
        "Amenity": "service",
        "Cuisine": "cooking style",
        "Dish": "menu item",
        "Hours": "schedule",
        "Location": "neighborhood",
        "Price": "budget",
        "Rating": "quality",
        "Restaurant_Name": "eatery",
    },
    "atis": {
        **{tag: "town" for tag in _CITY},
        **{tag: "weekday" for tag in _DAY},
        **{tag: "calendar month" for tag in _MONTH},
        **{tag: "clock time" for tag in _TIME},
        **{tag: "airfield" for tag in _AIRPORT},
        **{tag: "province" for tag in _STATE},
        "airline_name": "carrier",
        "fare_amount": "charge",
        "flight_number": "flight code",
        "aircraft_code": "airplane",
        "class_type": "cabin",
    },
}


def train_words(corpus: str) -> Mapping[str, tuple[str, ...]]:
    """Return the training list of ``corpus`` (tag -> words), empty for an unknown corpus."""
    return TRAIN_WORDS.get(corpus, {})


def eval_words(corpus: str) -> Mapping[str, str]:
    """Return the evaluation-only list of ``corpus`` (tag -> word)."""
    return EVAL_WORDS.get(corpus, {})


def caller_word(corpus: str, tag: str) -> str | None:
    """Return the training-list word the ``label-words`` evaluation asks ``tag`` with.

    The first word of the tag's list that is not its corpus word; ``None`` when the list has
    no other word (the corpus word is then kept).
    """
    from instructner.method.labels import get_verbalizer

    own = get_verbalizer(corpus).word(tag)
    return next((w for w in train_words(corpus).get(tag, ()) if w != own), None)
