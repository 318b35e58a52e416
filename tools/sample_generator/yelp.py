"""Yelp (He et al. 2019): datasets.tar.gz -> yelp_data/yelp.{split}.txt, "label<TAB>text"."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.sample_generator.common import indefinite_article, unk_rare, unseen_splits
from tools.sample_generator.he2019 import (
    HE2019_UNK,
    PERSONAS,
    UNK_MIN_WORD_LEN,
    He2019Profile,
    body_sentence,
    in_persona,
    intensified,
    real_english,
    signed_off,
)


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
YELP_UNK_RATE = 0.01


def _is_plural(noun: str) -> bool:
    last = noun.split()[-1]
    return last.endswith("s") and not last.endswith(("ss", "us"))


def yelp_review(rng: random.Random, label: int, profile: He2019Profile) -> tuple[str, dict]:
    """One review of star `label` and its generator factors (business type, and the writer's
    persona at the small scale)."""
    business = rng.choice(YELP_BUSINESSES)
    persona = rng.choice(PERSONAS) if profile.personas else None
    real = real_english(YELP_WORDNET_ROOTS[business.noun], business.items) if profile.wordnet_words else None

    def sentence(template: str, polarity: int) -> str:
        item, item2 = rng.sample(real.words if real else business.items, 2)
        adj = intensified(rng, rng.choice(YELP_ADJ[polarity]), profile)
        text = template.format(
            item=item,
            item2=item2,
            be="were" if _is_plural(item) else "was",
            be2="were" if _is_plural(item2) else "was",
            adj=adj,
            an_adj=f"{indefinite_article(adj)} {adj}",
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
        return in_persona(rng, text, persona, profile)

    sentences = []
    if rng.random() < profile.yelp_opening_rate:
        sentences.append(sentence(rng.choice(YELP_OPENINGS), 0))
    used: set[str] = set()
    for _ in range(rng.choice(profile.yelp_body_sentences)):
        if (aside := body_sentence(rng, profile, real)) is not None:
            sentences.append(in_persona(rng, aside, persona, profile))
            continue
        polarity = rng.choices(POLARITIES, weights=YELP_LABEL_POLARITY[label])[0]
        fresh = [t for t in YELP_SENTENCES[polarity] if t not in used]  # a review does not repeat itself
        if fresh:
            template = rng.choice(fresh)
            used.add(template)
            sentences.append(sentence(template, polarity))
    sentences += signed_off(rng, persona, profile)
    factors = {"business": business.noun, **({"persona": persona.name} if persona else {})}
    return unk_rare(" ".join(sentences), rng, YELP_UNK_RATE, HE2019_UNK, UNK_MIN_WORD_LEN), factors


def yelp_lines(rng: random.Random, profile: He2019Profile) -> dict[str, list[tuple[str, dict]]]:
    """{split: [(raw line, factors)]}; the star label is the line's own `label<TAB>` field."""
    labels = sorted(YELP_LABEL_POLARITY)

    def draw() -> tuple[str, dict]:
        label = rng.choice(labels)
        text, factors = yelp_review(rng, label, profile)
        return f"{label}\t{text}", factors

    return unseen_splits(profile.lines_per_split, draw, lambda item: [item[0].split("\t", 1)[1]], "yelp")
