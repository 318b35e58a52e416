"""The WordNet 3.0 reader (tools/wordnet.py) on Debian's real database (wordnet-base, which
.ci/run installs), and the real English it gives the small scale's data."""

from __future__ import annotations

import re
import tarfile

import pytest

from tools import wordnet

from helpers import ROOT


def test_a_sense_its_gloss_examples_and_definition():
    dish = wordnet.synset("dish", 2)  # nltk's dish.n.02
    assert "dish" in dish.lemmas
    assert dish.definition == "a particular item of prepared food"
    assert dish.examples == ("she prepared a special dish for dinner",)
    assert wordnet.synset("dish", 1) != dish
    with pytest.raises(KeyError, match="no noun sense 99 of 'dish'"):
        wordnet.synset("dish", 99)


def test_words_under_a_sense_are_those_it_is_the_first_meaning_of():
    words = wordnet.words_meaning([wordnet.synset("dish", 2)])
    assert {"pizza", "sauerbraten", "cheeseburger"} <= set(words)
    assert "bomber" not in words and "hero" not in words  # sandwiches too, but first an aircraft and a person
    assert not any(word != word.lower() for word in words)  # proper names (Irish coffee) left out
    common = wordnet.words_meaning([wordnet.synset("dish", 2)], tagged_only=True)
    assert "pizza" in common and "sauerbraten" not in common and set(common) < set(words)
    closure = {s.offset for s in wordnet.hyponym_closure(wordnet.synset("pizza", 1))}
    assert wordnet.synset("pizza", 1).offset in closure and len(closure) == 1 + 5  # pizza and its 5 kinds


def test_definitions_name_each_synset_by_one_of_its_words():
    meanings = dict(wordnet.definitions([wordnet.synset("pizza", 1)]))
    assert meanings["pizza"].startswith("Italian open pie made of thin bread dough")
    # pizza's 5 kinds but Sicilian pizza (a proper name)
    assert "pepperoni pizza" in meanings and len(meanings) == 5 and "sicilian pizza" not in meanings


def test_a_missing_database_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv(wordnet.WORDNET_DIR_VARIABLE, str(tmp_path))
    wordnet.nouns.cache_clear()
    try:
        with pytest.raises(
            FileNotFoundError, match=re.escape(f"{tmp_path / 'data.noun'}: WordNet 3.0") + ".*wordnet-base"
        ):
            wordnet.nouns()
    finally:
        wordnet.nouns.cache_clear()


def _small_texts(dataset: str, split: str) -> list[str]:
    with tarfile.open(ROOT / "sample_data" / "small" / dataset / "datasets.tar.gz") as tar:
        lines = tar.extractfile(f"{dataset}_data/{dataset}.{split}.txt").read().decode().splitlines()
    return [line.split("\t")[-1] for line in lines]


@pytest.mark.parametrize("dataset", ["yelp", "yahoo"])
def test_the_small_data_speaks_real_english_about_each_texts_topic(dataset):
    """The shipped small data has WordNet's sentences (about 30 % of body sentences), each from its
    own text's business or topic, and a vocabulary far beyond the generator's word lists (the
    sample profile's texts of the same generator use about 500 word types)."""
    import json

    from tools.sample_generator import he2019, yahoo, yelp

    with tarfile.open(ROOT / "sample_data" / "small" / dataset / "datasets.tar.gz") as tar:
        factors = [json.loads(line) for line in tar.extractfile(f"{dataset}_data/{dataset}.train.factors.jsonl")]
    texts = _small_texts(dataset, "train")
    key = "business" if dataset == "yelp" else "topic"
    roots = yelp.YELP_WORDNET_ROOTS if dataset == "yelp" else yahoo.YAHOO_WORDNET_ROOTS
    hand = (
        {b.noun: b.items for b in yelp.YELP_BUSINESSES}
        if dataset == "yelp"
        else {name: topic.nouns for name, topic in yahoo.YAHOO_TOPICS.items()}
    )
    real = {name: set(he2019.real_english(roots[name], hand[name]).sentences) for name in roots}
    everyone = set().union(*real.values())
    texts_with_real, foreign = 0, 0
    for text, factor in zip(texts, factors, strict=True):
        own = [sentence for sentence in real[factor[key]] if sentence in text]
        texts_with_real += bool(own)
        # a sentence of another topic only where it is also one of this topic's
        foreign += any(
            s in text and s not in real[factor[key]] and len(s.split()) > 8 for s in everyone - real[factor[key]]
        )
        if texts_with_real > 300:
            break
    assert texts_with_real > 150 and foreign == 0
    types = {word for text in texts for word in text.split()}
    assert len(types) > 3000
