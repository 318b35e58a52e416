"""benchmarks/gpu_check.py in its --tiny mode on the CPU, as a user runs it (a subprocess, real
models, real `della-bench` commands): the GPU check must not rot before a GPU is lent to run it.

The rows expected are written out here, not read from the script, so a part that stops producing
its rows fails the test. Speeds are not asserted (benchmarks/README.md: targets live in
results/benchmarks.md); what is deterministic is: the IW values, the end-to-end comparison.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import torch

from helpers import ROOT

MODELS = ("GPT-2", "DELLA")
TRAINING_ROWS = [
    f"{precision}, {compiled}, {model}"
    for precision in ("fp32", "bf16", "fp16")
    for compiled in ("eager", "torch.compile")
    for model in MODELS
]
GENERATION_ROWS = [f"{decoding}, {model}" for decoding in ("beam 10", "nucleus p=0.9") for model in MODELS]
IW_ROW = "k = 100: batched vs per-sample loop, DELLA"
END_TO_END_ROWS = [
    "della-bench train, generate, evaluate: GPT-2 (finetune)",
    "della-bench train, generate, evaluate: DELLA (della)",
]
EXPECTED = (
    [("training step", row) for row in TRAINING_ROWS]
    + [("generation", row) for row in GENERATION_ROWS]
    + [("IW log p(x)", IW_ROW)]
    + [("end to end", row) for row in END_TO_END_ROWS]
)


def table_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    """(part, configuration) -> {result, target, verdict} of the Markdown table in `text`."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 5 and cells[0] not in ("part", "---"):
            key = (cells[0], cells[1])
            assert key not in rows, f"row {key} twice"
            rows[key] = dict(zip(("result", "target", "verdict"), cells[2:], strict=True))
    return rows


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One --tiny run on the CPU, appending to a copy of results/benchmarks.md."""
    tmp = tmp_path_factory.mktemp("gpu_check")
    benchmarks_md = tmp / "benchmarks.md"
    original = (ROOT / "results" / "benchmarks.md").read_text()
    benchmarks_md.write_text(original)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "gpu_check.py"),
            "--tiny",
            "--device",
            "cpu",
            "--append",
            str(benchmarks_md),
            "--workdir",
            str(tmp / "work"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-5000:]}"
    return done.stdout, original, benchmarks_md.read_text()


def test_the_table_has_every_row_once_and_nothing_failed(tiny_run):
    stdout, _, _ = tiny_run
    rows = table_rows(stdout)
    assert sorted(rows) == sorted(EXPECTED)
    for key, row in rows.items():
        assert row["result"], key
        assert "FAILED" not in row["verdict"] and "not measured" not in row["verdict"], (key, row)


def test_rows_say_what_the_cpu_could_not_measure_and_why(tiny_run):
    rows = table_rows(tiny_run[0])
    for configuration in TRAINING_ROWS:
        row = rows[("training step", configuration)]
        assert "tokens/s" in row["result"] and "MFU: unknown peak (cpu)" in row["result"], row
        if "torch.compile" in configuration:
            assert row["result"].startswith("skipped on CPU: Inductor"), row
        if configuration.startswith("fp16"):
            assert "training.precision fp16 refuses the CPU" in row["result"], row
    della_bf16 = rows[("training step", "bf16, eager, DELLA")]
    assert "MFU >= 40%" in della_bf16["target"] and della_bf16["verdict"].startswith("MFU no peak; time ")
    for configuration in END_TO_END_ROWS:
        assert rows[("end to end", configuration)]["result"].startswith("CPU vs CPU")


def test_batched_and_per_sample_iw_estimates_agree(tiny_run):
    row = table_rows(tiny_run[0])[("IW log p(x)", IW_ROW)]
    batched, loop = (float(x) for x in re.search(r"NLL per sentence (\S+) batched, (\S+) loop", row["result"]).groups())
    assert batched == pytest.approx(loop, rel=1e-5)
    assert row["verdict"].startswith("agree")


def test_end_to_end_compares_the_deterministic_metrics(tiny_run):
    rows = table_rows(tiny_run[0])
    plain = rows[("end to end", END_TO_END_ROWS[0])]
    della = rows[("end to end", END_TO_END_ROWS[1])]
    assert plain["verdict"] == "ok" and della["verdict"] == "ok"
    assert "PPL" in plain["result"].split("compared (")[1].split(")")[0]  # exact PPL of the no-latent model
    assert "AU" in della["result"].split("compared (")[1].split(")")[0]
    assert "PPL" not in della["result"].split("compared (")[1].split(")")[0]  # IW draws: a random stream


def test_append_adds_one_dated_section_with_the_versions_and_the_table(tiny_run):
    stdout, original, appended = tiny_run
    assert appended.startswith(original)
    section = appended[len(original) :]
    assert section.count("### GPU check: ") == 1
    dated = re.search(r"### GPU check: (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC", section)
    assert datetime.now(UTC) - datetime.strptime(dated.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC) < timedelta(
        hours=1
    )
    assert f"torch {torch.__version__}" in section and "python " in section
    assert table_rows(section) == table_rows(stdout)
