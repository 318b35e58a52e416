"""SNLI 1.0: snli_1.0.zip (jsonl + txt per split, README, Mac artefacts)."""

from __future__ import annotations

import json
import random
import re
import struct
import sys
from collections import Counter
from dataclasses import dataclass

from nltk import Tree

from della.data.raw import SNLI_MEMBER, SNLI_TXT_HEADER
from tools.sample_generator.archives import lines_bytes, zip_bytes
from tools.sample_generator.common import indefinite_article, unseen_splits

#: SNLI captions per file split; each caption gets three hypotheses (one per label).
SNLI_CAPTIONS = {"train": 500, "dev": 67, "test": 67}


def parse_tree(text: str) -> Tree:
    """A Penn-style bracketed tree, e.g. ``(NP (DT a) (NN bike))``."""
    return Tree.fromstring(text)


def leaves(tree: Tree) -> list[str]:
    return tree.leaves()


def render_parse(tree: Tree) -> str:
    """The ``sentence*_parse`` string, on one line: ``(ROOT (S (NP (DT A) (NN man)) ...))``."""
    return tree.pformat(margin=sys.maxsize)


def render_binary(tree: Tree | str) -> str:
    """The ``sentence*_binary_parse`` string: unlabelled, right-binarised, unary nodes removed."""
    if isinstance(tree, str):
        return tree
    parts = [render_binary(c) for c in tree]
    if len(parts) == 1:
        return parts[0]
    result = parts[-1]
    for part in reversed(parts[:-1]):
        result = f"( {part} {result} )"
    return result


def sentence_text(tokens: list[str]) -> str:
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
        determiner = indefinite_article(words[0][1])
    words_ = ([Tree("DT", [determiner])] if determiner else []) + [Tree(tag, [word]) for tag, word in words]
    return Tree("NP", words_)


def snli_subject_np(
    rng: random.Random, subject: Subject, definite: bool, noun: str | None = None, describe: bool = False
) -> Tree:
    noun = noun or subject.noun
    words = []
    if describe and rng.random() < SNLI_ADJECTIVE_RATE:
        words.append(("JJ", rng.choice(SNLI_ADJECTIVES[subject.kind])))
    words.append((subject.tag, noun))
    if subject.number and not definite:
        return Tree("NP", [Tree("CD", [subject.number])] + [Tree(t, [w]) for t, w in words])
    np = _snli_np("The" if definite else "a", words)
    if describe and subject.kind == "human" and rng.random() < SNLI_CLOTHING_RATE:
        clothing = _snli_np("a", [("JJ", rng.choice(SNLI_COLORS)), ("NN", rng.choice(SNLI_CLOTHES))])
        np = Tree("NP", [np, Tree("PP", [Tree("IN", ["in"]), clothing])])
    return np


def snli_sentence(subject_np: Tree, plural: bool, predicate: Tree, period: bool = True) -> Tree:
    """``(ROOT (S NP (VP (VBZ is) predicate) (. .)))``."""
    be = Tree("VBP", ["are"]) if plural else Tree("VBZ", ["is"])
    children = [subject_np, Tree("VP", [be, predicate])] + ([Tree(".", ["."])] if period else [])
    return Tree("ROOT", [Tree("S", children)])


def with_pp(vp: Tree, pp: str) -> Tree:
    return Tree(vp.label(), [*vp, parse_tree(pp)])


def snli_hypothesis(rng: random.Random, label: str, subject: Subject, action: Action, setting: str) -> Tree:
    """A hypothesis with the given relation to the premise ``subject is action place``."""
    plural = bool(subject.number)
    same = snli_subject_np(rng, subject, definite=True)
    hyper = snli_subject_np(rng, subject, definite=not plural and rng.random() < SNLI_DEFINITE_RATE, noun=subject.hyper)
    if label == "entailment":
        strategy = rng.randrange(3)
        if strategy == 0:
            return snli_sentence(hyper, plural, parse_tree(rng.choice(action.general)))
        if strategy == 1:
            adverb = rng.choice(SNLI_SETTING_ADVERB[setting])
            return snli_sentence(same, plural, Tree("ADVP", [Tree("RB", [adverb])]))
        return snli_sentence(hyper, plural, parse_tree(action.vp))
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
            return snli_sentence(same, plural, with_pp(parse_tree(other.vp), place))
        if strategy == 1:
            opposite = snli_subject_np(rng, subject, definite=False, noun=subject.opposite)
            return snli_sentence(opposite, plural, parse_tree(action.vp))
        other_setting = "inside" if setting == "outside" else "outside"
        adverb = rng.choice(SNLI_SETTING_ADVERB[other_setting])
        return snli_sentence(same, plural, Tree("ADVP", [Tree("RB", [adverb])]))
    if rng.random() < SNLI_NEUTRAL_PP_RATE:
        return snli_sentence(same, plural, with_pp(parse_tree(action.vp), rng.choice(action.neutral)))
    return snli_sentence(same, plural, parse_tree(rng.choice(SNLI_NEUTRAL_STATES)))


def snli_annotations(rng: random.Random, label: str, validated: bool) -> list[str]:
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


def gold_label(labels: list[str]) -> str:
    label, count = Counter(labels).most_common(1)[0]
    return label if count * 2 > len(labels) or len(labels) == 1 else "-"


def _snli_caption(rng: random.Random, all_validated: bool) -> list[dict]:
    """One caption (the premise) and its three pairs, one hypothesis per label."""
    records = []
    subject = rng.choice(SNLI_SUBJECTS)
    action = rng.choice([a for a in SNLI_ACTIONS if subject.kind in a.kinds])
    place, setting = rng.choice(action.places)
    premise = snli_sentence(
        snli_subject_np(rng, subject, definite=False, describe=True),
        bool(subject.number),
        with_pp(parse_tree(action.vp), place),
    )
    caption_id = f"{rng.randrange(10**8, 10**10)}.jpg#{rng.randrange(5)}"
    for label in SNLI_PAIR_ORDER:
        hypothesis = snli_hypothesis(rng, label, subject, action, setting)
        if rng.random() < SNLI_NO_PERIOD_RATE:  # drop the final "." leaf
            s = hypothesis[0]
            hypothesis = Tree("ROOT", [Tree(s.label(), [c for c in s if c.label() != "."])])
        annotations = snli_annotations(rng, label, all_validated or rng.random() < SNLI_VALIDATED_RATE)
        records.append(
            {
                "annotator_labels": annotations,
                "captionID": caption_id,
                "gold_label": gold_label(annotations),
                "pairID": f"{caption_id}r1{SNLI_LABEL_LETTER[label]}",
                "sentence1": sentence_text(leaves(premise)),
                "sentence1_binary_parse": render_binary(premise),
                "sentence1_parse": render_parse(premise),
                "sentence2": sentence_text(leaves(hypothesis)),
                "sentence2_binary_parse": render_binary(hypothesis),
                "sentence2_parse": render_parse(hypothesis),
            }
        )
    return records


def _snli_splits(rng: random.Random) -> dict[str, list[dict]]:
    """The file splits' records, training captions first; a dev or test caption is redrawn while
    its premise or a hypothesis is a training sentence, as preprocessing tokenises them."""
    from della.data.preprocess import snli_tokenize

    sizes = {"train": SNLI_CAPTIONS["train"], "dev": SNLI_CAPTIONS["dev"], "test": SNLI_CAPTIONS["test"]}
    captions = unseen_splits(
        sizes,
        lambda: _snli_caption(rng, all_validated=True),
        lambda records: [snli_tokenize(r[k]) for r in records for k in ("sentence1", "sentence2")],
        "snli",
        train=[_snli_caption(rng, all_validated=False) for _ in range(sizes["train"])],
    )
    return {split: [record for caption in found for record in caption] for split, found in captions.items()}


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


def snli_txt(records: list[dict]) -> bytes:
    lines = ["\t".join(SNLI_TXT_HEADER)]
    for record in records:
        labels = record["annotator_labels"] + [""] * (SNLI_MAX_LABELS - len(record["annotator_labels"]))
        lines.append("\t".join([record[c] for c in SNLI_TXT_HEADER[:9]] + labels))
    return lines_bytes(lines)


def snli_archive(rng: random.Random) -> tuple[bytes, dict[str, int]]:
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
        entries.append((SNLI_MEMBER.format(split=split), lines_bytes([json.dumps(r) for r in records])))
        entries.append((f"snli_1.0/snli_1.0_{split}.txt", snli_txt(records)))
    entries += [("__MACOSX/", None), ("__MACOSX/snli_1.0/", None), ("__MACOSX/snli_1.0/._Icon\r", APPLE_DOUBLE)]
    return zip_bytes(entries), counts
