"""Turn a dataset's raw download into ``{train,valid,test}.jsonl`` + ``stats.json``.

The output format is the one in ``docs/interfaces.md``: one JSON object per line,
``{"text": ...}`` for the unconditional datasets (yelp, yahoo, ptb, snli) and
``{"source": ..., "target": ...}`` for the conditional ones (cnn_dailymail, writingprompts,
quora); ``stats.json`` holds the Table 7 numbers. Text keeps the raw data's own tokenisation
(no detokenisation), except where a format says otherwise below.

Settings (the dataset's section of the config; unknown keys are rejected)
-------------------------------------------------------------------------
``format``        required. Which raw format and which cleaning applies; one of
                  yelp_he2019, yahoo_he2019, ptb_mikolov, snli_1.0, cnn_dailymail_see2017,
                  writingprompts_fan2018, quora_qqp.
``task``          required. ``unconditional`` or ``conditional``; must agree with the format
                  (it is stated in the config so that the rest of the workflow can read it
                  without knowing formats, and checked here so the two cannot drift apart).
``max_examples``  optional, default all null. ``{train: int|null, valid: int|null,
                  test: int|null}``: keep a seeded random subsample of at most that many
                  examples of the split (in their original order); null keeps all.
``seed``          optional, default 0. Seeds the subsample and the Quora split.
``max_length``    optional, default null. Keep only examples with fewer than this many
                  whitespace tokens, counting source + target for conditional data. This is
                  the filter of DELLA's ``WPDataset`` (``len(source.split()) +
                  len(target.split()) < max_length``, counted after ``<newline>`` became
                  ``\\n``); null = no filter. An int applies to every split (as the official
                  code filters whatever split it loads); a mapping ``{train: int|null, valid:
                  ..., test: ...}`` per split (the paper filters WritingPrompts "for
                  training" only, Sec. 5.1; docs/paper-vs-code.md). Dropped examples are
                  counted as ``too_long``.
``factors``       optional, default false; yelp_he2019 / yahoo_he2019 only. Read the
                  generated data's ground-truth factors (the latent probe's labels) from the
                  archive's ``{dataset}_data/{dataset}.{split}.factors.jsonl`` members, line i
                  of which belongs to text line i; real downloads have no such members.
``bad_labels``    optional, default ``error``; yelp_he2019 only. A non-empty line without a
                  valid ``<label><TAB>`` prefix (no tab, or a label outside 0-4) is an error
                  naming file and line; ``skip`` skips such lines and counts them as
                  ``bad_label`` in stats.json. Never is such a line read as text.
``split_sizes``   quora_qqp only; it or ``split_ids`` is required there. ``{valid: int,
                  test: int}`` (a ``train`` key may be present, as null): Quora has no
                  official split, so the duplicate pairs are shuffled with ``seed`` and the
                  first ``valid`` go to valid, the next ``test`` to test, the rest to train.
``split_ids``     quora_qqp only, instead of ``split_sizes``: a given split (the paper's is
                  not published), ``{valid: FILE, test: FILE}``, each file one row id (the
                  TSV's ``id`` column) a line; the pairs they list form valid and test, the
                  other pairs train. An id of no kept pair (unknown, not a duplicate, an empty
                  question) or listed twice is an error naming the id file and line. The files'
                  SHA-256 go to stats.json as ``split_ids``.

Cleaning per format (following the pipelines the paper's numbers come from)
-------------------------------------------------------------------------
* yelp_he2019 / yahoo_he2019: DELLA's ``VAEDataset``: ``line.strip()``, empty lines skipped,
  ``line.split('\\t')[-1]`` (a Yahoo line without a tab is kept whole). Yelp's star label (the
  field before the tab, validated as 0-4; see ``bad_labels``) is kept as the record's
  ``labels.review_label``; with ``factors: true`` the generated data's
  ``{dataset}.{split}.factors.jsonl`` members add the generator's factors (``business``,
  ``topic``, ``persona``) to ``labels`` line by line.
* ptb_mikolov: each line stripped of the leading/trailing space Mikolov's files carry.
* snli_1.0: ``dev`` is used as valid. The language-modelling sentences are the premise and
  hypothesis of every pair whose gold_label is not ``-`` (no annotator majority), de-duplicated
  within the split in order of first appearance (each premise recurs for ~3 hypotheses),
  lower-cased and tokenised by :func:`snli_tokenize` (punctuation split off, ``n't`` and
  ``'s``-style clitics split as in PTB). The raw sentences are cased and untokenised; this
  matches the lower-cased, tokenised one-sentence-per-line files that VAE work (Li et al. 2019,
  Optimus) uses, whose exact recipe is not published.
* cnn_dailymail_see2017: as HuggingFace ``cnn_dailymail`` 3.0.0: lines stripped,
  :func:`fix_missing_period` on every line, article = non-highlight lines joined with ``' '``,
  highlights joined with ``'\\n'``; text stays cased. Splits come from
  ``url_lists/all_{train,val,test}.txt`` (story file = sha1(url)), in url-list order. Stories
  with an empty article (114 in the real data) or no highlights are skipped and counted.
  Read from Hugging Face's parquet copy (:mod:`della.data.hf_parquet`), the copy's rows are
  put in url-list order by their ``id``; the stories its builder left out (those same empty
  ones) are counted as ``not_in_hf_copy``.
* writingprompts_fan2018: line *i* of ``.wp_source`` pairs with line *i* of ``.wp_target``;
  ``<newline>`` is replaced by ``'\\n'`` in both, as DELLA's ``WPDataset`` does; edge
  whitespace is stripped; empty pairs are skipped and counted.
* quora_qqp: rows with an empty question are skipped and counted, non-duplicates are dropped
  (counted as ``not_duplicate``), duplicates become ``{source: question1, target: question2}``.

Order of the steps: read and clean (Quora: split) -> ``max_length`` filter -> ``max_examples``
subsample -> write. ``stats.json`` counts what was written; its average lengths
(whitespace tokens; ``avg_len_text`` is the source length for conditional data) are over the
three splits together, and ``skipped`` maps each reason that occurred (empty_line,
no_gold_label, empty_sentence, duplicate_sentence, empty_article, empty_highlights, not_in_hf_copy,
empty_pair, empty_question, not_duplicate, too_long, bad_label) to its count over all splits; ``subsample`` records the
examples available per split before the subsample, ``max_examples``, ``max_length`` and the seed,
and ``raw_files`` (with ``--download-report``) each raw file's SHA-256 and whether the config
pinned it. Malformed raw data raises
:class:`~della.data.raw.DataFormatError` naming file and line; only the irregularities the real
data is known to contain are skipped and counted. The whole dataset is held in memory (the
largest, CNN/DM, is about 1.3 GB of text at paper scale).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from della.data import hf_parquet, raw
from della.data.raw import DataFormatError
from della.io import atomic_write_text

__all__ = ["FORMATS", "SPLITS", "fix_missing_period", "main", "preprocess_dataset", "snli_tokenize"]

SPLITS = ("train", "valid", "test")
UNCONDITIONAL, CONDITIONAL = "unconditional", "conditional"
LENGTH_UNIT = "whitespace tokens"
STATS_FILE = "stats.json"
#: Digits kept in the average lengths of stats.json.
STATS_DECIMALS = 2

Example = dict[str, str | dict]  # text fields, and `labels` where the data has them
Splits = dict[str, list[Example]]
Loader = Callable[[Path, dict, Counter], Splits]


# --- cleaning helpers ------------------------------------------------------------------------

#: Line endings after which HuggingFace's cnn_dailymail adds no period.
CNN_END_TOKENS = (".", "!", "?", "...", "'", "`", '"', "\u2019", "\u201d", ")")


def fix_missing_period(line: str) -> str:
    """Append ``" ."`` to a non-empty line that lacks a sentence end (HF cnn_dailymail 3.0.0).

    Image captions and highlights in the stories often lack a final period; without one the
    joined article would run sentences together.
    """
    if "@highlight" in line or not line or line.endswith(CNN_END_TOKENS):
        return line
    return line + " ."


# Order matters: a number with a decimal point or thousands comma stays one token; a word
# before "n't" is cut there ("don't" -> "do n't"); clitics ('s, 're, ...) and punctuation are
# tokens of their own; hyphenated words stay whole.
_SNLI_TOKEN = re.compile(r"\d+(?:[.,]\d+)+|\w+(?=n't)|n't|'\w+|\w+(?:-\w+)*|[^\w\s]")


def snli_tokenize(sentence: str) -> str:
    """Lower-case and tokenise a raw SNLI sentence: ``"A man's dog, running."`` ->
    ``"a man 's dog , running ."``."""
    return " ".join(_SNLI_TOKEN.findall(sentence.lower()))


# --- loaders: raw files -> {split: [example, ...]} ---------------------------------------------


def _load_lines(files: dict[str, tuple[str, raw.Lines]], clean: Callable[[str], str], skipped: Counter) -> Splits:
    """Shared by the one-text-per-line formats: clean each line, skip (and count) empty ones."""
    splits: Splits = {}
    for split, (_, lines) in files.items():
        texts = [clean(line) for _, line in lines]
        skipped["empty_line"] += sum(1 for text in texts if not text)
        splits[split] = [{"text": text} for text in texts if text]
    return splits


def _della_line(line: str) -> str:
    """DELLA's VAEDataset cleaning: strip, keep what follows the last tab (stripped again, so a
    stray space after the tab does not start the text)."""
    return line.strip().split("\t")[-1].strip()


#: He et al.'s Yelp star labels (``label<TAB>text``): 0-4.
YELP_REVIEW_LABELS = range(5)
#: Where the probe's labels go in a processed record (docs/interfaces.md).
LABELS_KEY = "labels"
#: ``bad_labels``: what a Yelp line without a valid ``label<TAB>`` prefix does.
BAD_LABEL_ACTIONS = ("error", "skip")


def _review_label(line: str) -> tuple[int | None, str]:
    """Yelp's star label from ``label<TAB>text``: ``(label, "")``, or ``(None, what is wrong)``
    for a line without a tab or with a label outside 0-4."""
    value, tab, _ = line.strip().partition("\t")
    if not tab:
        return None, "no label: expected '<label>\\t<text>'"
    value = value.strip()
    if not (value.isdigit() and int(value) in YELP_REVIEW_LABELS):
        return None, (f"Yelp label {value!r} is not one of {YELP_REVIEW_LABELS.start}..{YELP_REVIEW_LABELS.stop - 1}")
    return int(value), ""


def _load_he2019(dataset: str, raw_dir: Path, settings: dict, skipped: Counter) -> Splits:
    """DELLA's cleaning of each line; every record keeps its labels: Yelp's star label as
    ``review_label``, and with ``factors: true`` the generator's factors of the line. A Yelp line
    without a valid label is an error, or with ``bad_labels: skip`` skipped and counted."""
    files = raw.read_he2019(raw_dir, dataset, SPLITS)
    factors = raw.read_he2019_factors(raw_dir, dataset, SPLITS) if settings["factors"] else {}
    splits: Splits = {}
    for split, (label, lines) in files.items():
        line_labels: list[dict] = [{} for _ in lines]
        if split in factors:
            factors_label, records = factors[split]
            if len(records) != len(lines):
                raise DataFormatError(
                    f"{factors_label}: {len(records)} lines of factors for the {len(lines)} "
                    f"lines of {label}; line i must hold the factors of text line i"
                )
            for labels, (_, record) in zip(line_labels, records, strict=True):
                labels.update(record)
        examples = []
        for labels, (number, line) in zip(line_labels, lines, strict=True):
            text = _della_line(line)
            if not text:
                skipped["empty_line"] += 1
                continue
            if dataset == "yelp":
                review_label, problem = _review_label(line)
                if review_label is None and settings["bad_labels"] == "skip":
                    skipped["bad_label"] += 1
                    continue
                if review_label is None:
                    raise DataFormatError(
                        f"{label}:{number}: {problem} (preprocess.bad_labels: skip skips and counts such lines)"
                    )
                labels["review_label"] = review_label
            examples.append({"text": text, LABELS_KEY: labels} if labels else {"text": text})
        splits[split] = examples
    return splits


def _load_ptb(raw_dir: Path, settings: dict, skipped: Counter) -> Splits:
    reader = hf_parquet.read_ptb if hf_parquet.copy_in(raw_dir, raw.PTB_ARCHIVE) else raw.read_ptb
    return _load_lines(reader(raw_dir, SPLITS), str.strip, skipped)


SNLI_FILE_SPLITS = {"train": "train", "valid": "dev", "test": "test"}
SNLI_NO_GOLD_LABEL = "-"


def _load_snli(raw_dir: Path, settings: dict, skipped: Counter) -> Splits:
    splits: Splits = {}
    from_hf = hf_parquet.copy_in(raw_dir, raw.SNLI_ARCHIVE) is not None
    for split, file_split in SNLI_FILE_SPLITS.items():
        _, records = hf_parquet.read_snli(raw_dir, split) if from_hf else raw.read_snli(raw_dir, file_split)
        seen: dict[str, None] = {}  # an ordered set
        for _, record in records:
            if record["gold_label"] == SNLI_NO_GOLD_LABEL:
                skipped["no_gold_label"] += 1
                continue
            for sentence in (record["sentence1"], record["sentence2"]):
                text = snli_tokenize(sentence)
                if not text:
                    skipped["empty_sentence"] += 1
                elif text in seen:
                    skipped["duplicate_sentence"] += 1
                else:
                    seen[text] = None
        splits[split] = [{"text": text} for text in seen]
    return splits


CNN_DM_FILE_SPLITS = {"train": "train", "valid": "val", "test": "test"}


def _story_to_example(lines: list[str]) -> tuple[str, str]:
    """Article and highlights of a story, as HF cnn_dailymail 3.0.0 ``_get_art_abs``."""
    article_lines, highlights = [], []
    next_is_highlight = False
    for line in (fix_missing_period(line.strip()) for line in lines):
        if not line:
            continue
        if line.startswith("@highlight"):
            next_is_highlight = True
        elif next_is_highlight:
            highlights.append(line)
        else:
            article_lines.append(line)
    return " ".join(article_lines), "\n".join(highlights)


#: Why a url-list story is missing from Hugging Face's copy: its builder leaves out the stories
#: with an empty article or no highlights (what the archives' layouts count as empty_article and
#: empty_highlights).
NOT_IN_HF_COPY = "not_in_hf_copy"


def _hf_cnn_dm_stories(
    raw_dir: Path, story_ids: dict[str, list[tuple[str, int]]], url_lists: dict
) -> dict[str, tuple[str, str]]:
    """``{story id: (article, highlights)}`` from the Hugging Face copy, each row checked to be a
    story of its split's url list (a copy of another split or version is no copy of these)."""
    stories = {}
    for split, rows in hf_parquet.read_cnn_dm(raw_dir).items():
        listed = {story_id for story_id, _ in story_ids[split]}
        for path, row_number, row in rows:
            if row["id"] not in listed:
                raise DataFormatError(
                    f"{path}: row {row_number}: story {row['id']} is not in the {split} split's "
                    f"url list {url_lists[split][0]}"
                )
            stories[row["id"]] = (row["article"], row["highlights"])
    return stories


def _load_cnn_dm(raw_dir: Path, settings: dict, skipped: Counter) -> Splits:
    url_lists = {
        split: raw.read_cnn_dm_url_list(raw_dir, file_split) for split, file_split in CNN_DM_FILE_SPLITS.items()
    }
    story_ids = {
        split: [(hashlib.sha1(url.encode("utf-8")).hexdigest(), n) for n, url in urls]
        for split, (_, urls) in url_lists.items()
    }
    hf_copy = hf_parquet.copy_in(raw_dir, raw.CNN_DM_ARCHIVES["cnn"][0])
    if hf_copy is not None:
        # The copy's rows are in its builder's order; the url lists put them back in theirs, so
        # that the records, and the seeded subsample of them, are those of the archives.
        stories = _hf_cnn_dm_stories(raw_dir, story_ids, url_lists)
    else:
        wanted = {story_id for ids in story_ids.values() for story_id, _ in ids}
        stories = {story.story_id: _story_to_example(story.lines) for story in raw.iter_cnn_dm_stories(raw_dir, wanted)}
        archives = " or ".join(raw.Packed(raw_dir, name).where(folder) for name, folder in raw.CNN_DM_ARCHIVES.values())
    splits: Splits = {}
    for split, ids in story_ids.items():
        label = url_lists[split][0]
        examples = []
        for story_id, line_number in ids:
            if story_id not in stories and hf_copy is not None:
                skipped[NOT_IN_HF_COPY] += 1
                continue
            if story_id not in stories:
                raise DataFormatError(f"{label}:{line_number}: no story {story_id}.story in {archives}")
            article, highlights = stories[story_id]
            if not article:
                skipped["empty_article"] += 1
            elif not highlights:
                skipped["empty_highlights"] += 1
            else:
                examples.append({"source": article, "target": highlights})
        splits[split] = examples
    return splits


WP_NEWLINE = "<newline>"


def _load_writingprompts(raw_dir: Path, settings: dict, skipped: Counter) -> Splits:
    splits: Splits = {}
    for split, pairs in raw.read_writingprompts(raw_dir, SPLITS).items():
        examples = []
        for _, prompt, story in pairs:
            source = prompt.replace(WP_NEWLINE, "\n").strip()
            target = story.replace(WP_NEWLINE, "\n").strip()
            if source and target:
                examples.append({"source": source, "target": target})
            else:
                skipped["empty_pair"] += 1
        splits[split] = examples
    return splits


QUORA_HELD_OUT = ("valid", "test")


def _quora_split_by_sizes(label: str, n_pairs: int, settings: dict) -> dict[str, list[int]]:
    """The pipeline's own split: the pairs shuffled with the seed, the first ``valid`` to valid,
    the next ``test`` to test, the rest to train."""
    sizes = settings["split_sizes"]
    n_held_out = sizes["valid"] + sizes["test"]
    if n_held_out >= n_pairs:
        raise ValueError(f"quora split_sizes {sizes} leave no training pairs: {label} has {n_pairs} duplicate pairs")
    order = list(range(n_pairs))
    random.Random(f"{settings['seed']}:quora-split").shuffle(order)
    return {"valid": order[: sizes["valid"]], "test": order[sizes["valid"] : n_held_out], "train": order[n_held_out:]}


def _quora_split_by_ids(
    label: str, rows: list[tuple[int, dict]], pair_ids: list[str], id_files: dict[str, str]
) -> dict[str, list[int]]:
    """A given split: the valid and test files list row ids (the TSV's ``id`` column), the
    other pairs are train. An id that is no kept pair, or listed twice, is an error naming the
    id file and line."""
    pair_of_id = {row_id: i for i, row_id in enumerate(pair_ids)}
    line_of_id = {row["id"]: line for line, row in rows}
    listed: dict[str, str] = {}  # row id -> where it is listed
    held: dict[str, list[int]] = {}
    for split in QUORA_HELD_OUT:
        id_label, ids = raw.read_item_list(Path(id_files[split]))
        held[split] = []
        for number, row_id in ids:
            if row_id in listed:
                raise DataFormatError(f"{id_label}:{number}: row id {row_id} is listed already ({listed[row_id]})")
            if row_id not in pair_of_id:
                why = (
                    f"{label}:{line_of_id[row_id]} is no duplicate pair with two questions"
                    if row_id in line_of_id
                    else f"{label} has no row with this id"
                )
                raise DataFormatError(f"{id_label}:{number}: row id {row_id}: {why}")
            listed[row_id] = f"{id_label}:{number}"
            held[split].append(pair_of_id[row_id])
    held["train"] = sorted(set(range(len(pair_ids))) - {i for split in QUORA_HELD_OUT for i in held[split]})
    if not held["train"]:
        raise ValueError(f"quora split_ids leave no training pairs: they list all {len(pair_ids)} pairs of {label}")
    return held


def _load_quora(raw_dir: Path, settings: dict, skipped: Counter) -> Splits:
    label, rows = (hf_parquet.read_quora if hf_parquet.copy_in(raw_dir, raw.QUORA_FILE) else raw.read_quora)(raw_dir)
    duplicates, pair_ids = [], []
    for _, row in rows:
        if not row["question1"].strip() or not row["question2"].strip():
            skipped["empty_question"] += 1
        elif row["is_duplicate"] != "1":
            skipped["not_duplicate"] += 1
        else:
            duplicates.append({"source": row["question1"], "target": row["question2"]})
            pair_ids.append(row["id"])
    if settings["split_ids"] is not None:
        held = _quora_split_by_ids(label, rows, pair_ids, settings["split_ids"])
    else:
        held = _quora_split_by_sizes(label, len(duplicates), settings)
    # Each split keeps the file order, so a split does not depend on how it was drawn.
    return {split: [duplicates[i] for i in sorted(held[split])] for split in SPLITS}


@dataclass(frozen=True)
class FormatSpec:
    task: str
    load: Loader


FORMATS: dict[str, FormatSpec] = {
    "yelp_he2019": FormatSpec(UNCONDITIONAL, functools.partial(_load_he2019, "yelp")),
    "yahoo_he2019": FormatSpec(UNCONDITIONAL, functools.partial(_load_he2019, "yahoo")),
    "ptb_mikolov": FormatSpec(UNCONDITIONAL, _load_ptb),
    "snli_1.0": FormatSpec(UNCONDITIONAL, _load_snli),
    "cnn_dailymail_see2017": FormatSpec(CONDITIONAL, _load_cnn_dm),
    "writingprompts_fan2018": FormatSpec(CONDITIONAL, _load_writingprompts),
    "quora_qqp": FormatSpec(CONDITIONAL, _load_quora),
}


# --- settings -----------------------------------------------------------------------------------

SETTINGS_KEYS = (
    "format",
    "task",
    "max_examples",
    "seed",
    "max_length",
    "split_sizes",
    "split_ids",
    "factors",
    "bad_labels",
)
YELP_FORMAT = "yelp_he2019"
HE2019_FORMATS = ("yelp_he2019", "yahoo_he2019")
QUORA_FORMAT = "quora_qqp"


def _check_count(value, what: str, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer{' or null' if allow_none else ''}, got {value!r}")


def _per_split(name: str, key: str, value, scalar: bool) -> dict[str, int | None]:
    """``{split: int|null}`` from a mapping naming some splits (the rest null) or, where
    ``scalar``, one int|null for every split."""
    if scalar and not isinstance(value, dict):
        _check_count(value, f"{name}: {key}", allow_none=True)
        return dict.fromkeys(SPLITS, value)
    value = value or {}
    if not isinstance(value, dict) or set(value) - set(SPLITS):
        raise ValueError(
            f"{name}: {key} must map some of {', '.join(SPLITS)} to int|null"
            f"{' (or be one int|null)' if scalar else ''}, got {value!r}"
        )
    for split in SPLITS:
        _check_count(value.get(split), f"{name}: {key}.{split}", allow_none=True)
    return {split: value.get(split) for split in SPLITS}


def _validate_settings(name: str, settings: dict) -> dict:
    """Check the settings and return them with defaults filled in."""
    if not isinstance(settings, dict):
        raise ValueError(f"settings for {name} must be a mapping, got {type(settings).__name__}")
    unknown = sorted(set(settings) - set(SETTINGS_KEYS))
    if unknown:
        raise ValueError(
            f"unknown settings key(s) for {name}: {', '.join(unknown)} (known: {', '.join(SETTINGS_KEYS)})"
        )
    fmt = settings.get("format")
    if fmt not in FORMATS:
        raise ValueError(f"settings for {name}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if settings.get("task") != FORMATS[fmt].task:
        raise ValueError(
            f"settings for {name}: format {fmt} is {FORMATS[fmt].task}, but task is {settings.get('task')!r}"
        )
    checked = {
        "format": fmt,
        "task": settings["task"],
        "seed": settings.get("seed", 0),
        "max_examples": _per_split(name, "max_examples", settings.get("max_examples"), scalar=False),
        "max_length": _per_split(name, "max_length", settings.get("max_length"), scalar=True),
    }
    _check_count(checked["seed"], f"{name}: seed", allow_none=False)
    checked["factors"] = settings.get("factors", False)
    if not isinstance(checked["factors"], bool):
        raise ValueError(f"{name}: factors must be true or false, got {checked['factors']!r}")
    if checked["factors"] and fmt not in HE2019_FORMATS:
        raise ValueError(
            f"{name}: factors applies to {' and '.join(HE2019_FORMATS)} only (the generated data's "
            f"factor files), not {fmt}"
        )
    checked["bad_labels"] = settings.get("bad_labels", "error")
    if checked["bad_labels"] not in BAD_LABEL_ACTIONS:
        raise ValueError(
            f"{name}: bad_labels must be one of {', '.join(BAD_LABEL_ACTIONS)}, got {checked['bad_labels']!r}"
        )
    if "bad_labels" in settings and fmt != YELP_FORMAT:
        raise ValueError(f"{name}: bad_labels applies to {YELP_FORMAT} only (the format with labels), not {fmt}")
    checked["split_ids"] = None
    if fmt == QUORA_FORMAT and "split_ids" in settings:
        id_files = settings["split_ids"]
        if "split_sizes" in settings:
            raise ValueError(f"{name}: split_ids and split_sizes are two ways to split {QUORA_FORMAT}; give one")
        if (
            not isinstance(id_files, dict)
            or set(id_files) != set(QUORA_HELD_OUT)
            or not all(isinstance(path, str) for path in id_files.values())
        ):
            raise ValueError(
                f"{name}: split_ids must be {{valid: FILE, test: FILE}} (files of row ids, one a "
                f"line; train: the rest), got {id_files!r}"
            )
        checked["split_ids"] = dict(id_files)
    elif fmt == QUORA_FORMAT:
        sizes = settings.get("split_sizes")
        # train may be named only as null: it is whatever valid and test leave over.
        if (
            not isinstance(sizes, dict)
            or not set(QUORA_HELD_OUT) <= set(sizes) <= set(SPLITS)
            or sizes.get("train") is not None
        ):
            raise ValueError(
                f"{name}: {QUORA_FORMAT} needs split_sizes: {{valid: int, test: int}} "
                f"(train: the rest), or split_ids: {{valid: FILE, test: FILE}}, got {sizes!r}"
            )
        for split in QUORA_HELD_OUT:
            _check_count(sizes[split], f"{name}: split_sizes.{split}", allow_none=False)
        checked["split_sizes"] = {"valid": sizes["valid"], "test": sizes["test"]}
    elif "split_sizes" in settings or "split_ids" in settings:
        raise ValueError(f"{name}: split_sizes and split_ids only apply to {QUORA_FORMAT} (there is an official split)")
    return checked


# --- the common tail: filter, subsample, stats, atomic write --------------------------------

TEXT_KEYS = ("text", "source", "target")


def _num_tokens(example: Example) -> int:
    return sum(len(example[key].split()) for key in TEXT_KEYS if key in example)


def _subsample(examples: list[Example], limit: int | None, seed: int, split: str) -> list[Example]:
    """A seeded random subset of at most ``limit`` examples, in their original order."""
    if limit is None or limit >= len(examples):
        return examples
    chosen = random.Random(f"{seed}:{split}").sample(range(len(examples)), limit)
    return [examples[i] for i in sorted(chosen)]


def _average(values: list[int]) -> float:
    return round(sum(values) / len(values), STATS_DECIMALS)


def _label_counts(examples: list[Example]) -> dict[str, dict[str, int]]:
    """``{label name: {value: count}}`` over `examples` (the probe's classes; empty without labels)."""
    counts: dict[str, Counter] = {}
    for example in examples:
        for name, value in example.get(LABELS_KEY, {}).items():
            counts.setdefault(name, Counter())[str(value)] += 1
    return {name: dict(sorted(c.items())) for name, c in sorted(counts.items())}


def _overlap(splits: Splits, task: str) -> dict:
    """How many valid and test examples occur verbatim in the training split: the text (an
    unconditional task), or the target and the whole source-target pair (a conditional one). A
    real dataset's overlap is a fact to report beside its numbers (a decoder can score such a
    sentence from memory); a generated dataset's is a bug in its generator."""
    keys = (
        {"text": lambda e: e["text"]}
        if task == UNCONDITIONAL
        else {"target": lambda e: e["target"], "pair": lambda e: (e["source"], e["target"])}
    )
    overlap = {"compared": sorted(keys)}
    for split in SPLITS[1:]:
        entry = {"examples": len(splits[split])}
        for what, key in keys.items():
            seen = {key(e) for e in splits["train"]}
            entry[f"{what}_in_train"] = sum(key(e) in seen for e in splits[split])
        overlap[split] = entry
    return overlap


def _stats(name: str, splits: Splits, task: str, skipped: Counter, checked: dict, available: dict) -> dict:
    """Table 7 numbers; the average lengths are over all three splits together. ``subsample``
    records how the splits were cut from the ``available`` examples (after cleaning and the
    length filter), so that a size differing from the paper's can be traced to its setting."""
    everything = [example for split in SPLITS for example in splits[split]]
    text_key = "text" if task == UNCONDITIONAL else "source"
    return {
        "dataset": name,
        "splits": {split: len(splits[split]) for split in SPLITS},
        "avg_len_text": _average([len(e[text_key].split()) for e in everything]),
        "avg_len_target": _average([len(e["target"].split()) for e in everything]) if task == CONDITIONAL else None,
        "length_unit": LENGTH_UNIT,
        "skipped": {reason: n for reason, n in sorted(skipped.items()) if n},
        "seed": checked["seed"],
        "labels": _label_counts(splits["train"]),
        "overlap_with_train": _overlap(splits, task),
        "subsample": {
            "available": available,
            "max_examples": checked["max_examples"],
            "max_length": checked["max_length"],
            "seed": checked["seed"],
        },
    }


#: What stats.json records of each raw file; ``layout`` (archive, file or extracted) is in the
#: reports written since extracted data is read, so an older report may lack it.
RAW_FILE_KEYS, RAW_FILE_LAYOUT_KEY = ("name", "sha256", "pinned"), "layout"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _raw_files(download_report: Path | None) -> list[dict] | None:
    """Name, SHA-256, pinned flag and layout of each raw file, from the download report (the
    SHA-256 of an extracted archive is its tree digest, della.data.download.tree_digest)."""
    if download_report is None:
        return None
    try:
        report = json.loads(Path(download_report).read_text(encoding="utf-8"))
        return [
            {key: entry[key] for key in RAW_FILE_KEYS}
            | ({RAW_FILE_LAYOUT_KEY: entry[RAW_FILE_LAYOUT_KEY]} if RAW_FILE_LAYOUT_KEY in entry else {})
            for entry in report["files"]
        ]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{download_report}: not a download report ({type(exc).__name__}: {exc})") from None


def preprocess_dataset(
    name: str, raw_dir: Path, out_dir: Path, settings: dict, download_report: Path | None = None
) -> dict:
    """Read ``raw_dir`` in the format ``settings['format']``, write the three splits and
    ``stats.json`` to ``out_dir`` and return the stats.

    Everything is read and checked before the first file is written (a failure there leaves
    ``out_dir`` untouched); then an old ``stats.json`` is removed, each split replaces its file
    atomically and ``stats.json`` is written last, so a ``stats.json`` always sits beside a
    complete, consistent set of splits.
    ``download_report`` (written by :mod:`della.data.download`) adds the raw files' checksums to
    the stats as ``raw_files``. Raises DataFormatError for broken raw data and ValueError for bad
    settings.
    """
    checked = _validate_settings(name, settings)
    raw_files = _raw_files(download_report)
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    skipped: Counter = Counter()
    spec = FORMATS[checked["format"]]
    splits = spec.load(raw_dir, checked, skipped)
    available = {}
    for split in SPLITS:
        examples = splits[split]
        max_length = checked["max_length"][split]
        if max_length is not None:
            kept = [e for e in examples if _num_tokens(e) < max_length]
            skipped["too_long"] += len(examples) - len(kept)
            examples = kept
        available[split] = len(examples)
        splits[split] = _subsample(examples, checked["max_examples"][split], checked["seed"], split)
        if not splits[split]:
            raise ValueError(f"{name}: split {split} is empty after preprocessing {raw_dir}")
    stats = _stats(name, splits, spec.task, skipped, checked, available)
    if raw_files is not None:
        stats["raw_files"] = raw_files
    if checked["split_ids"] is not None:
        stats["split_ids"] = {
            split: {"file": path, "sha256": _sha256(Path(path))} for split, path in checked["split_ids"].items()
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    # A stats.json from an earlier run goes first: while it is absent the folder is known to be
    # incomplete, and once written again every split beside it is from this run.
    (out_dir / STATS_FILE).unlink(missing_ok=True)
    for split in SPLITS:
        lines = "".join(json.dumps(example, ensure_ascii=False) + "\n" for example in splits[split])
        atomic_write_text(out_dir / f"{split}.jsonl", lines)
    atomic_write_text(out_dir / STATS_FILE, json.dumps(stats, indent=2) + "\n")
    return stats


# --- command line -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``--dataset NAME --raw DIR --out DIR --settings JSON``; prints a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="dataset id, e.g. yelp")
    parser.add_argument("--raw", required=True, type=Path, help="folder with the raw download")
    parser.add_argument("--out", required=True, type=Path, help="folder for {split}.jsonl and stats.json")
    parser.add_argument("--settings", required=True, help="the dataset's config section as a JSON object")
    parser.add_argument(
        "--download-report",
        type=Path,
        default=None,
        help="della-bench download's report; its checksums are recorded in stats.json",
    )
    args = parser.parse_args(argv)
    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as exc:
        parser.error(f"--settings is not valid JSON: {exc}")
    try:
        stats = preprocess_dataset(args.dataset, args.raw, args.out, settings, args.download_report)
    except (DataFormatError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sizes = " ".join(f"{split}={n}" for split, n in stats["splits"].items())
    target = "" if stats["avg_len_target"] is None else f" avg_len_target={stats['avg_len_target']}"
    print(
        f"{args.dataset}: {sizes} avg_len_text={stats['avg_len_text']}{target} skipped={stats['skipped']} -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
