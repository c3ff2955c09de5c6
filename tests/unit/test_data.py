"""Data readers: formats, BIO spans, malformed input, corpus counts, few-shot files, sampling."""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from seqeval.metrics.sequence_labeling import get_entities

from instructner.method.types import Sentence, TokenSpan
from instructner.research.data import (
    DATA_ROOT_ENV,
    DataFormatError,
    bio_to_spans,
    default_data_root,
    detect_format,
    fewshot_path,
    holdout_split,
    kshot_sample,
    load_corpus,
    load_fewshot,
    make_sentence,
    read_sentences,
    write_bio,
)
from tests.shared_data import DATA_ROOT, needs_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data"


def spans_of(sentence: Sentence) -> list[tuple[str, str]]:
    """Return (mention text, tag) pairs of a sentence, for readable assertions."""
    return [(e.text, str(e.label)) for e in sentence.char_spans()]


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


# --- bio_to_spans -------------------------------------------------------------------------


def test_bio_to_spans_reads_b_and_continuing_i_tags():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]
    assert bio_to_spans(tags) == [
        TokenSpan(0, 2, "PER"),
        TokenSpan(3, 4, "LOC"),
        TokenSpan(4, 6, "LOC"),
    ]


def test_bio_to_spans_starts_mention_at_i_tag_after_o_iob1_style():
    assert bio_to_spans(["O", "I-ORG", "I-ORG", "O"]) == [TokenSpan(1, 3, "ORG")]


def test_bio_to_spans_starts_new_mention_at_i_tag_of_other_type():
    assert bio_to_spans(["B-PER", "I-LOC", "I-LOC", "I-PER"]) == [
        TokenSpan(0, 1, "PER"),
        TokenSpan(1, 3, "LOC"),
        TokenSpan(3, 4, "PER"),
    ]


def test_bio_to_spans_of_no_tags_or_only_o_is_empty():
    assert bio_to_spans([]) == []
    assert bio_to_spans(["O", "O"]) == []


def test_bio_to_spans_keeps_dotted_atis_types():
    assert bio_to_spans(["B-fromloc.city_name", "I-fromloc.city_name"]) == [
        TokenSpan(0, 2, "fromloc.city_name")
    ]


@pytest.mark.parametrize("bad", ["E-PER", "B_PER", "B-", "o", "PER", ""])
def test_bio_to_spans_rejects_non_bio_tag_naming_its_index(bad):
    with pytest.raises(ValueError, match=rf"tag 1 is {bad!r}"):
        bio_to_spans(["O", bad])


@given(st.lists(st.sampled_from(["O", "B-A", "I-A", "B-B", "I-B"]), max_size=20))
def test_bio_to_spans_agrees_with_seqeval_on_any_tag_sequence(tags):
    ours = sorted((s.tag, s.start, s.end - 1) for s in bio_to_spans(tags))
    assert ours == sorted(get_entities(list(tags)))


def test_make_sentence_rejects_length_mismatch():
    with pytest.raises(ValueError, match="2 tokens but 1 tags"):
        make_sentence(["a", "b"], ["O"])


# --- readers on fixtures ------------------------------------------------------------------


def test_tokentag_reader_handles_crlf_mixed_separators_and_docstart():
    sentences = read_sentences(FIXTURES / "fewshot_mixed_crlf.txt")
    assert [s.tokens for s in sentences] == [
        ("show", "flights", "from", "new", "york"),
        ("boston",),
    ]
    assert spans_of(sentences[0]) == [("new york", "fromloc.city_name")]
    assert spans_of(sentences[1]) == [("boston", "toloc.city_name")]
    assert not any("\r" in token for s in sentences for token in s.tokens + s.tags)


def test_conll_reader_starts_mention_at_iob1_i_tag_and_at_i_tag_of_other_type():
    sentences = read_sentences(FIXTURES / "conll_iob1.txt")
    assert spans_of(sentences[0]) == [
        ("Peter Blackburn", "PER"),
        ("New York", "LOC"),
        ("Times", "ORG"),
    ]
    assert spans_of(sentences[2]) == [("EU", "ORG"), ("German", "MISC"), ("call", "ORG")]


def test_conll_reader_skips_empty_sentences_keeps_short_and_trailing_ones():
    sentences = read_sentences(FIXTURES / "conll_iob1.txt")
    assert [s.tokens for s in sentences] == [
        ("Peter", "Blackburn", "visited", "New", "York", "Times", "."),
        ("Hi",),
        ("EU", "rejects", "German", "call"),
    ]


def test_reader_keeps_last_sentence_of_file_without_final_newline(tmp_path):
    path = write(tmp_path / "x.txt", "a O\nb B-X\n\nc I-Y")
    sentences = read_sentences(path)
    assert [s.tokens for s in sentences] == [("a", "b"), ("c",)]
    assert spans_of(sentences[1]) == [("c", "Y")]


def test_reader_records_file_and_first_line_of_each_sentence():
    sentences = read_sentences(FIXTURES / "conll_iob1.txt")
    path = FIXTURES / "conll_iob1.txt"
    assert [s.source for s in sentences] == [f"{path}:3", f"{path}:14", f"{path}:16"]


def test_mit_reader_reads_tag_before_token():
    sentences = read_sentences(FIXTURES / "mit_tag_first.bio")
    assert sentences[0].text == "what movies star bruce willis"
    assert spans_of(sentences[0]) == [("bruce willis", "ACTOR")]
    assert spans_of(sentences[1]) == [("1980s", "YEAR"), ("comedy drama", "GENRE")]


def test_reader_keeps_tokens_verbatim_including_tag_like_and_unicode_tokens(tmp_path):
    path = write(tmp_path / "t.txt", "O O\nB-X B-PER\nCafé\tI-PER\n\"'\tO\n")
    [sentence] = read_sentences(path, "tokentag")
    assert sentence.tokens == ("O", "B-X", "Café", "\"'")
    assert spans_of(sentence) == [("B-X Café", "PER")]


@pytest.mark.parametrize(
    "target",
    ["atis_seqio", "atis_seqio/seq.in", "atis_seqio/seq.out"],
)
def test_seqio_reader_accepts_folder_or_either_file(target):
    sentences = read_sentences(FIXTURES / target)
    assert [len(s.tokens) for s in sentences] == [10, 6]
    assert spans_of(sentences[0]) == [
        ("baltimore", "fromloc.city_name"),
        ("dallas", "toloc.city_name"),
        ("round trip", "round_trip"),
    ]


@pytest.mark.parametrize("target", ["conll_sample.words", "conll_sample.ner", "conll_sample"])
def test_words_reader_accepts_stem_or_either_file(target):
    sentences = read_sentences(FIXTURES / target)
    assert [spans_of(s) for s in sentences] == [
        [("EU", "ORG"), ("German", "MISC")],
        [("Peter Blackburn", "PER")],
    ]


def test_jointslu_reader_drops_bos_eos_and_intent():
    sentences = read_sentences(FIXTURES / "jointslu_sample.iob")
    assert [s.text for s in sentences] == ["show me flights to boston", "what is economy"]
    assert spans_of(sentences[0]) == [("boston", "toloc.city_name")]
    assert spans_of(sentences[1]) == [("economy", "economy")]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("fewshot_mixed_crlf.txt", "tokentag"),
        ("conll_iob1.txt", "conll"),
        ("mit_tag_first.bio", "mit"),
        ("atis_seqio", "seqio"),
        ("atis_seqio/seq.out", "seqio"),
        ("conll_sample.ner", "words"),
        ("conll_sample", "words"),
        ("jointslu_sample.iob", "jointslu"),
    ],
)
def test_detect_format_recognises_each_fixture(name, fmt):
    assert detect_format(FIXTURES / name) == fmt


# --- malformed input ----------------------------------------------------------------------


def test_data_format_error_is_a_value_error():
    assert issubclass(DataFormatError, ValueError)


def test_conll_reader_names_file_and_line_of_wrong_column_count(tmp_path):
    path = write(tmp_path / "bad.txt", "EU NNP B-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(DataFormatError, match=r"bad\.txt:2: expected 4 columns .* got 3"):
        read_sentences(path, "conll")


def test_tokentag_reader_names_line_of_single_column(tmp_path):
    path = write(tmp_path / "few.txt", "-DOCSTART- O\r\n\r\na O\r\nlonely\r\n")
    with pytest.raises(DataFormatError, match=r"few\.txt:4: expected 2 columns"):
        read_sentences(path, "tokentag")


def test_reader_names_file_and_line_of_non_bio_tag(tmp_path):
    path = write(tmp_path / "tags.txt", "a O\n\nb S-PER\n")
    with pytest.raises(DataFormatError, match=r"tags\.txt:3: tag 'S-PER' is not O, B-<type>"):
        read_sentences(path, "tokentag")


def test_mit_reader_rejects_space_separated_line(tmp_path):
    path = write(tmp_path / "m.bio", "O\twhat\nB-ACTOR bruce\n")
    with pytest.raises(DataFormatError, match=r"m\.bio:2: expected 2 columns \(TAG<TAB>token\)"):
        read_sentences(path, "mit")


def test_mit_reader_rejects_token_first_file_by_tag_check(tmp_path):
    path = write(tmp_path / "m.bio", "what\tO\n")
    with pytest.raises(DataFormatError, match=r"m\.bio:1: tag 'what'"):
        read_sentences(path, "mit")


def test_seqio_reader_names_line_with_token_tag_count_mismatch(tmp_path):
    write(tmp_path / "seq.in", "a b\nc d e\n")
    write(tmp_path / "seq.out", "O O\nO B-X\n")
    with pytest.raises(
        DataFormatError, match=r"seq\.out:2: 2 tags but line 2 of seq\.in has 3 tokens"
    ):
        read_sentences(tmp_path)


def test_seqio_reader_names_files_when_line_counts_differ(tmp_path):
    write(tmp_path / "seq.in", "a b\nc\n")
    write(tmp_path / "seq.out", "O O\n")
    with pytest.raises(DataFormatError, match=r"seq\.out:2: 1 lines but seq\.in has 2"):
        read_sentences(tmp_path / "seq.in")


def test_seqio_reader_rejects_doubled_space(tmp_path):
    write(tmp_path / "seq.in", "a  b\n")
    write(tmp_path / "seq.out", "O O O\n")
    with pytest.raises(DataFormatError, match=r"seq\.in:1: empty token"):
        read_sentences(tmp_path)


def test_words_reader_names_line_with_count_mismatch(tmp_path):
    write(tmp_path / "s.words", "a b\nc\n")
    write(tmp_path / "s.ner", "O O\nO O\n")
    with pytest.raises(DataFormatError, match=r"s\.ner:2: 2 tags but line 2 of s\.words has 1"):
        read_sentences(tmp_path / "s.words")


def test_jointslu_reader_rejects_line_without_bos_eos(tmp_path):
    path = write(tmp_path / "j.iob", "BOS a EOS\tO O O\nb c\tO O\n")
    with pytest.raises(DataFormatError, match=r"j\.iob:2: sentence does not start with BOS"):
        read_sentences(path)


def test_unknown_format_names_file(tmp_path):
    path = write(tmp_path / "x.txt", "a O\n")
    with pytest.raises(DataFormatError, match=r"x\.txt: unknown format 'json'"):
        read_sentences(path, "json")


def test_auto_detection_fails_on_ambiguous_columns(tmp_path):
    path = write(tmp_path / "amb.txt", "O O\nB-X I-X\n")
    with pytest.raises(DataFormatError, match=r"amb\.txt: cannot detect the format"):
        read_sentences(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        read_sentences(tmp_path / "nope.txt")


def test_non_utf8_file_is_a_format_error(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Café O\n".encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin\.txt: not UTF-8"):
        read_sentences(path, "tokentag")


# --- write_bio ----------------------------------------------------------------------------


def test_write_bio_round_trips_sentences(tmp_path):
    original = read_sentences(FIXTURES / "conll_iob1.txt")
    path = write_bio(original, tmp_path / "out.txt")
    again = read_sentences(path)
    assert [(s.tokens, s.tags) for s in again] == [(s.tokens, s.tags) for s in original]


def test_write_bio_writes_mit_layout_and_bare_tag_lists(tmp_path):
    path = write_bio([["B-A", "I-A"], (["x"], ["O"])], tmp_path / "m.bio", fmt="mit")
    assert path.read_text() == "B-A\tw0\nI-A\tw1\n\nO\tx\n"
    assert [s.tokens for s in read_sentences(path)] == [("w0", "w1"), ("x",)]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ((["a b"], ["O"]), "token 'a b' cannot be written"),
        ((["a"], ["X-1"]), "tag 'X-1' is not O"),
        ((["a", "b"], ["O"]), "2 tokens but 1 tags"),
        (([], []), "empty sentence"),
    ],
)
def test_write_bio_rejects_items_it_could_not_read_back(tmp_path, item, message):
    with pytest.raises(ValueError, match=message):
        write_bio([item], tmp_path / "o.txt")


# --- holdout_split and kshot_sample -------------------------------------------------------


def numbered_sentences(count: int) -> list[Sentence]:
    return [make_sentence([f"t{i}"], ["O"]) for i in range(count)]


def test_holdout_split_is_deterministic_disjoint_complete_and_ordered():
    sentences = numbered_sentences(50)
    rest, held = holdout_split(sentences, 0.2, seed=3)
    assert (rest, held) == holdout_split(sentences, 0.2, seed=3)
    assert len(held) == 10 and len(rest) == 40
    assert sorted(rest + held, key=sentences.index) == sentences
    assert held == sorted(held, key=sentences.index)
    assert holdout_split(sentences, 0.2, seed=4)[1] != held


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_holdout_split_rejects_fraction_outside_open_interval(fraction):
    with pytest.raises(ValueError, match="between 0 and 1"):
        holdout_split(numbered_sentences(10), fraction, seed=0)


def test_holdout_split_refuses_to_leave_nothing_for_training():
    with pytest.raises(ValueError, match="keep any for training"):
        holdout_split(numbered_sentences(1), 0.5, seed=0)


def typed_sentences() -> list[Sentence]:
    sentences = []
    for i in range(30):
        tags = ["B-A" if i % 2 == 0 else "O", "B-B" if i % 3 == 0 else "O", "O"]
        sentences.append(make_sentence([f"s{i}", "x", "y"], tags))
    sentences.append(make_sentence(["rare"], ["B-C"]))
    return sentences


def test_kshot_sample_reaches_k_sentences_per_type_deterministically():
    sentences = typed_sentences()
    sample = kshot_sample(sentences, 4, seed=1)
    assert sample == kshot_sample(sentences, 4, seed=1)
    for tag in ("A", "B"):
        assert sum(any(sp.tag == tag for sp in s.spans) for s in sample) >= 4
    assert all(s.spans for s in sample)
    assert sample == sorted(sample, key=sentences.index)


def test_kshot_sample_takes_all_of_a_rare_type_and_warns(caplog):
    with caplog.at_level(logging.WARNING, logger="instructner.research.data"):
        sample = kshot_sample(typed_sentences(), 2, seed=0)
    assert any(s.tokens == ("rare",) for s in sample)
    assert "['C']" in caplog.text


def test_kshot_sample_rejects_non_positive_k():
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        kshot_sample(typed_sentences(), 0, seed=0)


# --- load_corpus / load_fewshot on a small fake data root ---------------------------------


@pytest.fixture
def fake_root(tmp_path: Path) -> Path:
    """A data root with the shipped layout and tiny files."""
    (tmp_path / "conll2003").mkdir()
    conll = (FIXTURES / "conll_iob1.txt").read_bytes()
    for name in ("train", "valid", "test"):
        (tmp_path / "conll2003" / f"{name}.txt").write_bytes(conll)
    (tmp_path / "mit_movie").mkdir()
    (tmp_path / "mit_movie" / "engtrain.bio").write_bytes(
        (FIXTURES / "mit_tag_first.bio").read_bytes()
    )
    for split in ("train", "valid", "test"):
        folder = tmp_path / "atis" / split
        folder.mkdir(parents=True)
        for name in ("seq.in", "seq.out"):
            (folder / name).write_bytes((FIXTURES / "atis_seqio" / name).read_bytes())
    lightner = tmp_path / "fewshot" / "lightner_deepke" / "mit-movie"
    lightner.mkdir(parents=True)
    (lightner / "10-shot-train.txt").write_bytes((FIXTURES / "fewshot_mixed_crlf.txt").read_bytes())
    huang = tmp_path / "fewshot" / "huang2020_baselinecode" / "conll2003"
    huang.mkdir(parents=True)
    for stem in ("few_shot_5", "few_shot_5_0"):
        for suffix in (".words", ".ner"):
            (huang / f"{stem}{suffix}").write_bytes(
                (FIXTURES / f"conll_sample{suffix}").read_bytes()
            )
    return tmp_path


def test_load_corpus_maps_dev_to_valid_files(fake_root):
    assert len(load_corpus("conll2003", "dev", fake_root)) == 3
    assert len(load_corpus("atis", "dev", fake_root)) == 2


def test_load_corpus_uses_environment_data_root(fake_root, monkeypatch):
    monkeypatch.setenv(DATA_ROOT_ENV, str(fake_root))
    assert default_data_root() == fake_root
    assert len(load_corpus("mit_movie", "train")) == 2


def test_default_data_root_is_shared_folder_beside_repository(monkeypatch):
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    assert default_data_root() == DATA_ROOT


@pytest.mark.parametrize("corpus", ["mit_movie", "mit_restaurant"])
def test_load_corpus_dev_of_mit_corpus_suggests_holdout(corpus, fake_root):
    with pytest.raises(ValueError, match=rf"'{corpus}' has no dev split.*holdout_split"):
        load_corpus(corpus, "dev", fake_root)


def test_load_corpus_rejects_unknown_corpus_and_split(fake_root):
    with pytest.raises(ValueError, match="unknown corpus 'ontonotes'; known corpora: conll2003"):
        load_corpus("ontonotes", "train", fake_root)
    with pytest.raises(ValueError, match="unknown split 'valid'; known splits: train, dev, test"):
        load_corpus("conll2003", "valid", fake_root)


def test_load_corpus_without_data_folder_says_how_to_set_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{DATA_ROOT_ENV}"):
        load_corpus("atis", "train", tmp_path / "missing")


def test_load_fewshot_reads_lightner_file_and_conll_seed(fake_root):
    assert [s.text for s in load_fewshot("mit_movie", 10, data_root=fake_root)] == [
        "show flights from new york",
        "boston",
    ]
    assert len(load_fewshot("conll2003", 5, seed=0, data_root=fake_root)) == 2
    assert fewshot_path("conll2003", 5, data_root=fake_root).name == "few_shot_5"


def test_load_fewshot_lists_shipped_shots_for_unknown_k(fake_root):
    with pytest.raises(ValueError, match=r"no 30-shot file for mit_movie .*shipped shots: \[10\]"):
        load_fewshot("mit_movie", 30, data_root=fake_root)
    with pytest.raises(
        ValueError, match=r"few_shot_5_7\.words .*shipped: few_shot_5, few_shot_5_0"
    ):
        load_fewshot("conll2003", 5, seed=7, data_root=fake_root)


def test_load_fewshot_rejects_seed_for_single_draw_files(fake_root):
    with pytest.raises(ValueError, match="single draws; pass seed=None"):
        load_fewshot("mit_movie", 10, seed=1, data_root=fake_root)


# --- the shipped corpora (skipped without ../shared) --------------------------------------


@cache
def corpus(name: str, split: str) -> tuple[Sentence, ...]:
    return tuple(load_corpus(name, split, DATA_ROOT))


README_COUNTS = [
    ("conll2003", "train", 14041, 23499),
    ("conll2003", "dev", 3250, 5942),
    ("conll2003", "test", 3453, 5648),
    ("mit_movie", "train", 9775, 21295),
    ("mit_movie", "test", 2443, 5339),
    ("mit_restaurant", "train", 7660, 15363),
    ("mit_restaurant", "test", 1521, 3151),
    ("atis", "train", 4478, 14851),
    ("atis", "dev", 500, 1709),
    ("atis", "test", 893, 2837),
]


@needs_data
@pytest.mark.parametrize(("name", "split", "n_sentences", "n_mentions"), README_COUNTS)
def test_corpus_split_has_readme_sentence_and_mention_counts(name, split, n_sentences, n_mentions):
    sentences = corpus(name, split)
    assert len(sentences) == n_sentences
    assert sum(len(s.spans) for s in sentences) == n_mentions


@needs_data
@pytest.mark.parametrize(
    ("split", "folder"), [("train", "train"), ("dev", "valid"), ("test", "test")]
)
def test_atis_conll_and_jointslu_files_agree_with_seq_in_out(split, folder):
    expected = [(s.tokens, s.tags) for s in corpus("atis", split)]
    conll = read_sentences(DATA_ROOT / "atis" / "conll" / f"{folder}.txt")
    assert [(s.tokens, s.tags) for s in conll] == expected
    joint_name = {"train": "atis-2.train", "dev": "atis-2.dev", "test": "atis.test"}[split]
    for suffix in (".iob", ".w-intent.iob"):
        joint = read_sentences(DATA_ROOT / "atis" / "jointslu" / f"{joint_name}{suffix}")
        assert [(s.tokens, s.tags) for s in joint] == expected


LIGHTNER_FILES = sorted(
    str(p.relative_to(DATA_ROOT))
    for p in (DATA_ROOT / "fewshot" / "lightner_deepke").glob("*/*.txt")
)


@needs_data
def test_lightner_files_include_crlf_and_mixed_separators():
    raw = (DATA_ROOT / "fewshot" / "lightner_deepke" / "atis" / "10-shot-train.txt").read_bytes()
    assert b"\r\n" in raw and b"-DOCSTART-\tO" in raw and b"show O\r\n" in raw


@needs_data
@pytest.mark.parametrize("relative", LIGHTNER_FILES)
def test_lightner_fewshot_file_parses_into_clean_sentences(relative):
    sentences = read_sentences(DATA_ROOT / relative)
    assert detect_format(DATA_ROOT / relative) == "tokentag"
    assert sentences and all(s.spans or s.tags for s in sentences)
    tokens = {t for s in sentences for t in s.tokens}
    assert "-DOCSTART-" not in tokens
    assert not any(c in t for t in tokens for c in " \t\r")


@needs_data
@pytest.mark.parametrize(
    ("name", "shots", "n_sentences"),
    [("mit_movie", 10, 51), ("mit_restaurant", 10, 40), ("atis", 10, 340), ("atis", 50, 1327)],
)
def test_load_fewshot_reads_shipped_lightner_files(name, shots, n_sentences):
    assert len(load_fewshot(name, shots, data_root=DATA_ROOT)) == n_sentences


@needs_data
@pytest.mark.parametrize("shots", [5, 10, 20])
@pytest.mark.parametrize("seed", range(10))
def test_huang2020_conll_seed_has_k_sentences_per_type(shots, seed):
    sentences = load_fewshot("conll2003", shots, seed=seed, data_root=DATA_ROOT)
    assert len(sentences) == 4 * shots
    assert {span.tag for s in sentences for span in s.spans} == {"PER", "ORG", "LOC", "MISC"}


@needs_data
@pytest.mark.parametrize(
    ("name", "folder"),
    [("mit_movie", "mit-movie"), ("mit_restaurant", "mit-restaurant"), ("conll2003", "conll2003")],
)
def test_lightner_test_file_equals_the_corpus_test_split(name, folder):
    lightner = read_sentences(DATA_ROOT / "fewshot" / "lightner_deepke" / folder / "test.txt")
    assert [(s.tokens, s.tags) for s in lightner] == [
        (s.tokens, s.tags) for s in corpus(name, "test")
    ]


@needs_data
def test_lightner_atis_test_splits_clitics_but_keeps_sentences_and_mentions():
    # The LightNER copy tokenizes "i'd" as "i 'd" (32 sentences); mentions keep their types.
    lightner = read_sentences(DATA_ROOT / "fewshot" / "lightner_deepke" / "atis" / "test.txt")
    ours = corpus("atis", "test")
    differing = [
        i for i, (a, b) in enumerate(zip(lightner, ours, strict=True)) if a.tokens != b.tokens
    ]
    assert len(lightner) == len(ours) and len(differing) == 32
    assert all("".join(a.tokens) == "".join(b.tokens) for a, b in zip(lightner, ours, strict=True))
    assert [[sp.tag for sp in s.spans] for s in lightner] == [
        [sp.tag for sp in s.spans] for s in ours
    ]
