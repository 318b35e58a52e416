"""Yelp and Yahoo (He et al. 2019's archives) at two scales: how texts are drawn (`He2019Profile`),
the writers' personas, WordNet's real English about a topic, and the archive with its factors."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from functools import cache

from tools import wordnet
from tools.sample_generator.archives import lines_bytes, tar_gz
from tools.sample_generator.common import SPLITS, indefinite_article


@dataclass(frozen=True)
class Persona:
    """A writer's habits, kept through a whole review or question: a sentence-level factor that a
    latent can carry and a decoder cannot guess from the first words (small scale only)."""

    name: str
    prefixes: tuple[str, ...]  # some sentences start with one of these
    sign_offs: tuple[str, ...]  # some texts end with one of these


PERSONAS = (
    Persona(
        "enthusiast",
        ("honestly ,", "oh my gosh ,", "wow ,", "seriously ,"),
        ("love this place !", "ca n't wait to come back !", "you 'll thank me later !"),
    ),
    Persona(
        "analyst",
        ("in terms of value ,", "to be fair ,", "objectively ,", "for context ,"),
        ("my rating reflects value for money .", "i judge on consistency , not hype ."),
    ),
    Persona("casual", ("so", "ok so", "anyway ,", "lol"), ("whatever .", "just saying .", "lol .")),
    Persona(
        "formal",
        ("i must say ,", "in my opinion ,", "frankly ,", "i regret to say ,"),
        ("kind regards .", "thank you for reading .", "respectfully submitted ."),
    ),
)
INTENSIFIERS = ("really", "very", "truly", "quite", "pretty", "so")


@dataclass(frozen=True)
class He2019Profile:
    """How Yelp reviews and Yahoo documents are drawn. `SAMPLE` is the shipped sample data (its
    bytes must not change); `SMALL` is the small scale's: more texts, shorter ones (a 2-core
    budget), and more sentence-level entropy (writer personas, intensifiers), so that a trained
    decoder's perplexity stays well above 1 and a latent has something to carry."""

    lines_per_split: dict[str, int]
    yelp_body_sentences: tuple[int, ...]  # drawn uniformly
    yelp_opening_rate: float
    yahoo_answer_sentences: tuple[int, ...]
    yahoo_max_details: int
    yahoo_min_tokens: int  # answers grow until a line has this many tokens
    personas: bool = False  # each text has a persona (a `persona` factor)
    intensifier_rate: float = 0.0  # P(an adjective gets an intensifier)
    persona_prefix_rate: float = 0.0  # P(a sentence starts with the persona's prefix)
    persona_sign_off_rate: float = 0.0  # P(a text ends with the persona's sign-off)
    wordnet_words: bool = False  # a business's items / a topic's nouns also from WordNet (real English)
    wordnet_sentence_rate: float = 0.0  # P(a body / answer sentence is a WordNet example about the topic)


@dataclass(frozen=True)
class RealEnglish:
    """A topic's real English, from WordNet 3.0 (tools/wordnet.py): its common words (the
    hand-written ones plus WordNet's tagged words under the topic's synsets), and sentences:
    WordNet's example sentences that use one of those words, and one sentence per synset under the
    topic that says what its word means ("a lobscouse is a sailor 's stew of meat and vegetables
    and hardtack ."), all written as He et al.'s data writes text."""

    words: tuple[str, ...]
    sentences: tuple[str, ...]


#: WordNet sentences of at most MIN tokens are phrases ("an eyebrow pencil ."), not sentences; those
#: over MAX (long definitions) would lengthen the texts, and a 2-core budget pays per token.
MIN_REAL_SENTENCE_TOKENS, MAX_REAL_SENTENCE_TOKENS = 5, 20


@cache
def _treebank_tokenizer():
    from nltk.tokenize import TreebankWordTokenizer

    return TreebankWordTokenizer()


def _he2019_sentence(text: str) -> list[str]:
    """`text` as He et al.'s data writes it: lower case, Penn Treebank tokens ("ca n't"), ending in
    a full stop."""
    tokens = _treebank_tokenizer().tokenize(text.lower())
    return tokens + ([] if tokens and tokens[-1] in (".", "?", "!") else ["."])


def _sentence_sized(tokens: list[str]) -> bool:
    return MIN_REAL_SENTENCE_TOKENS < len(tokens) <= MAX_REAL_SENTENCE_TOKENS


@cache
def _he2019_examples() -> tuple[str, ...]:
    """WordNet's example sentences in He et al.'s form, sentence-sized."""
    sentences = (_he2019_sentence(example) for example in wordnet.example_sentences())
    return tuple(" ".join(tokens) for tokens in sentences if _sentence_sized(tokens))


@cache
def real_english(roots: tuple[tuple[str, int], ...], hand_words: tuple[str, ...]) -> RealEnglish:
    """`roots`: (lemma, sense) of the WordNet nouns a topic is about, e.g. (("dish", 2), ("meal", 1))."""
    synsets = [wordnet.synset(lemma, sense) for lemma, sense in roots]
    words = tuple(sorted(set(hand_words) | set(wordnet.words_meaning(synsets, tagged_only=True))))
    single = {word for word in words if " " not in word}
    examples = [sentence for sentence in _he2019_examples() if single & set(sentence.split())]
    meanings = [
        " ".join(tokens)
        for word, definition in wordnet.definitions(synsets)
        if _sentence_sized(tokens := _he2019_sentence(f"{indefinite_article(word)} {word} is {definition}"))
    ]
    return RealEnglish(words, tuple(examples + meanings))


def body_sentence(rng: random.Random, profile: He2019Profile, real: RealEnglish | None) -> str | None:
    """A WordNet example sentence about the text's topic, with P = the profile's rate; else None."""
    if real is None or not profile.wordnet_sentence_rate or rng.random() >= profile.wordnet_sentence_rate:
        return None
    return rng.choice(real.sentences)


def intensified(rng: random.Random, adjective: str, profile: He2019Profile) -> str:
    if profile.intensifier_rate and rng.random() < profile.intensifier_rate:
        return f"{rng.choice(INTENSIFIERS)} {adjective}"
    return adjective


def in_persona(rng: random.Random, sentence: str, persona: Persona | None, profile: He2019Profile) -> str:
    if persona is None or rng.random() >= profile.persona_prefix_rate:
        return sentence
    return f"{rng.choice(persona.prefixes)} {sentence}"


def signed_off(rng: random.Random, persona: Persona | None, profile: He2019Profile) -> list[str]:
    if persona is None or rng.random() >= profile.persona_sign_off_rate:
        return []
    return [rng.choice(persona.sign_offs)]


HE2019_UNK = "_UNK"  # He et al.'s out-of-vocabulary token (Yelp and Yahoo)
UNK_MIN_WORD_LEN = 5


def he2019_archive(dataset: str, lines: dict[str, list[tuple[str, dict]]]) -> bytes:
    """He et al.'s archive, plus one ``{dataset}.{split}.factors.jsonl`` per split: line i holds the
    generator's factors of text line i (the probe's labels; no real download has these members)."""
    files = {}
    for split in SPLITS:
        files[f"{dataset}_data/{dataset}.{split}.txt"] = lines_bytes([text for text, _ in lines[split]])
        files[f"{dataset}_data/{dataset}.{split}.factors.jsonl"] = lines_bytes(
            [json.dumps(factors, sort_keys=True) for _, factors in lines[split]]
        )
    return tar_gz(files)
