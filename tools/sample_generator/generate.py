"""All seven datasets, README.md and SHA256SUMS: `generate_all` and the command line."""

from __future__ import annotations

import argparse
import random
import zlib
from collections.abc import Sequence
from pathlib import Path

from della.data.raw import HE2019_ARCHIVE, PTB_ARCHIVE, QUORA_FILE, SNLI_ARCHIVE, WP_ARCHIVE
from tools.sample_generator.archives import write_files
from tools.sample_generator.cnn_dailymail import cnn_dm_files
from tools.sample_generator.common import LINES_PER_SPLIT, SPLITS
from tools.sample_generator.he2019 import He2019Profile, he2019_archive
from tools.sample_generator.ptb import ptb_archive, ptb_lines
from tools.sample_generator.quora import quora_tsv
from tools.sample_generator.snli import snli_archive
from tools.sample_generator.writingprompts import WP_PAIRS, wp_archive
from tools.sample_generator.yahoo import YAHOO_ANSWER_SENTENCES, YAHOO_MAX_DETAILS, YAHOO_MIN_TOKENS, yahoo_lines
from tools.sample_generator.yelp import YELP_BODY_SENTENCES, YELP_OPENING_RATE, yelp_lines

DATASETS = ("yelp", "yahoo", "ptb", "snli", "cnn_dailymail", "writingprompts", "quora")
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
README_TEMPLATE = """\
# Sample data (generated)

These files are **generated** by `tools/sample_generator/` (`python -m
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


def split_sizes(counts: dict, keys: Sequence[str]) -> str:
    return " / ".join(str(counts[k]) for k in keys)


def dataset_files(
    yelp: bytes,
    yahoo: bytes,
    ptb: bytes,
    snli: bytes,
    cnn_dailymail: dict[str, bytes],
    writingprompts: bytes,
    quora: bytes,
) -> dict[str, bytes]:
    """The seven datasets' raw files, each under ``<dataset>/`` with its real download's name
    (della/data/raw.py); `cnn_dailymail`: {name: bytes} of its archives and url lists."""
    return {
        f"yelp/{HE2019_ARCHIVE}": yelp,
        f"yahoo/{HE2019_ARCHIVE}": yahoo,
        f"ptb/{PTB_ARCHIVE}": ptb,
        f"snli/{SNLI_ARCHIVE}": snli,
        **{f"cnn_dailymail/{name}": data for name, data in cnn_dailymail.items()},
        f"writingprompts/{WP_ARCHIVE}": writingprompts,
        f"quora/{QUORA_FILE}": quora,
    }


def generate_all(out_dir: Path, seed: int = 0) -> dict[str, str]:
    """Write the sample data of all seven datasets, README.md and SHA256SUMS under ``out_dir``.

    Returns ``{relative path: sha256}`` of every file written (SHA256SUMS excluded).
    """
    out_dir = Path(out_dir)

    def rng(dataset: str) -> random.Random:
        return random.Random(f"{seed}:{dataset}")  # independent streams: one dataset's edits leave the others alone

    snli, snli_counts = snli_archive(rng("snli"))
    news_files, cnn_dm_counts = cnn_dm_files(rng("cnn_dailymail"))
    quora, quora_counts = quora_tsv(rng("quora"))
    files = dataset_files(
        yelp=he2019_archive("yelp", yelp_lines(rng("yelp"), SAMPLE)),
        yahoo=he2019_archive("yahoo", yahoo_lines(rng("yahoo"), SAMPLE)),
        ptb=ptb_archive(ptb_lines(rng("ptb"))),
        snli=snli,
        cnn_dailymail=news_files,
        writingprompts=wp_archive(rng("writingprompts")),
        quora=quora,
    )
    # the small scale's Yelp and Yahoo (config/small.yaml), from streams of their own
    files[f"small/yelp/{HE2019_ARCHIVE}"] = he2019_archive("yelp", yelp_lines(rng("small:yelp"), SMALL))
    files[f"small/yahoo/{HE2019_ARCHIVE}"] = he2019_archive("yahoo", yahoo_lines(rng("small:yahoo"), SMALL))
    files["README.md"] = README_TEMPLATE.format(
        seed=seed,
        lines=split_sizes(LINES_PER_SPLIT, SPLITS),
        snli=split_sizes(snli_counts, ("train", "dev", "test")),
        snli_no_gold=split_sizes(snli_counts, ("train_no_gold", "dev_no_gold", "test_no_gold")),
        cnn_dm=split_sizes(cnn_dm_counts, ("train", "val", "test")),
        cnn=cnn_dm_counts["cnn"],
        dailymail=cnn_dm_counts["dailymail"],
        empty_article=cnn_dm_counts["empty_article"],
        wp=split_sizes(WP_PAIRS, SPLITS),
        quora_rows=quora_counts["rows"],
        quora_duplicates=quora_counts["duplicates"],
        quora_empty=quora_counts["empty_question"],
        zlib=zlib.ZLIB_RUNTIME_VERSION,
        small_lines=split_sizes(SMALL.lines_per_split, SPLITS),
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
