"""Hugging Face parquet copies of four datasets, read as a third layout beside archives and their
extracted files.

Many people have the Hub's copies rather than the original downloads: the parquet files of a
dataset's repository (``3.0.0/train-00000-of-00003.parquet``), of its ``refs/convert/parquet``
branch (``default/train/0000.parquet``) or exported from the ``datasets`` cache
(``Dataset.to_parquet``). Where a copy holds the same text as the download, it is accepted in
place of the archive(s) it was built from; :data:`HF_COPIES` says which, and docs/data.md why the
other three datasets are not. The Hub's builders that made these copies read the same files the
pipeline reads (their scripts are cited per copy below) and change nothing the pipeline keeps:

* ``ptb-text-only/ptb_text_only``, folder ``penn_treebank/``: column ``sentence``, each line of
  Mikolov's ``ptb.{split}.txt`` stripped, in file order.
* ``stanfordnlp/snli``, folder ``plain_text/``: ``premise``, ``hypothesis`` (``sentence1``,
  ``sentence2`` of ``snli_1.0_{split}.txt``) and ``label`` (0 entailment, 1 neutral,
  2 contradiction, -1 for the gold label ``-``), in file order.
* ``abisee/cnn_dailymail``, folder ``3.0.0/``: ``article``, ``highlights`` (the same cleaning as
  :func:`della.data.preprocess.fix_missing_period` and its callers) and ``id`` (the story's
  sha1 name). Rows are in the builder's order (CNN stories then Daily Mail ones, each sorted by
  id), not url-list order, and stories with an empty article or no highlights are left out.
* ``quora`` (now ``quora-competitions/quora``), folder ``default/``, split ``train`` only:
  ``questions`` (``{id: [qid1, qid2], text: [question1, question2]}``) and ``is_duplicate``
  (bool), in file order; the TSV's ``id`` column is dropped, and is the row's 0-based position.

The readers return what the matching :mod:`della.data.raw` reader returns, so preprocessing
cannot tell the layouts apart. A file that is not parquet (truncated, say), a missing column, a
column of the wrong type, or a null value is a :class:`~della.data.raw.DataFormatError` naming
the file, and the column and row where there is one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from della.data import raw
from della.data.raw import DataFormatError

__all__ = [
    "HF_COPIES",
    "HFCopy",
    "copy_in",
    "read_cnn_dm",
    "read_ptb",
    "read_quora",
    "read_snli",
    "split_files",
    "verify",
]

#: The pipeline's split names -> the Hub's.
HF_SPLITS = {"train": "train", "valid": "validation", "test": "test"}


@dataclass(frozen=True)
class Column:
    """A column a copy must have: its name and a check of its Arrow type, described for messages."""

    name: str
    kind: str
    check: Callable[[pa.DataType], bool]


def _is_string(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)


def _is_list_of(kind: pa.DataType, item: Callable[[pa.DataType], bool]) -> bool:
    return (pa.types.is_list(kind) or pa.types.is_large_list(kind)) and item(kind.value_type)


def _is_quora_questions(kind: pa.DataType) -> bool:
    """``datasets`` stores a Sequence of ``{id, text}`` as a struct of two lists."""
    if not pa.types.is_struct(kind) or {kind.field(i).name for i in range(kind.num_fields)} != {"id", "text"}:
        return False
    return _is_list_of(kind.field("id").type, pa.types.is_integer) and _is_list_of(kind.field("text").type, _is_string)


STRING = ("string", _is_string)


@dataclass(frozen=True)
class HFCopy:
    """A Hub copy that holds the records of the source files ``replaces``, under ``raw_dir/folder/``."""

    repo: str
    folder: str
    replaces: tuple[str, ...]
    #: Top-level folders the replaced archives extract to: where one is there, the extracted layout is read.
    extracted_roots: tuple[str, ...]
    columns: tuple[Column, ...]
    splits: tuple[str, ...] = tuple(HF_SPLITS.values())  # the Hub's names

    @property
    def name(self) -> str:
        return f"Hugging Face {self.repo} ({self.folder}/)"


HF_COPIES = (
    HFCopy(
        "ptb-text-only/ptb_text_only",
        "penn_treebank",
        (raw.PTB_ARCHIVE,),
        ("simple-examples",),
        (Column("sentence", *STRING),),
    ),
    HFCopy(
        "stanfordnlp/snli",
        "plain_text",
        (raw.SNLI_ARCHIVE,),
        ("snli_1.0",),
        (Column("premise", *STRING), Column("hypothesis", *STRING), Column("label", "integer", pa.types.is_integer)),
    ),
    HFCopy(
        "abisee/cnn_dailymail",
        "3.0.0",
        tuple(archive for archive, _ in raw.CNN_DM_ARCHIVES.values()),
        tuple(folder.split("/")[0] for _, folder in raw.CNN_DM_ARCHIVES.values()),
        (Column("article", *STRING), Column("highlights", *STRING), Column("id", *STRING)),
    ),
    HFCopy(
        "quora-competitions/quora",
        "default",
        (raw.QUORA_FILE,),
        (),
        (
            Column("questions", "struct<id: list<int>, text: list<string>>", _is_quora_questions),
            Column("is_duplicate", "bool", pa.types.is_boolean),
        ),
        splits=("train",),
    ),
)


def copy_in(raw_dir: Path, file_name: str) -> HFCopy | None:
    """The Hub copy ``raw_dir`` holds in place of the source file ``file_name``, or None.

    A copy stands in only where the originals are wholly absent: none of the files it replaces
    is there, nor any folder they extract to (so a partly extracted archive is still reported as
    one, and the records and recorded checksum come from the originals whenever they exist)."""
    for copy in HF_COPIES:
        if file_name in copy.replaces and (raw_dir / copy.folder).is_dir():
            originals = [raw_dir / name for name in copy.replaces] + [raw_dir / root for root in copy.extracted_roots]
            return None if any(path.exists() for path in originals) else copy
    return None


#: A split's shard as the Hub and ``datasets`` name it: ``train-00000-of-00003.parquet``,
#: ``train-00000-of-00001-<hash>.parquet`` (push_to_hub), ``cnn_dailymail-train.parquet`` (older
#: conversions); ``refs/convert/parquet`` keeps ``train/0000.parquet`` in a folder per split.
_SHARD = r"^(?:.+-)?{split}(?:-\d+-of-\d+)?(?:-[0-9a-f]+)?\.parquet$"


def split_files(raw_dir: Path, copy: HFCopy, split: str) -> list[Path]:
    """The parquet files of HF split ``split``, in shard order; none is an error naming the folder."""
    folder = raw_dir / copy.folder
    shard = re.compile(_SHARD.format(split=re.escape(split)))
    flat = sorted(path for path in folder.glob("*.parquet") if shard.match(path.name))
    nested = sorted((folder / split).glob("*.parquet"))
    if flat and nested:
        raise DataFormatError(
            f"{folder}: split {split} is there twice, as {flat[0].name} and in {split}/ (keep one copy)"
        )
    if not flat and not nested:
        raise DataFormatError(
            f"{folder}: no parquet file of split {split} ({split}-00000-of-0000N.parquet or "
            f"{split}/0000.parquet) in this copy of {copy.repo}"
        )
    return flat or nested


def _open(path: Path, copy: HFCopy) -> pq.ParquetFile:
    """The file with its schema checked: every column of ``copy``, each of the right type."""
    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataFormatError(f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})") from None
    schema = handle.schema_arrow
    for column in copy.columns:
        if column.name not in schema.names:
            raise DataFormatError(
                f"{path}: no column {column.name!r} (it has {', '.join(schema.names)}; "
                f"{copy.repo} has {', '.join(c.name for c in copy.columns)})"
            )
        kind = schema.field(column.name).type
        if not column.check(kind):
            raise DataFormatError(f"{path}: column {column.name!r} is {kind}, expected {column.kind} ({copy.repo})")
    return handle


def verify(raw_dir: Path, copy: HFCopy) -> list[str]:
    """Every file of every split opens as parquet with the copy's schema (nothing more is read);
    returns the files, relative to ``raw_dir``."""
    files = [path for split in copy.splits for path in split_files(raw_dir, copy, split)]
    for path in files:
        _open(path, copy)
    return [path.relative_to(raw_dir).as_posix() for path in files]


Row = tuple[str, int, dict]  # (file, 1-based row in the file, the row)


def _read_split(raw_dir: Path, copy: HFCopy, split: str) -> tuple[str, list[Row]]:
    """``(label, rows)`` of HF split ``split``: the label is the file, or the folder's pattern
    when there are several shards; each row keeps its own file and row for messages."""
    files = split_files(raw_dir, copy, split)
    rows: list[Row] = []
    for path in files:
        handle = _open(path, copy)
        try:
            table = handle.read(columns=[column.name for column in copy.columns])
        except (pa.ArrowException, OSError) as exc:
            raise DataFormatError(f"{path}: cannot read its rows ({type(exc).__name__}: {exc})") from None
        for number, row in enumerate(table.to_pylist(), start=1):
            for column in copy.columns:
                if row[column.name] is None:
                    raise DataFormatError(f"{path}: row {number}: column {column.name!r} is null")
            rows.append((str(path), number, row))
    label = str(files[0]) if len(files) == 1 else f"{raw_dir / copy.folder}/{split}-*.parquet ({len(files)} files)"
    return label, rows


def _copy(raw_dir: Path, file_name: str) -> HFCopy:
    copy = copy_in(raw_dir, file_name)
    assert copy is not None, f"{raw_dir} holds no Hugging Face copy of {file_name}"  # callers check copy_in first
    return copy


# --- the readers, each returning what della.data.raw's reader of the same data returns ----------


def read_ptb(raw_dir: Path, splits: Iterable[str]) -> dict[str, tuple[str, raw.Lines]]:
    """As :func:`della.data.raw.read_ptb`; the lines are already stripped."""
    copy = _copy(raw_dir, raw.PTB_ARCHIVE)
    result = {}
    for split in splits:
        label, rows = _read_split(raw_dir, copy, HF_SPLITS[split])
        result[split] = (label, [(n, row["sentence"]) for n, (_, _, row) in enumerate(rows, start=1)])
    return result


#: ``label`` of the SNLI copy -> the gold label of snli_1.0's files (-1: no annotator majority).
SNLI_LABELS = {0: "entailment", 1: "neutral", 2: "contradiction", -1: "-"}


def read_snli(raw_dir: Path, split: str) -> tuple[str, list[tuple[int, dict]]]:
    """As :func:`della.data.raw.read_snli` (``split`` in train/valid/test): records with
    ``gold_label``, ``sentence1`` and ``sentence2``."""
    label, rows = _read_split(raw_dir, _copy(raw_dir, raw.SNLI_ARCHIVE), HF_SPLITS[split])
    records = []
    for number, (path, row_number, row) in enumerate(rows, start=1):
        if row["label"] not in SNLI_LABELS:
            raise DataFormatError(
                f"{path}: row {row_number}: column 'label' is {row['label']}, expected one of "
                f"{', '.join(map(str, SNLI_LABELS))}"
            )
        records.append(
            (
                number,
                {"gold_label": SNLI_LABELS[row["label"]], "sentence1": row["premise"], "sentence2": row["hypothesis"]},
            )
        )
    return label, records


def read_cnn_dm(raw_dir: Path) -> dict[str, list[Row]]:
    """``{split: rows}`` (train/valid/test) with ``article``, ``highlights`` and ``id``, in the
    copy's order; :mod:`della.data.preprocess` puts them in url-list order by ``id``."""
    copy = _copy(raw_dir, raw.CNN_DM_ARCHIVES["cnn"][0])
    return {split: _read_split(raw_dir, copy, hf_split)[1] for split, hf_split in HF_SPLITS.items()}


def read_quora(raw_dir: Path) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """As :func:`della.data.raw.read_quora`: the TSV's six columns as strings, ``id`` being the
    row's 0-based position (the TSV's ``id`` column counts its rows from 0 the same way)."""
    label, rows = _read_split(raw_dir, _copy(raw_dir, raw.QUORA_FILE), "train")
    result = []
    for number, (path, row_number, row) in enumerate(rows, start=1):
        questions = row["questions"]
        if len(questions["id"]) != 2 or len(questions["text"]) != 2 or None in questions["text"]:
            raise DataFormatError(
                f"{path}: row {row_number}: column 'questions' must hold two questions, got {questions}"
            )
        (qid1, qid2), (question1, question2) = questions["id"], questions["text"]
        result.append(
            (
                number,
                {
                    "id": str(number - 1),
                    "qid1": str(qid1),
                    "qid2": str(qid2),
                    "question1": question1,
                    "question2": question2,
                    "is_duplicate": "1" if row["is_duplicate"] else "0",
                },
            )
        )
    return label, result
