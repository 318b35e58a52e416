"""How a Snakemake run's time splits over its rules, from the run's own log.

    python benchmarks/rule_split.py .snakemake/log/<run>.snakemake.log [--cores 2]

Snakemake prints a timestamp before each job's start ("rule NAME:" / "localrule NAME:" with its
"jobid: N") and before each "Finished jobid: N (Rule: NAME)". Every job's wall time is the time
between the two; the table sums them per rule. With several jobs at a time the job-seconds add up
to more than the wall clock: the share column is of the job-seconds, and the last line compares
their sum with the run's wall time times the cores (how busy the cores were kept). Timestamps have
one-second resolution, so jobs of a second or less count as 0 to 1 s.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

TIMESTAMP = re.compile(r"^\[(?P<when>\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
STARTED = re.compile(r"^(?:local)?rule (?P<rule>\w+):$")
JOB_ID = re.compile(r"^\s+jobid: (?P<id>\d+)$")
FINISHED = re.compile(r"^Finished jobid: (?P<id>\d+) \(Rule: (?P<rule>\w+)\)$")


def job_times(log: Path) -> dict[str, list[float]]:
    """rule -> the wall seconds of each of its finished jobs."""
    started: dict[str, tuple[str, datetime]] = {}
    durations: dict[str, list[float]] = defaultdict(list)
    when, pending_rule = None, None
    for line in log.read_text(encoding="utf-8").splitlines():
        if match := TIMESTAMP.match(line):
            when = datetime.strptime(" ".join(match["when"].split()), "%a %b %d %H:%M:%S %Y")
        elif (match := STARTED.match(line)) and when is not None:
            pending_rule = (match["rule"], when)
        elif (match := JOB_ID.match(line)) and pending_rule is not None:
            started[match["id"]] = pending_rule
            pending_rule = None
        elif (match := FINISHED.match(line)) and match["id"] in started:
            rule, start = started.pop(match["id"])
            durations[rule].append((when - start).total_seconds())
    return durations


def wall_seconds(log: Path) -> float:
    stamps = [
        datetime.strptime(" ".join(m["when"].split()), "%a %b %d %H:%M:%S %Y")
        for line in log.read_text(encoding="utf-8").splitlines()
        if (m := TIMESTAMP.match(line))
    ]
    return (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else 0.0


def markdown(durations: dict[str, list[float]], wall: float, cores: int) -> str:
    total = sum(sum(times) for times in durations.values())
    lines = ["| rule | jobs | job-minutes | share | mean per job (s) |", "| --- | ---: | ---: | ---: | ---: |"]
    for rule, times in sorted(durations.items(), key=lambda item: -sum(item[1])):
        lines.append(
            f"| {rule} | {len(times)} | {sum(times) / 60:.1f} | {100 * sum(times) / total:.1f} % "
            f"| {sum(times) / len(times):.0f} |"
        )
    lines.append(f"| **total** | {sum(len(t) for t in durations.values())} | {total / 60:.1f} | 100 % | |")
    busy = total / (wall * cores) if wall else float("nan")
    lines.append("")
    lines.append(f"Wall clock {wall / 60:.1f} min on {cores} cores: the jobs kept the cores {100 * busy:.0f} % busy.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="a .snakemake/log/*.snakemake.log (or the run's captured output)")
    parser.add_argument("--cores", type=int, default=2, help="the run's --cores (default 2)")
    args = parser.parse_args()
    print(markdown(job_times(args.log), wall_seconds(args.log), args.cores))


if __name__ == "__main__":
    main()
