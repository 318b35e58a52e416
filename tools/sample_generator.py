"""Deterministic generator of the shipped sample data (``sample_data/``).

The real corpora cannot be shipped (size, licences), but every stage after the download must be
exercised on files with exactly the real layout. So this module writes, for each of the seven
datasets, the same files a real download puts on disk (file names, archive member paths, line
formats, headers, special tokens, separators; see :mod:`della.data.raw`) filled with English
text built from the word lists and templates below.

The text is synthetic but not random noise: each dataset has a *latent structure* that a VAE
can pick up, so the sample-scale experiments measure something (yelp: star label drives the
sentiment words, business type drives the nouns; yahoo: ten answer categories; ptb: news
topics; snli: hypotheses entailed / contradicted / neutral w.r.t. the premise; cnn_dailymail:
highlights restate the article's key facts; writingprompts: the story uses the prompt's
characters and setting; quora: duplicates are paraphrases of one question, non-duplicates share
the topic but differ).

Everything is a pure function of ``seed``: each dataset has its own ``random.Random`` stream,
and archives are byte-identical across runs (tar/gzip mtime 0, sorted members, fixed owner,
zip entries with a fixed date). Compressed bytes also depend on the zlib build; README.md
records the zlib version that made the shipped files.

Usage: ``python -m tools.sample_generator --out sample_data`` or
``generate_all(Path("sample_data"))``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import random
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tools import wordnet

__all__ = ["DATASETS", "generate_all", "main"]

DATASETS = ("yelp", "yahoo", "ptb", "snli", "cnn_dailymail", "writingprompts", "quora")
SPLITS = ("train", "valid", "test")

# --- sizes -------------------------------------------------------------------------------------

#: Lines per split for the one-text-per-line datasets (yelp, yahoo, ptb).
LINES_PER_SPLIT = {"train": 1500, "valid": 200, "test": 200}
#: SNLI captions per file split; each caption gets three hypotheses (one per label).
SNLI_CAPTIONS = {"train": 500, "dev": 67, "test": 67}
CNN_DM_STORIES = {"train": 400, "val": 50, "test": 50}
WP_PAIRS = {"train": 500, "valid": 100, "test": 100}
QUORA_ROWS = 2500

# --- archive determinism -----------------------------------------------------------------------

ARCHIVE_MTIME = 0
ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
ARCHIVE_OWNER = "root"
FILE_MODE = 0o644
DIR_MODE = 0o755
GZIP_LEVEL = 9
ZIP_CREATED_ON_UNIX = 3
MSDOS_DIRECTORY_FLAG = 0x10


def _gzip(data: bytes) -> bytes:
    """gzip without a file name and with mtime 0 in the header, so the bytes never vary."""
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=ARCHIVE_MTIME, compresslevel=GZIP_LEVEL) as gz:
        gz.write(data)
    return out.getvalue()


def _parent_dirs(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts)) if parts[i] not in ("", ".")]


def _tar_gz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz of ``files`` plus their folders, sorted, with fixed owner, modes and mtimes."""
    dirs = {d for name in files for d in _parent_dirs(name)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(dirs | set(files)):  # sorting puts each folder before its content
            info = tarfile.TarInfo(name)
            info.mtime = ARCHIVE_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ARCHIVE_OWNER
            if name in files:
                info.mode, info.size = FILE_MODE, len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
            else:
                info.type, info.mode = tarfile.DIRTYPE, DIR_MODE
                tar.addfile(info)
    return _gzip(buffer.getvalue())


def _zip(entries: Sequence[tuple[str, bytes | None]]) -> bytes:
    """A zip of ``(name, data)`` in the given order; ``data=None`` makes a folder entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = ZIP_CREATED_ON_UNIX
            if data is None:
                info.external_attr = ((stat.S_IFDIR | DIR_MODE) << 16) | MSDOS_DIRECTORY_FLAG
                zf.writestr(info, b"")
            else:
                info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=GZIP_LEVEL)
    return buffer.getvalue()


def _lines_bytes(lines: Sequence[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8")


# --- small text helpers -------------------------------------------------------------------------


def _an(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _unk_rare(text: str, rng: random.Random, rate: float, unk: str, min_len: int) -> str:
    """Replace a fraction of content words by the unknown token, standing in for the rare
    words the real vocabularies cut off."""
    return " ".join(unk if t.isalpha() and len(t) >= min_len and rng.random() < rate else t for t in text.split())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --- Yelp / Yahoo at two scales --------------------------------------------------------------


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
def _real_english(roots: tuple[tuple[str, int], ...], hand_words: tuple[str, ...]) -> RealEnglish:
    """`roots`: (lemma, sense) of the WordNet nouns a topic is about, e.g. (("dish", 2), ("meal", 1))."""
    synsets = [wordnet.synset(lemma, sense) for lemma, sense in roots]
    words = tuple(sorted(set(hand_words) | set(wordnet.words_meaning(synsets, tagged_only=True))))
    single = {word for word in words if " " not in word}
    examples = [sentence for sentence in _he2019_examples() if single & set(sentence.split())]
    meanings = [
        " ".join(tokens)
        for word, definition in wordnet.definitions(synsets)
        if _sentence_sized(tokens := _he2019_sentence(f"{_an(word)} {word} is {definition}"))
    ]
    return RealEnglish(words, tuple(examples + meanings))


def _body_sentence(rng: random.Random, profile: He2019Profile, real: RealEnglish | None) -> str | None:
    """A WordNet example sentence about the text's topic, with P = the profile's rate; else None."""
    if real is None or not profile.wordnet_sentence_rate or rng.random() >= profile.wordnet_sentence_rate:
        return None
    return rng.choice(real.sentences)


def _intensified(rng: random.Random, adjective: str, profile: He2019Profile) -> str:
    if profile.intensifier_rate and rng.random() < profile.intensifier_rate:
        return f"{rng.choice(INTENSIFIERS)} {adjective}"
    return adjective


def _in_persona(rng: random.Random, sentence: str, persona: Persona | None, profile: He2019Profile) -> str:
    if persona is None or rng.random() >= profile.persona_prefix_rate:
        return sentence
    return f"{rng.choice(persona.prefixes)} {sentence}"


def _signed_off(rng: random.Random, persona: Persona | None, profile: He2019Profile) -> list[str]:
    if persona is None or rng.random() >= profile.persona_sign_off_rate:
        return []
    return [rng.choice(persona.sign_offs)]


# =================================================================================================
# Yelp (He et al. 2019): datasets.tar.gz -> yelp_data/yelp.{split}.txt, "label<TAB>text"
# =================================================================================================


@dataclass(frozen=True)
class Business:
    """A kind of business: the topic of a review."""

    noun: str
    visit: str
    items: tuple[str, ...]
    staff: tuple[str, ...]


YELP_BUSINESSES = (
    Business(
        "restaurant",
        "had dinner at",
        (
            "food",
            "steak",
            "pasta",
            "salad",
            "burger",
            "soup",
            "dessert",
            "appetizers",
            "fries",
            "seafood",
            "tacos",
            "sushi",
        ),
        ("waiter", "waitress", "server", "hostess"),
    ),
    Business(
        "coffee shop",
        "stopped by",
        ("latte", "espresso", "cappuccino", "cold brew", "muffin", "croissant", "scone", "iced tea", "hot chocolate"),
        ("barista", "cashier"),
    ),
    Business(
        "hotel",
        "stayed at",
        ("room", "bed", "pool", "lobby", "breakfast buffet", "shower", "view", "parking", "fitness center"),
        ("front desk clerk", "housekeeper", "concierge", "valet"),
    ),
    Business(
        "auto shop",
        "took my car to",
        ("oil change", "brake job", "tire rotation", "estimate", "transmission repair", "inspection", "alignment"),
        ("mechanic", "service advisor", "technician"),
    ),
    Business(
        "salon",
        "got my hair done at",
        ("haircut", "color", "highlights", "blowout", "manicure", "pedicure", "eyebrow wax"),
        ("stylist", "receptionist", "nail tech"),
    ),
    Business(
        "dental office",
        "went for a checkup at",
        ("cleaning", "filling", "x-rays", "crown", "whitening", "root canal"),
        ("hygienist", "dentist", "receptionist", "assistant"),
    ),
    Business(
        "bar",
        "grabbed drinks at",
        ("cocktails", "beer selection", "wings", "nachos", "happy hour specials", "music", "margaritas"),
        ("bartender", "bouncer", "server"),
    ),
    Business(
        "gym",
        "signed up at",
        ("equipment", "classes", "locker room", "membership", "sauna", "spin class", "showers"),
        ("trainer", "front desk clerk", "manager"),
    ),
    Business(
        "bakery",
        "picked up a cake at",
        ("cupcakes", "bread", "birthday cake", "cookies", "cinnamon rolls", "pie"),
        ("baker", "cashier", "owner"),
    ),
    Business(
        "pizza place",
        "ordered from",
        ("pizza", "crust", "garlic knots", "calzone", "wings", "delivery"),
        ("delivery driver", "cashier", "cook"),
    ),
)

#: Sentence polarity from -2 (very negative) to +2 (very positive).
POLARITIES = (-2, -1, 0, 1, 2)
YELP_ADJ = {
    2: ("amazing", "outstanding", "fantastic", "excellent", "incredible", "perfect", "phenomenal", "superb"),
    1: ("good", "nice", "solid", "pleasant", "great", "enjoyable", "reliable", "pretty good"),
    0: ("okay", "fine", "average", "decent", "alright", "standard", "so-so"),
    -1: ("disappointing", "mediocre", "bland", "overpriced", "underwhelming", "sloppy", "forgettable"),
    -2: ("terrible", "horrible", "awful", "atrocious", "unacceptable", "pathetic", "a complete joke"),
}
YELP_STAFF_ADJ = {
    2: ("incredibly friendly", "super helpful", "amazing", "so professional", "wonderful", "extremely attentive"),
    1: ("friendly", "helpful", "polite", "attentive", "professional", "nice"),
    0: ("fine", "okay", "busy", "quiet", "a little slow"),
    -1: ("slow", "disorganized", "unhelpful", "inattentive", "a bit rude"),
    -2: ("extremely rude", "completely clueless", "condescending", "rude and dismissive", "hostile"),
}
YELP_SENTENCES = {
    2: (
        "the {item} {be} absolutely {adj} !",
        "our {staff} was {sadj} and made us feel at home .",
        "best {item} i 've ever had , hands down .",
        "i ca n't say enough good things about this {noun} .",
        "{adj} {item} and even better service .",
        "we will definitely be back !",
        "highly recommend this {noun} to anyone in the area .",
        "five stars , no question .",
        "everything from the {item} to the {item2} was {adj} .",
        "i 've been coming here for {years} years and it never disappoints .",
        "the {staff} remembered my name , which was {an_adj} touch .",
    ),
    1: (
        "the {item} {be} {adj} and the prices are fair .",
        "our {staff} was {sadj} .",
        "i really liked the {item} .",
        "it 's {an_adj} spot if you 're in the neighborhood .",
        "the {item2} {be2} {adj} too .",
        "we 'll probably come back to try the {item2} .",
        "service was quick and the {staff} was {sadj} .",
        "overall {an_adj} experience .",
    ),
    0: (
        "the {item} {be} {adj} , nothing special .",
        "the {staff} was {sadj} .",
        "prices are about what you 'd expect .",
        "the visit was {adj} overall .",
        "parking can be a pain on {day}s .",
        "i might come back , i might not .",
        "the {item2} {be2} {adj} but the {item} {be} a little better .",
        "it 's a typical {noun} , not bad but not great .",
    ),
    -1: (
        "the {item} {be} {adj} for the price .",
        "our {staff} seemed {sadj} and forgot part of our order .",
        "we waited {minutes} minutes for the {item} .",
        "i expected more from this {noun} .",
        "the {item2} {be2} {adj} and a bit overpriced .",
        "probably wo n't be back .",
        "not sure what all the hype is about .",
        "the place could use a good cleaning .",
    ),
    -2: (
        "the {item} {be} {adj} .",
        "our {staff} was {sadj} and did n't even apologize .",
        "worst {noun} i 've ever been to .",
        "we waited over {minutes} minutes and nobody came to help us .",
        "i will never come back here again .",
        "save your money and go somewhere else .",
        "they charged us $ {price} for {adj} {item} .",
        "zero stars if i could .",
        "i asked for the manager and she just laughed .",
        "avoid this {noun} at all costs !",
    ),
}
YELP_OPENINGS = (
    "{company} and i {visit} this {noun} on a {day} night .",
    "i {visit} {name} last {day} .",
    "my friend {name} recommended this {noun} so we gave it a try .",
    "first time here .",
    "i 've been meaning to try this {noun} for a while .",
    "came here for my {occasion} .",
)
YELP_COMPANY = ("my wife", "my husband", "my boyfriend", "my girlfriend", "my friends", "my family", "my coworkers")
YELP_OCCASIONS = ("birthday", "anniversary", "lunch break", "graduation", "first date")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
#: The WordNet 3.0 nouns (lemma, sense) each business is about: the small scale draws its items
#: from their common hyponyms too, and some sentences from their examples (tools/wordnet.py).
YELP_WORDNET_ROOTS = {
    "restaurant": (("dish", 2), ("meal", 1)),
    "coffee shop": (("coffee", 1), ("baked_goods", 1)),
    "hotel": (("hotel", 1), ("room", 1), ("bed", 1)),
    "auto shop": (("car", 1), ("repair", 1)),
    "salon": (("hairdo", 1), ("cosmetic", 1)),
    "dental office": (("tooth", 1), ("dentistry", 1)),
    "bar": (("alcohol", 1), ("cocktail", 2), ("beer", 1)),
    "gym": (("exercise", 1), ("exercise_device", 1)),
    "bakery": (("baked_goods", 1),),
    "pizza place": (("pizza", 1), ("sandwich", 1)),
}
#: P(sentence polarity | star label), over POLARITIES.
YELP_LABEL_POLARITY = {
    0: (0.60, 0.30, 0.08, 0.02, 0.00),
    1: (0.20, 0.50, 0.20, 0.10, 0.00),
    2: (0.05, 0.30, 0.35, 0.25, 0.05),
    3: (0.00, 0.08, 0.22, 0.50, 0.20),
    4: (0.00, 0.02, 0.08, 0.30, 0.60),
}
YELP_BODY_SENTENCES = (2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12)  # drawn uniformly: mostly short reviews
YELP_OPENING_RATE = 0.7
HE2019_UNK = "_UNK"  # He et al.'s out-of-vocabulary token (Yelp and Yahoo)
YELP_UNK_RATE = 0.01
UNK_MIN_WORD_LEN = 5


def _is_plural(noun: str) -> bool:
    last = noun.split()[-1]
    return last.endswith("s") and not last.endswith(("ss", "us"))


def _yelp_review(rng: random.Random, label: int, profile: He2019Profile) -> tuple[str, dict]:
    """One review of star `label` and its generator factors (business type, and the writer's
    persona at the small scale)."""
    business = rng.choice(YELP_BUSINESSES)
    persona = rng.choice(PERSONAS) if profile.personas else None
    real = _real_english(YELP_WORDNET_ROOTS[business.noun], business.items) if profile.wordnet_words else None

    def sentence(template: str, polarity: int) -> str:
        item, item2 = rng.sample(real.words if real else business.items, 2)
        adj = _intensified(rng, rng.choice(YELP_ADJ[polarity]), profile)
        text = template.format(
            item=item,
            item2=item2,
            be="were" if _is_plural(item) else "was",
            be2="were" if _is_plural(item2) else "was",
            adj=adj,
            an_adj=f"{_an(adj)} {adj}",
            staff=rng.choice(business.staff),
            sadj=rng.choice(YELP_STAFF_ADJ[polarity]),
            noun=business.noun,
            visit=business.visit,
            years=rng.randint(2, 15),
            minutes=rng.choice((20, 30, 45, 60, 90)),
            price=rng.randint(12, 80),
            day=rng.choice(DAYS),
            company=rng.choice(YELP_COMPANY),
            name=HE2019_UNK,
            occasion=rng.choice(YELP_OCCASIONS),
        )
        return _in_persona(rng, text, persona, profile)

    sentences = []
    if rng.random() < profile.yelp_opening_rate:
        sentences.append(sentence(rng.choice(YELP_OPENINGS), 0))
    used: set[str] = set()
    for _ in range(rng.choice(profile.yelp_body_sentences)):
        if (aside := _body_sentence(rng, profile, real)) is not None:
            sentences.append(_in_persona(rng, aside, persona, profile))
            continue
        polarity = rng.choices(POLARITIES, weights=YELP_LABEL_POLARITY[label])[0]
        fresh = [t for t in YELP_SENTENCES[polarity] if t not in used]  # a review does not repeat itself
        if fresh:
            template = rng.choice(fresh)
            used.add(template)
            sentences.append(sentence(template, polarity))
    sentences += _signed_off(rng, persona, profile)
    factors = {"business": business.noun, **({"persona": persona.name} if persona else {})}
    return _unk_rare(" ".join(sentences), rng, YELP_UNK_RATE, HE2019_UNK, UNK_MIN_WORD_LEN), factors


#: Draws of a valid or test text before the generator gives up finding one absent from train.
MAX_UNSEEN_DRAWS = 1000


def _unseen_splits(
    lines_per_split: dict[str, int], draw, texts_of, dataset: str, train: list | None = None
) -> dict[str, list]:
    """{split: [draw() ...]}, training split first (or `train`, drawn already), every valid and
    test item redrawn until none of its texts (`texts_of(item)`, as preprocessing keys them) is a
    training text: a generated test sentence a decoder has seen in training would be scored from
    memory (preprocessing reports any overlap in stats.json). A split without such a collision
    takes the same draws as before this rule."""
    splits = {"train": train if train is not None else [draw() for _ in range(lines_per_split["train"])]}
    seen = {text for item in splits["train"] for text in texts_of(item)}
    for split in (name for name in lines_per_split if name != "train"):
        items = []
        for _ in range(lines_per_split[split]):
            for _ in range(MAX_UNSEEN_DRAWS):
                item = draw()
                if seen.isdisjoint(texts_of(item)):
                    break
            else:
                raise RuntimeError(
                    f"{dataset}: no {split} text outside the training split in {MAX_UNSEEN_DRAWS} "
                    f"draws: add templates or words"
                )
            items.append(item)
        splits[split] = items
    return {split: splits[split] for split in lines_per_split}


def _yelp_lines(rng: random.Random, profile: He2019Profile) -> dict[str, list[tuple[str, dict]]]:
    """{split: [(raw line, factors)]}; the star label is the line's own `label<TAB>` field."""
    labels = sorted(YELP_LABEL_POLARITY)

    def draw() -> tuple[str, dict]:
        label = rng.choice(labels)
        text, factors = _yelp_review(rng, label, profile)
        return f"{label}\t{text}", factors

    return _unseen_splits(profile.lines_per_split, draw, lambda item: [item[0].split("\t", 1)[1]], "yelp")


# =================================================================================================
# Yahoo (He et al. 2019): datasets.tar.gz -> yahoo_data/yahoo.{split}.txt, one document per line
# =================================================================================================


@dataclass(frozen=True)
class Topic:
    """A Yahoo Answers category: its nouns, question titles and answer sentences."""

    nouns: tuple[str, ...]
    questions: tuple[str, ...]
    answers: tuple[str, ...]


YAHOO_TOPICS = {
    "society_culture": Topic(
        (
            "tradition",
            "religion",
            "holiday",
            "festival",
            "custom",
            "wedding",
            "language",
            "mythology",
            "ritual",
            "ceremony",
            "etiquette",
            "costume",
        ),
        (
            "why do people celebrate the {n} ?",
            "what is the meaning of the {n} in most cultures ?",
            "is it rude to skip a {n} ?",
            "where does the {n} of giving gifts come from ?",
        ),
        (
            "the {n} goes back hundreds of years .",
            "it depends on the {n2} you grew up with .",
            "many people still follow the {n} today , especially in small towns .",
            "in my family we always had a big {n} every year .",
            "historians think the {n} started as a religious {n2} .",
            "different countries have their own version of the {n} .",
        ),
    ),
    "science_math": Topic(
        (
            "equation",
            "gravity",
            "atom",
            "planet",
            "molecule",
            "theorem",
            "fraction",
            "energy",
            "light",
            "experiment",
            "triangle",
            "cell",
        ),
        (
            "can someone explain how the {n} works ?",
            "what is the difference between the {n} and the {n2} ?",
            "how do scientists measure the {n} ?",
            "how do you solve this {n} problem ?",
        ),
        (
            "the {n} can be explained with basic physics .",
            "first you multiply both sides by {num} and then divide .",
            "the answer is {num} if you round to the nearest whole number .",
            "scientists measure the {n} using very precise instruments .",
            "look up the {n} in any high school textbook .",
            "the {n2} and the {n} are related through energy .",
        ),
    ),
    "health": Topic(
        (
            "headache",
            "diet",
            "vitamin",
            "fever",
            "allergy",
            "exercise",
            "sleep",
            "medicine",
            "back pain",
            "blood pressure",
            "flu",
            "cough",
        ),
        (
            "what is the best way to get rid of a {n} ?",
            "should i see a doctor about my {n} ?",
            "is it normal to have {n} problems every day ?",
            "how much {n} is too much ?",
        ),
        (
            "you should drink plenty of water and get some rest .",
            "see a doctor if the {n} lasts more than {num} days .",
            "a healthy {n2} can help a lot .",
            "i had the same {n} last year and it went away after a week .",
            "try taking {num} mg of ibuprofen twice a day .",
            "do n't take anything without asking your doctor first .",
        ),
    ),
    "education_reference": Topic(
        (
            "essay",
            "college",
            "exam",
            "homework",
            "degree",
            "teacher",
            "grammar",
            "scholarship",
            "dictionary",
            "library",
            "thesis",
            "vocabulary",
        ),
        (
            "how do i write a good {n} ?",
            "what is the best {n} for a beginner ?",
            "how can i prepare for my {n} in {num} weeks ?",
            "does anyone know where to find a free {n} ?",
        ),
        (
            "start with an outline and write a little every day .",
            "your {n2} can help you if you ask after class .",
            "the library has lots of free {n} guides .",
            "make a study schedule and stick to it .",
            "practice with old {n} questions .",
            "most colleges look at your grades and your {n} .",
        ),
    ),
    "computers_internet": Topic(
        (
            "laptop",
            "virus",
            "browser",
            "password",
            "router",
            "email",
            "printer",
            "website",
            "hard drive",
            "keyboard",
            "software",
            "wifi",
        ),
        (
            "why is my {n} so slow ?",
            "how do i reset my {n} ?",
            "what is the best free {n} ?",
            "my {n} keeps crashing , what should i do ?",
        ),
        (
            "try restarting your {n} first .",
            "you probably have a virus , run a full scan .",
            "go to settings and click on `` reset '' .",
            "update the drivers for your {n2} .",
            "it could be a problem with your {n2} , check the cables .",
            "back up your files before you do anything else .",
        ),
    ),
    "sports": Topic(
        (
            "football",
            "basketball",
            "baseball",
            "soccer",
            "hockey",
            "tennis",
            "golf",
            "boxing",
            "racing",
            "wrestling",
            "swimming",
            "cricket",
        ),
        (
            "who is the best {n} player of all time ?",
            "how do i get better at {n} ?",
            "why is {n} so popular in america ?",
            "what time is the {n} game on tonight ?",
        ),
        (
            "practice every day and watch the pros .",
            "my favorite team won the {n} championship in {year} .",
            "the coach needs to play the young guys more .",
            "i think the {n} season starts next month .",
            "it 's all about hard work and good coaching .",
            "{n} is more popular than {n2} where i live .",
        ),
    ),
    "business_finance": Topic(
        (
            "stock",
            "loan",
            "mortgage",
            "credit card",
            "tax return",
            "salary",
            "interest rate",
            "bank account",
            "investment",
            "budget",
            "insurance",
            "retirement plan",
        ),
        (
            "should i pay off my {n} or save money ?",
            "how does a {n} work ?",
            "what is a good {n} for a college student ?",
            "is it a good time to get a {n} ?",
        ),
        (
            "pay off the {n} with the highest interest rate first .",
            "talk to someone at your bank before you decide .",
            "never invest money you ca n't afford to lose .",
            "i put about {num} percent of my paycheck into savings .",
            "a {n} can hurt your credit score if you miss payments .",
            "make a budget and stick to it .",
        ),
    ),
    "entertainment_music": Topic(
        (
            "song",
            "album",
            "movie",
            "band",
            "singer",
            "concert",
            "guitar",
            "show",
            "actor",
            "rapper",
            "video",
            "soundtrack",
        ),
        (
            "what is the name of the {n} that goes `` {lyric} '' ?",
            "who is the best {n} of all time ?",
            "when does the new {n} come out ?",
            "what {n} should i check out if i like rock ?",
        ),
        (
            "i think the {n} came out in {year} .",
            "you should check out their first {n} , it 's way better .",
            "that {n} is on the radio all the time .",
            "the {n2} was amazing live .",
            "look it up on youtube .",
            "i 've seen that {n} like {num} times .",
        ),
    ),
    "family_relationships": Topic(
        (
            "boyfriend",
            "girlfriend",
            "husband",
            "wife",
            "mom",
            "dad",
            "sister",
            "brother",
            "best friend",
            "crush",
            "roommate",
            "neighbor",
        ),
        (
            "how do i tell my {n} that i like someone else ?",
            "my {n} does n't talk to me anymore , what should i do ?",
            "is it normal for a {n} to get jealous ?",
            "how do i get over my {n} ?",
        ),
        (
            "just be honest with your {n} .",
            "give it some time and talk about it calmly .",
            "if your {n} really cares about you , they will listen .",
            "i went through the same thing with my {n2} .",
            "do n't let anyone treat you like that .",
            "maybe you should talk to a counselor .",
        ),
    ),
    "politics_government": Topic(
        (
            "president",
            "election",
            "congress",
            "senator",
            "law",
            "tax",
            "war",
            "vote",
            "constitution",
            "governor",
            "immigration",
            "healthcare",
        ),
        (
            "who do you think will win the {n} ?",
            "why does the {n} matter so much ?",
            "what does the constitution say about {n2} ?",
            "should the {n} change the law on {n2} ?",
        ),
        (
            "it depends on which party controls congress .",
            "the {n} is supposed to protect everyone 's rights .",
            "i think the {n} is doing a terrible job .",
            "read the constitution , it 's all in there .",
            "voter turnout was only {num} percent last time .",
            "both parties are to blame for this .",
        ),
    ),
}
#: The WordNet 3.0 nouns (lemma, sense) each topic is about (as YELP_WORDNET_ROOTS).
YAHOO_WORDNET_ROOTS = {
    "society_culture": (("ceremony", 1), ("holiday", 1), ("religion", 1)),
    "science_math": (("science", 1), ("unit_of_measurement", 1)),
    "health": (("disease", 1), ("symptom", 1), ("medicine", 2)),
    "education_reference": (("school", 1), ("examination", 2), ("student", 1)),
    "computers_internet": (("computer", 1), ("software", 1), ("electronic_equipment", 1)),
    "sports": (("sport", 1),),
    "business_finance": (("finance", 1), ("loan", 1), ("tax", 1), ("money", 1)),
    "entertainment_music": (("musical_instrument", 1), ("music_genre", 1), ("film", 1)),
    "family_relationships": (("relative", 1), ("lover", 1)),
    "politics_government": (("politician", 2), ("election", 1), ("legislature", 1)),
}
YAHOO_DETAILS = (
    "i 've been trying to figure this out for {num} weeks .",
    "please help !",
    "thanks in advance .",
    "i really need an answer asap .",
    "any ideas ?",
    "10 points for the best answer !",
    "( i 'm {age} if that matters )",
    "my teacher said something different .",
)
YAHOO_CLOSERS = (
    "hope this helps .",
    "good luck !",
    "just my opinion .",
    "( sorry for my bad english )",
    "good luck with everything .",
)
YAHOO_LYRICS = ("baby baby baby", "i will always love you", "na na na", "we will rock you", "let it be")
YAHOO_MAX_DETAILS = 2
YAHOO_ANSWER_SENTENCES = (2, 3, 3, 4, 4, 5, 6)
YAHOO_CLOSER_RATE = 0.4
#: Real lines have at least 20 tokens; answers grow until a line has this many.
YAHOO_MIN_TOKENS = 20
YAHOO_UNK_RATE = 0.04


#: The shipped sample data (sample_data/); its bytes are checked against this generator.
SAMPLE = He2019Profile(
    LINES_PER_SPLIT, YELP_BODY_SENTENCES, YELP_OPENING_RATE, YAHOO_ANSWER_SENTENCES, YAHOO_MAX_DETAILS, YAHOO_MIN_TOKENS
)
#: The small scale (sample_data/small/, config/small.yaml): 10,000 / 1,000 / 1,000 texts.
SMALL = He2019Profile(
    {"train": 10000, "valid": 1000, "test": 1000},
    yelp_body_sentences=(1, 2, 2, 3, 3, 4),
    yelp_opening_rate=0.5,
    yahoo_answer_sentences=(1, 2, 2, 3),
    yahoo_max_details=1,
    yahoo_min_tokens=12,
    personas=True,
    intensifier_rate=0.3,
    persona_prefix_rate=0.4,
    persona_sign_off_rate=0.5,
    wordnet_words=True,
    wordnet_sentence_rate=0.3,
)


def _yahoo_document(rng: random.Random, topic_name: str, topic: Topic, profile: He2019Profile) -> tuple[str, dict]:
    persona = rng.choice(PERSONAS) if profile.personas else None
    real = _real_english(YAHOO_WORDNET_ROOTS[topic_name], topic.nouns) if profile.wordnet_words else None

    def fill(template: str) -> str:
        n, n2 = rng.sample(real.words if real else topic.nouns, 2)
        return _in_persona(
            rng,
            template.format(
                n=n,
                n2=n2,
                num=rng.randint(2, 50),
                year=rng.randint(1970, 2007),
                lyric=rng.choice(YAHOO_LYRICS),
                age=rng.randint(13, 60),
            ),
            persona,
            profile,
        )

    parts = [fill(rng.choice(topic.questions))]
    parts += [fill(t) for t in rng.sample(YAHOO_DETAILS, rng.randint(0, profile.yahoo_max_details))]
    answers = rng.sample(topic.answers, min(rng.choice(profile.yahoo_answer_sentences), len(topic.answers)))
    parts += [
        _in_persona(rng, aside, persona, profile) if (aside := _body_sentence(rng, profile, real)) else fill(t)
        for t in answers
    ]
    if rng.random() < YAHOO_CLOSER_RATE:
        parts.append(rng.choice(YAHOO_CLOSERS))
    while len(" ".join(parts).split()) < profile.yahoo_min_tokens:
        parts.append(fill(rng.choice(topic.answers)))
    parts += _signed_off(rng, persona, profile)
    factors = {"topic": topic_name, **({"persona": persona.name} if persona else {})}
    return _unk_rare(" ".join(parts), rng, YAHOO_UNK_RATE, HE2019_UNK, UNK_MIN_WORD_LEN), factors


def _yahoo_lines(rng: random.Random, profile: He2019Profile) -> dict[str, list[tuple[str, dict]]]:
    topics = list(YAHOO_TOPICS.items())
    return _unseen_splits(
        profile.lines_per_split,
        lambda: _yahoo_document(rng, *rng.choice(topics), profile),
        lambda item: [item[0]],
        "yahoo",
    )


def _he2019_archive(dataset: str, lines: dict[str, list[tuple[str, dict]]]) -> bytes:
    """He et al.'s archive, plus one ``{dataset}.{split}.factors.jsonl`` per split: line i holds the
    generator's factors of text line i (the probe's labels; no real download has these members)."""
    files = {}
    for split in SPLITS:
        files[f"{dataset}_data/{dataset}.{split}.txt"] = _lines_bytes([text for text, _ in lines[split]])
        files[f"{dataset}_data/{dataset}.{split}.factors.jsonl"] = _lines_bytes(
            [json.dumps(factors, sort_keys=True) for _, factors in lines[split]]
        )
    return _tar_gz(files)


# =================================================================================================
# PTB (Mikolov): simple-examples.tgz -> ./simple-examples/data/ptb.{split}.txt, " tokens \n"
# =================================================================================================

PTB_TEMPLATES = {
    "markets": (
        "the dow jones industrial average {moved} N points to N in {volume} trading",
        "stock prices {moved} yesterday as investors worried about {worry}",
        "the yield on the benchmark 30-year treasury bond {moved} to N N from N N",
        "bond prices {moved} in {volume} trading as the dollar {moved2} against the yen",
        "the nasdaq composite index {moved} N to N",
        "{firm} 's chief economist said the market could {move} another N N before the end of the year",
    ),
    "earnings": (
        "{company} said its {quarter_adj} net income {moved} N N to $ N million or $ N a share",
        "{company} reported a net loss of $ N million for the {quarter} compared with net income of $ N million a year earlier",
        "revenue {moved} N N to $ N billion from $ N billion",
        "analysts had expected earnings of about $ N a share",
        "{company} shares closed at $ N {updown} N cents in new york stock exchange composite trading",
    ),
    "politics": (
        "the senate voted N to N to approve the {bill}",
        "the house of representatives passed a bill that would {policy}",
        "president bush said he would veto any bill that {policy_s}",
        "mr. {surname} a {party} from {state} said the plan does n't go far enough",
        "congressional leaders are expected to meet with white house officials next week to discuss the {bill}",
    ),
    "law": (
        "a federal judge in {city} ruled that {company} must pay $ N million in damages",
        "the securities and exchange commission filed a civil suit against {company}",
        "lawyers for {company} said they would appeal the decision to the supreme court",
        "the justice department is investigating whether {company} violated federal antitrust law",
    ),
    "industry": (
        "{company} said it plans to cut N jobs as part of a restructuring",
        "{company} agreed to acquire {company2} for $ N a share or about $ N billion",
        "{company} 's board approved a buy-back of up to N million shares",
        "sales of new cars fell N N in {month} the commerce department said",
        "the proposed buy-out of {company} collapsed after banks refused to provide financing",
        "mr. {surname} who is N years old will succeed mr. {surname2} as {position} of {company}",
    ),
}
PTB_SLOTS = {
    "moved": ("rose", "fell", "climbed", "slipped", "tumbled", "surged", "edged up", "declined"),
    "move": ("rise", "fall", "climb", "drop"),
    "volume": ("heavy", "light", "active", "moderate"),
    "worry": ("interest rates", "the dollar", "the budget deficit", "takeover stocks", "junk bonds", "inflation"),
    "firm": ("salomon brothers", "merrill lynch", "goldman sachs", "shearson lehman hutton", "drexel burnham lambert"),
    "company": (
        "ual corp.",
        "general motors corp.",
        "ibm",
        "texaco inc.",
        "american express co.",
        "boeing co.",
        "chrysler corp.",
        "exxon corp.",
        "time warner inc.",
        "digital equipment corp.",
        "ford motor co.",
        "coca-cola co.",
        "philip morris cos.",
        "jaguar plc",
        "british airways plc",
        "capital cities\\/abc inc.",
        "sears roebuck & co.",
    ),
    "quarter": ("third quarter", "second quarter", "fourth quarter", "first quarter"),
    "updown": ("up", "down"),
    "bill": (
        "capital-gains tax cut",
        "deficit-reduction bill",
        "minimum-wage bill",
        "child-care legislation",
        "savings-and-loan bailout",
    ),
    "policy": (
        "raise the minimum wage",
        "cut the capital-gains tax",
        "restrict imports of japanese cars",
        "expand federal aid to schools",
    ),
    "policy_s": ("raises taxes", "restricts abortion", "cuts the defense budget"),
    "surname": (
        "smith",
        "jones",
        "brown",
        "johnson",
        "roberts",
        "baker",
        "phillips",
        "lawson",
        "greenspan",
        "darman",
        "simmons",
        "wolf",
        "nelson",
        "carter",
        "ortega",
    ),
    "party": ("democrat", "republican"),
    "state": ("california", "texas", "new york", "ohio", "michigan", "illinois"),
    "city": ("new york", "chicago", "los angeles", "san francisco", "boston", "washington", "houston"),
    "month": (
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ),
    "position": ("chairman", "president", "chief executive officer", "chief financial officer"),
}
PTB_PREFIXES = ("", "", "", "meanwhile ", "separately ", "in {month} ", "as a result ")
PTB_SUFFIXES = (
    "",
    "",
    "",
    " analysts said",
    " according to people familiar with the matter",
    " the company said",
    " a spokesman said",
    " traders said",
)
#: Rare names (one-off surnames built from syllables) that the vocabulary cut turns into <unk>.
PTB_RARE_NAME_RATE = 0.3
PTB_SYLLABLES = ("kra", "zel", "mot", "vin", "dra", "quo", "lesh", "tov", "rim", "bax", "nor", "ghe")
PTB_COMPANY_SUFFIXES = ("corp.", "inc.", "co.", "industries", "group")
PTB_UNK = "<unk>"
#: A word seen fewer times than this in train is out of the vocabulary (like the 10k cut).
PTB_MIN_COUNT = 2


def _ptb_rare_name(rng: random.Random) -> str:
    return "".join(rng.sample(PTB_SYLLABLES, 3))


def _ptb_sentence(rng: random.Random) -> str:
    template = rng.choice(PTB_TEMPLATES[rng.choice(list(PTB_TEMPLATES))])
    slots = {name: rng.choice(values) for name, values in PTB_SLOTS.items()}
    slots["moved2"] = rng.choice(PTB_SLOTS["moved"])
    slots["company2"] = rng.choice(PTB_SLOTS["company"])
    slots["surname2"] = rng.choice(PTB_SLOTS["surname"])
    slots["quarter_adj"] = slots["quarter"].replace(" ", "-")
    for name in ("surname", "surname2"):
        if rng.random() < PTB_RARE_NAME_RATE:
            slots[name] = _ptb_rare_name(rng)
    for name in ("company", "company2"):
        if rng.random() < PTB_RARE_NAME_RATE:
            slots[name] = f"{_ptb_rare_name(rng)} {rng.choice(PTB_COMPANY_SUFFIXES)}"
    suffix = "" if " said " in template else rng.choice(PTB_SUFFIXES)  # one speaker per sentence
    text = rng.choice(PTB_PREFIXES) + template + suffix
    return text.format(**slots)


def _ptb_lines(rng: random.Random) -> dict[str, list[str]]:
    """Sentences with the vocabulary rules of the real files: rare train words and words unseen
    in train become <unk>, so every valid/test token is in the train vocabulary."""
    train = [_ptb_sentence(rng).split() for _ in range(LINES_PER_SPLIT["train"])]
    counts = Counter(token for tokens in train for token in tokens)
    vocabulary = {token for token, count in counts.items() if count >= PTB_MIN_COUNT}

    def line(tokens: list[str]) -> str:
        return " " + " ".join(t if t in vocabulary else PTB_UNK for t in tokens) + " "

    # a held-out sentence that differs from a training one only in words made <unk> is the same line
    sentences = _unseen_splits(
        LINES_PER_SPLIT, lambda: _ptb_sentence(rng).split(), lambda item: [line(item)], "ptb", train
    )
    return {split: [line(tokens) for tokens in lines] for split, lines in sentences.items()}


# =================================================================================================
# SNLI 1.0: snli_1.0.zip (jsonl + txt per split, README, Mac artefacts)
# =================================================================================================

# A tree is (label, [children]); a preterminal's only child is the word (a str).
Tree = tuple


def _parse_tree(text: str) -> Tree:
    """Read a Penn-style bracketed tree, e.g. ``(NP (DT a) (NN bike))``."""
    tokens = re.findall(r"\(|\)|[^\s()]+", text)
    position = 0

    def read() -> Tree:
        nonlocal position
        assert tokens[position] == "(", text
        label, position = tokens[position + 1], position + 2
        children: list = []
        while tokens[position] != ")":
            if tokens[position] == "(":
                children.append(read())
            else:
                children.append(tokens[position])
                position += 1
        position += 1
        return label, children

    return read()


def _leaves(tree: Tree) -> list[str]:
    return [w for child in tree[1] for w in ([child] if isinstance(child, str) else _leaves(child))]


def _render_parse(tree: Tree) -> str:
    """The ``sentence*_parse`` string: ``(ROOT (S (NP (DT A) (NN man)) ...))``."""
    inner = " ".join(c if isinstance(c, str) else _render_parse(c) for c in tree[1])
    return f"({tree[0]} {inner})"


def _render_binary(tree: Tree | str) -> str:
    """The ``sentence*_binary_parse`` string: unlabelled, right-binarised, unary nodes removed."""
    if isinstance(tree, str):
        return tree
    parts = [_render_binary(c) for c in tree[1]]
    if len(parts) == 1:
        return parts[0]
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = f"( {part} {result} )"
    return result


def _sentence_text(tokens: list[str]) -> str:
    """Untokenised, capitalised surface form of a token list (as SNLI's raw sentences)."""
    text = " ".join(tokens)
    text = re.sub(r" ([.,!?])", r"\1", text).replace(" 's", "'s")
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Subject:
    """Who a premise is about; ``hyper`` is a word the premise entails, ``opposite`` one it rules out."""

    noun: str
    tag: str
    hyper: str
    opposite: str
    kind: str  # human | animal
    number: str = ""  # a numeral for plural subjects


@dataclass(frozen=True)
class Action:
    """What the subject does (a VP bracket), where (PP bracket, setting), and how a hypothesis can
    generalise it (entailed VPs) or add to it (neutral PPs)."""

    vp: str
    places: tuple[tuple[str, str], ...]
    general: tuple[str, ...]
    neutral: tuple[str, ...]
    kinds: tuple[str, ...] = ("human",)


SNLI_SUBJECTS = (
    Subject("man", "NN", "person", "woman", "human"),
    Subject("woman", "NN", "person", "man", "human"),
    Subject("boy", "NN", "child", "girl", "human"),
    Subject("girl", "NN", "child", "boy", "human"),
    Subject("men", "NNS", "people", "women", "human", "Two"),
    Subject("women", "NNS", "people", "men", "human", "Two"),
    Subject("children", "NNS", "kids", "adults", "human", "Three"),
    Subject("dog", "NN", "animal", "cat", "animal"),
    Subject("dogs", "NNS", "animals", "cats", "animal", "Two"),
)
SNLI_ACTIONS = (
    Action(
        "(VP (VBG riding) (NP (DT a) (NN bike)))",
        (
            ("(PP (IN down) (NP (DT a) (JJ busy) (NN street)))", "outside"),
            ("(PP (IN along) (NP (DT a) (NN dirt) (NN path)))", "outside"),
        ),
        ("(VP (VBG riding) (NP (DT a) (NN bicycle)))", "(VP (VBG cycling))"),
        ("(PP (TO to) (NP (NN work)))", "(PP (IN in) (NP (DT a) (NN race)))"),
    ),
    Action(
        "(VP (VBG playing) (NP (DT a) (NN guitar)))",
        (("(PP (IN on) (NP (DT a) (NN stage)))", "inside"), ("(PP (IN on) (NP (DT the) (NN sidewalk)))", "outside")),
        ("(VP (VBG playing) (NP (NN music)))", "(VP (VBG playing) (NP (DT an) (NN instrument)))"),
        ("(PP (IN for) (NP (NNS tips)))", "(PP (IN at) (NP (DT a) (NN wedding)))"),
    ),
    Action(
        "(VP (VBG cooking) (NP (NN dinner)))",
        (
            ("(PP (IN in) (NP (DT a) (JJ small) (NN kitchen)))", "inside"),
            ("(PP (IN over) (NP (DT a) (NN campfire)))", "outside"),
        ),
        ("(VP (VBG making) (NP (NN food)))", "(VP (VBG preparing) (NP (DT a) (NN meal)))"),
        ("(PP (IN for) (NP (DT a) (JJ large) (NN family)))", "(PP (IN for) (NP (DT a) (NN party)))"),
    ),
    Action(
        "(VP (VBG reading) (NP (DT a) (NN book)))",
        (
            ("(PP (IN on) (NP (DT a) (NN park) (NN bench)))", "outside"),
            ("(PP (IN in) (NP (DT a) (NN library)))", "inside"),
        ),
        ("(VP (VBG reading))", "(VP (VBG looking) (PP (IN at) (NP (DT a) (NN book))))"),
        ("(PP (IN for) (NP (NN school)))", "(PP (IN about) (NP (NN history)))"),
    ),
    Action(
        "(VP (VBG climbing) (NP (DT a) (JJ steep) (NN rock)))",
        (
            ("(PP (IN near) (NP (DT the) (NN ocean)))", "outside"),
            ("(PP (IN in) (NP (DT the) (NNS mountains)))", "outside"),
        ),
        ("(VP (VBG climbing))", "(VP (VBG scaling) (NP (DT a) (NN rock)))"),
        ("(PP (IN for) (NP (DT the) (JJ first) (NN time)))", "(PP (IN without) (NP (DT a) (NN rope)))"),
    ),
    Action(
        "(VP (VBG swimming))",
        (
            ("(PP (IN in) (NP (DT a) (NN lake)))", "outside"),
            ("(PP (IN in) (NP (DT an) (JJ indoor) (NN pool)))", "inside"),
        ),
        ("(VP (VBG getting) (ADJP (JJ wet)))", "(VP (VBG moving) (PP (IN through) (NP (NN water))))"),
        ("(PP (IN in) (NP (DT a) (NN competition)))", "(PP (IN after) (NP (DT a) (JJ long) (NN day)))"),
        ("human", "animal"),
    ),
    Action(
        "(VP (VBG catching) (NP (DT a) (NN frisbee)))",
        (("(PP (IN in) (NP (DT the) (NN park)))", "outside"), ("(PP (IN on) (NP (DT the) (NN beach)))", "outside")),
        ("(VP (VBG playing))", "(VP (VBG catching) (NP (NN something)))"),
        ("(PP (IN for) (NP (DT a) (NN treat)))", "(PP (IN with) (NP (DT a) (NN friend)))"),
        ("human", "animal"),
    ),
    Action(
        "(VP (VBG running))",
        (
            ("(PP (IN through) (NP (DT the) (NN snow)))", "outside"),
            ("(PP (IN across) (NP (DT a) (JJ grassy) (NN field)))", "outside"),
        ),
        ("(VP (VBG moving) (ADVP (RB quickly)))", "(VP (VBG running))"),
        ("(PP (IN toward) (NP (NN home)))", "(PP (IN after) (NP (DT a) (NN ball)))"),
        ("human", "animal"),
    ),
    Action(
        "(VP (VBG sleeping))",
        (("(PP (IN on) (NP (DT a) (NN couch)))", "inside"), ("(PP (IN in) (NP (DT a) (JJ warm) (NN bed)))", "inside")),
        ("(VP (VBG resting))", "(VP (VBG lying) (ADVP (RB down)))"),
        ("(PP (IN after) (NP (DT a) (JJ long) (NN walk)))", "(PP (IN during) (NP (DT the) (NN afternoon)))"),
        ("human", "animal"),
    ),
    Action(
        "(VP (VBG selling) (NP (NN fruit)))",
        (
            ("(PP (IN at) (NP (DT an) (JJ outdoor) (NN market)))", "outside"),
            ("(PP (IN on) (NP (DT a) (NN street) (NN corner)))", "outside"),
        ),
        ("(VP (VBG selling) (NP (NN food)))", "(VP (VBG working))"),
        ("(PP (TO to) (NP (NNS tourists)))", "(PP (IN for) (NP (DT a) (JJ low) (NN price)))"),
    ),
    Action(
        "(VP (VBG painting) (NP (DT a) (NN picture)))",
        (
            ("(PP (IN in) (NP (DT a) (JJ bright) (NN studio)))", "inside"),
            ("(PP (IN by) (NP (DT the) (NN river)))", "outside"),
        ),
        ("(VP (VBG making) (NP (NN art)))", "(VP (VBG painting))"),
        ("(PP (IN for) (NP (DT a) (NN gallery)))", "(PP (IN of) (NP (DT a) (NN sunset)))"),
    ),
    Action(
        "(VP (VBG surfing) (NP (DT a) (JJ big) (NN wave)))",
        (("(PP (IN in) (NP (DT the) (NN ocean)))", "outside"),),
        ("(VP (VBG surfing))", "(VP (VBG riding) (NP (DT a) (NN wave)))"),
        ("(PP (IN in) (NP (DT a) (NN competition)))", "(PP (IN at) (NP (NN sunset)))"),
    ),
    Action(
        "(VP (VBG typing) (PP (IN on) (NP (DT a) (NN laptop))))",
        (
            ("(PP (IN in) (NP (DT a) (JJ crowded) (NN coffee) (NN shop)))", "inside"),
            ("(PP (IN at) (NP (DT a) (NN desk)))", "inside"),
        ),
        ("(VP (VBG using) (NP (DT a) (NN computer)))", "(VP (VBG working))"),
        ("(PP (IN for) (NP (DT a) (NN deadline)))", "(PP (IN about) (NP (NN travel)))"),
    ),
)
# Premise adjectives; none of them entails or contradicts a neutral state (happy, tired, ...).
SNLI_ADJECTIVES = {
    "human": ("young", "old", "tall", "blond", "barefoot"),
    "animal": ("brown", "black", "small", "spotted"),
}
SNLI_COLORS = ("red", "blue", "green", "black", "white", "yellow")
SNLI_CLOTHES = ("shirt", "jacket", "hat", "helmet", "sweater")
SNLI_SETTING_ADVERB = {"outside": ("outside", "outdoors"), "inside": ("inside", "indoors")}
SNLI_NEUTRAL_STATES = (
    "(ADJP (JJ happy))",
    "(ADJP (JJ tired))",
    "(ADJP (JJ excited))",
    "(VP (VBG waiting) (PP (IN for) (NP (DT a) (NN friend))))",
)
SNLI_ADJECTIVE_RATE = 0.4
SNLI_CLOTHING_RATE = 0.3
SNLI_DEFINITE_RATE = 0.5  # "The person ..." rather than "A person ..."
SNLI_NEUTRAL_PP_RATE = 0.6  # neutral by an added purpose/circumstance, else by a state ("is happy")
SNLI_NO_PERIOD_RATE = 0.1  # some real hypotheses lack the final period
#: Share of train pairs that went through validation (5 annotator labels); dev/test all have 5.
SNLI_VALIDATED_RATE = 0.1
#: Share of validated pairs whose five labels have no 3-of-5 majority (gold label "-").
SNLI_NO_MAJORITY_RATE = 0.06
SNLI_LABELS = ("entailment", "neutral", "contradiction")
SNLI_LABEL_LETTER = {"entailment": "e", "neutral": "n", "contradiction": "c"}
SNLI_PAIR_ORDER = ("neutral", "contradiction", "entailment")  # the order of the real files
SNLI_VALIDATORS = 4
SNLI_MIN_AGREEING_VALIDATORS = 2  # with the author's label that makes the 3-of-5 majority


def _snli_np(determiner: str, words: list[tuple[str, str]]) -> Tree:
    """An NP from a determiner (``a`` picks a/an) and (tag, word) pairs."""
    if determiner == "a":
        determiner = _an(words[0][1])
    leaves = ([("DT", [determiner])] if determiner else []) + [(tag, [word]) for tag, word in words]
    return "NP", leaves


def _snli_subject_np(
    rng: random.Random, subject: Subject, definite: bool, noun: str | None = None, describe: bool = False
) -> Tree:
    noun = noun or subject.noun
    words = []
    if describe and rng.random() < SNLI_ADJECTIVE_RATE:
        words.append(("JJ", rng.choice(SNLI_ADJECTIVES[subject.kind])))
    words.append((subject.tag, noun))
    if subject.number and not definite:
        return "NP", [("CD", [subject.number])] + [(t, [w]) for t, w in words]
    np = _snli_np("The" if definite else "a", words)
    if describe and subject.kind == "human" and rng.random() < SNLI_CLOTHING_RATE:
        clothing = _snli_np("a", [("JJ", rng.choice(SNLI_COLORS)), ("NN", rng.choice(SNLI_CLOTHES))])
        np = ("NP", [np, ("PP", [("IN", ["in"]), clothing])])
    return np


def _snli_sentence(subject_np: Tree, plural: bool, predicate: Tree, period: bool = True) -> Tree:
    """``(ROOT (S NP (VP (VBZ is) predicate) (. .)))``."""
    be = ("VBP", ["are"]) if plural else ("VBZ", ["is"])
    children = [subject_np, ("VP", [be, predicate])] + ([(".", ["."])] if period else [])
    return "ROOT", [("S", children)]


def _with_pp(vp: Tree, pp: str) -> Tree:
    return vp[0], vp[1] + [_parse_tree(pp)]


def _snli_hypothesis(rng: random.Random, label: str, subject: Subject, action: Action, setting: str) -> Tree:
    """A hypothesis with the given relation to the premise ``subject is action place``."""
    plural = bool(subject.number)
    same = _snli_subject_np(rng, subject, definite=True)
    hyper = _snli_subject_np(
        rng, subject, definite=not plural and rng.random() < SNLI_DEFINITE_RATE, noun=subject.hyper
    )
    if label == "entailment":
        strategy = rng.randrange(3)
        if strategy == 0:
            return _snli_sentence(hyper, plural, _parse_tree(rng.choice(action.general)))
        if strategy == 1:
            adverb = rng.choice(SNLI_SETTING_ADVERB[setting])
            return _snli_sentence(same, plural, ("ADVP", [("RB", [adverb])]))
        return _snli_sentence(hyper, plural, _parse_tree(action.vp))
    if label == "contradiction":
        strategy = rng.randrange(3)
        if strategy == 0:
            others = [
                a
                for a in SNLI_ACTIONS
                if a is not action and subject.kind in a.kinds and any(s != setting for _, s in a.places)
            ]
            other = rng.choice(others)
            place = rng.choice([p for p, s in other.places if s != setting])
            return _snli_sentence(same, plural, _with_pp(_parse_tree(other.vp), place))
        if strategy == 1:
            opposite = _snli_subject_np(rng, subject, definite=False, noun=subject.opposite)
            return _snli_sentence(opposite, plural, _parse_tree(action.vp))
        other_setting = "inside" if setting == "outside" else "outside"
        adverb = rng.choice(SNLI_SETTING_ADVERB[other_setting])
        return _snli_sentence(same, plural, ("ADVP", [("RB", [adverb])]))
    if rng.random() < SNLI_NEUTRAL_PP_RATE:
        return _snli_sentence(same, plural, _with_pp(_parse_tree(action.vp), rng.choice(action.neutral)))
    return _snli_sentence(same, plural, _parse_tree(rng.choice(SNLI_NEUTRAL_STATES)))


def _snli_annotations(rng: random.Random, label: str, validated: bool) -> list[str]:
    """Annotator labels: the author's label first, then (if validated) four validators."""
    if not validated:
        return [label]
    others = [lab for lab in SNLI_LABELS if lab != label]
    if rng.random() < SNLI_NO_MAJORITY_RATE:
        first, second = rng.sample(others, 2)
        return [label, first, label, first, second]  # 2-2-1: no majority
    agreeing = rng.randint(SNLI_MIN_AGREEING_VALIDATORS, SNLI_VALIDATORS)
    validators = [label] * agreeing + [rng.choice(others) for _ in range(SNLI_VALIDATORS - agreeing)]
    rng.shuffle(validators)
    return [label] + validators


def _gold_label(labels: list[str]) -> str:
    label, count = Counter(labels).most_common(1)[0]
    return label if count * 2 > len(labels) or len(labels) == 1 else "-"


def _snli_caption(rng: random.Random, all_validated: bool) -> list[dict]:
    """One caption (the premise) and its three pairs, one hypothesis per label."""
    records = []
    subject = rng.choice(SNLI_SUBJECTS)
    action = rng.choice([a for a in SNLI_ACTIONS if subject.kind in a.kinds])
    place, setting = rng.choice(action.places)
    premise = _snli_sentence(
        _snli_subject_np(rng, subject, definite=False, describe=True),
        bool(subject.number),
        _with_pp(_parse_tree(action.vp), place),
    )
    caption_id = f"{rng.randrange(10**8, 10**10)}.jpg#{rng.randrange(5)}"
    for label in SNLI_PAIR_ORDER:
        hypothesis = _snli_hypothesis(rng, label, subject, action, setting)
        if rng.random() < SNLI_NO_PERIOD_RATE:  # drop the final "." leaf
            s = hypothesis[1][0]
            hypothesis = ("ROOT", [(s[0], [c for c in s[1] if c[0] != "."])])
        annotations = _snli_annotations(rng, label, all_validated or rng.random() < SNLI_VALIDATED_RATE)
        records.append(
            {
                "annotator_labels": annotations,
                "captionID": caption_id,
                "gold_label": _gold_label(annotations),
                "pairID": f"{caption_id}r1{SNLI_LABEL_LETTER[label]}",
                "sentence1": _sentence_text(_leaves(premise)),
                "sentence1_binary_parse": _render_binary(premise),
                "sentence1_parse": _render_parse(premise),
                "sentence2": _sentence_text(_leaves(hypothesis)),
                "sentence2_binary_parse": _render_binary(hypothesis),
                "sentence2_parse": _render_parse(hypothesis),
            }
        )
    return records


def _snli_splits(rng: random.Random) -> dict[str, list[dict]]:
    """The file splits' records, training captions first; a dev or test caption is redrawn while
    its premise or a hypothesis is a training sentence, as preprocessing tokenises them."""
    from della.data.preprocess import snli_tokenize

    sizes = {"train": SNLI_CAPTIONS["train"], "dev": SNLI_CAPTIONS["dev"], "test": SNLI_CAPTIONS["test"]}
    captions = _unseen_splits(
        sizes,
        lambda: _snli_caption(rng, all_validated=True),
        lambda records: [snli_tokenize(r[k]) for r in records for k in ("sentence1", "sentence2")],
        "snli",
        train=[_snli_caption(rng, all_validated=False) for _ in range(sizes["train"])],
    )
    return {split: [record for caption in found for record in caption] for split, found in captions.items()}


SNLI_TXT_COLUMNS = (
    "gold_label",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "captionID",
    "pairID",
    "label1",
    "label2",
    "label3",
    "label4",
    "label5",
)
SNLI_MAX_LABELS = 5
SNLI_README = """\
SNLI 1.0 -- GENERATED SAMPLE (della-bench)

This is not the Stanford Natural Language Inference corpus. It is a small synthetic stand-in
written by tools.sample_generator with the same archive layout and file formats as
snli_1.0.zip: snli_1.0_{train,dev,test}.jsonl and .txt, one premise/hypothesis pair per line,
gold_label in {entailment, neutral, contradiction, -} where "-" means that the five annotator
labels had no majority. The real corpus and its README are at https://nlp.stanford.edu/projects/snli/.
"""
#: An AppleDouble header (magic, version, filler, 0 entries): what Mac zips store in __MACOSX/.
APPLE_DOUBLE = struct.pack(">II16sH", 0x00051607, 0x00020000, b"Mac OS X        ", 0)


def _snli_txt(records: list[dict]) -> bytes:
    lines = ["\t".join(SNLI_TXT_COLUMNS)]
    for record in records:
        labels = record["annotator_labels"] + [""] * (SNLI_MAX_LABELS - len(record["annotator_labels"]))
        lines.append("\t".join([record[c] for c in SNLI_TXT_COLUMNS[:9]] + labels))
    return _lines_bytes(lines)


def _snli_archive(rng: random.Random) -> tuple[bytes, dict[str, int]]:
    entries: list[tuple[str, bytes | None]] = [
        ("snli_1.0/", None),
        ("snli_1.0/Icon\r", b""),
        ("snli_1.0/README.txt", SNLI_README.encode("utf-8")),
    ]
    counts = {}
    splits = _snli_splits(rng)
    for split in ("dev", "test", "train"):
        records = splits[split]
        counts[split] = len(records)
        counts[f"{split}_no_gold"] = sum(r["gold_label"] == "-" for r in records)
        entries.append((f"snli_1.0/snli_1.0_{split}.jsonl", _lines_bytes([json.dumps(r) for r in records])))
        entries.append((f"snli_1.0/snli_1.0_{split}.txt", _snli_txt(records)))
    entries += [("__MACOSX/", None), ("__MACOSX/snli_1.0/", None), ("__MACOSX/snli_1.0/._Icon\r", APPLE_DOUBLE)]
    return _zip(entries), counts


# =================================================================================================
# CNN / DailyMail: {cnn,dailymail}_stories.tgz -> {cnn,dailymail}/stories/<sha1(url)>.story
# =================================================================================================

FIRST_NAMES = (
    "James",
    "Maria",
    "David",
    "Sarah",
    "Michael",
    "Laura",
    "Ahmed",
    "Elena",
    "John",
    "Priya",
    "Carlos",
    "Emma",
    "Daniel",
    "Fatima",
    "Peter",
    "Anna",
    "Thomas",
    "Grace",
    "Luis",
    "Helen",
)
LAST_NAMES = (
    "Smith",
    "Garcia",
    "Johnson",
    "Khan",
    "Brown",
    "Rossi",
    "Miller",
    "Novak",
    "Wilson",
    "Silva",
    "Taylor",
    "Schmidt",
    "Davies",
    "Okafor",
    "Martin",
    "Kowalski",
    "Evans",
    "Tanaka",
    "Walker",
    "Moreau",
)
CITIES = (
    ("Manchester", "England"),
    ("Lyon", "France"),
    ("Houston", "Texas"),
    ("Naples", "Italy"),
    ("Mumbai", "India"),
    ("Lagos", "Nigeria"),
    ("Osaka", "Japan"),
    ("Denver", "Colorado"),
    ("Krakow", "Poland"),
    ("Recife", "Brazil"),
    ("Cardiff", "Wales"),
    ("Seville", "Spain"),
    ("Perth", "Australia"),
    ("Toronto", "Canada"),
    ("Manila", "the Philippines"),
    ("Hamburg", "Germany"),
)
CNN_DM_SLOTS = {
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "month": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "building": ("apartment block", "textile factory", "nightclub", "hotel", "shopping center", "hospital"),
    "org": ("fire department", "national police", "interior ministry", "emergency services", "coast guard"),
    "title": ("Mayor", "Fire Chief", "Governor", "Police Chief"),
    "crime": (
        "running a fake charity",
        "armed robbery",
        "defrauding elderly investors",
        "setting fire to a warehouse",
        "smuggling stolen cars",
    ),
    "crime_detail": (
        "kept the money in secret bank accounts",
        "used a stolen car for the getaway",
        "targeted people who lived alone",
        "tried to destroy the evidence",
    ),
    "team": ("Rovers", "United", "Athletic", "City", "Wanderers", "Rangers", "Olympic", "Albion"),
    "competition": ("national cup", "league cup", "Champions Cup", "regional championship"),
    "company": (
        "Northwind Motors",
        "Globex",
        "Vantage Steel",
        "Helix Pharma",
        "Bluebird Airlines",
        "Orion Telecom",
        "Redwood Foods",
        "Atlas Shipping",
    ),
    "storm": ("Delia", "Marco", "Ophelia", "Bruno", "Katla", "Ines"),
    "university": (
        "the University of Leeds",
        "Stanford University",
        "the University of Tokyo",
        "McGill University",
        "the Karolinska Institute",
    ),
    "finding": (
        "people who walk every day live longer",
        "coffee may protect the liver",
        "children who read before bed sleep better",
        "dogs can recognize their owners' voices",
        "a short nap can improve memory",
    ),
    "subject_kind": ("volunteers", "patients", "families", "adults"),
    "funder": ("national science foundation", "Wellcome Trust", "health ministry"),
}


@dataclass(frozen=True)
class NewsEvent:
    """One kind of news story. Each fact is an article sentence paired with the highlight that
    restates it, so a story's highlights only ever restate facts its article contains."""

    lead: str
    lead_highlight: str
    facts: tuple[tuple[str, str], ...]
    extras: tuple[str, ...]
    quotes: tuple[str, ...]


CNN_DM_EVENTS = (
    NewsEvent(
        "At least {count} people were killed when a fire swept through {a_building} in {city}, {country}, on {day}, officials said.",
        "At least {count} people killed in {building} fire in {city}",
        (
            (
                "Firefighters fought the blaze for {hours} hours before bringing it under control.",
                "Fire burned for {hours} hours before it was brought under control",
            ),
            (
                "Another {count2} people were taken to hospital, some with serious burns.",
                "{count2} others taken to hospital",
            ),
            (
                "The cause of the fire is under investigation, according to the {org}.",
                "The {org} is investigating the cause of the blaze",
            ),
            ("It is the deadliest fire in {city} since {year}.", "Deadliest fire in {city} since {year}"),
        ),
        (
            "Witnesses said the flames spread quickly through the upper floors of the {building}.",
            "{official} said emergency crews arrived within minutes of the first call.",
        ),
        (
            '"We heard screaming and then the smoke was everywhere," said {person}, {age}, who lives nearby.',
            '"This is a tragedy for the whole city," {official} told reporters.',
        ),
    ),
    NewsEvent(
        "{person}, {age}, was sentenced to {years} years in prison on {day} for {crime} in {city}.",
        "{person}, {age}, sentenced to {years} years in prison for {crime}",
        (
            (
                "A jury found {surname} guilty after a trial that lasted {weeks} weeks.",
                "The trial lasted {weeks} weeks",
            ),
            ("{surname}'s lawyer said his client would appeal the verdict.", "His lawyer says he will appeal"),
            (
                "{surname} was arrested in {month} {year} after a tip from a neighbor.",
                "{surname} was arrested in {month} {year}",
            ),
            ("Prosecutors said {surname} had {crime_detail}.", "Prosecutors say he {crime_detail}"),
        ),
        (
            "The judge said it was one of the worst cases she had seen on the bench.",
            "Relatives of the victims wept as the sentence was read out.",
        ),
        (
            '"Justice has been done today," said prosecutor {person2}.',
            '"He showed no remorse at all," one relative said.',
        ),
    ),
    NewsEvent(
        "{team1} beat {team2} {score1}-{score2} on {day} to reach the final of the {competition}.",
        "{team1} beat {team2} {score1}-{score2} to reach the {competition} final",
        (
            (
                "{person} scored twice for {team1}, including a late winner in the {minute}th minute.",
                "{person} scores twice for the winners",
            ),
            ("A crowd of {crowd} watched the match in {city}.", "{crowd} fans watched the match in {city}"),
            (
                "{team1} have now won {wins} of their last {games} games.",
                "{team1} have won {wins} of their last {games} games",
            ),
            (
                "The win means {team1} will play in their first {competition} final since {year}.",
                "{team1} in first {competition} final since {year}",
            ),
        ),
        ("{team2} had led at half-time but could not hold on.", "The final will be played next month."),
        (
            '"I am so proud of these players," {team1} coach {person2} said.',
            '"We made too many mistakes and we paid for it," said the {team2} captain.',
        ),
    ),
    NewsEvent(
        "{company} said on {day} it would cut {jobs} jobs after profits fell {percent}% in the last quarter.",
        "{company} to cut {jobs} jobs as profits fall {percent}%",
        (
            ("Shares in {company} fell {percent2}% in early trading.", "Shares fell {percent2}% in early trading"),
            (
                "Chief executive {person} blamed weak demand in {country} and rising costs.",
                "CEO {person} blames weak demand in {country}",
            ),
            (
                "The company, based in {city}, employs about {employees} people worldwide.",
                "The company employs about {employees} people",
            ),
            (
                "{company} reported revenue of ${amount} billion for the quarter.",
                "Quarterly revenue was ${amount} billion",
            ),
        ),
        ("Analysts had expected a smaller drop in profits.", "Unions said they would fight the cuts."),
        (
            '"These are difficult but necessary decisions," {person} said in a statement.',
            '"Workers are paying for management\'s mistakes," said union leader {person2}.',
        ),
    ),
    NewsEvent(
        "Storm {storm} battered the coast of {country} on {day}, killing at least {count} people and leaving thousands without power.",
        "Storm {storm} kills at least {count} in {country}",
        (
            ("Winds of up to {wind} mph tore roofs off houses in {city}.", "Winds of up to {wind} mph hit {city}"),
            (
                "More than {evacuated} people were evacuated from low-lying areas.",
                "More than {evacuated} people evacuated",
            ),
            ("Rescue teams were still searching for {count2} missing fishermen.", "{count2} fishermen still missing"),
            ("It is the strongest storm to hit the region since {year}.", "Strongest storm in the region since {year}"),
        ),
        ("Forecasters said the storm would weaken as it moved inland.", "Schools and airports in {city} were closed."),
        (
            '"The water came up to our windows in minutes," said {person}, a resident of {city}.',
            '"Our priority is to save lives," {official} said.',
        ),
    ),
    NewsEvent(
        "A {age}-year-old hiker missing for {days} days in the hills near {city} has been found alive, rescuers said on {day}.",
        "Hiker, {age}, found alive after {days} days missing near {city}",
        (
            (
                "{surname} survived by drinking stream water and eating berries.",
                "{surname} survived on stream water and berries",
            ),
            (
                "More than {searchers} volunteers joined the search.",
                "More than {searchers} volunteers joined the search",
            ),
            (
                "A helicopter crew spotted {surname} waving a jacket near a river.",
                "Helicopter crew spotted {surname} near a river",
            ),
            (
                "{person} had set out alone on a day hike and failed to return home.",
                "{person} had gone on a day hike alone",
            ),
        ),
        (
            "Doctors said the hiker was dehydrated but in stable condition.",
            "The {org} said bad weather had made the search difficult.",
        ),
        (
            "\"It's a miracle, we had almost given up hope,\" said {surname}'s sister, {person2}.",
            '"We never stop looking," a spokesman for the {org} said.',
        ),
    ),
    NewsEvent(
        "Scientists at {university} say they have found that {finding}, in a study published on {day}.",
        "Study by {university} finds {finding}",
        (
            (
                "The team studied {subjects} {subject_kind} over {years} years.",
                "Researchers followed {subjects} {subject_kind} for {years} years",
            ),
            (
                "The researchers now plan a larger study involving {subjects2} people.",
                "A larger study with {subjects2} people is planned",
            ),
            ("The study was funded by the {funder}.", "The study was funded by the {funder}"),
            (
                "Lead author {person} said the results surprised the researchers.",
                "Lead author {person} says the results were a surprise",
            ),
        ),
        (
            "Other experts said more research was needed.",
            "The findings could change how doctors treat patients in {country}.",
        ),
        (
            '"We did not expect such a clear result," {person} said.',
            '"It is an important step, but only a first step," said {person2}, who was not involved in the study.',
        ),
    ),
    NewsEvent(
        "{person} has won the presidential election in {country} with {percent_win}% of the vote, according to official results released on {day}.",
        "{person} wins {country} presidential election with {percent_win}% of the vote",
        (
            (
                "Turnout was {turnout}%, the highest in {years} years.",
                "Turnout was {turnout}%, the highest in {years} years",
            ),
            (
                "{surname}'s main rival, {person2}, won {percent_lose}% and conceded defeat.",
                "Rival {person2} wins {percent_lose}% and concedes defeat",
            ),
            ("Thousands of supporters celebrated in the streets of {city}.", "Supporters celebrate in {city}"),
            (
                "{surname} campaigned on promises to create jobs and fight corruption.",
                "{surname} promised jobs and a fight against corruption",
            ),
        ),
        ("International observers said the vote was largely fair.", "The new president will be sworn in next month."),
        (
            '"This victory belongs to all the people of {country}," {surname} told supporters.',
            '"We accept the result," {person2} said.',
        ),
    ),
)
CNN_DM_FILLERS = (
    "{city} is home to about {population} people.",
    "The {org} did not respond to a request for comment.",
    "Local media reported the news on {day} evening.",
    "More details are expected later this week.",
    "The story was first reported by a local newspaper in {city}.",
)
CNN_SHARE = 0.3
CNN_DATELINE_RATE = 0.5  # "CITY, Country (CNN) -- ..." rather than "(CNN) -- ..."
CNN_DM_MIN_FACTS = 2  # facts per article, and facts restated by highlights
CNN_DM_PUBLISH_YEARS = (2007, 2015)


def _cnn_dm_facts(rng: random.Random) -> dict:
    """Every slot a story template may use, drawn once per story so article and highlights agree."""
    city, country = rng.choice(CITIES)
    slots = {name: rng.choice(values) for name, values in CNN_DM_SLOTS.items()}
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    team1, team2 = rng.sample(CNN_DM_SLOTS["team"], 2)
    score2 = rng.randint(0, 2)
    percent_win = rng.randint(45, 70)
    wins = rng.randint(3, 12)
    subjects = rng.randint(200, 9000)
    slots.update(
        city=city,
        country=country,
        person=f"{first} {last}",
        surname=last,
        person2=f"{rng.choice(FIRST_NAMES)} {rng.choice([n for n in LAST_NAMES if n != last])}",
        official=f"{slots['title']} {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        a_building=f"{_an(slots['building'])} {slots['building']}",
        age=rng.randint(19, 84),
        count=rng.randint(3, 60),
        count2=rng.randint(2, 40),
        hours=rng.randint(2, 14),
        year=rng.randint(1960, 2012),
        years=rng.randint(2, 25),
        weeks=rng.randint(2, 12),
        team1=f"{city} {team1}",
        team2=f"{rng.choice(CITIES)[0]} {team2}",
        score1=score2 + rng.randint(1, 3),
        score2=score2,
        minute=rng.randint(80, 89),
        crowd=f"{rng.randint(5, 80)},{rng.randint(0, 999):03d}",
        jobs=f"{rng.randint(1, 9)},{rng.randint(0, 9)}00",
        percent=rng.randint(5, 40),
        percent2=rng.randint(2, 15),
        employees=f"{rng.randint(10, 90)},000",
        amount=f"{rng.randint(1, 30)}.{rng.randint(1, 9)}",
        wind=rng.randint(70, 140),
        evacuated=f"{rng.randint(2, 90)},000",
        days=rng.randint(3, 12),
        searchers=rng.randint(40, 300),
        wins=wins,
        games=wins + rng.randint(0, 5),
        subjects=subjects,
        subjects2=subjects * rng.randint(3, 10),
        percent_win=percent_win,
        percent_lose=100 - percent_win - rng.randint(2, 9),
        turnout=rng.randint(55, 85),
        population=f"{rng.randint(1, 9)}.{rng.randint(1, 9)} million",
    )
    return slots


def _cnn_dm_story(rng: random.Random, publisher: str, with_article: bool = True) -> tuple[str, str]:
    """A ``.story`` text and its headline (for the URL)."""
    event = rng.choice(CNN_DM_EVENTS)
    facts = _cnn_dm_facts(rng)
    lead = event.lead.format(**facts)
    chosen = rng.sample(event.facts, rng.randint(CNN_DM_MIN_FACTS, len(event.facts)))
    sentences = [sentence for sentence, _ in chosen]
    sentences += rng.sample(event.extras, rng.randint(0, len(event.extras)))
    sentences += rng.sample(event.quotes, rng.randint(1, len(event.quotes)))
    sentences += rng.sample(CNN_DM_FILLERS, rng.randint(0, 2))
    sentences = [s.format(**facts) for s in sentences]
    rng.shuffle(sentences)
    # The first highlight restates the lead; the others restate facts the article contains.
    restated = rng.sample(chosen, rng.randint(CNN_DM_MIN_FACTS, len(chosen)))
    highlights = [h.format(**facts) for h in [event.lead_highlight] + [h for _, h in restated]]
    if publisher == "cnn":
        dateline = f"{facts['city'].upper()}, {facts['country']} " if rng.random() < CNN_DATELINE_RATE else ""
        lead = f"{dateline}(CNN) -- {lead}"
        paragraphs, i = [lead], 0
        while i < len(sentences):  # CNN: one to three sentences per paragraph
            step = rng.randint(1, 3)
            paragraphs.append(" ".join(sentences[i : i + step]))
            i += step
    else:  # Daily Mail: a byline block, then one sentence per paragraph
        hour, minute = rng.randint(0, 23), rng.randint(0, 59)
        date = f"{rng.randint(1, 28)} {facts['month']} {rng.randint(*CNN_DM_PUBLISH_YEARS)}"
        byline = (
            f"By . {rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} . PUBLISHED: . {hour:02d}:{minute:02d} EST, "
            f"{date} . | . UPDATED: . {hour:02d}:{min(minute + rng.randint(1, 30), 59):02d} EST, {date} ."
        )
        paragraphs = [byline, lead] + sentences
    if not with_article:
        paragraphs = []
    blocks = paragraphs + [f"@highlight\n\n{h}" for h in highlights]
    return "\n\n".join(blocks) + "\n", highlights[0]


def _cnn_dm_url(rng: random.Random, publisher: str, headline: str, index: int) -> str:
    year = rng.randint(*CNN_DM_PUBLISH_YEARS)
    stamp = (
        f"{year + 1}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
    )
    slug = _slug(headline)[:60].strip("-")
    if publisher == "cnn":
        return (
            f"http://web.archive.org/web/{stamp}id_/http://www.cnn.com/{year}/{rng.randint(1, 12):02d}/"
            f"{rng.randint(1, 28):02d}/{rng.choice(('world', 'us', 'sport', 'business', 'health'))}/{slug}-{index}/index.html"
        )
    article = 1_000_000 + index * 7919 % 8_999_999
    return (
        f"http://web.archive.org/web/{stamp}id_/http://www.dailymail.co.uk/news/article-{article}/{slug.title()}.html"
    )


def _cnn_dm_files(rng: random.Random) -> tuple[dict[str, bytes], dict]:
    stories: dict[str, dict[str, bytes]] = {"cnn": {}, "dailymail": {}}
    url_lists: dict[str, bytes] = {}
    counts = {"empty_article": 0}
    index = 0
    for split, n in CNN_DM_STORIES.items():
        urls: dict[str, list[str]] = {"cnn": [], "dailymail": []}
        for i in range(n):
            publisher = "cnn" if rng.random() < CNN_SHARE else "dailymail"
            # One train story has highlights but no article, like the 114 in the real data.
            with_article = not (split == "train" and i == 0)
            counts["empty_article"] += not with_article
            text, headline = _cnn_dm_story(rng, publisher, with_article)
            url = _cnn_dm_url(rng, publisher, headline, index)
            index += 1
            urls[publisher].append(url)
            folder = f"{publisher}/stories"
            stories[publisher][f"{folder}/{hashlib.sha1(url.encode('utf-8')).hexdigest()}.story"] = text.encode("utf-8")
        url_lists[f"url_lists/all_{split}.txt"] = _lines_bytes(urls["cnn"] + urls["dailymail"])
        counts[split] = n
    files = {"cnn_stories.tgz": _tar_gz(stories["cnn"]), "dailymail_stories.tgz": _tar_gz(stories["dailymail"])}
    counts.update(cnn=len(stories["cnn"]), dailymail=len(stories["dailymail"]))
    return files | url_lists, counts


# =================================================================================================
# WritingPrompts: writingPrompts.tar.gz -> writingPrompts/{split}.wp_{source,target}
# =================================================================================================

WP_ROLES = (
    "detective",
    "knight",
    "astronaut",
    "witch",
    "robot",
    "ghost",
    "dragon",
    "librarian",
    "soldier",
    "time traveler",
    "vampire",
    "chef",
    "pirate",
    "wizard",
    "janitor",
)
#: (setting as the prompt says it, the short noun the story uses for it)
WP_SETTINGS = (
    ("a space station orbiting Mars", "station"),
    ("an abandoned lighthouse", "lighthouse"),
    ("a tiny village in the mountains", "village"),
    ("New York in the year 3000", "city"),
    ("a haunted castle", "castle"),
    ("the bottom of the ocean", "sea floor"),
    ("a crowded subway train", "train"),
    ("the last city on Earth", "city"),
    ("a desert island", "island"),
    ("a school for wizards", "school"),
)
WP_TWISTS = (
    "everyone else has disappeared",
    "you are the only one who can see the ghosts",
    "time has stopped for everyone but you",
    "your reflection has started talking back",
    "the moon is slowly getting closer",
    "all the clocks run backwards",
    "the dead come back every Tuesday",
    "nobody remembers your name",
)
WP_OBJECTS = ("lantern", "key", "letter", "map", "pocket watch", "photograph", "sword", "music box")
WP_NAMES = ("Sarah", "Tom", "Eliza", "Marcus", "Old Pete", "Nadia", "Hugo", "Iris")
WP_THEMES = ("Silence", "Second chances", "The last day", "Home")
#: (tag, weight, template); tags as on r/WritingPrompts, [ WP ] by far the most common.
WP_PROMPTS = (
    ("WP", 4, "You are a {role} in {setting} , and you just realized that {twist} ."),
    ("WP", 3, "A {role} and a {role2} wake up in {setting} with no memory of how they got there ."),
    ("WP", 3, "In {setting} , every {role} has one job . Today , you failed at it ."),
    ("WP", 2, "After {years} years , the {role} finally returns to {setting} ."),
    ("IP", 1, "The {role} of {setting}"),
    ("CW", 1, "Write about a {role} in {setting} , but every paragraph must end with the word `` {object} '' ."),
    ("EU", 1, "The {role} from your favorite fairy tale moves to {setting} ."),
    ("TT", 1, "Theme Thursday : {theme} . A {role} in {setting} ."),
)
WP_OPENINGS = (
    "I had been a {role} for {years} years before I came to the {place} .",
    "The {place} was quiet that night . Too quiet , {name} thought .",
    "Nobody tells you what it 's like to be a {role} in {setting} .",
    "My name is {name} , and I am the last {role} in {setting} .",
)
WP_MIDDLE = (
    "`` Do you hear that ? '' {name} asked . I shook my head .",
    "It was then that I understood : {twist} .",
    "The {role2} stood at the door of the {place} , holding a {object} .",
    "I walked through the {place} , past the broken windows and the empty rooms .",
    "Every morning I checked the {object} , and every morning it was the same .",
    "`` You 're not supposed to be here , '' said the {role2} .",
    "I did n't know what to say , so I said nothing .",
    "{name} laughed , but there was no joy in it .",
    "Outside , the {place} was changing .",
    "A {role} does n't cry . That 's what they taught us .",
    "The {object} was warm in my hand , warmer than it should have been .",
    "We waited . The {place} waited with us .",
    "The {role2} had warned me about the {place} , but I had not listened .",
    "I found the {object} under a loose stone , exactly where {name} said it would be .",
    "`` How long have you known ? '' I asked . `` Since the beginning , '' {name} said .",
    "For a long time nobody spoke .",
    "The others had left the {place} years ago . Only {name} and I remained .",
    "Being a {role} in {setting} is mostly waiting , and a little bit of running .",
    "I tried to tell the {role2} that {twist} , but the words would not come .",
    "Somewhere below us , something moved .",
    "I wrote it all down in my notebook , just in case .",
    "{name} handed me the {object} . `` Take it . You 'll need it more than I will . ''",
    "That was the first time I saw the {role2} afraid .",
    "The lights of the {place} flickered once , then went out .",
    "I remembered my first day as a {role} . I had been so sure of everything .",
    "`` It 's not your fault , '' {name} said . It was , of course .",
    "By morning the {place} was silent again .",
    "I counted the days . Then I stopped counting .",
    "The {object} started to hum , a low and patient sound .",
    "`` Run , '' said the {role2} . So we ran .",
)
WP_ENDINGS = (
    "And that is how the last {role} in {setting} found a new job .",
    "I still think about that night , every time I see a {object} .",
    "The {place} is still there , if you know where to look .",
    "`` Same time tomorrow ? '' {name} asked . I smiled .",
)
WP_PARAGRAPH_BREAK = " <newline> <newline> "
WP_LINE_BREAK = " <newline> "
WP_MIDDLE_PARAGRAPHS = (1, 2, 3, 4, 5, 6, 8, 10, 14)
WP_MAX_SENTENCES_PER_PARAGRAPH = 4
WP_LINE_BREAK_RATE = 0.1


def _wp_pair(rng: random.Random) -> tuple[str, str]:
    setting, place = rng.choice(WP_SETTINGS)
    role, role2 = rng.sample(WP_ROLES, 2)
    slots = dict(
        role=role,
        role2=role2,
        setting=setting,
        place=place,
        twist=rng.choice(WP_TWISTS),
        object=rng.choice(WP_OBJECTS),
        name=rng.choice(WP_NAMES),
        years=rng.randint(2, 300),
        theme=rng.choice(WP_THEMES),
    )
    tag, _, template = rng.choices(WP_PROMPTS, weights=[w for _, w, _ in WP_PROMPTS])[0]
    prompt = f"[ {tag} ] " + template.format(**slots)
    paragraphs = [rng.choice(WP_OPENINGS)]
    pool = rng.sample(WP_MIDDLE, len(WP_MIDDLE))  # each sentence at most once per story
    for _ in range(rng.choice(WP_MIDDLE_PARAGRAPHS)):
        size = rng.randint(1, WP_MAX_SENTENCES_PER_PARAGRAPH)
        sentences, pool = pool[:size], pool[size:]
        if not sentences:
            break
        joiner = WP_LINE_BREAK if rng.random() < WP_LINE_BREAK_RATE else " "
        paragraphs.append(joiner.join(sentences))
    paragraphs.append(rng.choice(WP_ENDINGS))
    story = WP_PARAGRAPH_BREAK.join(paragraphs).format(**slots)
    return prompt, story


def _wp_archive(rng: random.Random) -> bytes:
    files = {}
    for split, n in WP_PAIRS.items():
        pairs = [_wp_pair(rng) for _ in range(n)]
        files[f"writingPrompts/{split}.wp_source"] = _lines_bytes([p for p, _ in pairs])
        files[f"writingPrompts/{split}.wp_target"] = _lines_bytes([s for _, s in pairs])
    return _tar_gz(files)


# =================================================================================================
# Quora: quora_duplicate_questions.tsv
# =================================================================================================

QUORA_SLOT_VALUES = {
    "skill": (
        "Python",
        "Java",
        "machine learning",
        "guitar",
        "Spanish",
        "French",
        "data science",
        "photography",
        "chess",
        "web development",
        "German",
        "piano",
        "C++",
        "drawing",
        "public speaking",
        "Excel",
    ),
    "subject": (
        "economics",
        "psychology",
        "history",
        "philosophy",
        "physics",
        "investing",
        "startups",
        "astronomy",
        "marketing",
        "statistics",
        "World War II",
        "leadership",
    ),
    "job": (
        "data scientist",
        "pilot",
        "doctor",
        "software engineer",
        "lawyer",
        "chartered accountant",
        "teacher",
        "civil servant",
        "nurse",
        "product manager",
        "architect",
        "journalist",
    ),
    "city": (
        "Delhi",
        "Mumbai",
        "London",
        "New York",
        "Paris",
        "Tokyo",
        "Bangalore",
        "Singapore",
        "Sydney",
        "Dubai",
        "Berlin",
        "Toronto",
        "Hyderabad",
        "San Francisco",
    ),
    "platform": ("YouTube", "Quora", "Instagram", "a blog", "Amazon", "Fiverr", "Etsy", "Twitter"),
    "phrase": (
        "break a leg",
        "once in a blue moon",
        "the ball is in your court",
        "spill the beans",
        "bite the bullet",
        "hit the sack",
        "under the weather",
        "cut corners",
        "a piece of cake",
        "call it a day",
    ),
    "exam": ("GRE", "GMAT", "IELTS", "UPSC exam", "CAT exam", "SAT", "TOEFL", "JEE"),
    "pair": (
        ("an iPhone", "an Android phone"),
        ("a Mac", "a Windows PC"),
        ("an MBA", "a master's in engineering"),
        ("Python", "Java"),
        ("renting", "buying a house"),
        ("Netflix", "Amazon Prime"),
        ("Uber", "Ola"),
        ("a laptop", "a desktop"),
        ("coffee", "tea"),
        ("running", "cycling"),
    ),
    "period": ("a month", "two weeks", "3 months", "a year", "10 days", "six weeks"),
}
#: intent -> (slot type, paraphrase templates). Any two templates of one intent are duplicates.
QUORA_INTENTS = {
    "learn_fast": (
        "skill",
        (
            "How do I learn {x} quickly?",
            "What is the fastest way to learn {x}?",
            "What are the best ways to learn {x} fast?",
            "How can I learn {x} in a short time?",
            "What's the quickest way to get good at {x}?",
        ),
    ),
    "learn_start": (
        "skill",
        (
            "How should I start learning {x}?",
            "What is the best way to start learning {x} as a beginner?",
            "Where do I begin if I want to learn {x}?",
            "How does a beginner start with {x}?",
        ),
    ),
    "learn_online": (
        "skill",
        (
            "What are the best online resources to learn {x}?",
            "Which websites are best for learning {x}?",
            "Where can I learn {x} online for free?",
            "What are some good online courses for {x}?",
        ),
    ),
    "books": (
        "subject",
        (
            "What are the best books on {x}?",
            "Which books should I read to learn {x}?",
            "What is a good book about {x}?",
            "Can you recommend some good books on {x}?",
        ),
    ),
    "become": (
        "job",
        (
            "How do I become a {x}?",
            "What does it take to become a {x}?",
            "What steps should I take to become a {x}?",
            "How can I become a {x}?",
        ),
    ),
    "job_life": (
        "job",
        (
            "What is it like to work as a {x}?",
            "How is life as a {x}?",
            "What is the daily life of a {x} like?",
            "What does a typical day look like for a {x}?",
        ),
    ),
    "salary": (
        "job",
        (
            "How much does a {x} earn?",
            "What is the average salary of a {x}?",
            "How much money does a {x} make?",
            "What salary can a {x} expect?",
        ),
    ),
    "visit": (
        "city",
        (
            "What are the best places to visit in {x}?",
            "Which places should I visit in {x}?",
            "What are the must-see places in {x}?",
            "What should I see when I visit {x}?",
        ),
    ),
    "live": (
        "city",
        (
            "What is it like to live in {x}?",
            "How is life in {x}?",
            "Is {x} a good place to live?",
            "How good is {x} as a place to live?",
        ),
    ),
    "money": (
        "platform",
        (
            "How can I make money on {x}?",
            "How do people earn money from {x}?",
            "What is the best way to earn money through {x}?",
            "Is it possible to make a living on {x}?",
        ),
    ),
    "meaning": (
        "phrase",
        (
            'What does "{x}" mean?',
            'What is the meaning of "{x}"?',
            'What does the phrase "{x}" mean?',
            'What is meant by the expression "{x}"?',
        ),
    ),
    "origin": (
        "phrase",
        (
            'Where does the phrase "{x}" come from?',
            'What is the origin of "{x}"?',
            'How did the expression "{x}" start?',
        ),
    ),
    "exam_prep": (
        "exam",
        (
            "How should I prepare for the {x}?",
            "What is the best strategy to prepare for the {x}?",
            "How do I prepare for the {x} in a short time?",
            "What is the best way to study for the {x}?",
        ),
    ),
    "exam_score": (
        "exam",
        ("What is a good score on the {x}?", "What score do I need on the {x}?", "Which {x} score counts as good?"),
    ),
    "compare": (
        "pair",
        (
            "Which is better, {x} or {y}?",
            "Is {x} better than {y}?",
            "{x} or {y}: which one should I choose?",
            "Should I choose {x} or {y}?",
        ),
    ),
    "weight": (
        "period",
        (
            "How can I lose weight in {x}?",
            "What is the best way to lose weight in {x}?",
            "How do I lose weight fast in {x}?",
            "How much weight can I lose in {x}?",
        ),
    ),
}
QUORA_HEADER = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")
QUORA_DUPLICATE_RATE = 0.37
#: P(a non-duplicate uses the same intent with another value) -- the rest: same value, other intent.
QUORA_SAME_INTENT_RATE = 0.5
QUORA_EMPTY_QUESTION_ROWS = 2
QUORA_NEWLINE_ROWS = 1
QUORA_MAX_TRIES = 1000
QUORA_NEWLINE_DETAIL = "\nI am a complete beginner and have no idea where to start."
#: A sentence of context some askers put before the question (as real Quora questions often do):
#: it makes a duplicate's wording its own, so that no target question recurs across the rows.
QUORA_CONTEXTS = (
    "I am a college student.",
    "I work full time.",
    "I am 30 years old.",
    "I have a small budget.",
    "I am from India.",
    "I am a complete beginner.",
    "I only have weekends free.",
    "My English is not perfect.",
    "I live in a small town.",
    "I have tried before and failed.",
    "I am switching careers.",
    "My parents disagree with me.",
)
QUORA_CONTEXT_RATE = 0.4


def _quora_question(rng: random.Random, intent: str, value) -> str:
    template = rng.choice(QUORA_INTENTS[intent][1])
    if isinstance(value, tuple):  # a comparison: the order of the two options does not matter
        first, second = rng.sample(value, 2)
        text = template.format(x=first, y=second)
    else:
        text = template.format(x=value)
    text = text[:1].upper() + text[1:]
    if rng.random() < QUORA_CONTEXT_RATE:
        text = f"{rng.choice(QUORA_CONTEXTS)} {text}"
    return text


def _quora_pair(rng: random.Random, duplicate: bool) -> tuple[str, str]:
    intent = rng.choice(list(QUORA_INTENTS))
    slot_type = QUORA_INTENTS[intent][0]
    value = rng.choice(QUORA_SLOT_VALUES[slot_type])
    if duplicate:  # same intent and value, another wording
        first = _quora_question(rng, intent, value)
        while True:
            second = _quora_question(rng, intent, value)
            if second != first:
                return first, second
    first = _quora_question(rng, intent, value)
    siblings = [i for i, (t, _) in QUORA_INTENTS.items() if t == slot_type and i != intent]
    if siblings and rng.random() >= QUORA_SAME_INTENT_RATE:
        return first, _quora_question(rng, rng.choice(siblings), value)
    other = rng.choice([v for v in QUORA_SLOT_VALUES[slot_type] if v != value])
    return first, _quora_question(rng, intent, other)


def _quora_tsv(rng: random.Random) -> tuple[bytes, dict]:
    n_duplicates = round(QUORA_ROWS * QUORA_DUPLICATE_RATE)
    flags = [True] * n_duplicates + [False] * (QUORA_ROWS - n_duplicates)
    rng.shuffle(flags)
    non_duplicate_rows = [i for i, flag in enumerate(flags) if not flag]
    special = rng.sample(non_duplicate_rows, QUORA_EMPTY_QUESTION_ROWS + QUORA_NEWLINE_ROWS)
    empty_rows, newline_rows = set(special[:QUORA_EMPTY_QUESTION_ROWS]), set(special[QUORA_EMPTY_QUESTION_ROWS:])
    qids: dict[str, int] = {}

    def qid(question: str) -> int:
        return qids.setdefault(question, len(qids) + 1)  # a question seen before keeps its qid

    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quotechar='"', quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(QUORA_HEADER)
    seen_pairs: set[tuple[str, str]] = set()
    targets: set[str] = set()  # the duplicates' second questions: the paraphrase task's targets
    for row, duplicate in enumerate(flags):
        # no pair twice, and no duplicate's target twice: either would leak across a random split
        for _ in range(QUORA_MAX_TRIES):
            q1, q2 = _quora_pair(rng, duplicate)
            if (q1, q2) not in seen_pairs and (q2, q1) not in seen_pairs and not (duplicate and q2 in targets):
                break
        else:
            raise RuntimeError("ran out of distinct Quora pairs: add templates or slot values")
        seen_pairs.add((q1, q2))
        if duplicate:
            targets.add(q2)
        if row in empty_rows:
            q2 = ""
        if row in newline_rows:
            q1 += QUORA_NEWLINE_DETAIL
        writer.writerow([row, qid(q1), qid(q2), q1, q2, int(duplicate)])
    counts = {"rows": QUORA_ROWS, "duplicates": n_duplicates, "empty_question": QUORA_EMPTY_QUESTION_ROWS}
    return buffer.getvalue().encode("utf-8"), counts


# =================================================================================================
# README, checksums, entry points
# =================================================================================================

README_TEMPLATE = """\
# Sample data (generated)

These files are **generated** by `tools/sample_generator.py` (`python -m
tools.sample_generator --out sample_data`, seed {seed}); they are **not** the real corpora
and contain no text from them. They exist so that the whole pipeline (preprocessing, training,
generation, evaluation) runs end to end on a laptop and in CI.

What they share with the real downloads: the file names, archive member paths, line formats,
headers, separators and special tokens (see the docstrings of `della/data/raw.py`), so the same
readers and the same preprocessing (`della/data/preprocess.py`) handle both. What they do not share: the size (a few hundred to a few thousand examples instead of
10^4-10^5), the vocabulary (small, from word lists in the generator), and the content (English
built from templates, so numbers measured on it say nothing about the paper's numbers).

| dataset | files | size | latent structure |
|---|---|---|---|
| yelp | `yelp/datasets.tar.gz` (`yelp_data/yelp.{{train,valid,test}}.txt`, `label<TAB>text`) | {lines} lines | star label 0-4 drives the sentiment words; business type (10 kinds) drives the nouns; `_UNK` for some words |
| yahoo | `yahoo/datasets.tar.gz` (`yahoo_data/yahoo.{{train,valid,test}}.txt`) | {lines} lines | one of 10 Yahoo-Answers-like categories per document (question, details, answer) |
| ptb | `ptb/simple-examples.tgz` (`./simple-examples/data/ptb.{{train,valid,test}}.txt`) | {lines} lines | news topic (markets, earnings, politics, law, industry); `N`, `<unk>`, no punctuation |
| snli | `snli/snli_1.0.zip` (jsonl + txt per split, README, `Icon\\r`, `__MACOSX/`) | {snli} pairs; `-` gold labels: {snli_no_gold} | each caption has an entailed, a neutral and a contradicting hypothesis |
| cnn_dailymail | `cnn_dailymail/{{cnn,dailymail}}_stories.tgz`, `url_lists/all_{{train,val,test}}.txt` | {cnn_dm} stories ({cnn} CNN, {dailymail} Daily Mail; {empty_article} without article) | highlights restate the article's key facts (names, numbers, places) |
| writingprompts | `writingprompts/writingPrompts.tar.gz` (`writingPrompts/{{train,valid,test}}.wp_{{source,target}}`) | {wp} pairs | the story uses the prompt's characters, setting and twist |
| quora | `quora/quora_duplicate_questions.tsv` | {quora_rows} rows, {quora_duplicates} duplicates, {quora_empty} with an empty question | duplicates are paraphrases of one question; non-duplicates share the topic but differ |

Sizes are train / valid / test (SNLI: train / dev / test; CNN/DM: train / val / test). Only
the files the pipeline reads are included (e.g. not Mikolov's `ptb.char.*` or rnnlm tools).

**Ground-truth factors.** Beside each Yelp and Yahoo split the archives hold one member no real
download has, `{{yelp,yahoo}}_data/{{name}}.{{split}}.factors.jsonl`: line i is a JSON object with the
generator's factors of text line i (Yelp: `business`; Yahoo: `topic`; at the small scale also the
writer's `persona`). With the dataset's `preprocess.factors: true` they become the records'
`labels`, which the latent probe predicts from the latents (docs/metrics.md); Yelp's star label
comes from its own `label<TAB>` field at every scale.

**The small scale** (`small/`, config/small.yaml): Yelp and Yahoo again, from streams of their own,
at {small_lines} texts, shorter (1-4 body sentences) and with more entropy per sentence: each text
has a writer persona (4 kinds: enthusiast, analyst, casual, formal) that adds its own sentence
prefixes and sign-offs throughout, and adjectives take intensifiers. The persona is a factor the
decoder cannot guess from a text's first words, and one a latent can carry. Real English widens
them: a business's items and a topic's nouns also come from WordNet 3.0 (the common words under
the topic's synsets, e.g. dish.n.02 for a restaurant), and 30 % of body and answer sentences are
WordNet sentences about the text's topic: its gloss examples that use one of the topic's words, or
a sentence saying what a word under the topic means ("a scone is a small biscuit ..."), lower
cased and tokenised as He et al.'s data is (tools/wordnet.py; Debian's `wordnet-base`).
WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved; used under the WordNet
3.0 licence (THIS SOFTWARE AND DATABASE IS PROVIDED "AS IS" AND PRINCETON UNIVERSITY MAKES NO
REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED; the full notice:
/usr/share/doc/wordnet-base/copyright or https://wordnet.princeton.edu/license-and-commercial-use).
**The paper scale's dress rehearsal** (`rehearsal/`, config/rehearsal.yaml; written by
`python -m tools.rehearsal_data --out sample_data/rehearsal`, its own `SHA256SUMS` and
README there): the same seven raw files with a few dozen examples whose texts are longer than
every length limit of `config/paper.yaml` (CNN/DM articles of 1,100-1,700 words, WritingPrompts
stories of 850-1,270 words and prompts of 70+, Yelp/Yahoo 260+, PTB 120+, SNLI premises 70+,
Quora questions 60+), the longest first in valid and test.
The archives were compressed with zlib {zlib} (another zlib may compress the same content to
other bytes); `SHA256SUMS` lists every file here.

How the pipeline gets them: the sample config (`config/config.yaml`) gives each dataset a
`source:` whose URLs are `file:sample_data/<dataset>/<file>` (relative to the repository root)
with the checksums of `SHA256SUMS`, so the same `download` rule that fetches the real corpora at
paper scale copies and verifies these into `raw/<dataset>/` (see `docs/data.md`). After
regenerating them, copy the new checksums into those `source:` entries.

License: generated by this project; same license as the repository.
"""


def _split_sizes(counts: dict, keys: Sequence[str]) -> str:
    return " / ".join(str(counts[k]) for k in keys)


def write_files(out_dir: Path, files: dict[str, bytes]) -> dict[str, str]:
    """Write `files` ({relative path: bytes}) under `out_dir` and their SHA256SUMS; returns
    ``{relative path: sha256}``."""
    sums = {}
    for relative, data in sorted(files.items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        sums[relative] = hashlib.sha256(data).hexdigest()
    (out_dir / "SHA256SUMS").write_text(
        "".join(f"{digest}  {name}\n" for name, digest in sums.items()), encoding="utf-8"
    )
    return sums


def generate_all(out_dir: Path, seed: int = 0) -> dict[str, str]:
    """Write the sample data of all seven datasets, README.md and SHA256SUMS under ``out_dir``.

    Returns ``{relative path: sha256}`` of every file written (SHA256SUMS excluded).
    """
    out_dir = Path(out_dir)

    def rng(dataset: str) -> random.Random:
        return random.Random(f"{seed}:{dataset}")  # independent streams: one dataset's edits leave the others alone

    files: dict[str, bytes] = {
        "yelp/datasets.tar.gz": _he2019_archive("yelp", _yelp_lines(rng("yelp"), SAMPLE)),
        "yahoo/datasets.tar.gz": _he2019_archive("yahoo", _yahoo_lines(rng("yahoo"), SAMPLE)),
        # the small scale's Yelp and Yahoo (config/small.yaml), from streams of their own
        "small/yelp/datasets.tar.gz": _he2019_archive("yelp", _yelp_lines(rng("small:yelp"), SMALL)),
        "small/yahoo/datasets.tar.gz": _he2019_archive("yahoo", _yahoo_lines(rng("small:yahoo"), SMALL)),
        "ptb/simple-examples.tgz": _tar_gz(
            {
                f"./simple-examples/data/ptb.{split}.txt": _lines_bytes(lines)
                for split, lines in _ptb_lines(rng("ptb")).items()
            }
        ),
    }
    files["snli/snli_1.0.zip"], snli_counts = _snli_archive(rng("snli"))
    cnn_dm_files, cnn_dm_counts = _cnn_dm_files(rng("cnn_dailymail"))
    files.update({f"cnn_dailymail/{name}": data for name, data in cnn_dm_files.items()})
    files["writingprompts/writingPrompts.tar.gz"] = _wp_archive(rng("writingprompts"))
    files["quora/quora_duplicate_questions.tsv"], quora_counts = _quora_tsv(rng("quora"))
    files["README.md"] = README_TEMPLATE.format(
        seed=seed,
        lines=_split_sizes(LINES_PER_SPLIT, SPLITS),
        snli=_split_sizes(snli_counts, ("train", "dev", "test")),
        snli_no_gold=_split_sizes(snli_counts, ("train_no_gold", "dev_no_gold", "test_no_gold")),
        cnn_dm=_split_sizes(cnn_dm_counts, ("train", "val", "test")),
        cnn=cnn_dm_counts["cnn"],
        dailymail=cnn_dm_counts["dailymail"],
        empty_article=cnn_dm_counts["empty_article"],
        wp=_split_sizes(WP_PAIRS, SPLITS),
        quora_rows=quora_counts["rows"],
        quora_duplicates=quora_counts["duplicates"],
        quora_empty=quora_counts["empty_question"],
        zlib=zlib.ZLIB_RUNTIME_VERSION,
        small_lines=_split_sizes(SMALL.lines_per_split, SPLITS),
    ).encode("utf-8")

    return write_files(out_dir, files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the generated sample data of all seven datasets.")
    parser.add_argument("--out", type=Path, default=Path("sample_data"), help="output folder (default: sample_data)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (default: 0, the shipped data)")
    args = parser.parse_args(argv)
    sums = generate_all(args.out, args.seed)
    total = sum((args.out / name).stat().st_size for name in sums)
    print(f"wrote {len(sums)} files ({total / 1e6:.2f} MB) and SHA256SUMS under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
