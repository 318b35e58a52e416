"""Human evaluation round trip (della/report/human_eval.py): blinded forms out, simulated annotators'
scores back in, Table 3 un-blinded; Krippendorff's alpha against published worked examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from della.report.human_eval import FORM_COLUMNS, export, krippendorff_alpha, main
from della.report.tables import TableError

from helpers import ROOT
from helpers.human_eval import CONFIG, PROTOCOL, SPEC, TABLE, export_forms, keys_of, read_rows, simulate, write_rows
from helpers.tables import render_files

PAPER = ROOT / "results" / "paper_tables.csv"
N = None  # a missing rating in the worked examples


# --------------------------------------------------------------------------- Krippendorff's alpha


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_forms(tmp_path_factory.mktemp("human"))


def test_alpha_reproduces_krippendorff_2011_worked_example():
    """Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders, 12 units with
    missing values (unit 12 has one value: not pairable). Published: nominal .743, ordinal .815,
    interval .849, ratio .797."""
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
    published = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}
    for level, alpha in published.items():
        assert krippendorff_alpha(data, level) == pytest.approx(alpha, abs=5e-4), level


def test_alpha_reproduces_the_three_coder_example():
    """The 3 coders x 15 units example of Wikipedia's "Krippendorff's alpha" article (also the
    `krippendorff` package's README): nominal .691, interval .811."""
    data = [
        [N, N, N, N, N, 3, 4, 1, 2, 1, 1, 3, 3, N, 3],
        [1, N, 2, 1, 3, 3, 4, 3, N, N, N, N, N, N, N],
        [N, N, 2, 1, 3, 4, 4, N, 2, 1, 1, 3, 3, N, 4],
    ]
    assert krippendorff_alpha(data, "nominal") == pytest.approx(0.691, abs=5e-4)
    assert krippendorff_alpha(data, "interval") == pytest.approx(0.811, abs=5e-4)


def test_alpha_limits():
    rng = np.random.default_rng(0)
    units = rng.integers(1, 6, size=50).tolist()
    assert krippendorff_alpha([units, units, units], "interval") == pytest.approx(1.0)
    assert krippendorff_alpha([[3] * 10, [3] * 10], "interval") is None  # no variation: undefined
    # independent random coders: alpha near 0 (its expectation is about -1/(2n))
    noise = rng.integers(1, 6, size=(5, 2000)).tolist()
    assert abs(krippendorff_alpha(noise, "interval")) < 0.03


# ------------------------------------------------------------------------------------ round trip


def test_forms_are_blinded_shuffled_and_complete(exported):
    _, out = exported
    for dataset, (forms, key_path, writer_of) in out.items():
        key = json.loads(key_path.read_text())
        assert key_path.parent != forms and not list(forms.glob("*.json"))  # the key is kept apart
        labels = set(writer_of.values())
        orders = []
        for annotator in PROTOCOL.annotators:
            rows = read_rows(forms / f"{annotator}.csv")
            assert list(rows[0]) == FORM_COLUMNS + SPEC.columns_of(dataset)
            assert len(rows) == PROTOCOL.n_inputs * len(labels)
            assert {r["item"] for r in rows} == {e["item"] for e in key["items"]}
            assert len({r["input"] for r in rows}) == PROTOCOL.n_inputs
            html = (forms / f"{annotator}.html").read_text()
            for text in (forms / f"{annotator}.csv").read_text(), html:
                assert not any(label in text for label in labels | {"della", "memory", "softmax"})
            assert "http" not in html and "<script src" not in html  # self-contained
            assert "never be used commercially" in html and all(c in html for c in SPEC.columns_of(dataset))
            orders.append([r["item"] for r in rows])
        assert len({tuple(o) for o in orders}) == len(orders)  # each annotator has their own order


def test_export_is_deterministic(exported, tmp_path):
    _, out = exported
    dataset = SPEC.dataset_names[0]
    forms, key, _ = out[dataset]
    files = [
        Path(json.loads(key.read_text())["runs"][label]["metrics"]) for label in json.loads(key.read_text())["runs"]
    ]
    export(SPEC, TABLE, dataset, files, tmp_path / "forms", tmp_path / "key.json")
    assert (tmp_path / "key.json").read_text() == key.read_text()
    assert (tmp_path / "forms" / "a1.csv").read_text() == (forms / "a1.csv").read_text()


def test_round_trip_unblinds_the_scores(exported, tmp_path):
    filled, given = simulate(exported, noise=1)
    render_files(TABLE, CONFIG, PAPER, tmp_path, keys=keys_of(exported), annotations=filled)
    rows = read_rows(tmp_path / f"{TABLE}.csv")
    cells = {(r["dataset"], r["model"], r["metric"]): r for r in rows}
    for dataset in SPEC.dataset_names:
        for label in {k[2] for k in given if k[0] == dataset}:
            for c in SPEC.columns_of(dataset):
                per_annotator = [np.mean(given[dataset, a, label, c]) for a in PROTOCOL.annotators]
                r = cells[dataset, label, c]
                assert float(r["ours_mean"]) == pytest.approx(np.mean(per_annotator), rel=1e-12)
                assert float(r["ours_std"]) == pytest.approx(np.std(per_annotator, ddof=1), rel=1e-12)
                assert int(r["n_seeds"]) == len(PROTOCOL.annotators)
        # agreement: alpha of the annotators x items matrix, recomputed here from the filled forms
        for c in SPEC.columns_of(dataset):
            ratings = []
            for a in PROTOCOL.annotators:
                path = next(p for p in filled if p.parent.name == dataset and p.stem == a)
                by_item = {row["item"]: int(row[c]) for row in read_rows(path)}
                ratings.append([by_item[i] for i in sorted(by_item)])
            alpha_row = cells[dataset, f"Krippendorff's alpha ({PROTOCOL.agreement})", c]
            assert float(alpha_row["ours_mean"]) == pytest.approx(krippendorff_alpha(ratings, PROTOCOL.agreement))
            assert len(ratings[0]) == PROTOCOL.n_inputs * len({k[2] for k in given if k[0] == dataset})
    md = (tmp_path / f"{TABLE}.md").read_text()
    assert "Annotators: a1, a2, a3, a4, a5" in md and "Krippendorff's alpha (interval)" in md


def test_agreeing_annotators_have_alpha_one(exported, tmp_path):
    filled, _ = simulate(exported, noise=0)
    render_files(TABLE, CONFIG, PAPER, tmp_path, keys=keys_of(exported), annotations=filled)
    alphas = [r for r in read_rows(tmp_path / f"{TABLE}.csv") if r["model"].startswith("Krippendorff")]
    assert alphas and all(float(r["ours_mean"]) == pytest.approx(1.0) for r in alphas)


@pytest.fixture
def one_bad_form(exported, tmp_path):
    """Filled forms whose first file the test corrupts; returns (files, rows of the first, writer)."""
    filled, _ = simulate(exported, noise=1)
    copies = []
    for path in filled:
        copy = tmp_path / path.parent.name / path.name
        copy.parent.mkdir(exist_ok=True)
        copy.write_text(path.read_text())
        copies.append(copy)
    return copies, read_rows(copies[0])


def import_error(exported, files, tmp_path) -> str:
    with pytest.raises(TableError) as err:
        render_files(TABLE, CONFIG, PAPER, tmp_path / "out", keys=keys_of(exported), annotations=files)
    return str(err.value)


def test_out_of_range_score_names_file_and_row(exported, one_bad_form, tmp_path):
    files, rows = one_bad_form
    criterion = SPEC.columns_of(rows[0]["dataset"])[1]
    rows[3][criterion] = "6"
    write_rows(files[0], rows)
    error = import_error(exported, files, tmp_path)
    assert f"{files[0]}:5" in error and criterion in error and "'6'" in error


def test_missing_item_names_file(exported, one_bad_form, tmp_path):
    files, rows = one_bad_form
    write_rows(files[0], rows[:7] + rows[8:])
    error = import_error(exported, files, tmp_path)
    assert str(files[0]) in error and "1 of" in error and rows[7]["item"] in error


def test_duplicated_row_names_both_rows(exported, one_bad_form, tmp_path):
    files, rows = one_bad_form
    write_rows(files[0], rows + [rows[2]])
    error = import_error(exported, files, tmp_path)
    assert f"{files[0]}:{len(rows) + 2}" in error and "first at row 4" in error


def test_unknown_item_and_missing_annotator(exported, one_bad_form, tmp_path):
    files, rows = one_bad_form
    rows[0]["item"] = "not-an-item"
    write_rows(files[0], rows)
    assert f"{files[0]}:2: unknown item" in import_error(exported, files, tmp_path)
    error = import_error(exported, files[1:], tmp_path)
    assert "no filled form of annotators ['a1']" in error


def test_export_cli_reports_too_few_inputs(exported, tmp_path, capsys):
    root, _ = exported
    dataset = SPEC.dataset_names[0]
    files = sorted((root / "runs" / dataset).glob("*/seed0/metrics.json"))
    samples = files[0].parent / "samples.jsonl"
    kept = samples.read_text()
    samples.write_text("".join(kept.splitlines(keepends=True)[:10]))
    try:
        args = [
            "--table",
            TABLE,
            "--dataset",
            dataset,
            "--forms",
            str(tmp_path / "f"),
            "--key",
            str(tmp_path / "k.json"),
            "--metrics",
            *map(str, files),
        ]
        assert main(args) == 1
        assert "only 10 test inputs" in capsys.readouterr().err
    finally:
        samples.write_text(kept)


def test_n_inputs_override_is_used_and_recorded(exported, tmp_path):
    """The config's `human_eval.n_inputs` (the rehearsal's 2) replaces the protocol's 30 through
    --n-inputs; the key records the number the forms hold."""
    root, _ = exported
    dataset = SPEC.dataset_names[0]
    files = sorted((root / "runs" / dataset).glob("*/seed0/metrics.json"))
    args = [
        "--table",
        TABLE,
        "--dataset",
        dataset,
        "--forms",
        str(tmp_path / "f"),
        "--key",
        str(tmp_path / "k.json"),
        "--metrics",
        *map(str, files),
    ]
    assert main([*args, "--n-inputs", "2"]) == 0
    key = json.loads((tmp_path / "k.json").read_text())
    assert key["protocol"]["n_inputs"] == 2 != PROTOCOL.n_inputs
    assert len({r["input"] for r in read_rows(tmp_path / "f" / "a1.csv")}) == 2
    assert len(key["items"]) == 2 * len(files)
    assert main([*args, "--n-inputs", "0"]) == 1
