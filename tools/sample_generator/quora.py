"""Quora Question Pairs: quora_duplicate_questions.tsv."""

from __future__ import annotations

import csv
import io
import random

from della.data.raw import QUORA_COLUMNS

QUORA_ROWS = 2500
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


def quora_pair(rng: random.Random, duplicate: bool) -> tuple[str, str]:
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


def quora_tsv(rng: random.Random) -> tuple[bytes, dict]:
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
    writer.writerow(QUORA_COLUMNS)
    seen_pairs: set[tuple[str, str]] = set()
    targets: set[str] = set()  # the duplicates' second questions: the paraphrase task's targets
    for row, duplicate in enumerate(flags):
        # no pair twice, and no duplicate's target twice: either would leak across a random split
        for _ in range(QUORA_MAX_TRIES):
            q1, q2 = quora_pair(rng, duplicate)
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
