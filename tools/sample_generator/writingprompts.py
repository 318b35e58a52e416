"""WritingPrompts: writingPrompts.tar.gz -> writingPrompts/{split}.wp_{source,target}."""

from __future__ import annotations

import random

from della.data.raw import WP_MEMBER
from tools.sample_generator.archives import lines_bytes, tar_gz

WP_PAIRS = {"train": 500, "valid": 100, "test": 100}
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


def wp_archive(rng: random.Random) -> bytes:
    files = {}
    for split, n in WP_PAIRS.items():
        pairs = [_wp_pair(rng) for _ in range(n)]
        files[WP_MEMBER.format(split=split, side="wp_source")] = lines_bytes([p for p, _ in pairs])
        files[WP_MEMBER.format(split=split, side="wp_target")] = lines_bytes([s for _, s in pairs])
    return tar_gz(files)
