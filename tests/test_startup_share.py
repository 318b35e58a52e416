"""benchmarks/startup_share.py: every rule's command is found and mapped to the module it imports."""

from __future__ import annotations

import importlib.util
import sys

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

from startup_share import command_module, markdown, rule_commands, startup_cpu_seconds  # noqa: E402


def test_every_rule_that_runs_della_bench_maps_to_an_importable_module():
    commands = rule_commands()
    # the rules the sample DAG spends its time in are all found, with the command they run
    assert {"train": "train", "generate": "generate", "evaluate": "evaluate"}.items() <= commands.items()
    # every rule of workflow/rules runs a della command (`use rule` copies included): none is missed
    declared = {
        line.split()[-2 if line.startswith("use rule") else 1].rstrip(":")
        for smk in (ROOT / "workflow" / "rules").glob("*.smk")
        for line in smk.read_text(encoding="utf-8").splitlines()
        if line.startswith(("rule ", "use rule "))
    }
    assert set(commands) == declared
    for rule, command in commands.items():
        module = command_module(command)  # a KeyError names a command this script does not know
        assert importlib.util.find_spec(module) is not None, (rule, command, module)


def test_startup_is_measured_in_a_fresh_process_and_weighted_by_jobs():
    seconds = startup_cpu_seconds("della.data.download", repeats=1)
    assert 0 < seconds < 60
    table = markdown({"download": 3, "not_a_rule_with_a_command": 5}, {"download": "download"}, 1, cpu_seconds=100.0)
    row = next(line for line in table.splitlines() if line.startswith("| download"))
    per_job, total = (float(cell) for cell in row.strip("|").split("|")[3:5])
    assert abs(total - 3 * per_job) <= 1  # rounded to whole seconds
    assert "not_a_rule_with_a_command" not in table and "of the run's 100 CPU-seconds" in table


def test_jobs_the_warm_server_ran_pay_a_clients_start_up_and_its_imports_count_once(tmp_path):
    """With logs/warm_start.log: half of these generate jobs ran in the server's workers, so the
    rule pays half a cold start-up per job plus half a client's, and the server's imports once."""
    warm_log = tmp_path / "warm_start.log"
    warm_log.write_text(
        "2026-12-05 05:46:08 [warm 7] imported 32 modules in 4.5 CPU-s; serving\n"
        "2026-12-05 05:46:22 [warm 7] worker 8: generate in /repo\n"
        "2026-12-05 05:46:23 [warm 7] worker 9: generate in /repo\n"
    )
    cold = startup_cpu_seconds(command_module("generate"), repeats=1)
    client = startup_cpu_seconds("della.pipeline.warm", repeats=1)
    assert client < cold / 3  # what the warm path saves: the client imports neither torch nor transformers
    table = markdown({"generate": 4}, {"generate": "generate"}, 1, cpu_seconds=None, warm_log=warm_log)
    row = next(line for line in table.splitlines() if line.startswith("| generate"))
    assert "50 % warm" in row
    per_job = float(row.strip("|").split("|")[3])
    assert abs(per_job - (cold + client) / 2) < 0.3 * cold  # measured again in the table: noisy, not random
    assert (
        "| warm server (its imports, once) | | | | 4 |" in table
        or "| warm server (its imports, once) | | | | 5 |" in table
    )
