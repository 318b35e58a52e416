"""Yahoo (He et al. 2019): datasets.tar.gz -> yahoo_data/yahoo.{split}.txt, one document per line."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.sample_generator.common import unk_rare, unseen_splits
from tools.sample_generator.he2019 import (
    HE2019_UNK,
    PERSONAS,
    UNK_MIN_WORD_LEN,
    He2019Profile,
    body_sentence,
    in_persona,
    real_english,
    signed_off,
)


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


def yahoo_document(rng: random.Random, topic_name: str, topic: Topic, profile: He2019Profile) -> tuple[str, dict]:
    persona = rng.choice(PERSONAS) if profile.personas else None
    real = real_english(YAHOO_WORDNET_ROOTS[topic_name], topic.nouns) if profile.wordnet_words else None

    def fill(template: str) -> str:
        n, n2 = rng.sample(real.words if real else topic.nouns, 2)
        return in_persona(
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
        in_persona(rng, aside, persona, profile) if (aside := body_sentence(rng, profile, real)) else fill(t)
        for t in answers
    ]
    if rng.random() < YAHOO_CLOSER_RATE:
        parts.append(rng.choice(YAHOO_CLOSERS))
    while len(" ".join(parts).split()) < profile.yahoo_min_tokens:
        parts.append(fill(rng.choice(topic.answers)))
    parts += signed_off(rng, persona, profile)
    factors = {"topic": topic_name, **({"persona": persona.name} if persona else {})}
    return unk_rare(" ".join(parts), rng, YAHOO_UNK_RATE, HE2019_UNK, UNK_MIN_WORD_LEN), factors


def yahoo_lines(rng: random.Random, profile: He2019Profile) -> dict[str, list[tuple[str, dict]]]:
    topics = list(YAHOO_TOPICS.items())
    return unseen_splits(
        profile.lines_per_split,
        lambda: yahoo_document(rng, *rng.choice(topics), profile),
        lambda item: [item[0]],
        "yahoo",
    )
