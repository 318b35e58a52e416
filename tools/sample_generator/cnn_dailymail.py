"""CNN / DailyMail: {cnn,dailymail}_stories.tgz -> {cnn,dailymail}/stories/<sha1(url)>.story, and the
url lists."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

from della.data.raw import CNN_DM_ARCHIVES, CNN_DM_URL_LIST
from tools.sample_generator.archives import lines_bytes, tar_gz
from tools.sample_generator.common import indefinite_article, slug

CNN_DM_STORIES = {"train": 400, "val": 50, "test": 50}
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


def cnn_dm_facts(rng: random.Random) -> dict:
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
        a_building=f"{indefinite_article(slots['building'])} {slots['building']}",
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
    facts = cnn_dm_facts(rng)
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


def cnn_dm_url(rng: random.Random, publisher: str, headline: str, index: int) -> str:
    year = rng.randint(*CNN_DM_PUBLISH_YEARS)
    stamp = (
        f"{year + 1}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}"
    )
    url_slug = slug(headline)[:60].strip("-")
    if publisher == "cnn":
        return (
            f"http://web.archive.org/web/{stamp}id_/http://www.cnn.com/{year}/{rng.randint(1, 12):02d}/"
            f"{rng.randint(1, 28):02d}/{rng.choice(('world', 'us', 'sport', 'business', 'health'))}/{url_slug}-{index}/index.html"
        )
    article = 1_000_000 + index * 7919 % 8_999_999
    return f"http://web.archive.org/web/{stamp}id_/http://www.dailymail.co.uk/news/article-{article}/{url_slug.title()}.html"


def cnn_dm_files(rng: random.Random) -> tuple[dict[str, bytes], dict]:
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
            url = cnn_dm_url(rng, publisher, headline, index)
            index += 1
            urls[publisher].append(url)
            archive, folder = CNN_DM_ARCHIVES[publisher]
            stories[publisher][f"{folder}/{hashlib.sha1(url.encode('utf-8')).hexdigest()}.story"] = text.encode("utf-8")
        url_lists[CNN_DM_URL_LIST.format(split=split)] = lines_bytes(urls["cnn"] + urls["dailymail"])
        counts[split] = n
    files = {archive: tar_gz(stories[publisher]) for publisher, (archive, _) in CNN_DM_ARCHIVES.items()}
    counts.update(cnn=len(stories["cnn"]), dailymail=len(stories["dailymail"]))
    return files | url_lists, counts
