"""How much of a run's CPU time is only starting its jobs: Python plus the imports of each rule's
command, measured in fresh processes, times the rule's jobs in the run's own Snakemake log.

    python benchmarks/startup_share.py .snakemake/log/<run>.snakemake.log [--cpu-seconds N] [--repeats 3]

Each rule's command is read from its `shell:` in workflow/rules/*.smk (`della-bench <command>` or
`python -m della <command>`);
the module a command imports is della.cli's DELEGATED entry or, for the commands della.cli runs
itself, the module named below. Start-up CPU seconds are user + system of
`python -c "import della.cli, <module>"`, the median of --repeats fresh processes: what every job of
the rule pays before its first line of work. With --cpu-seconds (the run's total, as
benchmarks/bench_pipeline.sh prints it) the last line gives start-up's share of the whole run.
"""

from __future__ import annotations

import argparse
import re
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from rule_split import job_times  # a script beside this one (run as benchmarks/startup_share.py)
from della.cli import DELEGATED

REPO = Path(__file__).resolve().parents[1]
# The commands della.cli runs itself, and the module each imports before it starts work.
DIRECT_COMMAND_MODULES = {
    "train": "della.train", "generate": "della.generate", "evaluate": "della.evaluate",
    "create-backbone": "della.backbone", "train-tokenizer": "della.tokenizer",
}
RULE = re.compile(r"^rule (?P<rule>\w+):", re.MULTILINE)
USE_RULE = re.compile(r"^use rule (?P<base>\w+) as (?P<rule>\w+)", re.MULTILINE)
# `della-bench <command>`, or `python -m della <command>` with the command on the shell string's next line
COMMAND = re.compile(r"""(?:della-bench|-m della)['"\s]*(?P<command>[a-z][a-z-]*)""")


def rule_commands(rules_dir: Path = REPO / "workflow" / "rules") -> dict[str, str]:
    """rule -> the della-bench command its shell runs (rules without one are left out)."""
    commands = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        starts = [(m.start(), m["rule"]) for m in RULE.finditer(text)] + [(len(text), None)]
        for (start, rule), (end, _) in zip(starts, starts[1:]):
            if match := COMMAND.search(text, start, end):
                commands[rule] = match["command"]
    for smk in sorted(rules_dir.glob("*.smk")):  # `use rule base as rule with:` runs base's command
        for match in USE_RULE.finditer(smk.read_text(encoding="utf-8")):
            if match["base"] in commands:
                commands[match["rule"]] = commands[match["base"]]
    return commands


def command_module(command: str) -> str:
    if command in DELEGATED:
        return DELEGATED[command][0]
    return DIRECT_COMMAND_MODULES[command]


def startup_cpu_seconds(module: str, repeats: int) -> float:
    """Median user + system CPU seconds of a fresh interpreter importing della.cli and `module`."""
    samples = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", f"import della.cli, {module}"], check=True, cwd=REPO)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def markdown(jobs: dict[str, int], commands: dict[str, str], repeats: int, cpu_seconds: float | None) -> str:
    lines = ["| rule | jobs | command | start-up CPU-s per job | start-up CPU-s |", "| --- | ---: | --- | ---: | ---: |"]
    per_module: dict[str, float] = {}
    total = 0.0
    for rule, count in sorted(jobs.items(), key=lambda item: -item[1]):
        if rule not in commands:
            continue
        module = command_module(commands[rule])
        if module not in per_module:
            per_module[module] = startup_cpu_seconds(module, repeats)
        total += count * per_module[module]
        lines.append(f"| {rule} | {count} | {commands[rule]} | {per_module[module]:.1f} | {count * per_module[module]:.0f} |")
    lines.append(f"| **total** | {sum(jobs[r] for r in jobs if r in commands)} | | | {total:.0f} |")
    if cpu_seconds:
        lines += ["", f"Start-up: {total:.0f} of the run's {cpu_seconds:.0f} CPU-seconds ({100 * total / cpu_seconds:.0f} %)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="a .snakemake/log/*.snakemake.log of the run")
    parser.add_argument("--cpu-seconds", type=float, default=None, help="the run's total CPU seconds")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per module (median)")
    args = parser.parse_args()
    jobs = {rule: len(times) for rule, times in job_times(args.log).items()}
    print(markdown(jobs, rule_commands(), args.repeats, args.cpu_seconds))


if __name__ == "__main__":
    main()
