"""PTB (Mikolov): simple-examples.tgz -> ./simple-examples/data/ptb.{split}.txt, " tokens \n"."""

from __future__ import annotations

import random
from collections import Counter

from della.data.raw import PTB_MEMBER
from tools.sample_generator.archives import lines_bytes, tar_gz
from tools.sample_generator.common import LINES_PER_SPLIT, unseen_splits

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


def ptb_sentence(rng: random.Random) -> str:
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


def ptb_lines(rng: random.Random) -> dict[str, list[str]]:
    """Sentences with the vocabulary rules of the real files: rare train words and words unseen
    in train become <unk>, so every valid/test token is in the train vocabulary."""
    train = [ptb_sentence(rng).split() for _ in range(LINES_PER_SPLIT["train"])]
    counts = Counter(token for tokens in train for token in tokens)
    vocabulary = {token for token, count in counts.items() if count >= PTB_MIN_COUNT}

    def line(tokens: list[str]) -> str:
        return " " + " ".join(t if t in vocabulary else PTB_UNK for t in tokens) + " "

    # a held-out sentence that differs from a training one only in words made <unk> is the same line
    sentences = unseen_splits(
        LINES_PER_SPLIT, lambda: ptb_sentence(rng).split(), lambda item: [line(item)], "ptb", train
    )
    return {split: [line(tokens) for tokens in lines] for split, lines in sentences.items()}


def ptb_archive(lines: dict[str, list[str]]) -> bytes:
    """Mikolov's tarball: one ``ptb.{split}.txt`` per split."""
    return tar_gz({PTB_MEMBER.format(split=split): lines_bytes(split_lines) for split, split_lines in lines.items()})
