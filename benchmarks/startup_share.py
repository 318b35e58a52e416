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

With --warm-log (the run's logs/warm_start.log, `warm_start: true`), the jobs the warm server ran
pay only a client's start-up (`python -c "import della.pipeline.warm"`), and the server's own imports (the
CPU seconds its log reports) are counted once, in a row of their own (della/pipeline/warm.py).
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
from della.pipeline.warm import WARM_COMMANDS

REPO = Path(__file__).resolve().parents[1]
# The commands della.cli runs itself, and the module each imports before it starts work.
DIRECT_COMMAND_MODULES = {
    "train": "della.run.train",
    "generate": "della.run.generate",
    "evaluate": "della.run.evaluate",
    "create-backbone": "della.models.backbone",
    "train-tokenizer": "della.run.tokenizer",
    "count-lengths": "della.run.lengths",
}
WARM_CLIENT_MODULE = "della.pipeline.warm"  # all a job's `python -m della` imports when the warm server runs it
WARM_WORKER = re.compile(r"\] worker \d+: (?P<command>[a-z-]+) in ")
WARM_PRELOAD = re.compile(r"\] imported \d+ modules in (?P<seconds>[\d.]+) CPU-s")
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
        for (start, rule), (end, _) in zip(starts, starts[1:], strict=False):
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
    """Median user + system CPU seconds of a fresh interpreter importing `module` (and della.cli,
    which every cold job imports)."""
    imports = module if module == WARM_CLIENT_MODULE else f"della.cli, {module}"
    samples = []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", f"import {imports}"], check=True, cwd=REPO)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        samples.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(samples)


def warm_jobs(warm_log: Path | None) -> tuple[dict[str, int], float]:
    """(command -> jobs the warm server ran, the server's import CPU seconds) from its log."""
    if warm_log is None or not warm_log.exists():
        return {}, 0.0
    text = warm_log.read_text(encoding="utf-8")
    served: dict[str, int] = {}
    for match in WARM_WORKER.finditer(text):
        served[match["command"]] = served.get(match["command"], 0) + 1
    return served, sum(float(m["seconds"]) for m in WARM_PRELOAD.finditer(text))


def markdown(
    jobs: dict[str, int],
    commands: dict[str, str],
    repeats: int,
    cpu_seconds: float | None,
    warm_log: Path | None = None,
) -> str:
    lines = [
        "| rule | jobs | command | start-up CPU-s per job | start-up CPU-s |",
        "| --- | ---: | --- | ---: | ---: |",
    ]
    served, preload_seconds = warm_jobs(warm_log)
    # a command's warm share, spread over the rules that run it (`figure`: several)
    command_jobs: dict[str, int] = {}
    for rule, count in jobs.items():
        if rule in commands:
            command_jobs[commands[rule]] = command_jobs.get(commands[rule], 0) + count
    per_module: dict[str, float] = {}

    def cost(module: str) -> float:
        if module not in per_module:
            per_module[module] = startup_cpu_seconds(module, repeats)
        return per_module[module]

    total = 0.0
    for rule, count in sorted(jobs.items(), key=lambda item: -item[1]):
        if rule not in commands:
            continue
        command = commands[rule]
        warm_share = min(1.0, served.get(command, 0) / command_jobs[command]) if command in WARM_COMMANDS else 0.0
        per_job = warm_share * cost(WARM_CLIENT_MODULE) + (1 - warm_share) * cost(command_module(command))
        total += count * per_job
        label = command + (f" ({100 * warm_share:.0f} % warm)" if warm_share else "")
        lines.append(f"| {rule} | {count} | {label} | {per_job:.1f} | {count * per_job:.0f} |")
    if preload_seconds:
        total += preload_seconds
        lines.append(f"| warm server (its imports, once) | | | | {preload_seconds:.0f} |")
    lines.append(f"| **total** | {sum(jobs[r] for r in jobs if r in commands)} | | | {total:.0f} |")
    if cpu_seconds:
        lines += [
            "",
            f"Start-up: {total:.0f} of the run's {cpu_seconds:.0f} CPU-seconds ({100 * total / cpu_seconds:.0f} %).",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="a .snakemake/log/*.snakemake.log of the run")
    parser.add_argument("--cpu-seconds", type=float, default=None, help="the run's total CPU seconds")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per module (median)")
    parser.add_argument(
        "--warm-log", type=Path, default=None, help="the run's logs/warm_start.log, if it ran with warm_start: true"
    )
    args = parser.parse_args()
    jobs = {rule: len(times) for rule, times in job_times(args.log).items()}
    print(markdown(jobs, rule_commands(), args.repeats, args.cpu_seconds, args.warm_log))


if __name__ == "__main__":
    main()
