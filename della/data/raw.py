"""Readers for the seven datasets' raw download formats.

Each reader takes the files exactly as a download puts them on disk and reads the members
straight out of the archives with :mod:`tarfile`, :mod:`zipfile` and :mod:`csv`: nothing is
extracted, so a preprocessing run cannot leave half-extracted trees behind and the archive
checksum is the only thing that needs checking. Data extracted long ago is read too: where an
archive is absent, its members are read from the tree it extracts to, ``raw_dir/<member>``
(:class:`Packed`), and the records are the same. Hugging Face's parquet copies of four of the
datasets, a third layout, are read by :mod:`della.data.hf_parquet`.

The formats (researched in the project's design note ``dataset-formats.md``):

* Yelp / Yahoo, He et al. (2019): ``datasets.tar.gz`` -> ``{yelp,yahoo}_data/{name}.{split}.txt``,
  one document per line; Yelp lines are ``label<TAB>text`` (label 0..4), Yahoo lines have no
  label; lower-cased PTB-style tokens, ``_UNK`` for out-of-vocabulary words.
* PTB, Mikolov: ``simple-examples.tgz`` -> ``./simple-examples/data/ptb.{split}.txt``, each line
  ``" " + tokens + " "``; no punctuation, numbers ``N``, ``<unk>``.
* SNLI 1.0: ``snli_1.0.zip`` -> ``snli_1.0/snli_1.0_{train,dev,test}.{jsonl,txt}`` (+ README and
  Mac artefacts ``Icon\r``, ``__MACOSX/``); gold_label ``-`` = no annotator majority.
* CNN/DailyMail, See et al. (2017): ``{cnn,dailymail}_stories.tgz`` ->
  ``{cnn,dailymail}/stories/<sha1(url)>.story`` (paragraphs, then ``@highlight`` blocks), plus
  ``url_lists/all_{train,val,test}.txt``.
* WritingPrompts, Fan et al. (2018): ``writingPrompts.tar.gz`` ->
  ``writingPrompts/{split}.wp_{source,target}``, line-aligned; ``<newline>`` tokens in stories.
* Quora: ``quora_duplicate_questions.tsv``, header ``id qid1 qid2 question1 question2
  is_duplicate``, tab-separated with CSV quoting.

Readers only *parse*: they decode, split lines/columns and check the structure. Choices about
which records to keep (labels, empty articles, duplicates, ...) belong to
:mod:`della.data.preprocess`. Every structural problem raises :class:`DataFormatError` whose
message starts with the file (``archive[member]`` for archive members) and, where there is
one, the 1-based line number, so a broken download points at the exact place. Text is UTF-8: a
file starting with a UTF-8 byte-order mark is read without it, one starting with a UTF-16 or
UTF-32 mark is an error that says so and how to convert it.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DataFormatError",
    "CNN_DM_ARCHIVES",
    "CNN_DM_URL_LIST",
    "HE2019_ARCHIVE",
    "read_he2019_factors",
    "Lines",
    "Packed",
    "PTB_ARCHIVE",
    "QUORA_COLUMNS",
    "QUORA_FILE",
    "SNLI_ARCHIVE",
    "SNLI_JSONL_KEYS",
    "SNLI_TXT_HEADER",
    "WP_ARCHIVE",
    "Story",
    "iter_cnn_dm_stories",
    "member_label",
    "read_cnn_dm_url_list",
    "read_item_list",
    "read_he2019",
    "read_ptb",
    "read_quora",
    "read_snli",
    "read_writingprompts",
]


class DataFormatError(ValueError):
    """A raw file does not have the structure its format promises.

    The message starts with ``file`` or ``file:line`` so that the broken spot can be found.
    """


# --- file names of the real downloads (same names in sample_data/) -------------------------

#: He et al. (2019) tarball, one per dataset, holding ``{name}_data/{name}.{split}.txt``.
HE2019_ARCHIVE = "datasets.tar.gz"
#: Mikolov's PTB tarball; members carry a ``./`` prefix.
PTB_ARCHIVE = "simple-examples.tgz"
PTB_MEMBER = "./simple-examples/data/ptb.{split}.txt"
SNLI_ARCHIVE = "snli_1.0.zip"
SNLI_MEMBER = "snli_1.0/snli_1.0_{split}.jsonl"
#: jsonl keys in the order the real files write them.
SNLI_JSONL_KEYS = (
    "annotator_labels",
    "captionID",
    "gold_label",
    "pairID",
    "sentence1",
    "sentence1_binary_parse",
    "sentence1_parse",
    "sentence2",
    "sentence2_binary_parse",
    "sentence2_parse",
)
#: The 14 columns of ``snli_1.0_{split}.txt`` (tab-separated, no quoting).
SNLI_TXT_HEADER = (
    "gold_label",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
    "captionID",
    "pairID",
    "label1",
    "label2",
    "label3",
    "label4",
    "label5",
)
#: ``publisher -> (archive, folder of .story files inside it)``; CNN first, as in the url lists.
CNN_DM_ARCHIVES = {
    "cnn": ("cnn_stories.tgz", "cnn/stories"),
    "dailymail": ("dailymail_stories.tgz", "dailymail/stories"),
}
CNN_DM_URL_LIST = "url_lists/all_{split}.txt"
WP_ARCHIVE = "writingPrompts.tar.gz"
WP_MEMBER = "writingPrompts/{split}.{side}"
QUORA_FILE = "quora_duplicate_questions.tsv"
QUORA_COLUMNS = ("id", "qid1", "qid2", "question1", "question2", "is_duplicate")

# Exceptions a damaged (truncated, corrupted) compressed archive raises while being read.
_ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError)


def member_label(archive: Path | str, member: str) -> str:
    """How messages name a member of an archive: ``archive[member]``."""
    return f"{archive}[{member}]"


def _normalise_member(name: str) -> str:
    """Member names compared without a ``./`` prefix or trailing slash (tar writes both)."""
    return posixpath.normpath(name)


# --- generic line decoding ----------------------------------------------------------------

#: Byte-order marks of encodings the readers do not take, longest first (UTF-32 LE's starts
#: with UTF-16 LE's): ``(mark, what the file is, iconv's name for it)``.
WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE", "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32 BE", "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE", "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE", "UTF-16"),
)


def _without_bom(first_line: bytes, label: str) -> bytes:
    """The first line without a UTF-8 byte-order mark (some editors write one; the text is UTF-8
    all the same, so it is accepted); a UTF-16 or UTF-32 one is an error saying what to do."""
    for mark, encoding, iconv_name in WIDE_BOMS:
        if first_line.startswith(mark):
            raise DataFormatError(
                f"{label}:1: {encoding} text (byte-order mark {mark.hex(' ').upper()}), not UTF-8: convert it with "
                f"`iconv -f {iconv_name} -t UTF-8 FILE > FILE.utf8` (a member of an archive: extract the archive, "
                "convert the file in place and keep the extracted files, docs/data.md)"
            )
    return first_line.removeprefix(codecs.BOM_UTF8)


def iter_decoded_lines(stream: Iterable[bytes], label: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line, decoded strictly as UTF-8.

    Lines keep their terminator so that csv can see quoted newlines. Decoding line by line
    (rather than opening the file in text mode) is what lets a bad byte be reported with its
    line number. A UTF-8 byte-order mark is dropped; a UTF-16/32 one is an error naming the
    encoding (:func:`_without_bom`).
    """
    for number, line in enumerate(stream, start=1):
        if number == 1:
            line = _without_bom(line, label)
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                f"{label}:{number}: not valid UTF-8 (byte {exc.start}: {line[exc.start : exc.start + 1]!r})"
            ) from None


def _split_lines(data: bytes, label: str) -> list[tuple[int, str]]:
    """All lines of a member, decoded, without terminators.

    Only ``\n`` ends a line (a stray ``\r`` inside a line must not shift the line numbers that
    messages report); a trailing ``\r`` is dropped.
    """
    pieces = data.split(b"\n")
    if pieces and pieces[-1] == b"":
        pieces.pop()  # the final newline ends the last line, it does not start another
    return [(n, line.rstrip("\r")) for n, line in iter_decoded_lines(pieces, label)]


# --- archive access -------------------------------------------------------------------------


def _iter_tar(archive: Path, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
    """Yield ``(normalised member name, content)`` for the regular files ``wanted`` accepts.

    The archive is read once, front to back, so a multi-gigabyte tarball is streamed rather
    than seeked in. Any damage (truncation, a corrupt gzip stream) becomes a DataFormatError
    naming the archive.
    """
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            for info in tar:
                name = _normalise_member(info.name)
                if info.isfile() and wanted(name):
                    handle = tar.extractfile(info)
                    assert handle is not None  # regular files always have content
                    yield name, handle.read()
    except _ARCHIVE_ERRORS as exc:
        raise DataFormatError(f"{archive}: cannot read archive ({type(exc).__name__}: {exc})") from None


def _read_tar_members(archive: Path, members: Iterable[str]) -> dict[str, bytes]:
    """Content of the named members; a missing member is an error."""
    wanted = {_normalise_member(m): m for m in members}
    found = {wanted[name]: data for name, data in _iter_tar(archive, lambda n: n in wanted)}
    missing = [m for m in wanted.values() if m not in found]
    if missing:
        raise DataFormatError(f"{archive}: missing member(s) {', '.join(missing)}")
    return found


def _read_zip_members(archive: Path, members: Iterable[str]) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(archive) as zf:
            found = {}
            for member in members:
                try:
                    found[member] = zf.read(member)
                except KeyError:
                    raise DataFormatError(f"{archive}: missing member {member}") from None
            return found
    except _ARCHIVE_ERRORS as exc:
        raise DataFormatError(f"{archive}: cannot read archive ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Packed:
    """The members of one archive in either of its layouts: the archive ``raw_dir/archive_name``
    when that file exists, else the tree it extracts to (member ``a/b.txt`` is the file
    ``raw_dir/a/b.txt``). Both give the same bytes, so the records cannot depend on the layout;
    messages name the archive member (``archive[member]``) or the extracted file."""

    raw_dir: Path
    archive_name: str

    @property
    def archive(self) -> Path:
        return self.raw_dir / self.archive_name

    @property
    def extracted(self) -> bool:
        return not self.archive.is_file()

    def path(self, member: str) -> Path:
        """Where the extracted layout keeps ``member``."""
        return self.raw_dir / _normalise_member(member)

    def label(self, member: str) -> str:
        return str(self.path(member)) if self.extracted else member_label(self.archive, member)

    def where(self, folder: str) -> str:
        """The archive, or the extracted folder: where a member of ``folder`` is looked for."""
        return str(self.path(folder)) if self.extracted else str(self.archive)

    def _not_found(self, path: Path, kind: str) -> DataFormatError:
        return DataFormatError(
            f"{path}: {kind} not found, and no archive {self.archive} to read it from "
            "(a dataset is read as its archives, as their extracted files or, for four datasets, "
            "as a Hugging Face parquet copy; docs/data.md)"
        )

    def read(self, members: Iterable[str]) -> dict[str, bytes]:
        """``{member: content}``; a missing member (or extracted file) is an error naming it."""
        if not self.extracted:
            read_archive = _read_zip_members if self.archive_name.endswith(".zip") else _read_tar_members
            return read_archive(self.archive, members)
        found = {}
        for member in members:
            path = self.path(member)
            if not path.is_file():
                raise self._not_found(path, "file")
            found[member] = path.read_bytes()
        return found

    def iter_folder(self, folder: str, wanted: Callable[[str], bool]) -> Iterator[tuple[str, bytes]]:
        """``(member name, content)`` of the regular files directly in ``folder`` that
        ``wanted`` (given the member name) accepts, in archive order or sorted by name."""
        if not self.extracted:
            yield from _iter_tar(self.archive, lambda name: posixpath.dirname(name) == folder and wanted(name))
            return
        directory = self.path(folder)
        if not directory.is_dir():
            raise self._not_found(directory, "folder")
        for name in sorted(entry.name for entry in os.scandir(directory) if entry.is_file()):
            member = f"{folder}/{name}"
            if wanted(member):
                yield member, (directory / name).read_bytes()


# --- He et al. (2019) Yelp / Yahoo ---------------------------------------------------------

Lines = list[tuple[int, str]]


def _read_line_members(packed: Packed, members: dict) -> dict:
    """``{key: (label, lines)}`` for ``{key: member}``, read in one pass over the archive."""
    data = packed.read(members.values())
    result = {}
    for split, member in members.items():
        label = packed.label(member)
        result[split] = (label, _split_lines(data[member], label))
    return result


def read_he2019(raw_dir: Path, dataset: str, splits: Iterable[str]) -> dict[str, tuple[str, Lines]]:
    """Lines of ``{dataset}_data/{dataset}.{split}.txt`` in ``datasets.tar.gz``.

    Returns ``{split: (member label, [(line_number, line), ...])}`` with terminators removed;
    the caller applies DELLA's cleaning. Yelp lines are ``label<TAB>text``, Yahoo lines plain
    text.
    """
    members = {split: f"{dataset}_data/{dataset}.{split}.txt" for split in splits}
    return _read_line_members(Packed(raw_dir, HE2019_ARCHIVE), members)


def read_he2019_factors(
    raw_dir: Path, dataset: str, splits: Iterable[str]
) -> dict[str, tuple[str, list[tuple[int, dict]]]]:
    """The generated data's ground-truth factors: ``{dataset}_data/{dataset}.{split}.factors.jsonl``
    in ``datasets.tar.gz``, line i a JSON object ``{factor: str|int}`` for text line i (the sample
    generator writes them; no real download has them). Returns ``{split: (member label,
    [(line_number, factors), ...])}``."""
    members = {split: f"{dataset}_data/{dataset}.{split}.factors.jsonl" for split in splits}
    result = {}
    for split, (label, lines) in _read_line_members(Packed(raw_dir, HE2019_ARCHIVE), members).items():
        records = []
        for number, line in lines:
            try:
                factors = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(f"{label}:{number}: invalid JSON ({exc.msg})") from None
            if not isinstance(factors, dict) or not all(
                isinstance(v, (str, int)) and not isinstance(v, bool) for v in factors.values()
            ):
                raise DataFormatError(f"{label}:{number}: expected a JSON object of string or integer factors")
            records.append((number, factors))
        result[split] = (label, records)
    return result


# --- PTB -------------------------------------------------------------------------------------


def read_ptb(raw_dir: Path, splits: Iterable[str]) -> dict[str, tuple[str, Lines]]:
    """Lines of Mikolov's ``ptb.{split}.txt`` (with their leading/trailing space kept)."""
    members = {split: PTB_MEMBER.format(split=split) for split in splits}
    return _read_line_members(Packed(raw_dir, PTB_ARCHIVE), members)


# --- SNLI ------------------------------------------------------------------------------------


def read_snli(raw_dir: Path, split: str) -> tuple[str, list[tuple[int, dict]]]:
    """Records of ``snli_1.0_{split}.jsonl`` (``split`` in train/dev/test).

    The jsonl is read rather than the txt because it is unambiguous JSON; both hold the same
    pairs. Each record must be a JSON object with at least ``gold_label``, ``sentence1`` and
    ``sentence2`` as strings.
    """
    packed = Packed(raw_dir, SNLI_ARCHIVE)
    member = SNLI_MEMBER.format(split=split)
    label = packed.label(member)
    records = []
    for number, line in _split_lines(packed.read([member])[member], label):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{label}:{number}: invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataFormatError(f"{label}:{number}: expected a JSON object")
        for key in ("gold_label", "sentence1", "sentence2"):
            if not isinstance(record.get(key), str):
                raise DataFormatError(f"{label}:{number}: missing or non-string key {key!r}")
        records.append((number, record))
    return label, records


# --- CNN / DailyMail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """One ``.story`` file: its sha1 name (without ``.story``), where it came from, its lines."""

    story_id: str
    label: str
    lines: list[str]


def read_item_list(path: Path) -> tuple[str, list[tuple[int, str]]]:
    """``(label, [(line_number, item), ...])`` of a file with one item per line (edge spaces
    stripped, blank lines left out): CNN/DM's url lists, Quora's split id lists."""
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    with path.open("rb") as handle:
        lines = [(n, line.strip()) for n, line in iter_decoded_lines(handle, str(path))]
    return str(path), [(n, item) for n, item in lines if item]


def read_cnn_dm_url_list(raw_dir: Path, split: str) -> tuple[str, list[tuple[int, str]]]:
    """``(line_number, url)`` of ``url_lists/all_{split}.txt`` (``split`` in train/val/test)."""
    return read_item_list(raw_dir / CNN_DM_URL_LIST.format(split=split))


def iter_cnn_dm_stories(raw_dir: Path, wanted_ids: set[str] | None = None) -> Iterator[Story]:
    """Stream the ``.story`` files of both archives, or of their extracted folders (CNN first).

    ``wanted_ids`` limits decoding to the stories a caller needs (the url lists name every
    story in the real data, but a subsample needs far fewer).
    """
    suffix = ".story"

    def wanted(name: str) -> bool:
        if not name.endswith(suffix):
            return False
        return wanted_ids is None or posixpath.basename(name)[: -len(suffix)] in wanted_ids

    for archive_name, folder in CNN_DM_ARCHIVES.values():
        packed = Packed(raw_dir, archive_name)
        for name, data in packed.iter_folder(folder, wanted):
            label = packed.label(name)
            lines = [line for _, line in _split_lines(data, label)]
            yield Story(posixpath.basename(name)[: -len(suffix)], label, lines)


# --- WritingPrompts ------------------------------------------------------------------------


def read_writingprompts(raw_dir: Path, splits: Sequence[str]) -> dict[str, list[tuple[int, str, str]]]:
    """``{split: [(line_number, prompt, story), ...]}`` from ``{split}.wp_source/.wp_target``.

    Line *i* of the source file is the prompt of line *i* of the target file, so the two files
    must have the same number of lines; otherwise the first unmatched line is reported.
    """
    members = {}
    for split in splits:
        for side in ("wp_source", "wp_target"):
            members[(split, side)] = WP_MEMBER.format(split=split, side=side)
    files = _read_line_members(Packed(raw_dir, WP_ARCHIVE), members)
    result = {}
    for split in splits:
        (source_label, sources), (target_label, targets) = files[(split, "wp_source")], files[(split, "wp_target")]
        if len(sources) != len(targets):
            longer, shorter = (
                (source_label, target_label) if len(sources) > len(targets) else (target_label, source_label)
            )
            first_unmatched = min(len(sources), len(targets)) + 1
            raise DataFormatError(
                f"{longer}:{first_unmatched}: no matching line in {shorter} "
                f"(source has {len(sources)} lines, target {len(targets)})"
            )
        result[split] = [(n, s, t) for (n, s), (_, t) in zip(sources, targets, strict=True)]
    return result


# --- Quora -----------------------------------------------------------------------------------


def read_quora(raw_dir: Path) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """Rows of ``quora_duplicate_questions.tsv`` as ``(first line of the row, {column: value})``.

    The file is tab-separated with CSV quoting (fields holding ``"`` or a newline are quoted,
    inner quotes doubled), so it is parsed with :mod:`csv`, never with ``str.split('\\t')``.
    The header must be the real one and every row must have all six columns.
    """
    path = raw_dir / QUORA_FILE
    label = str(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: file not found")
    rows: list[tuple[int, dict[str, str]]] = []
    with path.open("rb") as handle:
        lines = iter_decoded_lines(handle, label)
        # Not strict: like pandas.read_csv, a stray quote inside an unquoted field is literal.
        reader = csv.reader((line for _, line in lines), delimiter="\t", quotechar='"')
        previous_end = 0
        try:
            for fields in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if start == 1:
                    if tuple(fields) != QUORA_COLUMNS:
                        raise DataFormatError(f"{label}:1: header is {fields!r}, expected {list(QUORA_COLUMNS)!r}")
                    continue
                if not fields:
                    continue
                if len(fields) != len(QUORA_COLUMNS):
                    raise DataFormatError(
                        f"{label}:{start}: expected {len(QUORA_COLUMNS)} tab-separated columns, got {len(fields)}"
                    )
                row = dict(zip(QUORA_COLUMNS, fields, strict=True))
                if row["is_duplicate"] not in ("0", "1"):
                    raise DataFormatError(f"{label}:{start}: is_duplicate is {row['is_duplicate']!r}, expected 0 or 1")
                rows.append((start, row))
        except csv.Error as exc:
            raise DataFormatError(f"{label}:{reader.line_num}: CSV error ({exc})") from None
    if previous_end == 0:
        raise DataFormatError(f"{label}: empty file (no header)")
    return label, rows
