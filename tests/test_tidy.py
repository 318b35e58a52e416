"""results/{scale}/metrics.csv: every number of a scale, one row per (experiment, dataset, model,
seed, metric), and every cell of a rendered table is the mean of its rows there."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from della.report.tables import TableError, render_table, table_spec
from della.report.tidy import DATA_EXPERIMENT, SECONDS_SUFFIX, main, tidy_frame

from helpers.tables import TOY_SPEC, assert_table_cells_come_from_tidy, write_metrics, write_paper


@pytest.fixture
def toy_runs(tmp_path):
    """DELLA (two seeds) and GPT-2 on Yelp; DELLA's seed 0 run is in two experiments."""
    values = [{"PPL": 12.5, "BLEU": 55.0, "AU": 12, "KL": 25.0}, {"PPL": 13.5, "BLEU": 57.0, "AU": 14, "KL": 27.0}]
    files = [write_metrics(tmp_path, "DELLA", seed, v) for seed, v in enumerate(values)]
    files.append(write_metrics(tmp_path, "GPT-2", 0, {"PPL": 25.0, "BLEU": 70.0}))
    experiments = {
        "toy": [["yelp", "della", 0], ["yelp", "della", 1], ["yelp", "gpt-2", 0]],
        "ablation": [["yelp", "della", 0]],
    }
    return files, experiments, values


def test_every_metric_of_every_run_is_a_row_under_each_of_its_experiments(toy_runs):
    files, experiments, values = toy_runs
    tidy, run_settings = tidy_frame(experiments, files)
    assert len(tidy) == 4 + 4 + 2 + 4  # DELLA seeds 0, 1, GPT-2 under toy; DELLA seed 0 again under ablation
    della0 = tidy[(tidy.model == "della") & (tidy.seed == 0)]
    assert set(della0.experiment) == {"toy", "ablation"}
    for _, row in della0[della0.experiment == "ablation"].iterrows():
        assert row.value == values[0][row.metric]
        assert row.higher_is_better == (TOY_SPEC["metric_directions"][row.metric] == "higher")
        assert json.loads(row.settings) == {"iw_samples": 30} and row.git_commit == "commit-of-DELLA"
        assert run_settings[row.run_settings_hash] == {"beta": 1.0}
        assert json.loads(row.versions) == {"torch": "2.13.0"} and row.device == "cpu (toy)"


def test_a_rendered_table_is_the_mean_of_its_rows(toy_runs, tmp_path):
    files, experiments, _ = toy_runs
    tidy, run_settings = tidy_frame(experiments, files)
    render_table("toy", TOY_SPEC, write_paper(tmp_path / "paper.csv"), tmp_path / "out", tidy, run_settings)
    toy = table_spec(TOY_SPEC, "toy")
    assert assert_table_cells_come_from_tidy(tmp_path / "out" / "toy.csv", tidy, "toy", toy) == 6
    # and the check can fail: a number changed after the table was rendered
    tidy.loc[(tidy.model == "della") & (tidy.metric == "PPL"), "value"] += 1.0
    with pytest.raises(AssertionError):
        assert_table_cells_come_from_tidy(tmp_path / "out" / "toy.csv", tidy, "toy", table_spec(TOY_SPEC, "toy"))


def test_timings_and_dataset_statistics_are_rows_too(toy_runs, tmp_path):
    files, experiments, _ = toy_runs
    bench = tmp_path / "results" / "benchmarks" / "train" / "yelp" / "della" / "seed1.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\n90.5\t0:01:30\t100\n")
    stats = tmp_path / "data" / "yelp" / "stats.json"
    stats.parent.mkdir(parents=True)
    stats.write_text(
        json.dumps(
            {
                "dataset": "yelp",
                "splits": {"train": 48, "valid": 16},
                "avg_len_target": None,
                "length_unit": "words",
                "lowercased": True,
            }
        )
    )
    tidy, _ = tidy_frame(experiments, files, [bench], [stats])
    timing = tidy[tidy.metric == f"train{SECONDS_SUFFIX}"]
    assert timing[["experiment", "model", "label", "seed", "value"]].values.tolist() == [
        ["toy", "della", "DELLA", 1, 90.5]
    ]
    data = tidy[tidy.experiment == DATA_EXPERIMENT]
    assert dict(zip(data.metric, data.value, strict=True)) == {
        "splits.train": 48.0,
        "splits.valid": 16.0,
    }  # no text, null or bool


def test_training_time_counts_every_attempt(toy_runs, tmp_path):
    """A run trained by three attempts (two cut off at a time limit): its train_seconds row is
    their device-seconds from train_done.json, not the last attempt's benchmark file."""
    files, experiments, _ = toy_runs
    bench = tmp_path / "results" / "benchmarks" / "train" / "yelp" / "della" / "seed1.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\tmax_rss\n90.5\t0:01:30\t100\n")  # the last attempt only
    done = tmp_path / "runs" / "yelp" / "della" / "seed1" / "train_done.json"
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps({"steps": 10, "attempts": {"attempts": 3, "seconds": 300.0, "device_seconds": 600.0}}))
    tidy, _ = tidy_frame(experiments, files, [bench], trainings=[done])
    timing = tidy[(tidy.metric == f"train{SECONDS_SUFFIX}") & (tidy.seed == 1)]
    assert timing.value.tolist() == [600.0] and "attempts" in timing.settings.iloc[0]
    assert tidy[tidy.metric == "train_attempts"].value.tolist() == [3.0]
    done.write_text(json.dumps({"steps": 10}))  # written before attempts were counted: the benchmark stands
    tidy, _ = tidy_frame(experiments, files, [bench], trainings=[done])
    assert tidy[tidy.metric == f"train{SECONDS_SUFFIX}"].value.tolist() == [90.5]


def test_a_run_without_metrics_or_outside_the_experiments_is_an_error(toy_runs, tmp_path):
    files, experiments, _ = toy_runs
    with pytest.raises(TableError, match="yelp/della/1"):
        tidy_frame(experiments, files[:1] + files[2:])
    with pytest.raises(TableError, match="belongs to no experiment"):
        tidy_frame({"toy": [["yelp", "della", 0], ["yelp", "della", 1]]}, files)


def test_the_command_writes_the_csv_and_the_run_settings(toy_runs, tmp_path, capsys):
    files, experiments, _ = toy_runs
    out = tmp_path / "results" / "metrics.csv"
    assert (
        main(
            [
                "--experiments",
                json.dumps(experiments),
                "--runs",
                *map(str, files),
                "--out",
                str(out),
                "--run-settings",
                str(tmp_path / "results" / "run_settings.json"),
            ]
        )
        == 0
    )
    written = pd.read_csv(out)
    assert len(written) == 14 and list(written.columns)[:7] == [
        "experiment",
        "dataset",
        "model",
        "label",
        "seed",
        "metric",
        "value",
    ]
    assert set(json.loads((tmp_path / "results" / "run_settings.json").read_text())) == set(written.run_settings_hash)
    assert (
        main(
            [
                "--experiments",
                json.dumps(experiments),
                "--runs",
                *map(str, files),
                str(tmp_path / "x.txt"),
                "--out",
                str(out),
                "--run-settings",
                str(tmp_path / "r.json"),
            ]
        )
        == 1
    )
    assert "x.txt" in capsys.readouterr().err


def test_the_run_folder_template_is_read_back_by_its_pattern():
    """One template of a run's folder (della/io.py RUN_DIR): the workflow's paths, and the
    pattern that reads dataset, model and seed back from them (figures, tidy)."""
    from della.io import RUN_DIR, run_dir, run_path_pattern

    path = f"results/x/../{run_dir('yelp', 'della_kl_first', 12)}/train_done.json"
    assert run_dir("yelp", "della_kl_first", 12) == RUN_DIR.format(dataset="yelp", model="della_kl_first", seed=12)
    found = run_path_pattern(r"train_done\.json").search(path)
    assert found.groupdict() == {"dataset": "yelp", "model": "della_kl_first", "seed": "12"}
    assert run_path_pattern(r"train_done\.json").search(f"{run_dir('yelp', 'della', 0)}/metrics.json") is None
    assert (
        run_path_pattern().search(f"{run_dir('yelp', 'della', 0)}/model/config.json") is None
    )  # files of the folder itself
