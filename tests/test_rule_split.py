"""benchmarks/rule_split.py: per-rule job time from a Snakemake log, on a log with known times."""

from __future__ import annotations

import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from rule_split import job_times, markdown, wall_seconds  # noqa: E402

LOG = """\
[Fri Dec  4 20:00:00 2026]
localrule train:
    input: data/yelp/train.jsonl
    jobid: 7
    wildcards: dataset=yelp
[Fri Dec  4 20:00:00 2026]
rule train:
    jobid: 3
[Fri Dec  4 20:10:00 2026]
Finished jobid: 7 (Rule: train)
1 of 3 steps (33%) done
[Fri Dec  4 20:10:00 2026]
localrule evaluate:
    jobid: 8
[Fri Dec  4 20:12:30 2026]
Finished jobid: 3 (Rule: train)
[Fri Dec  4 20:13:00 2026]
Finished jobid: 8 (Rule: evaluate)
"""


def test_jobs_are_timed_from_their_start_to_their_finish(tmp_path):
    log = tmp_path / "run.snakemake.log"
    log.write_text(LOG)
    assert job_times(log) == {"train": [600.0, 750.0], "evaluate": [180.0]}
    assert wall_seconds(log) == 780.0
    table = markdown(job_times(log), wall_seconds(log), cores=2)
    assert "| train | 2 | 22.5 | 88.2 % | 675 |" in table  # 1,350 of 1,530 job-seconds
    assert "kept the cores 98 % busy" in table  # 1,530 / (780 x 2)
