"""Princeton WordNet 3.0's nouns, read from its database files as Debian's `wordnet-base`
installs them (/usr/share/wordnet; format: wndb(5WN)), for the small scale's data generator
(tools/sample_generator/): real English words by meaning (a synset's hyponyms) and the
example sentences of its glosses.

Why not nltk's WordNetCorpusReader: it reads nltk's own packaging of these files (a `lexnames`
file that Debian does not ship, and nltk's `wordnet` resource for its version mapping, a
download), and no package installs that offline. WordNet 3.0's format has not changed since 2006.

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved (licence: WordNet 3.0,
/usr/share/doc/wordnet-base/copyright; sample_data/README.md carries the notice).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WORDNET_DIR_VARIABLE = "WORDNET_DIR"
DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
INSTALL_HINT = "install Debian's wordnet-base (apt-get install wordnet-base) or set WORDNET_DIR to its folder"
HYPONYM_POINTERS = ("~",)  # "~i" (instance hyponyms) are proper names: Francis Bacon is no food
QUOTED = re.compile(r'"([^"]+)"')


@dataclass(frozen=True)
class Synset:
    offset: str
    lemmas: tuple[str, ...]  # as WordNet writes them: "Irish_coffee"
    hyponyms: tuple[str, ...]  # offsets
    gloss: str

    @property
    def definition(self) -> str:
        """The gloss without its examples: `dish` -> "a particular item of prepared food"."""
        return self.gloss.split('; "')[0].split(' "')[0].strip(" ;")

    @property
    def examples(self) -> tuple[str, ...]:
        """The gloss's quoted example sentences: `dish` -> ("she prepared a special dish for dinner",)."""
        return tuple(QUOTED.findall(self.gloss))


def wordnet_dir() -> Path:
    return Path(os.environ.get(WORDNET_DIR_VARIABLE, DEFAULT_WORDNET_DIR))


def _lines(name: str) -> list[str]:
    path = wordnet_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: WordNet 3.0's database is needed to generate the small data; {INSTALL_HINT}")
    # the licence header's lines start with two spaces (wndb(5WN), "Database File Format")
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("  ")]


@cache
def nouns() -> dict[str, Synset]:
    """Every noun synset by its offset. A data line: offset lex_filenum ss_type w_cnt (hex)
    [word lex_id]... p_cnt [pointer_symbol offset pos source/target]... | gloss."""
    synsets = {}
    for line in _lines("data.noun"):
        fields, _, gloss = line.partition(" | ")
        f = fields.split()
        n_words = int(f[3], 16)
        lemmas = tuple(f[4 + 2 * i] for i in range(n_words))
        at = 4 + 2 * n_words
        n_pointers = int(f[at])
        pointers = [f[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(n_pointers)]
        hyponyms = tuple(target for symbol, target, pos, _ in pointers if symbol in HYPONYM_POINTERS and pos == "n")
        synsets[f[0]] = Synset(f[0], lemmas, hyponyms, gloss.strip())
    return synsets


@dataclass(frozen=True)
class Lemma:
    senses: tuple[str, ...]  # its synsets' offsets, most frequent sense first
    tagged_senses: int  # how many of them the semantically tagged corpora (SemCor) use: 0 for rare words


@cache
def noun_lemmas() -> dict[str, Lemma]:
    """lemma (lower case, "_" between words) -> its senses. An index line: lemma pos synset_cnt
    p_cnt [ptr_symbol]... sense_cnt tagsense_cnt synset_offset..."""
    lemmas = {}
    for line in _lines("index.noun"):
        f = line.split()
        n_synsets, n_pointer_kinds = int(f[2]), int(f[3])
        lemmas[f[0]] = Lemma(
            tuple(f[6 + n_pointer_kinds : 6 + n_pointer_kinds + n_synsets]), int(f[5 + n_pointer_kinds])
        )
    return lemmas


def synset(lemma: str, sense: int = 1) -> Synset:
    """`synset("dish", 2)`: the second sense of "dish" (nltk's "dish.n.02")."""
    offsets = noun_lemmas()[lemma].senses if lemma in noun_lemmas() else ()
    if not 1 <= sense <= len(offsets):
        raise KeyError(f"WordNet has no noun sense {sense} of {lemma!r} ({wordnet_dir()})")
    return nouns()[offsets[sense - 1]]


def hyponym_closure(root: Synset) -> list[Synset]:
    """`root` and every synset below it, in offset order (the database's)."""
    seen, stack = {root.offset}, [root.offset]
    while stack:
        for child in nouns()[stack.pop()].hyponyms:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return [nouns()[offset] for offset in sorted(seen)]


def definitions(roots: list[Synset], max_words: int = 2) -> list[tuple[str, str]]:
    """(word, definition) of every synset below `roots` named by a word whose most frequent
    sense it is (see `words_meaning`), in offset order: ("pizza", "Italian open pie made of ...")."""
    below = _below(roots)
    named = []
    for offset in sorted(below):
        words = [lemma for lemma in nouns()[offset].lemmas if _names(lemma, below, max_words, tagged_only=False)]
        if words:
            named.append((words[0].replace("_", " "), nouns()[offset].definition))
    return named


def _below(roots: list[Synset]) -> set[str]:
    return {synset.offset for root in roots for synset in hyponym_closure(root)}


def _names(lemma: str, below: set[str], max_words: int, tagged_only: bool) -> bool:
    """Whether `lemma` is a lower-case word of at most `max_words` words whose most frequent sense
    is in `below` (and, `tagged_only`, that the tagged corpora use)."""
    entry = noun_lemmas().get(lemma)
    return (
        lemma.islower()
        and lemma.count("_") < max_words
        and entry is not None
        and entry.senses[0] in below
        and (entry.tagged_senses > 0 or not tagged_only)
    )


def words_meaning(roots: list[Synset], max_words: int = 2, tagged_only: bool = False) -> list[str]:
    """The lemmas below `roots` whose most frequent sense is there: "pizza" and "sauerbraten"
    under dish.n.02, not "bomber" (first an aircraft) nor "hero". Lower case (proper names left
    out), words joined by a space, at most `max_words` words, sorted; `tagged_only`: only words
    the tagged corpora use (common ones: "pizza", not "sauerbraten")."""
    below = _below(roots)
    return sorted(
        {
            lemma.replace("_", " ")
            for offset in below
            for lemma in nouns()[offset].lemmas
            if _names(lemma, below, max_words, tagged_only)
        }
    )


@cache
def example_sentences() -> tuple[str, ...]:
    """Every gloss's example sentences, all four parts of speech, once each, in database order."""
    examples = {}
    for pos in ("noun", "verb", "adj", "adv"):
        for line in _lines(f"data.{pos}"):
            examples.update(dict.fromkeys(QUOTED.findall(line.partition(" | ")[2])))
    return tuple(examples)
